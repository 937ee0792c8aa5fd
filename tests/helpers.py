"""Helpers for tests: torch access, layout conversion, random geometry."""

from __future__ import annotations

import numpy as np
import pytest


def torch_or_skip():
  """Imports torch (the parity oracle) or skips the test cleanly."""
  return pytest.importorskip('torch')


def to_torch_layout(a: np.ndarray, n_spatial: int) -> np.ndarray:
  """(*batch, *spatial, C) with one batch dim -> (N, C, *spatial)."""
  return np.moveaxis(np.asarray(a), -1, a.ndim - n_spatial - 1)


def from_torch_layout(a, n_spatial: int) -> np.ndarray:
  """(N, C, *spatial) -> (N, *spatial, C)."""
  a = a.detach().numpy() if hasattr(a, 'detach') else np.asarray(a)
  return np.moveaxis(a, a.ndim - n_spatial - 1, -1)


def random_geometry(rng: np.random.Generator, ndim: int, *, max_window: int = 4,
                    max_stride: int = 3, dilation: bool = True, padding: bool = True):
  """A random valid pooling configuration in PyTorch's terms (symmetric int padding).

  Returns dict(window, strides, padding, dilation, ceil_mode, spatial) with
  spatial sizes large enough for at least one output.
  """
  window = tuple(int(v) for v in rng.integers(1, max_window + 1, ndim))
  strides = tuple(int(v) for v in rng.integers(1, max_stride + 1, ndim))
  dil = tuple(int(v) for v in rng.integers(1, 3, ndim)) if dilation else (1,) * ndim
  eff = [d * (k - 1) + 1 for k, d in zip(window, dil)]
  pad = tuple(int(rng.integers(0, e // 2 + 1)) for e in eff) if padding else (0,) * ndim
  spatial = tuple(int(rng.integers(max(e - 2 * p, 1), e + 6)) for e, p in zip(eff, pad))
  return dict(window=window, strides=strides, padding=pad, dilation=dil,
              ceil_mode=bool(rng.integers(0, 2)), spatial=spatial)
