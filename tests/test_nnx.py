"""The Flax NNX modules: every class against its function and against its linen module (the walk
over tests/module_catalogue.py), then what only NNX has: training with nnx.Optimizer, split/merge,
rng handling, NNX-only arguments, fields as plain attributes.
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import subprocess
import sys
import typing
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn
from jaxpool.nnx._base import freeze
from tests.module_catalogue import (
  BAD_CONFIGS,
  KEY,
  SPEC,
  SPECS,
  assert_close,
  check_dtype,
  linen_fields,
  linen_module,
  linen_run,
  load_params,
  module_input,
  nnx_module,
  nnx_params,
  public_classes,
)

X = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 3)), jnp.float32)
XPOS = jnp.abs(X) + 0.1


# --- every module: the function's numbers, linen's fields, errors and numbers --------------
def test_linen_and_nnx_have_the_same_classes():
  assert public_classes(jl, nn.Module) == public_classes(jn, nnx.Module)


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_nnx_module(spec):
  module = nnx_module(spec)
  x = module_input(positive=spec.positive)
  args = spec.args(x)
  params = nnx_params(module)
  assert_close(module(*args, **spec.init_kw), spec.expected(x, params, None))
  xb = x.astype(jnp.bfloat16)
  for deterministic in spec.modes:
    if deterministic is None:
      call = nnx.jit(lambda m, *a: m(*a))
    else:  # deterministic is static (Python control flow); the key is traced
      call = nnx.jit(lambda m, *a, d=deterministic: m(*a, deterministic=d, rngs=KEY))
    out = call(module, *args)
    assert_close(out, spec.expected(x, params, KEY if deterministic is False else None))
    check_dtype(call(module, *spec.args(xb)), jnp.bfloat16, None if deterministic is False else out)


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_linen_and_nnx_agree_for_the_same_parameters(spec):
  x = module_input(positive=spec.positive)
  args = spec.args(x)
  lin = linen_module(spec)
  variables = lin.init(jax.random.key(1), *args, **spec.init_kw)
  mod = nnx_module(spec)
  params = variables.get('params', {})
  # Same parameter names and shapes; deterministic initial values are equal too.
  init = nnx_params(mod)
  assert jax.tree.structure(init) == jax.tree.structure(params)
  assert jax.tree.map(jnp.shape, init) == jax.tree.map(jnp.shape, params)
  if not spec.random_init:
    assert_close(init, params, rtol=0, atol=0)
  # Perturbed, so every parameter matters, then copied into the NNX module.
  keys = iter(jax.random.split(jax.random.key(2), len(jax.tree.leaves(params)) or 1))
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(next(keys), p.shape), params)
  load_params(mod, params)
  variables = {'params': params}
  for deterministic in spec.modes:
    want, key = linen_run(spec, lin, variables, args, deterministic)
    kw = {} if deterministic is None else dict(deterministic=deterministic, rngs=key)
    assert_close(mod(*args, **kw), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', sorted(SPEC))
def test_nnx_fields_are_linen_fields(name):
  """Same names, order and defaults; NNX's extra arguments are keyword-only."""
  params = list(inspect.signature(getattr(jn, name).__init__).parameters.values())[1:]
  positional = [
    (p.name, dataclasses.MISSING if p.default is p.empty else p.default)
    for p in params
    if p.kind == p.POSITIONAL_OR_KEYWORD
  ]
  assert positional == linen_fields(getattr(jl, name))
  extras = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
  assert extras <= {'num_features', 'input_size', 'rngs'}


@pytest.mark.parametrize(
  'name,fields,error,pattern', BAD_CONFIGS, ids=[f'{c[0]}-{list(c[1])[-1]}' for c in BAD_CONFIGS]
)
def test_impossible_configurations_fail_at_construction_in_both_apis(name, fields, error, pattern):
  with pytest.raises(error, match=pattern):
    getattr(jl, name)(**fields)
  with pytest.raises(error, match=pattern):
    getattr(jn, name)(**fields)


# --- a training step moves every learned pooling parameter --------------------------------

