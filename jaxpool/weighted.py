r"""SoftPool and the softmax-weighted family: one window core, many logits.

Every op here computes, over the valid (non-padding) taps :math:`R(p)` of each
output window :math:`p`,

.. math::

   y_p = \sum_{i \in R(p)} w_{p,i}\, x_i, \qquad
   w_{p,i} = \frac{e^{z_{p,i}}}{\sum_{j \in R(p)} e^{z_{p,j}}}

with the logits

==============  ==============================================================
op              logits :math:`z_{p,i}`
==============  ==============================================================
``soft_pool``   :math:`x_i / T` (``T -> 0`` max, ``T -> inf`` average pooling)
``lip_pool``    given, :math:`z_i` (LIP)
``edscw_pool``  :math:`(2|x_i a_p| + \epsilon) / (x_i^2 + a_p^2 + \epsilon)`
``idw_pool``    :math:`-\log(|x_i - a_p| + \epsilon)`
==============  ==============================================================

(:math:`a_p` the mean of the window's valid taps). One core
(:func:`_weighted_pool`, a ``jax.custom_jvp``) serves them all. Its tangent is
linear in the tangents of ``x``, the logit source and the window statistic,
written over the same window taps as the forward, so JAX derives reverse mode
by transposing it (no scatter); it is checkpointed, so reverse mode stores the
inputs and the output and recomputes the weights:

.. math::

   \frac{\partial y_p}{\partial x_i}\Big|_{z} = w_{p,i}, \qquad
   \frac{\partial y_p}{\partial z_{p,i}} = w_{p,i}\,(x_i - y_p).

For non-overlapping windows (``strides == window``, no dilation) the SoftPool
and LIP tangent, and so its transpose, is a single elementwise pass over the input reshaped into
blocks, reading ``w = exp(z - logsumexp_R z)`` and ``y`` through broadcasts.

Numerics: the weights are evaluated as :math:`e_i = \exp(z_i - \max_R z)` (the
per-window maximum over valid taps), so any finite magnitude is safe; padded
taps are excluded (logit :math:`-\infty`); a tap whose weight is exactly 0 (a
``-inf`` logit) contributes 0 to the value and the gradient, never ``0 * inf``.
The weighted sum is accumulated at a power-of-two scale ``<= 1 / window_size``,
so it cannot overflow before the division. Half precisions accumulate in f32.

The reference code (SoftPool, adaPool, LIP) differs on purpose in several
places; each public function's docstring says where.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _reductions, _windows
from jaxpool._geometry import Geometry, Padding

__all__ = [
  'soft_pool',
  'lip_pool',
  'edscw_pool',
  'idw_pool',
  'ada_pool',
  'weighted_unpool',
  'ada_unpool',
]


# --- weightings: how a tap's unnormalised weight comes from (t, s) ---------------------
#
# A weighting maps a tap of the logit source ``t`` (input resolution, read per tap) and
# an optional per-window statistic ``s`` (output resolution) to an unnormalised
# weight ``e = exp(z - m - shift)``, ``m`` a per-window offset that makes
# ``e <= 2**-c`` (``shift = c * ln 2``, ``2**c >= window_size``). Since the
# softmax is invariant to a per-window shift, the backward treats ``m`` as a
# constant and only needs ``de/dt`` and ``de/ds`` (``weight_vjp``).


@dataclasses.dataclass(frozen=True)
class _Softmax:
  """``z = t / temperature``: SoftPool (t = x) and LIP (t = logits).

  ``temperature=None``: the temperature is traced and comes per window as ``s``;
  ``z - m = (t - m) / s`` is formed from the difference, so it cannot overflow
  (``t / s`` alone does once ``|t| > finfo.max * s``).
  """

  temperature: float | None = 1.0

  def offset(self, t: _windows.Taps, s):
    """The window maximum over valid taps."""
    del s
    return t.where_valid(-jnp.inf).max()

  def _scaled_difference(self, t, s, m):
    # Windows whose maximum is +-inf: 0 at the infinite taps (no inf - inf). Elsewhere the
    # plain difference, whose derivative is t's at ties too (m is a constant: it cancels).
    d = jnp.where((t == m) & jnp.isinf(m), 0, t - m)
    if self.temperature is None:
      return d / s
    if self.temperature != 1.0:
      d = d * (1.0 / self.temperature)
    return d

  def weight(self, t, s, m, geom):
    return jnp.exp(
      self._scaled_difference(t, s, m) - _reductions.scale_exponent(geom) * math.log(2.0)
    )

  def weight_vjp(self, t, s, m, e, e_bar, geom):
    del geom
    t_bar = e * e_bar
    if self.temperature is None:
      # de/dT = -e (t - m) / T**2 (m's share cancels in the normalised weights)
      t_bar = t_bar / s
      return t_bar, -t_bar * self._scaled_difference(t, s, m)
    if self.temperature != 1.0:
      t_bar = t_bar * (1.0 / self.temperature)
    return t_bar, None


@dataclasses.dataclass(frozen=True)
class _EDSCW:
  """eDSCW: ``z = (2|t s| + eps) / (t**2 + s**2 + eps)``, ``s`` the window mean; z in (0, 1]."""

  eps: float

  def offset(self, t: _windows.Taps, s):
    return None  # z <= 1: exp(z - 1) <= 1 needs no per-window maximum.

  def _dsc(self, t, s):
    # Scale-free evaluation: divide t, s by r = max(|t|, |s|, 1) and eps by r**2.
    # The value is unchanged and t**2 cannot overflow.
    r = jnp.maximum(jnp.maximum(jnp.abs(t), jnp.abs(s)), 1)
    u, v = t / r, s / r
    den = u * u + v * v + self.eps / r / r
    z = (2 * jnp.abs(u * v) + self.eps / r / r) / den
    return z, u, v, r * den

  def weight(self, t, s, m, geom):
    del m
    z, _, _, _ = self._dsc(t, s)
    return jnp.exp(z - 1 - _reductions.scale_exponent(geom) * math.log(2.0))

  def weight_vjp(self, t, s, m, e, e_bar, geom):
    # dz/dt = 2 (sign(t)|s| - z t) / (t**2 + s**2 + eps), in the scaled variables.
    # e_bar / r_den first: both scale with the input (an x - y), so their ratio stays normal
    # where 1 / r_den alone is subnormal (|x| near 1e38) and would be flushed to 0.
    del m, geom
    z, u, v, r_den = self._dsc(t, s)
    c = 2 * e * (e_bar / r_den)
    return c * (jnp.sign(u) * jnp.abs(v) - z * u), c * (jnp.sign(v) * jnp.abs(u) - z * v)


@dataclasses.dataclass(frozen=True)
class _InverseDistance:
  """IDW: ``w proportional to 1 / (|t - s| + eps)``, ``s`` the window mean.

  Normalised by the window's smallest distance ``h_min`` (so the closest tap
  has weight 1); distances are taken halved, ``|t/2 - s/2|``, so they cannot
  overflow.
  """

  eps: float

  def _half_distance(self, t, s):
    return jnp.abs(0.5 * t - 0.5 * s)

  def offset(self, t: _windows.Taps, s):
    """The window's smallest (halved) distance over valid taps."""
    return t.map(self._half_distance, s).where_valid(jnp.inf).min()

  def weight(self, t, s, m, geom):
    half_eps = 0.5 * self.eps
    scale = 2.0 ** -_reductions.scale_exponent(geom)
    return (m + half_eps) / (self._half_distance(t, s) + half_eps) * scale

  def weight_vjp(self, t, s, m, e, e_bar, geom):
    # de/dt = -e sign(t - s) / (2 (h + eps / 2)) = -de/ds; e_bar / (h + eps / 2) first (see
    # _EDSCW.weight_vjp: a ratio of two quantities of the input's scale).
    del m, geom
    ratio = e_bar / (self._half_distance(t, s) + 0.5 * self.eps)
    c = -0.5 * e * jnp.sign(t - s) * ratio
    return c, -c


