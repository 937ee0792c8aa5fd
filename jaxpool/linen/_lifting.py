"""Flax linen modules for LiftPool: learned predict/update operators over :mod:`jaxpool.lifting`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxpool import _checks, _fields, lifting


class LiftOperator(nn.Module):
  """LiftPool's predictor ``P`` / updater ``U``: conv(K) -> ReLU -> conv(1) -> tanh.

  A 1-d operator on ``(*batch, M, C)`` (convolving along axis ``-2``, ``'SAME'``
  zero padding) mapping ``C`` channels to ``C``; the features follow the input.
  """

  kernel_size: int = 3

  @nn.compact
  def __call__(self, v: jnp.ndarray) -> jnp.ndarray:
    channels = v.shape[-1]
    if channels == 0:  # C -> C with C = 0: nothing to convolve (and no kernel to initialise)
      return v
    # one batch dim, its size explicit (Flax's own flattening reshapes to -1, which fails
    # on an empty batch or zero channels)
    lead = v.shape[:-2]
    h = v.reshape(math.prod(lead), *v.shape[-2:])
    h = nn.Conv(channels, (self.kernel_size,), padding='SAME', name='conv_k')(h)
    h = nn.Conv(channels, (1,), name='conv_1')(nn.relu(h))
    return jnp.tanh(h).reshape(*lead, *h.shape[-2:])


class LiftDownPool(nn.Module):
  """:func:`jaxpool.lift_down_pool` with learned ``P`` and ``U`` (:class:`LiftOperator`).

  ``__call__(x)`` returns ``(low, details)``; ``inverse(low, details,
  output_size=None)`` is :func:`jaxpool.lift_up_pool` with *this* module's
  ``P`` and ``U`` — exact for any parameters. Each instance has its own
  parameters (``{'predict': ..., 'update': ...}``; not shared across layers, as
  in the paper); one ``P``/``U`` pair serves every axis and band.

  Inverting elsewhere in a model: build a :class:`LiftUpPool` with
  ``down=`` this module (weight sharing), or apply a standalone
  :class:`LiftUpPool` with this module's variables (same parameter tree), or
  ``down.apply(variables, low, details, method='inverse')``.
  """

  kernel_size: int = 3
  axes: int | Sequence[int] = (-3, -2)

  def __post_init__(self):
    _checks.positive_int(self.kernel_size, 'kernel_size')
    _fields.axes_tuple(self.axes)
    super().__post_init__()

  def setup(self):
    kernel_size = _checks.positive_int(self.kernel_size, 'kernel_size')
    self.predict = LiftOperator(kernel_size)
    self.update = LiftOperator(kernel_size)

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


class LiftUpPool(nn.Module):
  """:func:`jaxpool.lift_up_pool` as a module: ``LiftUpPool(...)(low, details, output_size=None)``.

  * ``down=`` a :class:`LiftDownPool` (e.g. one defined in the same parent's
    ``setup``): uses that module's ``P``, ``U`` and ``axes`` — shared
    parameters, exact inversion. ``kernel_size``/``axes`` may be left None.
  * ``down=None``: owns ``P``/``U`` with the same parameter tree as a
    :class:`LiftDownPool`, so ``LiftUpPool().apply(down_variables, ...)``
    inverts the down pool whose variables it is given.
  """

  down: LiftDownPool | None = None
  kernel_size: int | None = None
  axes: int | Sequence[int] | None = None

  def __post_init__(self):
    if self.kernel_size is not None:
      _checks.positive_int(self.kernel_size, 'kernel_size')
    if self.axes is not None:
      _fields.axes_tuple(self.axes)
    if self.down is not None:
      if not isinstance(self.down, LiftDownPool):
        raise TypeError(f'down must be a LiftDownPool or None; got {type(self.down).__name__}')
      _fields.check_inverse_fields(self.kernel_size, self.axes, self.down)
    super().__post_init__()

  def setup(self):
    if self.down is None:
      kernel_size = (
        3 if self.kernel_size is None else _checks.positive_int(self.kernel_size, 'kernel_size')
      )
      self.predict = LiftOperator(kernel_size)
      self.update = LiftOperator(kernel_size)

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
