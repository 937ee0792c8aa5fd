"""Scalar arguments: a function and its linen and NNX modules take the same values.

For every function/module pair and every scalar argument (flags, choices, ``eps``,
``temperature``, ``p``, ``p_max``, sizes, ...), each value -- a Python value, a NumPy
scalar, a concrete 0-d JAX array; good and bad -- goes to the function, to the linen module
(built, then initialised on a tiny input: some checks need the input) and to the NNX module
(built, then called). All three must accept it, or all refuse it with the same exception
type and message. Each value is also held to the rule (``GOOD``/bad), so "all three refuse"
cannot hide a value that should work. Scalars only the modules have (``learnable_p``,
``per_channel``, ``depth``, ``kernel_size``, ...) are compared between linen and NNX.

Scalars that select the computation (flags, choices, ``eps``, sizes) take Python values,
NumPy scalars and concrete 0-d JAX arrays (``jaxpool/_checks.py``); those a function also
takes as arrays (``temperature``, ``p``, ``p_max``) keep its semantics: a number is the
static path, an array the traced (learnable) one, its value unchecked.

Tiny: a (1, 4, 4, 2) input; functions and NNX modules run eagerly, linen modules are traced
with ``jax.eval_shape`` (their checks run at construction and at trace time).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn

C = 2
X = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (1, 4, 4, C)), jnp.float32)
_IDS = (jnp.arange(16) % 2).reshape(1, 4, 4)  # segment_pool's labels for X
KEY = jax.random.key(0)


class Good:
  """A value the argument must accept (plain values must be refused)."""

  def __init__(self, value: Any):
    self.value = value

  def __repr__(self):
    return f'Good({self.value!r})'


def _forms(*values):
  """Good values as Python, NumPy and 0-d JAX: ``_forms(2)`` -> 2, np.int64(2), jnp 2."""
  numpy = {bool: np.bool_, int: np.int64, float: np.float32}
  return [Good(f(v)) for v in values for f in (lambda v: v, numpy[type(v)], jnp.asarray)]


NAN, INF = float('nan'), float('inf')

FLAG = [
  Good(True),
  Good(np.bool_(False)),
  Good(jnp.asarray(True)),
  1,
  'yes',
  None,
  np.int64(0),
  jnp.asarray(1),
]
#: a positive finite number (eps, coeff)
POSITIVE = [
  *_forms(1e-3),
  Good(np.float64(0.5)),
  Good(1),
  Good(jnp.asarray(2)),
  0,
  -1.0,
  NAN,
  INF,
  np.float32(NAN),
  'yes',
  True,
  None,
  jnp.asarray(-1.0),
  jnp.asarray(True),
]
#: soft_pool's temperature: a positive finite number, or a float array of shape () or (C,)
TEMPERATURE = [
  *_forms(0.5),
  Good(np.int64(2)),
  Good(jnp.full((C,), 2.0)),
  0,
  -1.0,
  NAN,
  INF,
  'yes',
  True,
  None,
  jnp.asarray(2),
  jnp.ones(3),
]
#: lp_pool's p: a positive number (inf allowed), or a float scalar array
LP_P = [
  *_forms(2.5),
  Good(np.int64(2)),
  Good(INF),
  0,
  -1.5,
  NAN,
  'yes',
  True,
  None,
  jnp.asarray(2),
  jnp.ones(2),
]
#: global_pool's p / eps / temperature: a positive number, or a float array of shape () or (C,)
GLOBAL_POSITIVE = [
  *_forms(3.0),
  Good(np.int64(2)),
  Good(jnp.full((C,), 3.0)),
  0,
  -1.0,
  NAN,
  'x',
  True,
  jnp.asarray(3),
  jnp.ones(3),
]
#: mixed_pool's p_max: a number in [0, 1], or a float scalar array
PROBABILITY = [
  *_forms(0.25),
  Good(0),
  Good(np.float64(1.0)),
  -0.1,
  1.5,
  NAN,
  'yes',
  True,
  None,
  jnp.asarray(1),
  jnp.ones(2),
]


def choices(*allowed: str) -> list:
  return [
    *(Good(a) for a in allowed),
    Good(np.str_(allowed[-1])),
    'nope',
    allowed[0].upper(),
    1,
    None,
  ]


def ints(*good: int, bad: tuple = (0, -1)) -> list:
  """Sizes: the good ints in every form; the bad ones, floats, bools and strings refused."""
  return [
    *_forms(good[0]),
    *map(Good, good[1:]),
    *bad,
    float(good[0]),
    True,
    str(good[0]),
    jnp.asarray(float(good[0])),
  ]


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
  inputs: Callable[[dict], tuple] = lambda kw: (X,)
  call_kw: dict = dataclasses.field(default_factory=dict)
  nnx_kw: Callable[[], dict] = dict
  module_only: frozenset = frozenset()


def _unpool_inputs(kw):
  del kw
  return jaxpool.max_pool(X, (2, 2), return_indices=True)


def _weights(kw):
  del kw
  return jaxpool.soft_pool(X, (2, 2), return_weights=True)


_P = jnp.asarray([0.5, 0.5])
_U = jnp.asarray([0.25, 0.25])


def _lifted(kw):
  axes = kw.get('axes', (-3, -2))
  try:
    return jaxpool.lift_down_pool(X, _P, _U, axes)
  except (TypeError, ValueError):  # a bad axes value: any valid bands will do
    return jaxpool.lift_down_pool(X, _P, _U)


_EVAL = dict(deterministic=True)
_FEATURES = lambda: dict(num_features=C)
_BOTH = lambda: dict(num_features=C, rngs=nnx.Rngs(0))
_SIZES = lambda: dict(num_features=C, input_size=(4, 4), rngs=nnx.Rngs(0))
W = (2, 2)

PAIRS = [
  # classic
  Pair(
    'MaxPool',
    lambda **kw: jaxpool.max_pool(X, W, **kw),
    dict(
      return_indices=FLAG,
      ceil_mode=FLAG,
      strides=ints(1, 2),
      dilation=ints(2),
      padding=ints(1, bad=(-1, 2)),
    ),
    dict(window=W),
  ),
  Pair('MinPool', lambda **kw: jaxpool.min_pool(X, W, **kw), dict(ceil_mode=FLAG), dict(window=W)),
  Pair(
    'AvgPool',
    lambda **kw: jaxpool.avg_pool(X, W, **kw),
    dict(
      count_include_pad=FLAG, ceil_mode=FLAG, divisor_override=[*ints(3, -2, bad=(0,)), Good(None)]
    ),
    dict(window=W),
  ),
  Pair(
    'LPPool',
    lambda p=2.0, **kw: jaxpool.lp_pool(X, p, W, **kw),
    dict(p=LP_P, ceil_mode=FLAG, learnable_p=FLAG),
    dict(window=W),
    module_only=frozenset({'learnable_p'}),
  ),
  Pair(
    'MaxUnpool',
    lambda **kw: jaxpool.max_unpool(*_unpool_inputs(kw), W, **kw),
    dict(strides=ints(2)),
    dict(window=W),
    _unpool_inputs,
  ),
  # the softmax-weighted family
  Pair(
    'SoftPool',
    lambda **kw: jaxpool.soft_pool(X, W, **kw),
    dict(temperature=TEMPERATURE, return_weights=FLAG, ceil_mode=FLAG, learnable_temperature=FLAG),
    dict(window=W),
    module_only=frozenset({'learnable_temperature'}),
  ),
  Pair(
    'LIP',
    lambda **kw: jaxpool.lip_pool(X, jnp.zeros_like(X), W, **kw),
    dict(
      return_weights=FLAG,
      coeff=POSITIVE,
      logit_window=[Good((3, 3)), Good((1, np.int64(3))), (3,), (0, 3), 3],
    ),
    dict(window=W),
    nnx_kw=_BOTH,
    module_only=frozenset({'coeff', 'logit_window'}),
  ),
  Pair(
    'LIPLogits',
    None,
    dict(
      coeff=POSITIVE,
      eps=POSITIVE,
      kernel_size=[Good((3, 3)), Good((np.int64(1), 3)), (0,), (0, 3), 3, 'ab'],
    ),
    dict(kernel_size=(3, 3)),
    nnx_kw=_BOTH,
    module_only=frozenset({'coeff', 'eps', 'kernel_size'}),
  ),
  Pair(
    'EDSCWPool',
    lambda **kw: jaxpool.edscw_pool(X, W, **kw),
    dict(eps=POSITIVE, return_weights=FLAG),
    dict(window=W),
  ),
  Pair(
    'IDWPool',
    lambda **kw: jaxpool.idw_pool(X, W, **kw),
    dict(eps=POSITIVE, return_weights=FLAG),
    dict(window=W),
  ),
  Pair(
    'AdaPool',
    lambda **kw: jaxpool.ada_pool(X, 0.5, W, **kw),
    dict(
      eps=POSITIVE,
      return_weights=FLAG,
      beta_shape=choices('scalar', 'channel', 'location', 'location_channel'),
    ),
    dict(window=W),
    nnx_kw=lambda: dict(num_features=C, input_size=(4, 4)),
    module_only=frozenset({'beta_shape'}),
  ),
  Pair(
    'AdaUnPool',
    lambda **kw: jaxpool.ada_unpool(*_weights(kw), W, **kw),
    dict(strides=ints(2)),
    dict(window=W),
    _weights,
  ),
  # adaptive, global, channel, pyramid
  Pair(
    'AdaptiveAvgPool',
    lambda **kw: jaxpool.adaptive_avg_pool(X, **kw),
    dict(
      output_size=[
        *ints(2, 3),
        Good((2, None)),
        Good((np.int64(1), jnp.asarray(3))),
        (0, 2),
        (),
        (2.0, 2),
      ]
    ),
  ),
  Pair(
    'AdaptiveMaxPool',
    lambda **kw: jaxpool.adaptive_max_pool(X, **{'output_size': 2, **kw}),
    dict(output_size=ints(2), return_indices=FLAG),
    dict(output_size=2),
  ),
  Pair(
    'SegmentPool',
    lambda num_segments=2, method='avg', **kw: jaxpool.segment_pool(
      X, _IDS, num_segments, method, **kw
    ),
    dict(
      num_segments=ints(2),
      method=choices('sum', 'avg', 'max', 'soft', 'lp', 'gem', 'avgmax', 'catavgmax'),
    ),
    dict(num_segments=2),
    inputs=lambda kw: (X, _IDS),
  ),
  Pair(
    'GlobalPool',
    lambda method='avg', keepdims=False, **kw: jaxpool.global_pool(X, method, keepdims, **kw),
    dict(method=choices('avg', 'max', 'soft', 'lp', 'gem', 'avgmax', 'catavgmax'), keepdims=FLAG),
  ),
  Pair(
    'GlobalPool',
    lambda **kw: jaxpool.global_pool(X, 'gem', **kw),
    dict(p=GLOBAL_POSITIVE, eps=GLOBAL_POSITIVE),
    dict(method='gem'),
  ),
  Pair(
    'GlobalPool',
    lambda **kw: jaxpool.global_pool(X, 'soft', **kw),
    dict(temperature=GLOBAL_POSITIVE),
    dict(method='soft'),
  ),
  Pair(
    'GlobalPool',
    None,
    dict(learnable_p=FLAG, p_shape=choices('scalar', 'channel')),
    dict(method='gem'),
    nnx_kw=_FEATURES,
    module_only=frozenset({'learnable_p', 'p_shape'}),
  ),
  Pair(
    'ChannelPool',
    lambda **kw: jaxpool.channel_pool(X, **kw),
    dict(method=choices('avg', 'max', 'soft'), keepdims=FLAG),
  ),
  Pair(
    'SpatialPyramidPool',
    lambda **kw: jaxpool.spatial_pyramid_pool(X, **kw),
    dict(
      method=choices('avg', 'max'),
      levels=[
        Good((1, 2)),
        Good([1, np.int64(2)]),
        Good((jnp.asarray(1),)),
        Good(((1, 2),)),
        (0,),
        (1, 0),
        'ab',
        3,
        (),
        (1.5,),
      ],
    ),
  ),
  # learned
  Pair(
    'MaxAvgPool',
    lambda **kw: jaxpool.max_avg_pool(X, 0.5, W, **kw),
    dict(ceil_mode=FLAG, alpha_shape=choices('scalar', 'channel', 'location', 'location_channel')),
    dict(window=W),
    nnx_kw=_SIZES,
    module_only=frozenset({'alpha_shape'}),
  ),
  Pair(
    'GatedPool',
    lambda **kw: jaxpool.gated_pool(X, jnp.zeros(W), W, **kw),
    dict(ceil_mode=FLAG, per_channel=FLAG),
    dict(window=W),
    nnx_kw=_BOTH,
    module_only=frozenset({'per_channel'}),
  ),
  Pair(
    'TreePool',
    None,
    dict(per_channel=FLAG, depth=[*ints(0, 2, bad=(-1,))]),
    dict(window=W),
    nnx_kw=_BOTH,
    module_only=frozenset({'per_channel', 'depth'}),
  ),
  Pair(
    'DPP',
    lambda **kw: jaxpool.dpp_pool(X, 1.0, 1.0, W, **kw),
    dict(symmetric=FLAG, eps=POSITIVE, ceil_mode=FLAG),
    dict(window=W),
    nnx_kw=_BOTH,
  ),
  Pair(
    'DPP',
    None,
    dict(guide=choices('lite', 'full'), guide_window=[*ints(3, 1), Good((3, 1)), (3, 3, 3)]),
    dict(window=W, guide='full'),
    nnx_kw=_BOTH,
    module_only=frozenset({'guide', 'guide_window'}),
  ),
  # anti-aliased
  Pair(
    'BlurPool',
    lambda **kw: jaxpool.blur_pool(X, **kw),
    dict(
      pad_mode=choices('constant', 'reflect', 'edge'), count_include_pad=FLAG, strides=ints(2, 1)
    ),
  ),
  Pair(
    'MaxBlurPool',
    lambda **kw: jaxpool.max_blur_pool(X, **kw),
    dict(pad_mode=choices('constant', 'reflect', 'edge'), count_include_pad=FLAG, strides=ints(2)),
  ),
  # lifting
  Pair(
    'LiftDownPool',
    lambda **kw: jaxpool.lift_down_pool(X, _P, _U, **kw),
    dict(
      axes=[
        *_forms(-2),
        Good(1),
        Good((-3, -2)),
        Good((np.int64(-3), jnp.asarray(-2))),
        'HW',
        (),
        (-1,),
        (-2, -2),
        1.5,
        True,
      ]
    ),
    nnx_kw=_BOTH,
  ),
  Pair(
    'LiftDownPool',
    None,
    dict(kernel_size=ints(1, 3)),
    nnx_kw=_BOTH,
    module_only=frozenset({'kernel_size'}),
  ),
  Pair(
    'LiftUpPool',
    lambda **kw: jaxpool.lift_up_pool(*_lifted(kw), _P, _U, **kw),
    dict(axes=[*_forms(-2), Good((-3, -2)), 'HW', (), (-1,), 1.5, True]),
    inputs=_lifted,
    nnx_kw=_BOTH,
  ),
  Pair(
    'LiftUpPool',
    None,
    dict(kernel_size=ints(1, 3)),
    inputs=_lifted,
    nnx_kw=_BOTH,
    module_only=frozenset({'kernel_size'}),
  ),
  # stochastic (evaluation mode: the checks do not depend on it)
  Pair(
    'StochasticPool',
    lambda **kw: jaxpool.stochastic_pool(X, W, **kw),
    dict(ceil_mode=FLAG),
    dict(window=W),
    call_kw=_EVAL,
  ),
  Pair(
    'MixedPool',
    lambda **kw: jaxpool.mixed_pool(X, W, **kw),
    dict(p_max=PROBABILITY, granularity=choices('batch', 'example', 'channel', 'window')),
    dict(window=W),
    call_kw=_EVAL,
  ),
  Pair(
    'S3Pool',
    lambda **kw: jaxpool.s3_pool(X, W, **kw),
    dict(grid=ints(2, 3, bad=(1, 0))),
    dict(window=W),
    call_kw=_EVAL,
  ),
  Pair(
    'FractionalMaxPool',
    lambda **kw: jaxpool.fractional_max_pool(X, W, **{'output_size': 2, **kw}),
    dict(output_size=ints(2, 3, bad=(0, 4)), return_indices=FLAG),
    dict(window=W, output_size=2),
    call_kw=_EVAL,
  ),
  Pair(
    'FractionalMaxPool',
    lambda **kw: jaxpool.fractional_max_pool(X, W, **kw),
    dict(output_ratio=[*_forms(0.5), Good((0.5, 0.75)), 0, 1.5, NAN, True, 'a']),
    dict(window=W),
    call_kw=_EVAL,
  ),
]

#: NNX cases that fail because of jaxpool.nnx (being rewritten): ``(module, field): why``.
#: Remove an entry once NNX mirrors linen (the xfail is strict, so a fixed one fails).
NNX_KNOWN: dict[tuple[str, str], str] = {}

CASES = [(pair, field) for pair in PAIRS for field in pair.scalars]


def _id(case) -> str:
  pair, field = case
  return f'{pair.module}.{field}'


def _outcome(run: Callable[[], Any]):
  """``'ok'``, or the exception's type name and message."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', DeprecationWarning)
      jax.block_until_ready(run())
  except Exception as e:  # compared, not swallowed
    return type(e).__name__, str(e)
  return 'ok'


