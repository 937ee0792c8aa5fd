"""What every NNX module shares: geometry fields, NNX-only arguments, parameters, random streams.

An NNX module here takes the function's configuration arguments as fields:
the fields of the linen module of the same name, in the same order and with
the same defaults. Each ``__init__`` validates them with the same calls the
linen module makes (:func:`jaxpool._geometry.check_fields` for the geometry,
:mod:`jaxpool._checks` for scalars, the op module's own checks for the rest),
so the two APIs raise the same construction errors, and then assigns each one
as a plain attribute, lists frozen to tuples so graph definitions hash under
``nnx.jit``. What NNX needs at construction and linen infers at the first call
(the channel count, a fixed input size, a key for random initial values) comes
as keyword-only ``num_features``, ``input_size`` and ``rngs``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpool import _checks, _geometry
from jaxpool._geometry import GeometryArgs, Padding

#: The rng stream random modules draw from; ``nnx.Rngs`` falls back to ``'default'``.
RNG_STREAM = 'pooling'

T = TypeVar('T')


def freeze(value: T) -> T:
  """A field as hashable static data: lists (nested too) to tuples, scalars to Python values.

  The checks accept NumPy scalars and concrete 0-d JAX arrays wherever they
  accept a Python scalar; stored as its Python value a field stays static
  under ``nnx.jit``. Fields that the functions also take as arrays (their
  traced path: ``temperature``, ``p``, ``p_max``, GlobalPool's ``eps``) are
  not frozen but stored as given, so an array keeps the function's semantics.
  """
  if isinstance(value, (list, tuple)):
    return tuple(freeze(v) for v in value)  # type: ignore[return-value]
  if isinstance(value, np.generic) or (
    isinstance(value, jax.Array) and value.ndim == 0 and not isinstance(value, jax.core.Tracer)
  ):
    return value.item()
  return value


def check_num_features(num_features: Any, owner: str, why: str) -> int:
  """``num_features`` must be a positive int where parameters depend on the channel count."""
  if num_features is None:
    raise ValueError(
      f'{owner} needs num_features (the channel count C) for {why}: NNX modules create '
      f'their parameters at construction; pass num_features=C'
    )
  if not _geometry.is_int(num_features) or num_features < 1:
    raise ValueError(f'num_features must be a positive int; got {num_features!r}')
  return int(num_features)


def check_optional_num_features(num_features: Any) -> None:
  """``num_features`` given where it is optional must still be a positive int."""
  if num_features is not None and (not _geometry.is_int(num_features) or num_features < 1):
    raise ValueError(f'num_features must be a positive int or None; got {num_features!r}')


def out_spatial(
  input_size: Any, window, strides, padding, dilation, ceil_mode, owner: str, why: str
) -> tuple[int, ...]:
  """The pooled spatial shape for an input of spatial size ``input_size``."""
  n = len(_geometry.normalize_window(window))
  if input_size is None:
    raise ValueError(
      f'{owner} needs input_size (the spatial size of its input, {n} ints) for {why}: '
      f'these parameters are tied to one input size; pass input_size=(...)'
    )
  size = _geometry.int_tuple(input_size, n, 'input_size')
  geom, _ = _geometry.pool_geometry(
    (*size, 1), window, strides, padding, dilation, ceil_mode, name='input_size'
  )
  return geom.out_shape


def declared_param_shape(
  granularity: str,
  field: str,
  owner: str,
  num_features: Any,
  input_size: Any,
  geometry_args: GeometryArgs,
) -> tuple[int, ...]:
  """:func:`jaxpool._geometry.param_shape` from the NNX-only arguments, asked only when used.

  ``'channel'`` granularities need ``num_features``, ``'location'`` ones ``input_size``
  (checked against the geometry whenever given).
  """
  why = f'{field}={granularity!r}'
  channels = out = None
  if granularity.startswith('location') or input_size is not None:
    out = out_spatial(input_size, *geometry_args, owner, why)
  if granularity.endswith('channel'):
    channels = check_num_features(num_features, owner, why)
  return _geometry.param_shape(granularity, out, channels)


def input_param_shape(
  granularity: str, x_shape: Sequence[int], geometry_args: GeometryArgs
) -> tuple[int, ...]:
  """:func:`jaxpool._geometry.param_shape` for an input of shape ``x_shape``."""
  geom, _ = _geometry.pool_geometry(x_shape, *geometry_args)
  return _geometry.param_shape(granularity, geom.out_shape, x_shape[-1])


def init_param(
  init: Callable, shape: Sequence[int], rngs: nnx.Rngs | None, owner: str, name: str
) -> nnx.Param:
  """``nnx.Param(init(key, shape, float32))``; the key comes from ``rngs.params()``.

  Deterministic initialisers (zeros, a box filter) need no ``rngs``; a random
  one without ``rngs`` raises a ``TypeError`` that says so.
  """
  shape = tuple(shape)
  check_optional_rngs(rngs, owner)
  if rngs is not None:
    return nnx.Param(init(rngs.params(), shape, jnp.float32))
  try:
    value = init(None, shape, jnp.float32)
  except Exception as err:  # a random initialiser given no key
    raise TypeError(
      f'{owner}: the initialiser of {name!r} draws random values; pass rngs=nnx.Rngs(...)'
    ) from err
  return nnx.Param(jnp.asarray(value, jnp.float32))


def check_optional_rngs(rngs: Any, owner: str) -> None:
  """``rngs`` given where initial values may be deterministic must still be an ``nnx.Rngs``."""
  if rngs is not None and not isinstance(rngs, nnx.Rngs):
    raise TypeError(f'{owner}: rngs must be an nnx.Rngs or None; got {rngs!r}')


def require_rngs(rngs: Any, owner: str, why: str) -> nnx.Rngs:
  """``rngs`` must be an ``nnx.Rngs`` where initial values are random."""
  if not isinstance(rngs, nnx.Rngs):
    raise TypeError(f'{owner} needs rngs=nnx.Rngs(...) {why}; got {rngs!r}')
  return rngs


class Windowed(nnx.Module):
  """Base of the windowed modules: the five geometry fields, validated and stored.

  Subclasses check their own fields first (as the linen modules' ``__post_init__``
  does before the geometry), then call ``super().__init__``.
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None,
    padding: Padding,
    dilation: int | Sequence[int],
    ceil_mode: bool,
  ):
    _geometry.check_fields(window, strides, padding, dilation, ceil_mode)
    self.window = freeze(window)
    self.strides = freeze(strides)
    self.padding = freeze(padding)
    self.dilation = freeze(dilation)
    self.ceil_mode = freeze(ceil_mode)

  @property
  def _geometry_args(self) -> GeometryArgs:
    """The geometry fields as the functions' positional arguments."""
    return (self.window, self.strides, self.padding, self.dilation, self.ceil_mode)


