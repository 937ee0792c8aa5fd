"""NumPy loop references for classic pooling (float64), channel-last (N, *spatial, C)."""

from __future__ import annotations

import numpy as np

from tests.reference.windows import out_shape, windows


def _pool(x, window, strides, pads, dilation, ceil_mode, reduce):
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  out = np.zeros(
    (x.shape[0],) + out_shape(spatial, window, strides, pads, dilation, ceil_mode) + (x.shape[-1],)
  )
  for p, taps in windows(spatial, window, strides, pads, dilation, ceil_mode):
    valid = [pos for pos, _ in taps if pos is not None]
    n_pad = sum(1 for pos, in_pad in taps if in_pad)
    values = np.stack([x[(slice(None),) + pos] for pos in valid]) if valid else None
    out[(slice(None),) + p] = reduce(values, len(valid), n_pad)
  return out


def avg_pool(
  x,
  window,
  strides,
  pads,
  dilation=None,
  ceil_mode=False,
  count_include_pad=True,
  divisor_override=None,
):
  dilation = dilation or (1,) * len(window)

  def reduce(values, n_valid, n_pad):
    total = values.sum(0) if values is not None else 0.0
    if divisor_override is not None:
      return total / divisor_override
    return total / max(n_pad if count_include_pad else n_valid, 1)

  return _pool(x, window, strides, pads, dilation, ceil_mode, reduce)


def lp_pool(x, p, window, strides, pads, dilation=None, ceil_mode=False):
  """(sum over valid taps of x**p) ** (1/p), real root for a negative sum."""
  dilation = dilation or (1,) * len(window)

  def reduce(values, n_valid, n_pad):
    total = (values**p).sum(0)
    return np.sign(total) * np.abs(total) ** (1.0 / p)

  return _pool(x, window, strides, pads, dilation, ceil_mode, reduce)


def max_pool(x, window, strides, pads, dilation=None, ceil_mode=False):
  dilation = dilation or (1,) * len(window)
  return _pool(
    x,
    window,
    strides,
    pads,
    dilation,
    ceil_mode,
    lambda values, *_: values.max(0) if values is not None else -np.inf,
  )
