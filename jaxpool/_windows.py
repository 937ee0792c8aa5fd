"""Window machinery over a :class:`~jaxpool._geometry.Geometry`.

An output window is a set of *taps*, one per offset ``o`` in the window. For a
fixed offset, the taps of all outputs form a strided view of the padded input
(:func:`tap_view`); its validity is a static mask (:func:`tap_mask`). A
weighted pooling is then a sum over offsets of elementwise work on views, which
XLA fuses, and the transpose of "read tap ``o``" (:func:`scatter_taps`) puts
per-offset cotangents back at input resolution without a scatter: offsets are
grouped by stride phase, shifted with ``lax.pad`` at output resolution and
interleaved with one reshape.

Arrays are channel-last with any number of leading batch dims:
``(*batch, *spatial, C)``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool._geometry import Geometry

Offset = tuple[int, ...]


def offsets(geom: Geometry) -> Iterator[Offset]:
  """Window offsets in row-major order (PyTorch's scan order for ties)."""
  return itertools.product(*(range(k) for k in geom.window))


def _spatial_config(x_ndim: int, geom: Geometry, per_dim) -> list:
  nb = x_ndim - geom.ndim - 1
  return [(0, 0, 0)] * nb + list(per_dim) + [(0, 0, 0)]


def pad_input(x: jnp.ndarray, geom: Geometry, fill) -> jnp.ndarray:
  """Pads the spatial dims with ``fill`` so that every output window fits."""
  config = _spatial_config(x.ndim, geom, ((lo, hi, 0) for lo, hi in geom.full_padding))
  if all(c == (0, 0, 0) for c in config):
    return x
  return lax.pad(x, jnp.asarray(fill, x.dtype), config)


def tap_view(xp: jnp.ndarray, geom: Geometry, offset: Offset) -> jnp.ndarray:
  """Tap ``offset`` of every output window, from the padded input: (*batch, *out, C)."""
  nb = xp.ndim - geom.ndim - 1
  start = [0] * xp.ndim
  limit = list(xp.shape)
  step = [1] * xp.ndim
  for axis, (o, s, d, out) in enumerate(
      zip(offset, geom.strides, geom.dilation, geom.out_shape)):
    start[nb + axis] = o * d
    limit[nb + axis] = o * d + (out - 1) * s + 1
    step[nb + axis] = s
  return lax.slice(xp, start, limit, step)


def phase_blocks(geom: Geometry) -> list[int]:
  """Blocks ``M`` per dim: the padded extent rounded up to a multiple of the stride, over it."""
  return [-(-(lo + size + hi) // s)
          for size, (lo, hi), s in zip(geom.in_shape, geom.full_padding, geom.strides)]


def split_phases(x: jnp.ndarray, geom: Geometry, fill) -> jnp.ndarray:
  """Pads with ``fill`` and reshapes each spatial dim ``L`` into ``(M, s)`` blocks.

  Returns ``(*batch, M_1, s_1, ..., M_n, s_n, C)``: the input of padded position
  ``m * s + r`` sits at ``[m, r]``. Every tap view is then a contiguous slice
  (:func:`phase_view`), which XLA:CPU reads faster than a strided slice.
  """
  blocks = phase_blocks(geom)
  config = _spatial_config(x.ndim, geom, (
      (lo, m * s - size - lo, 0)
      for size, (lo, _), m, s in zip(geom.in_shape, geom.full_padding, blocks, geom.strides)))
  xp = lax.pad(x, jnp.asarray(fill, x.dtype), config)
  nb = x.ndim - geom.ndim - 1
  shape = [*x.shape[:nb]]
  for m, s in zip(blocks, geom.strides):
    shape += [m, s]
  return xp.reshape(*shape, x.shape[-1])


def phase_view(xr: jnp.ndarray, geom: Geometry, offset: Offset) -> jnp.ndarray:
  """Tap ``offset`` of every output window from :func:`split_phases`: (*batch, *out, C)."""
  nb = xr.ndim - 2 * geom.ndim - 1
  start = [0] * xr.ndim
  limit = list(xr.shape)
  for axis, (o, s, d, out) in enumerate(
      zip(offset, geom.strides, geom.dilation, geom.out_shape)):
    shift, phase = divmod(o * d, s)
    start[nb + 2 * axis], limit[nb + 2 * axis] = shift, shift + out
    start[nb + 2 * axis + 1], limit[nb + 2 * axis + 1] = phase, phase + 1
  view = lax.slice(xr, start, limit)
  return view.reshape(*xr.shape[:nb], *geom.out_shape, xr.shape[-1])


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


def unrolls(geom: Geometry) -> bool:
  """Whether a tap loop over ``geom``'s window should be unrolled (see UNROLL_MAX_TAPS)."""
  return geom.window_size <= UNROLL_MAX_TAPS


def stacked_tap_masks(geom: Geometry, num_batch: int) -> np.ndarray | None:
  """Validity of every tap, ``(K, *1s, *out, 1)`` bool, or None when all are valid."""
  masks = [tap_mask(geom, o) for o in offsets(geom)]
  if all(m is None for m in masks):
    return None
  shape = (*geom.out_shape, 1)
  stacked = np.stack([np.ones(shape, bool) if m is None else np.broadcast_to(m, shape)
                      for m in masks])
  return stacked.reshape(len(masks), *(1,) * num_batch, *shape)


def tap_flat_index(geom: Geometry, offset: Offset) -> np.ndarray:
  """Flat index into the unpadded spatial extent of tap ``offset``: int32 ``(*out, 1)``.

  Invalid taps get index 0 (callers mask them).
  """
  coords = [np.clip(geom.tap_positions(a)[o], 0, geom.in_shape[a] - 1)
            for a, o in enumerate(offset)]
  grids = np.meshgrid(*coords, indexing='ij')
  return np.ravel_multi_index(grids, geom.in_shape).astype(np.int32)[..., None]


def reduce_window(x: jnp.ndarray, init, op: Callable, geom: Geometry) -> jnp.ndarray:
  """``lax.reduce_window`` over the spatial dims; padded positions hold ``init``."""
  nb = x.ndim - geom.ndim - 1
  ones = (1,) * nb
  return lax.reduce_window(
      x, jnp.asarray(init, x.dtype), op,
      window_dimensions=ones + geom.window + (1,),
      window_strides=ones + geom.strides + (1,),
      padding=((0, 0),) * nb + geom.full_padding + ((0, 0),),
      window_dilation=ones + geom.dilation + (1,))


def scatter_taps(taps: Mapping[Offset, jnp.ndarray], geom: Geometry) -> jnp.ndarray:
  """Transpose of :func:`tap_view` / :func:`phase_view`: sums each tap array back to its input position.

  ``result[i] = sum over (o, p) with p * s + o * d - pad_low == i of taps[o][p]``;
  taps that land in padding are dropped. Offsets with the same stride phase
  ``(o * d) % s`` are shifted by ``(o * d) // s`` at output resolution and added;
  the phases are then interleaved by a reshape. No scatter, no interior padding.

  Args:
    taps: offset -> array ``(*batch, *out, C)``; missing offsets count as zero.
    geom: the geometry the taps were read with.

  Returns:
    ``(*batch, *in, C)`` in the taps' dtype.
  """
  first = next(iter(taps.values()))
  nb = first.ndim - geom.ndim - 1
  batch, channels = first.shape[:nb], first.shape[-1]
  blocks = phase_blocks(geom)
  phases: dict[Offset, jnp.ndarray] = {}
  for offset, tap in taps.items():
    shift = [o * d // s for o, d, s in zip(offset, geom.dilation, geom.strides)]
    phase = tuple(o * d % s for o, d, s in zip(offset, geom.dilation, geom.strides))
    config = _spatial_config(tap.ndim, geom, (
        (a, m - a - out, 0) for a, m, out in zip(shift, blocks, geom.out_shape)))
    shifted = lax.pad(tap, jnp.zeros((), tap.dtype), config)
    phases[phase] = shifted if phase not in phases else phases[phase] + shifted
  if all(s == 1 for s in geom.strides):
    full = phases[(0,) * geom.ndim]
  else:
    zeros = jnp.zeros((*batch, *blocks, channels), first.dtype)

    def interleave(prefix: Offset) -> jnp.ndarray:
      # Phase grids sharing `prefix`, stacked so that a reshape interleaves them:
      # (*batch, M_1, ..., M_j, s_j, ..., M_n, s_n, C) for prefix length j - 1.
      depth = len(prefix)
      if depth == geom.ndim:
        return phases.get(prefix, zeros)
      parts = [interleave(prefix + (r,)) for r in range(geom.strides[depth])]
      return jnp.stack(parts, axis=nb + depth + 1)

    full = interleave(()).reshape(
        *batch, *(m * s for m, s in zip(blocks, geom.strides)), channels)
  start = [0] * full.ndim
  limit = list(full.shape)
  for axis, (size, (lo, _)) in enumerate(zip(geom.in_shape, geom.full_padding)):
    start[nb + axis] = lo
    limit[nb + axis] = lo + size
  return lax.slice(full, start, limit)


def materialize(a: jnp.ndarray) -> jnp.ndarray:
  """Returns ``a`` unchanged, computed once: a fusion boundary for XLA.

  XLA fuses cheap elementwise producers into each consumer. When a backward
  rule recomputes per-window data (an argmax, softmax weights) and
  :func:`scatter_taps` reads it at several shifted positions, XLA:CPU
  re-evaluates the whole producer per input element and tap (measured 10-20x
  slower). ``lax.optimization_barrier`` is dropped on CPU, but a reduce-window
  is a fusion boundary, so this identity one (a max over a pair whose second
  entry is the dtype's lowest value) makes XLA compute ``a`` once.
  """
  low = jnp.asarray(_lowest(a.dtype), a.dtype)
  paired = lax.pad(a[..., None], low, [(0, 0, 0)] * a.ndim + [(0, 1, 0)])
  return lax.reduce_window(paired, low, lax.max, (1,) * a.ndim + (2,),
                           (1,) * (a.ndim + 1), 'VALID')[..., 0]


def _lowest(dtype):
  if jnp.issubdtype(dtype, jnp.floating):
    return -np.inf
  if dtype == jnp.bool_:
    return False
  return jnp.iinfo(dtype).min


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def window_taps(x: jnp.ndarray, geom: Geometry, fill: float) -> tuple[jnp.ndarray, ...]:
  """All taps of every output window, one ``(*batch, *out, C)`` array per offset.

  Differentiable with a scatter-free backward (:func:`scatter_taps`). ``fill``
  is the value read at padded positions (mask it or choose it neutral).
  Offsets are in :func:`offsets` order.
  """
  xr = split_phases(x, geom, fill)
  return tuple(phase_view(xr, geom, o) for o in offsets(geom))


def _window_taps_fwd(x, geom, fill):
  return window_taps(x, geom, fill), None


def _window_taps_bwd(geom, fill, _, cotangents):
  del fill
  return (scatter_taps(dict(zip(offsets(geom), cotangents)), geom),)


window_taps.defvjp(_window_taps_fwd, _window_taps_bwd)
