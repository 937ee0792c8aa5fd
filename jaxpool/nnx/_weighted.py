"""Flax NNX modules for the softmax-weighted family: thin wrappers over :mod:`jaxpool.weighted`.

Parameters start where :mod:`jaxpool.linen`'s do, under the same names: AdaPool's
``theta = 0`` (``beta = 0.5``), LIP's zero-initialised logit conv (average
pooling at the start), SoftPool's ``log_temperature``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxpool import _geometry, weighted
from jaxpool import linen as _linen
from jaxpool._geometry import Padding
from jaxpool.nnx import _base
from jaxpool.nnx._base import Windowed as _Windowed
from jaxpool.nnx._base import configure


class SoftPool(_Windowed):
  """:func:`jaxpool.soft_pool` as an NNX module.

  ``learnable_temperature=True`` adds an ``nnx.Param`` ``log_temperature``
  (initialised to ``log(temperature)``; ``T = exp(log_temperature) > 0``).
  ``return_weights=True`` returns ``(y, weights)``.
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, temperature: float = 1.0,
               learnable_temperature: bool = False, return_weights: bool = False):
    configure(self, _linen.SoftPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, temperature=temperature,
        learnable_temperature=learnable_temperature, return_weights=return_weights))
    if learnable_temperature:
      self.log_temperature = nnx.Param(jnp.asarray(math.log(temperature), jnp.float32))

  def __call__(self, x: jnp.ndarray):
    temperature = self.temperature
    if self.learnable_temperature:
      temperature = jnp.exp(self.log_temperature[...])
    return weighted.soft_pool(x, *self._geometry_args, temperature=temperature,
                              return_weights=self.return_weights)


