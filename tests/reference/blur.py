"""Slow NumPy float64 references for BlurPool / MaxBlurPool: loops over windows."""

from __future__ import annotations

import itertools

import numpy as np


def binomial_row(k: int) -> np.ndarray:
  """[1, 1] convolved with itself k - 1 times, normalised (Pascal's triangle)."""
  row = np.ones(1)
  for _ in range(k - 1):
    row = np.convolve(row, [1.0, 1.0])
  return row / row.sum()


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
  """XLA 'SAME': output ceil(size / s), the odd pad on the high side."""
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return total // 2, total - total // 2


def _source(i: int, size: int, mode: str):
  """Input index read at (possibly padded) position i, or None for a zero pad."""
  if 0 <= i < size:
    return i
  if mode == 'constant':
    return None
  if mode == 'edge':
    return min(max(i, 0), size - 1)
  # reflect about the edge samples, without repeating them
  return -i if i < 0 else 2 * (size - 1) - i


def blur_pool(x, window, strides, pads, pad_mode='constant', count_include_pad=False):
  """x: (*batch, *spatial, C); pads: (lo, hi) per spatial dim. Returns float64."""
  x = np.asarray(x, np.float64)
  n = len(window)
  spatial = x.shape[-n - 1 : -1]
  rows = [binomial_row(k) for k in window]
  outs = [
    (size + lo + hi - k) // s + 1 for size, k, s, (lo, hi) in zip(spatial, window, strides, pads)
  ]
  y = np.zeros(x.shape[: -n - 1] + tuple(outs) + x.shape[-1:])
  for p in itertools.product(*(range(o) for o in outs)):
    total = 0.0
    mass = 0.0
    for j in itertools.product(*(range(k) for k in window)):
      w = np.prod([rows[a][j[a]] for a in range(n)])
      src = [_source(p[a] * strides[a] + j[a] - pads[a][0], spatial[a], pad_mode) for a in range(n)]
      if any(v is None for v in src):
        if count_include_pad:
          mass += w
        continue
      total = total + w * x[(..., *src, slice(None))]
      mass += w
    if pad_mode == 'constant' and not count_include_pad:
      total = total / mass
    y[(..., *p, slice(None))] = total
  return y


def max_pool_dense(x, window):
  """Stride-1 'VALID' max pooling."""
  x = np.asarray(x, np.float64)
  n = len(window)
  spatial = x.shape[-n - 1 : -1]
  outs = [size - k + 1 for size, k in zip(spatial, window)]
  y = np.full(x.shape[: -n - 1] + tuple(outs) + x.shape[-1:], -np.inf)
  for p in itertools.product(*(range(o) for o in outs)):
    for j in itertools.product(*(range(k) for k in window)):
      idx = (..., *(p[a] + j[a] for a in range(n)), slice(None))
      y[(..., *p, slice(None))] = np.maximum(y[(..., *p, slice(None))], x[idx])
  return y
