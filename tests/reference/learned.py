"""NumPy float64 loop references for mixed, gated, tree and DPP pooling.

Written from the papers' formulas (Lee, Gallagher & Tu 2016; Saeedan et al. 2018) over an
explicit window enumeration; never imports jaxpool. Only valid (non-padding) taps of a window
take part; a window without one gives 0.
"""

from __future__ import annotations

import numpy as np

from .windows import out_shape, windows


def _pairs(padding, n):
  if isinstance(padding, int):
    return [(padding, padding)] * n
  return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def _pool(x, window, strides, padding, dilation, ceil_mode, reduce):
  """Calls ``reduce(b, p, taps, values)`` for every window of every batch entry.

  ``taps`` are the row-major window offsets (flat) of the valid taps, ``values`` their
  inputs ``(n_valid, C)``; returns ``(*batch, *out, C)`` float64.
  """
  x = np.asarray(x, np.float64)
  n = len(window)
  strides = window if strides is None else strides
  strides = (strides,) * n if isinstance(strides, int) else tuple(strides)
  dilation = (dilation,) * n if isinstance(dilation, int) else tuple(dilation)
  pads = _pairs(padding, n)
  batch = x.shape[: x.ndim - n - 1]
  spatial = x.shape[len(batch) : -1]
  flat = x.reshape(-1, *spatial, x.shape[-1])
  outs = out_shape(spatial, window, strides, pads, dilation, ceil_mode)
  y = np.zeros((flat.shape[0], *outs, x.shape[-1]))
  for b in range(flat.shape[0]):
    for p, taps in windows(spatial, window, strides, pads, dilation, ceil_mode):
      index = [j for j, (pos, _) in enumerate(taps) if pos is not None]
      if not index:
        continue
      values = np.stack([flat[b][taps[j][0]] for j in index])
      y[(b, *p)] = reduce(b, p, index, values)
  return y.reshape(*batch, *outs, x.shape[-1])


def _per_output(value, x, window, strides, padding, dilation, ceil_mode):
  """Broadcasts a parameter to the output shape, flattened over the batch."""
  n = len(window)
  strides = window if strides is None else strides
  strides = (strides,) * n if isinstance(strides, int) else tuple(strides)
  dilation = (dilation,) * n if isinstance(dilation, int) else tuple(dilation)
  batch = x.shape[: x.ndim - n - 1]
  spatial = x.shape[len(batch) : -1]
  outs = out_shape(spatial, window, strides, _pairs(padding, n), dilation, ceil_mode)
  full = np.broadcast_to(np.asarray(value, np.float64), (*batch, *outs, x.shape[-1]))
  return full.reshape(-1, *outs, x.shape[-1])


def _sigmoid(z):
  return 0.5 * (1 + np.tanh(z / 2))


def _filter_at(filters, index):
  """Filter weights (``(K,)`` or ``(K, C)``) at the valid taps, as ``(n_valid, 1 or C)``."""
  f = np.asarray(filters, np.float64)
  f = f[index]
  return f[:, None] if f.ndim == 1 else f


def max_avg_pool(x, alpha, window, strides=None, padding=0, dilation=1, ceil_mode=False):
  """alpha * max + (1 - alpha) * mean over the valid taps."""
  a = _per_output(alpha, np.asarray(x), window, strides, padding, dilation, ceil_mode)
  return _pool(
    x,
    window,
    strides,
    padding,
    dilation,
    ceil_mode,
    lambda b, p, _, v: a[(b, *p)] * v.max(0) + (1 - a[(b, *p)]) * v.mean(0),
  )


def gated_pool(x, gate, window, strides=None, padding=0, dilation=1, ceil_mode=False):
  """sigmoid(<gate, x_R>) * max + (1 - sigmoid) * mean; gate ``window`` or ``(*window, C)``."""
  k = int(np.prod(window))
  g = np.asarray(gate, np.float64)
  g = g.reshape(k, *g.shape[len(window) :])

  def reduce(b, p, index, v):
    s = _sigmoid((_filter_at(g, index) * v).sum(0))
    return s * v.max(0) + (1 - s) * v.mean(0)

  return _pool(x, window, strides, padding, dilation, ceil_mode, reduce)


def tree_pool(x, leaves, gates, window, strides=None, padding=0, dilation=1, ceil_mode=False):
  """Heap-ordered binary tree: node i has children 2i+1, 2i+2; leaf m is node n_gates + m."""
  k = int(np.prod(window))
  v = np.asarray(leaves, np.float64)
  v = v.reshape(v.shape[0], k, *v.shape[1 + len(window) :])
  w = np.asarray(gates, np.float64)
  w = w.reshape(w.shape[0], k, *w.shape[1 + len(window) :])
  n_gates = w.shape[0]

  def reduce(b, p, index, values):
    def node(i):
      if i >= n_gates:
        return (_filter_at(v[i - n_gates], index) * values).sum(0)
      s = _sigmoid((_filter_at(w[i], index) * values).sum(0))
      return s * node(2 * i + 1) + (1 - s) * node(2 * i + 2)

    return node(0)

  return _pool(x, window, strides, padding, dilation, ceil_mode, reduce)


def dpp_pool(
  x,
  alpha,
  lam,
  window,
  strides=None,
  padding=0,
  guide=None,
  symmetric=True,
  eps=1e-3,
  dilation=1,
  ceil_mode=False,
):
  """sum w x / sum w, w = alpha + ((d**2 + eps) / mean(d**2 + eps)) ** (lam / 2)."""
  c = np.asarray(x).shape[-1]
  alpha = np.broadcast_to(np.asarray(alpha, np.float64), (c,))
  lam = np.broadcast_to(np.asarray(lam, np.float64), (c,))
  g = (
    None
    if guide is None
    else _per_output(guide, np.asarray(x), window, strides, padding, dilation, ceil_mode)
  )

  def reduce(b, p, _, v):
    center = v.mean(0) if g is None else g[(b, *p)]
    d = v - center
    if not symmetric:
      d = np.maximum(d, 0)
    penalty = d**2 + eps
    w = alpha + (penalty / penalty.mean(0)) ** (lam / 2)
    return (w * v).sum(0) / w.sum(0)

  return _pool(x, window, strides, padding, dilation, ceil_mode, reduce)
