"""Adaptive, global, channel-wise and spatial-pyramid pooling.

Adaptive pooling fixes the *output* size. Along a dim of length ``L`` pooled to
``out`` bins, bin ``i`` reads the interval (PyTorch's ``AdaptivePooling.h``)::

  start_i = floor(i * L / out) = (i * L) // out
  end_i   = ceil((i + 1) * L / out) = -((-(i + 1) * L) // out)

computed once, in Python integers, at trace time. An n-d window is the product
of its per-dim intervals, so sums and maxima over it are *separable*: the pool
is a sequence of 1-d ranged reductions, one per spatial dim. Each 1-d reduction
takes the cheapest exact form: nothing when ``out == L``, a reshape and a
reduction when ``out`` divides ``L`` (224 -> 7, 56 -> 7, global pooling), and
otherwise a few static gathers, one per tap (window sizes take only the values
``ceil(L / out)`` and ``ceil(L / out) + 1``, or 1 and 2 when ``out > L``).

Derivatives are ``custom_jvp`` rules whose tangents are linear in ``ẋ`` and
written without gathers (a gather transposes to a scatter-add): a block max
picks the winner's tangent with a where and a block sum; a ranged sum or max
takes, per interval, a masked sum of ``ẋ`` (winner-masked for the max), or for
more than 8 intervals a ``lax.split`` of ``ẋ`` into runs of positions held by the
same intervals. JAX derives reverse mode by transposing them: broadcasts,
wheres and concatenates, no scatter. Reducing the dims from the last to the
first, each with a first-maximum rule, picks the first maximum in row-major
window order — PyTorch's tie rule (a window holding NaN: its last NaN); the
tangent and the gradient follow the same winner.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _reductions

__all__ = [
  'adaptive_avg_pool',
  'adaptive_max_pool',
  'global_pool',
  'channel_pool',
  'spatial_pyramid_pool',
]


# --- per-dim intervals (integer maths, trace time) ------------------------------------


@dataclasses.dataclass(frozen=True)
class _Ranges:
  """Static intervals ``[starts[i], ends[i])`` over an axis of length ``size``."""

  size: int
  starts: tuple[int, ...]
  ends: tuple[int, ...]

  @classmethod
  def adaptive(cls, size: int, out: int) -> _Ranges:
    return cls(
      size,
      tuple(i * size // out for i in range(out)),
      tuple(-(-(i + 1) * size // out) for i in range(out)),
    )

  @property
  def out(self) -> int:
    return len(self.starts)

  @property
  def block(self) -> int | None:
    """``k`` when the intervals are the consecutive blocks ``[i*k, (i+1)*k)``, else None."""
    k, rem = divmod(self.size, self.out)
    if rem or any(s != i * k or e != s + k for i, (s, e) in enumerate(zip(self.starts, self.ends))):
      return None
    return k

  def transpose(self) -> _Ranges:
    """For each position ``p``, the range of intervals holding it (contiguous, non-empty)."""
    p = np.arange(self.size)
    first = np.searchsorted(np.asarray(self.ends), p, side='right')
    stop = np.searchsorted(np.asarray(self.starts), p, side='right')
    return _Ranges(self.out, tuple(int(v) for v in first), tuple(int(v) for v in stop))

  def taps(self) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(index, valid)`` per tap ``j``: tap ``j`` of every interval (clipped) and its validity.

    At least one: every interval is non-empty.
    """
    starts, ends = np.asarray(self.starts), np.asarray(self.ends)
    return [
      (np.minimum(starts + j, ends - 1), starts + j < ends)
      for j in range(int((ends - starts).max()))
    ]


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
  """A 1-d static array shaped to broadcast along ``axis`` of an ``ndim`` array."""
  shape = [1] * ndim
  shape[axis] = values.size
  return np.asarray(values).reshape(shape)


def _take_sorted(x: jnp.ndarray, index: np.ndarray, axis: int) -> jnp.ndarray:
  return jnp.take(x, index, axis=axis, mode='clip', indices_are_sorted=True)


# --- blocks: out divides L on every reduced axis (reshape + reduce) -------------------


