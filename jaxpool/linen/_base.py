"""Shared field validation for the Flax modules: impossible configurations fail at construction."""

from __future__ import annotations

from jaxpool import _geometry


def check_window_fields(module) -> None:
  """Validates ``window``/``strides``/``dilation`` fields eagerly (shape-independent checks)."""
  window = _geometry.normalize_window(module.window)
  n = len(window)
  if getattr(module, 'strides', None) is not None:
    _geometry.int_tuple(module.strides, n, 'strides')
  if hasattr(module, 'dilation'):
    _geometry.int_tuple(module.dilation, n, 'dilation')
