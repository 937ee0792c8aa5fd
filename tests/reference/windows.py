"""Explicit window enumeration for the references: loops, no cleverness."""

from __future__ import annotations

import itertools

import numpy as np


def out_size(size, k, s, d, lo, hi, ceil_mode):
  """PyTorch's output size (written independently of jaxpool._geometry)."""
  eff = d * (k - 1) + 1
  if ceil_mode:
    out = int(np.ceil((size + lo + hi - eff) / s)) + 1
    if (out - 1) * s >= size + lo:
      out -= 1
  else:
    out = (size + lo + hi - eff) // s + 1
  return out


def windows(spatial, window, strides, pads, dilation, ceil_mode):
  """Yields (out_index, taps): taps is a list of (in_index or None, in_explicit_pad)."""
  n = len(spatial)
  outs = [
    out_size(spatial[i], window[i], strides[i], dilation[i], pads[i][0], pads[i][1], ceil_mode)
    for i in range(n)
  ]
  for p in itertools.product(*(range(o) for o in outs)):
    taps = []
    for j in itertools.product(*(range(k) for k in window)):
      pos = tuple(p[a] * strides[a] + j[a] * dilation[a] - pads[a][0] for a in range(n))
      inside = all(0 <= pos[a] < spatial[a] for a in range(n))
      in_pad = all(-pads[a][0] <= pos[a] < spatial[a] + pads[a][1] for a in range(n))
      taps.append((pos if inside else None, in_pad))
    yield p, taps
  return outs


def out_shape(spatial, window, strides, pads, dilation, ceil_mode):
  return tuple(
    out_size(spatial[i], window[i], strides[i], dilation[i], pads[i][0], pads[i][1], ceil_mode)
    for i in range(len(spatial))
  )
