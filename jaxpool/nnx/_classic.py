"""Flax NNX modules for classic pooling: thin wrappers over :mod:`jaxpool.classic`."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, _geometry, classic
from jaxpool._geometry import Padding
from jaxpool.nnx._base import Windowed, freeze


class MaxPool(Windowed):
  """:func:`jaxpool.max_pool` as an NNX module; ``return_indices`` returns ``(y, indices)``.

  Example:
    >>> pool = jaxpool.nnx.MaxPool((2, 2))
    >>> pool(jnp.arange(16.).reshape(1, 4, 4, 1))[0, ..., 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
  ):
    _checks.flag(return_indices, 'return_indices')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.return_indices = freeze(return_indices)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return classic.max_pool(
      x,
      *self._geometry_args,
      return_indices=self.return_indices,
      mask=mask,
      return_mask=return_mask,
    )


class MinPool(Windowed):
  """:func:`jaxpool.min_pool` as an NNX module."""

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
  ):
    super().__init__(window, strides, padding, dilation, ceil_mode)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return classic.min_pool(x, *self._geometry_args, mask=mask, return_mask=return_mask)


class AvgPool(Windowed):
  """:func:`jaxpool.avg_pool` as an NNX module."""

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
  ):
    _checks.flag(count_include_pad, 'count_include_pad')
    _fields.check_divisor_override(divisor_override)
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.count_include_pad = freeze(count_include_pad)
    self.divisor_override = freeze(divisor_override)

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
  """:func:`jaxpool.lp_pool` as an NNX module.

  ``p`` is fixed, or with ``learnable_p=True`` an ``nnx.Param`` ``p``
  initialised to the field's value (stored directly, so its gradient is
  ``dy/dp``), as in the linen module of the same name.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    p: float = 2.0,
    learnable_p: bool = False,
  ):
    _fields.check_p(p)
    _checks.flag(learnable_p, 'learnable_p')
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.learnable_p = freeze(learnable_p)
    # p also takes an array (the traced path): stored as given
    self.p: nnx.Param | float = nnx.Param(jnp.asarray(p, jnp.float32)) if learnable_p else p

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    p = self.p[...] if isinstance(self.p, nnx.Param) else self.p
    return classic.lp_pool(x, p, *self._geometry_args, mask=mask, return_mask=return_mask)


class MaxUnpool(nnx.Module):
  """:func:`jaxpool.max_unpool` as an NNX module: ``MaxUnpool(window)(y, indices)``."""

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
  ):
    _geometry.check_fields(window, strides, padding, unpool_padding=True)
    self.window = freeze(window)
    self.strides = freeze(strides)
    self.padding = freeze(padding)

  def __call__(
    self, y: jnp.ndarray, indices: jnp.ndarray, output_size: Sequence[int] | None = None
  ) -> jnp.ndarray:
    return classic.max_unpool(y, indices, self.window, self.strides, self.padding, output_size)
