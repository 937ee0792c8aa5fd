"""Dtype policy shared by every op: floats in, same dtype out, f32 accumulation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def as_array(x, name: str = 'x') -> jnp.ndarray:
  """``jnp.asarray`` with a TypeError naming the argument for non-numeric or complex input."""
  try:
    arr = jnp.asarray(x)
  except (TypeError, ValueError):
    raise TypeError(f'{name} must be a numeric array; got {type(x).__name__} {x!r:.60}') from None
  if not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_):
    raise TypeError(f'{name} must be a numeric array; got dtype {arr.dtype}')
  if jnp.issubdtype(arr.dtype, jnp.complexfloating):
    raise TypeError(f'{name} must be a real array (pooling orders values); got dtype {arr.dtype}')
  return arr


def check_float(x: jnp.ndarray, op: str, name: str = 'x') -> None:
  """Ops defined only for floats raise a TypeError naming the dtype."""
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
      f'{op} needs a floating-point {name} (float16, bfloat16, float32, '
      f'float64); got dtype {x.dtype}'
    )


def compute_dtype(dtype) -> np.dtype:
  """Accumulation dtype: float32 for half precisions, the dtype itself otherwise."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
    return jnp.dtype(jnp.float32)
  return dtype


def lowest(dtype):
  """The identity of ``max``: -inf for floats, the minimum for integers."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating):
    return -np.inf
  if dtype == jnp.bool_:
    return False
  return jnp.iinfo(dtype).min


def highest(dtype):
  """The identity of ``min``: +inf for floats, the maximum for integers."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating):
    return np.inf
  if dtype == jnp.bool_:
    return True
  return jnp.iinfo(dtype).max


def scale_normalizer(m):
  """``(down, up)``: ``down(x) ~= x / m`` (``|down(x)| <= 1`` for ``|x| <= m``), ``up(y) = y m``.

  A plain ``x / m`` fails near the top of the float range: XLA multiplies by ``1 / m``,
  which is subnormal for ``m > 2^126`` and flushed to zero on CPU. Above ``2^(emax-28)``
  both are pre-scaled by ``2^(-emax/2)`` (inputs that small relative to ``m`` add
  nothing); ``m`` below the normal range counts as 0 (its ``x`` are flushed anyway).
  An infinite ``m`` keeps only the infinite entries, as ``+-1`` (finite ones are
  negligible beside them), so ``up`` gives ``+-inf``, or NaN for ``up(0)`` (``inf - inf``).
  """
  info = jnp.finfo(m.dtype)
  m = jnp.where(m >= info.tiny, m, jnp.ones((), m.dtype))
  huge = m > 2.0 ** (info.maxexp - 28)
  pre = jnp.where(huge, jnp.asarray(2.0 ** -(info.maxexp // 2), m.dtype), jnp.ones((), m.dtype))
  inv = 1 / (m * pre)
  infinite = jnp.isinf(m)

  def down(x):
    r = x * pre * inv
    return jnp.where(infinite, jnp.where(jnp.isinf(x), jnp.sign(x), jnp.zeros((), r.dtype)), r)

  return down, (lambda y: y * m)


def blend(lam, a, b):
  """``lam * a + (1 - lam) * b``, where a weight of exactly 0 drops its term.

  At ``lam = 1`` the result is ``a`` and at ``lam = 0`` it is ``b`` even where the
  other term is infinite or NaN (a plain ``0 * inf`` is NaN), so the documented
  limits (max pooling at 1, average pooling at 0) hold for windows holding
  infinities or whose average overflows. Elsewhere, values and derivatives are
  the plain formula's.
  """
  if isinstance(lam, (int, float)):
    if lam == 1:
      return a
    if lam == 0:
      return b
    return lam * a + (1 - lam) * b
  a = jnp.where((lam == 0) & ~jnp.isfinite(a), jnp.zeros((), a.dtype), a)
  b = jnp.where((lam == 1) & ~jnp.isfinite(b), jnp.zeros((), b.dtype), b)
  return lam * a + (1 - lam) * b
