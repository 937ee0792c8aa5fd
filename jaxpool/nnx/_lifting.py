"""Flax NNX modules for LiftPool: learned predict/update operators over :mod:`jaxpool.lifting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpool import _checks, _fields, lifting
from jaxpool.nnx import _base
from jaxpool.nnx._base import freeze


class LiftOperator(nnx.Module):
  """LiftPool's predictor ``P`` / updater ``U``: conv(K) -> ReLU -> conv(1) -> tanh.

  A 1-d operator on ``(*batch, M, C)`` convolving along axis ``-2`` with
  ``'SAME'`` zero padding, ``num_features -> num_features``, as in the linen
  module of the same name; convs ``conv_k`` and ``conv_1`` with Flax's default
  initialisers (LeCun normal kernels from ``rngs.params()``, zero biases).
  """

  def __init__(
    self, kernel_size: int = 3, *, num_features: int | None = None, rngs: nnx.Rngs | None = None
  ):
    kernel_size = _checks.positive_int(kernel_size, 'kernel_size')
    c = _base.check_num_features(num_features, 'LiftOperator', 'its C -> C convolutions')
    rngs = _base.require_rngs(rngs, 'LiftOperator', 'to draw its initial conv kernels')
    self.kernel_size = kernel_size
    self.conv_k = nnx.Conv(c, c, (kernel_size,), padding='SAME', rngs=rngs)
    self.conv_1 = nnx.Conv(c, c, (1,), padding='SAME', rngs=rngs)

  def __call__(self, v: jnp.ndarray) -> jnp.ndarray:
    channels = self.conv_k.in_features
    if jnp.shape(v)[-1] != channels:
      raise ValueError(
        f'LiftOperator: built for num_features={channels} channels; got an input of shape '
        f'{jnp.shape(v)}'
      )
    return jnp.tanh(self.conv_1(jax.nn.relu(self.conv_k(v))))


class LiftDownPool(nnx.Module):
  """:func:`jaxpool.lift_down_pool` with learned ``P`` and ``U`` (:class:`LiftOperator`).

  ``__call__(x)`` returns ``(low, details)``; ``inverse(low, details,
  output_size=None)`` is :func:`jaxpool.lift_up_pool` with this module's
  ``predict`` and ``update`` — exact for any parameters. Needs
  ``num_features`` (the channel count) and ``rngs``.

  Example:
    >>> from flax import nnx
    >>> down = jaxpool.nnx.LiftDownPool(num_features=2, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((1, 4, 4, 2))
    >>> low, details = down(x)
    >>> low.shape, sorted(details)
    ((1, 2, 2, 2), ['HH', 'HL', 'LH'])
    >>> bool(jnp.allclose(down.inverse(low, details), x, atol=1e-6))
    True
  """

  def __init__(
    self,
    kernel_size: int = 3,
    axes: int | Sequence[int] = (-3, -2),
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    _checks.positive_int(kernel_size, 'kernel_size')
    _fields.axes_tuple(axes)
    self.kernel_size = freeze(kernel_size)
    self.axes = freeze(axes)
    self.predict = LiftOperator(kernel_size, num_features=num_features, rngs=rngs)
    self.update = LiftOperator(kernel_size, num_features=num_features, rngs=rngs)

  def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    return lifting.lift_down_pool(x, self.predict, self.update, self.axes)

  def inverse(
    self,
    low: jnp.ndarray,
    details: Mapping[str, jnp.ndarray],
    output_size: int | Sequence[int] | None = None,
  ) -> jnp.ndarray:
    """:func:`jaxpool.lift_up_pool` with this module's ``P``, ``U`` and ``axes``."""
    return lifting.lift_up_pool(low, details, self.predict, self.update, self.axes, output_size)


class LiftUpPool(nnx.Module):
  """:func:`jaxpool.lift_up_pool` as an NNX module: ``LiftUpPool(...)(low, details)``.

  * ``down=`` a :class:`LiftDownPool`: uses that module's ``P``, ``U`` and
    ``axes`` (a shared reference: exact inversion, shared parameters).
  * ``down=None``: owns ``predict``/``update`` (needs ``num_features`` and
    ``rngs``), with the same state tree as a :class:`LiftDownPool`.
  """

  def __init__(
    self,
    down: LiftDownPool | None = None,
    kernel_size: int | None = None,
    axes: int | Sequence[int] | None = None,
    *,
    num_features: int | None = None,
    rngs: nnx.Rngs | None = None,
  ):
    if kernel_size is not None:
      _checks.positive_int(kernel_size, 'kernel_size')
    if axes is not None:
      _fields.axes_tuple(axes)
    if down is not None:
      if not isinstance(down, LiftDownPool):
        raise TypeError(
          f'down must be a jaxpool.nnx.LiftDownPool or None; got {type(down).__name__}'
        )
      _fields.check_inverse_fields(kernel_size, axes, down)
    self.down = down
    self.kernel_size = freeze(kernel_size)
    self.axes = freeze(axes)
    if down is None:
      k = 3 if kernel_size is None else kernel_size
      self.predict = LiftOperator(k, num_features=num_features, rngs=rngs)
      self.update = LiftOperator(k, num_features=num_features, rngs=rngs)

  def __call__(
    self,
    low: jnp.ndarray,
    details: Mapping[str, jnp.ndarray],
    output_size: int | Sequence[int] | None = None,
  ) -> jnp.ndarray:
    if self.down is not None:
      return self.down.inverse(low, details, output_size)
    axes = (-3, -2) if self.axes is None else self.axes
    return lifting.lift_up_pool(low, details, self.predict, self.update, axes, output_size)
