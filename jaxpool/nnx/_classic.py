"""Flax NNX modules for classic pooling: thin wrappers over :mod:`jaxpool.classic`."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxpool import classic
from jaxpool import linen as _linen
from jaxpool._geometry import Padding
from jaxpool.nnx._base import Windowed as _Windowed
from jaxpool.nnx._base import configure


class MaxPool(_Windowed):
  """:func:`jaxpool.max_pool` as an NNX module; ``return_indices`` returns ``(y, indices)``.

  Example:
    >>> pool = jaxpool.nnx.MaxPool((2, 2))
    >>> pool(jnp.arange(16.).reshape(1, 4, 4, 1))[0, ..., 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, return_indices: bool = False):
    configure(self, _linen.MaxPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, return_indices=return_indices))

  def __call__(self, x: jnp.ndarray):
    return classic.max_pool(x, *self._geometry_args, return_indices=self.return_indices)


class MinPool(_Windowed):
  """:func:`jaxpool.min_pool` as an NNX module."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False):
    configure(self, _linen.MinPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return classic.min_pool(x, *self._geometry_args)


class AvgPool(_Windowed):
  """:func:`jaxpool.avg_pool` as an NNX module."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None):
    configure(self, _linen.AvgPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, count_include_pad=count_include_pad,
        divisor_override=divisor_override))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return classic.avg_pool(x, *self._geometry_args, count_include_pad=self.count_include_pad,
                            divisor_override=self.divisor_override)


class LPPool(_Windowed):
  """:func:`jaxpool.lp_pool` as an NNX module.

  ``p`` is fixed, or with ``learnable_p=True`` an ``nnx.Param`` ``p``
  initialised to the field's value (stored directly, so its gradient is
  ``dy/dp``), as :class:`jaxpool.linen.LPPool`.
  """

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: Padding = 'VALID', dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, p: float = 2.0, learnable_p: bool = False):
    configure(self, _linen.LPPool, dict(
        window=window, strides=strides, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode, p=p, learnable_p=learnable_p), skip=('p',) if learnable_p else ())
    if learnable_p:
      self.p = nnx.Param(jnp.asarray(p, jnp.float32))

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    p = self.p[...] if self.learnable_p else self.p
    return classic.lp_pool(x, p, *self._geometry_args)


class MaxUnpool(nnx.Module):
  """:func:`jaxpool.max_unpool` as an NNX module: ``MaxUnpool(window)(y, indices)``."""

  def __init__(self, window: Sequence[int], strides: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0):
    configure(self, _linen.MaxUnpool, dict(window=window, strides=strides, padding=padding))

  def __call__(self, y: jnp.ndarray, indices: jnp.ndarray,
               output_size: Sequence[int] | None = None) -> jnp.ndarray:
    return classic.max_unpool(y, indices, self.window, self.strides, self.padding, output_size)