# --- the core ----------------------------------------------------------------------------


def _difference(x, y):
  """``x - y``, and 0 where it is NaN: where both are the same infinity (``-inf - -inf``), or
  either is NaN (``y`` is then NaN too, and so is the weight that multiplies it).

  Elsewhere the plain difference, so its derivative is ``x_dot - y_dot`` at ties too (second
  derivatives of a constant window); one compare and one select, as ``where(x == y, 0, x - y)``.
  """
  d = x - y
  return jnp.where(d == d, d, 0)


def _offset(weighting, t_taps: _windows.Taps, s):
  """``weighting``'s per-window offset, a constant to differentiation.

  It scales every weight of a window alike, so it cancels in the normalised
  weights; held constant, its derivative (a max or min, whose tie rule splits)
  cannot reach second derivatives.
  """
  m = weighting.offset(t_taps, s)
  return None if m is None else lax.stop_gradient(m)


def _nonzero_total(s0, geom: Geometry, masked: bool):
  """The weights' sum ``s0``, with 1 in windows that hold no real tap (they output 0).

  A window holding a tap has ``s0 > 0`` (its largest weight is ``2**-c``, see
  the weightings), so with a runtime mask ``s0 == 0`` is exactly an empty window.
  """
  if masked:
    return jnp.where(s0 > 0, s0, jnp.ones((), s0.dtype))
  empty = geom.valid_counts() == 0
  if empty.any():  # only possible with dilation
    s0 = jnp.where(empty[..., None], 1, s0)
  return s0


def _masked_logits(t_taps: _windows.Taps, valid: _windows.Taps):
  """Logit taps with every masked tap reading its window's largest unmasked logit (0 in an
  empty window), and that logit: a value some real tap holds, so every weight computed from
  it is finite (the double ``where``: nothing inf or NaN even where the weight is then
  zeroed), and the window's offset, a max or a min over its taps, is unchanged (for the
  softmax weightings it is that largest logit)."""
  low = -jnp.inf
  ref = t_taps.map(lambda t, v: jnp.where(v, t, low), valid).where_valid(low).max()
  ref = lax.stop_gradient(jnp.where(ref > low, ref, jnp.zeros((), ref.dtype)))
  return t_taps.map(lambda t, v, r: jnp.where(v, t, r), valid, ref), ref


