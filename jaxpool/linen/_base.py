"""Shared field validation for the Flax modules: impossible configurations fail at construction."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import numpy as np

from jaxpool import _geometry
from jaxpool._geometry import Padding


def check_window_fields(module, *, unpool_padding: bool = False) -> None:
  """Validates the geometry fields eagerly (shape-independent checks).

  ``window``, ``strides``, ``dilation`` and ``ceil_mode`` where the module has
  them, and ``padding``: the pooling forms (``'VALID'``, ``'SAME'``, ints,
  ``(low, high)`` pairs, at most half the effective window) or, with
  ``unpool_padding``, :func:`jaxpool.max_unpool`'s non-negative ints.
  """
  window = _geometry.normalize_window(module.window)
  n = len(window)
  strides = window
  if getattr(module, 'strides', None) is not None:
    strides = _geometry.int_tuple(module.strides, n, 'strides')
  dilation = (1,) * n
  if hasattr(module, 'dilation'):
    dilation = _geometry.int_tuple(module.dilation, n, 'dilation')
  if hasattr(module, 'ceil_mode') and not isinstance(module.ceil_mode, (bool, np.bool_)):
    raise TypeError(f'ceil_mode must be a bool; got {module.ceil_mode!r}')
  if unpool_padding:
    _geometry.int_tuple(module.padding, n, 'padding', minimum=0)
  elif hasattr(module, 'padding'):
    _geometry.normalize_padding(module.padding, (1,) * n, window, strides, dilation)


def check_bool(value, name: str) -> None:
  """A flag field must be a bool (``1`` or ``'yes'`` is a mistake, not a truth value)."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f'{name} must be a bool; got {value!r}')


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
  def _geometry_args(self):
    return (self.window, self.strides, self.padding, self.dilation, self.ceil_mode)
