"""Flax NNX modules for stochastic pooling: thin wrappers over :mod:`jaxpool.stochastic`.

Flax NNX Dropout's convention (see :class:`~jaxpool.nnx._base.Stochastic`):
``deterministic`` as attribute and ``__call__`` argument (the call's wins;
``model.train()`` / ``model.eval()`` / ``nnx.view`` set it), training keys from
``rngs`` — the ``'pooling'`` stream of an ``nnx.Rngs``, else its ``'default'``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, stochastic
from jaxpool._geometry import Padding
from jaxpool.nnx._base import Stochastic, Windowed, freeze

Rngs = nnx.Rngs | nnx.RngStream | jax.Array | None


class StochasticPool(Windowed, Stochastic):
  """:func:`jaxpool.stochastic_pool` as an NNX module.

  Example:
    >>> from flax import nnx
    >>> pool = jaxpool.nnx.StochasticPool((2, 2), rngs=nnx.Rngs(0))
    >>> x = jnp.ones((1, 4, 4, 3))
    >>> pool(x, deterministic=True).shape
    (1, 2, 2, 3)
    >>> pool.train()
    >>> pool(x).shape
    (1, 2, 2, 3)
  """

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    deterministic: bool | None = None,
    *,
    rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self._init_mode(deterministic, rngs)

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    rngs: Rngs = None,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.stochastic_pool(
      x,
      *self._geometry_args,
      key=self._key(deterministic, rngs),
      mask=mask,
      return_mask=return_mask,
    )


class MixedPool(Windowed, Stochastic):
  """:func:`jaxpool.mixed_pool` as an NNX module: max or average at random while training."""

  def __init__(
    self,
    window: Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = 'VALID',
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    p_max: float = 0.5,
    granularity: str = 'channel',
    deterministic: bool | None = None,
    *,
    rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    _fields.check_probability(p_max, 'p_max')
    _checks.choice(granularity, 'granularity', stochastic.GRANULARITIES)
    super().__init__(window, strides, padding, dilation, ceil_mode)
    self.p_max = p_max  # also takes an array (the traced path): stored as given
    self.granularity = freeze(granularity)
    self._init_mode(deterministic, rngs)

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    rngs: Rngs = None,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.mixed_pool(
      x,
      *self._geometry_args,
      key=self._key(deterministic, rngs),
      p_max=self.p_max,
      granularity=self.granularity,
      mask=mask,
      return_mask=return_mask,
    )


class S3Pool(Stochastic):
  """:func:`jaxpool.s3_pool` as an NNX module: stride-1 max, then random rows/columns per cell."""

  def __init__(
    self,
    window: Sequence[int],
    grid: int | Sequence[int] | None = None,
    deterministic: bool | None = None,
    *,
    rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    _fields.check_grid(grid, window)
    self.window = freeze(window)
    self.grid = freeze(grid)
    self._init_mode(deterministic, rngs)

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    *,
    rngs: Rngs = None,
    mask: jnp.ndarray | None = None,
    return_mask: bool = False,
  ):
    return stochastic.s3_pool(
      x,
      self.window,
      self.grid,
      key=self._key(deterministic, rngs),
      mask=mask,
      return_mask=return_mask,
    )


class FractionalMaxPool(Stochastic):
  """:func:`jaxpool.fractional_max_pool` as an NNX module.

  Training draws the samples ``u`` from ``rngs``; evaluation uses ``u =
  0.5``. ``samples`` given to ``__call__`` (PyTorch's ``_random_samples``)
  override both.
  """

  def __init__(
    self,
    window: Sequence[int],
    output_size: int | Sequence[int] | None = None,
    output_ratio: float | Sequence[float] | None = None,
    return_indices: bool = False,
    deterministic: bool | None = None,
    *,
    rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    _fields.check_fractional_fields(window, output_size, output_ratio, 'FractionalMaxPool')
    _checks.flag(return_indices, 'return_indices')
    self.window = freeze(window)
    self.output_size = freeze(output_size)
    self.output_ratio = freeze(output_ratio)
    self.return_indices = freeze(return_indices)
    self._init_mode(deterministic, rngs)

  def __call__(
    self,
    x: jnp.ndarray,
    deterministic: bool | None = None,
    samples: jnp.ndarray | None = None,
    *,
    rngs: Rngs = None,
  ):
    key = None if samples is not None else self._key(deterministic, rngs)
    return stochastic.fractional_max_pool(
      x,
      self.window,
      self.output_size,
      self.output_ratio,
      key=key,
      samples=samples,
      return_indices=self.return_indices,
    )
