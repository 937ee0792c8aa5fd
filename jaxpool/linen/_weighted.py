"""Flax linen modules for the softmax-weighted family: thin wrappers over :mod:`jaxpool.weighted`.

Learned parameters start where the papers start and stay in range by
construction: AdaPool's ``beta = sigmoid(theta)`` with ``theta = 0``; LIP's
logit module is a zero-initialised conv, so pooling starts as average pooling;
a learnable SoftPool temperature is stored as its logarithm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _checks, _fields, _geometry, _masks, _subnets, weighted
from jaxpool._geometry import Padding
from jaxpool.linen._base import Windowed, check_window_fields

#: LIPLogits' default ``eps`` (its identity tells "not given" for the deprecated ``epsilon``).
_LIP_EPS = 1e-5


class SoftPool(Windowed):
  """:func:`jaxpool.soft_pool` as a module.

  ``learnable_temperature=True`` adds a parameter ``log_temperature``
  (initialised to ``log(temperature)``; ``T = exp(log_temperature) > 0``).
  ``return_weights=True`` returns ``(y, weights)``.
  """

  temperature: float = 1.0
  learnable_temperature: bool = False
  return_weights: bool = False

  def __post_init__(self):
    _fields.check_temperature(self.temperature)
    _checks.flag(self.learnable_temperature, 'learnable_temperature')
    _checks.flag(self.return_weights, 'return_weights')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    temperature: float | jnp.ndarray = self.temperature
    if self.learnable_temperature:
      log_t = self.param(
        'log_temperature', lambda _: _fields.initial_log_temperature(self.temperature)
      )
      temperature = jnp.exp(log_t)
    return weighted.soft_pool(
      x,
      *self._geometry_args,
      temperature=temperature,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class LIPLogits(nn.Module):
  """LIP's default logit module (Gao et al. 2019, ``SimplifiedLIP``).

  ``logits = coeff * sigmoid(InstanceNorm(Conv(x)))``: a bias-free conv with
  ``C`` output channels and ``SAME`` padding, **zero-initialised** (so every
  logit starts at ``coeff / 2`` and LIP starts as average pooling), instance
  norm over the spatial dims with a learned per-channel scale and bias, and
  the paper's ``SoftGate`` (``coeff = 12``), which bounds the logits to
  ``(0, coeff)``. ``eps`` is the instance norm's variance offset (``epsilon``,
  its old name, still works with a ``DeprecationWarning``).
  """

  kernel_size: Sequence[int]
  coeff: float = 12.0
  eps: float = _LIP_EPS
  epsilon: float | None = None  # deprecated: eps

  def __post_init__(self):
    eps = _checks.renamed(self.eps, self.epsilon, 'eps', 'epsilon', _LIP_EPS, 'LIPLogits')
    object.__setattr__(self, 'eps', eps)  # resolved once: clones do not warn again
    object.__setattr__(self, 'epsilon', None)
    _geometry.normalize_window(self.kernel_size, 'kernel_size')
    _checks.positive(self.coeff, 'coeff')
    _checks.positive(self.eps, 'eps')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    channels = x.shape[-1]
    h = nn.Conv(
      channels,
      tuple(self.kernel_size),
      padding='SAME',
      use_bias=False,
      kernel_init=nn.initializers.zeros,
      name='conv',
    )(x)
    scale = self.param('scale', nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (channels,), jnp.float32)
    return _subnets.lip_gate(h, scale, bias, self.coeff, self.eps, len(self.kernel_size), x.dtype)


class LIP(Windowed):
  """:func:`jaxpool.lip_pool` with a logit module: Local Importance-based Pooling.

  By default the logits come from :class:`LIPLogits` (a zero-initialised
  ``logit_window`` conv, default 3 per spatial dim, + instance norm +
  ``sigmoid * coeff``), so the layer starts as average pooling over the valid
  taps. Any module mapping ``x`` to logits broadcastable to ``x`` may be given
  as ``logit_module`` instead (its output is used as the logits as is). The
  paper's ResNet setting is ``LIP((3, 3), strides=2, padding=1)``.
  """

  logit_module: nn.Module | None = None
  logit_window: Sequence[int] | None = None
  coeff: float = 12.0
  return_weights: bool = False

  def __post_init__(self):
    _subnets.lip_logit_window(self.window, self.logit_window)
    _checks.positive(self.coeff, 'coeff')
    _checks.flag(self.return_weights, 'return_weights')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    # The logit network reads masked positions as 0, as its zero padding: what they hold
    # (inf, NaN) never reaches a logit of an unmasked one.
    data = _masks.data_or_all(jnp.asarray(x), mask, 'LIP')
    if self.logit_module is not None:
      logits = self.logit_module(data)
    else:
      kernel = _subnets.lip_logit_window(self.window, self.logit_window)
      logits = LIPLogits(kernel, self.coeff, name='logits')(data)
    return weighted.lip_pool(
      x,
      logits,
      *self._geometry_args,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class _EpsWeighted(Windowed):
  """The eps-regularised weightings (eDSCW, IDW): fields ``eps``, ``return_weights``; no
  parameters. A subclass names its function as ``_pool``."""

  _pool: ClassVar[Callable[..., Any]]
  eps: float = 1e-6
  return_weights: bool = False

  def __post_init__(self):
    _checks.positive(self.eps, 'eps')
    _checks.flag(self.return_weights, 'return_weights')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return type(self)._pool(
      x,
      *self._geometry_args,
      eps=self.eps,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class EDSCWPool(_EpsWeighted):
  """:func:`jaxpool.edscw_pool` as a module (no parameters)."""

  _pool = staticmethod(weighted.edscw_pool)


class IDWPool(_EpsWeighted):
  """:func:`jaxpool.idw_pool` as a module (no parameters)."""

  _pool = staticmethod(weighted.idw_pool)


class AdaPool(Windowed):
  """:func:`jaxpool.ada_pool` with a learned blend ``beta = sigmoid(theta)``, ``theta = 0``.

  ``beta_shape``: ``'scalar'`` (one beta), ``'channel'`` ``(C,)``,
  ``'location'`` ``(*out_spatial, 1)`` (the paper's region-specific beta,
  shared over channels) or ``'location_channel'`` ``(*out_spatial, C)``. The
  location shapes tie the parameters to one input size; calling the module on
  another size raises. ``beta`` starts at 0.5 everywhere (the reference draws
  ``clamp(randn, 0, 1)``) and stays in ``(0, 1)`` by construction.
  """

  beta_shape: str = 'scalar'
  eps: float = 1e-6
  return_weights: bool = False

  def __post_init__(self):
    _checks.choice(self.beta_shape, 'beta_shape', _geometry.PARAM_SHAPES)
    _checks.positive(self.eps, 'eps')
    _checks.flag(self.return_weights, 'return_weights')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = jnp.asarray(x)
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    shape = _geometry.param_shape(self.beta_shape, geom.out_shape, x.shape[-1])
    if self.has_variable('params', 'theta'):
      created: tuple[int, ...] = self.get_variable('params', 'theta').shape
      if created != shape:
        if self.beta_shape.startswith('location'):
          hint = (
            f'beta_shape={self.beta_shape!r} needs a fixed input size: theta was created '
            f'with shape {created} (output spatial shape, channels), but this input of '
            f"shape {x.shape} gives {shape}; use beta_shape='scalar' or 'channel' "
            f'for variable input sizes'
          )
        else:
          hint = (
            f'theta was created with shape {created} for {self.beta_shape!r} but this '
            f'input of shape {x.shape} needs {shape}'
          )
        raise ValueError(f'AdaPool: {hint}')
    theta = self.param('theta', nn.initializers.zeros, shape, jnp.float32)
    return weighted.ada_pool(
      x,
      nn.sigmoid(theta),
      *self._geometry_args,
      eps=self.eps,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class AdaUnPool(nn.Module):
  """:func:`jaxpool.ada_unpool` as a module: ``AdaUnPool(window)(y, weights)``.

  Pass the weights returned by a pooling module with ``return_weights=True``
  and the same geometry.
  """

  window: Sequence[int]
  strides: int | Sequence[int] | None = None
  padding: Padding = 'VALID'
  dilation: int | Sequence[int] = 1

  def __post_init__(self):
    check_window_fields(self)
    super().__post_init__()

  def __call__(
    self,
    y: jnp.ndarray,
    weights: jnp.ndarray,
    output_size: Sequence[int] | None = None,
    *,
    output_shape: Sequence[int] | None = None,
  ) -> jnp.ndarray:
    """``output_size`` as :func:`jaxpool.weighted_unpool`'s (``output_shape``: deprecated)."""
    output_size = _checks.renamed(
      output_size, output_shape, 'output_size', 'output_shape', None, 'AdaUnPool'
    )
    return weighted.weighted_unpool(
      y, weights, self.window, self.strides, self.padding, self.dilation, output_size
    )
