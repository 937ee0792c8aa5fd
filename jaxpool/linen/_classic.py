"""Flax linen modules for classic pooling: thin wrappers over :mod:`jaxpool.classic`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _checks, _fields, classic
from jaxpool.linen._base import Windowed, check_window_fields


class MaxPool(Windowed):
  """:func:`jaxpool.max_pool` as a module; ``return_indices`` returns ``(y, indices)``."""

  return_indices: bool = False

  def __post_init__(self):
    _checks.flag(self.return_indices, 'return_indices')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return classic.max_pool(
      x,
      *self._geometry_args,
      return_indices=self.return_indices,
      mask=mask,
      return_mask=return_mask,
    )


class MinPool(Windowed):
  """:func:`jaxpool.min_pool` as a module."""

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return classic.min_pool(x, *self._geometry_args, mask=mask, return_mask=return_mask)


class AvgPool(Windowed):
  """:func:`jaxpool.avg_pool` as a module."""

  count_include_pad: bool = True
  divisor_override: int | None = None

  def __post_init__(self):
    _checks.flag(self.count_include_pad, 'count_include_pad')
    _fields.check_divisor_override(self.divisor_override)
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return classic.avg_pool(
      x,
      *self._geometry_args,
      count_include_pad=self.count_include_pad,
      divisor_override=self.divisor_override,
      mask=mask,
      return_mask=return_mask,
    )


class LPPool(Windowed):
  """:func:`jaxpool.lp_pool` as a module.

  ``p`` is fixed, or with ``learnable_p=True`` a parameter ``'p'`` initialised
  to the field's value (stored directly, so its gradient is ``dy/dp``).
  """

  p: float = 2.0
  learnable_p: bool = False

  def __post_init__(self):
    _fields.check_p(self.p)
    _checks.flag(self.learnable_p, 'learnable_p')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    p = self.param('p', lambda _: jnp.asarray(self.p, jnp.float32)) if self.learnable_p else self.p
    return classic.lp_pool(x, p, *self._geometry_args, mask=mask, return_mask=return_mask)


class MaxUnpool(nn.Module):
  """:func:`jaxpool.max_unpool` as a module: ``MaxUnpool(window)(y, indices)``."""

  window: Sequence[int]
  strides: int | Sequence[int] | None = None
  padding: int | Sequence[int] = 0

  def __post_init__(self):
    check_window_fields(self, unpool_padding=True)
    super().__post_init__()

  def __call__(
    self, y: jnp.ndarray, indices: jnp.ndarray, output_size: Sequence[int] | None = None
  ) -> jnp.ndarray:
    return classic.max_unpool(y, indices, self.window, self.strides, self.padding, output_size)