def _unnormalised(
  xc, tc, sc, valid, geom: Geometry, weighting, with_weights: bool = False, hold: bool = False
):
  """Taps of ``x`` and ``t``, the offset, unnormalised weights (padded and masked taps weigh
  0), their sum.

  Arguments in the compute dtype; ``tc`` None means ``t = x``; ``valid`` None or
  a runtime bool mask (masked taps are padding; ``x`` is 0 there).

  ``hold`` (the tangent rule, for windows that overlap or pad): the offset and the sum pass
  :func:`_numerics.reverse_barrier`, so that the transposed tangent reads them as arrays
  instead of re-deriving them inside every tap's loop (SoftPool 3x3/s2 f+b 0.33x). Not in
  the forward, whose one fused loop computes each once already.
  """
  x_taps = _windows.Taps.read(xc, geom, 0.0)
  t_taps = x_taps if tc is None else _windows.Taps.read(tc, geom, 0.0)
  v_taps = m = None
  if (
    valid is not None
    and isinstance(weighting, _Softmax)
    and weighting.temperature is not None
    and not with_weights
  ):
    # A fixed temperature: masked logits read -inf, whose weight exp(-inf - m) is exactly 0
    # (one select per tap). A window with no unmasked tap has m = -inf and weighs its taps
    # alike: its output is 0 (x is 0 there) and every derivative term is 0 or times 0.
    v_taps = _windows.Taps.read(valid, geom, False, stacked=t_taps.stacked)
    t_taps = t_taps.map(lambda t, v: jnp.where(v, t, jnp.asarray(-jnp.inf, t.dtype)), v_taps)
    m = _offset(weighting, t_taps, sc)
    e = t_taps.map(lambda t, m: weighting.weight(t, None, m, geom), m).where_valid(0)
    return x_taps, t_taps, m, e, _nonzero_total(e.sum(), geom, True)
  if valid is not None:
    v_taps = _windows.Taps.read(valid, geom, False, stacked=t_taps.stacked)
    t_taps, largest = _masked_logits(t_taps, v_taps)
    if tc is None:
      x_taps = t_taps
    if isinstance(weighting, _Softmax):
      m = largest  # the softmax offset, already taken
  if m is None:
    m = _offset(weighting, t_taps, sc)
  if hold and m is not None:
    m = _numerics.reverse_barrier(m, ~jnp.any(m > jnp.inf))  # never true, even for NaN
  e = t_taps.map(lambda t, s, m: weighting.weight(t, s, m, geom), sc, m).where_valid(0)
  if v_taps is not None:
    e = e.map(lambda e, v: jnp.where(v, e, jnp.zeros((), e.dtype)), v_taps)
  total = _nonzero_total(e.sum(), geom, valid is not None)
  if hold:
    total = _numerics.reverse_barrier(total, ~jnp.any(total < 0))  # total >= 0, or NaN
  return x_taps, t_taps, m, e, total


def _forward(x, t, s, valid, geom: Geometry, weighting, with_weights: bool):
  cdt = _numerics.compute_dtype(x.dtype)
  tc = None if t is None else t.astype(cdt)
  sc = None if s is None else s.astype(cdt)
  x_taps, _, _, e, s0 = _unnormalised(x.astype(cdt), tc, sc, valid, geom, weighting, with_weights)
  # e == 0 (a -inf logit or a padded tap) contributes 0 even where x is infinite.
  y = e.map(lambda e, x: jnp.where(e > 0, e * x, 0), x_taps).sum() / s0
  if not with_weights:
    return y
  return y, _shape_weights(e.to_last_axis() / s0[..., None, :], geom)


def _shape_weights(w, geom: Geometry):
  """``(..., K, C)`` -> ``(..., *window, C)``."""
  return w.reshape(*w.shape[:-2], *geom.window, w.shape[-1])


@functools.partial(jax.custom_jvp, nondiff_argnums=(4, 5, 6))
def _weighted_pool(x, t, s, valid, geom: Geometry, weighting, with_weights: bool):
  """``y_p = sum_i w_{p,i} x_i`` with weights from ``weighting``; result in the compute dtype.

  ``t`` is the logit source at input resolution (``None``: ``t = x``, and the
  derivative through the weights is added to ``x``'s), ``s`` an optional
  per-window statistic at output resolution. With ``with_weights`` also
  returns the weights ``(*batch, *out, *window, C)``. ``valid``: None, or a runtime
  bool mask broadcastable to ``x`` whose masked taps weigh 0 (no derivative).
  """
  return _forward(x, t, s, valid, geom, weighting, with_weights)


@_weighted_pool.defjvp
def _weighted_pool_jvp(geom, weighting, with_weights, primals, tangents):
  r"""The tangent, linear in ``(x_dot, t_dot, s_dot)``; JAX transposes it for reverse mode.

  .. math::

     \dot y_p = \frac{1}{S_p} \sum_i \big(e_i \dot x_i + \dot e_i (x_i - y_p)\big), \quad
     \dot e_i = \frac{\partial e_i}{\partial t_i} \dot t_i + \frac{\partial e_i}{\partial s_p} \dot s_p

  with ``S_p = sum_i e_i``; the per-window offset of ``e`` cancels (the
  softmax is shift-invariant), so it gets no tangent. Taps of weight 0 add 0.
  """
  x, t, s, valid = primals
  x_dot, t_dot, s_dot, _ = tangents
  out = _forward(x, t, s, valid, geom, weighting, with_weights)
  y = out[0] if with_weights else out
  if (
    valid is None
    and not with_weights
    and isinstance(weighting, _Softmax)
    and weighting.temperature is not None
    and _is_blocked(geom)
  ):
    # Checkpointed: reverse mode keeps x, t, y and recomputes the weights in one pass.
    tangent = jax.checkpoint(
      functools.partial(
        _softmax_block_tangent, geom=geom, weighting=weighting, temperature=weighting.temperature
      )
    )
    return out, tangent(x, t, y, x_dot, t_dot)
  tangent = jax.checkpoint(
    functools.partial(_taps_tangent, geom=geom, weighting=weighting, with_weights=with_weights)
  )
  return out, tangent(x, t, s, valid, y, x_dot, t_dot, s_dot)