def _fields(pair: Pair, field: str, value: Any) -> dict:
  return {**pair.fields, field: value}


def _linen(pair: Pair, field: str, value: Any):
  # Arguments are checked when the module is built and traced: eval_shape traces the call
  # (same errors) without compiling or running it.
  kw = _fields(pair, field, value)
  module = getattr(jl, pair.module)(**kw)
  return jax.eval_shape(
    lambda: module.init_with_output(
      {'params': KEY, 'pooling': KEY}, *pair.inputs(kw), **pair.call_kw
    )
  )


def _nnx(pair: Pair, field: str, value: Any):
  kw = _fields(pair, field, value)
  module = getattr(jn, pair.module)(**kw, **pair.nnx_kw())
  return module(*pair.inputs(kw), **pair.call_kw)


def _function(pair: Pair, field: str, value: Any):
  return pair.function(**{field: value})


_CACHE: dict = {}


def _cached(run: Callable[..., Any], pair: Pair, field: str, index: int, value: Any):
  """The outcome of ``run(pair, field, value)``, computed once (the linen and NNX tests share)."""
  key = (run.__name__, PAIRS.index(pair), field, index)
  if key not in _CACHE:
    _CACHE[key] = _outcome(lambda: run(pair, field, value))
  return _CACHE[key]


