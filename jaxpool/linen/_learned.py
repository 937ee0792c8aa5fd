"""Flax linen modules for learned pooling: they own and initialise the parameters of
:mod:`jaxpool.learned` and keep them in range by construction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _subnets, learned
from jaxpool.linen._base import Windowed

Initializer = Callable[..., Any]

filter_init = _fields.filter_init
box_init = _fields.box_init


class _WindowedWithParams(Windowed):
  """Windowed, plus checked parameter creation."""

  def _checked_param(self, name: str, init, shape: tuple[int, ...], why: str):
    """``self.param`` with a clear error when a stored parameter has another shape."""
    if self.has_variable('params', name):
      stored = jnp.shape(self.get_variable('params', name))
      _fields.check_param_shape(stored, shape, type(self).__name__, name, why)
    return self.param(name, init, shape, jnp.float32)


class MaxAvgPool(_WindowedWithParams):
  """:func:`jaxpool.max_avg_pool` with a learned ``alpha = sigmoid(alpha_logit)`` in ``[0, 1]``.

  ``alpha_shape`` is the paper's granularity: ``'scalar'`` (one per layer),
  ``'channel'`` ``(C,)``, ``'location'`` ``(*out_spatial, 1)`` or
  ``'location_channel'`` ``(*out_spatial, C)`` — the location variants fix the
  input's spatial size at initialisation. ``alpha_logit`` starts at 0, i.e.
  ``alpha = 0.5``: an even mix of max and average pooling (the sigmoid keeps
  ``alpha`` in the paper's range ``[0, 1]`` by construction).
  """

  alpha_shape: str = 'scalar'
  alpha_init: Initializer = nn.initializers.zeros

  def __post_init__(self):
    _checks.choice(self.alpha_shape, 'alpha_shape', _geometry.PARAM_SHAPES)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    shape = _geometry.param_shape(self.alpha_shape, geom.out_shape, x.shape[-1])
    logit = self._checked_param(
      'alpha_logit',
      self.alpha_init,
      shape,
      f"alpha_shape={self.alpha_shape!r}; 'location' variants need a fixed input size",
    )
    return learned.max_avg_pool(
      x, jax.nn.sigmoid(logit), *self._geometry_args, mask=mask, return_mask=return_mask
    )


class GatedPool(_WindowedWithParams):
  """:func:`jaxpool.gated_pool` with a learned gating mask ``gate``.

  ``gate`` has shape ``window`` (one mask per layer, the paper's choice) or,
  with ``per_channel=True``, ``(*window, C)``; initialised N(0, 0.1**2) as the
  author's code.
  """

  per_channel: bool = False
  gate_init: Initializer = filter_init

  def __post_init__(self):
    _checks.flag(self.per_channel, 'per_channel')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    window = _geometry.normalize_window(self.window)
    shape = (*window, x.shape[-1]) if self.per_channel else window
    gate = self._checked_param('gate', self.gate_init, shape, 'per_channel gate')
    return learned.gated_pool(x, gate, *self._geometry_args, mask=mask, return_mask=return_mask)


class TreePool(_WindowedWithParams):
  """:func:`jaxpool.tree_pool` with learned leaf filters and gating masks.

  ``depth`` gate levels: ``leaves`` ``(2**depth, *window[, C])`` and ``gates``
  ``(2**depth - 1, *window[, C])`` in heap order (see :func:`jaxpool.tree_pool`).
  ``depth=1`` is the paper's "2-level tree" (two leaves, one gate), used in its
  AlexNet example. Every filter starts N(0, 0.1**2) as the author's code;
  ``per_channel=True`` learns one tree per channel.
  """

  depth: int = 1
  per_channel: bool = False
  leaf_init: Initializer = filter_init
  gate_init: Initializer = filter_init

  def __post_init__(self):
    _fields.check_depth(self.depth)
    _checks.flag(self.per_channel, 'per_channel')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    window = _geometry.normalize_window(self.window)
    tail = (x.shape[-1],) if self.per_channel else ()
    n = 2 ** _fields.check_depth(self.depth)
    leaves = self._checked_param('leaves', self.leaf_init, (n, *window, *tail), 'leaves')
    gates = self._checked_param('gates', self.gate_init, (n - 1, *window, *tail), 'gates')
    return learned.tree_pool(
      x, leaves, gates, *self._geometry_args, mask=mask, return_mask=return_mask
    )


class DPP(_WindowedWithParams):
  """Detail-Preserving Pooling, :func:`jaxpool.dpp_pool`, with learned per-channel parameters.

  ``alpha = exp(log_alpha)`` and ``lam = exp(log_lam)``, both ``(C,)`` and
  positive by construction. Both raw parameters start at 0 (``alpha = lam =
  1``), as the authors' CUDA module ``SpatialInverseBilateralPooling``; their
  nngraph modules draw them ``U(-1/sqrt(C), 1/sqrt(C))``, centred on the same
  point (pass ``alpha_init``/``lam_init`` for that). Unlike the reference we do
  not clamp ``log_alpha`` to <= 10: the op is stable for any ``alpha``.

  ``guide='lite'`` uses the window mean as the guide; ``guide='full'`` learns
  it: a depthwise ``guide_window`` filter (default 3 per dim) with bias, read
  with the pooling's strides and aligned on the pooling windows' centres, gives
  the guide directly at output resolution (the reference: a per-channel 3x3
  conv, stride 2, pad 1, for its 2x2/s2 pooling, zero padding as there). The
  filter starts as a normalised box (a local mean, so "full" starts near
  "lite"; the paper calls the guide a linearly downscaled image), bias 0 —
  the reference used Torch's default ``U(-1/3, 1/3)``.
  """

  guide: str = 'lite'
  symmetric: bool = True
  eps: float = 1e-3
  guide_window: int | Sequence[int] = 3
  alpha_init: Initializer = nn.initializers.zeros
  lam_init: Initializer = nn.initializers.zeros
  guide_kernel_init: Initializer = box_init
  guide_bias_init: Initializer = nn.initializers.zeros

  def __post_init__(self):
    _checks.choice(self.guide, 'guide', ('lite', 'full'))
    _checks.flag(self.symmetric, 'symmetric')
    _checks.positive(self.eps, 'eps')
    n = len(_geometry.normalize_window(self.window))
    _geometry.int_tuple(self.guide_window, n, 'guide_window')
    super().__post_init__()

  def _full_guide(self, x: jnp.ndarray, geom: _geometry.Geometry) -> jnp.ndarray:
    """The learned guide (:func:`jaxpool._subnets.strided_guide`) with this module's filter."""
    channels = x.shape[-1]
    gw = _geometry.int_tuple(self.guide_window, geom.ndim, 'guide_window')
    kernel = self._checked_param(
      'guide_kernel', self.guide_kernel_init, (*gw, 1, channels), 'depthwise guide filter'
    )
    bias = self._checked_param('guide_bias', self.guide_bias_init, (channels,), 'guide bias')
    return _subnets.strided_guide(x, kernel, bias, geom)

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = _numerics.as_array(x)
    _numerics.check_float(x, 'DPP')
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    channels = x.shape[-1]
    log_alpha = self._checked_param('log_alpha', self.alpha_init, (channels,), 'per channel')
    log_lam = self._checked_param('log_lam', self.lam_init, (channels,), 'per channel')
    # masked positions read 0 in the guide's filter, as its zero padding does
    guide = (
      self._full_guide(_masks.data_or_all(x, mask, 'DPP'), geom) if self.guide == 'full' else None
    )
    return learned.dpp_pool(
      x,
      jnp.exp(log_alpha),
      jnp.exp(log_lam),
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