def _taps_tangent(
  x, t, s, valid, y, x_dot, t_dot, s_dot, geom: Geometry, weighting, with_weights: bool
):
  """The tangent of :func:`_weighted_pool` over window taps (any geometry).

  Checkpointed by the caller: reverse mode keeps ``x, t, s, y`` and recomputes
  the weights, rather than keeping one array per tap.
  """
  cdt = y.dtype
  tc = None if t is None else t.astype(cdt)
  sc = None if s is None else s.astype(cdt)
  # Windows that overlap or pad hold their per-window values (reverse barriers); windows
  # that tile gain nothing from it (IDW 2x2 took 1.36x with s_dot's).
  hold = not _windows.tiles(geom)
  x_taps, t_taps, m, e, s0 = _unnormalised(
    x.astype(cdt), tc, sc, valid, geom, weighting, with_weights, hold=hold
  )
  xd_taps = _windows.Taps.read(x_dot.astype(cdt), geom, 0.0)
  td_taps = xd_taps if t is None else _windows.Taps.read(t_dot.astype(cdt), geom, 0.0)
  sd = None if s is None else s_dot.astype(cdt)
  if sd is not None and hold:
    # The per-window s_dot's cotangent (a sum over the window's taps) computed once before
    # it is spread back over the taps, not once per tap: eDSCW 3x3/s2/p1 f+b 0.65x.
    sd = _numerics.reverse_barrier(sd, ~jnp.any(s0 < 0))  # s0 >= 0, or NaN

  # Normalised weights w = e / S <= 1 first, and de/dt, de/ds (proportional to e) taken at
  # w: the transpose then multiplies the cotangent by x - y and by a weight, never by
  # 1 / S (up to the window size), which overflowed at |x| near finfo.max / window size.
  w = e.map(lambda e: e / s0)

  # y_dot = sum_i w_i x_dot_i + (x_i - y) (dw_i/dt_i t_dot_i + dw_i/ds s_dot), the products
  # (x_i - y) dw_i/dt_i taken as one coefficient (weight_vjp with e_bar = x_i - y), whose
  # factors the weightings combine so that no intermediate leaves the normal range: 1 / distance is
  # subnormal near 1e38 while (x_i - y) / distance is not. Coefficients are zeroed (not the
  # products) where w == 0, so that the transpose never multiplies a zero cotangent by an
  # infinite x - y or derivative.
  def weight_tangent(w, t, td, s, m, sd, e_bar):
    live = w > 0
    dt, ds = weighting.weight_vjp(t, s, m, w, e_bar, geom)  # e_bar dw/dt, e_bar dw/ds, S fixed
    wd = jnp.where(live, dt, 0) * td
    return wd if ds is None else wd + jnp.where(live, ds, 0) * sd

  def term(w, t, td, s, m, sd, x, xd, y):
    diff = jnp.where(w > 0, _difference(x, y), 0)
    return w * xd + weight_tangent(w, t, td, s, m, sd, diff)

  y_dot = w.map(term, t_taps, td_taps, sc, m, sd, x_taps, xd_taps, y).sum()
  if not with_weights:
    return y_dot
  wd = w.map(weight_tangent, t_taps, td_taps, sc, m, sd, 1.0)
  # w_i = e_i / S  =>  w_dot_i = e_dot_i / S - w_i sum_j e_dot_j / S.
  w = w.to_last_axis()
  w_dot = wd.to_last_axis() - w * wd.sum()[..., None, :]
  return y_dot, _shape_weights(w_dot, geom)


# --- non-overlapping windows: the backward in block layout -----------------------------
#
# With strides == window and no dilation every input position lies in at most one
# window. The input then reshapes to blocks (*batch, out_1, k_1, ..., out_n, k_n, C)
# and the whole backward is one elementwise pass over them, reading per-window
# arrays through broadcasts. The broadcast also makes XLA materialise the
# per-window log-offset once instead of re-deriving it (K exps) per tap.


def _is_blocked(geom: Geometry) -> bool:
  return geom.strides == geom.window and all(d == 1 for d in geom.dilation)


def _block_pads(geom: Geometry):
  """Per dim ``(low, high)`` taking the input to exactly ``out * k`` (high may be < 0)."""
  return [
    (lo, o * k - lo - size)
    for size, o, k, (lo, _) in zip(geom.in_shape, geom.out_shape, geom.window, geom.padding)
  ]


