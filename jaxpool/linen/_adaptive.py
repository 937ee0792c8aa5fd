"""Flax linen modules for adaptive, global, channel and pyramid pooling (jaxpool.adaptive)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _checks, _fields, adaptive, segments


class AdaptiveAvgPool(nn.Module):
  """:func:`jaxpool.adaptive_avg_pool` as a module, e.g. ``AdaptiveAvgPool((7, 7))``."""

  output_size: int | Sequence[int | None]

  def __post_init__(self):
    _fields.check_output_size(self.output_size)
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return adaptive.adaptive_avg_pool(x, self.output_size, mask=mask, return_mask=return_mask)


class AdaptiveMaxPool(nn.Module):
  """:func:`jaxpool.adaptive_max_pool` as a module; ``return_indices`` returns ``(y, indices)``."""

  output_size: int | Sequence[int | None]
  return_indices: bool = False

  def __post_init__(self):
    _fields.check_output_size(self.output_size)
    _checks.flag(self.return_indices, 'return_indices')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return adaptive.adaptive_max_pool(
      x, self.output_size, return_indices=self.return_indices, mask=mask, return_mask=return_mask
    )


def _p_argument(module, x: jnp.ndarray) -> float | jnp.ndarray | None:
  """A GlobalPool or SegmentPool's ``p``: the field, or with ``learnable_p`` its parameter
  ``'p'`` (initialised to the field, else the method's default; scalar or per channel)."""
  if not module.learnable_p:
    return module.p
  init = _fields.initial_p(module.method, module.p)
  shape = () if module.p_shape == 'scalar' else (x.shape[-1],)
  return module.param('p', lambda _, s: jnp.full(s, init, jnp.float32), shape)


class GlobalPool(nn.Module):
  """:func:`jaxpool.global_pool` as a module: ``(N, *spatial, C) -> (N, C)``.

  ``p`` (``'lp'``, ``'gem'``; default 2 and 3), ``eps`` (``'gem'``) and
  ``temperature`` (``'soft'``) are passed on when set. With
  ``learnable_p=True`` (``'lp'``/``'gem'``) the module owns a parameter ``p``
  initialised to the field's value — GeM's trainable ``p`` (Radenović et al.);
  ``p_shape`` ``'scalar'`` or ``'channel'`` (one per channel).
  """

  method: str = 'avg'
  keepdims: bool = False
  p: float | None = None
  eps: float | None = None
  temperature: float | None = None
  learnable_p: bool = False
  p_shape: str = 'scalar'

  def __post_init__(self):
    _checks.flag(self.keepdims, 'keepdims')
    learnable_p = _checks.flag(self.learnable_p, 'learnable_p')
    _fields.check_global_fields(self.method, self.p, self.eps, self.temperature, learnable_p)
    _checks.choice(self.p_shape, 'p_shape', ('scalar', 'channel'))
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    p = _p_argument(self, x)
    return adaptive.global_pool(
      x,
      self.method,
      self.keepdims,
      mask=mask,
      **_fields.global_kwargs(p, self.eps, self.temperature),
    )


class ChannelPool(nn.Module):
  """:func:`jaxpool.channel_pool` as a module: ``(..., C) -> (..., 1)``."""

  method: str = 'max'
  keepdims: bool = True

  def __post_init__(self):
    _checks.choice(self.method, 'method', adaptive.CHANNEL_METHODS)
    _checks.flag(self.keepdims, 'keepdims')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.channel_pool(x, self.method, self.keepdims)


class SpatialPyramidPool(nn.Module):
  """:func:`jaxpool.spatial_pyramid_pool` as a module: ``(N, *spatial, C) -> (N, C * bins)``."""

  levels: Sequence[int | Sequence[int]] = (1, 2, 4)
  method: str = 'max'

  def __post_init__(self):
    _fields.check_pyramid_fields(self.levels, self.method)
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None):
    return adaptive.spatial_pyramid_pool(x, self.levels, self.method, mask=mask)


class SegmentPool(nn.Module):
  """:func:`jaxpool.segment_pool` as a module: ``SegmentPool(num_segments)(x, segment_ids)``,
  ``(N, *spatial, C) -> (N, num_segments, C)``.

  Fields as :class:`GlobalPool` (``'sum'`` added to the methods); ``learnable_p=True``
  (``'lp'``/``'gem'``) makes ``p`` a parameter, ``p_shape`` ``'scalar'`` or ``'channel'``.
  """

  num_segments: int
  method: str = 'avg'
  p: float | None = None
  eps: float | None = None
  temperature: float | None = None
  learnable_p: bool = False
  p_shape: str = 'scalar'

  def __post_init__(self):
    learnable_p = _checks.flag(self.learnable_p, 'learnable_p')
    _fields.check_segment_fields(
      self.num_segments, self.method, self.p, self.eps, self.temperature, learnable_p
    )
    _checks.choice(self.p_shape, 'p_shape', ('scalar', 'channel'))
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, segment_ids: jnp.ndarray) -> jnp.ndarray:
    p = _p_argument(self, x)
    return segments.segment_pool(
      x,
      segment_ids,
      self.num_segments,
      self.method,
      **_fields.global_kwargs(p, self.eps, self.temperature),
    )
