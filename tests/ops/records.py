"""The record types of the op registry (:mod:`tests.ops`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class DiffCase:
  """One differentiable call: ``call(x, params, key)``, learnable ``params(shape)``."""

  call: Callable[..., Any]
  params: Callable[[tuple[int, ...]], dict] = lambda shape: {}
  positive: bool = False  # the op needs (or is only smooth on) positive inputs
  op: str = ''  # filled in from the entry that holds the case


@dataclasses.dataclass(frozen=True)
class Windowed:
  """A call parametrised by its window, for the path sweeps: ``call(x, window, key)``.

  ``x`` has shape ``(N, *spatial, C)`` with ``len(spatial) == len(window)``; stride 1
  (windows overlap, so a tie can straddle two windows) and fixed learnable arguments; the
  window picks the path (unrolled, stacked, per-dim passes). ``key`` is a PRNG key for the
  training mode of a random op, ``None`` for evaluation.

  - ``winner``: ``+1`` for the max family (the first maximum wins), ``-1`` for the min
    family, ``0`` for smooth ops. Breaking a tie by ``x - winner * delta * flat_index``
    reproduces the op's rule, so the derivatives at a tie equal those at the tie-broken
    input (exactly for the max family, to ``O(delta)`` for smooth ops).
  - ``homogeneous``: ``f(c x) = c f(x)`` for ``c > 0`` (up to an ``eps`` far below the
    inputs' scale), so the gradient does not depend on the scale.
  - ``kinks``: the tie classes at which the op is not twice differentiable, with the
    reason; the Hessian sweep skips them.
  - ``random``: the op draws in training mode (``key`` given).
  """

  call: Callable[..., Any]
  winner: int = 0
  homogeneous: bool = False
  kinks: dict[str, str] = dataclasses.field(default_factory=dict)
  random: bool = False


@dataclasses.dataclass(frozen=True)
class Masked:
  """A windowed op with ``mask=``: ``call(x, mask, window, strides, padding, **kw)`` and the
  reduction of one window's unmasked taps, ``reduce(xp, v, logits)`` over axis 0 of ``v``
  (``xp`` NumPy or jax.numpy: the tests' float64 window loop runs it on the kept taps).

  ``winner``: +1/-1 for the max/min family (``return_indices`` for max). ``logits``: the op
  takes LIP logits, passed as ``0.5 * x + 0.25`` (their taps reach ``reduce``).
  ``offsets``: the op weighs taps by a filter of the window's shape; ``reduce`` then takes
  ``(xp, v, o, window)``, ``o`` the kept taps' flat offsets in the window.
  """

  call: Callable[..., Any]
  reduce: Callable[..., Any]
  winner: int = 0
  logits: bool = False
  offsets: bool = False


@dataclasses.dataclass(frozen=True)
class Spec:
  """One module configuration: fields shared by both APIs, NNX's extra keywords, reference."""

  name: str
  fields: dict
  reference: Callable[..., Any]  # (x, params) or, random: (x, params, key) -> expected output
  nnx_kw: dict = dataclasses.field(default_factory=dict)
  inputs: Callable[[jnp.ndarray], tuple] | None = None  # x -> call args (default: (x,))
  positive: bool = False
  random_init: bool = False  # initial parameters drawn at random (values differ by API)
  random: bool = False  # a stochastic op: run in evaluation and in training mode

  def args(self, x):
    return (x,) if self.inputs is None else tuple(self.inputs(x))

  def expected(self, x, params, key):
    return self.reference(x, params, key) if self.random else self.reference(x, params)

  @property
  def init_kw(self):
    return dict(deterministic=True) if self.random else {}

  @property
  def modes(self):
    """``deterministic`` values to run: None (not a random module), or eval then train."""
    return (True, False) if self.random else (None,)

  def __str__(self):
    return self.name


@dataclasses.dataclass(frozen=True)
class Pair:
  """A module and (unless it has none) its function, with the scalars to feed both.

  ``function(**kw)`` runs the function; ``fields`` are the module's other fields and
  ``inputs(kw)`` the arguments of its ``__call__`` (``call_kw`` its keywords);
  ``nnx_kw`` what the NNX module needs besides (``num_features``, ``rngs``, ...).
  ``scalars`` maps each field to its values; ``module_only`` names the fields the
  function does not have (compared between linen and NNX only).
  """

  module: str
  function: Callable[..., Any] | None
  scalars: dict[str, list]
  fields: dict = dataclasses.field(default_factory=dict)
  inputs: Callable[[dict], tuple] | None = None  # kw -> call args (default: the sweep's x)
  call_kw: dict = dataclasses.field(default_factory=dict)
  nnx_kw: Callable[[], dict] = dict
  module_only: frozenset = frozenset()


#: ``Op.arguments`` value for ``mask``: the wrong-type sweep passes it to ``Op.direct``.
MASK_VIA_DIRECT = 'mask via direct'


@dataclasses.dataclass(frozen=True)
class Op:
  """Everything the cross-cutting sweeps need of one public function.

  Required (an entry must say):

  - ``call(x, key)``: one representative call on a channel-last ``x`` of shape
    ``(*batch, H, W, C)`` (H, W >= 12, C = 4) with fixed, valid parameters; ``key`` a PRNG key
    for the random ops' training mode. Export, sharding, empty shapes, magnitudes, jaxprs.
  - ``window``: the largest number of inputs one output of ``call`` combines: inputs up to
    ``finfo.max / window`` have a finite exact result (the magnitude sweep).
  - ``direct(x, **flags)``: a call on ``(2, 8, 8, 3)`` with the op's bool flags as keywords
    (the flag and complex-input sweeps).
  - ``diff``: case id -> :class:`DiffCase`, the differentiable calls (forward mode, second
    order, vmap, linearize), in float64 on tie-free inputs.
  - ``max_like``: case -> ``(jaxpool call on NHWC, PyTorch call on NCHW)`` with PyTorch's
    NaN rule (a window's last NaN wins), or ``None``: not max-like.
  - ``fuzz(x, geometry)``: the geometry fuzzer's call (``geometry`` the shared window,
    strides, padding, dilation, ceil_mode), a string saying why the op is not fuzzed, or
    ``None`` for an op without a ``window``.
  - ``modules``: one :class:`Spec` per linen/NNX class of the op (its configuration and
    the function-level reference).
  - ``scalars``: the scalar-argument sweep's :class:`Pair` s (function, linen and NNX take
    the same values).

  Optional:

  - ``arguments``: each array argument -> a call with it replaced by ``v`` (errors name it);
    :data:`MASK_VIA_DIRECT` for ``mask``.
  - ``tangent_winner``: case -> a call of a max-type op whose tangent must follow the
    gradient's winner at ties and NaN.
  - ``paths``: label -> :class:`Windowed`, the call parametrised by its window.
  - ``whole``: label -> ``(call(x), differentiable)`` for ops without a window (path sweeps).
  - ``masked``: label -> :class:`Masked`, the op with ``mask=`` and its window reduction.
  - ``secondary``: case -> ``(call(x), window)``, paths ``call`` does not take (magnitudes).
  """

  call: Callable[..., Any]
  window: int
  direct: Callable[..., Any]
  diff: dict[str, DiffCase]
  max_like: dict[str, tuple] | None
  fuzz: Callable[..., Any] | str | None
  modules: tuple[Spec, ...]
  scalars: tuple[Pair, ...]
  arguments: dict[str, Any] = dataclasses.field(default_factory=dict)
  tangent_winner: dict[str, Callable[..., Any]] = dataclasses.field(default_factory=dict)
  paths: dict[str, Windowed] = dataclasses.field(default_factory=dict)
  whole: dict[str, tuple] = dataclasses.field(default_factory=dict)
  masked: dict[str, Masked] = dataclasses.field(default_factory=dict)
  secondary: dict[str, tuple] = dataclasses.field(default_factory=dict)
