"""Runtime masks: which positions of an input are data.

A mask is a boolean array, a runtime value like ``x`` (traced, vmapped,
sharded: one compile serves every mask). A masked-out position is treated as
padding is: it never contributes. This module holds what every op does with
one: the argument check, the window counts and the pooled mask (an output is
valid where its window holds at least one unmasked position), and the
reshaping of the pooled mask back to the form the caller gave.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _windows
from jaxpool._geometry import Geometry


def check(mask: Any, x: jnp.ndarray, op: str) -> tuple[jnp.ndarray, bool] | None:
  """``mask`` as a bool array of ``x``'s rank, and whether the caller gave it without channels.

  ``mask`` must be boolean, of shape ``(*batch, *spatial)`` (the channel axis
  is added: one mask for every channel) or broadcastable to ``x``'s shape with
  ``x``'s rank. None gives None: the unmasked program.
  """
  if mask is None:
    return None
  if isinstance(mask, (bool, np.bool_)) or not hasattr(mask, 'dtype'):
    raise TypeError(
      f'{op}: mask must be a boolean array of shape {x.shape[:-1]} or broadcastable to '
      f"x's shape {x.shape}; got {type(mask).__name__}"
    )
  mask = jnp.asarray(mask)
  if mask.dtype != jnp.bool_:
    raise TypeError(
      f'{op}: mask must be a boolean array (e.g. lengths[:, None] > jnp.arange(L)); '
      f'got dtype {mask.dtype}'
    )
  no_channels = mask.ndim == x.ndim - 1
  if no_channels:
    mask = mask[..., None]
  try:
    ok = mask.ndim == x.ndim and jnp.broadcast_shapes(mask.shape, x.shape) == x.shape
  except ValueError:
    ok = False
  if not ok:
    raise ValueError(
      f"{op}: mask must have shape {x.shape[:-1]} (x's shape without channels) or be "
      f"broadcastable to x's shape {x.shape} with the same rank; got shape "
      f'{mask.shape[:-1] if no_channels else mask.shape}'
    )
  return mask, no_channels


def counts(valid: jnp.ndarray, geom: Geometry, dtype) -> jnp.ndarray:
  """The number of unmasked positions in each window, in ``dtype`` (exact up to ``2**24`` in f32)."""
  return _windows.reduce_window(valid.astype(dtype), 0, lax.add, geom)


def pooled(valid: jnp.ndarray, geom: Geometry) -> jnp.ndarray:
  """Per window, whether it holds an unmasked position: the output's mask."""
  return _windows.reduce_window(valid, False, lax.max, geom)


def returned(pooled_mask: jnp.ndarray, no_channels: bool) -> jnp.ndarray:
  """The pooled mask in the form the mask was given (without channels: the channel axis dropped)."""
  return pooled_mask[..., 0] if no_channels else pooled_mask


def zero_where_empty(y: jnp.ndarray, any_valid: jnp.ndarray) -> jnp.ndarray:
  """``y`` with 0 (and a zero derivative) at outputs whose window holds no unmasked position."""
  return jnp.where(any_valid, y, jnp.zeros((), y.dtype))


def data(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """``x`` with 0 at masked positions: whatever they hold (inf, NaN) never reaches a result,
  and their derivative is exactly 0."""
  return jnp.where(valid, x, jnp.zeros((), x.dtype))


def data_or_all(x: jnp.ndarray, mask: Any, op: str) -> jnp.ndarray:
  """``x`` with 0 at the positions ``mask`` hides (checked as :func:`check`); ``x`` for None."""
  checked = check(mask, x, op)
  return x if checked is None else data(x, checked[0])


def fill(x: jnp.ndarray, valid: jnp.ndarray, value) -> jnp.ndarray:
  """``x`` with ``value`` at masked positions (the identity of a reduction: never picked)."""
  return jnp.where(valid, x, jnp.asarray(value, x.dtype))


def prepare(mask: Any, x: jnp.ndarray, op: str, return_mask: Any) -> tuple[Any, bool, bool]:
  """``(valid, no_channels, return_mask)`` for an op's ``mask`` and ``return_mask`` arguments.

  ``valid`` is None without a mask (the unmasked program); ``return_mask=True``
  needs one.
  """
  return_mask = _checks.flag(return_mask, 'return_mask')
  checked = check(mask, x, op)
  if checked is None:
    if return_mask:
      raise ValueError(f'{op}: return_mask=True needs a mask; got mask=None')
    return None, False, False
  return checked[0], checked[1], return_mask


def with_mask(out, valid, no_channels: bool, geom: Geometry, return_mask: bool):
  """``out`` (an array or a tuple), with the pooled mask appended when asked for."""
  if not return_mask:
    return out
  out = out if isinstance(out, tuple) else (out,)
  return (*out, returned(pooled(valid, geom), no_channels))


def refuse(mask: Any, op: str, why: str) -> None:
  """A ``TypeError`` for an op with no sound masked meaning, saying why; None passes."""
  if mask is not None:
    raise TypeError(f'{op} takes no mask: {why}; got mask={type(mask).__name__}')