#: (name, module factory, input, parameter paths the steps must move[, SGD learning rate])
LEARNED = [
  ('LPPool', lambda: jn.LPPool((2, 2), p=2.0, learnable_p=True), XPOS, [('p',)]),
  ('SoftPool', lambda: jn.SoftPool((2, 2), learnable_temperature=True), X, [('log_temperature',)]),
  ('AdaPool', lambda: jn.AdaPool((2, 2), beta_shape='channel', num_features=3), X, [('theta',)]),
  (
    'AdaPool-location',
    lambda: jn.AdaPool((2, 2), beta_shape='location', input_size=(8, 8)),
    X,
    [('theta',)],
  ),
  # LIP's conv starts at zero, so its normalised output is 0 and the norm's scale has no
  # gradient at the first step; the conv and the bias move. Instance norm of an all-zero
  # map makes the first steps steep (gradients ~ 1 / sqrt(eps)): a small learning rate.
  (
    'LIP',
    lambda: jn.LIP((3, 3), 2, 1, num_features=3),
    X,
    [('logits', 'conv', 'kernel'), ('logits', 'bias')],
    1e-6,
  ),
  (
    'MaxAvgPool',
    lambda: jn.MaxAvgPool((2, 2), alpha_shape='channel', num_features=3),
    X,
    [('alpha_logit',)],
  ),
  ('GatedPool', lambda: jn.GatedPool((2, 2), rngs=nnx.Rngs(0)), X, [('gate',)]),
  (
    'TreePool',
    lambda: jn.TreePool((2, 2), depth=2, rngs=nnx.Rngs(0)),
    X,
    [('leaves',), ('gates',)],
  ),
  (
    'DPP',
    lambda: jn.DPP((2, 2), guide='full', num_features=3),
    X,
    [('log_alpha',), ('log_lam',), ('guide_kernel',), ('guide_bias',)],
  ),
  ('GlobalPool', lambda: jn.GlobalPool('gem', learnable_p=True), XPOS, [('p',)]),
  (
    'LiftDownPool',
    lambda: jn.LiftDownPool(num_features=3, rngs=nnx.Rngs(0)),
    X,
    [('predict', 'conv_k', 'kernel'), ('update', 'conv_1', 'bias')],
  ),
]


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return np.asarray(tree)


def _loss(model, x, target):
  out = jax.tree.leaves(model(x))
  return sum(jnp.mean((o - t) ** 2) for o, t in zip(out, target))


@nnx.jit
def _train_step(model, optimizer, x, target):
  loss, grads = nnx.value_and_grad(_loss)(model, x, target)
  optimizer.update(model, grads)
  return loss


@pytest.mark.parametrize(
  'name,build,x,moved,lr', [(*c, 1e-2)[:5] for c in LEARNED], ids=[c[0] for c in LEARNED]
)
def test_optimizer_step_moves_learned_pooling_parameters(name, build, x, moved, lr):
  model = build()
  target = [0.5 * o + 0.3 for o in jax.tree.leaves(model(x))]
  optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
  before = nnx.state(model, nnx.Param).to_pure_dict()
  losses = [float(_train_step(model, optimizer, x, target)) for _ in range(3)]
  after = nnx.state(model, nnx.Param).to_pure_dict()
  for path in moved:
    assert np.all(np.isfinite(_get(after, path)))
    assert not np.array_equal(_get(before, path), _get(after, path)), f'{name}: {path} stuck'
  assert losses[-1] < losses[0], (name, losses)
  assert int(optimizer.step[...]) == 3


def test_optimizer_only_sees_params_and_pooling_modules_inside_a_model():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
      self.pool = jn.AdaPool((2, 2), beta_shape='channel', num_features=4)
      self.drop = jn.MixedPool((2, 2), rngs=rngs)
      self.head = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
      h = self.drop(jax.nn.relu(self.pool(self.conv(x))))
      return self.head(h.mean((1, 2)))

  model = Net(nnx.Rngs(0))
  model.train()
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  theta = np.asarray(model.pool.theta[...])
  count = int(model.drop.rngs.count[...])

  @nnx.jit
  def step(model, optimizer, x):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  step(model, optimizer, XPOS)
  step(model, optimizer, XPOS)
  assert not np.allclose(theta, model.pool.theta[...])
  assert int(model.drop.rngs.count[...]) == count + 2  # a fresh key per training step
  params = nnx.state(model, nnx.Param).to_pure_dict()
  assert set(params) == {'conv', 'pool', 'head'}


# --- split / merge and jit ---------------------------------------------------------------