def _to_blocks(a: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  nb = a.ndim - geom.ndim - 1
  config = [(0, 0, 0)] * nb + [(lo, hi, 0) for lo, hi in _block_pads(geom)] + [(0, 0, 0)]
  if any(c != (0, 0, 0) for c in config):
    a = lax.pad(a, jnp.zeros((), a.dtype), config)
  shape = [*a.shape[:nb]]
  for o, k in zip(geom.out_shape, geom.window):
    shape += [o, k]
  return a.reshape(*shape, a.shape[-1])


def _per_block(a: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """(*batch, *out, C) -> (*batch, out_1, 1, ..., out_n, 1, C), broadcasting over blocks."""
  nb = a.ndim - geom.ndim - 1
  shape = [*a.shape[:nb]]
  for o in geom.out_shape:
    shape += [o, 1]
  return a.reshape(*shape, a.shape[-1])


def _block_mask(geom: Geometry) -> np.ndarray | None:
  """Static validity of each block position, or None when all are inside the input."""
  mask = np.ones((), bool)
  for axis, (lo, _) in enumerate(_block_pads(geom)):
    size = geom.out_shape[axis] * geom.window[axis]
    pos = np.arange(size) - lo
    mask = np.multiply.outer(mask, (pos >= 0) & (pos < geom.in_shape[axis]))
  if mask.all():
    return None
  shape = []
  for o, k in zip(geom.out_shape, geom.window):
    shape += [o, k]
  return mask.reshape(*shape, 1)


def _softmax_block_tangent(
  x, t, y, x_dot, t_dot, geom: Geometry, weighting: _Softmax, temperature: float
):
  """Tangent of the softmax weightings for non-overlapping windows, in block layout (see above).

  ``y_dot = sum_block w (x_dot + (x - y) t_dot / T)``: its transpose is one
  elementwise pass over the blocks, reading ``w`` and ``y`` through broadcasts.
  ``temperature`` is ``weighting.temperature``, fixed (not traced) on this path.
  """
  cdt = y.dtype
  inv_t = 1.0 / temperature
  xc = x.astype(cdt)
  tc = xc if t is None else t.astype(cdt)
  t_taps = _windows.Taps.read(tc, geom, 0.0)  # per-window sums (unrolled when small: fused)
  m = _offset(weighting, t_taps, None)
  s0 = t_taps.map(lambda t, m: weighting.weight(t, None, m, geom), m).where_valid(0).sum()
  x_b = _to_blocks(xc, geom)
  t_b = x_b if t is None else _to_blocks(tc, geom)
  w = weighting.weight(t_b, None, _per_block(m, geom), geom) / _per_block(s0, geom)
  mask = _block_mask(geom)
  if mask is not None:
    w = jnp.where(mask, w, 0)
  live = w > 0
  xd_b = _to_blocks(x_dot.astype(cdt), geom)
  td_b = xd_b if t is None else _to_blocks(t_dot.astype(cdt), geom)
  diff = jnp.where(live, _difference(x_b, _per_block(y, geom)) * inv_t, 0)
  terms = w * xd_b + (w * diff) * td_b
  nb = x.ndim - geom.ndim - 1
  return jnp.sum(terms, axis=tuple(nb + 2 * a + 1 for a in range(geom.ndim)))


# --- argument checks -------------------------------------------------------------------


def _float_input(x, op: str):
  x = _numerics.as_array(x)
  _numerics.check_float(x, op)
  return x


def _masked_mean(x, valid, geom: Geometry):
  """``x`` (0 at masked positions) and its window mean over the unmasked taps."""
  if valid is None:
    return x, _reductions.window_mean(x, geom)
  return _masks.data(x, valid), _reductions.masked_window_mean(x, valid, geom)


def _cast_outputs(x, out, return_weights):
  """Casts ``y`` (and the weights) back to ``x``'s dtype."""
  if return_weights:
    y, w = out
    return y.astype(x.dtype), w.astype(x.dtype)
  return out.astype(x.dtype)


# --- public ops ------------------------------------------------------------------------


def soft_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  temperature: float | jnp.ndarray = 1.0,
  return_weights: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""SoftPool (Stergiou et al., ICCV 2021) with a temperature.

  .. math::

     y_p = \sum_{i \in R(p)} w_{p,i}\, x_i, \qquad
     w_{p,i} = \frac{e^{x_i / T}}{\sum_{j \in R(p)} e^{x_j / T}}

  over the valid taps :math:`R(p)` of window :math:`p` (padded taps are
  excluded, so there is no ``count_include_pad``). ``T -> 0`` approaches max
  pooling, ``T -> inf`` average pooling; ``T = 1`` is the paper's SoftPool.

  Output size per spatial dim (PyTorch's rule, as :func:`max_pool`)::

    out = floor((L + pad_lo + pad_hi - dilation * (k - 1) - 1 + (s - 1 if ceil_mode)) / s) + 1

  Gradient (the full rule, derived from the core's linear tangent; the weights
  are recomputed, only ``x`` is stored):

  .. math:: \frac{\partial y_p}{\partial x_i} = w_{p,i}\Big(1 + \frac{x_i - y_p}{T}\Big)

  A traced ``temperature`` (``SoftPool(learnable_temperature=True)``) gets its
  exact gradient, :math:`\partial y_p / \partial T = -\sum_i w_{p,i} (x_i - y_p)
  (x_i - m_p) / T^2`; its weights are formed from ``(x_i - m_p) / T`` as for a
  static one, so neither overflows where a plain ``x / T`` would.

  Differences from the reference code, on purpose: the weights are a softmax
  per window *and per channel* (the reference CPU path sums ``exp`` over
  channels and clamps the output to ``>= 0``); the per-window maximum is
  subtracted before ``exp`` (the reference overflows for ``x > 88.7`` in f32);
  the gradient includes the derivative of the weights (the reference CUDA
  backward drops ``w_i (x_i - y)``); padding, dilation and ``ceil_mode`` are
  supported. Finite for any finite input and for ``-inf`` entries beside finite
  ones (they get weight and gradient 0); a window of only ``-inf`` gives ``-inf``.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions accumulate in f32.
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    temperature: a positive number, or a positive float array of shape ``()``
      or ``(C,)`` (learnable).
    return_weights: also return the weights,
      ``(*batch, *out, *window, C)`` (0 at padded taps).

    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value). Masked positions are padding: weight 0
      and gradient 0; a window without an unmasked position gives 0.
    return_mask: also return the pooled mask (valid where the window holds an
      unmasked position), after ``y`` (and the weights).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, weights)``.

  Example:
    >>> x = jnp.array([[0.], [1.], [2.], [2.]])
    >>> soft_pool(x, (2,))[:, 0]
    Array([0.7310586, 2.       ], dtype=float32)
  """
  x = _float_input(x, 'soft_pool')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  return_weights = _checks.flag(return_weights, 'return_weights')
  temperature = _fields.check_temperature(temperature)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'soft_pool', return_mask)
  xv = x if valid is None else _masks.data(x, valid)
  if isinstance(temperature, float):
    out = _weighted_pool(xv, None, None, valid, geom, _Softmax(temperature), return_weights)
    out = _cast_outputs(x, out, return_weights)
    return _masks.with_mask(out, valid, no_channels, geom, return_mask)
  if temperature.shape not in ((), (x.shape[-1],)):
    raise ValueError(
      f'temperature must be a number or an array of shape () or (C,) = ({x.shape[-1]},); '
      f'got shape {temperature.shape}'
    )
  cdt = _numerics.compute_dtype(x.dtype)
  out_shape = (*x.shape[: x.ndim - geom.ndim - 1], *geom.out_shape, x.shape[-1])
  temp = jnp.broadcast_to(temperature.astype(cdt), out_shape)  # per window: the weighting's s
  out = _weighted_pool(xv, None, temp, valid, geom, _Softmax(None), return_weights)
  out = _cast_outputs(x, out, return_weights)
  return _masks.with_mask(out, valid, no_channels, geom, return_mask)


def lip_pool(
  x: jnp.ndarray,
  logits: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  return_weights: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Local Importance-based Pooling (LIP, Gao et al., ICCV 2019).

  .. math::

     y_p = \frac{\sum_{i \in R(p)} x_i\, e^{z_i}}{\sum_{i \in R(p)} e^{z_i}}

  over the valid taps of each window, ``z = logits`` (the output of a logit
  module, e.g. :class:`jaxpool.linen.LIP`'s gated conv). Padded taps are
  excluded; with the reference's zero padding and ``count_include_pad`` this
  is the same number. ``lip_pool(x, x) == soft_pool(x)`` and
  ``lip_pool(x, 0 * x) == avg_pool(x, ..., count_include_pad=False)``.

  Output size: as :func:`max_pool`. Gradient (from the core's linear tangent, weights recomputed):

  .. math::

     \frac{\partial y_p}{\partial x_i} = w_{p,i}, \qquad
     \frac{\partial y_p}{\partial z_i} = w_{p,i}\,(x_i - y_p)

  Differences from the reference: the per-window maximum logit is subtracted
  (the reference's fast CUDA kernel does not; its "SoftGate" exists to avoid
  the overflow), ``padding`` is honoured and any geometry is supported.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    logits: floats broadcastable to ``x`` (e.g. ``(*batch, *spatial, 1)``,
      shared over channels).
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    return_weights: also return the weights ``(*batch, *out, *window, C)``.

    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value). Masked positions are padding: weight 0
      and gradient 0; a window without an unmasked position gives 0.
    return_mask: also return the pooled mask (valid where the window holds an
      unmasked position), after ``y`` (and the weights).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, weights)``.

  Example:
    >>> x = jnp.array([[1.], [3.], [5.], [7.]])
    >>> lip_pool(x, jnp.zeros_like(x), (2,))[:, 0]   # zero logits: average pooling
    Array([2., 6.], dtype=float32)
  """
  x = _float_input(x, 'lip_pool')
  logits = _numerics.as_array(logits, 'logits')
  _numerics.check_float(logits, 'lip_pool', 'logits')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  return_weights = _checks.flag(return_weights, 'return_weights')
  try:
    shape = jnp.broadcast_shapes(logits.shape, x.shape)
  except ValueError:
    shape = None
  if shape != x.shape:
    raise ValueError(
      f"logits must be broadcastable to x's shape {x.shape} (e.g. {x.shape[:-1] + (1,)} "
      f'to share them over channels); got shape {logits.shape}'
    )
  logits = jnp.broadcast_to(logits, x.shape)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'lip_pool', return_mask)
  if valid is not None:
    x, logits = _masks.data(x, valid), _masks.data(logits, valid)
  out = _weighted_pool(x, logits, None, valid, geom, _Softmax(), return_weights)
  out = _cast_outputs(x, out, return_weights)
  return _masks.with_mask(out, valid, no_channels, geom, return_mask)


