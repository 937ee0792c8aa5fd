"""Flax linen modules for anti-aliased pooling: thin wrappers over :mod:`jaxpool.blur`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _checks, _fields, blur
from jaxpool._geometry import Padding


class BlurPool(nn.Module):
  """:func:`jaxpool.blur_pool` as a module (no parameters: the binomial filter is fixed).

  Example: ``BlurPool()`` is the paper's 3x3 anti-aliased stride-2 downsampling;
  ``nn.Sequential([nn.Conv(c, (3, 3)), nn.relu, BlurPool()])`` replaces a
  strided conv, as the paper recommends.
  """

  window: Sequence[int] = (3, 3)
  strides: int | Sequence[int] | None = 2
  padding: Padding = 'SAME'
  pad_mode: str = 'constant'
  count_include_pad: bool = False

  def __post_init__(self):
    _fields.check_blur_fields(self.window, self.strides, self.pad_mode)
    _checks.flag(self.count_include_pad, 'count_include_pad')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return blur.blur_pool(
      x,
      self.window,
      self.strides,
      self.padding,
      pad_mode=self.pad_mode,
      count_include_pad=self.count_include_pad,
      mask=mask,
      return_mask=return_mask,
    )


class MaxBlurPool(nn.Module):
  """:func:`jaxpool.max_blur_pool` as a module: dense max pooling, then BlurPool."""

  window: Sequence[int] = (2, 2)
  blur: Sequence[int] = (3, 3)
  strides: int | Sequence[int] | None = 2
  padding: Padding = 'SAME'
  pad_mode: str = 'constant'
  count_include_pad: bool = False

  def __post_init__(self):
    _fields.check_blur_fields(self.window, self.strides, self.pad_mode, self.blur)
    _checks.flag(self.count_include_pad, 'count_include_pad')
    super().__post_init__()

  def __call__(self, x: jnp.ndarray, *, mask: jnp.ndarray | None = None, return_mask: bool = False):
    return blur.max_blur_pool(
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
