"""Flax NNX modules for the softmax-weighted family: thin wrappers over :mod:`jaxpool.weighted`.

Parameters start where the linen modules' do, under the same names: AdaPool's
``theta = 0`` (``beta = 0.5``), LIP's zero-initialised logit conv (average
pooling at the start), SoftPool's ``log_temperature``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, _geometry, _masks, _subnets, weighted
from jaxpool._geometry import Padding
from jaxpool.nnx import _base
from jaxpool.nnx._base import Windowed, freeze

#: LIPLogits' default ``eps``: one object, so a given ``eps`` is told from the default.
_LIP_EPS = 1e-5


class SoftPool(Windowed):
  """:func:`jaxpool.soft_pool` as an NNX module.

  ``learnable_temperature=True`` adds an ``nnx.Param`` ``log_temperature``
  (initialised to ``log(temperature)``; ``T = exp(log_temperature) > 0``).
  ``return_weights=True`` returns ``(y, weights)``.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    temperature: float = 1.0,
    learnable_temperature: bool = False,
    return_weights: bool = False,
  ):
    _fields.check_temperature(temperature)
    _checks.flag(learnable_temperature, 'learnable_temperature')
    _checks.flag(return_weights, 'return_weights')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.temperature = temperature  # also takes an array (the traced path): stored as given
    self.learnable_temperature = freeze(learnable_temperature)
    self.return_weights = freeze(return_weights)
    if learnable_temperature:
      self.log_temperature = nnx.Param(_fields.initial_log_temperature(temperature))

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    temperature: float | jax.Array = self.temperature
    if self.learnable_temperature:
      temperature = jnp.exp(self.log_temperature[...])
    return weighted.soft_pool(
      x,
      *self._geometry_args,
      temperature=temperature,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class LIPLogits(nnx.Module):
  """LIP's default logit module (Gao et al. 2019, ``SimplifiedLIP``).

  ``logits = coeff * sigmoid(InstanceNorm(Conv(x)))``: a bias-free
  ``num_features -> num_features`` conv (``SAME`` padding) initialised to
  zero, so LIP starts as average pooling, then instance norm over the spatial
  dims with a per-channel ``scale`` (ones) and ``bias`` (zeros), and the
  paper's ``SoftGate``. ``rngs`` is optional: nothing here is random at
  initialisation. ``epsilon`` is the deprecated name of ``eps``.
  """

  def __init__(
    self,
    kernel_size: Sequence[int],
    coeff: float = 12.0,
    eps: float = _LIP_EPS,
    epsilon: float | None = None,
    *,
    num_features: int,
    rngs: nnx.Rngs | None = None,
  ):
    eps = _checks.renamed(eps, epsilon, 'eps', 'epsilon', _LIP_EPS, 'LIPLogits')
    _geometry.normalize_window(kernel_size, 'kernel_size')
    _checks.positive(coeff, 'coeff')
    _checks.positive(eps, 'eps')
    c = _base.check_num_features(num_features, 'LIPLogits', 'its C -> C conv')
    _base.check_optional_rngs(rngs, 'LIPLogits')
    self.kernel_size = freeze(kernel_size)
    self.coeff = freeze(coeff)
    self.eps = freeze(eps)
    self.conv = nnx.Conv(
      c,
      c,
      tuple(kernel_size),
      padding='SAME',
      use_bias=False,
      kernel_init=nnx.initializers.zeros,
      rngs=nnx.Rngs(0) if rngs is None else rngs,
    )
    self.scale = nnx.Param(jnp.ones((c,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((c,), jnp.float32))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return _subnets.lip_gate(
      self.conv(x),
      self.scale[...],
      self.bias[...],
      self.coeff,
      self.eps,
      len(self.kernel_size),
      x.dtype,
    )


class LIP(Windowed):
  """:func:`jaxpool.lip_pool` with a logit module: Local Importance-based Pooling.

  By default the logits come from :class:`LIPLogits` (attribute ``logits``;
  needs ``num_features``), so the layer starts as average pooling over the
  valid taps. Any callable (an NNX module or a function) mapping ``x`` to
  logits broadcastable to ``x`` may be given as ``logit_module`` instead.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    logit_module: Callable | None = None,
    logit_window: Sequence[int] | None = None,
    coeff: float = 12.0,
    return_weights: bool = False,
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    kernel = _subnets.lip_logit_window(window, logit_window)
    _checks.positive(coeff, 'coeff')
    _checks.flag(return_weights, 'return_weights')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    if logit_module is not None and not callable(logit_module):
      raise TypeError(
        f'logit_module must be a callable (e.g. an nnx.Module) or None; got {logit_module!r}'
      )
    _base.check_optional_num_features(num_features)
    _base.check_optional_rngs(rngs, 'LIP')
    self.logit_module = logit_module
    self.logit_window = freeze(logit_window)
    self.coeff = freeze(coeff)
    self.return_weights = freeze(return_weights)
    if logit_module is None:
      c = _base.check_num_features(num_features, 'LIP', 'its default logit module (LIPLogits)')
      self.logits = LIPLogits(kernel, coeff, num_features=c, rngs=rngs)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    # The logit network reads masked positions as 0, as its zero padding: what they hold
    # (inf, NaN) never reaches a logit of an unmasked one.
    data = _masks.data_or_all(jnp.asarray(x), mask, 'LIP')
    logits = self.logits(data) if self.logit_module is None else self.logit_module(data)
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

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    eps: float = 1e-6,
    return_weights: bool = False,
  ):
    _checks.positive(eps, 'eps')
    _checks.flag(return_weights, 'return_weights')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.eps = freeze(eps)
    self.return_weights = freeze(return_weights)

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
  """:func:`jaxpool.edscw_pool` as an NNX module (no parameters)."""

  _pool = staticmethod(weighted.edscw_pool)


class IDWPool(_EpsWeighted):
  """:func:`jaxpool.idw_pool` as an NNX module (no parameters)."""

  _pool = staticmethod(weighted.idw_pool)


class AdaPool(Windowed):
  """:func:`jaxpool.ada_pool` with a learned blend ``beta = sigmoid(theta)``, ``theta = 0``.

  ``beta_shape``: ``'scalar'`` ``()``, ``'channel'`` ``(C,)`` (needs
  ``num_features``), ``'location'`` ``(*out_spatial, 1)`` (needs
  ``input_size``, the spatial size of the input) or ``'location_channel'``
  ``(*out_spatial, C)`` (needs both). ``theta`` is an ``nnx.Param`` of that
  shape, all zeros.

  Example:
    >>> pool = jaxpool.nnx.AdaPool((2, 2), beta_shape='channel', num_features=3)
    >>> pool.theta.shape, pool(jnp.ones((1, 4, 4, 3))).shape
    ((3,), (1, 2, 2, 3))
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    beta_shape: str = 'scalar',
    eps: float = 1e-6,
    return_weights: bool = False,
    *,
    num_features: int | None = None,
    input_size: Sequence[int] | None = None,
  ):
    _checks.choice(beta_shape, 'beta_shape', _geometry.PARAM_SHAPES)
    _checks.positive(eps, 'eps')
    _checks.flag(return_weights, 'return_weights')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    _base.check_optional_num_features(num_features)
    self.beta_shape = freeze(beta_shape)
    self.eps = freeze(eps)
    self.return_weights = freeze(return_weights)
    shape = _base.declared_param_shape(
      beta_shape, 'beta_shape', 'AdaPool', num_features, input_size, self._geometry_args
    )
    self.theta = nnx.Param(jnp.zeros(shape, jnp.float32))

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    x = jnp.asarray(x)
    _fields.check_param_shape(
      self.theta.shape,
      _base.input_param_shape(self.beta_shape, x.shape, self._geometry_args),
      'AdaPool',
      'theta',
      f"beta_shape={self.beta_shape!r}; 'location' shapes need a fixed "
      f"input size, use 'scalar' or 'channel' for variable sizes",
      x.shape,
    )
    return weighted.ada_pool(
      x,
      jax.nn.sigmoid(self.theta[...]),
      *self._geometry_args,
      eps=self.eps,
      return_weights=self.return_weights,
      mask=mask,
      return_mask=return_mask,
    )


class AdaUnPool(nnx.Module):
  """:func:`jaxpool.ada_unpool` as an NNX module: ``AdaUnPool(window)(y, weights)``.

  Pass the weights returned by a pooling module with ``return_weights=True``
  and the same geometry. ``output_shape`` is the deprecated name of
  ``output_size``.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
  ):
    _geometry.check_fields(window, strides, padding, dilation)
    self.window = freeze(window)
    self.strides = freeze(strides)
    self.padding = freeze(padding)
    self.dilation = freeze(dilation)

  def __call__(
    self,
    y: jnp.ndarray,
    weights: jnp.ndarray,
    output_size: Sequence[int] | None = None,
    *,
    output_shape: Sequence[int] | None = None,
  ) -> jnp.ndarray:
    output_size = _checks.renamed(
      output_size, output_shape, 'output_size', 'output_shape', None, 'AdaUnPool'
    )
    return weighted.weighted_unpool(
      y, weights, self.window, self.strides, self.padding, self.dilation, output_size
    )
