"""Window geometry: the one place that turns user arguments into integers.

Every windowed op calls :func:`pool_geometry` once, at trace time, with Python
values. It validates the arguments (errors name the argument, the value and
what is allowed), applies PyTorch's output-size rule (``ceil_mode`` included,
with its "a last window may not start in the right padding" rule) and returns
a frozen, hashable :class:`Geometry` that backward rules take as static data.

All index maths here is Python/NumPy integer arithmetic: window bounds derived
from traced float arithmetic round differently on XLA:CPU and go wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxpool import _checks
from jaxpool._checks import is_int  # the size checks here and in the op modules use it

Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

#: The geometry fields of a windowed module as the functions take them positionally:
#: ``(window, strides, padding, dilation, ceil_mode)``.
GeometryArgs = tuple[Sequence[int], int | Sequence[int] | None, Padding, int | Sequence[int], bool]


def static_values(value: Any, name: str) -> Any:
  """Concrete 0-d JAX arrays, alone or as entries of a list/tuple, -> Python values."""
  if isinstance(value, (list, tuple)):
    return tuple(_checks.static(v, name) for v in value)
  return _checks.static(value, name)


def int_tuple(value: Any, n: int, name: str, *, minimum: int = 1) -> tuple[int, ...]:
  """Broadcasts an int, or checks a sequence of ``n`` ints; each must be >= minimum."""
  value = static_values(value, name)
  if is_int(value):
    values = (int(value),) * n
  elif isinstance(value, Sequence) and not isinstance(value, str):
    if len(value) != n:
      raise ValueError(
        f'{name} must be an int or have {n} entries (one per spatial dim); '
        f'got {value!r} with {len(value)}'
      )
    if not all(is_int(v) for v in value):
      raise TypeError(f'{name} must hold ints; got {value!r}')
    values = tuple(int(v) for v in value)
  else:
    raise TypeError(
      f'{name} must be an int or a sequence of {n} ints; got {value!r} '
      f'of type {type(value).__name__}'
    )
  if any(v < minimum for v in values):
    raise ValueError(f'{name} entries must be >= {minimum}; got {value!r}')
  return values


def normalize_window(window: Any, name: str = 'window') -> tuple[int, ...]:
  """A non-empty sequence of positive ints, one per spatial dim."""
  if is_int(window):
    raise TypeError(
      f'{name} must be a sequence of positive ints, one per spatial dim, '
      f'e.g. ({window}, {window}) for 2-d pooling; got the int {window!r}'
    )
  if not isinstance(window, Sequence) or isinstance(window, str) or not window:
    raise TypeError(
      f'{name} must be a non-empty sequence of positive ints, one per spatial dim; got {window!r}'
    )
  return int_tuple(window, len(window), name)


def check_rank(shape: Sequence[int], n: int, name: str = 'x', what: str = 'window') -> int:
  """Checks ``shape == (*batch, *spatial[n], C)``; returns the number of batch dims."""
  if len(shape) < n + 1:
    raise ValueError(
      f'{name} must have shape (*batch, *spatial, channels) with {n} spatial '
      f'dim(s) for a {n}-entry {what}, i.e. rank >= {n + 1}; got shape '
      f'{tuple(shape)} (rank {len(shape)})'
    )
  return len(shape) - n - 1


def _same_padding(size: int, k_eff: int, s: int) -> tuple[int, int]:
  out = -(-size // s)
  total = max((out - 1) * s + k_eff - size, 0)
  return total // 2, total - total // 2


def normalize_padding(
  padding: Padding,
  in_shape: Sequence[int],
  window: Sequence[int],
  strides: Sequence[int],
  dilation: Sequence[int],
  *,
  check_limit: bool = True,
  name: str = 'padding',
) -> tuple[tuple[int, int], ...]:
  """Explicit ``(low, high)`` pads per spatial dim from any accepted form.

  'VALID' is no padding; 'SAME' is XLA's rule (output ``ceil(L / s)``); an int
  pads every side; a sequence of ints pads each dim symmetrically; a sequence
  of pairs is taken as is. Explicit pads above half the effective window
  ``dilation * (k - 1) + 1`` raise, as in PyTorch (``check_limit``).
  """
  n = len(window)
  k_eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  # Any: the caller's value, JAX scalars made concrete; every form is checked below.
  spec: Any = static_values(padding, name)
  if isinstance(spec, str):
    mode = spec.upper()
    if mode == 'VALID':
      return ((0, 0),) * n
    if mode == 'SAME':
      return tuple(_same_padding(size, ke, s) for size, ke, s in zip(in_shape, k_eff, strides))
    raise ValueError(
      f"{name} must be 'VALID', 'SAME', an int, a sequence of {n} ints or of "
      f'{n} (low, high) pairs; got the string {spec!r}'
    )
  if is_int(spec):
    pads = ((int(spec), int(spec)),) * n
  elif isinstance(spec, Sequence) and len(spec) == n and all(is_int(p) for p in spec):
    pads = tuple((int(p), int(p)) for p in spec)
  elif (
    isinstance(spec, Sequence)
    and len(spec) == n
    and all(
      isinstance(p, Sequence)
      and not isinstance(p, str)
      and len(p) == 2
      and all(is_int(v) for v in p)
      for p in spec
    )
  ):
    pads = tuple((int(lo), int(hi)) for lo, hi in spec)
  else:
    raise (ValueError if isinstance(spec, Sequence) else TypeError)(
      f"{name} must be 'VALID', 'SAME', an int, a sequence of {n} ints or of "
      f'{n} (low, high) pairs (one per spatial dim); got {spec!r}'
    )
  if any(v < 0 for pair in pads for v in pair):
    raise ValueError(f'{name} must be non-negative; got {spec!r}')
  if check_limit:
    for (lo, hi), ke in zip(pads, k_eff):
      if max(lo, hi) > ke // 2:
        raise ValueError(
          f'{name} must be at most half the effective window '
          f'(dilation * (window - 1) + 1) // 2 = {ke // 2} on each side, as in '
          f'PyTorch; got {spec!r}'
        )
  return pads


def output_size(size: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool) -> int:
  """PyTorch's ``pooling_output_shape_pad_lr``; <= 0 when the window does not fit."""
  k_eff = d * (k - 1) + 1
  span = size + lo + hi - k_eff
  if span < 0:
    return 0
  if ceil_mode:
    out = -(-span // s) + 1
    if (out - 1) * s >= size + lo:  # the last window must start inside
      out -= 1
  else:
    out = span // s + 1
  return out


@dataclasses.dataclass(frozen=True)
class Geometry:
  """Static description of a pooling: input/output spatial sizes and windows.

  Output index ``p`` along a dim reads the input positions
  ``p * stride + j * dilation - pad_low`` for ``j < window``; positions outside
  ``[0, in_size)`` are padding and never contribute (except to the divisor of
  ``avg_pool(count_include_pad=True)``).
  """

  in_shape: tuple[int, ...]
  out_shape: tuple[int, ...]
  window: tuple[int, ...]
  strides: tuple[int, ...]
  dilation: tuple[int, ...]
  padding: tuple[tuple[int, int], ...]

  @property
  def ndim(self) -> int:
    return len(self.window)

  @property
  def window_size(self) -> int:
    return math.prod(self.window)

  @property
  def extent(self) -> tuple[int, ...]:
    """The input span of one window per dim, dilation included: ``d * (k - 1) + 1``."""
    return tuple(d * (k - 1) + 1 for k, d in zip(self.window, self.dilation))

  @property
  def full_padding(self) -> tuple[tuple[int, int], ...]:
    """Padding extended on the high side so every output window fits (ceil_mode)."""
    pads = []
    for size, out, e, s, (lo, hi) in zip(
      self.in_shape, self.out_shape, self.extent, self.strides, self.padding
    ):
      need = (out - 1) * s + e - size - lo
      pads.append((lo, max(hi, need)))
    return tuple(pads)

  def tap_positions(self, axis: int) -> np.ndarray:
    """Input coordinate of tap ``j`` of output ``p`` along one dim: shape (window, out)."""
    k, s, d = self.window[axis], self.strides[axis], self.dilation[axis]
    lo = self.padding[axis][0]
    return np.arange(self.out_shape[axis])[None, :] * s + np.arange(k)[:, None] * d - lo

  def tap_valid(self, axis: int) -> np.ndarray:
    """Whether each tap lies inside the input: bool (window, out)."""
    pos = self.tap_positions(axis)
    return (pos >= 0) & (pos < self.in_shape[axis])

  def valid_counts(self, include_pad: bool = False) -> np.ndarray:
    """Number of taps of each output window inside the input, shape ``out_shape``.

    With ``include_pad`` the explicit padding counts too (never the ceil_mode
    overhang beyond it), which is PyTorch's ``count_include_pad`` divisor.
    """
    counts = np.ones((), np.int64)
    for axis in range(self.ndim):
      pos = self.tap_positions(axis)
      lo, hi = self.padding[axis]
      if include_pad:
        inside = (pos >= -lo) & (pos < self.in_shape[axis] + hi)
      else:
        inside = (pos >= 0) & (pos < self.in_shape[axis])
      counts = np.multiply.outer(counts, inside.sum(0))
    return counts


def pool_geometry(
  shape: Sequence[int],
  window: Any,
  strides: Any = None,
  padding: Padding = 'VALID',
  dilation: Any = 1,
  ceil_mode: bool = False,
  *,
  name: str = 'x',
  check_padding: bool = True,
) -> tuple[Geometry, int]:
  """Validates pooling arguments for an input of ``shape``.

  Returns ``(geometry, num_batch_dims)``. ``strides=None`` means equal to the
  window.
  """
  window = normalize_window(window)
  n = len(window)
  num_batch = check_rank(shape, n, name)
  in_shape = tuple(int(v) for v in shape[num_batch : num_batch + n])
  if any(v < 1 for v in in_shape):
    raise ValueError(f'{name} must have non-empty spatial dims; got shape {tuple(shape)}')
  strides = window if strides is None else int_tuple(strides, n, 'strides')
  dilation = int_tuple(dilation, n, 'dilation')
  ceil_mode = _checks.flag(ceil_mode, 'ceil_mode')
  pads = normalize_padding(padding, in_shape, window, strides, dilation, check_limit=check_padding)
  out_shape = tuple(
    output_size(size, k, s, d, lo, hi, ceil_mode)
    for size, k, s, d, (lo, hi) in zip(in_shape, window, strides, dilation, pads)
  )
  if any(o < 1 for o in out_shape):
    raise ValueError(
      f'window {window} (dilation {dilation}) is larger than the padded input: '
      f'spatial shape {in_shape} with padding {pads} gives output shape '
      f'{out_shape}; every output size must be >= 1'
    )
  return Geometry(in_shape, out_shape, window, strides, dilation, pads), num_batch


def check_fields(
  window: Any,
  strides: Any = None,
  padding: Padding = 'VALID',
  dilation: Any = 1,
  ceil_mode: bool = False,
  *,
  unpool_padding: bool = False,
) -> tuple[int, ...]:
  """Validates a module's geometry fields without an input: what does not depend on its shape.

  The modules call this at construction, so an impossible configuration fails
  there rather than at the first call; a module without one of the fields
  passes its default. ``padding`` takes the pooling forms (``'VALID'``,
  ``'SAME'``, ints, ``(low, high)`` pairs, at most half the effective window)
  or, with ``unpool_padding``, :func:`jaxpool.max_unpool`'s non-negative ints.
  Returns the window as a tuple.
  """
  window = normalize_window(window)
  n = len(window)
  strides = window if strides is None else int_tuple(strides, n, 'strides')
  dilation = int_tuple(dilation, n, 'dilation')
  _checks.flag(ceil_mode, 'ceil_mode')
  if unpool_padding:
    int_tuple(padding, n, 'padding', minimum=0)
  else:
    normalize_padding(padding, (1,) * n, window, strides, dilation)
  return window


#: The granularities of a learned blend parameter (AdaPool's beta, MaxAvgPool's alpha).
PARAM_SHAPES = ('scalar', 'channel', 'location', 'location_channel')


def param_shape(
  granularity: str, out_shape: Sequence[int] | None, channels: int | None
) -> tuple[int, ...]:
  """The shape of a parameter of the given ``granularity`` (one of :data:`PARAM_SHAPES`).

  ``'scalar'`` ``()``, ``'channel'`` ``(C,)``, ``'location'`` ``(*out_shape,
  1)`` (shared over channels) or ``'location_channel'`` ``(*out_shape, C)``,
  for the pooled spatial shape ``out_shape`` and ``channels`` C; what ``granularity``
  does not use may be None.
  """
  if granularity not in PARAM_SHAPES:
    raise ValueError(
      f'granularity must be one of {", ".join(map(repr, PARAM_SHAPES))}; got {granularity!r}'
    )
  tail: tuple[int, ...] = ()
  if granularity.endswith('channel'):
    if channels is None:
      raise ValueError(f'a {granularity!r} parameter needs the channel count')
    tail = (channels,)
  if not granularity.startswith('location'):
    return tail
  if out_shape is None:
    raise ValueError(f'a {granularity!r} parameter needs the output spatial shape')
  return (*out_shape, *(tail or (1,)))


def unpool_output_size(output_size: Any, y_shape: Sequence[int], num_batch: int, n: int):
  """An unpooling's ``output_size``: ``n`` spatial sizes, or the whole output shape.

  Returns the spatial sizes as ints; a whole shape (``len(y_shape)`` entries) gives its
  spatial entries. Concrete JAX/NumPy ints are taken; anything else is a ``TypeError``, a
  wrong length a ``ValueError``, each naming ``output_size``.
  """
  output_size = static_values(output_size, 'output_size')
  if (
    not isinstance(output_size, Sequence)
    or isinstance(output_size, str)
    or not all(is_int(v) for v in output_size)
  ):
    raise TypeError(f'output_size must be a sequence of ints; got {output_size!r}')
  size = tuple(int(v) for v in output_size)
  if len(size) == len(y_shape):
    size = size[num_batch : num_batch + n]
  if len(size) != n:
    raise ValueError(
      f'output_size must have {n} spatial entries (or {len(y_shape)} for the whole shape); '
      f'got {output_size!r}'
    )
  return size