class LIPLogits(nnx.Module):
  """LIP's default logit module, as :class:`jaxpool.linen.LIPLogits`.

  ``logits = coeff * sigmoid(InstanceNorm(Conv(x)))``: a bias-free
  ``num_features -> num_features`` conv (``SAME`` padding) initialised to
  zero, instance norm over the spatial dims with a per-channel ``scale``
  (ones) and ``bias`` (zeros), and the paper's ``SoftGate``. ``rngs`` is
  optional: nothing here is random at initialisation.
  """

  def __init__(self, kernel_size: Sequence[int], coeff: float = 12.0, epsilon: float = 1e-5, *,
               num_features: int, rngs: nnx.Rngs | None = None):
    configure(self, _linen.LIPLogits, dict(kernel_size=kernel_size, coeff=coeff,
                                           epsilon=epsilon))
    c = _base.check_num_features(num_features, 'LIPLogits', 'its C -> C conv')
    self.conv = nnx.Conv(c, c, tuple(kernel_size), padding='SAME', use_bias=False,
                         kernel_init=nnx.initializers.zeros,
                         rngs=nnx.Rngs(0) if rngs is None else rngs)
    self.scale = nnx.Param(jnp.ones((c,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((c,), jnp.float32))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    n = len(self.kernel_size)
    h = self.conv(x)
    axes = tuple(range(h.ndim - n - 1, h.ndim - 1))
    h32 = h.astype(jnp.float32)
    mean = h32.mean(axes, keepdims=True)
    var = jnp.square(h32 - mean).mean(axes, keepdims=True)
    h32 = (h32 - mean) * lax.rsqrt(var + self.epsilon)
    return (self.coeff * jax.nn.sigmoid(h32 * self.scale[...] + self.bias[...])).astype(x.dtype)


class LIP(_Windowed):
  """:func:`jaxpool.lip_pool` with a logit module: Local Importance-based Pooling.

  By default the logits come from :class:`LIPLogits` (attribute ``logits``;
  needs ``num_features``), so the layer starts as average pooling over the
  valid taps. Any callable (an NNX module or a function) mapping ``x`` to
  logits broadcastable to ``x`` may be given as ``logit_module`` instead.
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, logit_module: Callable | None = None,
               logit_window: Sequence[int] | None = None, coeff: float = 12.0,
               return_weights: bool = False, *, num_features: int | None = None,
               rngs: nnx.Rngs | None = None):
    if logit_module is not None and not callable(logit_module):
      raise TypeError(f'logit_module must be a callable (e.g. an nnx.Module) or None; '
                      f'got {logit_module!r}')
    configure(self, _linen.LIP, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, logit_module=None, logit_window=logit_window, coeff=coeff,
        return_weights=return_weights), skip=('logit_module',))
    _base.check_optional_num_features(num_features)
    self.logit_module = logit_module
    if logit_module is None:
      kernel = logit_window or (3,) * len(window)
      c = _base.check_num_features(num_features, 'LIP', 'its default logit module (LIPLogits)')
      self.logits = LIPLogits(tuple(kernel), coeff, num_features=c, rngs=rngs)

  def __call__(self, x: jnp.ndarray):
    logits = self.logits(x) if self.logit_module is None else self.logit_module(x)
    return weighted.lip_pool(x, logits, *self._geometry_args,
                             return_weights=self.return_weights)


class EDSCWPool(_Windowed):
  """:func:`jaxpool.edscw_pool` as an NNX module (no parameters)."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, eps: float = 1e-6, return_weights: bool = False):
    configure(self, _linen.EDSCWPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, eps=eps, return_weights=return_weights))

  def __call__(self, x: jnp.ndarray):
    return weighted.edscw_pool(x, *self._geometry_args, eps=self.eps,
                               return_weights=self.return_weights)


class IDWPool(_Windowed):
  """:func:`jaxpool.idw_pool` as an NNX module (no parameters)."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, eps: float = 1e-6, return_weights: bool = False):
    configure(self, _linen.IDWPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, eps=eps, return_weights=return_weights))

  def __call__(self, x: jnp.ndarray):
    return weighted.idw_pool(x, *self._geometry_args, eps=self.eps,
                             return_weights=self.return_weights)


class AdaPool(_Windowed):
  """:func:`jaxpool.ada_pool` with a learned blend ``beta = sigmoid(theta)``, ``theta = 0``.

  ``beta_shape`` as :class:`jaxpool.linen.AdaPool`: ``'scalar'``,
  ``'channel'`` (needs ``num_features``), ``'location'`` (needs
  ``input_size``, the spatial size of the input) or ``'location_channel'``
  (needs both). ``theta`` is an ``nnx.Param`` of that shape, all zeros.

  Example:
    >>> pool = jaxpool.nnx.AdaPool((2, 2), beta_shape='channel', num_features=3)
    >>> pool.theta.shape, pool(jnp.ones((1, 4, 4, 3))).shape
    ((3,), (1, 2, 2, 3))
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, beta_shape: str = 'scalar', eps: float = 1e-6,
               return_weights: bool = False, *, num_features: int | None = None,
               input_size: Sequence[int] | None = None):
    configure(self, _linen.AdaPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, beta_shape=beta_shape, eps=eps, return_weights=return_weights))
    _base.check_optional_num_features(num_features)
    shape = _base.granular_shape(beta_shape, 'beta_shape', 'AdaPool', num_features, input_size,
                                 self._geometry_args)
    self.theta = nnx.Param(jnp.zeros(shape, jnp.float32))

  def __call__(self, x: jnp.ndarray):
    x = jnp.asarray(x)
    geom, _ = _geometry.pool_geometry(x.shape, *self._geometry_args)
    shape = {'scalar': (), 'channel': (x.shape[-1],), 'location': (*geom.out_shape, 1),
             'location_channel': (*geom.out_shape, x.shape[-1])}[self.beta_shape]
    _base.check_param_shape(self.theta, shape, 'AdaPool', 'theta', x.shape,
                            f"beta_shape={self.beta_shape!r}; 'location' shapes need a fixed "
                            f"input size, use 'scalar' or 'channel' for variable sizes")
    return weighted.ada_pool(x, jax.nn.sigmoid(self.theta[...]), *self._geometry_args,
                             eps=self.eps, return_weights=self.return_weights)


class AdaUnPool(nnx.Module):
  """:func:`jaxpool.ada_unpool` as an NNX module: ``AdaUnPool(window)(y, weights)``."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1):
    configure(self, _linen.AdaUnPool, dict(window=window, strides=strides, padding=padding,
                                           dilation=dilation))

  def __call__(self, y: jnp.ndarray, weights: jnp.ndarray,
               output_shape: Sequence[int] | None = None) -> jnp.ndarray:
    return weighted.weighted_unpool(y, weights, self.window, self.strides, self.padding,
                                    self.dilation, output_shape)
