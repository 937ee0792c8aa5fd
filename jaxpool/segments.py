r"""Segment pooling: one pooled vector per integer label.

Packed sequences (several sequences in one row, labelled as in packed-sequence
attention), ragged batches and region pooling over a label map all reduce to
one rule: pool every position whose label is ``n`` into output ``n``. Each
segment is a masked :func:`~jaxpool.global_pool` (the same methods, the same
numerics and derivative rules), computed for all segments at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _numerics
from jaxpool.adaptive import global_pool

__all__ = ['segment_pool']


def _check_ids(ids: jnp.ndarray, x: jnp.ndarray, num_segments: int) -> None:
  if not jnp.issubdtype(ids.dtype, jnp.integer):
    raise TypeError(f'segment_ids must be integers; got dtype {ids.dtype}')
  if ids.shape != x.shape[:-1]:
    raise ValueError(
      f"segment_ids must have x's shape without channels {x.shape[:-1]}; got {ids.shape}"
    )
  try:
    concrete = np.asarray(ids)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return  # traced: ids outside [0, num_segments) are dropped
  if concrete.size and (concrete.min() < 0 or concrete.max() >= num_segments):
    bad = concrete[(concrete < 0) | (concrete >= num_segments)]
    raise ValueError(
      f'segment_ids must lie in [0, num_segments) = [0, {num_segments}); got {bad.size} '
      f'outside, e.g. {int(bad.flat[0])} (under jit such ids are dropped: mark padding '
      f'with a mask, or with an id of its own and ignore that segment)'
    )


def _flat(x: jnp.ndarray, ids: jnp.ndarray, num_segments: int):
  """Rows ``(N * P, C)`` and one id per row into ``N * num_segments`` segments (example ``b``'s
  segment ``n`` is ``b * num_segments + n``); ids outside ``[0, num_segments)`` point past the
  end, where ``jax.ops`` drops them."""
  n = x.shape[0]
  rows = x.reshape(-1, x.shape[-1])
  ids = ids.reshape(n, -1).astype(jnp.int32)
  base = jnp.arange(n, dtype=jnp.int32)[:, None] * num_segments
  inside = (ids >= 0) & (ids < num_segments)
  flat = jnp.where(inside, ids + base, n * num_segments).reshape(-1)
  return rows, flat, n * num_segments


def _segment_sum(x, ids, num_segments):
  """``(N, S, C)`` sums per label (a scatter-add: a NaN or an infinity stays in its segment)."""
  rows, flat, total = _flat(x, ids, num_segments)
  out = jax.ops.segment_sum(rows, flat, total)
  return out.reshape(x.shape[0], num_segments, x.shape[-1])


def _segment_count(x, ids, num_segments):
  """``(N, S, 1)`` number of positions per label, in ``x``'s dtype."""
  ones = jnp.ones((*ids.shape, 1), x.dtype)
  return lax.stop_gradient(_segment_sum(ones, ids, num_segments))


@jax.custom_jvp
def _segment_max(x, ids, num_segments_holder):
  """``(N, S, C)`` maxima per label; the lowest value for an empty segment."""
  num_segments = num_segments_holder.shape[0]
  rows, flat, total = _flat(x, ids, num_segments)
  out = jax.ops.segment_max(rows, flat, total)
  return out.reshape(x.shape[0], num_segments, x.shape[-1])


@_segment_max.defjvp
def _segment_max_jvp(primals, tangents):
  # The tangent of each segment's first maximum (row-major position): a gather, linear in
  # x_dot; its transpose puts each cotangent on that one position.
  x, ids, holder = primals
  x_dot = tangents[0]
  num_segments = holder.shape[0]
  y = _segment_max(x, ids, holder)
  rows, flat, total = _flat(x, ids, num_segments)
  y_rows = jnp.take(y.reshape(total, -1), jnp.minimum(flat, total - 1), axis=0)
  position = jnp.arange(rows.shape[0], dtype=jnp.int32)[:, None]
  hit = (rows == y_rows) | (jnp.isnan(rows) & jnp.isnan(y_rows))
  first = jax.ops.segment_min(jnp.where(hit, position, rows.shape[0]), flat, total)
  first = jnp.minimum(first, rows.shape[0] - 1)
  picked = jnp.take_along_axis(x_dot.reshape(rows.shape), first, axis=0)
  return y, picked.reshape(y.shape)


def _sum(x, ids, num_segments):
  cdt = _numerics.compute_dtype(x.dtype)
  return _segment_sum(x.astype(cdt), ids, num_segments).astype(x.dtype)


def _avg_cdt(xc, ids, num_segments):
  # the sum at the power-of-two scale <= 1 / positions, so that it cannot overflow
  scale = 2.0 ** -max(math.ceil(math.log2(math.prod(xc.shape[1:-1]))), 0)
  count = _segment_count(xc, ids, num_segments)
  return _segment_sum(xc * scale, ids, num_segments) / (jnp.maximum(count, 1) * scale)


def _max_cdt(x, ids, num_segments):
  """First-maximum rule per segment; 0 (and no derivative) for an empty one."""
  if jnp.issubdtype(x.dtype, jnp.floating):
    y = _segment_max(x, ids, jnp.zeros((num_segments, 0), jnp.float32))
  else:  # integers: no derivative
    rows, flat, total = _flat(x, ids, num_segments)
    y = jax.ops.segment_max(rows, flat, total).reshape(x.shape[0], num_segments, -1)
  any_valid = _segment_count(jnp.zeros((), jnp.float32), ids, num_segments) > 0
  return jnp.where(any_valid, y, jnp.zeros((), y.dtype))