def edscw_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  eps: float = 1e-6,
  return_weights: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""eDSCW pooling (adaPool, Stergiou & Poppe, IEEE TIP 2023): Dice-Sørensen weights.

  .. math::

     z_{p,i} = \frac{2|x_i a_p| + \epsilon}{x_i^2 + a_p^2 + \epsilon}, \qquad
     a_p = \frac{1}{|R(p)|} \sum_{j \in R(p)} x_j, \qquad
     y_p = \sum_{i \in R(p)} \mathrm{softmax}_{R(p)}(z)_i\, x_i

  per channel, over the valid taps. :math:`z \in (0, 1]`, so the weights
  differ by at most a factor ``e``: a mild re-weighting of average pooling
  towards activations similar to the window mean. Defined everywhere: a zero or
  constant window gives that constant (:math:`z = 1` for every tap).

  Output size: as :func:`max_pool`. Gradient: exact (the core's tangent rule, transposed; of the
  weighted sum, :math:`\partial y/\partial z_i = w_i (x_i - y)`, chained
  through :math:`z(x_i, a_p)` and the window mean).

  Differences from the reference: ``eps`` keeps DSC defined on zero windows
  (the reference divides 0 by 0 and hides the NaN with ``nan_to_num``); the
  gradient includes the derivative of the weights (the reference treats them
  as constants); weights have batch and channel axes.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    eps: positive smoothing constant of the DSC.
    return_weights: also return the weights ``(*batch, *out, *window, C)``.

    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value). Masked positions are padding: weight 0
      and gradient 0; a window without an unmasked position gives 0.
    return_mask: also return the pooled mask (valid where the window holds an
      unmasked position), after ``y`` (and the weights).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, weights)``.

  Example:
    >>> x = jnp.array([[2.], [2.], [0.], [4.]])   # mean 2 in both windows
    >>> edscw_pool(x, (2,))[:, 0]                 # [0, 4]: weights 1 : e^0.8 favour 4
    Array([2.      , 2.759898], dtype=float32)
  """
  x = _float_input(x, 'edscw_pool')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  eps = _checks.positive(eps, 'eps')
  return_weights = _checks.flag(return_weights, 'return_weights')
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'edscw_pool', return_mask)
  x, mean = _masked_mean(x, valid, geom)
  out = _weighted_pool(x, None, mean, valid, geom, _EDSCW(eps), return_weights)
  out = _cast_outputs(x, out, return_weights)
  return _masks.with_mask(out, valid, no_channels, geom, return_mask)


def idw_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  eps: float = 1e-6,
  return_weights: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Inverse-distance-weighted pooling (adaPool's IDW).

  .. math::

     w_{p,i} = \frac{1 / (|x_i - a_p| + \epsilon)}{\sum_{j \in R(p)} 1 / (|x_j - a_p| + \epsilon)},
     \qquad y_p = \sum_{i \in R(p)} w_{p,i}\, x_i

  per channel, :math:`a_p` the mean of the window's valid taps (logits
  :math:`z = -\log(|x_i - a_p| + \epsilon)`). A constant window gives that
  constant (uniform weights).

  Output size: as :func:`max_pool`. Gradient: exact, through the weights and
  the window mean (the reference treats the weights as constants).

  Difference from the reference: ``eps`` keeps the weights finite where
  :math:`x_i = a_p` (the reference computes ``1 / 0``).

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    eps: positive distance offset.
    return_weights: also return the weights ``(*batch, *out, *window, C)``.

    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value). Masked positions are padding: weight 0
      and gradient 0; a window without an unmasked position gives 0.
    return_mask: also return the pooled mask (valid where the window holds an
      unmasked position), after ``y`` (and the weights).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, weights)``.

  Example:
    >>> x = jnp.array([[3.], [3.], [1.], [3.]])
    >>> idw_pool(x, (2,))[:, 0]
    Array([3., 2.], dtype=float32)
  """
  x = _float_input(x, 'idw_pool')
  geom, _ = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  eps = _checks.positive(eps, 'eps')
  return_weights = _checks.flag(return_weights, 'return_weights')
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'idw_pool', return_mask)
  x, mean = _masked_mean(x, valid, geom)
  out = _weighted_pool(x, None, mean, valid, geom, _InverseDistance(eps), return_weights)
  out = _cast_outputs(x, out, return_weights)
  return _masks.with_mask(out, valid, no_channels, geom, return_mask)


