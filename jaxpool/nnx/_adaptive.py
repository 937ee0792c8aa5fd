"""Flax NNX modules for adaptive, global, channel and pyramid pooling (:mod:`jaxpool.adaptive`)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxpool import adaptive
from jaxpool import linen as _linen
from jaxpool.nnx import _base
from jaxpool.nnx._base import configure


class AdaptiveAvgPool(nnx.Module):
  """:func:`jaxpool.adaptive_avg_pool` as an NNX module, e.g. ``AdaptiveAvgPool((7, 7))``."""

  def __init__(self, output_size: int | Sequence[int | None]):
    configure(self, _linen.AdaptiveAvgPool, dict(output_size=output_size))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.adaptive_avg_pool(x, self.output_size)


class AdaptiveMaxPool(nnx.Module):
  """:func:`jaxpool.adaptive_max_pool` as an NNX module; ``return_indices`` adds the indices."""

  def __init__(self, output_size: int | Sequence[int | None], return_indices: bool = False):
    configure(self, _linen.AdaptiveMaxPool, dict(output_size=output_size,
                                                 return_indices=return_indices))

  def __call__(self, x: jnp.ndarray):
    return adaptive.adaptive_max_pool(x, self.output_size, return_indices=self.return_indices)


class GlobalPool(nnx.Module):
  """:func:`jaxpool.global_pool` as an NNX module: ``(N, *spatial, C) -> (N, C)``.

  Fields as :class:`jaxpool.linen.GlobalPool`. With ``learnable_p=True``
  (``'lp'``/``'gem'``) ``p`` is an ``nnx.Param`` initialised to the field's
  value (default 2 for ``'lp'``, 3 for ``'gem'``): scalar, or ``(C,)`` with
  ``p_shape='channel'`` (needs ``num_features``).

  Example:
    >>> gem = jaxpool.nnx.GlobalPool('gem', learnable_p=True)
    >>> gem.p[...], gem(jnp.ones((2, 4, 4, 3))).shape
    (Array(3., dtype=float32), (2, 3))
  """

  def __init__(self, method: str = 'avg', keepdims: bool = False, p: float | None = None,
               eps: float | None = None, temperature: float | None = None,
               learnable_p: bool = False, p_shape: str = 'scalar', *,
               num_features: int | None = None):
    configure(self, _linen.GlobalPool, dict(
        method=method, keepdims=keepdims, p=p, eps=eps, temperature=temperature,
        learnable_p=learnable_p, p_shape=p_shape), skip=('p',) if learnable_p else ())
    _base.check_optional_num_features(num_features)
    if learnable_p:
      init = (3.0 if method == 'gem' else 2.0) if p is None else float(p)
      shape = () if p_shape == 'scalar' else (
          _base.check_num_features(num_features, 'GlobalPool', "p_shape='channel'"),)
      self.p = nnx.Param(jnp.full(shape, init, jnp.float32))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    p = self.p
    if self.learnable_p:
      if self.p_shape == 'channel':
        _base.check_param_shape(self.p, (jnp.shape(x)[-1],), 'GlobalPool', 'p', jnp.shape(x),
                                "p_shape='channel'")
      p = self.p[...]
    kw = {'p': p, 'eps': self.eps, 'temperature': self.temperature}
    return adaptive.global_pool(x, self.method, self.keepdims,
                                **{k: v for k, v in kw.items() if v is not None})


class ChannelPool(nnx.Module):
  """:func:`jaxpool.channel_pool` as an NNX module: ``(..., C) -> (..., 1)``."""

  def __init__(self, method: str = 'max', keepdims: bool = True):
    configure(self, _linen.ChannelPool, dict(method=method, keepdims=keepdims))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.channel_pool(x, self.method, self.keepdims)


class SpatialPyramidPool(nnx.Module):
  """:func:`jaxpool.spatial_pyramid_pool` as an NNX module: ``(N, *spatial, C) -> (N, C*bins)``."""

  def __init__(self, levels: Sequence[int | Sequence[int]] = (1, 2, 4), method: str = 'max'):
    configure(self, _linen.SpatialPyramidPool, dict(levels=levels, method=method))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.spatial_pyramid_pool(x, self.levels, self.method)