class Stochastic(nnx.Module):
  """Flax NNX Dropout's convention for the random pooling modules.

  ``deterministic`` (attribute and ``__call__`` argument, the call's taking
  precedence; ``model.train()``/``model.eval()`` and ``nnx.view`` set it)
  chooses evaluation (``True``: no key, each paper's test-time rule) or
  training (``False``). Training keys come from ``rngs``: an ``nnx.Rngs``
  (its ``'pooling'`` stream, else ``'default'``), forked at construction, or
  given to ``__call__`` (an ``nnx.Rngs``, ``nnx.RngStream`` or a key).
  """

  deterministic: bool | None

  def _init_mode(self, deterministic: Any, rngs: nnx.Rngs | nnx.RngStream | None) -> None:
    """The ``deterministic`` attribute (None or a bool, checked as the call's) and the rngs."""
    self.deterministic = _checks.optional_flag(deterministic, 'deterministic')
    if isinstance(rngs, nnx.Rngs):
      self.rngs = rngs[RNG_STREAM].fork()
    elif isinstance(rngs, nnx.RngStream):
      self.rngs = rngs.fork()
    elif rngs is None:
      self.rngs = nnx.data(None)
    else:
      raise TypeError(f'rngs must be an nnx.Rngs, an nnx.RngStream or None; got {rngs!r}')

  def _key(
    self, deterministic: bool | None, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None
  ) -> jax.Array | None:
    """``None`` in evaluation mode, else a fresh key."""
    owner = type(self).__name__
    deterministic = _checks.optional_flag(deterministic, 'deterministic')
    if deterministic is None:
      deterministic = _checks.optional_flag(self.deterministic, 'deterministic')
    if deterministic is None:
      raise ValueError(
        f'No deterministic argument was given to {owner}: pass deterministic=True (evaluation) '
        f'or False (training) to the constructor or to __call__, or use model.train() / '
        f'model.eval() / nnx.view(model, deterministic=...)'
      )
    if deterministic:
      return None
    if rngs is None:
      rngs = self.rngs
    if rngs is None:
      raise ValueError(
        f'{owner} is in training mode (deterministic=False) but has no rngs: pass '
        f'rngs=nnx.Rngs(...) to the constructor or to __call__'
      )
    if isinstance(rngs, nnx.Rngs):
      return rngs[RNG_STREAM]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    if isinstance(rngs, jax.Array):
      return rngs
    raise TypeError(f'rngs must be an nnx.Rngs, an nnx.RngStream or a key; got {rngs!r}')

  def set_view(self, deterministic: bool | None = None):
    """Used by ``nnx.view``: ``deterministic=True`` selects evaluation mode."""
    if deterministic is not None:
      self.deterministic = _checks.flag(deterministic, 'deterministic')
