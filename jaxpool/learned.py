"""Learned and guided pooling: mixed, gated and tree pooling, and DPP.

* :func:`max_avg_pool`, :func:`gated_pool`, :func:`tree_pool` — Lee, Gallagher
  & Tu, "Generalizing Pooling Functions in Convolutional Neural Networks:
  Mixed, Gated, and Tree", AISTATS 2016.
* :func:`dpp_pool` — Saeedan, Weber, Goesele & Roth, "Detail-Preserving
  Pooling in Deep Networks", CVPR 2018.

Parameters are plain arrays passed in by the caller (the Flax modules in
:mod:`jaxpool.linen` own and initialise them). Every op works on the valid
(non-padding) taps of each window only, in any number of spatial dims, and is
differentiated by JAX through :func:`~jaxpool._windows.window_taps` (whose
backward is scatter-free) and :func:`jaxpool.max_pool`'s first-maximum VJP.

Numerics: finite inputs of any magnitude give finite outputs and gradients.
Window means are summed on ``x / 2**k`` (``2**k >= window size``, exact); DPP
rescales each window by a power of two ``t`` (invisible to its result and, via
its linear tangent rule, to its derivatives). The learned inner products of gated and tree
pooling are plain sums: finite whenever every product ``w_q x_q`` is (always for
``|w_q| <= 1``); a gate's sum may saturate to ``+-inf``, which the sigmoid maps
to 0 or 1 with zero gradient.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _geometry, _masks, _numerics, _reductions, _windows
from jaxpool._geometry import Geometry, Padding

__all__ = ['max_avg_pool', 'gated_pool', 'tree_pool', 'dpp_pool']


# --- shared pieces ------------------------------------------------------------------


def _window_setup(x, op, window, strides, padding, dilation, ceil_mode):
  x = _numerics.as_array(x)
  _numerics.check_float(x, op)
  geom, nb = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  out_shape = (*x.shape[:nb], *geom.out_shape, x.shape[-1])
  return x, geom, out_shape, _numerics.compute_dtype(x.dtype)


def _counts(geom: Geometry, dtype) -> np.ndarray:
  """Valid taps per window, ``(*out, 1)``, at least 1 (empty windows are zeroed later)."""
  return np.maximum(geom.valid_counts(), 1)[..., None].astype(dtype)


def _zero_empty_cast(y, geom: Geometry, dtype):
  """A window without a valid tap gives 0; cast back to the input dtype."""
  empty = _reductions.empty_windows(geom)
  if empty is not None:
    y = jnp.where(empty, jnp.zeros((), y.dtype), y)
  return y.astype(dtype)


def _masked_result(y, any_valid, no_channels: bool, return_mask: bool, dtype):
  """``y`` with 0 in windows that keep no tap, cast to ``dtype``; with the pooled mask."""
  y = _masks.zero_where_empty(y, any_valid).astype(dtype)
  return (y, _masks.returned(any_valid, no_channels)) if return_mask else y


def _mixing_weight(value, name: str, out_shape, dtype):
  """A weight broadcastable to the output ``(*batch, *out, C)`` without changing it."""
  arr = _numerics.as_array(value, name)
  if arr.dtype == jnp.bool_:
    raise TypeError(f'{name} must be a number or a float array; got a bool')
  # right-aligned, each dim 1 or equal (works with symbolic output dims too)
  ok = arr.ndim <= len(out_shape) and all(
    a == 1 or a == o for a, o in zip(arr.shape[::-1], tuple(out_shape)[::-1])
  )
  if not ok:
    raise ValueError(
      f'{name} must broadcast to the output shape {tuple(out_shape)}: a scalar, (C,), '
      f'(*out_spatial, 1) or (*out_spatial, C) (or with batch dims); got shape {arr.shape}'
    )
  return arr.astype(dtype)


def _nonnegative_per_channel(value, name: str, channels: int, dtype):
  """A scalar or ``(C,)`` parameter >= 0 (values are checked when not traced)."""
  arr = _numerics.as_array(value, name)
  if arr.dtype == jnp.bool_:
    raise TypeError(f'{name} must be a number or a float array; got a bool')
  if arr.shape not in ((), (1,), (channels,)):
    raise ValueError(
      f'{name} must be a scalar or have shape ({channels},) (one per channel); '
      f'got shape {arr.shape}'
    )
  try:
    concrete = np.asarray(arr)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    concrete = None  # traced: the caller keeps it in range (the modules use exp)
  if concrete is not None and not np.all(concrete >= 0):
    raise ValueError(f'{name} must be >= 0 everywhere; got {concrete!r}')
  return arr.astype(dtype)


def _window_filters(
  value, name: str, geom: Geometry, channels: int, dtype, lead: tuple[int, ...] = ()
):
  """Filters of shape ``(*lead, *window)`` or ``(*lead, *window, C)`` -> ``(*lead, K, C)``.

  Shared filters are broadcast over channels: autodiff then reduces their gradient
  over batch and space per channel first (a fast column reduction on XLA:CPU).
  """
  arr = _numerics.as_array(value, name)
  shared = (*lead, *geom.window)
  per_channel = (*shared, channels)
  if arr.shape not in (shared, per_channel):
    raise ValueError(
      f'{name} must have shape {shared} (shared over channels) or {per_channel} '
      f'(one filter per channel); got shape {arr.shape}'
    )
  if arr.shape == shared:
    arr = arr[..., None]
  arr = arr.astype(dtype).reshape(*lead, geom.window_size, arr.shape[-1])
  return jnp.broadcast_to(arr, (*lead, geom.window_size, channels))


def _pow2_scale(magnitude):
  """``(t, 1 / t)``: ``t`` a power of two >= 1 with ``magnitude / t < 4``, ``1 / t`` normal.

  Read off the float's exponent bits (``frexp``/``ldexp`` are slow on XLA:CPU).
  """
  magnitude = lax.stop_gradient(magnitude)  # a scale: constant to differentiation
  dtype = magnitude.dtype
  finfo = jnp.finfo(dtype)
  itype = jnp.int64 if dtype.itemsize == 8 else jnp.int32
  bias = finfo.maxexp - 1  # 127 for float32
  bits = lax.bitcast_convert_type(jnp.maximum(magnitude, 1), itype)
  exponent = jnp.minimum(bits >> finfo.nmant, 2 * bias - 1)  # biased; t <= 2**(bias - 1)
  t = lax.bitcast_convert_type(exponent << finfo.nmant, dtype)
  inv_t = lax.bitcast_convert_type((2 * bias - exponent) << finfo.nmant, dtype)
  return t, inv_t


# --- Lee et al. 2016: mixed, gated, tree ------------------------------------------------


def max_avg_pool(
  x: jnp.ndarray,
  alpha,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Mixed max-average pooling (Lee, Gallagher & Tu, AISTATS 2016).

  .. math:: y_p = \alpha_p \max_{i \in R(p)} x_i + (1 - \alpha_p) \frac{1}{|R(p)|}
            \sum_{i \in R(p)} x_i

  over the valid (non-padding) taps ``R(p)`` of each window: the average is
  ``avg_pool(..., count_include_pad=False)``. ``alpha`` in ``[0, 1]`` is the
  paper's range (0 is average, 1 is max pooling); other values extrapolate and
  are not checked. Granularities of the paper: one ``alpha`` per layer (scalar),
  per channel ``(C,)``, per region ``(*out_spatial, 1)`` or per region and
  channel ``(*out_spatial, C)``. A window with no valid tap (possible only with
  dilation) gives 0.

  Output size per spatial dim, as :func:`jaxpool.max_pool` (PyTorch's rule)::

    out = floor((L + pad_lo + pad_hi - dilation * (k - 1) - 1 + (s - 1 if ceil_mode)) / s) + 1

  Gradients (exact): :math:`\partial y_p / \partial x_i = \alpha_p [i = i^*_p]
  + (1 - \alpha_p) / |R(p)|` with :math:`i^*_p` the *first* maximum of the
  window in row-major order (the tie rule of :func:`jaxpool.max_pool`), and
  :math:`\partial y_p / \partial \alpha_p = \max_R x - \mathrm{avg}_R x`.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions compute in f32.
    alpha: mixing proportion, broadcastable to the output ``(*batch, *out, C)``.
    window, strides, padding, dilation, ceil_mode: as :func:`jaxpool.max_pool`
      (``strides=None`` means ``window``).
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: the max and the average run over the
  unmasked taps, and a window with none gives 0 with a zero gradient.

  Example:
    >>> x = jnp.array([[1.], [3.], [2.], [6.]])
    >>> max_avg_pool(x, 0.5, (2,))[:, 0]
    Array([2.5, 5. ], dtype=float32)
  """
  x, geom, out_shape, cdt = _window_setup(
    x, 'max_avg_pool', window, strides, padding, dilation, ceil_mode
  )
  alpha = _mixing_weight(alpha, 'alpha', out_shape, cdt)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'max_avg_pool', return_mask)
  xc = x.astype(cdt)
  if valid is not None:
    top, mean, any_valid = _reductions.masked_max_and_mean(xc, valid, geom)
    y = _numerics.blend(alpha, top, mean)
    return _masked_result(y, any_valid, no_channels, return_mask, x.dtype)
  y = _numerics.blend(
    alpha, _reductions.valid_max(xc, geom), _reductions.window_mean(xc, geom)
  )  # alpha 1: max, 0: avg
  return _zero_empty_cast(y, geom, x.dtype)


