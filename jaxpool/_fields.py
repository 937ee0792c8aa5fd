"""Checks and initial values that an op function and its linen and NNX modules share.

The module families validate their fields at construction with the same code the functions
use at call time (so both accept the same values and raise the same errors), and start their
parameters where the functions' defaults are. This module holds those pieces, so that each
public op module's namespace is its ``__all__``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxpool import _checks, _geometry

PAD_MODES = ('constant', 'reflect', 'edge')
SEGMENT_METHODS = ('sum', 'avg', 'max', 'soft', 'lp', 'gem', 'avgmax', 'catavgmax')
_GLOBAL_KW = {
  'avg': (),
  'max': (),
  'soft': ('temperature',),
  'lp': ('p',),
  'gem': ('p', 'eps'),
  'avgmax': (),
  'catavgmax': (),
}


# --- classic -------------------------------------------------------------------------------------


def check_divisor_override(divisor_override: Any) -> int | None:
  """``avg_pool``'s ``divisor_override`` (and ``AvgPool``'s field): a non-zero int or None."""
  value = _checks.static(divisor_override, 'divisor_override')
  if value is not None and (not _checks.is_int(value) or value == 0):
    raise ValueError(f'divisor_override must be a non-zero int or None; got {divisor_override!r}')
  return None if value is None else int(value)


def check_p(p: Any) -> float | jnp.ndarray:
  """``lp_pool``'s ``p`` (and ``LPPool``'s field).

  A positive number (``inf`` allowed) -> ``float``, the static path; a float
  scalar array -> that array, the traced (learnable) path, its value unchecked.
  """
  return _checks.positive_or_array(p, 'p', finite=False, shapes=[()])


# --- weighted ------------------------------------------------------------------------------------


def check_temperature(temperature: Any) -> float | jnp.ndarray:
  """``soft_pool``'s ``temperature`` (and ``SoftPool``'s field).

  A positive finite number -> ``float``, the static path; a float array -> that
  array, the traced (learnable) path, its shape (``()`` or ``(C,)``) checked
  against the input by :func:`soft_pool`.
  """
  return _checks.positive_or_array(temperature, 'temperature')


def initial_log_temperature(temperature: Any) -> jnp.ndarray:
  """The starting value of a learnable SoftPool temperature, stored as its logarithm (f32).

  ``log(temperature)`` for a number or a float array (``()`` or ``(C,)``); the
  modules use ``exp`` of the parameter, which keeps the temperature positive.
  """
  t = check_temperature(temperature)
  log_t = math.log(t) if isinstance(t, float) else jnp.log(t.astype(jnp.float32))
  return jnp.asarray(log_t, jnp.float32)


# --- adaptive ------------------------------------------------------------------------------------


def check_output_size(output_size: Any) -> int | tuple[int | None, ...]:
  """An ``output_size`` checked without an input (its rank is checked against the input's).

  An int or a non-empty sequence whose entries are positive ints or None
  (keep that dim): what the adaptive modules check at construction, and the
  functions first. Returns the int or the tuple of entries.
  """
  value = _geometry.static_values(output_size, 'output_size')
  if _geometry.is_int(value):
    entries = (int(value),)
  elif isinstance(value, Sequence) and not isinstance(value, str) and value:
    entries = tuple(value)
  else:
    raise TypeError(
      f'output_size must be an int or a non-empty sequence of positive ints or None, '
      f'one per spatial dim; got {output_size!r}'
    )
  if not all(v is None or _geometry.is_int(v) for v in entries):
    raise TypeError(
      f'output_size entries must be positive ints or None (keep that dim); got {output_size!r}'
    )
  if any(v is not None and v < 1 for v in entries):
    raise ValueError(f'output_size entries must be >= 1 (or None); got {output_size!r}')
  return (
    entries[0] if _geometry.is_int(value) else tuple(None if v is None else int(v) for v in entries)
  )


def positive(name: str, value, channels: int | None = None):
  """A positive number (``float``: the static path) or a float array of shape ``()`` or
  ``(C,)`` (traced). Without ``channels`` (a module's field, before any input) an array's
  shape is left to the call, whose error names the channel count."""
  shapes = None if channels is None else [(), (channels,)]
  return _checks.positive_or_array(value, name, finite=False, shapes=shapes)


def check_global_kw(method: str, kw: dict) -> None:
  _checks.choice(method, 'method', sorted(_GLOBAL_KW))
  allowed = _GLOBAL_KW[method]
  extra = sorted(set(kw) - set(allowed))
  if extra:
    raise ValueError(
      f'global_pool method {method!r} takes keyword arguments {list(allowed)}; '
      f'got unexpected {extra}'
    )


def global_kwargs(p: Any = None, eps: Any = None, temperature: Any = None) -> dict:
  """The keyword arguments a GlobalPool module passes to :func:`global_pool`: those set."""
  kw = {'p': p, 'eps': eps, 'temperature': temperature}
  return {k: v for k, v in kw.items() if v is not None}


def check_global_fields(method: Any, p: Any, eps: Any, temperature: Any, learnable_p: bool) -> None:
  """A GlobalPool module's fields checked without an input.

  ``method`` and the keyword arguments it takes (those set), each a positive
  number, and ``learnable_p`` only for the methods with a ``p``.
  """
  kw = global_kwargs(p, eps, temperature)
  check_global_kw(method, kw)
  for name, value in kw.items():
    positive(name, value)
  if learnable_p and method not in ('lp', 'gem'):
    raise ValueError(f"learnable_p needs method 'lp' or 'gem'; got method {method!r}")


def initial_p(method: str, p: Any) -> float | jnp.ndarray:
  """The starting value of a learnable ``p``: the field (a number or a float array of shape
  ``()`` or ``(C,)``, as :func:`global_pool` takes), else :func:`global_pool`'s default."""
  if p is None:
    return 3.0 if method == 'gem' else 2.0
  return float(p) if _checks.is_number(p) else jnp.asarray(p, jnp.float32)


def check_pyramid_fields(levels: Any, method: Any) -> tuple:
  """A SpatialPyramidPool module's fields checked without an input (the level sizes need
  the input's rank and are checked by :func:`spatial_pyramid_pool`); returns the levels."""
  _checks.choice(method, 'method', ('avg', 'max'))
  given, levels = levels, _geometry.static_values(levels, 'levels')
  if isinstance(levels, str) or not isinstance(levels, Sequence) or not levels:
    raise TypeError(f'levels must be a non-empty sequence of positive ints; got {given!r}')
  if any(_geometry.is_int(level) and level < 1 for level in levels):
    raise ValueError(f'levels must be positive; got {given!r}')
  return tuple(levels)


# --- stochastic ----------------------------------------------------------------------------------


def check_probability(p: Any, name: str):
  """A number in [0, 1] (returned as float) or a float scalar array (traced: unchecked)."""
  return _checks.probability_or_array(p, name)


def check_grid(grid: Any, window: Sequence[int]) -> tuple[int, ...]:
  """``s3_pool``'s ``grid`` (and ``S3Pool``'s field): ints ``>= window``; None means window."""
  window = _geometry.normalize_window(window)
  grid = window if grid is None else _geometry.int_tuple(grid, len(window), 'grid')
  if any(g < k for g, k in zip(grid, window)):
    raise ValueError(f'grid must be >= window in every dim; got grid {grid} for window {window}')
  return grid


def ratio_output_size(ratio: Any, spatial: Sequence[int]) -> tuple[int, ...]:
  """PyTorch's ``int(L * ratio)`` per dim; ratios in (0, 1], one per dim or shared."""
  ratio = _geometry.static_values(ratio, 'output_ratio')
  n = len(spatial)
  if _checks.is_number(ratio):
    ratios = (float(ratio),) * n
  elif (
    isinstance(ratio, Sequence)
    and not isinstance(ratio, str)
    and len(ratio) == n
    and all(_checks.is_number(r) for r in ratio)
  ):
    ratios = tuple(float(r) for r in ratio)
  else:
    raise TypeError(
      f'output_ratio must be a number or a sequence of {n} numbers in (0, 1]; got {ratio!r}'
    )
  if not all(0 < r <= 1 for r in ratios):
    raise ValueError(f'output_ratio entries must be in (0, 1]; got {ratio!r}')
  return tuple(int(size * r) for size, r in zip(spatial, ratios))


def check_fractional_fields(window: Any, output_size: Any, output_ratio: Any, owner: str) -> None:
  """Fractional max pooling's size fields checked without an input.

  Exactly one of ``output_size`` (an int or one int per dim of ``window``) and
  ``output_ratio`` (in (0, 1], shared or per dim); whether the sizes fit is
  checked against the input by :func:`fractional_max_pool`. ``owner`` names
  the caller in the error.
  """
  window = _geometry.normalize_window(window)
  if (output_size is None) == (output_ratio is None):
    raise ValueError(
      f'{owner} needs exactly one of output_size and output_ratio; got '
      f'output_size={output_size!r}, output_ratio={output_ratio!r}'
    )
  if output_size is not None:
    _geometry.int_tuple(output_size, len(window), 'output_size')
  else:
    ratio_output_size(output_ratio, (1,) * len(window))


# --- learned -------------------------------------------------------------------------------------


def check_depth(depth: Any) -> int:
  """``TreePool``'s ``depth`` (gate levels; :func:`tree_pool` reads it off ``leaves``): an int >= 0."""
  value = _checks.static(depth, 'depth')
  if not _checks.is_int(value) or value < 0:
    raise ValueError(f'depth must be an int >= 0; got {depth!r}')
  return int(value)


#: Lee et al. (2016) initialise gating masks and tree filters Gaussian with std 0.1
#: (the author's ``train_val.prototxt``).
filter_init = jax.nn.initializers.normal(stddev=0.1)


def box_init(key, shape, dtype=jnp.float32):
  """A normalised box filter ``(*window, 1, C)``: every tap ``1 / prod(window)``."""
  del key
  return jnp.full(shape, 1.0 / math.prod(shape[:-2]), dtype)


# --- blur ----------------------------------------------------------------------------------------


def check_pad_mode(pad_mode) -> str:
  return _checks.choice(pad_mode, 'pad_mode', PAD_MODES)


def check_blur_fields(window, strides, pad_mode, blur=None) -> tuple[int, ...]:
  """The blur modules' field checks that need no input; returns the window as a tuple.

  ``window`` (BlurPool's filter, MaxBlurPool's max window), ``blur``
  (MaxBlurPool's filter: one entry per spatial dim of ``window``), the blur's
  ``strides`` (None or ints) and ``pad_mode``; the modules call this at
  construction so a bad field fails there.
  """
  window = _geometry.normalize_window(window)
  if blur is not None and len(_geometry.normalize_window(blur, 'blur')) != len(window):
    raise ValueError(f'blur must have one entry per spatial dim of window {window}; got {blur!r}')
  if strides is not None:
    _geometry.int_tuple(strides, len(window), 'strides')
  check_pad_mode(pad_mode)
  return window


# --- lifting -------------------------------------------------------------------------------------


def axes_tuple(axes: Any) -> tuple[int, ...]:
  """``axes`` (an int or a non-empty sequence of ints) as a tuple, checked without an input.

  What a module's ``axes`` field can be checked for at construction; the
  ranges depend on the input's rank and are checked by the ops.
  """
  axes = _geometry.static_values(axes, 'axes')
  if _geometry.is_int(axes):
    return (int(axes),)
  if (
    not isinstance(axes, Sequence)
    or isinstance(axes, str)
    or not axes
    or not all(_geometry.is_int(a) for a in axes)
  ):
    raise TypeError(f'axes must be an int or a non-empty sequence of ints; got {axes!r}')
  return tuple(int(a) for a in axes)


def check_inverse_fields(kernel_size: int | None, axes: Any, down: Any) -> None:
  """An inverting module's ``kernel_size``/``axes`` must be None or equal ``down``'s.

  ``LiftUpPool(down=...)`` uses the down pool's operators and axes; a value
  given next to it that differs would be silently ignored, so it raises.
  """
  for field, mine, theirs in (
    ('kernel_size', kernel_size, down.kernel_size),
    ('axes', axes, down.axes),
  ):
    if mine is not None and (axes_tuple(mine) if field == 'axes' else mine) != (
      axes_tuple(theirs) if field == 'axes' else theirs
    ):
      raise ValueError(
        f'{field}={mine!r} conflicts with down.{field}={theirs!r}; leave it None '
        f"to use the down pool's"
      )


# --- segments ------------------------------------------------------------------------------------


def check_segment_fields(
  num_segments: Any, method: Any, p: Any, eps: Any, temperature: Any, learnable_p: bool
) -> None:
  """A SegmentPool module's fields checked without an input (both Flax APIs): as
  :func:`check_global_fields`, plus ``num_segments`` and ``'sum'``, which
  takes no keyword arguments."""
  _checks.positive_int(num_segments, 'num_segments')
  _checks.choice(method, 'method', SEGMENT_METHODS)
  if method == 'sum':
    if global_kwargs(p, eps, temperature) or learnable_p:
      raise ValueError("SegmentPool method 'sum' takes no p, eps, temperature or learnable_p")
  else:
    check_global_fields(method, p, eps, temperature, learnable_p)


def check_param_shape(
  stored: Sequence[int],
  needed: Sequence[int],
  owner: str,
  name: str,
  why: str,
  x_shape: Sequence[int] | None = None,
) -> None:
  """A stored parameter of another shape than this input needs: a ``ValueError`` naming both.

  Linen checks at ``self.param`` (the shape a stored variable has), NNX at call time (the
  shape the module was built with); the message is one.
  """
  stored, needed = tuple(stored), tuple(needed)
  if stored != needed:
    of = '' if x_shape is None else f' of shape {tuple(x_shape)}'
    raise ValueError(
      f'{owner}: parameter {name!r} has shape {stored} but this input{of} needs {needed} '
      f'({why}); got an input of another size or channel count'
    )
