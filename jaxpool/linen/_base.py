"""Shared field validation for the Flax modules: impossible configurations fail at construction."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from jaxpool import _geometry
from jaxpool._geometry import GeometryArgs, Padding


def check_window_fields(module, *, unpool_padding: bool = False) -> None:
  """Validates the geometry fields eagerly, as :func:`jaxpool._geometry.check_fields`.

  ``window``, ``strides``, ``dilation`` and ``ceil_mode`` where the module has
  them (their defaults otherwise), and ``padding``: the pooling forms or, with
  ``unpool_padding``, :func:`jaxpool.max_unpool`'s non-negative ints.
  """
  _geometry.check_fields(
    module.window,
    getattr(module, 'strides', None),
    getattr(module, 'padding', 'VALID'),
    getattr(module, 'dilation', 1),
    getattr(module, 'ceil_mode', False),
    unpool_padding=unpool_padding,
  )


class Windowed(nn.Module):
  """The geometry fields every windowed module shares, validated at construction."""

  window: Sequence[int]
  strides: int | Sequence[int] | None = None
  padding: Padding = 'VALID'
  dilation: int | Sequence[int] = 1
  ceil_mode: bool = False

  def __post_init__(self):
    check_window_fields(self)
    super().__post_init__()

  @property
  def _geometry_args(self) -> GeometryArgs:
    return (self.window, self.strides, self.padding, self.dilation, self.ceil_mode)
