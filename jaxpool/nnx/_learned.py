"""Flax NNX modules for learned pooling: they own the parameters of :mod:`jaxpool.learned`.

Same parameter names, shapes and initialisers as :mod:`jaxpool.linen`; random
initial values (gate and tree filters, N(0, 0.1**2)) draw from ``rngs.params()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxpool import _geometry, _numerics, learned
from jaxpool import linen as _linen
from jaxpool._geometry import Padding
from jaxpool.linen._learned import box_init, filter_init
from jaxpool.nnx import _base
from jaxpool.nnx._base import Windowed as _Windowed
from jaxpool.nnx._base import configure

Initializer = Callable[..., Any]


def _granular(shape_kind: str, x: jnp.ndarray, geometry_args) -> tuple[int, ...]:
  geom, _ = _geometry.pool_geometry(x.shape, *geometry_args)
  return {'scalar': (), 'channel': (x.shape[-1],), 'location': (*geom.out_shape, 1),
          'location_channel': (*geom.out_shape, x.shape[-1])}[shape_kind]


class MaxAvgPool(_Windowed):
  """:func:`jaxpool.max_avg_pool` with a learned ``alpha = sigmoid(alpha_logit)`` in ``[0, 1]``.

  ``alpha_shape`` as :class:`jaxpool.linen.MaxAvgPool` (``'channel'`` needs
  ``num_features``, the location variants ``input_size``); ``alpha_logit``
  starts at ``alpha_init`` (zeros: an even mix of max and average pooling).
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, alpha_shape: str = 'scalar',
               alpha_init: Initializer = nnx.initializers.zeros, *,
               num_features: int | None = None, input_size: Sequence[int] | None = None,
               rngs: nnx.Rngs | None = None):
    configure(self, _linen.MaxAvgPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, alpha_shape=alpha_shape, alpha_init=alpha_init))
    _base.check_optional_num_features(num_features)
    shape = _base.granular_shape(alpha_shape, 'alpha_shape', 'MaxAvgPool', num_features,
                                 input_size, self._geometry_args)
    self.alpha_logit = _base.init_param(alpha_init, shape, rngs, 'MaxAvgPool', 'alpha_logit')

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = _numerics.as_array(x)
    _base.check_param_shape(self.alpha_logit, _granular(self.alpha_shape, x, self._geometry_args),
                            'MaxAvgPool', 'alpha_logit', x.shape,
                            f"alpha_shape={self.alpha_shape!r}; 'location' variants need a "
                            f'fixed input size')
    return learned.max_avg_pool(x, jax.nn.sigmoid(self.alpha_logit[...]), *self._geometry_args)


class GatedPool(_Windowed):
  """:func:`jaxpool.gated_pool` with a learned gating mask ``gate``.

  ``gate`` has shape ``window`` or, with ``per_channel=True``, ``(*window,
  C)`` (needs ``num_features``); drawn N(0, 0.1**2) from ``rngs.params()``.
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, per_channel: bool = False,
               gate_init: Initializer = filter_init, *, num_features: int | None = None,
               rngs: nnx.Rngs | None = None):
    configure(self, _linen.GatedPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, per_channel=per_channel, gate_init=gate_init))
    _base.check_optional_num_features(num_features)
    tail = (_base.check_num_features(num_features, 'GatedPool', 'per_channel=True'),
            ) if per_channel else ()
    self.gate = _base.init_param(gate_init, (*self.window, *tail), rngs, 'GatedPool', 'gate')

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = _numerics.as_array(x)
    tail = (x.shape[-1],) if self.per_channel else ()
    _base.check_param_shape(self.gate, (*self.window, *tail), 'GatedPool', 'gate', x.shape,
                            'per_channel gate')
    return learned.gated_pool(x, self.gate[...], *self._geometry_args)


class TreePool(_Windowed):
  """:func:`jaxpool.tree_pool` with learned leaf filters and gating masks.

  ``leaves`` ``(2**depth, *window[, C])`` and ``gates`` ``(2**depth - 1,
  *window[, C])`` (``per_channel`` needs ``num_features``), drawn N(0,
  0.1**2) from ``rngs.params()``, as :class:`jaxpool.linen.TreePool`.
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, depth: int = 1, per_channel: bool = False,
               leaf_init: Initializer = filter_init, gate_init: Initializer = filter_init, *,
               num_features: int | None = None, rngs: nnx.Rngs | None = None):
    configure(self, _linen.TreePool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, depth=depth, per_channel=per_channel, leaf_init=leaf_init,
        gate_init=gate_init))
    _base.check_optional_num_features(num_features)
    tail = (_base.check_num_features(num_features, 'TreePool', 'per_channel=True'),
            ) if per_channel else ()
    n = 2 ** depth
    self.leaves = _base.init_param(leaf_init, (n, *self.window, *tail), rngs, 'TreePool',
                                   'leaves')
    self.gates = _base.init_param(gate_init, (n - 1, *self.window, *tail), rngs, 'TreePool',
                                  'gates')

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = _numerics.as_array(x)
    tail = (x.shape[-1],) if self.per_channel else ()
    n = 2 ** self.depth
    _base.check_param_shape(self.leaves, (n, *self.window, *tail), 'TreePool', 'leaves',
                            x.shape, 'leaves')
    return learned.tree_pool(x, self.leaves[...], self.gates[...], *self._geometry_args)