def _expected(pair: Pair, field: str, value: Any, outcome) -> None:
  good = isinstance(value, Good)
  if good:
    assert outcome == 'ok', f'{pair.module} {field}={value!r} must be accepted; got {outcome}'
  else:
    assert outcome != 'ok', f'{pair.module} {field}={value!r} must be refused'


@pytest.mark.parametrize('case', CASES, ids=_id)
def test_linen_module_takes_the_functions_values(case):
  pair, field = case
  for index, entry in enumerate(pair.scalars[field]):
    value = entry.value if isinstance(entry, Good) else entry
    got = _cached(_linen, pair, field, index, value)
    if pair.function is not None and field not in pair.module_only:
      want = _cached(_function, pair, field, index, value)
      _expected(pair, field, entry, want)
      assert got == want, f'{pair.module} {field}={value!r}: linen {got} but function {want}'
    else:
      _expected(pair, field, entry, got)


def _nnx_cases():
  out = []
  for case in CASES:
    why = NNX_KNOWN.get((case[0].module, case[1]))
    marks = [pytest.mark.xfail(reason=f'NNX: {why}', strict=True)] if why else []
    out.append(pytest.param(case, marks=marks, id=_id(case)))
  return out


@pytest.mark.parametrize('case', _nnx_cases())
def test_nnx_module_takes_the_functions_values(case):
  pair, field = case
  for index, entry in enumerate(pair.scalars[field]):
    value = entry.value if isinstance(entry, Good) else entry
    got = _outcome(lambda: _nnx(pair, field, value))
    if pair.function is not None and field not in pair.module_only:
      want = _cached(_function, pair, field, index, value)
    else:
      want = _cached(_linen, pair, field, index, value)
    assert got == want, f'{pair.module} {field}={value!r}: NNX {got} but expected {want}'


