"""Reading window taps over a :class:`~jaxpool._geometry.Geometry` (the reductions over them
live in :mod:`jaxpool._reductions`).

An output window is a set of *taps*, one per offset ``o`` in the window. For a
fixed offset, the taps of all outputs form a strided view of the padded input;
its validity is a static mask (:func:`tap_mask`). Views are read from the
input split into stride phases (:func:`window_taps`): a pad, a reshape, a
split and unit-stride slices, which JAX transposes to pads, concatenates and
reshapes, so the
reverse mode that JAX derives from any tangent rule written over taps puts
per-offset cotangents back at input resolution without a scatter or interior
padding. :class:`Taps` is the one interface over the taps that every op's
forward and tangent rule use: unrolled for small windows, one stacked array
for large ones.

Arrays are channel-last with any number of leading batch dims:
``(*batch, *spatial, C)``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _numerics
from jaxpool._geometry import Geometry

Offset = tuple[int, ...]


def offsets(geom: Geometry) -> Iterator[Offset]:
  """Window offsets in row-major order (PyTorch's scan order for ties)."""
  return itertools.product(*(range(k) for k in geom.window))


def _spatial_config(x_ndim: int, geom: Geometry, per_dim) -> list:
  nb = x_ndim - geom.ndim - 1
  return [(0, 0, 0)] * nb + list(per_dim) + [(0, 0, 0)]


def phase_blocks(geom: Geometry) -> list[int]:
  """Blocks ``M`` per dim: the padded extent rounded up to a multiple of the stride, over it."""
  return [
    -(-(lo + size + hi) // s)
    for size, (lo, hi), s in zip(geom.in_shape, geom.full_padding, geom.strides)
  ]


def split_phases(x: jnp.ndarray, geom: Geometry, fill) -> jnp.ndarray:
  """Pads with ``fill`` and reshapes each spatial dim ``L`` into ``(M, s)`` blocks.

  Returns ``(*batch, M_1, s_1, ..., M_n, s_n, C)``: the input of padded position
  ``m * s + r`` sits at ``[m, r]``. Every tap is then a contiguous slice of one
  phase (:func:`_phase_arrays`), which XLA:CPU reads faster than a strided slice.
  """
  blocks = phase_blocks(geom)
  config = _spatial_config(
    x.ndim,
    geom,
    (
      (lo, m * s - size - lo, 0)
      for size, (lo, _), m, s in zip(geom.in_shape, geom.full_padding, blocks, geom.strides)
    ),
  )
  xp = lax.pad(x, jnp.asarray(fill, x.dtype), config)
  nb = x.ndim - geom.ndim - 1
  shape = [*x.shape[:nb]]
  for m, s in zip(blocks, geom.strides):
    shape += [m, s]
  return xp.reshape(*shape, x.shape[-1])


def tap_mask(geom: Geometry, offset: Offset) -> np.ndarray | None:
  """Static validity of tap ``offset``, shape ``(*out, 1)``; None when all valid."""
  mask = np.ones((), bool)
  for axis, o in enumerate(offset):
    mask = np.logical_and.outer(mask, geom.tap_valid(axis)[o])
  return None if mask.all() else mask[..., None]


# Ops that loop over taps unroll up to this many (one fused graph per tap: fastest to run);
# beyond it they work on one stacked (K, *batch, *out, C) array, whose HLO does not grow
# with K (a 3x3x3 gradient compiles 4-10x faster, at the price of materialising the taps).
UNROLL_MAX_TAPS = 9


def choice_dtype(geom: Geometry):
  """The integer type of a tap number of ``geom``'s window (``K`` meaning none)."""
  return jnp.int8 if geom.window_size < 127 else jnp.int32


def unrolls(geom: Geometry) -> bool:
  """Whether a tap loop over ``geom``'s window should be unrolled (see UNROLL_MAX_TAPS)."""
  return geom.window_size <= UNROLL_MAX_TAPS


def tiles(geom: Geometry) -> bool:
  """Windows that tile the input: strides == window, no dilation, no padding (``ceil_mode``
  included: its overhang is padding). Each input position is read by at most one window."""
  return (
    geom.strides == geom.window
    and all(d == 1 for d in geom.dilation)
    and all(p == (0, 0) for p in geom.full_padding)
  )


def stacked_tap_masks(geom: Geometry, num_batch: int) -> np.ndarray | None:
  """Validity of every tap, ``(K, *1s, *out, 1)`` bool, or None when all are valid."""
  masks = [tap_mask(geom, o) for o in offsets(geom)]
  if all(m is None for m in masks):
    return None
  shape = (*geom.out_shape, 1)
  stacked = np.stack(
    [np.ones(shape, bool) if m is None else np.broadcast_to(m, shape) for m in masks]
  )
  return stacked.reshape(len(masks), *(1,) * num_batch, *shape)


def reduce_window(x: jnp.ndarray, init, op: Callable, geom: Geometry) -> jnp.ndarray:
  """``lax.reduce_window`` over the spatial dims; padded positions hold ``init``.

  ``lax.max``/``lax.min`` over floats run as :func:`_numerics.extremum_op`: a window
  holding NaN gives NaN (XLA:CPU's own max drops it on large inputs).
  """
  if op is lax.max or op is lax.min:
    op = _numerics.extremum_op('max' if op is lax.max else 'min', x.dtype)
  return lax.reduce_window(x, jnp.asarray(init, x.dtype), op, *reduce_window_args(x, geom))


def reduce_window_args(x: jnp.ndarray, geom: Geometry) -> tuple:
  """``lax.reduce_window``'s window dimensions, strides, padding and dilation for ``geom``."""
  nb = x.ndim - geom.ndim - 1
  ones = (1,) * nb
  return (
    ones + geom.window + (1,),
    ones + geom.strides + (1,),
    ((0, 0),) * nb + geom.full_padding + ((0, 0),),
    None,
    ones + geom.dilation + (1,),
  )


def _phase_arrays(x: jnp.ndarray, geom: Geometry, fill) -> dict[Offset, jnp.ndarray]:
  """The padded input split into its stride phases: phase ``r`` -> ``(*batch, *M, C)``.

  Position ``m * s + r`` of the padded input sits at ``[m]`` of phase ``r``. Built
  from a pad, a reshape and one ``lax.split`` per strided dim, so the transpose of
  reading it is a concatenate per dim and a reshape: no scatter, no interior padding.
  """
  xr = split_phases(x, geom, fill)
  nb = x.ndim - geom.ndim - 1
  shape = (*x.shape[:nb], *phase_blocks(geom), x.shape[-1])
  parts: dict[Offset, jnp.ndarray] = {(): xr}
  for axis, s in enumerate(geom.strides):
    parts = {
      prefix + (r,): piece
      for prefix, arr in parts.items()
      for r, piece in enumerate(lax.split(arr, [1] * s, axis=nb + 2 * axis + 1) if s > 1 else [arr])
    }
  return {phase: arr.reshape(shape) for phase, arr in parts.items()}


def _direct_tap(x: jnp.ndarray, geom: Geometry, offset: Offset, fill) -> jnp.ndarray:
  """Tap ``offset`` of a unit-stride ``geom``: the slice of ``x`` it reads, padded with ``fill``
  to the output's shape (an empty slice: all ``fill``)."""
  nb = x.ndim - geom.ndim - 1
  start, limit, config = [0] * x.ndim, list(x.shape), [(0, 0, 0)] * x.ndim
  for axis, (o, d, (lo, _), size, out) in enumerate(
    zip(offset, geom.dilation, geom.padding, geom.in_shape, geom.out_shape)
  ):
    first = o * d - lo  # input position of output 0's tap
    a, b = min(max(first, 0), size), min(max(first + out, 0), size)
    if a >= b:
      return jnp.full((*x.shape[:nb], *geom.out_shape, x.shape[-1]), fill, x.dtype)
    start[nb + axis], limit[nb + axis] = a, b
    config[nb + axis] = (a - first, first + out - b, 0)
  return lax.pad(lax.slice(x, start, limit), jnp.asarray(fill, x.dtype), config)


def window_taps(
  x: jnp.ndarray, geom: Geometry, fill, direct: bool = False
) -> tuple[jnp.ndarray, ...]:
  """All taps of every output window, one ``(*batch, *out, C)`` array per offset.

  ``fill`` is the value read at padded positions (mask it or choose it neutral).
  Offsets are in :func:`offsets` order. A plain differentiable function: each tap
  is a unit-stride slice of one stride phase (:func:`_phase_arrays`), so JAX
  derives its transpose as shifted pads at output resolution added per phase and
  interleaved by a reshape: a scatter-free backward (the sum
  ``x_bar[i] = sum over (o, p) with p * s + o * d - pad_low == i of tap_bar[o][p]``).

  ``direct`` (unit strides only; else ignored): each tap is its own slice of ``x``,
  padded, instead of a slice of one padded copy of ``x``. XLA:CPU fuses a pad into
  its consumer only where it is read once, so a padded copy read by every tap is
  materialised (a full-size temporary), while per-tap pads fuse into the loop that
  reads the taps. A padded tap goes through a select on its static validity (the
  same values), so that its pad has that one user however often the tap is read.
  """
  if direct and all(s == 1 for s in geom.strides):
    taps = []
    for o in offsets(geom):
      tap, mask = _direct_tap(x, geom, o, fill), tap_mask(geom, o)
      taps.append(tap if mask is None else jnp.where(mask, tap, jnp.asarray(fill, x.dtype)))
    return tuple(taps)
  phases = _phase_arrays(x, geom, fill)
  nb = x.ndim - geom.ndim - 1
  taps = []
  for offset in offsets(geom):
    shift = [o * d // s for o, d, s in zip(offset, geom.dilation, geom.strides)]
    phase = tuple(o * d % s for o, d, s in zip(offset, geom.dilation, geom.strides))
    arr = phases[phase]
    start = [0] * arr.ndim
    limit = list(arr.shape)
    for axis, (a, out) in enumerate(zip(shift, geom.out_shape)):
      start[nb + axis], limit[nb + axis] = a, a + out
    taps.append(lax.slice(arr, start, limit))
  return tuple(taps)


def _fit(x: jnp.ndarray, axis: int, length: int, fill) -> jnp.ndarray:
  """``x`` cut or padded (with ``fill``) at the end of ``axis`` to ``length``."""
  have = x.shape[axis]
  if have >= length:
    return lax.slice_in_dim(x, 0, length, axis=axis)
  config = [(0, 0, 0)] * x.ndim
  config[axis] = (0, length - have, 0)
  return lax.pad(x, jnp.asarray(fill, x.dtype), config)


def _axis_taps(
  x: jnp.ndarray, axis: int, k: int, s: int, d: int, pads: tuple[int, int], out: int, fill
) -> jnp.ndarray:
  """The taps of a 1-d window along ``axis``: that axis of length ``L`` becomes ``(k, out)``.

  ``result[..., o, p, ...] = x_padded[p * s + o * d]`` (``x`` padded with ``fill``),
  built from whole-array ops whose number does not depend on ``k``:

  * windows that do not overlap (``d == 1``, ``s >= k``): the padded axis
    reshaped into ``(out, s)`` blocks, the first ``k`` of each;
  * otherwise a skew: ``k`` stacked copies flattened to one row of length
    ``k * N``, padded by ``k * d`` and reshaped into ``k`` rows of length
    ``N + d``, so row ``o`` starts ``o * d`` further into the input; then every
    ``s``-th column.

  Reshapes, pads, slices and a broadcast: JAX transposes it to the same ops and a
  sum over ``k`` (scatter-free, and an HLO of fixed size).
  """
  if k == 1 and s == 1 and pads == (0, 0):
    return lax.expand_dims(x, (axis,))
  config = [(0, 0, 0)] * x.ndim
  config[axis] = (pads[0], pads[1], 0)
  xp = lax.pad(x, jnp.asarray(fill, x.dtype), config)
  n = xp.shape[axis]
  pre, post = xp.shape[:axis], xp.shape[axis + 1 :]
  if d == 1 and s >= k:
    blocks = _fit(xp, axis, out * s, fill).reshape(*pre, out, s, *post)
    return jnp.moveaxis(lax.slice_in_dim(blocks, 0, k, axis=axis + 1), axis + 1, axis)
  dims = tuple(range(axis)) + tuple(range(axis + 1, xp.ndim + 1))
  rows = lax.broadcast_in_dim(xp, (*pre, k, n, *post), dims).reshape(*pre, k * n, *post)
  skew = _fit(rows, axis, k * (n + d), fill).reshape(*pre, k, n + d, *post)
  if s == 1:
    return lax.slice_in_dim(skew, 0, out, axis=axis + 1)
  strided = _fit(skew, axis + 1, out * s, fill).reshape(*pre, k, out, s, *post)
  return lax.index_in_dim(strided, 0, axis=axis + 2, keepdims=False)


def stacked_window_taps(x: jnp.ndarray, geom: Geometry, fill) -> jnp.ndarray:
  """All taps of every output window as one ``(K, *batch, *out, C)`` array.

  The same values as :func:`window_taps` (stacked in :func:`offsets` order), read
  one spatial dim at a time by :func:`_axis_taps`: the HLO, and its derived
  transpose, have a fixed size whatever the window.
  """
  nb = x.ndim - geom.ndim - 1
  arr = x
  for axis in range(geom.ndim):
    arr = _axis_taps(
      arr,
      nb + 2 * axis,
      geom.window[axis],
      geom.strides[axis],
      geom.dilation[axis],
      geom.full_padding[axis],
      geom.out_shape[axis],
      fill,
    )
  # (*batch, k_1, out_1, ..., k_n, out_n, C) -> (k_1, ..., k_n, *batch, *out, C)
  taps = [nb + 2 * a for a in range(geom.ndim)]
  outs = [nb + 2 * a + 1 for a in range(geom.ndim)]
  arr = arr.transpose(*taps, *range(nb), *outs, arr.ndim - 1)
  return arr.reshape(geom.window_size, *x.shape[:nb], *geom.out_shape, x.shape[-1])


class Taps:
  """The taps of every output window of one array: the interface every op's forward
  and tangent rule use.

  Small windows (``<= UNROLL_MAX_TAPS``) hold a tuple of ``(*batch, *out, C)``
  arrays and unroll every operation (one fused graph per tap: fastest to run);
  larger ones hold one stacked ``(K, *batch, *out, C)`` array, whose HLO does not
  grow with ``K``. Operations take per-window arrays (``(*batch, *out, C)``) and
  other ``Taps`` of the same geometry interchangeably.
  """

  def __init__(self, data, geom: Geometry, num_batch: int):
    self.data, self.geom, self.num_batch = data, geom, num_batch

  @property
  def stacked(self) -> bool:
    return not isinstance(self.data, tuple)

  @classmethod
  def read(
    cls,
    x: jnp.ndarray,
    geom: Geometry,
    fill=0.0,
    stacked: bool | None = None,
    direct: bool = False,
  ) -> Taps:
    """Taps of ``x`` (differentiable, scatter-free transpose); padding reads ``fill``.

    ``direct``: unrolled taps of a unit-stride window pad each tap on its own
    (:func:`window_taps`), so that no padded copy of ``x`` is materialised.
    """
    nb = x.ndim - geom.ndim - 1
    if stacked is None:
      stacked = not unrolls(geom)
    if not stacked:
      return cls(window_taps(x, geom, fill, direct), geom, nb)
    return cls(stacked_window_taps(x, geom, fill), geom, nb)

  def _like(self, data) -> Taps:
    return Taps(data, self.geom, self.num_batch)

  def _args(self, args, k: int | None):
    # k None: stacked form (per-window arrays get a leading axis); else tap k.
    out = []
    for a in args:
      if isinstance(a, Taps):
        out.append(a.data if k is None else a.data[k])
      elif k is None and isinstance(a, (jnp.ndarray, np.ndarray, jax.Array)) and np.ndim(a):
        out.append(a[None])
      else:
        out.append(a)
    return out

  def map(self, fn: Callable, *args) -> Taps:
    """``fn(tap, *args)`` per tap; ``args`` are Taps (read tapwise) or per-window arrays."""
    if self.stacked:
      return self._like(fn(self.data, *self._args(args, None)))
    return self._like(tuple(fn(t, *self._args(args, k)) for k, t in enumerate(self.data)))

  def tap_masks(self) -> list[np.ndarray | None]:
    """Per tap ``(*out, 1)`` static validity masks (None = all valid), in tap order."""
    return [tap_mask(self.geom, o) for o in offsets(self.geom)]

  def where_valid(self, fill) -> Taps:
    """Taps with padded (invalid) positions replaced by ``fill``."""
    if self.stacked:
      stacked = stacked_tap_masks(self.geom, self.num_batch)
      return self if stacked is None else self._like(jnp.where(stacked, self.data, fill))
    return self._like(
      tuple(t if m is None else jnp.where(m, t, fill) for t, m in zip(self.data, self.tap_masks()))
    )

  def _reduce(self, pair: Callable, stacked_reduce: Callable) -> jnp.ndarray:
    if self.stacked:
      return stacked_reduce(self.data, axis=0)
    return functools.reduce(pair, self.data)

  def sum(self) -> jnp.ndarray:
    return self._reduce(jnp.add, jnp.sum)

  def max(self) -> jnp.ndarray:
    return self._reduce(jnp.maximum, _numerics.stacked_extremum)

  def min(self) -> jnp.ndarray:
    return self._reduce(jnp.minimum, functools.partial(_numerics.stacked_extremum, kind='min'))

  def pick(self, choice: jnp.ndarray) -> jnp.ndarray:
    """Per window, tap number ``choice`` (0 where ``choice`` is no tap): linear in the taps.

    Its transpose puts each window's cotangent on its chosen tap only (a select per
    tap), so a tangent rule written with it derives a scatter-free routing backward.
    """
    if self.stacked:
      iota = lax.broadcasted_iota(choice.dtype, self.data.shape, 0)
      return jnp.sum(jnp.where(iota == choice[None], self.data, 0), axis=0)
    zero = jnp.zeros_like(self.data[0])
    which = jnp.clip(choice.astype(jnp.int32), 0, len(self.data))
    return lax.select_n(which, *self.data, zero)

  def dot(self, weights) -> jnp.ndarray:
    """``sum_k weights[k] * tap_k``: a filter's inner product with every window.

    ``weights``: ``(K,)`` or ``(K, C)`` in :func:`offsets` order.
    """
    if self.stacked:
      w = jnp.asarray(weights)
      w = w.reshape(w.shape[0], *(1,) * (self.data.ndim - w.ndim), *w.shape[1:])
      return jnp.sum(w * self.data, axis=0)
    return functools.reduce(jnp.add, (w * tap for w, tap in zip(weights, self.data)))

  def scatter(self) -> jnp.ndarray:
    """The transpose of :meth:`read`: each tap's value added back at its input position.

    ``result[i] = sum over (o, p) with p * s + o * d - pad_low == i of taps[o][p]``;
    taps that land in padding are dropped. Derived by JAX (shifted pads per stride
    phase, or the reshapes of the stacked read, and sums: no scatter).

    Returns:
      ``(*batch, *in, C)`` in the taps' dtype.
    """
    first = self.data[0]
    nb = self.num_batch
    shape = (*first.shape[:nb], *self.geom.in_shape, first.shape[-1])
    # The point of linearisation carries the taps' type (under shard_map: their varying axes).
    x0 = (
      jnp.broadcast_to(first[(0,) * first.ndim] * 0, shape)
      if first.size
      else jnp.zeros(shape, first.dtype)
    )
    stacked = self.stacked
    _, read_transpose = jax.vjp(lambda x: Taps.read(x, self.geom, 0, stacked).data, x0)
    (out,) = read_transpose(self.data)
    return out

  def to_last_axis(self) -> jnp.ndarray:
    """The taps as one ``(*batch, *out, K, C)`` array."""
    return jnp.moveaxis(self.data, 0, -2) if self.stacked else jnp.stack(self.data, axis=-2)
