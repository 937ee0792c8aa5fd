"""Classic pooling with PyTorch parity: max, min, average, LP, and max-unpool.

Max/min pooling run forward on ``lax.reduce_window``. Their derivative is a
``jax.custom_jvp`` whose tangent is linear: each window's tangent is the
tangent of its winning tap (first extremum in row-major window order, as
PyTorch; a NaN window's last NaN). Forward mode uses it directly; JAX derives
reverse mode by transposing it, which routes each cotangent to its winning tap
with selects and shifted pads per stride phase: no ``SelectAndScatter``, no
scatter, deterministic, and defined with dilation (where ``lax``'s max-pool
gradient raises). Sum-based pools (average, LP) differentiate through the same
window taps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _reductions, _windows
from jaxpool._geometry import Geometry, Padding

__all__ = ['max_pool', 'min_pool', 'avg_pool', 'lp_pool', 'max_unpool']


# --- max / min ------------------------------------------------------------------------


def _choice_to_index(choice, geom: Geometry) -> jnp.ndarray:
  """Flat index into the unpadded spatial extent of tap ``choice`` (0 for ``K``: none)."""
  nb = choice.ndim - geom.ndim - 1
  rest = choice.astype(jnp.int32)
  index = jnp.zeros(choice.shape, jnp.int32)
  place = 1
  for a in reversed(range(geom.ndim)):
    k, s, d = geom.window[a], geom.strides[a], geom.dilation[a]
    tap = rest % k
    rest = rest // k
    out = lax.broadcasted_iota(jnp.int32, choice.shape, nb + a)
    pos = jnp.clip(out * s + tap * d - geom.padding[a][0], 0, geom.in_shape[a] - 1)
    index = index + pos * place
    place *= geom.in_shape[a]
  return jnp.where(choice >= geom.window_size, 0, index)


def _extremum(
  x,
  window,
  strides,
  padding,
  dilation,
  ceil_mode,
  kind,
  return_indices=False,
  mask=None,
  return_mask=False,
):
  op = f'{kind}_pool'
  x = _numerics.as_array(x)
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  return_indices = _checks.flag(return_indices, 'return_indices')
  valid, no_channels, return_mask = _masks.prepare(mask, x, op, return_mask)
  if valid is None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
      y = _reductions.extremum_forward(x, geom, kind)
    else:
      y = _reductions.extremum_pool(x, geom, kind)
    if not return_indices:
      return y
    _, route = _reductions.extremum_and_route(lax.stop_gradient(x), geom, kind)
    return y, _choice_to_index(_reductions.route_choice(route, geom), geom)
  any_valid = _masks.pooled(valid, geom)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    fill = _numerics.lowest(x.dtype) if kind == 'max' else _numerics.highest(x.dtype)
    y = _reductions.extremum_forward(_masks.fill(x, valid, fill), geom, kind)
  else:
    y = _reductions.masked_extremum_pool(x, valid, geom, kind)
  out = [_masks.zero_where_empty(y, any_valid)]
  if return_indices:
    _, route = _reductions.extremum_and_route(lax.stop_gradient(x), geom, kind, valid)
    index = _choice_to_index(_reductions.route_choice(route, geom), geom)
    out.append(jnp.where(any_valid, index, jnp.int32(-1)))
  if return_mask:
    out.append(_masks.returned(any_valid, no_channels))
  return out[0] if len(out) == 1 else tuple(out)


def max_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  return_indices: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Max pooling, PyTorch's ``max_pool{1,2,3}d`` in channel-last layout.

  .. math:: y_p = \max_{i \in R(p)} x_i

  over the valid (non-padding) taps ``R(p)`` of window ``p``.

  Output size per spatial dim (PyTorch's rule)::

    out = floor((L + pad_lo + pad_hi - dilation * (k - 1) - 1 + (s - 1 if ceil_mode)) / s) + 1
    # with ceil_mode, a last window starting in the right padding is dropped

  Gradient: :math:`\bar x_i = \sum_{p:\, i = \mathrm{argmax}_{R(p)}} \bar y_p`,
  the argmax being the first maximum in row-major window order (PyTorch's tie
  rule; a window holding NaN routes to its last NaN, as PyTorch). The backward
  finds each window's winning tap from ``x`` and ``y`` and uses no scatter, so
  it is deterministic and defined with dilation.

  Args:
    x: ``(*batch, *spatial, C)``; floats or integers.
    window: window size per spatial dim, e.g. ``(3, 3)``.
    strides: int or per-dim; ``None`` means ``window``.
    padding: ``'VALID'``, ``'SAME'``, int, per-dim ints or ``(low, high)`` pairs;
      explicit pads are at most half the effective window.
    dilation: spacing between window taps.
    ceil_mode: PyTorch's ceil output-size rule.
    return_indices: also return int32 flat indices of each maximum into the
      unpadded spatial extent of its (batch, channel) slice, as PyTorch. With a
      mask, they never point at a masked position; an empty window's is -1
      (:func:`max_unpool` with the pooled mask drops it).
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x`` (see below).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` and ``x``'s dtype; with
    ``return_indices`` and/or ``return_mask``, the tuple ``(y, indices, mask)``
    of those asked for.

  Masks: masked positions are treated exactly as padding: never picked. An
  output whose window holds no unmasked position is 0, with a zero gradient.
  The pooled mask is valid where the window holds an unmasked position.

    >>> x = jnp.array([[1.], [9.], [3.], [4.]])
    >>> y, m = max_pool(x, (2,), mask=jnp.array([True, False, False, False]), return_mask=True)
    >>> y[:, 0], m
    (Array([1., 0.], dtype=float32), Array([ True, False], dtype=bool))

  Example:
    >>> x = jnp.arange(16.).reshape(4, 4, 1)
    >>> max_pool(x, (2, 2))[..., 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
  """
  return _extremum(
    x, window, strides, padding, dilation, ceil_mode, 'max', return_indices, mask, return_mask
  )


