"""Flax linen modules for stochastic pooling: thin wrappers over :mod:`jaxpool.stochastic`.

Flax Dropout's convention: ``deterministic`` (field and ``__call__`` argument,
merged with ``nn.merge_param``; exactly one must be given) chooses evaluation
(``True``: no key, each paper's test-time rule) or training (``False``: a key
from the ``'pooling'`` rng stream, ``rngs={'pooling': key}`` in ``apply``).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpool import _checks, _fields, stochastic
from jaxpool.linen._base import Windowed

RNG_STREAM = 'pooling'


def _key(module: nn.Module, deterministic: bool | None) -> jax.Array | None:
  """None in evaluation mode, else a key from the ``'pooling'`` stream.

  The call's ``deterministic`` is checked as the field is (None or a bool), then merged.
  """
  deterministic = nn.merge_param(
    'deterministic', module.deterministic, _checks.optional_flag(deterministic, 'deterministic')
  )
  return None if deterministic else module.make_rng(RNG_STREAM)


class _Random(nn.Module):
  """The ``deterministic`` field of the random modules, checked at construction."""

  def __post_init__(self):
    _checks.optional_flag(self.deterministic, 'deterministic')
    super().__post_init__()


class StochasticPool(Windowed, _Random):
  """:func:`jaxpool.stochastic_pool` as a module (training draws from the ``'pooling'`` stream).

  Example:
    >>> import jaxpool.linen as jl
    >>> pool = jl.StochasticPool((2, 2))
    >>> x = jnp.ones((1, 4, 4, 3))
    >>> pool.apply({}, x, deterministic=True).shape
    (1, 2, 2, 3)
    >>> pool.apply({}, x, deterministic=False, rngs={'pooling': jax.random.key(0)}).shape
    (1, 2, 2, 3)
  """

  deterministic: bool | None = None

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.stochastic_pool(
      x, *self._geometry_args, key=_key(self, deterministic), mask=mask, return_mask=return_mask
    )


class MixedPool(Windowed, _Random):
  """:func:`jaxpool.mixed_pool` as a module: max or average at random while training."""

  p_max: float = 0.5
  granularity: str = 'channel'
  deterministic: bool | None = None

  def __post_init__(self):
    _fields.check_probability(self.p_max, 'p_max')
    _checks.choice(self.granularity, 'granularity', stochastic.GRANULARITIES)
    super().__post_init__()

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.mixed_pool(
      x,
      *self._geometry_args,
      key=_key(self, deterministic),
      p_max=self.p_max,
      granularity=self.granularity,
      mask=mask,
      return_mask=return_mask,
    )


class S3Pool(_Random):
  """:func:`jaxpool.s3_pool` as a module: stride-1 max, then random rows/columns per grid cell."""

  window: Sequence[int]
  grid: int | Sequence[int] | None = None
  deterministic: bool | None = None

  def __post_init__(self):
    _fields.check_grid(self.grid, self.window)
    super().__post_init__()

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.s3_pool(
      x, self.window, self.grid, key=_key(self, deterministic), mask=mask, return_mask=return_mask
    )


class FractionalMaxPool(_Random):
  """:func:`jaxpool.fractional_max_pool` as a module.

  Training draws the samples ``u`` from the ``'pooling'`` stream; evaluation
  uses ``u = 0.5``. ``samples`` given to ``__call__`` (PyTorch's
  ``_random_samples``) override both.
  """

  window: Sequence[int]
  output_size: int | Sequence[int] | None = None
  output_ratio: float | Sequence[float] | None = None
  return_indices: bool = False
  deterministic: bool | None = None

  def __post_init__(self):
    _fields.check_fractional_fields(
      self.window, self.output_size, self.output_ratio, 'FractionalMaxPool'
    )
    _checks.flag(self.return_indices, 'return_indices')
    super().__post_init__()

  def __call__(
    self, x: jnp.ndarray, deterministic: bool | None = None, samples: jnp.ndarray | None = None
  ):
    key = None if samples is not None else _key(self, deterministic)
    return stochastic.fractional_max_pool(
      x,
      self.window,
      self.output_size,
      self.output_ratio,
      key=key,
      samples=samples,
      return_indices=self.return_indices,
    )