def gated_pool(
  x: jnp.ndarray,
  gate,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Gated max-average pooling (Lee, Gallagher & Tu, AISTATS 2016).

  .. math:: y_p = \sigma(z_p) \max_{i \in R(p)} x_i + (1 - \sigma(z_p))
            \frac{1}{|R(p)|} \sum_{i \in R(p)} x_i, \qquad
            z_p = \sum_{i \in R(p)} \omega_{o(i)} x_i

  with :math:`\sigma` the logistic sigmoid and :math:`\omega_{o(i)}` the gate
  weight at the window offset of tap ``i``. Both the inner product and the
  average run over the valid (non-padding) taps only (the author's code clips
  windows at the border the same way). ``gate`` of shape ``window`` is one
  gating mask shared over channels and positions (the paper's "one per
  layer"); ``(*window, C)`` gives one per channel. A zero gate gives the mean
  of max and average pooling; a window with no valid tap gives 0.

  Output size: as :func:`jaxpool.max_pool`.

  Gradients (exact; ties to the *first* maximum in row-major window order, as
  :func:`jaxpool.max_pool`, where the author's CUDA code credits every tied
  maximum), with :math:`\delta_p = \sigma(1 - \sigma)(\max_R x - \mathrm{avg}_R x)`:

  .. math:: \frac{\partial y_p}{\partial x_i} = \sigma [i = i^*_p]
            + \frac{1 - \sigma}{|R(p)|} + \delta_p\, \omega_{o(i)}, \qquad
            \frac{\partial y_p}{\partial \omega_o} = \delta_p\, x_{i(o)}.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions compute in f32.
    gate: gating mask, shape ``window`` or ``(*window, C)``.
    window, strides, padding, dilation, ceil_mode: as :func:`jaxpool.max_pool`.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: it adds nothing to the gate's inner
  product, the max and the average run over the unmasked taps, and a window
  with none gives 0 with a zero gradient.

  Example:
    >>> x = jnp.array([[1.], [3.], [2.], [6.]])
    >>> gated_pool(x, jnp.zeros(2), (2,))[:, 0]   # sigma(0) = 1/2
    Array([2.5, 5. ], dtype=float32)
  """
  x, geom, out_shape, cdt = _window_setup(
    x, 'gated_pool', window, strides, padding, dilation, ceil_mode
  )
  omega = _window_filters(gate, 'gate', geom, out_shape[-1], cdt)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'gated_pool', return_mask)
  xc = x.astype(cdt)
  if valid is not None:
    top, mean, any_valid = _reductions.masked_max_and_mean(xc, valid, geom)
    s = jax.nn.sigmoid(_windows.Taps.read(_masks.data(xc, valid), geom, 0.0).dot(omega))
    return _masked_result(
      _numerics.blend(s, top, mean), any_valid, no_channels, return_mask, x.dtype
    )
  taps = _windows.Taps.read(xc, geom, 0.0)  # padding reads 0: adds nothing to the dot
  s = jax.nn.sigmoid(taps.dot(omega))
  y = _numerics.blend(
    # by_taps=False: the max fused with the gate's tap reads ran 2x slower (forward)
    s,
    _reductions.valid_max(xc, geom, by_taps=False),
    _reductions.window_mean(xc, geom),
    hold=not _windows.tiles(geom),  # windows that tile: 1.06x with the masks held
  )  # saturated gates
  return _zero_empty_cast(y, geom, x.dtype)


def tree_pool(
  x: jnp.ndarray,
  leaves,
  gates,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Tree pooling (Lee, Gallagher & Tu, AISTATS 2016): gated mixtures of learned filters.

  A complete binary tree of depth ``d`` in heap order: node 0 is the root, node
  ``i`` has children ``2i + 1`` (left) and ``2i + 2`` (right); nodes
  ``0 .. 2**d - 2`` are internal and use ``gates[i]``, nodes
  ``2**d - 1 + m`` are the leaves ``m = 0 .. 2**d - 1`` (left to right) and
  use ``leaves[m]``:

  .. math:: f_{\mathrm{leaf}\ m}(p) = v_m^\top x_{R(p)}, \qquad
            f_i(p) = \sigma(\omega_i^\top x_{R(p)})\, f_{2i+1}(p)
                     + (1 - \sigma(\omega_i^\top x_{R(p)}))\, f_{2i+2}(p), \qquad
            y_p = f_0(p)

  where :math:`v^\top x_{R(p)} = \sum_{i \in R(p)} v_{o(i)} x_i` runs over the
  valid (non-padding) taps. The paper's "2-level tree" is ``d = 1`` (two leaves,
  one gate; the author's AlexNet example), its 3-level tree ``d = 2``; ``d = 0``
  (one leaf, no gate) is a learned linear pooling filter. Each filter is
  ``window``-shaped (shared over channels, as in the paper) or has a trailing
  ``C`` axis (one per channel); leaves and gates choose independently.

  Output size: as :func:`jaxpool.max_pool`.

  Gradients (autodiff of the smooth formula): with :math:`\sigma_i` node ``i``'s
  gate, :math:`\partial f_i / \partial \omega_i = \sigma_i (1 - \sigma_i)
  (f_{2i+1} - f_{2i+2})\, x_{R}`, and a leaf's filter gets
  :math:`x_R` times the product of the gate factors on its path to the root.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions compute in f32.
    leaves: ``(2**d, *window)`` or ``(2**d, *window, C)`` leaf filters.
    gates: ``(2**d - 1, *window)`` or ``(2**d - 1, *window, C)`` gating masks.
    window, strides, padding, dilation, ceil_mode: as :func:`jaxpool.max_pool`.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: it adds nothing to any inner product (the
  filters are not renormalised, as at the border), and a window with no
  unmasked tap gives 0 with a zero gradient.

  Example:
    >>> x = jnp.array([[1.], [3.], [2.], [6.]])
    >>> leaves = jnp.array([[0.5, 0.5], [0.0, 1.0]])   # average; right tap
    >>> gates = jnp.zeros((1, 2))                       # sigma = 1/2 at the root
    >>> tree_pool(x, leaves, gates, (2,))[:, 0]
    Array([2.5, 5. ], dtype=float32)
  """
  x, geom, out_shape, cdt = _window_setup(
    x, 'tree_pool', window, strides, padding, dilation, ceil_mode
  )
  n = geom.ndim
  for name, value in (('leaves', leaves), ('gates', gates)):
    shape = np.shape(value)
    if len(shape) not in (n + 1, n + 2):
      raise ValueError(
        f'{name} must have shape ({name}, *window) or ({name}, *window, C) with window '
        f'{geom.window}; got shape {tuple(shape)}'
      )
  n_leaves = int(np.shape(leaves)[0])
  if n_leaves < 1 or n_leaves & (n_leaves - 1):
    raise ValueError(
      f'leaves must hold 2**depth filters (1, 2, 4, ...) along axis 0; got {n_leaves}'
    )
  channels = out_shape[-1]
  v = _window_filters(leaves, 'leaves', geom, channels, cdt, (n_leaves,))
  w = _window_filters(gates, 'gates', geom, channels, cdt, (n_leaves - 1,))
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'tree_pool', return_mask)
  xc = x.astype(cdt)
  if valid is not None:
    xc = _masks.data(xc, valid)
  taps = _windows.Taps.read(xc, geom, 0.0)  # padding reads 0: adds nothing to the dots
  # f[i] for heap node i: leaves first, then internal nodes bottom-up
  f: dict[int, jnp.ndarray] = {n_leaves - 1 + j: taps.dot(leaf) for j, leaf in enumerate(v)}
  for i in reversed(range(n_leaves - 1)):
    s = jax.nn.sigmoid(taps.dot(w[i]))
    f[i] = s * f[2 * i + 1] + (1 - s) * f[2 * i + 2]
  if valid is not None:
    return _masked_result(f[0], _masks.pooled(valid, geom), no_channels, return_mask, x.dtype)
  return _zero_empty_cast(f[0], geom, x.dtype)


# --- Saeedan et al. 2018: detail-preserving pooling -----------------------------------


class _DPPContext:
  """Pieces of the DPP core for one geometry: tap algebra, counts, eps, the penalty floor.

  Taps are a tuple of ``(*batch, *out, C)`` arrays for up to
  ``_windows.UNROLL_MAX_TAPS`` taps (one fused graph per tap: fastest to run), else
  one stacked ``(K, *batch, *out, C)`` array (an HLO whose size does not grow with
  the window: 3-d windows compile ~9x faster). ``map``, ``sum``, ``max`` and
  ``valid`` act on either; per-window arrays broadcast against both.
  """

  def __init__(self, geom: Geometry, dtype, symmetric: bool, eps_t, num_batch: int, valid=None):
    self.stacked = not _windows.unrolls(geom)
    self.size = geom.window_size
    if valid is None:
      # Static validity (None: all valid): the stacked mask, or one per tap when unrolled.
      self.stacked_mask = _windows.stacked_tap_masks(geom, num_batch) if self.stacked else None
      self.tap_masks = (
        [] if self.stacked else [_windows.tap_mask(geom, o) for o in _windows.offsets(geom)]
      )
      self.counts = _counts(geom, dtype)
      self.empty = _reductions.empty_windows(geom)
    else:
      # A runtime mask's taps (False in the padding too): validity and counts per window.
      self.stacked_mask = valid if self.stacked else None
      self.tap_masks = [] if self.stacked else list(valid)
      count = self.sum(self.map(lambda v: v.astype(dtype), valid))
      self.counts, self.empty = jnp.maximum(count, 1), count == 0  # type: ignore[assignment]
    self.symmetric = symmetric
    self.eps_t = eps_t  # eps / t**2 per window
    # d**2 + eps >= floor: 1/floor bounds every backward factor; the floor is eps_dtype**2
    # below the finest relative difference the dtype resolves, so it never changes a weight.
    self.floor = float(jnp.finfo(dtype).eps) ** 4

  def map(self, f, *args):
    """``f`` per tap; tuple arguments are per tap, arrays per window (or stacked)."""
    if self.stacked:
      return f(*args)
    columns = [a if isinstance(a, (tuple, list)) else (a,) * self.size for a in args]
    return tuple(f(*values) for values in zip(*columns))

  def sum(self, taps):
    return jnp.sum(taps, axis=0) if self.stacked else functools.reduce(jnp.add, taps)

  def max(self, taps):
    return _numerics.stacked_extremum(taps) if self.stacked else functools.reduce(jnp.maximum, taps)

  def valid(self, taps, fill=0.0):
    """Per-tap values with the invalid (padding) taps replaced by ``fill``."""
    if self.stacked:
      return (
        taps
        if self.stacked_mask is None
        else jnp.where(self.stacked_mask, taps, jnp.asarray(fill, taps.dtype))
      )
    return tuple(
      v if m is None else jnp.where(m, v, jnp.asarray(fill, v.dtype))
      for v, m in zip(taps, self.tap_masks)
    )

  def deviation(self, xs, gs):
    """``d_q = x_q - guide`` (asymmetric: clipped at 0) and ``d_q**2 + eps`` (>= floor)."""
    devs = self.map(
      (lambda x: x - gs) if self.symmetric else (lambda x: jnp.maximum(x - gs, 0)), xs
    )
    return devs, self.map(lambda d: jnp.maximum(jnp.square(d) + self.eps_t, self.floor), devs)


def _dpp_forward(ctx: _DPPContext, xs, alpha, half_lam, gs):
  """DPP on taps scaled by ``1 / t``. Returns ``y / t`` and the per-window values.

  With ``P_q = d_q**2 + eps``, ``M = mean_R P``, ``L_q = lam/2 log(P_q / M)``,
  ``s = max_R L`` and ``c`` a power of two near ``max(alpha e^-s, 1)`` (held
  constant: common factors of the weights cancel), ``w_q = (alpha e^-s + e^(L_q - s)) / c``
  and ``y = sum w x / sum w``. ``1 / c`` is a normal float, so multiplying by it never
  flushes to 0 (XLA turns a shared division into one).
  """
  if gs is None:  # DPP lite: the window mean, as max + mean(x - max): exact on constant windows
    top = ctx.max(ctx.valid(xs, -np.inf))
    if ctx.empty is not None:
      top = jnp.where(ctx.empty, 0, top)
    # computed once (XLA:CPU would otherwise re-derive it inside every tap's fusion)
    gs = _numerics.materialize(
      top + ctx.sum(ctx.valid(ctx.map(lambda x: x - top, xs))) / ctx.counts
    )
  _, penalty = ctx.deviation(xs, gs)
  log_mean = jnp.log(ctx.sum(ctx.valid(penalty)) / ctx.counts)
  log_ratio = ctx.valid(ctx.map(lambda e: half_lam * (jnp.log(e) - log_mean), penalty), -np.inf)
  shift = ctx.max(log_ratio)
  if ctx.empty is not None:
    shift = jnp.where(ctx.empty, 0, shift)
  offset = alpha * jnp.exp(-shift)
  _, inv_scale = _pow2_scale(offset)  # weights < 5: a huge alpha cannot overflow their sum
  weights = ctx.valid(ctx.map(lambda lr: (offset + jnp.exp(lr - shift)) * inv_scale, log_ratio))
  total = ctx.sum(weights)
  if ctx.empty is not None:
    total = jnp.where(ctx.empty, 1, total)
  y = ctx.sum(ctx.map(jnp.multiply, weights, xs)) / total
  return y, (gs, log_mean, shift, inv_scale, total, y)


def _dpp_scaled(ctx: _DPPContext, taps, guide, eps):
  """Per-window power-of-two scale ``t``, the scaled taps, and ``eps / t**2``."""
  max_abs = ctx.max(ctx.map(jnp.abs, taps))
  if guide is not None:
    max_abs = jnp.maximum(max_abs, jnp.abs(guide))
  _, inv_t = _pow2_scale(max_abs)
  inv_t = _numerics.materialize(inv_t)  # computed once, not inside every tap's fusion
  t = 1 / inv_t  # exact: a power of two
  xs = ctx.map(lambda tap: tap * inv_t, taps)
  return t, xs, None if guide is None else guide * inv_t, jnp.square(math.sqrt(eps) * inv_t)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6, 7))
