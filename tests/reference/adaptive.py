"""NumPy float64 loop references for adaptive, global, channel and pyramid pooling.

Layout (*batch, *spatial, C). Window bounds come from exact rational arithmetic
(fractions.Fraction), written independently of jaxpool.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np


def bounds(size: int, out: int) -> list[tuple[int, int]]:
  """Bin i spans [floor(i * size / out), ceil((i + 1) * size / out))."""
  return [
    (math.floor(Fraction(i * size, out)), math.ceil(Fraction((i + 1) * size, out)))
    for i in range(out)
  ]


def _rows(x, n):
  """Yields (batch_index, slice (*spatial, C)) over the leading batch dims."""
  batch = x.shape[: x.ndim - n - 1]
  for b in itertools.product(*(range(v) for v in batch)):
    yield b, x[b]


def adaptive_pool(x, out_spatial, method):
  """Returns (y, first_argmax_flat) for method 'max', y for 'avg'."""
  x = np.asarray(x, np.float64)
  n = len(out_spatial)
  spatial = x.shape[x.ndim - n - 1 : -1]
  out_spatial = tuple(s if o is None else o for s, o in zip(spatial, out_spatial))
  per_dim = [bounds(s, o) for s, o in zip(spatial, out_spatial)]
  batch = x.shape[: x.ndim - n - 1]
  y = np.zeros(batch + out_spatial + x.shape[-1:])
  idx = np.zeros(y.shape, np.int64)
  for b, xb in _rows(x, n):
    for o in itertools.product(*(range(v) for v in out_spatial)):
      ranges = [range(*per_dim[d][o[d]]) for d in range(n)]
      for c in range(x.shape[-1]):
        if method == 'avg':
          vals = [xb[p + (c,)] for p in itertools.product(*ranges)]
          y[b + o + (c,)] = sum(vals) / len(vals)
        else:
          best, where = None, None
          for p in itertools.product(*ranges):  # row-major; first maximum (or first NaN) wins
            v = xb[p + (c,)]
            if best is None or (not np.isnan(best) and (v > best or np.isnan(v))):
              best, where = v, p
          y[b + o + (c,)] = best
          idx[b + o + (c,)] = np.ravel_multi_index(where, spatial)
  return (y, idx) if method == 'max' else y


def adaptive_max_grad(x, out_spatial, ct):
  """Gradient of sum(adaptive_max(x) * ct): ct routed to each window's first maximum."""
  x = np.asarray(x, np.float64)
  n = len(out_spatial)
  _, idx = adaptive_pool(x, out_spatial, 'max')
  spatial = x.shape[x.ndim - n - 1 : -1]
  grad = np.zeros(x.shape)
  for b, _ in _rows(x, n):
    for o in itertools.product(*(range(v) for v in idx.shape[len(b) : -1])):
      for c in range(x.shape[-1]):
        p = np.unravel_index(idx[b + o + (c,)], spatial)
        grad[b + tuple(int(v) for v in p) + (c,)] += ct[b + o + (c,)]
  return grad


def adaptive_avg_grad(x, out_spatial, ct):
  """Gradient of sum(adaptive_avg(x) * ct): each window spreads ct / |window|."""
  x = np.asarray(x, np.float64)
  n = len(out_spatial)
  spatial = x.shape[x.ndim - n - 1 : -1]
  out_spatial = tuple(s if o is None else o for s, o in zip(spatial, out_spatial))
  per_dim = [bounds(s, o) for s, o in zip(spatial, out_spatial)]
  grad = np.zeros(x.shape)
  for b, _ in _rows(x, n):
    for o in itertools.product(*(range(v) for v in out_spatial)):
      ranges = [range(*per_dim[d][o[d]]) for d in range(n)]
      count = math.prod(len(r) for r in ranges)
      for p in itertools.product(*ranges):
        grad[b + p] += np.asarray(ct[b + o], np.float64) / count
  return grad


def global_pool(x, method, **kw):
  """(N, *spatial, C) -> (N, C) by explicit per-(n, c) loops."""
  x = np.asarray(x, np.float64)
  n, c = x.shape[0], x.shape[-1]
  out = np.zeros((n, 2 * c if method == 'catavgmax' else c))
  for i in range(n):
    for j in range(c):
      v = x[i, ..., j].ravel()
      avg, mx = v.sum() / v.size, v.max()
      if method == 'avg':
        out[i, j] = avg
      elif method == 'max':
        out[i, j] = mx
      elif method == 'soft':
        t = kw.get('temperature', 1.0)
        w = np.exp((v - mx) / t)
        out[i, j] = (w * v).sum() / w.sum()
      elif method == 'lp':
        p = kw.get('p', 2.0)
        out[i, j] = (v**p).sum() ** (1.0 / p)
      elif method == 'gem':
        p, eps = kw.get('p', 3.0), kw.get('eps', 1e-6)
        out[i, j] = (np.maximum(v, eps) ** p).mean() ** (1.0 / p)
      elif method == 'avgmax':
        out[i, j] = (avg + mx) / 2
      elif method == 'catavgmax':
        out[i, j], out[i, c + j] = avg, mx
  return out


def channel_pool(x, method):
  """(..., C) -> (..., 1)."""
  x = np.asarray(x, np.float64)
  flat = x.reshape(-1, x.shape[-1])
  out = np.zeros((flat.shape[0], 1))
  for r, v in enumerate(flat):
    if method == 'max':
      out[r] = v.max()
    elif method == 'avg':
      out[r] = v.sum() / v.size
    else:
      w = np.exp(v - v.max())
      out[r] = (w * v).sum() / w.sum()
  return out.reshape(*x.shape[:-1], 1)


def spatial_pyramid(x, levels, method):
  """Level by level; within a level, bins row-major with the channel fastest."""
  x = np.asarray(x, np.float64)
  n = x.ndim - 2
  parts = []
  for level in levels:
    size = (level,) * n if isinstance(level, int) else tuple(level)
    y = adaptive_pool(x, size, method)
    y = y[0] if method == 'max' else y
    feats = [
      y[(slice(None), *o, c)]
      for o in itertools.product(*(range(v) for v in size))
      for c in range(x.shape[-1])
    ]
    parts.append(np.stack(feats, axis=1))
  return np.concatenate(parts, axis=1)