def _broadcast_beta(beta, out_shape: tuple[int, ...], n_spatial: int, dtype) -> jnp.ndarray:
  if _checks.is_bool(beta):
    raise TypeError(f'beta must be a float or a float array in [0, 1]; got {beta!r}')
  if _checks.is_number(beta) and not 0 <= beta <= 1:
    raise ValueError(f'beta must lie in [0, 1]; got {beta!r}')
  beta = _numerics.as_array(beta, 'beta')
  if not jnp.issubdtype(beta.dtype, jnp.floating) and beta.ndim:
    raise TypeError(f'beta must be a float array; got dtype {beta.dtype}')
  try:
    ok = jnp.broadcast_shapes(beta.shape, out_shape) == out_shape
  except ValueError:
    ok = False
  if not ok:
    spatial = out_shape[len(out_shape) - n_spatial - 1 : -1]
    raise ValueError(
      f'beta must be broadcastable to the output shape {out_shape}: a scalar, (C,) = '
      f'({out_shape[-1]},), (*out_spatial, 1) = {spatial + (1,)} or (*out_spatial, C) = '
      f'{spatial + (out_shape[-1],)}; got shape {beta.shape}'
    )
  return jnp.broadcast_to(beta.astype(dtype), out_shape)


def ada_pool(
  x: jnp.ndarray,
  beta: float | jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  eps: float = 1e-6,
  return_weights: bool = False,
  *,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""adaPool (Stergiou & Poppe, IEEE TIP 2023): a learned blend of eDSCW and SoftPool.

  .. math:: y_p = \beta_p\, y^{\mathrm{eDSCW}}_p + (1 - \beta_p)\, y^{\mathrm{eM}}_p

  with :math:`y^{\mathrm{eM}}` = :func:`soft_pool` (``T = 1``) and
  :math:`y^{\mathrm{eDSCW}}` = :func:`edscw_pool`. Equivalently
  :math:`y_p = \sum_i m_{p,i} x_i` with the fused weights
  :math:`m = \beta w^{\mathrm{eDSCW}} + (1 - \beta) w^{\mathrm{eM}}` (returned
  by ``return_weights``, ready for :func:`ada_unpool`).

  Output size: as :func:`max_pool`. Gradients: exact for ``x`` (both branches'
  tangent rules) and for ``beta``,
  :math:`\partial y_p / \partial \beta_p = y^{\mathrm{eDSCW}}_p - y^{\mathrm{eM}}_p`.

  Differences from the reference: ``beta`` is a plain argument (the
  :class:`jaxpool.linen.AdaPool` module keeps it in range as
  ``sigmoid(theta)``, where the reference clamps ``randn`` at initialisation and
  never again); its gradient always flows; weights carry batch and channel axes.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    beta: blend in [0, 1], broadcastable to the output ``(*batch, *out, C)``:
      a scalar, ``(C,)``, ``(*out_spatial, 1)`` or ``(*out_spatial, C)``.
    window, strides, padding, dilation, ceil_mode: as :func:`max_pool`.
    eps: eDSCW's smoothing constant.
    return_weights: also return the fused weights ``(*batch, *out, *window, C)``.

    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value). Masked positions are padding: weight 0
      and gradient 0; a window without an unmasked position gives 0.
    return_mask: also return the pooled mask (valid where the window holds an
      unmasked position), after ``y`` (and the weights).

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, weights)``.

  Example:
    >>> x = jnp.array([[0.], [4.]])
    >>> y_dscw, y_soft = edscw_pool(x, (2,)), soft_pool(x, (2,))
    >>> bool(jnp.allclose(ada_pool(x, 0.25, (2,)), 0.25 * y_dscw + 0.75 * y_soft))
    True
  """
  x = _float_input(x, 'ada_pool')
  geom, nb = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  eps = _checks.positive(eps, 'eps')
  return_weights = _checks.flag(return_weights, 'return_weights')
  cdt = _numerics.compute_dtype(x.dtype)
  out_shape = (*x.shape[:nb], *geom.out_shape, x.shape[-1])
  beta = _broadcast_beta(beta, out_shape, geom.ndim, cdt)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'ada_pool', return_mask)
  x, mean = _masked_mean(x, valid, geom)
  dscw = _weighted_pool(x, None, mean, valid, geom, _EDSCW(eps), return_weights)
  soft = _weighted_pool(x, None, None, valid, geom, _Softmax(), return_weights)
  if not return_weights:
    y = _numerics.blend(beta, dscw, soft).astype(x.dtype)  # beta 1 (0): eDSCW (SoftPool)
    return _masks.with_mask(y, valid, no_channels, geom, return_mask)
  y = _numerics.blend(beta, dscw[0], soft[0])
  b = beta.reshape(*out_shape[:-1], *(1,) * geom.ndim, out_shape[-1])
  w = b * dscw[1] + (1 - b) * soft[1]
  out = (y.astype(x.dtype), w.astype(x.dtype))
  return _masks.with_mask(out, valid, no_channels, geom, return_mask)


def _unpool_geometry(y_shape, window, strides, padding, dilation, output_size) -> Geometry:
  window = _geometry.normalize_window(window)
  n = len(window)
  nb = _geometry.check_rank(y_shape, n, 'y')
  out = tuple(y_shape[nb : nb + n])
  strides_t = window if strides is None else _geometry.int_tuple(strides, n, 'strides')
  dilation_t = _geometry.int_tuple(dilation, n, 'dilation')
  if output_size is None:
    if isinstance(padding, str) and padding.upper() == 'SAME':
      size = tuple(o * s for o, s in zip(out, strides_t))
    else:
      # The smallest input giving `out` windows: (out - 1) * s + effective window - pads.
      probe = tuple(
        (o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, strides_t, dilation_t, window)
      )
      pads = _geometry.normalize_padding(padding, probe, window, strides_t, dilation_t)
      size = tuple(max(p - lo - hi, 1) for p, (lo, hi) in zip(probe, pads))
  else:
    size = _geometry.unpool_output_size(output_size, y_shape, nb, n)
  shape = (*y_shape[:nb], *size, y_shape[-1])
  found = []
  for ceil_mode in (False, True):
    geom, _ = _geometry.pool_geometry(
      shape, window, strides, padding, dilation, ceil_mode, name='output_size'
    )
    if geom.out_shape == out:
      return geom
    found.append(geom.out_shape)
  raise ValueError(
    f'output_size {output_size!r}: pooling spatial size {size} with window {window}, '
    f'strides {strides_t}, padding {padding!r}, dilation {dilation_t} gives '
    f"{found[0]} windows ({found[1]} with ceil_mode), not y's spatial shape {out}"
  )


def weighted_unpool(
  y: jnp.ndarray,
  weights: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  output_size: Sequence[int] | None = None,
  *,
  output_shape: Sequence[int] | None = None,
) -> jnp.ndarray:
  r"""Weighted unpooling (adaUnPool and friends): the transpose of a fixed-weight pooling.

  .. math:: \hat x_i = \sum_{p \,:\, i \in R(p)} \mathrm{weights}_{p,i}\, y_p

  For fixed weights this is exactly the transpose of
  :math:`x \mapsto \sum_i \mathrm{weights}_{p,i} x_i`; overlapping windows add
  up. Pass the weights returned by ``soft_pool`` / ``lip_pool`` /
  ``edscw_pool`` / ``idw_pool`` / ``ada_pool`` with ``return_weights=True``
  and the same geometry. Computed without scatter.

  Output spatial size: ``output_size`` if given (spatial sizes or the whole
  shape; ``ceil_mode`` poolings need it), else the smallest input that gives
  ``y``'s windows, ``(out - 1) * stride + dilation * (k - 1) + 1 - pad_lo - pad_hi``
  (``'SAME'``: ``out * stride``). Differentiable in ``y`` and ``weights``.

  Differences from the reference ``adaunpool``: weights have batch and channel
  axes (the reference's masks are shared by every sample and channel and only
  the first sample's are written); overlapping windows are supported.

  Args:
    y: pooled values ``(*batch, *out, C)``.
    weights: ``(*batch, *out, *window, C)`` (``C`` may be 1, shared over channels).
    window, strides, padding, dilation: the pooling's geometry.
    output_size: the pooled input's spatial shape (or whole shape), or None.
    output_shape: deprecated name of ``output_size`` (warns; giving both is a
      ``TypeError``).

  Returns:
    ``(*batch, *in, C)`` in the result dtype of ``y`` and ``weights``.

  Example:
    >>> x = jnp.array([[1.], [3.], [2.], [2.]])
    >>> y, w = soft_pool(x, (2,), return_weights=True)
    >>> weighted_unpool(y, w, (2,)).shape
    (4, 1)
  """
  y = _numerics.as_array(y, 'y')
  weights = _numerics.as_array(weights, 'weights')
  _numerics.check_float(y, 'weighted_unpool', 'y')
  _numerics.check_float(weights, 'weighted_unpool', 'weights')
  output_size = _checks.renamed(
    output_size, output_shape, 'output_size', 'output_shape', None, 'weighted_unpool'
  )
  geom = _unpool_geometry(y.shape, window, strides, padding, dilation, output_size)
  n = geom.ndim
  expected = (*y.shape[:-1], *geom.window)
  if weights.shape[:-1] != expected or weights.shape[-1] not in (1, y.shape[-1]):
    raise ValueError(
      f'weights must have shape (*batch, *out, *window, C) = {expected + (y.shape[-1],)} '
      f'(or C = 1); got {weights.shape}'
    )
  dtype = jnp.result_type(y.dtype, weights.dtype)
  cdt = _numerics.compute_dtype(dtype)
  w = weights.astype(cdt).reshape(*y.shape[:-1], geom.window_size, weights.shape[-1])
  yc = y.astype(cdt)
  nb = y.ndim - n - 1
  data: tuple[jnp.ndarray, ...] | jnp.ndarray  # unrolled taps, or stacked ones
  if _windows.unrolls(geom):
    data = tuple(w[..., k, :] * yc for k in range(geom.window_size))
  else:
    data = jnp.moveaxis(w, -2, 0) * yc
  return _windows.Taps(data, geom, nb).scatter().astype(dtype)


ada_unpool = weighted_unpool
