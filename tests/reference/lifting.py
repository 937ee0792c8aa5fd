"""Slow NumPy float64 references for LiftPool: the lifting scheme with explicit index sets."""

from __future__ import annotations

import numpy as np


def filter_op(w, start):
  """Linear filter along axis -2, zero outside: y[n] = sum_j w[j] v[n + j - start]."""
  w = np.asarray(w, np.float64)

  def apply(v):
    m = v.shape[-2]
    y = np.zeros_like(v)
    for n in range(m):
      for j in range(w.shape[0]):
        i = n + j - start
        if 0 <= i < m:
          y[..., n, :] += w[j] * v[..., i, :]
    return y

  return apply


def conv1d_same(v, kernel, bias):
  """Flax-style 'SAME' conv along axis -2: kernel (K, Cin, Cout), pads ((K-1)//2, K//2)."""
  kernel = np.asarray(kernel, np.float64)
  k = kernel.shape[0]
  m = v.shape[-2]
  y = np.zeros(v.shape[:-1] + (kernel.shape[2],)) + np.asarray(bias, np.float64)
  for n in range(m):
    for j in range(k):
      i = n + j - (k - 1) // 2
      if 0 <= i < m:
        y[..., n, :] += v[..., i, :] @ kernel[j]
  return y


def lift_operator(params):
  """LiftPool's P/U: conv(K) -> ReLU -> conv(1) -> tanh, from a Flax LiftOperator's params."""

  def apply(v):
    h = conv1d_same(v, params['conv_k']['kernel'], params['conv_k']['bias'])
    h = conv1d_same(np.maximum(h, 0), params['conv_1']['kernel'], params['conv_1']['bias'])
    return np.tanh(h)

  return apply


def _along(op, v, axis):
  """Applies a 1-d operator (acting on axis -2) along ``axis``."""
  return np.moveaxis(op(np.moveaxis(v, axis, -2)), -2, axis)


def lift_step(v, axis, predict, update):
  v = np.asarray(v, np.float64)
  size = v.shape[axis]
  if size % 2:
    v = np.concatenate([v, np.take(v, [size - 1], axis)], axis)
  even = np.take(v, np.arange(0, v.shape[axis], 2), axis)
  odd = np.take(v, np.arange(1, v.shape[axis], 2), axis)
  d = odd - _along(predict, even, axis)
  s = even + _along(update, d, axis)
  return s, d


def unlift_step(s, d, axis, size, predict, update):
  even = s - _along(update, d, axis)
  odd = d + _along(predict, even, axis)
  shape = list(s.shape)
  shape[axis] = 2 * s.shape[axis]
  v = np.zeros(shape)
  index = [slice(None)] * v.ndim
  index[axis] = slice(0, None, 2)
  v[tuple(index)] = even
  index[axis] = slice(1, None, 2)
  v[tuple(index)] = odd
  return np.take(v, np.arange(size), axis)


def lift_down(x, predict, update, axes):
  """Returns a dict band name -> band (letters 'L'/'H' per axis, in axes order)."""
  bands = {'': np.asarray(x, np.float64)}
  for axis in axes:
    new = {}
    for name, band in bands.items():
      new[name + 'L'], new[name + 'H'] = lift_step(band, axis, predict, update)
    bands = new
  return bands


def lift_up(bands, predict, update, axes, sizes):
  bands = dict(bands)
  for depth in reversed(range(len(axes))):
    prefixes = {name[:depth] for name in bands}
    bands = {
      pre: unlift_step(
        bands[pre + 'L'], bands[pre + 'H'], axes[depth], sizes[depth], predict, update
      )
      for pre in prefixes
    }
  return bands['']
