"""Flax NNX modules for adaptive, global, channel and pyramid pooling (:mod:`jaxpool.adaptive`)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, adaptive, segments
from jaxpool.nnx import _base
from jaxpool.nnx._base import freeze


class AdaptiveAvgPool(nnx.Module):
  """:func:`jaxpool.adaptive_avg_pool` as an NNX module, e.g. ``AdaptiveAvgPool((7, 7))``."""

  def __init__(self, output_size: int | Sequence[int | None]):
    _fields.check_output_size(output_size)
    self.output_size = freeze(output_size)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return adaptive.adaptive_avg_pool(x, self.output_size, mask=mask, return_mask=return_mask)


class AdaptiveMaxPool(nnx.Module):
  """:func:`jaxpool.adaptive_max_pool` as an NNX module; ``return_indices`` adds the indices."""

  def __init__(self, output_size: int | Sequence[int | None], return_indices: bool = False):
    _fields.check_output_size(output_size)
    _checks.flag(return_indices, 'return_indices')
    self.output_size = freeze(output_size)
    self.return_indices = freeze(return_indices)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return adaptive.adaptive_max_pool(
      x, self.output_size, return_indices=self.return_indices, mask=mask, return_mask=return_mask
    )


def _p_field(method, p, learnable_p: bool, p_shape: str, num_features, owner: str):
  """A GlobalPool or SegmentPool's ``p``: as given, or with ``learnable_p`` an ``nnx.Param``
  (the given value, else the method's default; scalar, or ``(num_features,)`` per channel)."""
  if not learnable_p:
    return p
  shape = (
    ()
    if p_shape == 'scalar'
    else (_base.check_num_features(num_features, owner, "p_shape='channel'"),)
  )
  return nnx.Param(jnp.full(shape, _fields.initial_p(method, p), jnp.float32))


def _p_value(module, x: jnp.ndarray, owner: str) -> float | jax.Array | None:
  """The ``p`` to pass on: a parameter's value (its shape checked against ``x``'s channels)."""
  p = module.p
  if not isinstance(p, nnx.Param):
    return p
  if module.p_shape == 'channel':
    _fields.check_param_shape(
      p.shape, (jnp.shape(x)[-1],), owner, 'p', "p_shape='channel'", jnp.shape(x)
    )
  return p[...]


class GlobalPool(nnx.Module):
  """:func:`jaxpool.global_pool` as an NNX module: ``(N, *spatial, C) -> (N, C)``.

  ``p`` (``'lp'``, ``'gem'``), ``eps`` (``'gem'``) and ``temperature``
  (``'soft'``) are passed on when set. With ``learnable_p=True``
  (``'lp'``/``'gem'``) ``p`` is an ``nnx.Param`` initialised to the field's
  value (default 2 for ``'lp'``, 3 for ``'gem'``): scalar, or ``(C,)`` with
  ``p_shape='channel'`` (needs ``num_features``).

  Example:
    >>> gem = jaxpool.nnx.GlobalPool('gem', learnable_p=True)
    >>> gem.p[...], gem(jnp.ones((2, 4, 4, 3))).shape
    (Array(3., dtype=float32), (2, 3))
  """

  def __init__(
    self,
    method: str = 'avg',
    keepdims: bool = False,
    p: float | None = None,
    eps: float | None = None,
    temperature: float | None = None,
    learnable_p: bool = False,
    p_shape: str = 'scalar',
    *,
    num_features: int | None = None,
  ):
    _checks.flag(keepdims, 'keepdims')
    learnable_p = _checks.flag(learnable_p, 'learnable_p')
    _fields.check_global_fields(method, p, eps, temperature, learnable_p)
    _checks.choice(p_shape, 'p_shape', ('scalar', 'channel'))
    _base.check_optional_num_features(num_features)
    self.method = freeze(method)
    self.keepdims = freeze(keepdims)
    self.eps = eps  # these three also take arrays (the traced path): stored as given
    self.temperature = temperature
    self.learnable_p = freeze(learnable_p)
    self.p_shape = freeze(p_shape)
    self.p = _p_field(method, p, learnable_p, p_shape, num_features, 'GlobalPool')

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    p = _p_value(self, x, 'GlobalPool')
    return adaptive.global_pool(
      x,
      self.method,
      self.keepdims,
      mask=mask,
      **_fields.global_kwargs(p, self.eps, self.temperature),
    )


class ChannelPool(nnx.Module):
  """:func:`jaxpool.channel_pool` as an NNX module: ``(..., C) -> (..., 1)``."""

  def __init__(self, method: str = 'max', keepdims: bool = True):
    _checks.choice(method, 'method', adaptive.CHANNEL_METHODS)
    _checks.flag(keepdims, 'keepdims')
    self.method = freeze(method)
    self.keepdims = freeze(keepdims)

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.channel_pool(x, self.method, self.keepdims)


class SpatialPyramidPool(nnx.Module):
  """:func:`jaxpool.spatial_pyramid_pool` as an NNX module: ``(N, *spatial, C) -> (N, C*bins)``."""

  def __init__(self, levels: Sequence[int | Sequence[int]] = (1, 2, 4), method: str = 'max'):
    _fields.check_pyramid_fields(levels, method)
    self.levels = freeze(levels)
    self.method = freeze(method)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None):
    return adaptive.spatial_pyramid_pool(x, self.levels, self.method, mask=mask)


class SegmentPool(nnx.Module):
  """:func:`jaxpool.segment_pool` as an NNX module: ``SegmentPool(num_segments)(x, segment_ids)``,
  ``(N, *spatial, C) -> (N, num_segments, C)``.

  Arguments as :class:`GlobalPool` (``'sum'`` added to the methods); with
  ``learnable_p=True`` (``'lp'``/``'gem'``) ``p`` is an ``nnx.Param``, scalar or
  ``(C,)`` with ``p_shape='channel'`` (needs ``num_features``).
  """

  def __init__(
    self,
    num_segments: int,
    method: str = 'avg',
    p: float | None = None,
    eps: float | None = None,
    temperature: float | None = None,
    learnable_p: bool = False,
    p_shape: str = 'scalar',
    *,
    num_features: int | None = None,
  ):
    learnable_p = _checks.flag(learnable_p, 'learnable_p')
    _fields.check_segment_fields(num_segments, method, p, eps, temperature, learnable_p)
    _checks.choice(p_shape, 'p_shape', ('scalar', 'channel'))
    _base.check_optional_num_features(num_features)
    self.num_segments = freeze(int(num_segments))
    self.method = freeze(method)
    self.eps = eps
    self.temperature = temperature
    self.learnable_p = freeze(learnable_p)
    self.p_shape = freeze(p_shape)
    self.p = _p_field(method, p, learnable_p, p_shape, num_features, 'SegmentPool')

  def __call__(self, x: jnp.ndarray, segment_ids: jnp.ndarray) -> jnp.ndarray:
    p = _p_value(self, x, 'SegmentPool')
    return segments.segment_pool(
      x,
      segment_ids,
      self.num_segments,
      self.method,
      **_fields.global_kwargs(p, self.eps, self.temperature),
    )
