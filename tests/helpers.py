"""Helpers for tests: torch access, layout conversion, random geometry."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
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


def unit_cotangent(tree):
  """Ones for float outputs, float0 zeros for integer ones (indices)."""
  return jax.tree.map(
    lambda v: (
      jnp.ones_like(v)
      if jnp.issubdtype(v.dtype, jnp.floating)
      else np.zeros(v.shape, jax.dtypes.float0)
    ),
    tree,
  )


def value_and_vjp_fn(f):
  """``run(primals, cotangent=None) -> (f(*primals), vjp(cotangent))``: one jitted program,
  compiled once per input shapes and dtypes (``cotangent`` None: :func:`unit_cotangent` of
  the output). Eagerly, a vjp dispatches and compiles each primitive of the forward and of
  its transpose on its own: several times the compile time of one program."""

  @jax.jit
  def run(primals, cotangent=None):
    y, vjp = jax.vjp(f, *primals)
    return y, vjp(unit_cotangent(y) if cotangent is None else cotangent)

  return run


def value_and_vjp(f, primals: tuple, cotangent=None):
  """:func:`value_and_vjp_fn` of ``f``, called once."""
  return value_and_vjp_fn(f)(tuple(primals), cotangent)


def random_geometry(
  rng: np.random.Generator,
  ndim: int,
  *,
  max_window: int = 4,
  max_stride: int = 3,
  dilation: bool = True,
  padding: bool = True,
):
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
  return dict(
    window=window,
    strides=strides,
    padding=pad,
    dilation=dil,
    ceil_mode=bool(rng.integers(0, 2)),
    spatial=spatial,
  )


def rotation() -> int:
  """This run's turn in the long sweeps: which of their extra cases it runs.

  The sweeps that would be too slow to run whole on every CI run (random geometries checked
  against references) run a fixed-size share chosen by this number, so that successive
  commits together cover every case. ``JAXPOOL_TEST_ROTATION`` if set (to reproduce a
  failure: pytest's header prints the value), else the git commit as a number, else 0.
  """
  import os
  import pathlib
  import subprocess

  value = os.environ.get('JAXPOOL_TEST_ROTATION')
  if value is not None:
    return int(value)
  try:
    head = subprocess.run(
      ['git', 'rev-parse', 'HEAD'],
      capture_output=True,
      text=True,
      cwd=pathlib.Path(__file__).parent,
      check=True,
      timeout=10,
    ).stdout
    return int(head.strip()[:8], 16)
  except (OSError, ValueError, subprocess.SubprocessError):
    return 0


def rotating_share(cases: list, fixed: int, share: int, turn: int | None = None) -> list:
  """The first ``fixed`` cases, then ``share`` of the others starting at this run's turn."""
  turn = rotation() if turn is None else turn
  rest = cases[fixed:]
  if not rest or share <= 0:
    return cases[:fixed]
  picked = [rest[(turn + i) % len(rest)] for i in range(min(share, len(rest)))]
  return cases[:fixed] + picked


def tie_free_mixed(shape, seed: int = 0) -> np.ndarray:
  """Distinct values of both signs with magnitudes in [0.5, 1]: no ties, no zeros."""
  rng = np.random.default_rng(seed)
  magnitude = 0.5 + 0.5 * (rng.permutation(int(np.prod(shape))) + 0.5) / np.prod(shape)
  return (magnitude * rng.choice([-1.0, 1.0], int(np.prod(shape)))).reshape(shape)


def tie_free(shape, seed: int = 0, positive: bool = False) -> np.ndarray:
  """Float64 values without ties: a random permutation of a jittered grid.

  In ``(-1, 1)`` (``positive``: ``(0.25, 1.25)``); any two values differ by at
  least ``1 / size`` and none is within ``0.5 / size`` of 0, so maxima, signs
  and orders are unchanged by perturbations far below that (finite differences).
  """
  rng = np.random.default_rng(seed)
  n = math.prod(shape)
  v = (rng.permutation(n) + 0.5 + rng.uniform(-0.25, 0.25, n)) * (2.0 / n) - 1.0
  if positive:
    v = 0.75 + v / 2
  return v.reshape(shape)