def _dpp(taps, alpha, half_lam, guide, valid, geom: Geometry, symmetric: bool, eps: float):
  """``y = t * F(taps / t, guide / t)``: exact and finite for inputs of any magnitude.

  ``taps``: a tuple of per-tap arrays, or one stacked array (see :class:`_DPPContext`);
  ``valid``: None, or a runtime mask's taps in the same form (masked taps are padding).
  """
  return _dpp_primal(taps, alpha, half_lam, guide, valid, geom, symmetric, eps)[0]


def _context(geom: Geometry, alpha, symmetric: bool, eps_t, valid):
  return _DPPContext(geom, alpha.dtype, symmetric, eps_t, alpha.ndim - geom.ndim - 1, valid)


def _dpp_primal(taps, alpha, half_lam, guide, valid, geom, symmetric, eps):
  ctx = _context(geom, alpha, symmetric, None, valid)
  t, xs, gs, ctx.eps_t = _dpp_scaled(ctx, taps, guide, eps)
  y, window = _dpp_forward(ctx, xs, alpha, half_lam, gs)
  return t * y, (ctx, t, xs, window)


@_dpp.defjvp
def _dpp_jvp(geom, symmetric, eps, primals, tangents):
  taps, alpha, half_lam, guide, valid = primals
  out, primal = _dpp_primal(taps, alpha, half_lam, guide, valid, geom, symmetric, eps)
  # Not checkpointed: reverse mode keeps the per-window values instead of recomputing
  # them (2x2: 0.75x the time, 0.73x the temp memory; 4x4 0.70x the time).
  return out, _dpp_tangent(primal, primals, tangents, geom)


