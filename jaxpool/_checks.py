"""Scalar argument checks: one definition each, used by the functions and both module families.

A function and its linen/NNX modules validate a scalar argument with the same
call here, under the user's own argument name, so they accept exactly the same
values and refuse the rest with the same error. Static scalars (flags, choices,
sizes, ``eps``) accept Python and NumPy scalars and concrete 0-d JAX arrays,
converted to Python values; a traced value cannot choose the computation, so
it gets a ``TypeError`` that says the argument is static.
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def static(value: Any, name: str) -> Any:
  """A concrete 0-d JAX array -> its Python value (a traced one: ``TypeError``); others as is.

  Every check here starts with it; static scalars with rules of their own (e.g. a non-zero
  int) call it before their check.
  """
  if isinstance(value, jax.core.Tracer):
    raise TypeError(
      f'{name} is static (it selects the computation): pass a Python or NumPy value, '
      f'not a traced array; got {value!r}'
    )
  if isinstance(value, jax.Array) and value.ndim == 0:
    return value.item()
  return value


def is_bool(value: Any) -> bool:
  """True for Python and NumPy bools."""
  return isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
  """True for Python and NumPy reals that are not bools."""
  return isinstance(value, (int, float, np.integer, np.floating)) and not is_bool(value)


def is_int(value: Any) -> bool:
  """True for Python and NumPy integers that are not bools."""
  return isinstance(value, (int, np.integer)) and not is_bool(value)


def flag(value: Any, name: str) -> bool:
  """A bool (``1`` or ``'yes'`` is a mistake, not a truth value) -> ``bool``."""
  value = static(value, name)
  if not is_bool(value):
    raise TypeError(f'{name} must be a bool; got {value!r}')
  return bool(value)


def positive(value: Any, name: str, *, finite: bool = True) -> float:
  """A positive real number (``inf`` allowed unless ``finite``) -> ``float``."""
  value = static(value, name)
  what = 'a positive finite number' if finite else 'a positive number (inf allowed)'
  if not is_number(value):
    raise TypeError(f'{name} must be {what}; got {value!r}')
  if not (value > 0 and (math.isfinite(value) or not finite)):
    raise ValueError(f'{name} must be {what}; got {value!r}')
  return float(value)


def positive_int(value: Any, name: str) -> int:
  """A positive integer -> ``int``."""
  value = static(value, name)
  if not is_int(value):
    raise TypeError(f'{name} must be a positive int; got {value!r}')
  if value < 1:
    raise ValueError(f'{name} must be a positive int; got {value!r}')
  return int(value)


def choice(value: Any, name: str, allowed: Sequence[str]) -> str:
  """One of the strings ``allowed``."""
  if not isinstance(value, str) or value not in allowed:
    raise ValueError(f'{name} must be one of {", ".join(map(repr, allowed))}; got {value!r}')
  return value


def renamed(new_value: Any, old_value: Any, new: str, old: str, default: Any, owner: str) -> Any:
  """The value of an argument renamed from ``old`` to ``new`` (the old spelling warns).

  ``default`` is the new argument's default, so giving both spellings is an error
  only when the new one was given too.
  """
  if old_value is None:
    return new_value
  if new_value is not default:
    raise TypeError(f'{owner} got both {new}={new_value!r} and its old name {old}={old_value!r}')
  # attributed to the user's line: the first frame outside jaxpool, Flax and JAX (a module's
  # __call__ is reached through Flax's and JAX's wrappers, a field through the dataclass
  # __init__)
  frame: types.FrameType | None = sys._getframe(1)
  level = 2
  while frame is not None and frame.f_globals.get('__name__', '').partition('.')[0] in (
    'jaxpool',
    'flax',
    'jax',
  ):
    frame, level = frame.f_back, level + 1
  warnings.warn(f'{owner}: {old}= is deprecated, use {new}=', DeprecationWarning, stacklevel=level)
  return old_value