def strided_guide(x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray,
                  geom: _geometry.Geometry) -> jnp.ndarray:
  """DPP's full guide: a depthwise filter read with the pooling strides, at output resolution.

  ``kernel`` ``(*guide_window, 1, C)``, ``bias`` ``(C,)``; filter tap ``j`` of
  output ``p`` reads input ``p * s - lo_g + j``, centred on the pooling
  window's middle tap; zero padding. The same computation as
  :class:`jaxpool.linen.DPP`'s ``guide='full'``.
  """
  n = geom.ndim
  nb = x.ndim - n - 1
  channels = x.shape[-1]
  gw = kernel.shape[:n]
  cdt = _numerics.compute_dtype(x.dtype)
  xb = x.astype(cdt).reshape(math.prod(x.shape[:nb]), *x.shape[nb:])  # no -1: empty x
  config = [(0, 0, 0)]
  for size, out, k, s, d, (lo, _), g in zip(geom.in_shape, geom.out_shape, geom.window,
                                            geom.strides, geom.dilation, geom.padding, gw):
    lo_g = lo - d * (k - 1) // 2 + (g - 1) // 2
    config.append((lo_g, (out - 1) * s + g - size - lo_g, 0))
  config.append((0, 0, 0))
  xp = lax.pad(xb, jnp.zeros((), cdt), config)
  spatial = tuple(range(1, n + 1))
  dn = lax.ConvDimensionNumbers(lhs_spec=(0, n + 1, *spatial), rhs_spec=(n + 1, n, *range(n)),
                                out_spec=(0, n + 1, *spatial))
  guide = lax.conv_general_dilated(xp, kernel.astype(cdt), geom.strides, 'VALID',
                                   dimension_numbers=dn, feature_group_count=channels,
                                   precision=lax.Precision.HIGHEST)
  guide = guide + bias.astype(cdt)
  return guide.reshape(*x.shape[:nb], *geom.out_shape, channels)


class DPP(_Windowed):
  """Detail-Preserving Pooling, :func:`jaxpool.dpp_pool`, with learned per-channel parameters.

  As :class:`jaxpool.linen.DPP`: ``alpha = exp(log_alpha)``, ``lam =
  exp(log_lam)``, both ``(num_features,)``, starting at 1; ``guide='full'``
  adds a depthwise ``guide_window`` filter ``guide_kernel`` ``(*guide_window,
  1, C)`` (a normalised box) and ``guide_bias`` (zeros).

  Example:
    >>> pool = jaxpool.nnx.DPP((2, 2), num_features=3)
    >>> pool(jnp.ones((1, 4, 4, 3))).shape
    (1, 2, 2, 3)
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, guide: str = 'lite', symmetric: bool = True,
               eps: float = 1e-3, guide_window: int | Sequence[int] = 3,
               alpha_init: Initializer = nnx.initializers.zeros,
               lam_init: Initializer = nnx.initializers.zeros,
               guide_kernel_init: Initializer = box_init,
               guide_bias_init: Initializer = nnx.initializers.zeros, *,
               num_features: int | None = None, rngs: nnx.Rngs | None = None):
    configure(self, _linen.DPP, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, guide=guide, symmetric=symmetric, eps=eps,
        guide_window=guide_window, alpha_init=alpha_init, lam_init=lam_init,
        guide_kernel_init=guide_kernel_init, guide_bias_init=guide_bias_init))
    c = _base.check_num_features(num_features, 'DPP', 'its per-channel alpha and lambda')
    self.log_alpha = _base.init_param(alpha_init, (c,), rngs, 'DPP', 'log_alpha')
    self.log_lam = _base.init_param(lam_init, (c,), rngs, 'DPP', 'log_lam')
    if guide == 'full':
      gw = _geometry.int_tuple(guide_window, len(self.window), 'guide_window')
      self.guide_kernel = _base.init_param(guide_kernel_init, (*gw, 1, c), rngs, 'DPP',
                                           'guide_kernel')
      self.guide_bias = _base.init_param(guide_bias_init, (c,), rngs, 'DPP', 'guide_bias')

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = _numerics.as_array(x)
    _numerics.check_float(x, 'DPP')
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    _base.check_param_shape(self.log_alpha, (x.shape[-1],), 'DPP', 'log_alpha', x.shape,
                            'per channel')
    guide = None
    if self.guide == 'full':
      guide = strided_guide(x, self.guide_kernel[...], self.guide_bias[...], geom)
    return learned.dpp_pool(
        x, jnp.exp(self.log_alpha[...]), jnp.exp(self.log_lam[...]), self.window, self.strides,
        self.padding, guide=guide, symmetric=self.symmetric, eps=self.eps,
        dilation=self.dilation, ceil_mode=self.ceil_mode)