def test_split_merge_round_trip_and_functional_jit():
  model = jn.DPP((2, 2), guide='full', num_features=3)
  graphdef, state = nnx.split(model)
  state = jax.tree.map(lambda p: p + 0.1, state)
  merged = nnx.merge(graphdef, state)
  y = merged(X)
  assert not np.allclose(y, model(X))  # the merged copy has its own (shifted) parameters

  @jax.jit
  def apply(state, x):
    return nnx.merge(graphdef, state)(x)

  np.testing.assert_allclose(apply(state, X), y, rtol=1e-5, atol=1e-6)


def test_split_merge_threads_the_rng_state_of_random_modules():
  pool = jn.MixedPool((2, 2), deterministic=False, rngs=nnx.Rngs(3))
  graphdef, state = nnx.split(pool)

  @jax.jit
  def apply(state, x):  # a pure function of (state, x): the rng count is state
    module = nnx.merge(graphdef, state)
    return module(x), nnx.state(module)

  first, state1 = apply(state, X)
  second, _ = apply(state1, X)
  np.testing.assert_array_equal(apply(state, X)[0], first)
  assert not np.array_equal(first, second)
  np.testing.assert_array_equal(pool(X), first)  # the live module was not advanced by jit
  np.testing.assert_array_equal(pool(X), second)


def test_lift_up_pool_shares_the_down_pool_and_inverts_it():
  class AutoEncoder(nnx.Module):
    def __init__(self, rngs):
      self.down = jn.LiftDownPool(num_features=3, rngs=rngs)
      self.up = jn.LiftUpPool(down=self.down)

    def __call__(self, x):
      return self.up(*self.down(x))

  model = AutoEncoder(nnx.Rngs(0))
  np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(model, X), X, atol=1e-5)
  params = nnx.state(model, nnx.Param).to_pure_dict()
  assert set(params) == {'down'}  # one P/U pair, shared


# --- random modules: Flax NNX Dropout's conventions --------------------------------------


def test_train_eval_and_view_switch_the_mode():
  model = nnx.Sequential(jn.StochasticPool((2, 2), rngs=nnx.Rngs(0)))
  evaluation = jaxpool.stochastic_pool(XPOS, (2, 2))
  with pytest.raises(ValueError, match='No deterministic argument was given to StochasticPool'):
    model(XPOS)
  model.eval()
  np.testing.assert_array_equal(model(XPOS), evaluation)
  model.train()
  assert not np.allclose(model(XPOS), evaluation)
  np.testing.assert_array_equal(nnx.view(model, deterministic=True)(XPOS), evaluation)
  # The call's argument wins over the attribute.
  np.testing.assert_array_equal(model.layers[0](XPOS, deterministic=True), evaluation)


def test_pooling_stream_falls_back_to_default():
  def draw(rngs):
    return jn.FractionalMaxPool((2, 2), output_size=5, deterministic=False, rngs=rngs)(X)

  np.testing.assert_array_equal(draw(nnx.Rngs(pooling=4)), draw(nnx.Rngs(4)))
  np.testing.assert_array_equal(draw(nnx.Rngs(0, pooling=4)), draw(nnx.Rngs(4)))
  assert not np.array_equal(draw(nnx.Rngs(0, pooling=4)), draw(nnx.Rngs(0)))


def test_each_call_draws_a_fresh_key_reproducibly_also_under_jit():
  call = nnx.jit(lambda m, x: m(x))
  for apply in (lambda m, x: m(x), call):
    a = jn.S3Pool((2, 2), deterministic=False, rngs=nnx.Rngs(1))
    b = jn.S3Pool((2, 2), deterministic=False, rngs=nnx.Rngs(1))
    first, second = apply(a, X), apply(a, X)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, apply(b, X))
    np.testing.assert_array_equal(second, apply(b, X))


def test_call_time_rngs_override_the_module_stream():
  pool = jn.MixedPool((2, 2), granularity='window', deterministic=False)  # no rngs of its own
  key = jax.random.key(5)
  want = jaxpool.mixed_pool(X, (2, 2), key=key, granularity='window')
  np.testing.assert_array_equal(pool(X, rngs=key), want)
  first_key = nnx.Rngs(pooling=key)['pooling']()  # an nnx.Rngs gives its stream's next key
  np.testing.assert_array_equal(
    pool(X, rngs=nnx.Rngs(pooling=key)),
    jaxpool.mixed_pool(X, (2, 2), key=first_key, granularity='window'),
  )
  with pytest.raises(ValueError, match='MixedPool is in training mode .* but has no rngs'):
    pool(X)
  with pytest.raises(TypeError, match='rngs must be an nnx.Rngs, an nnx.RngStream or a key'):
    pool(X, rngs=5)
  with pytest.raises(TypeError, match=r'deterministic must be a bool; got 1'):
    pool(X, deterministic=1)
  with pytest.raises(TypeError, match='rngs must be an nnx.Rngs, an nnx.RngStream or None'):
    jn.StochasticPool((2, 2), rngs=0)