def test_every_module_with_a_scalar_field_is_walked():
  walked = {pair.module for pair in PAIRS}
  assert walked == set(jn.__all__), sorted(set(jn.__all__) - walked)


# --- errors name the user's argument --------------------------------------------------------


def test_lip_logits_errors_name_kernel_size():
  with pytest.raises(ValueError, match=r'kernel_size entries must be >= 1; got \(0,\)'):
    jl.LIPLogits((0,))
  with pytest.raises(TypeError, match='kernel_size must be a sequence'):
    jl.LIPLogits(3)


# --- renamed arguments ----------------------------------------------------------------------


def test_unpool_output_shape_is_a_deprecated_output_size():
  y, w = jaxpool.soft_pool(X, (2, 2), return_weights=True)
  want = jaxpool.weighted_unpool(y, w, (2, 2), output_size=(4, 4))
  for unpool in (jaxpool.weighted_unpool, jaxpool.ada_unpool):
    with pytest.warns(DeprecationWarning, match='output_shape= is deprecated, use output_size='):
      got = unpool(y, w, (2, 2), output_shape=(4, 4))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match='got both output_size=.* and its old name output_shape='):
      unpool(y, w, (2, 2), output_size=(4, 4), output_shape=(4, 4))
  module = jl.AdaUnPool((2, 2))
  with pytest.warns(DeprecationWarning, match='AdaUnPool: output_shape= is deprecated'):
    got = module.apply({}, y, w, output_shape=(4, 4))
  np.testing.assert_array_equal(got, want)
  with pytest.raises(TypeError, match='AdaUnPool got both output_size='):
    module.apply({}, y, w, output_size=(4, 4), output_shape=(4, 4))