def _avg(x, ids, num_segments):
  cdt = _numerics.compute_dtype(x.dtype)
  return _avg_cdt(x.astype(cdt), ids, num_segments).astype(x.dtype)


def _avgmax(x, ids, num_segments, concat=False):
  cdt = _numerics.compute_dtype(x.dtype)
  xc = x.astype(cdt)
  avg, mx = _avg_cdt(xc, ids, num_segments), _max_cdt(xc, ids, num_segments)
  y = jnp.concatenate([avg, mx], axis=-1) if concat else (avg + mx) / 2
  return y.astype(x.dtype)


# Methods computed by scatter reductions over all segments at once (jax.ops.segment_*):
# one pass over x whatever the number of segments. The others run one masked
# global_pool per segment.
_FAST: dict[str, Callable[..., jnp.ndarray]] = {
  'sum': _sum,
  'avg': _avg,
  'max': _max_cdt,
  'avgmax': _avgmax,
  'catavgmax': functools.partial(_avgmax, concat=True),
}


def segment_pool(
  x: jnp.ndarray,
  segment_ids: jnp.ndarray,
  num_segments: int,
  method: str = 'avg',
  **kw: Any,
) -> jnp.ndarray:
  r"""Pools ``x`` per segment label: ``(N, *spatial, C) -> (N, num_segments, C)``.

  Output ``n`` of example ``b`` reduces the positions ``s`` with
  ``segment_ids[b, s] == n`` by ``method``: ``'sum'`` (:math:`\sum_s x_s`), or any
  :func:`~jaxpool.global_pool` method over those positions — ``'avg'``,
  ``'max'``, ``'soft'``, ``'lp'``, ``'gem'``, ``'avgmax'``, ``'catavgmax'`` — with
  its keyword arguments (``temperature``, ``p``, ``eps``; ``p`` and
  ``temperature`` may be traced, learnable arrays of shape ``()`` or ``(C,)``).

  An empty segment gives 0 with a zero gradient (``jax.ops.segment_max`` gives
  ``-inf``, ``segment_sum``-based means divide 0 by 0). Ids outside
  ``[0, num_segments)`` belong to no segment: a concrete ``segment_ids`` holding
  one raises ``ValueError``; under ``jit`` (traced ids) such positions are
  dropped. A NaN or infinity only reaches its own segment. ``'max'`` routes
  its gradient to the first maximum in row-major order.

  Cost: ``'sum'``, ``'avg'``, ``'max'``, ``'avgmax'`` and ``'catavgmax'`` are scatter
  reductions (``jax.ops.segment_*``) over all segments at once: one pass over
  ``x`` whatever ``num_segments`` (on GPU a scatter-add's float sums may differ
  in the last bits from run to run). ``'soft'``, ``'lp'`` and ``'gem'`` run one
  masked :func:`~jaxpool.global_pool` per segment (``vmap``: work grows with
  ``num_segments``; suited to tens of segments).

  Args:
    x: ``(N, *spatial, C)`` floats (``'max'`` also takes integers).
    segment_ids: integers of shape ``(N, *spatial)``.
    num_segments: the number of segments ``S`` (static).
    method: one of ``'sum'``, ``'avg'``, ``'max'``, ``'soft'``, ``'lp'``, ``'gem'``,
      ``'avgmax'``, ``'catavgmax'``.
    **kw: the method's keyword arguments, as :func:`~jaxpool.global_pool`.

  Returns:
    ``(N, num_segments, C)`` (``2C`` channels for ``'catavgmax'``) in ``x``'s dtype.

  Example:
    >>> x = jnp.array([[[1.], [3.], [10.], [20.]]])        # two sequences packed in a row
    >>> ids = jnp.array([[0, 0, 1, 1]])
    >>> segment_pool(x, ids, 3, 'avg')[..., 0]             # segment 2 is empty
    Array([[ 2., 15.,  0.]], dtype=float32)
  """
  method = _checks.choice(method, 'method', _fields.SEGMENT_METHODS)
  x = _numerics.as_array(x)
  ids = _numerics.as_array(segment_ids, 'segment_ids')
  num_segments = _checks.positive_int(num_segments, 'num_segments')
  if x.ndim < 3:
    raise ValueError(
      f'x must have shape (N, *spatial, C) with at least one spatial dim (rank >= 3); '
      f'got shape {x.shape} (rank {x.ndim})'
    )
  _check_ids(ids, x, num_segments)
  if math.prod(x.shape[1:-1]) == 0:
    raise ValueError(f'x must have non-empty spatial dims; got shape {x.shape}')
  if method in _FAST:
    if method != 'max':
      _numerics.check_float(x, f'segment_pool(method={method!r})')
    if kw:
      raise ValueError(
        f'segment_pool method {method!r} takes no keyword arguments; got {sorted(kw)}'
      )
    return _FAST[method](x, ids, num_segments)
  return jax.vmap(lambda n: global_pool(x, method, mask=ids == n, **kw), out_axes=1)(
    jnp.arange(num_segments, dtype=ids.dtype)
  )
