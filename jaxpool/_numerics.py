"""Numeric policy shared by every op: floats in, same dtype out, f32 accumulation; max and
min that keep NaN."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


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


# --- max and min that keep NaN -------------------------------------------------------------
#
# XLA:CPU vectorises max/min reductions (``jnp.max``, a max ``lax.reduce_window``) over inputs
# of about 4096 elements or more with an instruction that drops NaN: ``jnp.max`` of such an
# array holding a NaN returns the largest number. PyTorch, NumPy and XLA on GPU/TPU return
# NaN. The reductions below keep it, on every backend.


#: Axes up to this long are reduced by :func:`extremum` as an unrolled elementwise max.
_UNROLLED = 16
_SLICED = 64  # the longest rows that _keeping_nan reduces by slices


def _max_keeping_nan(a, b):
  return lax.select(lax.gt(a, b) | lax.ne(a, a), a, b)


def _min_keeping_nan(a, b):
  return lax.select(lax.lt(a, b) | lax.ne(a, a), a, b)


def extremum_op(kind: str, dtype):
  """The pair combiner of a max (``kind='max'``) or min reduction that keeps NaN.

  ``lax.max``/``lax.min`` for integers and bools; for floats, ``a`` where ``a`` wins or is
  NaN, else ``b``: NaN from either side. A compare and a select, which XLA:CPU runs
  as fast as its own max in ``lax.reduce_window`` and over a leading stacked-tap axis.
  Module-level functions, so that JAX's caches (keyed on the combiner) hit.
  """
  if not jnp.issubdtype(dtype, jnp.floating):
    return lax.max if kind == 'max' else lax.min
  return _max_keeping_nan if kind == 'max' else _min_keeping_nan


def extremum_identity(kind: str, dtype) -> np.ndarray:
  """The identity of max (``kind='max'``: :func:`lowest`) or min (:func:`highest`) as a NumPy
  scalar of ``dtype``: a literal in the program, never a batched operand under ``vmap``
  (``lax.reduce`` has no batching rule for a batched initial value)."""
  return np.asarray(lowest(dtype) if kind == 'max' else highest(dtype), jnp.dtype(dtype))


def stacked_extremum(x: jnp.ndarray, kind: str = 'max', axis: int | Sequence[int] = 0):
  """``jnp.max(x, axis)`` (``kind='min'``: ``jnp.min``) over an axis (or axes) of stacked
  taps; a NaN among them gives NaN."""
  axes = (axis,) if isinstance(axis, int) else tuple(axis)
  return lax.reduce(
    x,
    extremum_identity(kind, x.dtype),
    extremum_op(kind, x.dtype),
    tuple(a % x.ndim for a in axes),
  )


def all_finite(x: jnp.ndarray) -> jnp.ndarray:
  """Whether every entry of a float array is finite: ``sum(x * 0) == 0``, one plain pass
  (``x * 0`` is NaN exactly at NaN and +-inf). Always over ``x`` flattened, so that XLA
  computes it once for several callers holding reshapes of one array."""
  return jnp.isfinite(jnp.sum(x.reshape(-1) * 0))


def when_finite(x: jnp.ndarray, finite: Callable, otherwise: Callable):
  """``lax.cond(all_finite(x), finite, otherwise)``. A concrete ``x`` (eager, outside any
  transformation) picks its branch in Python: no conditional compiled on every call."""
  if not isinstance(x, jax.core.Tracer):
    return finite() if bool(all_finite(x)) else otherwise()
  return lax.cond(all_finite(x), finite, otherwise)


def _add(a, b):
  # lax.reduce with lax.add and a zero is JAX's reduce_sum, whose 0 XLA shares with the
  # program's other zeros and passes to the kernel as an operand: XLA:CPU then runs the
  # sum apart from the max (2x the time). A function of its own keeps the -0 literal.
  return a + b


def finite_extremum(x: jnp.ndarray, axis: int, kind: str = 'max') -> jnp.ndarray:
  """The max (``kind='min'``: min) of ``x`` over ``axis`` (kept, size 1) where every
  reduced entry is finite, NaN elsewhere: ``max(x) + sum(x * 0)``. ``x * 0`` is NaN
  exactly at NaN and +-inf; XLA:CPU's own max may drop a NaN, the sum never does.

  One read of ``x``: XLA:CPU runs two reductions joined by an add as one kernel (rows of
  16x56x56x256: 3.3 ms, a plain max 3.1-3.4, the max and a separate ``sum(x * 0)`` 4.8).
  A zero maximum may come out as +0 for -0.
  """
  plain = jnp.max if kind == 'max' else jnp.min
  finite = lax.reduce(x * 0, np.asarray(-0.0, x.dtype), _add, (axis % x.ndim,))
  return plain(x, axis, keepdims=True) + jnp.expand_dims(finite, axis)


READ_ONCE_BYTES = 32 << 20


def read_once(x: jnp.ndarray, axes: Sequence[int]) -> bool:
  """Whether a NaN-exact max of ``x`` over ``axes`` reads its row maxima and its finiteness
  in one pass (:func:`finite_extremum`): where ``x`` is at least :data:`READ_ONCE_BYTES`
  and its innermost axis is not reduced. XLA:CPU runs that joined reduction at memory
  speed, but it computes 2.5-3x a plain max per entry (16x56x56x64 f32, which the caches
  hold: 0.4-0.6 ms against 0.16-0.23), and over the innermost axis (channel max) it is
  slower than the two passes apart. Otherwise ``x`` is tested whole (:func:`all_finite`,
  which XLA computes once for every reduction of the same array: the levels of a spatial
  pyramid) and reduced by a plain max."""
  return x.size * x.dtype.itemsize >= READ_ONCE_BYTES and x.ndim - 1 not in axes


def extremum(x: jnp.ndarray, axis: int | Sequence[int], kind: str = 'max', keepdims=False):
  """``jnp.max(x, axis, keepdims=keepdims)`` (or ``jnp.min``), NaN wherever a reduced
  entry is NaN.

  A reduction over inner axes with :func:`extremum_op` runs several times slower than
  XLA's own max on CPU. An input without NaN (a whole-array ``sum(x * 0)`` is finite: one
  plain pass) takes the plain reduction, exact there, and only an input holding NaN or an
  infinity the NaN-keeping one. Where ``x`` is large (:func:`read_once`), one pass of
  :func:`finite_extremum` instead reads the maxima of rows (the innermost reduced axis, a
  long one cut in two: XLA:CPU runs the joined reductions over a long axis 1.6x slower),
  and a NaN-keeping reduction over the rows' maxima gives the result, exact where it is
  finite and not zero. An input holding NaN or an infinity takes the NaN-keeping reduction
  over ``x``, and maxima with a zero the plain one, which keeps the sign of zero
  (``lax.cond``; under ``vmap``, a select of all three).
  """
  axes = {a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
  shape = tuple(1 if a in axes else d for a, d in enumerate(x.shape) if keepdims or a not in axes)
  # Unit dims dropped first: XLA:CPU copies a cond operand with them (measured 5x slower).
  kept = [a for a, d in enumerate(x.shape) if d != 1]
  xs = x.reshape(tuple(x.shape[a] for a in kept))
  over = tuple(i for i, a in enumerate(kept) if a in axes)
  plain = (lambda: jnp.max(xs, over)) if kind == 'max' else (lambda: jnp.min(xs, over))
  if not jnp.issubdtype(x.dtype, jnp.floating) or x.size == 0 or not over:
    return plain().reshape(shape)
  if all(xs.shape[a] <= _UNROLLED for a in over):
    # short axes (blocks of adaptive pooling): an elementwise max or min of their slices,
    # which keeps NaN and runs at memory speed (faster than XLA's reduction here)
    pair = jnp.maximum if kind == 'max' else jnp.minimum
    for a in over:
      xs = functools.reduce(pair, [lax.index_in_dim(xs, i, a) for i in range(xs.shape[a])])
    return xs.reshape(shape)

  if not read_once(xs, over):
    return when_finite(x, plain, lambda: _keeping_nan(xs, kind, over)).reshape(shape)
  rows, col, others = _as_rows(xs, over)
  key = stacked_extremum(finite_extremum(rows, col, kind), kind, (*others, col))
  exact = lambda: when_finite(key, plain, lambda: _keeping_nan(xs, kind, over))
  if not isinstance(key, jax.core.Tracer):
    return (key if bool(jnp.all(jnp.isfinite(key) & (key != 0))) else exact()).reshape(shape)
  return lax.cond(jnp.all(jnp.isfinite(key) & (key != 0)), lambda: key, exact).reshape(shape)


def _keeping_nan(xs: jnp.ndarray, kind: str, over: tuple[int, ...]) -> jnp.ndarray:
  """:func:`stacked_extremum` of ``xs`` over ``over``, its rows (:func:`_as_rows`) of up to
  64 entries first taken by an elementwise max (or min) of their slices, which keeps NaN at
  memory speed: XLA:CPU's NaN-keeping reduction over them runs several times slower (global
  max with a NaN, 16x56x56x256: 40-50 ms)."""
  rows, col, others = _as_rows(xs, over)
  if rows.shape[col] > _SLICED or not others:
    return stacked_extremum(xs, kind, over)
  pair = jnp.maximum if kind == 'max' else jnp.minimum
  row = functools.reduce(pair, [lax.index_in_dim(rows, i, col) for i in range(rows.shape[col])])
  return stacked_extremum(row, kind, (*others, col))


def _as_rows(x: jnp.ndarray, over: tuple[int, ...]) -> tuple[jnp.ndarray, int, tuple[int, ...]]:
  """``(view, col, others)``: ``x`` with its innermost reduced axis cut into rows of
  :func:`row_width` entries where it is long; ``col`` that axis in the view (the columns),
  ``others`` the other reduced axes (the rows' axis among them)."""
  a = max(over)
  k = x.shape[a]
  cols = row_width(k)
  others = tuple(b for b in over if b != a)
  if cols is None:
    return x, a, others
  view = x.reshape(x.shape[:a] + (k // cols, cols) + x.shape[a + 1 :])
  return view, a + 1, (*others, a)


def row_width(k: int) -> int | None:
  """The width ``W`` of the rows that a reduced axis of ``k`` entries is cut into: its
  largest divisor up to ``sqrt(k)``, where ``k`` is at least 256 and ``W`` 8 or more; else
  None (the axis is read whole)."""
  cols = max(d for d in range(1, math.isqrt(k) + 1) if k % d == 0)
  return cols if k >= 256 and cols >= 8 else None


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


@jax.custom_jvp
def materialize(a: jnp.ndarray) -> jnp.ndarray:
  """Returns ``a`` unchanged, asking XLA to compute it once: a fusion boundary.

  XLA fuses cheap elementwise producers into each consumer. When a backward
  rule recomputes per-window data (an argmax, softmax weights) and
  :meth:`jaxpool._windows.Taps.scatter` reads it at several shifted positions, XLA:CPU can
  re-evaluate the whole producer per input element and tap (measured 10-20x
  slower). ``lax.optimization_barrier`` is dropped on CPU; this identity
  reduce-window (a max over a pair whose second entry is the dtype's lowest
  value) is kept as a reduction of its own for int8 and bool arrays (the tap
  choices that routes hold). For float and int32 arrays XLA:CPU (jax 0.10) folds
  it into the consumer, so there it is the identity: holding them through their
  bytes as int8 was measured slower as often as faster (DPP 1.2-1.7x, adaptive
  max 1.8-2.2x, fractional max 0.77x), so it is not done.
  """
  low = jnp.asarray(lowest(a.dtype), a.dtype)
  paired = lax.pad(a[..., None], low, [(0, 0, 0)] * a.ndim + [(0, 1, 0)])
  keep = extremum_op('max', a.dtype)  # a NaN stays NaN
  return lax.reduce_window(paired, low, keep, (1,) * a.ndim + (2,), (1,) * (a.ndim + 1), 'VALID')[
    ..., 0
  ]


@materialize.defjvp
def _materialize_jvp(primals, tangents):
  # The identity, for derivatives too (the reduce-window's own rule would route
  # through a select-and-gather); its transpose is the identity.
  (a,), (a_dot,) = primals, tangents
  return materialize(a), a_dot


def reverse_barrier(tree, live: jnp.ndarray):
  """``tree`` (arrays), unchanged, through a ``lax.cond`` on ``live``: a runtime bool the
  caller knows is True but XLA cannot fold (the other branch, zeros, never runs).

  Linear in ``tree``, and its transpose is the same cond on the cotangents: reverse mode
  then computes them once, as whole arrays, before they are spread back over the taps.
  Without it XLA:CPU fuses each tap's cotangent, and whatever it recomputes, into the pads
  and concatenates that put the taps back at input resolution, evaluating every padded
  tap's expression at every input position of its phase (DPP 3x3/s2/p1: one 200 ms loop
  of a 250 ms gradient). Forward mode pays one copy of ``tree``'s tangents. Under ``vmap``
  with a batched ``live`` the cond becomes a select: the same values, no boundary.
  """
  return lax.cond(live, lambda t: t, lambda t: jax.tree.map(jnp.zeros_like, t), tree)


def blend(lam, a, b, hold: bool = False):
  """``lam * a + (1 - lam) * b``, where a weight of exactly 0 drops its term.

  At ``lam = 1`` the result is ``a`` and at ``lam = 0`` it is ``b`` even where the
  other term is infinite or NaN (a plain ``0 * inf`` is NaN), so the documented
  limits (max pooling at 1, average pooling at 0) hold for windows holding
  infinities or whose average overflows. Elsewhere, values and derivatives are
  the plain formula's.

  ``hold``: the masks of those limits are computed once as bool arrays
  (:func:`materialize`). For a ``lam`` computed from the window's taps (a gate): XLA:CPU
  otherwise re-derives ``a``'s window maximum inside every tap of the transposes that read
  the masks (gated 3x3/s2/p1 f+b 0.35x); for a parameter ``lam`` it costs more than it saves
  (max-average 1.13x).
  """
  if isinstance(lam, (int, float)):
    if lam == 1:
      return a
    if lam == 0:
      return b
    return lam * a + (1 - lam) * b
  held = materialize if hold else (lambda mask: mask)
  a = jnp.where(held((lam == 0) & ~jnp.isfinite(a)), jnp.zeros((), a.dtype), a)
  b = jnp.where(held((lam == 1) & ~jnp.isfinite(b)), jnp.zeros((), b.dtype), b)
  return lam * a + (1 - lam) * b