def test_lip_logits_epsilon_is_a_deprecated_eps():
  with pytest.warns(DeprecationWarning, match='LIPLogits: epsilon= is deprecated, use eps='):
    old = jl.LIPLogits((3, 3), epsilon=1e-3)
  assert old.eps == 1e-3
  new = jl.LIPLogits((3, 3), eps=1e-3)
  x = X * jnp.arange(16.0).reshape(1, 4, 4, 1)
  variables = new.init(KEY, x)
  variables = jax.tree.map(lambda v: v + 0.1, variables)  # a non-zero conv: eps matters
  with warnings.catch_warnings():
    warnings.simplefilter('error', DeprecationWarning)  # a resolved module does not warn again
    np.testing.assert_array_equal(old.apply(variables, x), new.apply(variables, x))
    assert not math.isclose(
      float(jnp.sum(jl.LIPLogits((3, 3)).apply(variables, x))),
      float(jnp.sum(new.apply(variables, x))),
    )
  with pytest.raises(TypeError, match='LIPLogits got both eps=0.001 and its old name epsilon='):
    jl.LIPLogits((3, 3), eps=1e-3, epsilon=1e-4)


def test_unpool_output_sizes_take_concrete_jax_ints_as_every_size_does():
  x = jnp.arange(32.0).reshape(1, 4, 4, 2)
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  sizes = ((4, 4), (jnp.asarray(4), np.int64(4)), [jnp.asarray(4), 4])
  outs = [jaxpool.max_unpool(y, idx, (2, 2), output_size=s) for s in sizes]
  y, w = jaxpool.soft_pool(x, (2, 2), return_weights=True)
  outs += [jaxpool.weighted_unpool(y, w, (2, 2), output_size=s) for s in sizes]
  for out in outs:
    assert out.shape == x.shape
  with pytest.raises(TypeError, match='output_size must be a sequence of ints'):
    jaxpool.max_unpool(y, idx, (2, 2), output_size=(jnp.asarray(4.0), 4))


