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
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
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


def optional_flag(value: Any, name: str) -> bool | None:
  """None or a bool (:func:`flag`): a mode that may be left to another source (a module's
  ``deterministic``, given to the constructor or to the call)."""
  return None if value is None else flag(value, name)


def positive(value: Any, name: str, *, finite: bool = True) -> float:
  """A positive real number (``inf`` allowed unless ``finite``) -> ``float``."""
  value = static(value, name)
  what = 'a positive finite number' if finite else 'a positive number (inf allowed)'
  if not is_number(value):
    raise TypeError(f'{name} must be {what}; got {value!r}')
  if not (value > 0 and (math.isfinite(value) or not finite)):
    raise ValueError(f'{name} must be {what}; got {value!r}')
  return float(value)


def number_or_array(
  value: Any,
  name: str,
  number: Callable[[Any, str], float],
  what: str,
  shapes: Sequence[tuple[int, ...]] | None = None,
) -> float | jax.Array:
  """An argument that is either a static number or a (learnable) float array.

  Python and NumPy reals take the static path: ``number(value, name)`` checks
  them and returns a ``float``. Anything else is the traced path: a float JAX or
  NumPy array (its values are not checked; under ``jit`` they cannot be), of one
  of ``shapes`` if given. The one place that decides between the two paths, so a
  NumPy scalar never takes the traced one. ``what`` describes the allowed values
  for the errors.
  """
  if is_bool(value):
    raise TypeError(f'{name} must be {what}; got the bool {value!r}')
  if is_number(value):
    return number(value, name)
  try:
    arr = jnp.asarray(value)
  except (TypeError, ValueError):
    raise TypeError(f'{name} must be {what}; got {type(value).__name__} {value!r:.60}') from None
  if not jnp.issubdtype(arr.dtype, jnp.floating):
    raise TypeError(f'{name} must be {what}; got dtype {arr.dtype}')
  if shapes is not None and arr.shape not in shapes:
    allowed = ' or '.join(str(tuple(s)) for s in shapes)
    raise ValueError(f'{name} must be {what}: an array of shape {allowed}; got shape {arr.shape}')
  return arr


def positive_or_array(
  value: Any, name: str, *, finite: bool = True, shapes: Sequence[tuple[int, ...]] | None = None
) -> float | jax.Array:
  """A positive number (static, ``inf`` allowed unless ``finite``) or a float array (traced).

  :func:`number_or_array` with :func:`positive`: ``p``, ``temperature``, ``eps``
  of the functions and the modules' fields.
  """
  what = 'a positive number or a float array'
  return number_or_array(value, name, lambda v, n: positive(v, n, finite=finite), what, shapes)


def probability_or_array(value: Any, name: str) -> float | jax.Array:
  """A number in [0, 1] (static) or a float scalar array (traced): :func:`number_or_array`."""

  def number(v, n):
    if not 0 <= v <= 1:
      raise ValueError(f'{n} must be a probability in [0, 1]; got {v!r}')
    return float(v)

  return number_or_array(value, name, number, 'a number in [0, 1] or a float scalar array', [()])


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
