"""Flax NNX modules for anti-aliased pooling: thin wrappers over :mod:`jaxpool.blur`."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields
from jaxpool import blur as blur_ops  # MaxBlurPool has an argument named blur
from jaxpool._geometry import Padding
from jaxpool.nnx._base import freeze


class BlurPool(nnx.Module):
  """:func:`jaxpool.blur_pool` as an NNX module (no parameters: the binomial filter is fixed).

  ``BlurPool()`` is the paper's 3x3 anti-aliased stride-2 downsampling.
  """

  def __init__(
    self,
    window: Sequence[int] = (3, 3),
    strides: int | Sequence[int] | None = 2,
    padding: Padding = 'SAME',
    pad_mode: str = 'constant',
    count_include_pad: bool = False,
  ):
    _fields.check_blur_fields(window, strides, pad_mode)
    _checks.flag(count_include_pad, 'count_include_pad')
    self.window = freeze(window)
    self.strides = freeze(strides)
    self.padding = freeze(padding)
    self.pad_mode = freeze(pad_mode)
    self.count_include_pad = freeze(count_include_pad)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return blur_ops.blur_pool(
      x,
      self.window,
      self.strides,
      self.padding,
      pad_mode=self.pad_mode,
      count_include_pad=self.count_include_pad,
      mask=mask,
      return_mask=return_mask,
    )


class MaxBlurPool(nnx.Module):
  """:func:`jaxpool.max_blur_pool` as an NNX module: dense max pooling, then BlurPool."""

  def __init__(
    self,
    window: Sequence[int] = (2, 2),
    blur: Sequence[int] = (3, 3),
    strides: int | Sequence[int] | None = 2,
    padding: Padding = 'SAME',
    pad_mode: str = 'constant',
    count_include_pad: bool = False,
  ):
    _fields.check_blur_fields(window, strides, pad_mode, blur)
    _checks.flag(count_include_pad, 'count_include_pad')
    self.window = freeze(window)
    self.blur = freeze(blur)
    self.strides = freeze(strides)
    self.padding = freeze(padding)
    self.pad_mode = freeze(pad_mode)
    self.count_include_pad = freeze(count_include_pad)

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return blur_ops.max_blur_pool(
      x,
      self.window,
      self.blur,
      self.strides,
      self.padding,
      pad_mode=self.pad_mode,
      count_include_pad=self.count_include_pad,
      mask=mask,
      return_mask=return_mask,
    )