def min_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Min pooling: :math:`y_p = \min_{i \in R(p)} x_i` over valid taps.

  Same geometry, output size, gradient rule, ``mask`` and ``return_mask`` as
  :func:`max_pool` (ties to the first minimum). Accepts floats and integers.

  Example:
    >>> x = jnp.arange(16.).reshape(4, 4, 1)
    >>> min_pool(x, (2, 2))[..., 0]
    Array([[ 0.,  2.],
           [ 8., 10.]], dtype=float32)
  """
  return _extremum(
    x, window, strides, padding, dilation, ceil_mode, 'min', False, mask, return_mask
  )


# --- sums: average and LP -------------------------------------------------------------


def avg_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  count_include_pad: bool = True,
  divisor_override: int | None = None,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Average pooling, PyTorch's ``avg_pool{1,2,3}d`` in channel-last layout.

  .. math:: y_p = \frac{1}{D_p} \sum_{i \in R(p)} x_i

  where the divisor :math:`D_p` is ``divisor_override`` if given, else the
  number of taps of window ``p`` inside the input plus — with
  ``count_include_pad`` — inside the explicit padding (never the ``ceil_mode``
  overhang beyond it, exactly as PyTorch). Padded taps add nothing to the sum.
  A window with no valid tap (possible only with dilation) gives 0.

  Output size: as :func:`max_pool`. Gradient:
  :math:`\bar x_i = \sum_{p \ni i} \bar y_p / D_p`, computed without scatter.
  Dilation is an extension (PyTorch's average pooling has none).

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions accumulate in f32.
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    count_include_pad: count explicit padding in the divisor.
    divisor_override: a non-zero int used as every window's divisor.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: it adds nothing and is not counted, so
  with ``count_include_pad=False`` the divisor is the number of unmasked taps,
  :math:`y_p = \sum_{i \in R(p)} m_i x_i / \sum_{i \in R(p)} m_i`. With
  ``count_include_pad=True`` the divisor is that count plus the window's taps in
  the explicit padding (masked positions are never counted, padding is, as
  without a mask). An output whose window holds no unmasked position is 0 with
  a zero gradient; the pooled mask is valid where the window holds one.

    >>> x = jnp.array([[1.], [3.], [5.], [7.]])
    >>> avg_pool(x, (2,), mask=jnp.array([True, True, True, False]))[:, 0]
    Array([2., 5.], dtype=float32)

  Example:
    >>> x = jnp.arange(16.).reshape(4, 4, 1)
    >>> avg_pool(x, (2, 2))[..., 0]
    Array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
  """
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'avg_pool')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  count_include_pad = _checks.flag(count_include_pad, 'count_include_pad')
  divisor_override = _fields.check_divisor_override(divisor_override)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'avg_pool', return_mask)
  if valid is not None:
    return _masked_avg(
      x, geom, valid, no_channels, count_include_pad, divisor_override, return_mask
    )
  if divisor_override is not None:
    divisor = np.asarray(float(divisor_override))
  else:
    divisor = np.maximum(geom.valid_counts(count_include_pad), 1)[..., None]
  return _reductions.divided_sum(x, geom, divisor).astype(x.dtype)


