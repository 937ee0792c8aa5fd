"""Window reductions with their derivatives, shared by every family of ops; the taps they
reduce are read by :mod:`jaxpool._windows`.

* :func:`separable_passes`, :func:`separable_pays`, :func:`in_halves`: a separable
  reduction (max, min, sum) as one 1-d pass per spatial dim, innermost first, and the
  fusion boundary between passes.
* :func:`winning_tap`: PyTorch's winner (first extremum, a NaN window's last NaN) by
  reductions over a tap axis.
* :func:`extremum_pool`: window max/min on ``lax.reduce_window``; its derivative
  is a ``jax.custom_jvp`` whose tangent is the tangent of each window's winning
  tap (first extremum in row-major window order, as PyTorch; a NaN window's
  last NaN). The tangent is linear, so JAX derives reverse mode by transposing
  it: each cotangent goes to its winning tap by selects and shifted pads, with
  no ``SelectAndScatter`` and no scatter, and it is defined with dilation
  (where ``lax``'s max-pool gradient raises). :func:`extremum_and_route`
  and :func:`route_choice` expose the winning tap (``return_indices``).
* :func:`sum_pool`, :func:`window_mean`: window sums and overflow-free means
  over the valid taps (one reduce-window per dim where :func:`sum_separable`),
  differentiated through the same window taps.
* :func:`valid_max`: the window max with empty windows (dilation only) at 0.
* :func:`scale_exponent`: ``c`` with ``2**c >= window size``, the exact
  power-of-two scale that keeps window sums of finite values finite.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _masks, _numerics, _windows
from jaxpool._geometry import Geometry

# --- per-dim passes: a separable reduction as one 1-d pass per spatial dim -----------------


def axis_geometry(geom: Geometry, axis: int, in_shape) -> Geometry:
  """``geom``'s window along ``axis`` alone, over an input of spatial shape ``in_shape``.

  Separable reductions (max, min, sums) apply one such pass per dim; ``in_shape``
  is the shape left by the passes before (other dims already reduced or not).
  """
  ident = lambda values, one: tuple(v if a == axis else one for a, v in enumerate(values))
  return Geometry(
    tuple(in_shape),
    tuple(geom.out_shape[a] if a == axis else v for a, v in enumerate(in_shape)),
    ident(geom.window, 1),
    ident(geom.strides, 1),
    ident(geom.dilation, 1),
    ident(geom.padding, (0, 0)),
  )


def separable_passes(geom: Geometry) -> list[tuple[int, Geometry]]:
  """``(dim, axis_geometry)`` for each dim that does something, innermost dim first.

  Innermost first, so that ties resolved pass by pass follow row-major window
  order (an outer pass picks the first row, the inner pass the first tap in it).
  """
  passes, shape = [], list(geom.in_shape)
  for axis in reversed(range(geom.ndim)):
    g = axis_geometry(geom, axis, shape)
    if g.window_size == 1 and g.strides[axis] == 1 and g.padding[axis] == (0, 0):
      continue
    passes.append((axis, g))
    shape = list(g.out_shape)
  return passes


def in_halves(
  fn: Callable,
  arrays: tuple,
  geom: Geometry,
  num_batch: int,
  along: int | None = None,
  avoid: int | None = None,
  whole: Callable | None = None,
) -> jnp.ndarray:
  """``fn(*arrays, geom)``, computed on two halves of the arrays and concatenated.

  A fusion boundary whose transpose is one too. XLA:CPU fuses an elementwise
  producer into a consumer that reads it at up to 15 shifted positions, computing it
  again per read; a concatenate (like a pad) it computes once, into a buffer of its
  own, and JAX transposes the split that feeds the halves to a concatenate. So a
  pass's taps read a previous pass's result (or cotangent) once, not its whole
  fused chain per tap, at the cost of one intermediate of the result's size.

  The cut is along an axis that ``geom`` does not pool, with at least two entries
  and a static extent:
  spatial dim ``along`` (where the consumer reads at shifted positions: XLA pushes a
  slice across a concatenate along another axis into its halves, and the boundary
  is gone), else channels, else a batch dim, else another spatial dim, never spatial
  dim ``avoid`` (along which the result is split again: the split would meet the
  concatenate and cancel). ``arrays`` are ``geom``'s input and per-window arrays,
  or broadcastable ones with one entry there; None passes through. Where no axis
  can be cut, ``fn`` runs on all of ``arrays`` and its result goes through ``whole``.
  """
  first = arrays[0]
  last = first.ndim - 1
  trivial = [
    a
    for a in range(geom.ndim)
    if (geom.window[a], geom.strides[a], geom.padding[a]) == (1, 1, (0, 0)) and a != avoid
  ]
  spatial = [num_batch + a for a in trivial]
  ahead = [num_batch + along] if along in trivial else []
  # a symbolic extent (a batch dim under jax.export's shape polymorphism) is never cut:
  # its halves would have no static size
  sized = lambda a: isinstance(first.shape[a], int) and first.shape[a] >= 2
  axes = [a for a in (*ahead, last, *range(num_batch), *spatial) if sized(a)]
  if not axes:
    out = fn(*arrays, geom)
    return out if whole is None else whole(out)
  cut = axes[0]
  n = first.shape[cut]
  sizes = [n // 2, n - n // 2]

  def halves(a):
    if a is None or np.ndim(a) == 0 or a.shape[cut] == 1:
      return (a, a)
    return lax.split(a, sizes, axis=cut)

  def part_geometry(size: int) -> Geometry:
    if not num_batch <= cut < last:
      return geom
    dim = cut - num_batch  # a spatial dim with a trivial window: its extent is halved
    halve = lambda shape: tuple(size if a == dim else v for a, v in enumerate(shape))
    return dataclasses.replace(geom, in_shape=halve(geom.in_shape), out_shape=halve(geom.out_shape))

  parts = [halves(a) for a in arrays]
  outs = [fn(*(p[i] for p in parts), part_geometry(size)) for i, size in enumerate(sizes)]
  return lax.concatenate(outs, cut)


def direct_pass(g: Geometry) -> bool:
  """Whether a per-dim pass reads unrolled taps at unit stride: taps that are slices of one
  padded copy of its input, or each its own pad of it (:func:`window_taps`' ``direct``).
  Strided passes read stride phases, stacked ones skewed copies."""
  return _windows.unrolls(g) and all(s == 1 for s in g.strides)


def separable_pays(geom: Geometry) -> bool:
  """Whether reducing one dim at a time beats one pass over the whole window.

  Always beyond 25 taps (an unrolled pass's HLO grows with the window); below,
  when it at least halves the taps visited (``K * outputs`` against the sum over
  the passes): true for overlapping windows (5x5 at stride 1: 10 visits per
  output instead of 25), false for tiling ones (4x4 at stride 4), where the
  passes only add intermediate arrays.
  """
  if _windows.unrolls(geom):
    return False
  if geom.window_size > 25:
    return True
  full = geom.window_size * int(np.prod(geom.out_shape))
  return (
    2 * sum(g.window_size * int(np.prod(g.out_shape)) for _, g in separable_passes(geom)) <= full
  )


# --- the winning tap: PyTorch's tie and NaN rule ---------------------------------------------


def winning_tap(
  values: jnp.ndarray, best: jnp.ndarray, iota, axis, none: int, valid=None
) -> jnp.ndarray:
  """PyTorch's winning position per window, by reductions over ``axis`` (no per-tap code).

  The last NaN among ``values`` if there is one, else the first entry equal to
  ``best`` (the window's extremum, broadcastable against ``values``), else
  ``none``. ``iota`` numbers the positions along ``axis`` (broadcastable);
  ``valid`` masks out padding. Ties and NaN as PyTorch's pooling kernels.
  """
  dtype = iota.dtype
  first = first_tap(values, best, iota, axis, none, valid)
  if not jnp.issubdtype(values.dtype, jnp.floating):
    return first
  nan = jnp.isnan(values) if valid is None else jnp.isnan(values) & valid
  last_nan = jnp.max(jnp.where(nan, iota, jnp.asarray(-1, dtype)), axis=axis)
  return jnp.where(last_nan >= 0, last_nan, first)


def first_tap(values: jnp.ndarray, best: jnp.ndarray, iota, axis, none: int, valid=None):
  """:func:`winning_tap` for ``values`` known to hold no NaN: the first entry equal to
  ``best``, else ``none`` (one reduction, not two)."""
  hit = values == best
  if valid is not None:
    hit = hit & valid
  return jnp.min(jnp.where(hit, iota, jnp.asarray(none, iota.dtype)), axis=axis)


# --- window max and min, with the route to the winner ----------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2, 3))  # one dispatch when called eagerly
def extremum_forward(x: jnp.ndarray, geom: Geometry, kind: str, by_taps: bool = True):
  """Window max/min: over the whole window, or one pass per dim where :func:`separable_pays`
  (the extremum is separable; XLA:CPU's cost per output grows with the taps it visits, the
  sum of the sides instead of their product), and for overlapping windows that are not
  short and strided (:func:`extremum_separable`): XLA:CPU's reduce-window over a 2-d window
  costs several times more per tap than over a 1-d one (16x56x56x64 f32, forward: 3x3/s1/p1
  8.6 -> 2.6 ms, 4x4/s2/p1 4.7 -> 1.7 ms). NaN in a window gives NaN.

  A pass whose windows are strided and short (at most 9 taps, stride above 1 wherever
  the window is) is an elementwise max of its taps: faster than ``lax.reduce_window`` on
  XLA:CPU (2x2: 0.16 against 0.30 ms at 16x56x56x64). Other passes are a
  ``lax.reduce_window``: XLA's own max when the input is finite (:func:`_numerics.all_finite`),
  which drops NaN on large inputs, else the NaN-keeping :func:`_numerics.extremum_op`
  (1.4-1.6x slower there). ``by_taps=False``: every pass a ``lax.reduce_window``, for a
  caller that reads the same taps for something else (XLA:CPU fuses the two tap reads
  badly: gated_pool's forward 2x slower).
  """
  init = _numerics.extremum_identity(kind, x.dtype)
  pair = jnp.maximum if kind == 'max' else jnp.minimum
  passes = separable_passes(geom) if extremum_separable(geom) else [(None, geom)]

  def run(op):
    y = x
    for _, g in passes:
      if by_taps and _short_and_strided(g):
        y = functools.reduce(pair, _windows.window_taps(y, g, init))
      else:
        y = lax.reduce_window(y, jnp.asarray(init, y.dtype), op, *_windows.reduce_window_args(y, g))
    return y

  plain = lax.max if kind == 'max' else lax.min
  if not jnp.issubdtype(x.dtype, jnp.floating) or (
    by_taps and all(_short_and_strided(g) for _, g in passes)
  ):
    return run(plain)  # no NaN, or elementwise maxima only (they keep NaN)
  keep = _numerics.extremum_op(kind, x.dtype)
  return _numerics.when_finite(x, lambda: run(plain), lambda: run(keep))


def extremum_separable(geom: Geometry) -> bool:
  """Whether :func:`extremum_forward` reduces one dim at a time: where :func:`separable_pays`,
  and for windows of two or more dims that overlap (longer than their stride in a dim)
  unless they are short and strided (an elementwise max of taps is faster there)."""
  overlaps = any(s < e for e, s in zip(geom.extent, geom.strides))
  return separable_pays(geom) or (
    overlaps and len(separable_passes(geom)) > 1 and not _short_and_strided(geom)
  )


def _short_and_strided(geom: Geometry) -> bool:
  return math.prod(geom.window) <= 9 and all(
    s > 1 for k, s in zip(geom.window, geom.strides) if k > 1
  )


def _extremum_scan(
  x, geom: Geometry, kind: str, valid=None, direct: bool = False, tap_fill=None
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Each window's extremum and which tap (row-major number) holds it: PyTorch's scan.

  PyTorch's kernels replace the running extremum by a tap that is strictly
  better or NaN: ties go to the first extremum, a NaN window to its last NaN.
  Padded taps never win; a window whose valid taps all equal the padding value
  (e.g. all -inf) picks its first valid tap. Windows with no valid tap get
  ``window_size`` (routes nowhere) and the padding value. One fused pass over
  the taps, unrolled (used for windows where :func:`separable_pays` is false).
  ``valid`` (a runtime bool mask broadcastable to ``x``) marks more taps as padding.
  """
  fill = _numerics.extremum_identity(kind, x.dtype)
  better = lax.gt if kind == 'max' else lax.lt
  is_float = jnp.issubdtype(x.dtype, jnp.floating)
  unset = geom.window_size
  taps = _windows.Taps.read(
    x, geom, fill if tap_fill is None else tap_fill, stacked=False, direct=direct
  )
  best = jnp.full(taps.data[0].shape, fill, x.dtype)
  choice = jnp.full(best.shape, unset, _windows.choice_dtype(geom))
  runtime = [None] * geom.window_size
  if valid is not None:
    runtime = list(_windows.Taps.read(valid, geom, False, stacked=False).data)
  for i, (tap, mask, v) in enumerate(zip(taps.data, taps.tap_masks(), runtime)):
    take = better(tap, best) | (choice == unset)
    if is_float:
      take = take | jnp.isnan(tap)
    if mask is not None:
      take = take & mask
    if v is not None:
      take = take & v
    best = jnp.where(take, tap, best)
    choice = jnp.where(take, jnp.asarray(i, choice.dtype), choice)
  return best, choice


def _stacked_extremum(
  taps: _windows.Taps, kind: str, runtime: jnp.ndarray | None = None
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """:func:`_extremum_scan`'s result from stacked taps, by reductions over the tap axis.

  The extremum over the valid taps (NaN if any is NaN), then the tap number:
  the last NaN if there is one, else the first valid tap equal to the extremum,
  else (no valid tap) ``K``. Whole-array ops: the HLO does not grow with ``K``.
  ``runtime``: stacked taps of a runtime mask, which marks more taps as padding.
  """
  data = taps.data
  valid: typing.Any = _windows.stacked_tap_masks(taps.geom, taps.num_batch)
  if runtime is not None:
    valid = runtime if valid is None else valid & runtime
  k = data.shape[0]
  fill = _numerics.extremum_identity(kind, data.dtype)
  if valid is not None:
    data = jnp.where(valid, data, fill)
  best = _numerics.stacked_extremum(data, kind)
  iota = lax.broadcasted_iota(_windows.choice_dtype(taps.geom), data.shape, 0)
  return best, winning_tap(data, best[None], iota, 0, k, valid)


# A route: the window's winner as picks, each (dim or None for the whole window,
# geometry, tap number per window, whether the taps are stacked).
Route = list[tuple[int | None, Geometry, jnp.ndarray, bool]]


def _scan_pass(
  x, g: Geometry, kind: str, valid, before: int | None, after: int | None
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """One unrolled per-dim pass of :func:`extremum_and_route`: :func:`_extremum_scan` over its taps.

  A unit-stride pass (:func:`direct_pass`) reads each tap as its own
  pad of ``x`` and computes its choice into a buffer of its own
  (:func:`in_halves`: the transposed route reads it at every tap, split
  along the previous pass's dim ``before``). ``after``: the next pass's dim, given where
  that pass is unit-stride too: the extremum is then computed in halves as well (the
  next pass reads it at every tap, without a padded copy). The extremum and the choice
  are separate scans over separate taps: a tap's pad fuses only where it has one user.
  The choice's taps read 0 as padding, not the extremum's fill, so that XLA does not
  merge the two (a padded tap never wins: any fill serves).
  """
  direct = direct_pass(g)
  fill = _numerics.extremum_identity(kind, x.dtype)

  def scan(a, v, g, tap_fill, out):
    return _extremum_scan(a, g, kind, v, direct=direct, tap_fill=tap_fill)[out]

  nb = x.ndim - g.ndim - 1
  if direct:
    choice = in_halves(
      functools.partial(scan, tap_fill=0, out=1),
      (x, valid),
      g,
      nb,
      avoid=before,
      whole=_numerics.materialize,
    )
  else:
    choice = scan(x, valid, g, fill, 1)
  if after is None:
    return scan(x, valid, g, fill, 0), choice
  held = functools.partial(scan, tap_fill=fill, out=0)
  return in_halves(held, (x, valid), g, nb, along=after), choice


def extremum_and_route(x, geom: Geometry, kind: str, valid=None) -> tuple[jnp.ndarray, Route]:
  """Each window's extremum and the route to its winning tap.

  One unrolled scan over the whole window where that is cheaper
  (:func:`separable_pays`: small or tiling windows up to 25
  taps). Otherwise one pass per spatial dim, innermost first (the extremum is
  separable): each pass keeps the extremum of its 1-d windows and the winning
  tap's number, by a scan up to 9 taps (:func:`_scan_pass`), by whole-array
  reductions over that dim's stacked taps beyond. An
  outer pass picks the first row holding the extremum (or the last holding a
  NaN), the inner pass the first (last NaN) tap in that row, so the winner is
  PyTorch's row-major one. Cost grows with the sum of the window's sides, the
  HLO not at all.

  ``valid``: a runtime bool mask broadcastable to ``x``; masked taps never win
  (a window with none unmasked routes nowhere). Per-dim passes carry it on as
  each pass's pooled mask.
  """
  if not separable_pays(geom):
    y, choice = _extremum_scan(x, geom, kind, valid)
    return y, [(None, geom, choice, False)]
  route: Route = []
  passes = separable_passes(geom)
  for i, (axis, g) in enumerate(passes):
    stacked = not _windows.unrolls(g)
    if stacked:
      runtime = None if valid is None else _windows.Taps.read(valid, g, False, stacked=True).data
      x, choice = _stacked_extremum(
        _windows.Taps.read(x, g, _numerics.extremum_identity(kind, x.dtype), stacked=True),
        kind,
        runtime,
      )
    else:
      before = passes[i - 1][0] if i else None
      after = passes[i + 1][0] if i + 1 < len(passes) else None
      if after is not None and not direct_pass(passes[i + 1][1]):
        after = None  # the next pass reads stride phases of a padded copy
      x, choice = _scan_pass(x, g, kind, valid, before, after)
    if valid is not None:
      valid = _windows.reduce_window(valid, False, lax.max, g)
    route.append((axis, g, choice, stacked))
  return x, route


def _follow(x_dot: jnp.ndarray, route: Route) -> jnp.ndarray:
  """``x_dot`` at each window's winning tap: linear; its transpose routes cotangents back.

  A pass after the first runs on two halves (:func:`in_halves`): its
  transpose then ends in a concatenate, which XLA:CPU materialises once, so the previous
  pass's transpose reads one intermediate cotangent instead of fusing this pass's
  per-tap pads (one full-size temporary per tap)."""
  nb = x_dot.ndim - route[0][1].ndim - 1
  for i, (_, g, choice, stacked) in enumerate(route):

    def pick(t, c, g, stacked=stacked):
      return _windows.Taps.read(t, g, 0, stacked=stacked).pick(c)

    if i and direct_pass(g):
      x_dot = in_halves(pick, (x_dot, choice), g, nb, along=route[i - 1][0])
    else:
      x_dot = pick(x_dot, choice, g)
  return x_dot


def route_choice(route: Route, geom: Geometry) -> jnp.ndarray:
  """The route's winner as one row-major tap number of ``geom``'s window (``K``: none)."""
  if route[0][0] is None:
    return route[0][2]
  total, unset = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.bool_)
  for i, (dim, _, choice, _) in enumerate(route):
    axis = typing.cast(int, dim)  # per-dim routes name their dim (None: the whole window)
    choice = choice.astype(jnp.int32)
    for _, later, later_choice, _ in route[i + 1 :]:  # to the output's resolution
      choice = _windows.Taps.read(choice, later, 0, stacked=True).pick(later_choice)
    total = total + choice * math.prod(geom.window[axis + 1 :])
    unset = unset | (choice >= geom.window[axis])
  return jnp.where(unset, jnp.int32(geom.window_size), total)


def _held(route: Route) -> Route:
  """The route with each choice computed once (:func:`~jaxpool._numerics.materialize`), not
  inside every tap of the transposed route; unit-stride passes hold theirs already
  (:func:`_scan_pass`), and small windows that cover their input exactly need none
  (:func:`_recomputed_in_place`)."""
  needs_none = lambda a, g: (a is not None and direct_pass(g)) or _recomputed_in_place(g)
  return [
    (a, g, c if needs_none(a, g) else _numerics.materialize(c), stacked)
    for a, g, c, stacked in route
  ]


def _recomputed_in_place(g: Geometry) -> bool:
  """Whether the transposed route is faster recomputing the choice than reading it held.

  Up to 4 taps, without padding, where the windows end at the input's end (no position
  left over): there XLA:CPU folds the choice into the one loop that writes the input's
  cotangent, and holding it costs a pass of its own (max_pool 2x2/s2 f+b 0.5-0.8x,
  2x2/s1 0.54x). With padding, a remainder, or more taps, the recomputation is repeated per
  tap and slice (1.2-3.7x slower; measured per geometry on XLA:CPU)."""
  return g.window_size <= 4 and all(
    lo == hi == 0 and (out - 1) * s + e == n
    for (lo, hi), out, s, e, n in zip(g.full_padding, g.out_shape, g.strides, g.extent, g.in_shape)
  )


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def extremum_pool(x, geom: Geometry, kind: str, by_taps: bool = True):
  """Max/min pooling of float ``x``; derivative: the winning tap's (first extremum, last NaN).
  ``by_taps``: as :func:`extremum_forward`."""
  return extremum_forward(x, geom, kind, by_taps)


@extremum_pool.defjvp
def _extremum_pool_jvp(geom, kind, by_taps, primals, tangents):
  # y_dot_p = x_dot at the window's winning tap: linear in x_dot, so JAX transposes it
  # to "each cotangent to its winning tap" (selects, shifted pads: no scatter).
  (x,), (x_dot,) = primals, tangents
  y, route = extremum_and_route(x, geom, kind)
  route = _held(route)
  return routed(y, x, route), _follow(x_dot, route)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def masked_extremum_pool(x, valid, geom: Geometry, kind: str):
  """:func:`extremum_pool` over the taps that ``valid`` (runtime bool, broadcastable to ``x``)
  keeps: masked taps read the reduction's identity and never win. A window without an
  unmasked tap gives that identity (the caller zeroes it) and routes nowhere."""
  return extremum_forward(
    jnp.where(valid, x, _numerics.extremum_identity(kind, x.dtype)),
    geom,
    kind,
  )


@masked_extremum_pool.defjvp
def _masked_extremum_pool_jvp(geom, kind, primals, tangents):
  (x, valid), (x_dot, _) = primals, tangents
  y, route = extremum_and_route(x, geom, kind, valid)
  route = _held(route)
  return routed(y, x, route), _follow(x_dot, route)


def routed(y: jnp.ndarray, x: jnp.ndarray, route: Route) -> jnp.ndarray:
  """``y`` (the extremum of ``x`` along ``route``), differentiated by the route's winner rule.

  A tangent rule's primal output is differentiated again for second derivatives.
  Computed by reductions, its derivative would be JAX's, which splits a tie evenly
  (``jnp.max``) where the first derivative routes to the first winner: Hessians
  would be asymmetric. Returned through this identity, whose tangent is
  ``x_dot`` at the winner, every order of derivative follows the same winner.
  """
  spec = tuple((a, g, stacked) for a, g, _, stacked in route)
  return _routed(spec, y, x, tuple(c for _, _, c, _ in route))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _routed(spec, y, x, choices):
  del x, choices
  return y


@_routed.defjvp
def _routed_jvp(spec, primals, tangents):
  y, x, choices = primals
  route = [(a, g, c, stacked) for (a, g, stacked), c in zip(spec, choices)]
  return _routed(spec, y, x, choices), _follow(tangents[1], route)


# --- sums -----------------------------------------------------------------------------


def window_sum(x: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """Sum over each window's taps (padding adds 0), linear in ``x`` with a scatter-free
  transpose: unrolled taps for small windows, one pass per dim beyond (each pass
  unrolled up to 9 taps, stacked beyond: an HLO that does not grow with the window).

  A unit-stride pass after the first (:func:`direct_pass`) runs in halves
  (:func:`in_halves`): its transpose, which ends in a sum of per-tap pads, is then
  computed into one buffer that the previous pass's transpose reads at every tap,
  instead of XLA materialising each of those pads at full size."""
  if _windows.unrolls(geom):
    return _windows.Taps.read(x, geom, 0.0).sum()
  nb = x.ndim - geom.ndim - 1
  read = lambda a, g: _windows.Taps.read(a, g, 0.0).sum()
  passes = separable_passes(geom)
  for i, (_, g) in enumerate(passes):
    direct = i and direct_pass(g)
    x = in_halves(read, (x,), g, nb, along=passes[i - 1][0]) if direct else read(x, g)
  return x


def sum_separable(geom: Geometry) -> bool:
  """Whether a window sum runs as one ``lax.reduce_window`` per dim: windows of two or more
  dims that overlap at unit stride in one of them, or where :func:`separable_pays`.
  XLA:CPU's reduce-window over a 2-d window costs several times more per tap than over a 1-d
  one (16x56x56x64 f32, forward: 7x7/s1 34 against 3.7 ms, 3x3/s1 10 against 2.6 ms).
  Strided small windows keep one pass: 3x3/s2/p1 would gain there alone (avg_pool
  value-and-gradient 0.71x), but max_avg_pool and mixed_pool, whose value-and-gradient runs the
  sum beside the max's winner search, took 1.7x as long; windows that tile gain nothing."""
  if len(separable_passes(geom)) < 2:
    return False
  unit = any(s == 1 and k > 1 for k, s in zip(geom.window, geom.strides))
  return unit or separable_pays(geom)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _sum_pool(x, geom: Geometry, scale: float | None):
  passes = separable_passes(geom) if sum_separable(geom) else [(None, geom)]
  for i, (_, g) in enumerate(passes):
    if i == 1 and scale is not None:
      x = x * scale
    x = _windows.reduce_window(x, 0, lax.add, g)
  return x * scale if scale is not None and len(passes) == 1 else x


@_sum_pool.defjvp
def _sum_pool_jvp(geom, scale, primals, tangents):
  # Linear: the tangent is the same window sum, written over taps so that its transpose
  # is shifted pads per stride phase (reduce_window's own transpose pads in the interior).
  (x,), (x_dot,) = primals, tangents
  t = window_sum(x_dot, geom)
  return _sum_pool(x, geom, scale), t if scale is None else t * scale


def divided_sum(x: jnp.ndarray, geom: Geometry, divisors: np.ndarray) -> jnp.ndarray:
  """Window sums of ``x`` (compute dtype) divided by static per-window ``divisors``
  (``(*out, 1)`` or a scalar): one divisor for every window is :func:`sum_pool`'s static
  ``scale``, several divide the sums."""
  divisors = np.asarray(divisors, np.float64)
  if divisors.size and (divisors == divisors.flat[0]).all():
    return sum_pool(x, geom, 1 / float(divisors.flat[0]))
  return sum_pool(x, geom) / divisors.astype(_numerics.compute_dtype(x.dtype))


def sum_pool(x: jnp.ndarray, geom: Geometry, scale: float | None = None) -> jnp.ndarray:
  """Window sums over valid taps, times ``scale`` if given, accumulated in f32 for half
  precisions.

  The sum runs as one pass per dim where :func:`sum_separable`; a static ``scale`` (an
  average's divisor) then multiplies the first pass's result, not the sum: XLA:CPU would
  fuse a final multiply by a scalar into the consumer of the sum and hand it the scalar
  broadcast to the sum's full shape, an array of its own (avg_pool 7x7/s1/p3's
  value-and-gradient temp memory 3.0x the input's bytes, 2.0x with the scale inside).
  """
  return _sum_pool(x.astype(_numerics.compute_dtype(x.dtype)), geom, scale)


def scale_exponent(geom: Geometry) -> int:
  """``c`` with ``2**c >= window_size``: a sum of ``window_size`` values scaled by ``2**-c``
  is at most the largest of them, so it cannot overflow."""
  return max(math.ceil(math.log2(geom.window_size)), 0)


def window_mean(x: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """Mean over each window's valid taps, in the compute dtype, without overflow.

  The sum is taken at the exact power-of-two scale ``2**-c <= 1 / window_size``
  (:func:`scale_exponent`). Empty windows (possible only with dilation) give 0.
  """
  scale = 2.0 ** -scale_exponent(geom)
  cdt = _numerics.compute_dtype(x.dtype)
  counts = np.maximum(geom.valid_counts(), 1)[..., None]
  return divided_sum(x.astype(cdt) * scale, geom, counts * scale)


def masked_sum(x: jnp.ndarray, valid: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """Window sums of ``x`` (compute dtype) over the taps a runtime bool mask keeps: masked
  positions add exactly 0, whatever they hold, and get no derivative.

  Windows that tile the input are summed as blocks of a reshape, so the mask's select fuses
  into the reduction (and its transpose into one broadcast); others through :func:`sum_pool`.
  """
  data = jnp.where(valid, x.astype(_numerics.compute_dtype(x.dtype)), 0)
  if not _windows.tiles(geom):
    return sum_pool(data, geom)
  nb = x.ndim - geom.ndim - 1
  data = lax.slice(
    data,
    [0] * x.ndim,
    [*x.shape[:nb], *(o * k for o, k in zip(geom.out_shape, geom.window)), x.shape[-1]],
  )
  blocks = data.reshape(
    *x.shape[:nb], *(d for o, k in zip(geom.out_shape, geom.window) for d in (o, k)), x.shape[-1]
  )
  return jnp.sum(blocks, axis=tuple(nb + 2 * a + 1 for a in range(geom.ndim)))


def masked_window_mean(x: jnp.ndarray, valid: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """:func:`window_mean` over the taps a runtime bool mask ``valid`` keeps; 0 for a window
  without one. Masked positions add exactly 0 (whatever they hold) and get no derivative."""
  scale = 2.0 ** -scale_exponent(geom)
  cdt = _numerics.compute_dtype(x.dtype)
  counts = _masks.counts(valid, geom, cdt)
  total = masked_sum(x.astype(cdt) * scale, valid, geom)
  return total / (jnp.maximum(counts, 1) * scale)


def masked_max_and_mean(x: jnp.ndarray, valid: jnp.ndarray, geom: Geometry):
  """Per window, the max and the mean of the taps a runtime mask keeps (0 where none is
  kept), and whether one is: the pieces of the max-average ops with ``mask=``."""
  any_valid = _masks.pooled(valid, geom)
  top = _masks.zero_where_empty(masked_extremum_pool(x, valid, geom, 'max'), any_valid)
  return top, masked_window_mean(x, valid, geom), any_valid


def empty_windows(geom: Geometry) -> np.ndarray | None:
  """Static ``(*out, 1)`` mask of windows without a valid tap (dilation only), or None."""
  empty = geom.valid_counts() == 0
  return empty[..., None] if empty.any() else None


def valid_max(x: jnp.ndarray, geom: Geometry, by_taps: bool = True) -> jnp.ndarray:
  """:func:`extremum_pool` max of float ``x``; 0 for a window without a valid tap."""
  m = extremum_pool(x, geom, 'max', by_taps)
  empty = empty_windows(geom)
  return m if empty is None else jnp.where(empty, jnp.zeros((), m.dtype), m)
