"""NumPy float64 loop references for the stochastic pooling ops (never imports jaxpool).

Arrays are ``(N, *spatial, C)`` (one batch dim); ``pads`` are ``(low, high)`` pairs.
"""

from __future__ import annotations

import itertools

import numpy as np

from tests.reference.windows import out_shape, windows


def window_probabilities(x, window, strides, pads, dilation, ceil_mode):
  """Zeiler & Fergus sampling law of every window.

  Returns a dict ``(n, out_index, c) -> (positions, probabilities)`` over the
  valid taps (positions are spatial index tuples), ``p_i = max(x_i, 0) / sum``;
  an all-non-positive window has all probabilities 0.
  """
  x = np.asarray(x, np.float64)
  laws = {}
  spatial = x.shape[1:-1]
  for p, taps in windows(spatial, window, strides, pads, dilation, ceil_mode):
    positions = [pos for pos, _ in taps if pos is not None]
    for n in range(x.shape[0]):
      for c in range(x.shape[-1]):
        a = np.array([max(x[(n, *pos, c)], 0.0) for pos in positions])
        total = a.sum()
        laws[(n, p, c)] = (positions, a / total if total > 0 else np.zeros_like(a))
  return laws


def stochastic_eval(x, window, strides, pads, dilation, ceil_mode):
  """Probabilistic weighting: ``sum_i p_i x_i`` per window (0 for an all-zero window)."""
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  y = np.zeros(
    (x.shape[0], *out_shape(spatial, window, strides, pads, dilation, ceil_mode), x.shape[-1])
  )
  for (n, p, c), (positions, probs) in window_probabilities(
    x, window, strides, pads, dilation, ceil_mode
  ).items():
    y[(n, *p, c)] = sum(pr * x[(n, *pos, c)] for pos, pr in zip(positions, probs))
  return y


def max_and_avg(x, window, strides, pads, dilation, ceil_mode):
  """Max and average (valid taps only; 0 for an empty window) of every window."""
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  shape = (x.shape[0], *out_shape(spatial, window, strides, pads, dilation, ceil_mode), x.shape[-1])
  mx, avg = np.zeros(shape), np.zeros(shape)
  for p, taps in windows(spatial, window, strides, pads, dilation, ceil_mode):
    positions = [pos for pos, _ in taps if pos is not None]
    if not positions:
      continue
    vals = np.stack([x[(slice(None), *pos, slice(None))] for pos in positions])
    mx[(slice(None), *p, slice(None))] = vals.max(0)
    avg[(slice(None), *p, slice(None))] = vals.mean(0)
  return mx, avg


def mixed_eval(x, window, strides, pads, dilation, ceil_mode, p_max):
  mx, avg = max_and_avg(x, window, strides, pads, dilation, ceil_mode)
  return p_max * mx + (1 - p_max) * avg


def stride1_max_map(x, window):
  """``max_pool(x, window, strides=1)``, VALID."""
  n = len(window)
  return max_and_avg(x, window, (1,) * n, [(0, 0)] * n, (1,) * n, False)[0]


def s3_eval(x, window):
  """Average pooling (window k, stride k, padding k // 2 excluded) of the stride-1 max map."""
  z = stride1_max_map(x, window)
  n = len(window)
  pads = [(k // 2, k // 2) for k in window]
  return max_and_avg(z, window, window, pads, (1,) * n, False)[1]


def fractional_starts(u, size, k, out):
  """Graham's pseudo-random starts with PyTorch's rule, in float64 (exact for moderate sizes)."""
  if out == 1:
    return [size - k]
  alpha = (size - k) / (out - 1)
  return [int((i + u) * alpha) - int(u * alpha) for i in range(out - 1)] + [size - k]


def fractional_max_pool(x, window, out, samples):
  """Loop reference: ``samples`` (N, C, ndim) with entry j driving spatial dim j.

  Returns ``(y, flat_indices)``; the first maximum in row-major order wins.
  """
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  y = np.zeros((x.shape[0], *out, x.shape[-1]))
  idx = np.zeros(y.shape, np.int64)
  for n in range(x.shape[0]):
    for c in range(x.shape[-1]):
      starts = [
        fractional_starts(samples[n, c, d], spatial[d], window[d], out[d])
        for d in range(len(window))
      ]
      for o in itertools.product(*(range(v) for v in out)):
        best, where = -np.inf, None
        for j in itertools.product(*(range(k) for k in window)):
          pos = tuple(starts[d][o[d]] + j[d] for d in range(len(window)))
          if where is None or x[(n, *pos, c)] > best:
            best, where = x[(n, *pos, c)], pos
        y[(n, *o, c)] = best
        idx[(n, *o, c)] = np.ravel_multi_index(where, spatial)
  return y, idx