def test_fractional_samples_reproduce_the_function():
  samples = jax.random.uniform(jax.random.key(0), (2, 3, 2))
  pool = jn.FractionalMaxPool((2, 2), output_size=(5, 5), return_indices=True)
  got = pool(X, samples=samples)
  want = jaxpool.fractional_max_pool(X, (2, 2), (5, 5), samples=samples, return_indices=True)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)


# --- shapes: unbatched and two batch dims ------------------------------------------------


@pytest.mark.parametrize(
  'build',
  [
    lambda: jn.LIP((3, 3), 2, 1, num_features=3),
    lambda: jn.DPP((2, 2), guide='full', num_features=3),
    lambda: jn.AdaPool((2, 2), beta_shape='location_channel', num_features=3, input_size=(8, 8)),
    lambda: jn.LiftDownPool(num_features=3, rngs=nnx.Rngs(0)),
  ],
  ids=['LIP', 'DPP', 'AdaPool', 'LiftDownPool'],
)
def test_unbatched_and_two_batch_dims(build):
  module = build()
  nnx.update(module, jax.tree.map(lambda p: p + 0.1, nnx.state(module, nnx.Param)))
  batched = module(X)
  for i in range(2):
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-6), module(X[i]), batched
    )
  two = module(X.reshape(1, 2, 8, 8, 3))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-6), two, batched)


# --- what NNX needs at construction ------------------------------------------------------


@pytest.mark.parametrize(
  'build,error,pattern',
  [
    (
      lambda: jn.AdaPool((2, 2), beta_shape='channel'),
      ValueError,
      r"AdaPool needs num_features \(the channel count C\) for beta_shape='channel'",
    ),
    (
      lambda: jn.AdaPool((2, 2), beta_shape='location', num_features=3),
      ValueError,
      r'AdaPool needs input_size \(the spatial size of its input, 2 ints\)',
    ),
    (
      lambda: jn.AdaPool((2, 2), beta_shape='location', input_size=(8,)),
      ValueError,
      'input_size must be an int or have 2 entries',
    ),
    (
      lambda: jn.AdaPool((3, 3), beta_shape='location', input_size=(2, 2)),
      ValueError,
      'larger than the padded input',
    ),
    (
      lambda: jn.MaxAvgPool((2, 2), alpha_shape='location_channel', input_size=(8, 8)),
      ValueError,
      'MaxAvgPool needs num_features',
    ),
    (lambda: jn.DPP((2, 2)), ValueError, 'DPP needs num_features'),
    (lambda: jn.DPP((2, 2), num_features=0), ValueError, 'num_features must be a positive int'),
    (lambda: jn.LIP((2, 2)), ValueError, r'LIP needs num_features .* default logit module'),
    (lambda: jn.LIP((2, 2), logit_module=3), TypeError, 'logit_module must be a callable'),
    (
      lambda: jn.GatedPool((2, 2)),
      TypeError,
      r"GatedPool: the initialiser of 'gate' draws random values; pass rngs",
    ),
    (
      lambda: jn.GatedPool((2, 2), per_channel=True, rngs=nnx.Rngs(0)),
      ValueError,
      'GatedPool needs num_features',
    ),
    (
      lambda: jn.TreePool((2, 2), num_features=2.5, rngs=nnx.Rngs(0)),
      ValueError,
      'num_features must be a positive int or None',
    ),
    (
      lambda: jn.GlobalPool('gem', learnable_p=True, p_shape='channel'),
      ValueError,
      'GlobalPool needs num_features',
    ),
    (lambda: jn.LiftDownPool(num_features=3), TypeError, 'LiftOperator needs rngs=nnx.Rngs'),
    (lambda: jn.LiftDownPool(rngs=nnx.Rngs(0)), ValueError, 'LiftOperator needs num_features'),
    (
      lambda: jn.LiftUpPool(down=jl.LiftDownPool()),
      TypeError,
      'down must be a jaxpool.nnx.LiftDownPool or None',
    ),
    (
      lambda: jn.LiftUpPool(down=jn.LiftDownPool(num_features=1, rngs=nnx.Rngs(0)), kernel_size=5),
      ValueError,
      'kernel_size=5 conflicts with down',
    ),
  ],
)
def test_nnx_construction_errors(build, error, pattern):
  with pytest.raises(error, match=pattern):
    build()


