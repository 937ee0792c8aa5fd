"""Flax linen modules for adaptive, global, channel and pyramid pooling (jaxpool.adaptive)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _geometry, adaptive
from jaxpool.linen._base import check_bool


def _check_output_size(output_size) -> None:
  """Shape-independent checks of an ``output_size`` field (the rank is checked on call)."""
  if _geometry.is_int(output_size):
    entries = (output_size,)
  elif isinstance(output_size, Sequence) and not isinstance(output_size, str) and output_size:
    entries = tuple(output_size)
  else:
    raise TypeError(
        f'output_size must be an int or a non-empty sequence of positive ints or None, '
        f'one per spatial dim; got {output_size!r}')
  if not all(v is None or _geometry.is_int(v) for v in entries):
    raise TypeError(
        f'output_size entries must be positive ints or None (keep that dim); got {output_size!r}')
  if any(v is not None and v < 1 for v in entries):
    raise ValueError(f'output_size entries must be >= 1 (or None); got {output_size!r}')


class AdaptiveAvgPool(nn.Module):
  """:func:`jaxpool.adaptive_avg_pool` as a module, e.g. ``AdaptiveAvgPool((7, 7))``."""
  output_size: int | Sequence[int | None]

  def __post_init__(self):
    _check_output_size(self.output_size)
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.adaptive_avg_pool(x, self.output_size)


class AdaptiveMaxPool(nn.Module):
  """:func:`jaxpool.adaptive_max_pool` as a module; ``return_indices`` returns ``(y, indices)``."""
  output_size: int | Sequence[int | None]
  return_indices: bool = False

  def __post_init__(self):
    _check_output_size(self.output_size)
    check_bool(self.return_indices, 'return_indices')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray):
    return adaptive.adaptive_max_pool(x, self.output_size, return_indices=self.return_indices)


def _global_kwargs(module, p) -> dict:
  """The keyword arguments a :class:`GlobalPool` passes on (those that are set)."""
  kw = {'p': p, 'eps': module.eps, 'temperature': module.temperature}
  return {k: v for k, v in kw.items() if v is not None}


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
    # a plain function, not a module method: Flax wraps methods, and calling one before the
    # module has a scope (here, or when nn.tabulate clones the module) fails
    kw = _global_kwargs(self, self.p)
    adaptive._check_global_kw(self.method, kw)
    check_bool(self.keepdims, 'keepdims')
    check_bool(self.learnable_p, 'learnable_p')
    for name, value in kw.items():
      adaptive._positive(name, value, 1)
    if self.learnable_p and self.method not in ('lp', 'gem'):
      raise ValueError(
          f"learnable_p needs method 'lp' or 'gem'; got method {self.method!r}")
    if self.p_shape not in ('scalar', 'channel'):
      raise ValueError(f"p_shape must be 'scalar' or 'channel'; got {self.p_shape!r}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    p = self.p
    if self.learnable_p:
      init = (3.0 if self.method == 'gem' else 2.0) if p is None else float(p)
      shape = () if self.p_shape == 'scalar' else (x.shape[-1],)
      p = self.param('p', lambda _, s: jnp.full(s, init, jnp.float32), shape)
    return adaptive.global_pool(x, self.method, self.keepdims, **_global_kwargs(self, p))


class ChannelPool(nn.Module):
  """:func:`jaxpool.channel_pool` as a module: ``(..., C) -> (..., 1)``."""
  method: str = 'max'
  keepdims: bool = True

  def __post_init__(self):
    if self.method not in adaptive._CHANNEL_METHODS:
      raise ValueError(
          f'method must be one of {list(adaptive._CHANNEL_METHODS)}; got {self.method!r}')
    check_bool(self.keepdims, 'keepdims')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.channel_pool(x, self.method, self.keepdims)


class SpatialPyramidPool(nn.Module):
  """:func:`jaxpool.spatial_pyramid_pool` as a module: ``(N, *spatial, C) -> (N, C * bins)``."""
  levels: Sequence[int | Sequence[int]] = (1, 2, 4)
  method: str = 'max'

  def __post_init__(self):
    if self.method not in ('max', 'avg'):
      raise ValueError(f"method must be one of ['avg', 'max']; got {self.method!r}")
    if isinstance(self.levels, str) or not isinstance(self.levels, Sequence) or not self.levels:
      raise TypeError(f'levels must be a non-empty sequence of positive ints; got {self.levels!r}')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return adaptive.spatial_pyramid_pool(x, self.levels, self.method)
