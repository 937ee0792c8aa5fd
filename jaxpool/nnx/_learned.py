"""Flax NNX modules for learned pooling: they own the parameters of :mod:`jaxpool.learned`.

Same parameter names, shapes and initialisers as the linen modules; random
initial values (gate and tree filters, N(0, 0.1**2)) draw from ``rngs.params()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _subnets, learned
from jaxpool._fields import box_init, filter_init
from jaxpool._geometry import Padding
from jaxpool.nnx import _base
from jaxpool.nnx._base import Windowed, freeze

Initializer = Callable[..., Any]


class MaxAvgPool(Windowed):
  """:func:`jaxpool.max_avg_pool` with a learned ``alpha = sigmoid(alpha_logit)`` in ``[0, 1]``.

  ``alpha_shape``: ``'scalar'`` ``()``, ``'channel'`` ``(C,)`` (needs
  ``num_features``), ``'location'`` ``(*out_spatial, 1)`` (needs
  ``input_size``) or ``'location_channel'`` ``(*out_spatial, C)`` (needs
  both); ``alpha_logit`` starts at ``alpha_init`` (zeros: an even mix of max
  and average pooling).
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    alpha_shape: str = 'scalar',
    alpha_init: Initializer = nnx.initializers.zeros,
    *,
    num_features: int | None = None,
    input_size: Sequence[int] | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    _checks.choice(alpha_shape, 'alpha_shape', _geometry.PARAM_SHAPES)
    super().__init__(window, strides, padding, dilation, ceil_mode)
    _base.check_optional_num_features(num_features)
    self.alpha_shape = freeze(alpha_shape)
    self.alpha_init = freeze(alpha_init)
    shape = _base.declared_param_shape(
      alpha_shape, 'alpha_shape', 'MaxAvgPool', num_features, input_size, self._geometry_args
    )
    self.alpha_logit = _base.init_param(alpha_init, shape, rngs, 'MaxAvgPool', 'alpha_logit')

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    _fields.check_param_shape(
      self.alpha_logit.shape,
      _base.input_param_shape(self.alpha_shape, x.shape, self._geometry_args),
      'MaxAvgPool',
      'alpha_logit',
      f"alpha_shape={self.alpha_shape!r}; 'location' variants need a fixed input size",
      x.shape,
    )
    return learned.max_avg_pool(
      x,
      jax.nn.sigmoid(self.alpha_logit[...]),
      *self._geometry_args,
      mask=mask,
      return_mask=return_mask,
    )


class GatedPool(Windowed):
  """:func:`jaxpool.gated_pool` with a learned gating mask ``gate``.

  ``gate`` has shape ``window`` or, with ``per_channel=True``, ``(*window,
  C)`` (needs ``num_features``); drawn N(0, 0.1**2) from ``rngs.params()``.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    per_channel: bool = False,
    gate_init: Initializer = filter_init,
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    _checks.flag(per_channel, 'per_channel')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    _base.check_optional_num_features(num_features)
    self.per_channel = freeze(per_channel)
    self.gate_init = freeze(gate_init)
    tail = (
      (_base.check_num_features(num_features, 'GatedPool', 'per_channel=True'),)
      if per_channel
      else ()
    )
    self.gate = _base.init_param(gate_init, (*self.window, *tail), rngs, 'GatedPool', 'gate')

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    tail = (x.shape[-1],) if self.per_channel else ()
    _fields.check_param_shape(
      self.gate.shape, (*self.window, *tail), 'GatedPool', 'gate', 'per_channel gate', x.shape
    )
    return learned.gated_pool(
      x, self.gate[...], *self._geometry_args, mask=mask, return_mask=return_mask
    )


class TreePool(Windowed):
  """:func:`jaxpool.tree_pool` with learned leaf filters and gating masks.

  ``leaves`` ``(2**depth, *window[, C])`` and ``gates`` ``(2**depth - 1,
  *window[, C])`` (``per_channel`` needs ``num_features``), drawn N(0,
  0.1**2) from ``rngs.params()``, as in the linen module of the same name.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    depth: int = 1,
    per_channel: bool = False,
    leaf_init: Initializer = filter_init,
    gate_init: Initializer = filter_init,
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    n = 2 ** _fields.check_depth(depth)
    _checks.flag(per_channel, 'per_channel')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    _base.check_optional_num_features(num_features)
    self.depth = freeze(depth)
    self.per_channel = freeze(per_channel)
    self.leaf_init = freeze(leaf_init)
    self.gate_init = freeze(gate_init)
    tail = (
      (_base.check_num_features(num_features, 'TreePool', 'per_channel=True'),)
      if per_channel
      else ()
    )
    self.leaves = _base.init_param(leaf_init, (n, *self.window, *tail), rngs, 'TreePool', 'leaves')
    self.gates = _base.init_param(
      gate_init, (n - 1, *self.window, *tail), rngs, 'TreePool', 'gates'
    )

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    tail = (x.shape[-1],) if self.per_channel else ()
    n = 2**self.depth
    _fields.check_param_shape(
      self.leaves.shape, (n, *self.window, *tail), 'TreePool', 'leaves', 'leaves', x.shape
    )
    return learned.tree_pool(
      x, self.leaves[...], self.gates[...], *self._geometry_args, mask=mask, return_mask=return_mask
    )