def _masked_avg(x, geom, valid, no_channels, count_include_pad, divisor_override, return_mask):
  """:func:`avg_pool` over the taps a runtime mask keeps (masked taps are padding)."""
  cdt = _numerics.compute_dtype(x.dtype)
  count = _masks.counts(valid, geom, cdt)
  if divisor_override is not None:
    divisor = jnp.asarray(float(divisor_override), cdt)
  elif count_include_pad:
    padded = geom.valid_counts(True) - geom.valid_counts(False)  # taps in the explicit padding
    divisor = count + padded[..., None].astype(cdt)
  else:
    divisor = count
  # An empty window's sum is exactly 0 (masked taps add 0, and get no derivative), so its
  # output is 0 / max(divisor, 1) = 0 with a zero gradient without a select of its own.
  total = _reductions.masked_sum(x, valid, geom)
  y = (total / jnp.maximum(divisor, 1)).astype(x.dtype)
  return (y, _masks.returned(count > 0, no_channels)) if return_mask else y


def lp_pool(
  x: jnp.ndarray,
  p: float | jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Power-average (LP) pooling, PyTorch's ``lp_pool{1,2,3}d``.

  .. math:: y_p = \Big(\sum_{i \in R(p)} x_i^{\,p}\Big)^{1/p}

  a *sum* over the valid taps (no ``|x|``, as PyTorch: for non-integer ``p``
  the input should be non-negative). ``p = 1`` is sum pooling, ``p -> inf``
  max pooling of ``|x|``; ``p=float('inf')`` computes that exactly.

  Differences from PyTorch, on purpose:

  * Evaluated as ``m * (sum (x_i / m)^p)^(1/p)`` with ``m`` the window's
    ``max |x|``, so it neither overflows nor underflows where PyTorch does
    (``p = 2`` overflows PyTorch's f32 above ``|x| ~ 1.8e19``).
  * With ``ceil_mode`` a partial last window sums its valid taps; PyTorch
    rescales it by ``window_size / valid_count`` (its LP pool is built on
    ``avg_pool``).
  * An odd integer ``p`` whose window sum is negative gives the real root
    ``-|S|^{1/p}`` (PyTorch: NaN). ``padding`` and ``dilation`` are extensions.

  Gradient: :math:`\partial y_p / \partial x_i = x_i^{p-1} y_p^{1-p}`, and 0 for an
  all-zero window (PyTorch's rule), evaluated scale-free as
  :math:`r_i^{p-1} |T|^{1/p - 1}` (:math:`r = x / m`, :math:`T = \sum r^p`), so it
  is finite wherever the value is, at any magnitude and for odd ``p`` on mixed
  signs; ``p`` may be a traced array (learnable), with
  :math:`\partial y / \partial p = y\,(\sum r^p \ln|r| / (p T) - \ln|T| / p^2)`.
  A window holding infinities gives the exact limit (``+-inf``, or NaN for
  ``inf - inf``).

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    p: the power, a positive number or a scalar array (learnable).
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    mask, return_mask: as :func:`max_pool`: masked positions add nothing to the
      sum (they are padding); an empty window gives 0 with a zero gradient.

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Example:
    >>> x = jnp.array([[3.], [4.], [1.], [1.]])
    >>> lp_pool(x, 2, (2,))[:, 0]
    Array([5.       , 1.4142135], dtype=float32)
  """
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'lp_pool')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  p = _fields.check_p(p)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'lp_pool', return_mask)
  if valid is None:
    return _lp(x, p, geom)
  # Masked positions hold 0, which adds nothing to a sum of powers: padding's rule.
  y = _lp(_masks.data(x, valid), p, geom)
  return _masks.with_mask(y, valid, no_channels, geom, return_mask)


def _lp(x, p, geom: Geometry) -> jnp.ndarray:
  if isinstance(p, float) and math.isinf(p):
    return _reductions.extremum_pool(jnp.abs(x), geom, 'max')
  static_p = p if isinstance(p, float) else None
  cdt = _numerics.compute_dtype(x.dtype)
  xc = x.astype(cdt)
  # The result does not depend on the scale; no derivative flows through it.
  scale = _windows.reduce_window(lax.stop_gradient(jnp.abs(xc)), 0, lax.max, geom)
  if static_p is not None:
    return _lp_root(xc, jnp.asarray(p, cdt), scale, geom, static_p).astype(x.dtype)
  # A traced p may be inf at run time: then the static path's max |x| (first maximum), so
  # that p's value, not its type, decides the result; the finite branch sees p = 1 there.
  p = jnp.asarray(p, cdt)
  finite = jnp.isfinite(p)
  y = _lp_root(xc, jnp.where(finite, p, jnp.ones((), cdt)), scale, geom, None)
  y = jnp.where(finite, y, _reductions.extremum_pool(jnp.abs(xc), geom, 'max'))
  return y.astype(x.dtype)


def _lp_parts(x, p_arr, scale, geom: Geometry, static_p):
  """``y = m sign(T) |T|^(1/p)``, ``T = sum_R (x / m)^p``, ``m = scale``, and the pieces."""
  static_int = static_p is not None and float(static_p).is_integer()
  p = p_arr if static_p is None else static_p
  down, up = _numerics.scale_normalizer(scale)
  power = lambda r: lax.integer_pow(r, int(p)) if static_int else jnp.power(r, p)
  r = _windows.Taps.read(x, geom, 0.0).map(down).where_valid(0)
  total = r.map(power).sum()
  # 0 for an all-zero window; a window holding infinities keeps up(0) = NaN (inf - inf)
  nonzero = (total != 0) | jnp.isinf(scale)
  magnitude = jnp.where(nonzero, jnp.abs(total), jnp.ones((), total.dtype))
  y = jnp.where(
    nonzero, up(jnp.sign(total) * jnp.power(magnitude, 1.0 / p)), jnp.zeros((), total.dtype)
  )
  return y, (p, r, total, nonzero, magnitude, static_int, power)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _lp_root(x, p_arr, scale, geom: Geometry, static_p):
  """LP pooling of ``x`` in the compute dtype (``scale`` = window ``max |x|``, no derivative)."""
  return _lp_parts(x, p_arr, scale, geom, static_p)[0]


@_lp_root.defjvp
def _lp_root_jvp(geom, static_p, primals, tangents):
  # dy/dx_i = r_i^(p-1) |T|^(1/p - 1): degree 0 in x and written without m, so no
  # intermediate overflows (plain autodiff multiplies the cotangent by m first); 0 for an
  # all-zero window. dy/dp = y (sum r^p ln|r| / (p T) - ln|T| / p^2). Linear in the tangents.
  x, p_arr, scale = primals
  x_dot, p_dot, _ = tangents
  y, (p, r, total, nonzero, magnitude, static_int, power) = _lp_parts(
    x, p_arr, scale, geom, static_p
  )
  coef = jnp.where(nonzero, jnp.power(magnitude, 1.0 / p - 1), jnp.zeros((), y.dtype))
  rp1 = r.map(lambda v: lax.integer_pow(v, int(p) - 1) if static_int else jnp.power(v, p - 1))
  dots = _windows.Taps.read(x_dot, geom, 0.0)
  y_dot = coef * rp1.map(jnp.multiply, dots).where_valid(0).sum()
  if static_p is None:
    log_r = r.map(lambda v: jnp.log(jnp.where(v != 0, jnp.abs(v), jnp.ones((), v.dtype))))
    weighted = r.map(power).map(jnp.multiply, log_r).sum()
    safe_total = jnp.where(nonzero, total, jnp.ones((), total.dtype))
    dlog = weighted / (p * safe_total) - jnp.log(magnitude) / p**2
    y_dot = y_dot + y * dlog * p_dot
  return y, y_dot


# --- unpooling ----------------------------------------------------------------------


@jax.custom_jvp
def _scatter_set(values, index, size_holder):
  # values/index: (rows, P); size_holder: zeros (rows, Q) giving the output size.
  return jax.vmap(lambda z, i, v: z.at[i].set(v, mode='drop'))(size_holder, index, values)


@_scatter_set.defjvp
def _scatter_set_jvp(primals, tangents):
  # Tangent: each value's tangent added at its index (linear; the holder is a constant of
  # zeros). Its transpose is a gather: every output reads its index, as PyTorch's gradient.
  values, index, size_holder = primals
  values_dot = tangents[0]
  out = _scatter_set(values, index, size_holder)
  zeros = jnp.zeros_like(size_holder)
  return out, jax.vmap(lambda z, i, v: z.at[i].add(v, mode='drop'))(zeros, index, values_dot)


def max_unpool(
  y: jnp.ndarray,
  indices: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: int | Sequence[int] = 0,
  output_size: Sequence[int] | None = None,
  *,
  mask: jnp.ndarray | None = None,
) -> jnp.ndarray:
  r"""Inverse of :func:`max_pool` with ``return_indices``: PyTorch's ``max_unpool{1,2,3}d``.

  .. math:: \hat x_{\mathrm{indices}_p} = y_p, \quad \hat x_i = 0 \text{ elsewhere}

  per (batch, channel) slice. Output spatial size, unless ``output_size`` is
  given: ``(out - 1) * stride - 2 * padding + window`` per dim (``output_size``
  must lie strictly within ``stride`` of that, as PyTorch checks). An index
  outside ``[0, prod(output spatial size))`` (a negative "no index" marker such
  as ``-1``, or one past the end) raises ``ValueError`` when ``indices`` is
  concrete, as PyTorch; under ``jit`` (traced indices, which cannot be checked)
  such an entry is dropped: it writes nothing and gets gradient 0 — never
  wrapped NumPy-style. Gradient: ``ȳ_p = x̄_{indices_p}`` (every output reading
  its index, as PyTorch).

  Args:
    y: pooled values ``(*batch, *out, C)``.
    indices: int flat indices, same shape as ``y``.
    window, strides: as given to :func:`max_pool` (``strides=None`` = window).
    padding: int or per-dim ints, as given to :func:`max_pool`.
    output_size: spatial sizes, or the whole output shape (spatial taken).
    mask: the pooled mask of a masked :func:`max_pool` (``return_mask=True``),
      ``(*batch, *out)`` or broadcastable to ``y``: entries where it is False
      (empty windows, whose index is -1) write nothing and are not checked.

  Returns:
    ``(*batch, *in, C)`` in ``y``'s dtype.

  Example:
    >>> x = jnp.array([[1.], [3.], [2.], [0.]])
    >>> y, idx = max_pool(x, (2,), return_indices=True)
    >>> max_unpool(y, idx, (2,))[:, 0]
    Array([0., 3., 2., 0.], dtype=float32)
  """
  y = _numerics.as_array(y, 'y')
  indices = _numerics.as_array(indices, 'indices')
  window = _geometry.normalize_window(window)
  n = len(window)
  nb = _geometry.check_rank(y.shape, n, 'y')
  if indices.shape != y.shape:
    raise ValueError(f'indices must have the shape of y {y.shape}; got {indices.shape}')
  if not jnp.issubdtype(indices.dtype, jnp.integer):
    raise TypeError(f'indices must be integers; got dtype {indices.dtype}')
  strides = window if strides is None else _geometry.int_tuple(strides, n, 'strides')
  pads = _geometry.int_tuple(padding, n, 'padding', minimum=0)
  pooled = y.shape[nb : nb + n]
  default = tuple((o - 1) * s - 2 * p + k for o, s, p, k in zip(pooled, strides, pads, window))
  if output_size is None:
    size = default
  else:
    size = _geometry.unpool_output_size(output_size, y.shape, nb, n)
    for d, (got, dflt, s) in enumerate(zip(size, default, strides)):
      if not dflt - s < got < dflt + s:
        raise ValueError(
          f'output_size {output_size!r}: entry {d} must be in ({dflt - s}, {dflt + s}) '
          f'for this y, window and strides; got {got}'
        )
  if any(v < 1 for v in size):
    raise ValueError(f'max_unpool output spatial size must be positive; got {size}')
  batch, channels = y.shape[:nb], y.shape[-1]
  rows = math.prod(batch) * channels

  def to_rows(a):
    return jnp.moveaxis(a.reshape(math.prod(batch), math.prod(pooled), channels), -1, 1).reshape(
      rows, math.prod(pooled)
    )

  total = math.prod(size)
  checked = _masks.check(mask, y, 'max_unpool')
  if checked is not None:
    # Entries outside the mask: an index past the end, which the scatter and gather drop.
    indices = jnp.where(checked[0], indices, jnp.asarray(total, indices.dtype))
  try:
    concrete = np.asarray(indices)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    concrete = None  # traced: out-of-range entries are dropped below
  if checked is not None and concrete is not None:
    concrete = concrete[np.broadcast_to(np.asarray(checked[0]), concrete.shape)]
  if concrete is not None and concrete.size and (concrete.min() < 0 or concrete.max() >= total):
    bad = concrete[(concrete < 0) | (concrete >= total)]
    raise ValueError(
      f'indices must lie in [0, {total}) (flat positions in the output spatial size {size}); '
      f'got {bad.size} outside, e.g. {int(bad.flat[0])}'
    )
  # A negative index would wrap NumPy-style in the scatter and the gather: send it past the
  # end, where both drop it.
  flat = indices.astype(jnp.int32)
  flat = jnp.where(flat < 0, jnp.int32(total), flat)
  holder = jnp.zeros((rows, total), y.dtype)
  out = _scatter_set(to_rows(y), to_rows(flat), holder)
  out = jnp.moveaxis(out.reshape(math.prod(batch), channels, math.prod(size)), 1, -1)
  return out.reshape(*batch, *size, channels)