# --- one meaning whatever the form: Python, NumPy and 0-d JAX scalars -------------------

_TIED = jnp.asarray(
  np.array([-4.0, 2.0, 0.5, 3.0, -3.0, 1.0, 3.0, -1.0]).reshape(1, 2, 4, 1), jnp.float32
)  # a tie |3| = |-3| = 3 and 3 = 3, a dominant negative value

#: An op with one array-or-number argument: ``call(x, value)`` and the values to try.
FORMS = {
  'lp_pool p': (lambda x, v: jaxpool.lp_pool(x, v, (2, 2)), [1.0, 2.0, 3.0, np.inf]),
  'global_pool lp p': (lambda x, v: jaxpool.global_pool(x, 'lp', p=v), [2.0, 3.0, np.inf]),
  'global_pool gem p': (lambda x, v: jaxpool.global_pool(jnp.abs(x), 'gem', p=v), [1.0, 3.0]),
  'global_pool soft temperature': (
    lambda x, v: jaxpool.global_pool(x, 'soft', temperature=v),
    [0.5, 2.0],
  ),
  'soft_pool temperature': (lambda x, v: jaxpool.soft_pool(x, (2, 2), temperature=v), [0.5, 3.0]),
  'ada_pool beta': (lambda x, v: jaxpool.ada_pool(x, v, (2, 2)), [0.0, 0.3, 1.0]),
  'max_avg_pool alpha': (lambda x, v: jaxpool.max_avg_pool(x, v, (2, 2)), [0.0, 0.3, 1.0]),
  'mixed_pool p_max': (lambda x, v: jaxpool.mixed_pool(x, (2, 2), p_max=v), [0.0, 0.3, 1.0]),
}