class DPP(Windowed):
  """Detail-Preserving Pooling, :func:`jaxpool.dpp_pool`, with learned per-channel parameters.

  ``alpha = exp(log_alpha)``, ``lam = exp(log_lam)``, both ``(num_features,)``,
  starting at 1; ``guide='full'`` adds a depthwise ``guide_window`` filter
  ``guide_kernel`` ``(*guide_window, 1, C)`` (a normalised box) and
  ``guide_bias`` (zeros), read with the pooling's strides at output
  resolution, as in the linen module of the same name.

  Example:
    >>> pool = jaxpool.nnx.DPP((2, 2), num_features=3)
    >>> pool(jnp.ones((1, 4, 4, 3))).shape
    (1, 2, 2, 3)
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    guide: str = 'lite',
    symmetric: bool = True,
    eps: float = 1e-3,
    guide_window: int | Sequence[int] = 3,
    alpha_init: Initializer = nnx.initializers.zeros,
    lam_init: Initializer = nnx.initializers.zeros,
    guide_kernel_init: Initializer = box_init,
    guide_bias_init: Initializer = nnx.initializers.zeros,
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    _checks.choice(guide, 'guide', ('lite', 'full'))
    _checks.flag(symmetric, 'symmetric')
    _checks.positive(eps, 'eps')
    n = len(_geometry.normalize_window(window))
    gw = _geometry.int_tuple(guide_window, n, 'guide_window')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.guide = freeze(guide)
    self.symmetric = freeze(symmetric)
    self.eps = freeze(eps)
    self.guide_window = freeze(guide_window)
    self.alpha_init = freeze(alpha_init)
    self.lam_init = freeze(lam_init)
    self.guide_kernel_init = freeze(guide_kernel_init)
    self.guide_bias_init = freeze(guide_bias_init)
    c = _base.check_num_features(num_features, 'DPP', 'its per-channel alpha and lambda')
    self.log_alpha = _base.init_param(alpha_init, (c,), rngs, 'DPP', 'log_alpha')
    self.log_lam = _base.init_param(lam_init, (c,), rngs, 'DPP', 'log_lam')
    if guide == 'full':
      self.guide_kernel = _base.init_param(
        guide_kernel_init, (*gw, 1, c), rngs, 'DPP', 'guide_kernel'
      )
      self.guide_bias = _base.init_param(guide_bias_init, (c,), rngs, 'DPP', 'guide_bias')

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    _numerics.check_float(x, 'DPP')
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    _fields.check_param_shape(
      self.log_alpha.shape, (x.shape[-1],), 'DPP', 'log_alpha', 'per channel', x.shape
    )
    guide = None
    if self.guide == 'full':
      # masked positions read 0 in the guide's filter, as its zero padding does
      guide = _subnets.strided_guide(
        _masks.data_or_all(x, mask, 'DPP'), self.guide_kernel[...], self.guide_bias[...], geom
      )
    return learned.dpp_pool(
      x,
      jnp.exp(self.log_alpha[...]),
      jnp.exp(self.log_lam[...]),
      self.window,
      self.strides,
      self.padding,
      guide=guide,
      symmetric=self.symmetric,
      eps=self.eps,
      dilation=self.dilation,
      ceil_mode=self.ceil_mode,
      mask=mask,
      return_mask=return_mask,
    )