@pytest.mark.parametrize(
  'build,x,pattern',
  [
    (
      lambda: jn.AdaPool((2, 2), beta_shape='location', input_size=(8, 8)),
      X[:, :6, :6],
      r"AdaPool: parameter 'theta' has shape \(4, 4, 1\) but this input .* needs \(3, 3, 1\)",
    ),
    (lambda: jn.DPP((2, 2), num_features=4), X, r"DPP: parameter 'log_alpha' has shape \(4,\)"),
    (
      lambda: jn.GatedPool((2, 2), per_channel=True, num_features=2, rngs=nnx.Rngs(0)),
      X,
      r"GatedPool: parameter 'gate' has shape \(2, 2, 2\)",
    ),
    (
      lambda: jn.GlobalPool('lp', learnable_p=True, p_shape='channel', num_features=2),
      X,
      r"GlobalPool: parameter 'p' has shape \(2,\)",
    ),
  ],
)
def test_call_on_an_input_the_parameters_do_not_fit(build, x, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()(x)


def test_deterministic_initialisers_need_no_rngs_and_random_ones_use_them():
  a = jn.TreePool((2, 2), rngs=nnx.Rngs(0))
  b = jn.TreePool((2, 2), rngs=nnx.Rngs(0))
  c = jn.TreePool((2, 2), rngs=nnx.Rngs(1))
  np.testing.assert_array_equal(a.leaves[...], b.leaves[...])
  assert not np.array_equal(a.leaves[...], c.leaves[...])
  # N(0, 0.1**2), as the linen module (the author's prototxt).
  big = jn.GatedPool((32, 32), rngs=nnx.Rngs(0))
  assert abs(float(jnp.std(big.gate[...])) - 0.1) < 0.01
  np.testing.assert_array_equal(jn.MaxAvgPool((2, 2)).alpha_logit[...], 0.0)


def test_fields_are_hashable_static_data():
  pool = jn.MaxPool([3, 3], strides=[2, 2], padding=[[1, 1], [1, 1]])
  assert pool.window == (3, 3) and pool.padding == ((1, 1), (1, 1))
  graphdef, _ = nnx.split(pool)
  hash(graphdef)
  np.testing.assert_array_equal(
    nnx.jit(lambda m, x: m(x))(pool, X), jaxpool.max_pool(X, (3, 3), 2, 1)
  )


def test_random_initial_values_follow_the_linen_distributions():
  """Same initialisers, different keys: compare the spread of LiftPool's convs and gates."""
  c = 32
  x = jnp.zeros((1, 4, 4, c))
  lin = jl.LiftDownPool().init(jax.random.key(0), x)['params']
  mod = nnx.state(jn.LiftDownPool(num_features=c, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()
  for conv in ('conv_k', 'conv_1'):
    a = np.std(lin['predict'][conv]['kernel'])
    b = np.std(mod['predict'][conv]['kernel'])
    assert abs(a / b - 1) < 0.15, (conv, a, b)
    assert np.all(mod['predict'][conv]['bias'] == 0)
  gate = jl.GatedPool((16, 16)).init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))['params']
  assert (
    abs(np.std(gate['gate']) / np.std(jn.GatedPool((16, 16), rngs=nnx.Rngs(0)).gate[...]) - 1)
    < 0.15
  )


# --- fields: plain attributes, checked as linen checks them, no linen module needed --------

PACKAGE = pathlib.Path(jaxpool.__file__).parent


def _fields(cls) -> list[inspect.Parameter]:
  """The fields: ``__init__``'s positional-or-keyword parameters (NNX's extras are keyword-only)."""
  return [
    p
    for p in inspect.signature(cls.__init__).parameters.values()
    if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != 'self'
  ]


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_fields_are_plain_typed_attributes(spec):
  """Each field is assigned in ``__init__``: ``vars()`` has it, with its type hint."""
  cls = getattr(jn, spec.name)
  module = nnx_module(spec)
  attributes = vars(module)
  hints = typing.get_type_hints(cls.__init__)
  for p in _fields(cls):
    assert p.name in hints, (spec.name, p.name)
    assert p.name in attributes, (spec.name, p.name)
    if not isinstance(attributes[p.name], nnx.Param):  # a learnable field starts at its value
      assert attributes[p.name] == freeze(spec.fields.get(p.name, p.default)), (spec.name, p.name)


def test_concrete_array_fields_are_stored_as_python_values():
  """What the checks accept as a concrete 0-d array stays static data under ``nnx.jit``."""
  pool = jn.AvgPool(
    (2, 2), strides=jnp.asarray(2), ceil_mode=jnp.asarray(True), count_include_pad=np.bool_(False)
  )
  assert type(pool.strides) is int and type(pool.ceil_mode) is bool
  assert type(pool.count_include_pad) is bool
  want = jaxpool.avg_pool(X, (2, 2), 2, ceil_mode=True, count_include_pad=False)
  np.testing.assert_array_equal(nnx.jit(lambda m, x: m(x))(pool, X), want)


def test_nnx_does_not_import_or_name_the_linen_modules():
  for path in sorted((PACKAGE / 'nnx').glob('*.py')):
    text = path.read_text()
    assert 'jaxpool.linen' not in text and 'from jaxpool import linen' not in text, path.name
  for family in ('linen', 'nnx'):
    for path in sorted((PACKAGE / family).glob('*.py')):
      assert 'protected-access' not in path.read_text(), f'{family}/{path.name}'
  code = (
    'import sys, jaxpool.nnx as jn\n'
    'jn.MaxPool((2, 2)); jn.LIP((2, 2), num_features=2); jn.DPP((2, 2), num_features=2)\n'
    "print(sorted(m for m in sys.modules if m.startswith('jaxpool.linen')))"
  )
  out = subprocess.run(
    [sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=300
  )
  assert out.stdout.strip() == '[]', out.stdout


def _outcome(build):
  """``'ok'``, or the exception's type and message."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', DeprecationWarning)
      build()
  except Exception as e:  # compared, not swallowed
    return type(e).__name__, str(e)
  return 'ok'


#: Bad values of the geometry fields (each module takes those it has).
BAD_GEOMETRY = [
  ('window', 3),
  ('window', ()),
  ('window', (0, 2)),
  ('window', (2, 2.0)),
  ('window', '22'),
  ('strides', 0),
  ('strides', (1, 2, 3)),
  ('strides', 1.5),
  ('strides', (2, True)),
  ('padding', 'FULL'),
  ('padding', 5),
  ('padding', -1),
  ('padding', ((1, 1),)),
  ('padding', ((0, 1), (1, 2, 3))),
  ('padding', 1.0),
  ('dilation', 0),
  ('dilation', (1,)),
  ('dilation', 'x'),
  ('ceil_mode', 'yes'),
  ('ceil_mode', 1),
  ('ceil_mode', None),
]


@pytest.mark.parametrize(
  'spec', [s for s in SPECS if 'window' in {p.name for p in _fields(getattr(jn, s.name))}], ids=str
)
def test_geometry_field_errors_are_the_linen_errors(spec):
  """Same exception type and message as the linen module, for every bad geometry value."""
  names = {p.name for p in _fields(getattr(jn, spec.name))}
  kw = dict(spec.nnx_kw)
  refused = 0
  for name, value in BAD_GEOMETRY:
    if name not in names:
      continue
    fields = {**spec.fields, name: value}
    if 'rngs' in kw:
      kw['rngs'] = nnx.Rngs(0)
    want = _outcome(lambda: getattr(jl, spec.name)(**fields))
    got = _outcome(lambda: getattr(jn, spec.name)(**fields, **kw))
    assert got == want, f'{spec.name} {name}={value!r}: NNX {got} but linen {want}'
    refused += want != 'ok'
  assert refused >= 5, spec.name


#: NNX-only keyword arguments: ``(argument, bad value, exception, message)``.
BAD_NNX_ONLY = [
  ('num_features', 0, ValueError, r'num_features must be a positive int'),
  ('num_features', 2.0, ValueError, r'num_features must be a positive int'),
  ('num_features', True, ValueError, r'num_features must be a positive int'),
  ('num_features', '3', ValueError, r'num_features must be a positive int'),
  ('input_size', '8x8', TypeError, r'input_size must be an int or a sequence of 2 ints'),
  ('input_size', (8,), ValueError, r'input_size must be an int or have 2 entries'),
  ('input_size', (0, 8), ValueError, r'input_size entries must be >= 1'),
  ('rngs', 0, TypeError, r'rngs must be an nnx\.Rngs|needs rngs=nnx\.Rngs'),
  ('rngs', jax.random.key(0), TypeError, r'rngs must be an nnx\.Rngs|needs rngs=nnx\.Rngs'),
]


def _nnx_only_cases():
  cases = []
  for spec in SPECS:
    params = inspect.signature(getattr(jn, spec.name).__init__).parameters
    for name, value, error, pattern in BAD_NNX_ONLY:
      if name in params and params[name].kind == inspect.Parameter.KEYWORD_ONLY:
        cases.append(
          pytest.param(spec, name, value, error, pattern, id=f'{spec.name}-{name}={value!r}')
        )
  return cases


@pytest.mark.parametrize('spec,name,value,error,pattern', _nnx_only_cases())
def test_nnx_only_arguments_are_checked_even_where_unused(spec, name, value, error, pattern):
  kw = {**spec.nnx_kw, name: value}
  if name != 'rngs' and 'rngs' in kw:
    kw['rngs'] = nnx.Rngs(kw['rngs'])
  with pytest.raises(error, match=pattern):
    getattr(jn, spec.name)(**spec.fields, **kw)


def test_nnx_only_arguments_come_after_the_field_checks():
  """A bad field is reported as linen reports it, whatever the NNX-only arguments."""
  with pytest.raises(ValueError, match='beta_shape must be one of'):
    jn.AdaPool((2, 2), beta_shape='pixel')
  with pytest.raises(TypeError, match='window must be a sequence'):
    jn.LIP(2, logit_module=3)
  with pytest.raises(ValueError, match='guide must be one of'):
    jn.DPP((2, 2), guide='heavy', num_features=0, rngs=0)


def test_lip_logits_epsilon_is_the_deprecated_name_of_eps():
  with pytest.warns(DeprecationWarning, match='LIPLogits: epsilon= is deprecated, use eps='):
    old = jn.LIPLogits((3, 3), epsilon=1e-3, num_features=3)
  new = jn.LIPLogits((3, 3), eps=1e-3, num_features=3)
  assert old.eps == new.eps == 1e-3
  assert jn.LIPLogits((3, 3), 12.0, 1e-4, num_features=3).eps == 1e-4  # eps keeps the place
  nnx.update(old, jax.tree.map(lambda p: p + 0.1, nnx.state(old, nnx.Param)))
  nnx.update(new, jax.tree.map(lambda p: p + 0.1, nnx.state(new, nnx.Param)))
  np.testing.assert_array_equal(old(X), new(X))
  with pytest.raises(TypeError, match='LIPLogits got both eps=0.001 and its old name epsilon='):
    jn.LIPLogits((3, 3), eps=1e-3, epsilon=1e-3, num_features=3)
  with pytest.raises(ValueError, match='eps must be a positive'), pytest.warns(DeprecationWarning):
    jn.LIPLogits((3, 3), epsilon=0.0, num_features=3)


def test_ada_unpool_output_shape_is_the_deprecated_name_of_output_size():
  y, weights = jaxpool.ada_pool(X[:, :7, :7], 0.5, (2, 2), return_weights=True)
  unpool = jn.AdaUnPool((2, 2))
  want = unpool(y, weights, (7, 7))
  assert want.shape == (2, 7, 7, 3)
  with pytest.warns(DeprecationWarning, match='AdaUnPool: output_shape= is deprecated'):
    got = unpool(y, weights, output_shape=(7, 7))
  np.testing.assert_array_equal(got, want)
  with pytest.raises(TypeError, match='AdaUnPool got both output_size'):
    unpool(y, weights, (7, 7), output_shape=(7, 7))


@pytest.mark.parametrize(
  'temperature', [2.0, np.asarray([0.5, 1.0, 2.0], np.float32)], ids=['float', 'array']
)
def test_learnable_temperature_starts_at_its_log_in_both_apis(temperature):
  t = jnp.asarray(temperature) if isinstance(temperature, np.ndarray) else temperature
  got = jn.SoftPool((2, 2), temperature=t, learnable_temperature=True).log_temperature[...]
  linen = jl.SoftPool((2, 2), temperature=t, learnable_temperature=True)
  want = linen.init(jax.random.key(0), X)['params']['log_temperature']
  np.testing.assert_allclose(got, np.log(temperature), rtol=1e-6)
  np.testing.assert_array_equal(got, want)