@pytest.mark.parametrize('case', sorted(FORMS))
def test_python_numpy_and_jax_scalars_give_one_value_and_gradient(case):
  call, values = FORMS[case]
  for v in values:
    results = {}
    for form, value in (
      ('python', float(v)),
      ('numpy', np.float32(v)),
      ('jax', jnp.float32(v)),
    ):
      y, vjp = jax.vjp(lambda a, value=value: call(a, value), _TIED)
      results[form] = (np.asarray(y), np.asarray(vjp(jnp.ones_like(y))[0]))
    for form in ('numpy', 'jax'):
      for part, a, b in zip(('value', 'gradient'), results[form], results['python']):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f'{case}={v} {form} {part}')


@pytest.mark.parametrize('form', [float, np.float32, np.float64, jnp.float32], ids=str)
def test_p_inf_follows_the_first_maximum_of_abs_x_in_every_form(form):
  """The case of issue 26: a NumPy inf once took the traced path and split the tie."""
  x = jnp.asarray([-4.0, 2.0, 4.0, 0.5, 4.0, -3.0, -4.0, 0.0], jnp.float32).reshape(1, 2, 4, 1)
  p = form(np.inf)
  g = jax.grad(lambda a: jnp.sum(jaxpool.global_pool(a, 'lp', p=p)))(x)
  np.testing.assert_array_equal(g.reshape(-1), [-1, 0, 0, 0, 0, 0, 0, 0])
  g = jax.grad(lambda a: jnp.sum(jaxpool.lp_pool(a, p, (2, 2))))(x)
  # windows [-4, 2, 4, -3] and [4, 0.5, -4, 0]: |x| = 4 tied in each, the first wins
  np.testing.assert_array_equal(g.reshape(-1), [-1, 0, 1, 0, 0, 0, 0, 0])