def _dpp_tangent(primal, primals, tangents, geom: Geometry):
  r"""The tangent of :func:`_dpp`, linear in the tangents (JAX transposes it for reverse mode).

  On valid taps, with ``t`` the window scale (constant: ``F`` is scale-equivariant),
  ``s`` and ``c`` held constant (common factors of the weights cancel) and
  ``W = sum w``: ``d_dot = x_dot - guide_dot`` (asymmetric: 0 where clipped),
  ``P_dot = 2 d d_dot`` above the floor, ``(log M)_dot = sum P_dot / sum P``,
  ``L_dot = (lam/2)_dot log(P / M) + lam/2 (P_dot / P - (log M)_dot)``,
  ``w_dot = alpha_dot e^-s / c + E L_dot`` and
  ``y_dot = t sum (w_dot (x - y) + w x_dot) / W`` (``x`` scaled, its tangent not: the
  factors ``t`` cancel); the lite guide's tangent is
  the window mean of ``x_dot``.
  """
  _, alpha, half_lam, guide, _ = primals
  taps_dot, alpha_dot, half_lam_dot, guide_dot, _ = tangents
  ctx, t, xs, (gs, log_mean, shift, inv_scale, total, y) = primal
  # y = t F(x / t): the input tangents enter unscaled (t and 1/t cancel), so a
  # cotangent is never multiplied by t; only the parameters' terms carry t.
  xs_dot = taps_dot
  if not _windows.tiles(geom):  # windows that overlap or pad (3x3/s2/p1 f+b 0.44x)
    xs_dot = _numerics.reverse_barrier(xs_dot, ~jnp.any(total < 0))  # total >= 0, or NaN
  gs_dot = ctx.sum(ctx.valid(xs_dot)) / ctx.counts if guide is None else guide_dot
  devs, penalty = ctx.deviation(xs, gs)
  if ctx.symmetric:
    dev_dot = ctx.map(lambda xd: xd - gs_dot, xs_dot)
  else:
    dev_dot = ctx.map(lambda xd, x: jnp.where(x > gs, xd - gs_dot, 0), xs_dot, xs)
  p_dot = ctx.valid(
    ctx.map(lambda d, dd, e: jnp.where(e > ctx.floor, 2 * d, 0) * dd, devs, dev_dot, penalty)
  )
  log_mean_dot = ctx.sum(p_dot) / ctx.sum(ctx.valid(penalty))
  log_ratio = ctx.map(lambda e: jnp.log(e) - log_mean, penalty)  # log(P / M)
  expo = ctx.valid(ctx.map(lambda lr: jnp.exp(half_lam * lr - shift) * inv_scale, log_ratio))
  offset = alpha * jnp.exp(-shift) * inv_scale
  x_terms = ctx.valid(
    ctx.map(
      lambda ex, lr, pd, e, x, xd: (
        ex * half_lam * (pd / e - log_mean_dot) * (x - y) + (offset + ex) * xd
      ),
      expo,
      log_ratio,
      p_dot,
      penalty,
      xs,
      xs_dot,
    )
  )
  offset_dot = alpha_dot * jnp.exp(-shift) * inv_scale
  param_terms = ctx.valid(
    ctx.map(lambda ex, lr, x: (offset_dot + ex * half_lam_dot * lr) * (x - y), expo, log_ratio, xs)
  )
  return ctx.sum(x_terms) / total + t * (ctx.sum(param_terms) / total)


