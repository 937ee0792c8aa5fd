"""Flax linen modules for anti-aliased pooling: thin wrappers over :mod:`jaxpool.blur`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _geometry, blur
from jaxpool._geometry import Padding
from jaxpool.linen._base import check_bool


def _check_blur_fields(module, n: int) -> None:
  """Validates the blur step's fields for ``n`` spatial dims."""
  if module.strides is not None:
    _geometry.int_tuple(module.strides, n, 'strides')
  blur._check_pad_mode(module.pad_mode)  # noqa: SLF001 (same package)
  check_bool(module.count_include_pad, 'count_include_pad')


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
    _check_blur_fields(self, len(_geometry.normalize_window(self.window)))
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return blur.blur_pool(x, self.window, self.strides, self.padding, pad_mode=self.pad_mode,
                          count_include_pad=self.count_include_pad)


class MaxBlurPool(nn.Module):
  """:func:`jaxpool.max_blur_pool` as a module: dense max pooling, then BlurPool."""
  window: Sequence[int] = (2, 2)
  blur: Sequence[int] = (3, 3)
  strides: int | Sequence[int] | None = 2
  padding: Padding = 'SAME'
  pad_mode: str = 'constant'
  count_include_pad: bool = False

  def __post_init__(self):
    window = _geometry.normalize_window(self.window)
    if len(_geometry.normalize_window(self.blur, 'blur')) != len(window):
      raise ValueError(
          f'blur must have one entry per spatial dim of window {window}; got {self.blur!r}')
    _check_blur_fields(self, len(window))
    super().__post_init__()

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return blur.max_blur_pool(x, self.window, self.blur, self.strides, self.padding,
                              pad_mode=self.pad_mode,
                              count_include_pad=self.count_include_pad)