def _split(x: jnp.ndarray, ks: tuple[int, ...]) -> jnp.ndarray:
  """``(d0, d1, ...) -> (d0 // k0, k0, d1 // k1, k1, ...)``; reduce over the odd axes."""
  return x.reshape(tuple(v for d, k in zip(x.shape, ks) for v in (d // k, k)))


def _unsplit(y: jnp.ndarray) -> jnp.ndarray:
  """``(o0, o1, ...) -> (o0, 1, o1, 1, ...)``, broadcastable against :func:`_split`."""
  return y.reshape(tuple(v for d in y.shape for v in (d, 1)))


def _odd_axes(ks) -> tuple[int, ...]:
  return tuple(range(1, 2 * len(ks), 2))


def _block_iota(ks: tuple[int, ...]) -> np.ndarray:
  """Row-major flat index of each tap of a block, shaped ``(1, k0, 1, k1, ...)``."""
  flat = np.arange(math.prod(ks), dtype=np.int32).reshape(ks)
  return flat.reshape(tuple(v for k in ks for v in (1, k)))


def _squeezed_blocks(x: jnp.ndarray, ks: tuple[int, ...]):
  """``(xs, kept, block)``: the blocked view of ``x`` (:func:`_split`) without its unit dims
  (``kept``: the axes left), and its block axes (``k > 1``). XLA:CPU copies a cond operand
  that has unit dims."""
  xs = _split(x, ks)
  kept = [a for a, d in enumerate(xs.shape) if d != 1]
  xs = xs.reshape(tuple(xs.shape[a] for a in kept))
  return xs, kept, [i for i, a in enumerate(kept) if a % 2 == 1]


def _block_first(x: jnp.ndarray, y: jnp.ndarray, ks: tuple[int, ...]) -> jnp.ndarray:
  """Row-major flat position of the first maximum inside each block: int32, shaped like y.

  A block holding NaN gives its *last* NaN (PyTorch's kernels: a later tap replaces
  the running maximum if it is larger or NaN), as :func:`jaxpool.max_pool`.
  """
  xs, kept, block = _squeezed_blocks(x, ks)
  if _chained(xs, block):
    return _chain_first(xs, block)[1].reshape(y.shape)
  squeeze = lambda v: v.reshape(tuple(v.shape[a] for a in kept))
  best = squeeze(_unsplit(y))
  one_search = lambda: _all_taps_winner(xs, best, kept, block, ks)
  grid = _as_rows(xs, block)
  if grid is None:
    return one_search().reshape(y.shape)
  rows, row_axis, col_axis = grid
  if rows.ndim > xs.ndim:  # a 1-d block cut into rows: the block maximum gets the column axis
    best = jnp.expand_dims(best, col_axis)
  in_rows = lambda: _first_in_rows(rows, best, row_axis, col_axis)[0].reshape(y.shape)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return in_rows()
  # XLA:CPU's max reduction need not carry a NaN into a row's maximum, so an input with a
  # NaN (or an infinity: x * 0 is NaN for both) takes a search exact for NaN: the
  # two-level scan, or one search over all taps for long rows.
  if rows.shape[col_axis] <= _CHAINED:
    exact = lambda: _rows_first(rows, row_axis, col_axis)[1].reshape(y.shape)
  else:
    exact = lambda: one_search().reshape(y.shape)
  return _numerics.when_finite(x, in_rows, exact)


def _all_taps_winner(xs, best, kept: list[int], block: list[int], ks: tuple[int, ...]):
  """:func:`_reductions.winning_tap` over all taps of each block of the view ``xs`` of
  :func:`_squeezed_blocks` at once (exact with NaN); ``best``: the block maxima, 1 on the
  block axes. int32."""
  iota = _block_iota(ks)
  iota = iota.reshape(tuple(iota.shape[a] for a in kept))
  return _reductions.winning_tap(xs, best, iota, tuple(block), math.prod(ks)).astype(jnp.int32)


def _block_max_and_first(x: jnp.ndarray, ks: tuple[int, ...]) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(y, first)``: :func:`_block_max` and :func:`_block_first` of ``x``.

  Small blocks: both from one scan (:func:`_chain_first`). Where the blocks are searched
  row by row (:func:`_as_rows`), ``x`` is read for the row maxima and whether it is finite
  (once where it is large, :func:`_numerics.read_once`). Finite, the winner comes from the
  row maxima, and the block maximum is ``x`` at the winner (its sign of zero included).
  Elsewhere, the two apart.
  """
  xs, kept, block = _squeezed_blocks(x, ks)
  shape = tuple(d // k for d, k in zip(x.shape, ks))
  if _chained(xs, block):
    y, first = _chain_first(xs, block)
    return y.reshape(shape), first.reshape(shape)
  grid = _as_rows(xs, block)
  if grid is None or not jnp.issubdtype(x.dtype, jnp.floating):
    y = _numerics.extremum(_split(x, ks), _odd_axes(ks))
    return y, _block_first(x, y, ks)
  rows, row_axis, col_axis = grid

  # A large x: one read gives the row maxima, NaN in a row holding NaN or an infinity
  # (which picks the path too). A smaller one: the whole-array test, then a plain max.
  row_max = _numerics.finite_extremum(rows, col_axis) if _numerics.read_once(xs, block) else None

  def in_rows():
    # The max of the row maxima by another combiner: XLA folds a max of a max into one
    # reduction over both axes, a second read of x.
    maxima = jnp.max(rows, axis=col_axis, keepdims=True) if row_max is None else row_max
    best = jnp.expand_dims(_numerics.stacked_extremum(maxima, 'max', row_axis), row_axis)
    first, value = _first_in_rows(rows, best, row_axis, col_axis, maxima)
    return value.reshape(shape), first.reshape(shape)

  def one_search():  # NaN or inf in x: a search exact for NaN
    if rows.shape[col_axis] <= _CHAINED:  # the two-level scan
      value, first = _rows_first(rows, row_axis, col_axis)
      return value.reshape(shape), first.reshape(shape)
    best = jnp.expand_dims(_numerics.stacked_extremum(xs, 'max', block), tuple(block))
    return best.reshape(shape), _all_taps_winner(xs, best, kept, block, ks).reshape(shape)

  return _numerics.when_finite(x if row_max is None else row_max, in_rows, one_search)


_CHAINED = 64  # most taps of a block searched by a chain of selects (_chain_first)


def _chained(xs: jnp.ndarray, block: list[int]) -> bool:
  """Whether :func:`_chain_first` searches the blocks: at most :data:`_CHAINED` taps, the
  innermost axis not a block axis (a tap is then a strided slice of whole rows), and, for
  blocks that :func:`_as_rows` could search, a large input (:func:`_numerics.read_once`):
  the chain's 7 or so operations per tap cost more than the rows' plain max where the
  caches hold the input (56->7 f+b, chain against rows: 2.58 / 2.26 ms at 16x56x56x64,
  7.30 / 7.28 at x128, 20.1 / 24.4 at x256)."""
  if math.prod(xs.shape[a] for a in block) > _CHAINED or xs.ndim - 1 in block:
    return False
  return _as_rows(xs, block) is None or _numerics.read_once(xs, block)


def _chain_first(xs: jnp.ndarray, block: list[int]) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(value, position)`` of PyTorch's winner in each block of the view ``xs`` (block axes
  ``block``): its kernels' scan, ``m, i = x_t, t`` wherever ``x_t > m`` or ``x_t`` is NaN,
  over the taps in row-major order, as one elementwise chain of selects over the taps'
  slices (the first maximum; the last NaN). The value is ``x`` at the winner, a second
  chain. Both are shaped like ``xs`` without the block axes. At most 127 taps.

  XLA:CPU runs a reduction over a compare or select several times slower than a plain max,
  but a chain of elementwise selects over slices at memory speed (adaptive max 56->7,
  16x56x56x256, value and winner: 4.8 ms, against 11.4 by rows and 2.6 for the max alone).
  """
  taps = [
    xs[tuple(t[block.index(a)] if a in block else slice(None) for a in range(xs.ndim))]
    for t in itertools.product(*(range(xs.shape[a]) for a in block))
  ]
  # computed once (int8 holds the taps), not inside each consumer: the value's chain, and
  # a tangent or its transpose that reads it at every tap
  first = _numerics.materialize(_scan(taps)[1].astype(jnp.int8)).astype(jnp.int32)
  return _at(taps, first), first


def _scan(taps: list[jnp.ndarray], carried: list[jnp.ndarray] | None = None):
  """``(m, first, carried)``: PyTorch's scan over ``taps`` (``m, i = x_t, t`` where
  ``x_t > m`` or ``x_t`` is NaN), ``carried[t]`` (an array per tap) taken along with it."""
  floating = jnp.issubdtype(taps[0].dtype, jnp.floating)
  m, first = taps[0], jnp.zeros(taps[0].shape, jnp.int32)
  carried = [first] * len(taps) if carried is None else carried  # none: unused, dropped
  kept = carried[0]
  for t, v in enumerate(taps[1:], 1):
    take = (v > m) | jnp.isnan(v) if floating else v > m
    m, first = jnp.where(take, v, m), jnp.where(take, jnp.int32(t), first)
    kept = jnp.where(take, carried[t], kept)
  return m, first, kept


def _at(taps: list[jnp.ndarray], index: jnp.ndarray) -> jnp.ndarray:
  """``taps[index]`` per entry: a chain of selects."""
  value = taps[0]
  for t, v in enumerate(taps[1:], 1):
    value = jnp.where(index == t, v, value)
  return value


def _rows_first(rows: jnp.ndarray, row_axis: int, col_axis: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(value, position)`` of PyTorch's winner over the ``rows x cols`` taps of each block,
  exact for any input (NaN included), in two levels of :func:`_scan`: each row's winner
  (the scan over the column slices, held as int8, and its value), then the scan over the
  rows' values, which carries their columns. The first row whose value beats the running
  one holds the block's first maximum, and the last row holding a NaN its last NaN, so the
  winner is the one scan's over the whole block, ``row * cols + col``. At most 127 columns.
  Shaped like ``rows`` without both axes.

  Each level is elementwise over slices, at memory speed where a reduction over a compare
  or select is several times slower (global max with a NaN, 16x56x56x256: 40-50 ms).
  """
  cols = [lax.index_in_dim(rows, j, col_axis, keepdims=False) for j in range(rows.shape[col_axis])]
  col = _numerics.materialize(_scan(cols)[1].astype(jnp.int8)).astype(jnp.int32)
  value = _at(cols, col)  # col_axis > row_axis: the row axis stays where it was
  n = rows.shape[row_axis]
  row_values = [lax.index_in_dim(value, r, row_axis, keepdims=False) for r in range(n)]
  row_cols = [lax.index_in_dim(col, r, row_axis, keepdims=False) for r in range(n)]
  best, row, col = _scan(row_values, row_cols)
  return best, row * len(cols) + col


def _as_rows(xs: jnp.ndarray, block: list[int]):
  """The blocks of ``xs`` (block axes ``block``) as ``(rows, row_axis, col_axis)`` for
  :func:`_first_in_rows`, or None.

  A 2-d block of 64 taps or more is its own grid of rows (the first block axis) and
  columns (the second), rows of 8 or more. A 1-d block is cut into rows of
  :func:`_numerics.row_width` taps where it is long. Smaller blocks, and blocks of 3 or
  more dims, are searched in one go (None).
  """
  k = math.prod(xs.shape[a] for a in block)
  if len(block) == 2 and xs.shape[block[1]] >= 8 and k >= 64:
    return xs, block[0], block[1]
  cols = _numerics.row_width(k) if len(block) == 1 else None
  if cols is None:
    return None
  axis = block[0]
  return xs.reshape(xs.shape[:axis] + (k // cols, cols) + xs.shape[axis + 1 :]), axis, axis + 1


def _first_in_rows(
  grid: jnp.ndarray, best: jnp.ndarray, row_axis: int, col_axis: int, row_max=None
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(position, value)``: the first maximum over a block's ``rows x cols`` taps, in two
  levels (:func:`_reductions.first_tap`: the caller's input holds no NaN), and its value.

  XLA:CPU runs a plain max at memory speed but a reduction over a compare or select several
  times slower. So the block is read as rows: each row's maximum (a plain max), the winning
  row among those maxima (the first equal to the block's maximum: a row holds the block's
  maximum exactly when its own maximum equals it), that one row gathered, and the winning
  tap in it: ``row * cols + col``, the same tap as one search over the whole block, for
  inputs without NaN. ``best`` is the block maximum, 1 on both axes; ``row_max`` the row
  maxima where the caller has them. Both results are shaped like ``best``, reshaped by
  the caller.
  """
  rows, cols = grid.shape[row_axis], grid.shape[col_axis]
  along = lambda n, a: lax.broadcasted_iota(
    jnp.int32, (1,) * a + (n,) + (1,) * (grid.ndim - a - 1), a
  )
  if row_max is None:
    row_max = jnp.max(grid, axis=col_axis, keepdims=True)
  row = _reductions.first_tap(row_max, best, along(rows, row_axis), row_axis, rows)
  row = jnp.expand_dims(jnp.minimum(row, rows - 1), row_axis)
  picked = jnp.take_along_axis(grid, row, axis=row_axis, mode='clip')
  col = jnp.expand_dims(
    _reductions.first_tap(picked, best, along(cols, col_axis), col_axis, cols), col_axis
  )
  value = jnp.take_along_axis(picked, jnp.minimum(col, cols - 1), axis=col_axis, mode='clip')
  return row * cols + col, value


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _block_max(x: jnp.ndarray, ks: tuple[int, ...]) -> jnp.ndarray:
  return _numerics.extremum(_split(x, ks), _odd_axes(ks))


@_block_max.defjvp
def _block_max_jvp(ks, primals, tangents):
  (x,), (dx,) = primals, tangents
  y, first = _block_max_and_first(x, ks)
  return _block_winner(ks, y, x, first), _winner_tangent(ks, dx, first)


def _winner_tangent(ks: tuple[int, ...], dx: jnp.ndarray, first: jnp.ndarray) -> jnp.ndarray:
  # ẏ = ẋ at the winner of each block (_block_first: PyTorch's rule): a where and a
  # block sum, linear in ẋ. Transposed: a broadcast and a where, no scatter.
  hit = _block_iota(ks) == _unsplit(first)
  return jnp.sum(jnp.where(hit, _split(dx, ks), jnp.zeros((), dx.dtype)), axis=_odd_axes(ks))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _block_winner(ks, y, x, first):
  """``y`` (the block maxima of ``x``, won at ``first``), differentiated by that winner: a
  tangent rule's primal output is differentiated again for second derivatives, and ``y``
  computed by plain reductions would get JAX's rule, which splits ties."""
  del x, first
  return y


@_block_winner.defjvp
def _block_winner_jvp(ks, primals, tangents):
  y, x, first = primals
  return _block_winner(ks, y, x, first), _winner_tangent(ks, tangents[1], first)


def _axis_ks(ndim: int, axis: int, k: int) -> tuple[int, ...]:
  return tuple(k if a == axis else 1 for a in range(ndim))


# --- ranged sums and maxima along one axis (static gathers; gather-free tangents) -----


def _sum_all(terms: Sequence[jnp.ndarray]) -> jnp.ndarray:
  """``terms[0] + terms[1] + ...``, left to right; ``terms`` is non-empty."""
  total = terms[0]
  for term in terms[1:]:
    total = total + term
  return total


def _gather_sum(x: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  def tap(index: np.ndarray, valid: np.ndarray) -> jnp.ndarray:
    t = _take_sorted(x, index, axis)
    if valid.all():
      return t
    return jnp.where(_along(valid, axis, x.ndim), t, jnp.zeros((), x.dtype))

  return _sum_all([tap(index, valid) for index, valid in r.taps()])


def _period(r: _Ranges) -> tuple[int, _Ranges]:
  """``(g, q)``: ``r`` is ``g`` copies, ``q.size`` positions apart, of the intervals ``q``.

  Adaptive ranges of ``L -> out`` repeat ``gcd(L, out)`` times; other ranges once.
  """
  g = math.gcd(r.size, r.out)
  size, out = r.size // g, r.out // g
  q = _Ranges(size, r.starts[:out], r.ends[:out])
  if (
    g > 1
    and q.ends[-1] <= size
    and all(
      r.starts[k * out + i] == k * size + q.starts[i]
      and r.ends[k * out + i] == k * size + q.ends[i]
      for k in range(g)
      for i in range(out)
    )
  ):
    return g, q
  return 1, r


# XLA:CPU fuses a concatenate of at most this many operands (more: each operand and the
# concatenate run as separate kernels, which doubled compile times here).
_CONCAT_FUSE_MAX = 8


def _split_pieces(x: jnp.ndarray, sizes: list[int], axis: int) -> Sequence[jnp.ndarray]:
  """``lax.split(x, sizes, axis)``, in slices of at most ``_CONCAT_FUSE_MAX`` pieces.

  The transpose (one concatenate per slice, placed by a pad) is then one fusion.
  """
  if len(sizes) <= _CONCAT_FUSE_MAX:
    return lax.split(x, sizes, axis=axis)
  pieces: list[jnp.ndarray] = []
  start = 0
  for k in range(0, len(sizes), _CONCAT_FUSE_MAX):
    chunk = sizes[k : k + _CONCAT_FUSE_MAX]
    pieces += lax.split(lax.slice_in_dim(x, start, start + sum(chunk), axis=axis), chunk, axis=axis)
    start += sum(chunk)
  return pieces


def _join(parts: list[jnp.ndarray], axis: int) -> jnp.ndarray:
  """``jnp.concatenate(parts, axis)``, as pads of concatenates of at most
  ``_CONCAT_FUSE_MAX`` parts when there are more (one fusion; transposed: slices)."""
  if len(parts) <= _CONCAT_FUSE_MAX:
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)
  total = sum(u.shape[axis] for u in parts)
  placed: list[jnp.ndarray] = []
  start = 0
  for k in range(0, len(parts), _CONCAT_FUSE_MAX):
    group = parts[k : k + _CONCAT_FUSE_MAX]
    chunk = group[0] if len(group) == 1 else jnp.concatenate(group, axis=axis)
    config = [(0, 0, 0)] * chunk.ndim
    config[axis] = (start, total - start - chunk.shape[axis], 0)
    placed.append(lax.pad(chunk, jnp.zeros((), chunk.dtype), config))
    start += chunk.shape[axis]
  return _sum_all(placed)


def _runs(r: _Ranges) -> list[tuple[int, int, range]]:
  """``(start, stop, intervals)``: maximal runs of positions held by the same intervals."""
  rt = r.transpose()
  runs: list[tuple[int, int, range]] = []
  for p, held in enumerate(zip(rt.starts, rt.ends)):
    if runs and runs[-1][2] == range(*held):
      runs[-1] = (runs[-1][0], p + 1, runs[-1][2])
    else:
      runs.append((p, p + 1, range(*held)))
  return runs


def _by_runs(pick, x: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  """``y_i = sum over the runs inside interval i of pick(run, start, i)`` along ``axis``.

  Linear in ``x`` for a linear ``pick`` that reduces a run to width 1. The runs are a
  ``lax.split`` of ``x``, whose transpose is a ``concatenate``: the transpose adds, at
  output resolution, the cotangents of the intervals holding each run, and spreads
  them over the run. No gather, so no scatter; no pad per interval.
  """
  runs = _runs(r)
  pieces = _split_pieces(x, [stop - start for start, stop, _ in runs], axis)
  terms: list[jnp.ndarray | None] = [None] * r.out
  for (start, _, intervals), piece in zip(runs, pieces):
    for i in intervals:
      term, prev = pick(piece, start, i), terms[i]
      terms[i] = term if prev is None else prev + term
  shape = x.shape[:axis] + (1,) + x.shape[axis + 1 :]
  return _join([jnp.zeros(shape, x.dtype) if t is None else t for t in terms], axis)


def _by_period(fn, x: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  """``fn(x, q, axis + 1)`` with ``axis`` of ``x`` split into ``(g, q.size)`` periods
  (:func:`_period`), the result's ``(g, q.out)`` merged back."""
  g, q = _period(r)
  y = fn(x.reshape(x.shape[:axis] + (g, q.size) + x.shape[axis + 1 :]), q, axis + 1)
  return y.reshape(x.shape[:axis] + (r.out,) + x.shape[axis + 1 :])


def _run_sum(piece: jnp.ndarray, axis: int) -> jnp.ndarray:
  return piece if piece.shape[axis] == 1 else jnp.sum(piece, axis=axis, keepdims=True)


def _masked_sums(v: jnp.ndarray, masks, axis: int) -> jnp.ndarray:
  """``y_i = sum(where(masks[i], v, 0))`` along ``axis``, one per mask, joined.

  For few intervals (at most ``_CONCAT_FUSE_MAX``): the transpose
  ``x̄ = Σ_i where(masks[i], ȳ_i, 0)`` is one elementwise fusion, with no concatenate;
  its cost grows with the number of intervals, hence :func:`_by_runs` beyond.
  """
  zero = jnp.zeros((), v.dtype)
  return _join([jnp.sum(jnp.where(m, v, zero), axis=axis, keepdims=True) for m in masks], axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _ranged_sum(x: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  """``y_i = sum(x[starts_i:ends_i])`` along ``axis``."""
  return _gather_sum(x, r, axis)


@_ranged_sum.defjvp
def _ranged_sum_jvp(r, axis, primals, tangents):
  # Linear: the ranged sum of ẋ without the forward's gathers (they would transpose to
  # a scatter-add). Transposed: x̄_p = Σ ȳ_i over the intervals holding p.
  (x,), (dx,) = primals, tangents

  def tangent(v, q, ax):
    if q.out <= _CONCAT_FUSE_MAX:
      p = np.arange(q.size)
      return _masked_sums(
        v, [_along((p >= s) & (p < e), ax, v.ndim) for s, e in zip(q.starts, q.ends)], ax
      )
    # start -> the run's sum, shared by the intervals holding the run
    sums: dict[int, jnp.ndarray] = {}
    return _by_runs(lambda piece, start, _: sums.setdefault(start, _run_sum(piece, ax)), v, q, ax)

  return _ranged_sum(x, r, axis), _by_period(tangent, dx, r, axis)


def _gather_max(x: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  taps = r.taps()  # clipped taps repeat the last element: harmless for a max
  y = _take_sorted(x, taps[0][0], axis)
  for index, _ in taps[1:]:
    y = jnp.maximum(y, _take_sorted(x, index, axis))
  return y


def _gather_first(x: jnp.ndarray, y: jnp.ndarray, r: _Ranges, axis: int) -> jnp.ndarray:
  """Position along ``axis`` of the first maximum of each interval: int32, shaped like y.

  An interval holding NaN gives its last NaN (PyTorch's rule, see :func:`_block_first`);
  reducing the dims last to first then picks the row-major last NaN of an n-d window.
  """
  taps = r.taps()

  def here(index: np.ndarray) -> np.ndarray:
    return _along(index.astype(np.int32), axis, x.ndim)

  pos = jnp.broadcast_to(here(taps[-1][0]), y.shape)
  for index, _ in reversed(taps[:-1]):  # the smallest tap hit wins
    pos = jnp.where(_take_sorted(x, index, axis) == y, here(index), pos)
  if jnp.issubdtype(x.dtype, jnp.floating):
    last_nan = jnp.broadcast_to(here(taps[0][0]), y.shape)
    for index, _ in taps[1:]:  # the largest NaN tap wins
      last_nan = jnp.where(jnp.isnan(_take_sorted(x, index, axis)), here(index), last_nan)
    pos = jnp.where(jnp.isnan(y), last_nan, pos)
  return pos


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _ranged_max(x: jnp.ndarray, r: _Ranges, axis: int, by_runs: bool) -> jnp.ndarray:
  """``y_i = max(x[starts_i:ends_i])`` along ``axis``.

  ``by_runs``: the tangent reads ``x`` by runs (:func:`_by_runs`) however few the
  intervals, so that its transpose touches each position through the (at most two)
  intervals holding it. For a dim pooled after another: XLA:CPU fuses the two transposes
  into one loop, which otherwise re-derives every interval of the later one per position
  of the earlier one (14->5 in 2-d: 25 selects per position instead of 4). The dim pooled
  first keeps the masks: its transpose is the last loop, which writes the input-sized
  cotangent, and one select per interval there runs faster than a concatenate of the
  runs (14->5 f+b 0.58-0.65x).
  """
  return _gather_max(x, r, axis)


@_ranged_max.defjvp
def _ranged_max_jvp(r, axis, by_runs, primals, tangents):
  # ẏ_i = ẋ at pos_i, the first maximum of interval i (PyTorch's winner, NaN rule
  # included), linear in ẋ. Transposed: x̄_p = Σ ȳ_i over the intervals won by p.
  (x,), (dx,) = primals, tangents
  y = _ranged_max(x, r, axis, by_runs)
  g, q = _period(r)
  pos = _gather_first(x, y, r, axis)
  pos = pos.reshape(pos.shape[:axis] + (g, q.out) + pos.shape[axis + 1 :])
  pos = pos - _along(np.arange(g, dtype=np.int32) * q.size, axis, pos.ndim)
  pos = _numerics.materialize(pos)  # computed once, not once per interval or run
  zero = jnp.zeros((), dx.dtype)

  def tangent(v, q, ax):
    here = _along(np.arange(q.size, dtype=np.int32), ax, v.ndim)
    if q.out <= _CONCAT_FUSE_MAX and not by_runs:
      return _masked_sums(
        v, [lax.slice_in_dim(pos, i, i + 1, axis=ax) == here for i in range(q.out)], ax
      )

    def pick(piece, start, i):
      hit = lax.slice_in_dim(pos, i, i + 1, axis=ax) == lax.slice_in_dim(
        here, start, start + piece.shape[ax], axis=ax
      )
      return _run_sum(jnp.where(hit, piece, zero), ax)

    return _by_runs(pick, v, q, ax)

  return y, _by_period(tangent, dx, r, axis)


# --- argument handling ----------------------------------------------------------------


def _adaptive_shapes(shape: tuple[int, ...], output_size: Any):
  """``(num_batch_dims, in_spatial, out_spatial)`` from ``output_size``."""
  sizes = _fields.check_output_size(output_size)
  if isinstance(sizes, int):
    if len(shape) < 3:
      raise ValueError(
        f'an int output_size means x is (N, *spatial, C) with at least one spatial dim; '
        f'got x of shape {tuple(shape)}; pass a sequence, one entry per spatial dim, '
        f'to pool an unbatched input'
      )
    sizes = (sizes,) * (len(shape) - 2)
  n = len(sizes)
  nb = _geometry.check_rank(shape, n, 'x', what='output_size')
  in_shape = tuple(int(v) for v in shape[nb : nb + n])
  if any(v < 1 for v in in_shape):
    raise ValueError(f'x must have non-empty spatial dims; got shape {tuple(shape)}')
  out_shape = tuple(L if o is None else o for L, o in zip(in_shape, sizes))
  return nb, in_shape, out_shape


def _dim_ranges(in_shape, out_shape) -> list[_Ranges]:
  return [_Ranges.adaptive(L, o) for L, o in zip(in_shape, out_shape)]


def _all_blocks(x_ndim: int, nb: int, ranges: list[_Ranges]) -> tuple[int, ...] | None:
  """Per-axis block sizes of x (1 off the spatial dims) when every dim is a block."""
  ks: list[int] = []
  for r in ranges:
    k = r.block
    if k is None:
      return None
    ks.append(k)
  return (1,) * nb + tuple(ks) + (1,) * (x_ndim - nb - len(ks))


# --- adaptive pooling -----------------------------------------------------------------


def adaptive_avg_pool(
  x: jnp.ndarray,
  output_size: int | Sequence[int | None],
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Adaptive average pooling, PyTorch's ``adaptive_avg_pool{1,2,3}d`` (channel-last).

  .. math:: y_{i} = \frac{1}{|R(i)|} \sum_{p \in R(i)} x_p, \qquad
     R(i) = \prod_d \big[\lfloor i_d L_d / O_d \rfloor,\ \lceil (i_d + 1) L_d / O_d \rceil\big)

  for an input of spatial size ``L`` pooled to output size ``O``. Windows of
  neighbouring bins overlap by one element when ``O`` does not divide ``L``, and
  ``O > L`` (upsampling) is allowed. Bounds are exact integer maths.

  Output size: ``output_size``, per spatial dim; ``None`` keeps that dim.

  Gradient: :math:`\bar x_p = \sum_{i : p \in R(i)} \bar y_i / |R(i)|`, the
  transpose of a gather-free tangent rule (no scatter; ``jvp`` works too). Like
  PyTorch it sums, then divides: a window whose sum leaves the float range
  (``|x|`` near ``3e38 / |R(i)|``) overflows.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions accumulate in f32.
    output_size: a sequence of positive ints or None, one per spatial dim (its
      length says how many dims are pooled), or an int for every spatial dim of
      a batched ``(N, *spatial, C)`` input.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *output_size, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is left out of its bins:
  :math:`y_i = \sum_{p \in R(i)} m_p x_p / \sum_{p \in R(i)} m_p`, and a bin
  with no unmasked position gives 0 with a zero gradient (the pooled mask is
  False there). Both sums are those of the unmasked op, so the same overflow
  bound holds.

  Example:
    >>> x = jnp.arange(5.).reshape(5, 1)
    >>> adaptive_avg_pool(x, (3,))[:, 0]   # windows [0, 2), [1, 4), [3, 5)
    Array([0.5, 2. , 3.5], dtype=float32)
  """
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'adaptive_avg_pool')
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'adaptive_avg_pool', return_mask)
  if valid is not None:
    # The bin means of the data (0 where masked) and of the mask: their ratio is the mean
    # over the unmasked positions (the bin sizes cancel).
    cdt = _numerics.compute_dtype(x.dtype)
    share = adaptive_avg_pool(valid.astype(cdt), output_size)
    any_valid = share > 0
    y = adaptive_avg_pool(_masks.data(x.astype(cdt), valid), output_size)
    y = _masks.zero_where_empty(y / jnp.where(any_valid, share, 1), any_valid).astype(x.dtype)
    return (y, _masks.returned(any_valid, no_channels)) if return_mask else y
  nb, _, out_shape = _adaptive_shapes(x.shape, output_size)
  ranges = _dim_ranges(x.shape[nb : nb + len(out_shape)], out_shape)
  xc = x.astype(_numerics.compute_dtype(x.dtype))
  ks = _all_blocks(x.ndim, nb, ranges)
  if ks is not None:
    return (jnp.mean(_split(xc, ks), axis=_odd_axes(ks))).astype(x.dtype)
  counts = np.ones((), np.int64)
  for d, r in enumerate(ranges):
    axis = nb + d
    k = r.block
    if k == 1:
      pass
    elif k is not None:
      ks1 = _axis_ks(xc.ndim, axis, k)
      xc = jnp.sum(_split(xc, ks1), axis=_odd_axes(ks1))
    else:
      xc = _ranged_sum(xc, r, axis)
    counts = np.multiply.outer(counts, np.subtract(r.ends, r.starts))
  return (xc / counts[..., None].astype(xc.dtype)).astype(x.dtype)


def _max_along(x, r: _Ranges, axis: int, by_runs: bool) -> jnp.ndarray:
  k = r.block
  if k == 1:
    return x
  if k is not None:
    return _block_max(x, _axis_ks(x.ndim, axis, k))
  return _ranged_max(x, r, axis, by_runs)


def _first_along(x, r: _Ranges, axis: int):
  """``(max, position of the first max along axis)`` for one dim, without gradients."""
  k = r.block
  if k == 1:
    return x, lax.broadcasted_iota(jnp.int32, x.shape, axis)
  if k is not None:
    y, first = _block_max_and_first(x, _axis_ks(x.ndim, axis, k))
    return y, first + _along(np.arange(r.out, dtype=np.int32) * k, axis, x.ndim)
  y = _gather_max(x, r, axis)
  return y, _gather_first(x, y, r, axis)


def _max_indices(x, nb: int, ranges: list[_Ranges]) -> jnp.ndarray:
  """Flat (row-major) spatial index of the first maximum of each window, int32."""
  last = len(ranges) - 1  # output_size is non-empty: at least one dim
  x, flat = _first_along(x, ranges[last], nb + last)
  stride = ranges[last].size
  for d in reversed(range(last)):
    axis = nb + d
    x, pos = _first_along(x, ranges[d], axis)
    if ranges[d].block == 1:  # identity dim: nothing moved
      flat = flat + pos * stride
    else:
      flat = pos * stride + jnp.take_along_axis(flat, pos, axis=axis)
    stride *= ranges[d].size
  return flat.astype(jnp.int32)


def adaptive_max_pool(
  x: jnp.ndarray,
  output_size: int | Sequence[int | None],
  return_indices: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Adaptive max pooling, PyTorch's ``adaptive_max_pool{1,2,3}d`` (channel-last).

  .. math:: y_i = \max_{p \in R(i)} x_p

  with the windows ``R(i)`` of :func:`adaptive_avg_pool`. Output size:
  ``output_size`` (``None`` keeps a dim).

  Gradient: :math:`\bar x_p = \sum_{i : p = \mathrm{argmax}_{R(i)}} \bar y_i`, the
  argmax being the first maximum in row-major window order, as PyTorch (a
  window holding NaN routes to its last NaN). The tangent picks the winner's
  ``ẋ`` (a where on its position); reverse mode is its transpose: no scatter, no
  ``SelectAndScatter``.

  Args:
    x: ``(*batch, *spatial, C)``; floats or integers.
    output_size: as :func:`adaptive_avg_pool`.
    return_indices: also return int32 flat indices of each maximum into the
      spatial extent of its (batch, channel) slice, PyTorch's convention, so
      :func:`jaxpool.max_unpool` (given a window and stride that reproduce the
      input size) puts the maxima back.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``y`` of shape ``(*batch, *output_size, C)`` and ``x``'s dtype; with
    ``return_indices`` and/or ``return_mask``, the tuple ``(y, indices, mask)``
    of those asked for.

  Masks: a masked position reads the lowest value and is never the maximum of
  a bin that holds an unmasked one (unless that bin's data are all ``-inf``:
  the first of the tied ``-inf`` wins, masked or not). A bin with no unmasked
  position gives 0 with a zero gradient and index -1.

  Example:
    >>> x = jnp.array([[1.], [5.], [2.], [4.], [3.]])
    >>> y, idx = adaptive_max_pool(x, (2,), return_indices=True)   # [0, 3), [2, 5)
    >>> y[:, 0], idx[:, 0]
    (Array([5., 4.], dtype=float32), Array([1, 3], dtype=int32))
  """
  x = _numerics.as_array(x)
  return_indices = _checks.flag(return_indices, 'return_indices')
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'adaptive_max_pool', return_mask)
  if valid is not None:
    low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else _numerics.lowest(x.dtype)
    filled = _masks.fill(x, valid, low)
    any_valid = adaptive_max_pool(valid.astype(jnp.int8), output_size) > 0
    result = [_masks.zero_where_empty(adaptive_max_pool(filled, output_size), any_valid)]
    if return_indices:
      index = _max_indices_of(lax.stop_gradient(filled), output_size)
      result.append(jnp.where(any_valid, index, jnp.int32(-1)))
    if return_mask:
      result.append(_masks.returned(any_valid, no_channels))
    return result[0] if len(result) == 1 else tuple(result)
  nb, _, out_shape = _adaptive_shapes(x.shape, output_size)
  ranges = _dim_ranges(x.shape[nb : nb + len(out_shape)], out_shape)
  ks = _all_blocks(x.ndim, nb, ranges)
  if ks is not None:
    y = _block_max(x, ks)
  else:
    y = x
    seen = False  # a dim pooled after another: by runs (see _ranged_max)
    for d in reversed(range(len(ranges))):  # last dim first: row-major first maximum
      y = _max_along(y, ranges[d], nb + d, seen)
      seen = seen or ranges[d].block != 1
  if not return_indices:
    return y
  return y, _max_indices(lax.stop_gradient(x), nb, ranges)


def _max_indices_of(x: jnp.ndarray, output_size) -> jnp.ndarray:
  """:func:`adaptive_max_pool`'s indices alone."""
  nb, _, out_shape = _adaptive_shapes(x.shape, output_size)
  return _max_indices(x, nb, _dim_ranges(x.shape[nb : nb + len(out_shape)], out_shape))


# --- global and channel-wise pooling --------------------------------------------------


def _soft_reduce(x, axes, temperature):
  """``sum softmax(x / T) * x`` over ``axes`` (keepdims), max-subtracted; -inf taps weigh 0."""
  # Shift in x, not in x / T: x - max(x) <= 0 exactly, whereas XLA may evaluate x / T
  # differently in two fusions, and at |x| ~ 1e30 one ulp of that difference overflows exp.
  m = lax.stop_gradient(jnp.max(x, axis=axes, keepdims=True))
  # A +inf entry takes all the weight (the limit of the softmax): the result is +inf. Those
  # reductions compute on zeros instead, so no inf - inf reaches the value or the gradient.
  top = m == jnp.inf
  m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype))
  xs = jnp.where(top, jnp.zeros((), x.dtype), x)
  e = jnp.exp((xs - m) / temperature)
  total = jnp.sum(e, axis=axes, keepdims=True)
  live = total > 0
  # normalised weights first: a sum of w x with sum w = 1 cannot overflow, one of e x can
  w = e / jnp.where(live, total, jnp.ones((), total.dtype))
  y = jnp.sum(w * jnp.where(e > 0, xs, jnp.zeros((), x.dtype)), axis=axes, keepdims=True)
  y = jnp.where(live, y, _numerics.extremum(x, axes, keepdims=True))
  return jnp.where(top, jnp.asarray(jnp.inf, y.dtype), y)


def _masked_soft_reduce(x, valid, axes, temperature):
  """:func:`_soft_reduce` over the unmasked entries; 0 where there is none.

  Masked entries read the maximum (or 0), so every ``exp`` is of a finite
  difference (the double ``where``), then weigh 0.
  """
  low = jnp.asarray(-jnp.inf, x.dtype)
  xv = jnp.where(valid, x, low)
  m = lax.stop_gradient(jnp.max(xv, axis=axes, keepdims=True))
  top = m == jnp.inf
  m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype))
  xs = jnp.where(top, jnp.zeros((), x.dtype), jnp.where(valid, x, m))
  e = jnp.where(valid, jnp.exp((xs - m) / temperature), jnp.zeros((), x.dtype))
  total = jnp.sum(e, axis=axes, keepdims=True)
  live = total > 0
  w = e / jnp.where(live, total, jnp.ones((), total.dtype))
  y = jnp.sum(w * jnp.where(e > 0, xs, jnp.zeros((), x.dtype)), axis=axes, keepdims=True)
  y = jnp.where(live, y, _numerics.extremum(xv, axes, keepdims=True))
  y = jnp.where(top, jnp.asarray(jnp.inf, y.dtype), y)
  return _masks.zero_where_empty(y, jnp.any(valid, axis=axes, keepdims=True))


def _masked_mean(x, valid, axes):
  """The mean of the unmasked entries over ``axes`` (keepdims), summed at the power-of-two
  scale ``<= 1 / count`` so that it cannot overflow; 0 where there is none."""
  size = math.prod(x.shape[a] for a in axes)
  scale = 2.0 ** -max(math.ceil(math.log2(size)), 0)
  count = jnp.sum(valid.astype(x.dtype), axis=axes, keepdims=True)
  total = jnp.sum(jnp.where(valid, x * scale, jnp.zeros((), x.dtype)), axis=axes, keepdims=True)
  return total / (jnp.maximum(count, 1) * scale)


def _masked_max(x, valid):
  """The first maximum of the unmasked entries over every spatial axis (keepdims); 0 where
  there is none."""
  y = _max_reduce(jnp.where(valid, x, jnp.asarray(_numerics.lowest(x.dtype), x.dtype)), 1)
  return _masks.zero_where_empty(y, jnp.any(valid, axis=tuple(range(1, x.ndim - 1)), keepdims=True))


def _power(ratio, p, static_int: bool):
  return lax.integer_pow(ratio, int(p)) if static_int else jnp.power(ratio, p)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def _power_mean(x, p, scale, axes, static_p, mean: bool):
  """``(w sum x^p)^(1/p)`` over ``axes`` (keepdims), ``w = 1/S`` if ``mean`` else 1.

  ``scale`` must equal ``max |x|`` over ``axes`` (the caller computes it from its raw
  input, which lets XLA fuse the clamp of GeM into both passes; the value does not
  depend on it, so it gets no gradient).
  Evaluated as ``s sign(T) |T|^(1/p)`` with ``s = max |x|``, ``r = x / s``,
  ``T = w sum r^p`` (``|r| <= 1``): no overflow or underflow at any magnitude. An
  all-zero reduction gives 0; an odd integer ``p`` with ``T < 0`` the real root.
  """
  return _power_mean_parts(x, p, scale, axes, static_p, mean)[0]


def _power_mean_parts(x, p_arr, scale, axes, static_p, mean):
  static_int = static_p is not None and float(static_p).is_integer()
  p = p_arr if static_p is None else static_p
  down, up = _numerics.scale_normalizer(scale)
  r = down(x)
  reduce = jnp.mean if mean else jnp.sum
  total = reduce(_power(r, p, static_int), axis=axes, keepdims=True)
  nonzero = (total != 0) | jnp.isinf(scale)  # infinite entries: up(0) = NaN is inf - inf
  magnitude = jnp.where(nonzero, jnp.abs(total), jnp.ones((), total.dtype))
  y = jnp.where(
    nonzero, up(jnp.sign(total) * jnp.power(magnitude, 1.0 / p)), jnp.zeros((), total.dtype)
  )
  return y, (p, r, total, nonzero, magnitude, static_int)


@_power_mean.defjvp
def _power_mean_jvp(axes, static_p, mean, primals, tangents):
  # dy/dx_i = w r_i^(p-1) |T|^(1/p - 1): degree 0 in x, written without s so the backward
  # cannot overflow; 0 where T == 0 (PyTorch's LPPool rule).
  # dy/dp = y (w sum(r^p ln|r|) / (p T) - ln|T| / p^2).
  x, p_arr, scale = primals
  dx, dp, _ = tangents
  y, (p, r, total, nonzero, magnitude, static_int) = _power_mean_parts(
    x, p_arr, scale, axes, static_p, mean
  )
  w = 1.0 / math.prod(x.shape[a] for a in axes) if mean else 1.0
  rp1 = lax.integer_pow(r, int(p) - 1) if static_int else jnp.power(r, p - 1)
  coef = jnp.where(nonzero, w * jnp.power(magnitude, 1.0 / p - 1), jnp.zeros((), r.dtype))
  dy = jnp.sum(coef * rp1 * dx, axis=axes, keepdims=True)
  if static_p is None:
    log_r = jnp.log(jnp.where(r != 0, jnp.abs(r), jnp.ones((), r.dtype)))
    weighted = w * jnp.sum(jnp.power(r, p) * log_r, axis=axes, keepdims=True)
    safe_total = jnp.where(nonzero, total, jnp.ones((), total.dtype))
    dlog = weighted / (p * safe_total) - jnp.log(magnitude) / p**2
    dy = dy + y * dlog * dp
  return y, dy


def _lp_reduce(x, axes, p):
  """``(sum x^p)^(1/p)`` over ``axes`` (keepdims): LPPool with the whole extent as window."""
  if isinstance(p, float) and math.isinf(p):
    return _max_reduce(jnp.abs(x), 1)
  static_p = p if isinstance(p, float) else None
  scale = lax.stop_gradient(jnp.max(jnp.abs(x), axis=axes, keepdims=True))
  if static_p is not None:
    return _power_mean(x, jnp.asarray(p, x.dtype), scale, axes, static_p, False)
  # A traced p may be inf at run time: the static path's max |x| (first maximum), so
  # that p's value, not its type, decides the result; the finite branch sees p = 1 there.
  p = jnp.asarray(p, x.dtype)
  finite = jnp.isfinite(p)
  y = _power_mean(x, jnp.where(finite, p, jnp.ones((), p.dtype)), scale, axes, None, False)
  return jnp.where(finite, y, _max_reduce(jnp.abs(x), 1))


def _gem_reduce(x, axes, p, eps):
  """GeM over ``axes`` (keepdims): ``(mean clamp(x, eps)^p)^(1/p)``."""
  xc = jnp.maximum(x, eps)
  static_p = p if isinstance(p, float) else None
  scale = lax.stop_gradient(jnp.maximum(jnp.max(x, axis=axes, keepdims=True), eps))
  return _power_mean(xc, jnp.asarray(p, xc.dtype), scale, axes, static_p, True)


def _max_reduce(x, lead: int) -> jnp.ndarray:
  """Max over all axes from ``lead`` to the last but one, ties to the first (row-major)."""
  rows = math.prod(x.shape[:lead])
  size = math.prod(x.shape[lead:-1])
  y = _block_max(x.reshape(rows, size, x.shape[-1]), (1, size, 1))
  return y.reshape(x.shape[:lead] + (1,) * (x.ndim - lead - 1) + x.shape[-1:])


def global_pool(
  x: jnp.ndarray,
  method: str = 'avg',
  keepdims: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  **kw,
) -> jnp.ndarray:
  r"""Global pooling: reduces every spatial axis, ``(N, *spatial, C) -> (N, C)``.

  Over the ``S`` spatial positions ``s`` of each (example, channel):

  * ``'avg'``: :math:`\frac1S \sum_s x_s`; ``'max'``: :math:`\max_s x_s` (gradient to
    the first maximum in row-major order, as ``adaptive_max_pool(x, 1)``).
  * ``'soft'``: :math:`\sum_s \mathrm{softmax}_s(x / T)\, x_s` (kw ``temperature=1``;
    evaluated with the maximum subtracted, so no overflow; -inf entries weigh 0).
  * ``'lp'``: :math:`(\sum_s x_s^p)^{1/p}` (kw ``p=2``; a sum, as PyTorch's LPPool with
    the whole extent as window; evaluated scaled by :math:`\max|x|`).
  * ``'gem'``: generalized mean (Radenović et al. 2018)
    :math:`\big(\frac1S \sum_s \max(x_s, \epsilon)^p\big)^{1/p}` (kw ``p=3``, ``eps=1e-6``;
    ``p = 1`` is average, ``p -> inf`` max pooling; evaluated scaled by its maximum).
  * ``'avgmax'``: :math:`(\mathrm{avg} + \max) / 2`; ``'catavgmax'``: ``[avg, max]``
    concatenated on the channel axis (``2C`` channels, avg first).

  ``p`` and ``temperature`` may be traced arrays of shape ``()`` or ``(C,)``
  (learnable; gradients by autodiff, e.g. :math:`\partial y / \partial p` for GeM).

  Args:
    x: ``(N, *spatial, C)`` with at least one spatial dim; floats (``'max'`` also
      takes integers). Half precisions are computed in f32.
    method: one of the names above.
    keepdims: keep the spatial axes as size 1: ``(N, 1, ..., 1, C)``.
    mask: bool ``(N, *spatial)`` or broadcastable to ``x``: the positions that are
      data (a runtime value; e.g. the real length of each padded sequence). Every
      method then reduces over the unmasked positions only ('avg' divides by
      their count, 'max' never picks a masked one, 'gem' averages over them); an
      example (or channel) with none gives 0 with a zero gradient.
    **kw: the method's keyword arguments (others raise ``ValueError``).

  Returns:
    ``(N, C)`` (``(N, 2C)`` for ``'catavgmax'``) in ``x``'s dtype.

  Example:
    >>> x = jnp.array([[[1.], [2.], [3.], [6.]]])          # (N=1, L=4, C=1)
    >>> global_pool(x, 'avg'), global_pool(x, 'max')
    (Array([[3.]], dtype=float32), Array([[6.]], dtype=float32))
    >>> global_pool(x, 'gem', p=1.0)
    Array([[3.]], dtype=float32)
    >>> global_pool(x, 'avg', mask=jnp.array([[True, True, False, False]]))
    Array([[1.5]], dtype=float32)
  """
  _fields.check_global_kw(method, kw)
  x = _numerics.as_array(x)
  if x.ndim < 3:
    raise ValueError(
      f'x must have shape (N, *spatial, C) with at least one spatial dim (rank >= 3); '
      f'got shape {x.shape} (rank {x.ndim})'
    )
  if any(v < 1 for v in x.shape[1:-1]):
    raise ValueError(f'x must have non-empty spatial dims; got shape {x.shape}')
  keepdims = _checks.flag(keepdims, 'keepdims')
  if method != 'max':
    _numerics.check_float(x, f'global_pool(method={method!r})')
  axes = tuple(range(1, x.ndim - 1))
  channels = x.shape[-1]
  xc = x.astype(_numerics.compute_dtype(x.dtype))
  checked = _masks.check(mask, x, 'global_pool')
  if checked is not None:
    y = _masked_global(x, xc, checked[0], method, kw, axes).astype(x.dtype)
    return y if keepdims else y.reshape(x.shape[0], y.shape[-1])
  if method == 'avg':
    y = jnp.mean(xc, axis=axes, keepdims=True)
  elif method == 'max':
    y = _max_reduce(x, 1)
  elif method == 'soft':
    t = _fields.positive('temperature', kw.get('temperature', 1.0), channels)
    y = _soft_reduce(xc, axes, t)
  elif method == 'lp':
    p = _fields.positive('p', kw.get('p', 2.0), channels)
    y = _lp_reduce(xc, axes, p)
  elif method == 'gem':
    p = _fields.positive('p', kw.get('p', 3.0), channels)
    eps = _fields.positive('eps', kw.get('eps', 1e-6), channels)
    y = _gem_reduce(xc, axes, p, eps)
  else:
    avg = jnp.mean(xc, axis=axes, keepdims=True)
    mx = _max_reduce(xc, 1)
    y = (avg + mx) / 2 if method == 'avgmax' else jnp.concatenate([avg, mx], axis=-1)
  y = y.astype(x.dtype)
  return y if keepdims else y.reshape(x.shape[0], y.shape[-1])


def _masked_global(x, xc, valid, method: str, kw: dict, axes) -> jnp.ndarray:
  """:func:`global_pool` over the unmasked positions (keepdims, in the compute dtype).

  Masked entries are replaced before any nonlinearity: by 0 in sums of powers
  (they add nothing), by the lowest value for the maximum (never picked), by
  the maximum in the softmax (weight zeroed after).
  """
  channels = x.shape[-1]
  if method == 'avg':
    return _masked_mean(xc, valid, axes)
  if method == 'max':
    return _masked_max(x, valid)
  if method == 'soft':
    return _masked_soft_reduce(
      xc, valid, axes, _fields.positive('temperature', kw.get('temperature', 1.0), channels)
    )
  if method == 'lp':
    return _lp_reduce(
      _masks.data(xc, valid), axes, _fields.positive('p', kw.get('p', 2.0), channels)
    )
  if method == 'gem':
    p = _fields.positive('p', kw.get('p', 3.0), channels)
    eps = _fields.positive('eps', kw.get('eps', 1e-6), channels)
    # (mean_valid clamp(x)^p)^(1/p) = (sum_valid clamp(x)^p)^(1/p) * count^(-1/p)
    xg = _masks.data(jnp.maximum(xc, eps), valid)
    static_p = p if isinstance(p, float) else None
    scale = lax.stop_gradient(jnp.max(xg, axis=axes, keepdims=True))
    total = _power_mean(xg, jnp.asarray(p, xg.dtype), scale, axes, static_p, False)
    count = jnp.sum(valid.astype(xc.dtype), axis=axes, keepdims=True)
    return total * jnp.power(jnp.maximum(count, 1), -1.0 / jnp.asarray(p, xc.dtype))
  avg, mx = _masked_mean(xc, valid, axes), _masked_max(xc, valid)
  return (avg + mx) / 2 if method == 'avgmax' else jnp.concatenate([avg, mx], axis=-1)


CHANNEL_METHODS = ('avg', 'max', 'soft')


def channel_pool(x: jnp.ndarray, method: str = 'max', keepdims: bool = True) -> jnp.ndarray:
  r"""Pooling across channels: ``(..., C) -> (..., 1)`` (e.g. CBAM's spatial attention input).

  ``'max'``: :math:`\max_c x_c` (gradient to the first maximum); ``'avg'``:
  :math:`\frac1C \sum_c x_c`; ``'soft'``: :math:`\sum_c \mathrm{softmax}_c(x)\, x_c`
  (max-subtracted).

  Args:
    x: ``(..., C)``, rank >= 1, ``C >= 1`` (zero channels raise ``ValueError``: the
      reduction would be undefined); floats (``'max'`` also takes integers).
    method: ``'max'``, ``'avg'`` or ``'soft'``.
    keepdims: keep the channel axis as size 1; otherwise ``(...)``.

  Returns:
    ``(..., 1)`` (or ``(...)``) in ``x``'s dtype.

  Example:
    >>> x = jnp.array([[1., 4., 1.], [2., 0., 4.]])
    >>> channel_pool(x, 'max')[:, 0], channel_pool(x, 'avg', keepdims=False)
    (Array([4., 4.], dtype=float32), Array([2., 2.], dtype=float32))
  """
  method = _checks.choice(method, 'method', CHANNEL_METHODS)
  x = _numerics.as_array(x)
  if x.ndim < 1:
    raise ValueError(f'x must have a channel axis (rank >= 1); got a scalar of shape {x.shape}')
  if x.shape[-1] == 0:
    raise ValueError(
      f'x must have at least one channel: channel_pool reduces over them and a {method} of '
      f'none is undefined; got shape {x.shape}'
    )
  keepdims = _checks.flag(keepdims, 'keepdims')
  if method == 'max':
    rows = math.prod(x.shape[:-1])
    y = _block_max(x.reshape(rows, x.shape[-1]), (1, x.shape[-1])).reshape(*x.shape[:-1], 1)
  else:
    _numerics.check_float(x, f'channel_pool(method={method!r})')
    xc = x.astype(_numerics.compute_dtype(x.dtype))
    y = (
      jnp.mean(xc, axis=-1, keepdims=True) if method == 'avg' else _soft_reduce(xc, (-1,), 1.0)
    ).astype(x.dtype)
  return y if keepdims else y[..., 0]


# --- spatial pyramid ------------------------------------------------------------------


def spatial_pyramid_pool(
  x: jnp.ndarray,
  levels: Sequence[int | Sequence[int]] = (1, 2, 4),
  method: str = 'max',
  *,
  mask: jnp.ndarray | None = None,
) -> jnp.ndarray:
  r"""Spatial pyramid pooling (He et al., ECCV 2014): a fixed-length vector from any size.

  Each level ``l`` pools ``x`` adaptively to ``l`` bins per spatial dim
  (:func:`adaptive_max_pool` or :func:`adaptive_avg_pool`, so sizes below ``l``
  work too) and flattens the result; the levels are concatenated.

  Output: ``(N, C * sum(l ** d))`` for ``d`` spatial dims. **Order**: level by
  level as given; within a level, bins in row-major order with the channel
  fastest, i.e. feature ``offset_level + bin * C + c`` — the channel-last
  flattening. (Flattening a PyTorch NCHW level puts the channel slowest:
  ``c * l**d + bin``.)

  Gradient: that of the adaptive pools (first maximum / bin averages), no scatter.

  Args:
    x: ``(N, *spatial, C)``, at least one spatial dim.
    levels: positive ints (bins per dim), or per-dim sequences of ints for
      non-square grids (a level ``(a, b)`` contributes ``a * b`` bins).
    method: ``'max'`` or ``'avg'``.
    mask: bool, ``(N, *spatial)`` or broadcastable to ``x``: the positions that
      are data (a runtime value), passed to every level's adaptive pool: a bin
      with no unmasked position gives 0 (an image smaller than its padded grid
      pools its own extent only).

  Returns:
    ``(N, C * total_bins)`` in ``x``'s dtype.

  Example:
    >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
    >>> spatial_pyramid_pool(x, levels=(1, 2))
    Array([[15.,  5.,  7., 13., 15.]], dtype=float32)
  """
  levels = _fields.check_pyramid_fields(levels, method)
  x = _numerics.as_array(x)
  if x.ndim < 3:
    raise ValueError(
      f'x must have shape (N, *spatial, C) with at least one spatial dim (rank >= 3); '
      f'got shape {x.shape} (rank {x.ndim})'
    )
  if any(v < 1 for v in x.shape[1:-1]):
    raise ValueError(f'x must have non-empty spatial dims; got shape {x.shape}')
  n = x.ndim - 2
  sizes = []
  for level in levels:
    if _geometry.is_int(level):
      sizes.append((int(level),) * n)
    else:
      sizes.append(_geometry.int_tuple(level, n, 'levels entry'))
  pool = adaptive_max_pool if method == 'max' else adaptive_avg_pool
  if mask is not None:
    _masks.check(mask, x, 'spatial_pyramid_pool')  # named for this op
    pool = functools.partial(pool, mask=mask)
  # explicit sizes: a reshape to -1 cannot infer a dim of an empty batch
  return jnp.concatenate(
    [pool(x, s).reshape(x.shape[0], math.prod(s) * x.shape[-1]) for s in sizes], axis=-1
  )