def dpp_pool(
  x: jnp.ndarray,
  alpha,
  lam,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  *,
  guide: jnp.ndarray | None = None,
  symmetric: bool = True,
  eps: float = 1e-3,
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Detail-Preserving Pooling (Saeedan, Weber, Goesele & Roth, CVPR 2018).

  An inverse bilateral filter: taps that differ from the guide get more weight.

  .. math:: y_p = \frac{\sum_{q \in R(p)} w_q x_q}{\sum_{q \in R(p)} w_q}, \qquad
            w_q = \alpha + \Big(\frac{d_q^2 + \varepsilon}
                  {\mathrm{mean}_{R(p)}(d^2 + \varepsilon)}\Big)^{\lambda / 2}

  with :math:`d_q = x_q - \tilde x_p` (symmetric) or :math:`d_q = \max(x_q -
  \tilde x_p, 0)` (asymmetric: only taps brighter than the guide are
  rewarded), over the valid (non-padding) taps ``R(p)`` of each window.
  ``guide`` :math:`\tilde x` is given at output resolution — DPP "full" uses a
  learned depthwise filter, see :class:`jaxpool.linen.DPP` — or, when None, is
  the window mean (DPP "lite"). ``eps`` is the paper's :math:`\varepsilon^2`.

  This is the reference nngraph implementation (``visinf/dpp``, normalised by
  the window *mean* of :math:`d^2 + \varepsilon`) generalised from 2x2/s2 to any
  window, stride, padding and dilation by computing the guide per window (no
  nearest-neighbour upsampling). The authors' CUDA kernel normalises by the
  window *sum*, which equals this with :math:`\alpha` scaled by
  :math:`|R|^{\lambda/2}`.

  Limits: :math:`\lambda = 0` (or :math:`\alpha \to \infty`) is average pooling
  over valid taps; a constant window returns its constant for any guide,
  :math:`\alpha`, :math:`\lambda`; a window with no valid tap gives 0.

  Numerics: the weights are evaluated as :math:`(\alpha e^{-s} +
  e^{\lambda/2 \log r_q - s}) / c` with the window's shift :math:`s = \max_q
  \lambda/2 \log r_q` and :math:`c` a power of two within 4x of
  :math:`\max(\alpha e^{-s}, 1)` (common factors cancel in the ratio), and inputs
  are rescaled per window by a power of two, so neither large inputs nor large :math:`\alpha, \lambda` overflow; the lite
  guide is ``max + mean(x - max)``, exact on constant windows, whose gradients
  are finite (:math:`d^2 + \varepsilon \ge \varepsilon`).

  Output size: as :func:`jaxpool.max_pool`.

  Derivatives (exact; a linear tangent rule, transposed by JAX for reverse mode: scatter-free) w.r.t. ``x``, ``guide``,
  ``alpha`` and ``lam``. With :math:`P_q = d_q^2 + \varepsilon`, :math:`M =
  \mathrm{mean}_R P`, :math:`W = \sum_q w_q` and :math:`\bar L_q = \bar y_p
  (x_q - y_p) (w_q - \alpha) / W`:

  .. math:: \frac{\partial y_p}{\partial \alpha} = \sum_q \frac{x_q - y_p}{W},
            \quad \frac{\partial y_p}{\partial \lambda} = \sum_q
            \frac{\bar L_q}{2 \bar y_p} \log\frac{P_q}{M},
            \quad \bar x_q = \bar y_p \frac{w_q}{W} + 2 d_q \frac{\lambda}{2}
            \Big(\frac{\bar L_q}{P_q} - \frac{\sum_r \bar L_r}{|R| M}\Big)

  plus, through the guide, :math:`\bar{\tilde x}_p = -\sum_q 2 d_q (\ldots)`
  (spread as :math:`1/|R|` per tap for DPP lite).

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions compute in f32.
    alpha: weight offset :math:`\alpha \ge 0`, scalar or ``(C,)``.
    lam: exponent :math:`\lambda \ge 0`, scalar or ``(C,)``.
    window, strides, padding: as :func:`jaxpool.max_pool`.
    guide: ``(*batch, *out, C)`` guide at output resolution, or None (window mean).
    symmetric: symmetric (True) or asymmetric (False) penalty.
    eps: :math:`\varepsilon^2 > 0`, default 1e-3 as the reference code.
    dilation, ceil_mode: as :func:`jaxpool.max_pool` (extensions: the paper
      pools 2x2/s2 only).
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: it has no weight, and the lite guide and
  the penalty's mean run over the unmasked taps; a window with none gives 0 with
  a zero gradient.

  Example:
    >>> x = jnp.array([[0.], [0.], [0.], [4.]])
    >>> # guide 1, d**2 = (1, 1, 1, 9), mean 3: weights 1 + (1/3, 1/3, 1/3, 3)
    >>> dpp_pool(x, 1.0, 2.0, (4,), eps=1e-12)[:, 0]
    Array([2.], dtype=float32)
    >>> dpp_pool(x, 1.0, 0.0, (4,))[:, 0]   # lam = 0: average pooling
    Array([1.], dtype=float32)
  """
  x, geom, out_shape, cdt = _window_setup(
    x, 'dpp_pool', window, strides, padding, dilation, ceil_mode
  )
  channels = out_shape[-1]
  alpha = _nonnegative_per_channel(alpha, 'alpha', channels, cdt)
  half_lam = _nonnegative_per_channel(lam, 'lam', channels, cdt) / 2
  symmetric = _checks.flag(symmetric, 'symmetric')
  eps = _checks.positive(eps, 'eps')
  if guide is not None:
    guide = _numerics.as_array(guide, 'guide')
    if guide.shape != tuple(out_shape):
      raise ValueError(
        f'guide must have the output shape (*batch, *out_spatial, C) = {tuple(out_shape)}; '
        f'got shape {guide.shape}'
      )
    guide = guide.astype(cdt)

  valid, no_channels, return_mask = _masks.prepare(mask, x, 'dpp_pool', return_mask)
  xc = x.astype(cdt)
  valid_taps = None
  if valid is not None:
    xc = _masks.data(xc, valid)
    valid_taps = _windows.Taps.read(valid, geom, False).data
  taps = _windows.Taps.read(xc, geom, 0.0).data
  alpha = jnp.broadcast_to(alpha, out_shape)  # per window: its gradient is scaled per window
  half_lam = jnp.broadcast_to(half_lam, out_shape)
  y = _dpp(taps, alpha, half_lam, guide, valid_taps, geom, symmetric, eps)
  if valid is not None:
    return _masked_result(y, _masks.pooled(valid, geom), no_channels, return_mask, x.dtype)
  return _zero_empty_cast(y, geom, x.dtype)


# --- what the Flax modules of both APIs share ------------------------------------------
