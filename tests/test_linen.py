"""The Flax linen modules: each equals its function (under jit), trains, and refuses impossible
fields at construction. First the walk over every module (tests/module_catalogue.py), then one
section per family. NNX modules, and NNX against linen, are in tests/test_nnx.py.
"""

from __future__ import annotations

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxpool
import jaxpool.linen as jl
from jaxpool import (
  adaptive_avg_pool,
  adaptive_max_pool,
  channel_pool,
  fractional_max_pool,
  global_pool,
  mixed_pool,
  s3_pool,
  spatial_pyramid_pool,
  stochastic_pool,
)
from jaxpool.linen._lifting import LiftOperator
from tests.module_catalogue import (
  FIELD_OUTPUT_SIZE,
  NONE_MEANS_DEFAULT,
  NOT_FIELDS,
  NOT_FIELDS_FOR,
  SPECS,
  WITH_PARAMS,
  assert_close,
  check_dtype,
  linen_fields,
  linen_module,
  linen_run,
  module_input,
)
from tests.ops import MODULE_FOR

# --- every module: a class per function, its fields, its reference --------------------


def test_with_params_lists_the_classes_whose_spec_has_parameters():
  x = jnp.ones((2, 8, 8, 3))
  have = set()
  for spec in SPECS:
    module = linen_module(spec)
    variables = jax.eval_shape(
      lambda a, m=module, s=spec: m.init(jax.random.key(0), *s.args(a), **s.init_kw), x
    )
    if jax.tree.leaves(variables.get('params', {})):
      have.add(spec.name)
  assert have == WITH_PARAMS


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_linen_module(spec):
  module = linen_module(spec)
  x = module_input(positive=spec.positive)
  args = spec.args(x)
  variables = jax.jit(lambda k, *a: module.init(k, *a, **spec.init_kw))(jax.random.key(0), *args)
  params = variables.get('params', {})
  xb = x.astype(jnp.bfloat16)
  for deterministic in spec.modes:
    out, key = linen_run(spec, module, variables, args, deterministic)
    # the reference jitted: one compile, not one per eager primitive
    assert_close(out, jax.jit(spec.expected)(x, params, key))
    # bf16 in, bf16 out (indices int32), close to the f32 output.
    check_dtype(
      linen_run(spec, module, variables, spec.args(xb), deterministic)[0],
      jnp.bfloat16,
      None if deterministic is False else out,
    )


@pytest.mark.parametrize('function', sorted(MODULE_FOR))
def test_module_fields_are_function_arguments(function):
  """Every configuration argument of the function is a field, with the same default."""
  fields = dict(linen_fields(getattr(jl, MODULE_FOR[function])))
  skip = NOT_FIELDS | NOT_FIELDS_FOR.get(function, set())
  if function in FIELD_OUTPUT_SIZE:
    skip = skip - {'output_size'}
  for p in inspect.signature(getattr(jaxpool, function)).parameters.values():
    if p.name in skip or p.kind == p.VAR_KEYWORD:
      continue
    assert p.name in fields, f'{MODULE_FOR[function]} lacks the field {p.name!r}'
    if p.default is not p.empty and (function, p.name) not in NONE_MEANS_DEFAULT:
      assert fields[p.name] == p.default, (p.name, fields[p.name], p.default)


# --- classic ----------------------------------------------------------------------


X = np.random.default_rng(0).standard_normal((2, 9, 8, 3)).astype(np.float32)


@pytest.mark.parametrize(
  'module,fn',
  [
    (
      jl.MaxPool((3, 3), 2, 1, ceil_mode=True),
      lambda x: jaxpool.max_pool(x, (3, 3), 2, 1, 1, True),
    ),
    (jl.MinPool((2, 3), dilation=(1, 2)), lambda x: jaxpool.min_pool(x, (2, 3), dilation=(1, 2))),
    (
      jl.AvgPool((3, 3), 2, 1, count_include_pad=False),
      lambda x: jaxpool.avg_pool(x, (3, 3), 2, 1, count_include_pad=False),
    ),
    (jl.LPPool((2, 2), p=3.0), lambda x: jaxpool.lp_pool(x, 3.0, (2, 2))),
  ],
)
def test_module_equals_function_under_jit(module, fn):
  variables = module.init(jax.random.key(0), X)
  y = jax.jit(module.apply)(variables, X)
  np.testing.assert_allclose(y, fn(X), rtol=1e-6)


def test_max_pool_indices_and_unpool_modules():
  y, idx = jl.MaxPool((2, 2), return_indices=True).apply({}, X)
  u = jl.MaxUnpool((2, 2)).apply({}, y, idx, (9, 8))
  np.testing.assert_array_equal(u, jaxpool.max_unpool(y, idx, (2, 2), output_size=(9, 8)))


def test_learnable_p_trains():
  module = jl.LPPool((2, 2), p=2.0, learnable_p=True)
  x = np.abs(X) + 0.1
  params = module.init(jax.random.key(0), x)['params']
  assert float(params['p']) == 2.0
  opt = optax.sgd(0.1)
  state = opt.init(params)
  loss = lambda p: jnp.mean((module.apply({'params': p}, x) - 1.0) ** 2)
  grads = jax.grad(loss)(params)
  updates, _ = opt.update(grads, state)
  new = optax.apply_updates(params, updates)
  assert float(new['p']) != 2.0 and loss(new) < loss(params)


@pytest.mark.parametrize(
  'build,error,pattern',
  [
    (lambda: jl.MaxPool(3), TypeError, 'window must be a sequence'),
    (lambda: jl.AvgPool((2, 2), strides=(1, 2, 3)), ValueError, 'strides must be an int or have 2'),
    (lambda: jl.MinPool((2, 2), dilation=0), ValueError, 'dilation entries must be >= 1'),
    (lambda: jl.LPPool((2, 2), p=-1.0), ValueError, 'p must be a positive number'),
    (lambda: jl.MaxUnpool((0, 2)), ValueError, 'window entries must be >= 1'),
  ],
)
def test_impossible_configurations_fail_at_construction(build, error, pattern):
  with pytest.raises(error, match=pattern):
    build()


# --- adaptive ---------------------------------------------------------------------------


def test_adaptive_modules(rng):
  x = jnp.asarray(rng.standard_normal((2, 9, 7, 4)).astype(np.float32))
  cases = [
    (jl.AdaptiveAvgPool((3, None)), adaptive_avg_pool(x, (3, None))),
    (jl.AdaptiveMaxPool(2), adaptive_max_pool(x, 2)),
    (jl.GlobalPool('catavgmax'), global_pool(x, 'catavgmax')),
    (jl.GlobalPool('gem', p=4.0, keepdims=True), global_pool(x, 'gem', True, p=4.0)),
    (jl.GlobalPool('soft', temperature=0.5), global_pool(x, 'soft', temperature=0.5)),
    (jl.ChannelPool('avg', keepdims=False), channel_pool(x, 'avg', False)),
    (jl.SpatialPyramidPool((1, 3), 'avg'), spatial_pyramid_pool(x, (1, 3), 'avg')),
  ]
  for module, want in cases:
    params = jax.jit(module.init)(jax.random.key(0), x)
    assert not jax.tree_util.tree_leaves(params)
    np.testing.assert_allclose(jax.jit(module.apply)(params, x), want, rtol=1e-6)
  _y, idx = jl.AdaptiveMaxPool((4, 3), return_indices=True).apply({}, x)
  np.testing.assert_array_equal(idx, adaptive_max_pool(x, (4, 3), return_indices=True)[1])


@pytest.mark.parametrize('p_shape', ['scalar', 'channel'])
def test_linen_gem_learnable_p(p_shape, rng):
  x = jnp.asarray(np.abs(rng.standard_normal((2, 6, 5, 4))).astype(np.float32))
  module = jl.GlobalPool('gem', learnable_p=True, p_shape=p_shape)
  params = jax.jit(module.init)(jax.random.key(0), x)
  p = params['params']['p']
  assert p.shape == (() if p_shape == 'scalar' else (4,))
  np.testing.assert_array_equal(p, 3.0)
  np.testing.assert_allclose(
    jax.jit(module.apply)(params, x), global_pool(x, 'gem', p=3.0), rtol=1e-6
  )
  grads = jax.jit(jax.grad(lambda v: jnp.sum(module.apply(v, x))))(params)
  assert np.all(np.isfinite(grads['params']['p'])) and np.any(grads['params']['p'] != 0)
  lp = jl.GlobalPool('lp', p=2.0, learnable_p=True)
  np.testing.assert_array_equal(lp.init(jax.random.key(0), x)['params']['p'], 2.0)


def test_linen_errors():
  with pytest.raises(ValueError, match=r'output_size entries must be >= 1.*\(0, 2\)'):
    jl.AdaptiveAvgPool((0, 2))
  with pytest.raises(TypeError, match='output_size entries must be positive ints or None'):
    jl.AdaptiveMaxPool(('a',))
  with pytest.raises(ValueError, match="method must be one of.*got 'median'"):
    jl.GlobalPool('median')
  with pytest.raises(ValueError, match=r"method 'avg' takes keyword arguments \[\].*\['p'\]"):
    jl.GlobalPool('avg', p=3.0)
  with pytest.raises(ValueError, match="learnable_p needs method 'lp' or 'gem'; got method 'max'"):
    jl.GlobalPool('max', learnable_p=True)
  with pytest.raises(ValueError, match=r'p must be a positive number \(inf allowed\); got -1.0'):
    jl.GlobalPool('gem', p=-1.0)
  with pytest.raises(ValueError, match="p_shape must be one of 'scalar', 'channel'; got 'pixel'"):
    jl.GlobalPool('gem', learnable_p=True, p_shape='pixel')
  with pytest.raises(ValueError, match="method must be one of.*got 'sum'"):
    jl.ChannelPool('sum')
  with pytest.raises(ValueError, match="method must be one of.*got 'lp'"):
    jl.SpatialPyramidPool(method='lp')
  with pytest.raises(TypeError, match='levels must be a non-empty sequence'):
    jl.SpatialPyramidPool(levels=())


# --- blur -------------------------------------------------------------------------------


def test_modules_match_functions_under_jit(rng):
  x = jnp.asarray(rng.standard_normal((2, 10, 9, 3)).astype(np.float32))
  cases = [
    (jl.BlurPool(), jaxpool.blur_pool(x)),
    (
      jl.BlurPool((4, 2), 3, 1, pad_mode='reflect'),
      jaxpool.blur_pool(x, (4, 2), 3, 1, pad_mode='reflect'),
    ),
    (jl.MaxBlurPool(), jaxpool.max_blur_pool(x)),
    (
      jl.MaxBlurPool((3, 3), (5, 5), 2, pad_mode='edge'),
      jaxpool.max_blur_pool(x, (3, 3), (5, 5), 2, pad_mode='edge'),
    ),
  ]
  for module, expected in cases:
    variables = jax.jit(module.init)(jax.random.key(0), x)
    assert not jax.tree_util.tree_leaves(variables)  # the filter is fixed, not a parameter
    y = jax.jit(module.apply)(variables, x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), atol=1e-6)


def test_blur_module_field_errors():
  with pytest.raises(ValueError, match="pad_mode must be one of .*got 'wrap'"):
    jl.BlurPool(pad_mode='wrap')
  with pytest.raises(ValueError, match='strides must be an int or have 2 entries'):
    jl.BlurPool(strides=(1, 2, 3))
  with pytest.raises(TypeError, match='window must be a sequence'):
    jl.BlurPool(window=3)
  with pytest.raises(TypeError, match='count_include_pad must be a bool'):
    jl.MaxBlurPool(count_include_pad='yes')
  with pytest.raises(ValueError, match='blur must have one entry per spatial dim'):
    jl.MaxBlurPool(window=(2, 2), blur=(3, 3, 3))


def test_modules_train_one_optax_step(rng):
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = jl.MaxBlurPool()(nn.relu(nn.Conv(4, (3, 3))(x)))
      return jl.BlurPool(pad_mode='reflect')(nn.Conv(2, (3, 3))(x))

  x = jnp.asarray(rng.standard_normal((2, 16, 16, 3)).astype(np.float32))
  target = jnp.ones((2, 4, 4, 2))
  net = Net()
  params = jax.jit(net.init)(jax.random.key(0), x)['params']
  opt = optax.adam(1e-2)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(
      lambda p: jnp.mean((net.apply({'params': p}, x) - target) ** 2)
    )(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state, loss, grads

  new, _, loss, grads = step(params, state)
  assert np.isfinite(float(loss))
  for g in jax.tree_util.tree_leaves(grads):
    assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)
  moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), params, new)
  assert all(jax.tree_util.tree_leaves(moved))


# --- learned ----------------------------------------------------------------------------


MODULES = [  # one per class (DPP: both guides); parameter shapes are covered below
  (jl.MaxAvgPool((3, 3), 2, 1, alpha_shape='location_channel'), {'alpha_logit': (4, 4, 3)}),
  (jl.GatedPool((3, 3), 2, 1), {'gate': (3, 3)}),
  (jl.TreePool((2, 2), depth=2, per_channel=True), {'leaves': (4, 2, 2, 3), 'gates': (3, 2, 2, 3)}),
  (jl.DPP((2, 2)), {'log_alpha': (3,), 'log_lam': (3,)}),
  (
    jl.DPP((3, 3), 2, 1, guide='full', symmetric=False),
    {'log_alpha': (3,), 'log_lam': (3,), 'guide_kernel': (3, 3, 1, 3), 'guide_bias': (3,)},
  ),
]


def test_module_param_shapes():
  x = np.zeros((2, 8, 8, 3), np.float32)

  def shapes(module):
    params = jax.eval_shape(module.init, jax.random.key(0), x)['params']
    return jax.tree.map(lambda p: p.shape, params)

  for alpha_shape, want in [
    ('scalar', ()),
    ('channel', (3,)),
    ('location', (4, 4, 1)),
    ('location_channel', (4, 4, 3)),
  ]:
    assert shapes(jl.MaxAvgPool((3, 3), 2, 1, alpha_shape=alpha_shape)) == {'alpha_logit': want}
  assert shapes(jl.GatedPool((2, 3), per_channel=True)) == {'gate': (2, 3, 3)}
  assert shapes(jl.TreePool((3, 3), 2, 1)) == {'leaves': (2, 3, 3), 'gates': (1, 3, 3)}
  assert shapes(jl.TreePool((2, 2), depth=0)) == {'leaves': (1, 2, 2), 'gates': (0, 2, 2)}
  assert shapes(jl.DPP((2, 2), guide='full', guide_window=(3, 1))) == {
    'log_alpha': (3,),
    'log_lam': (3,),
    'guide_kernel': (3, 1, 1, 3),
    'guide_bias': (3,),
  }


@pytest.mark.parametrize('module, shapes', MODULES, ids=lambda m: type(m).__name__)
def test_modules_init_apply_and_train_one_step(module, shapes):
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  variables = jax.jit(module.init)(jax.random.key(1), x)
  params = variables['params']
  assert jax.tree.map(jnp.shape, params) == shapes
  y = jax.jit(module.apply)(variables, x)
  assert y.shape == (2, 4, 4, 3) and y.dtype == x.dtype
  target = np.flip(y, axis=1)

  def loss(p):
    return jnp.mean((module.apply({'params': p}, x) - target) ** 2)

  opt = optax.sgd(1e-2)
  value_and_grad = jax.jit(jax.value_and_grad(loss))
  before, grads = value_and_grad(params)
  updates, _ = opt.update(grads, opt.init(params))
  moved = optax.apply_updates(params, updates)
  for name in params:
    assert np.any(moved[name] != params[name]), name
  assert value_and_grad(moved)[0] < before


def _init_apply(module, x, key=1):
  variables = jax.jit(module.init)(jax.random.key(key), x)
  return variables, jax.jit(module.apply)(variables, x)


def test_module_initial_values_follow_the_papers():
  x = np.random.default_rng(0).normal(size=(1, 4, 4, 64)).astype(np.float32)
  # mixed: alpha = sigmoid(0) = 1/2
  _, y = _init_apply(jl.MaxAvgPool((2, 2)), x)
  np.testing.assert_allclose(y, jaxpool.max_avg_pool(x, 0.5, (2, 2)), rtol=1e-6)
  # gated / tree filters: N(0, 0.1**2) (a 1x1 window: 4096 draws, a trivial pooling)
  assert jl.GatedPool((2, 2)).gate_init is jl.TreePool((2, 2)).leaf_init
  tree = jax.jit(jl.TreePool((1, 1), depth=6, per_channel=True).init)(jax.random.key(3), x)
  for leaf in tree['params'].values():
    assert 0.09 < float(np.std(leaf)) < 0.11 and abs(float(np.mean(leaf))) < 0.01
  # DPP: log-parameters 0 -> alpha = lam = 1; the full guide starts as a 3x3 box filter
  variables, y = _init_apply(jl.DPP((2, 2), guide='full'), x)
  params = variables['params']
  np.testing.assert_array_equal(params['log_alpha'], 0)
  np.testing.assert_array_equal(params['log_lam'], 0)
  xp = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  box = np.stack(
    [
      np.stack([xp[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].mean((1, 2)) for j in range(2)], 1)
      for i in range(2)
    ],
    1,
  )
  np.testing.assert_allclose(
    y,
    jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2), padding=0, guide=jnp.asarray(box)),
    rtol=1e-5,
    atol=1e-6,
  )


@pytest.mark.parametrize(
  'window, strides, padding', [((3,), 1, 1), ((2, 2, 2), 2, 0), ((4, 4), 3, 2)]
)
def test_dpp_full_guide_any_geometry(window, strides, padding):
  x = np.random.default_rng(0).normal(size=(2, *(9,) * len(window), 2)).astype(np.float32)
  m = jl.DPP(window, strides, padding, guide='full', guide_window=2)
  variables, y = _init_apply(m, x)
  assert y.shape == jax.eval_shape(lambda x: jaxpool.max_pool(x, window, strides, padding), x).shape
  grads = jax.jit(jax.grad(lambda v: m.apply(v, x).sum()))(variables)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert np.any(grads['params']['guide_kernel'] != 0)


def test_module_errors():
  x = np.zeros((2, 8, 8, 3))
  m = jl.MaxAvgPool((2, 2), alpha_shape='location')
  variables = jax.jit(m.init)(jax.random.key(0), x)
  with pytest.raises(
    ValueError,
    match=r"'alpha_logit' has shape \(4, 4, 1\) but this input "
    r'needs \(5, 5, 1\).*fixed input size',
  ):
    m.apply(variables, np.zeros((2, 10, 10, 3)))
  g = jl.GatedPool((2, 2), per_channel=True)
  with pytest.raises(ValueError, match=r"'gate' has shape \(2, 2, 3\) but this input needs"):
    g.apply(jax.jit(g.init)(jax.random.key(0), x), np.zeros((2, 8, 8, 4)))
  with pytest.raises(
    ValueError,
    match="alpha_shape must be one of 'scalar', 'channel', "
    "'location', 'location_channel'; got 'pixel'",
  ):
    jl.MaxAvgPool((2, 2), alpha_shape='pixel')
  with pytest.raises(ValueError, match='depth must be an int >= 0; got -1'):
    jl.TreePool((2, 2), depth=-1)
  with pytest.raises(TypeError, match="per_channel must be a bool; got 'yes'"):
    jl.GatedPool((2, 2), per_channel='yes')
  with pytest.raises(ValueError, match="guide must be one of 'lite', 'full'; got 'box'"):
    jl.DPP((2, 2), guide='box')
  with pytest.raises(ValueError, match='eps must be a positive finite number; got -1'):
    jl.DPP((2, 2), eps=-1)
  with pytest.raises(ValueError, match=r'guide_window must be an int or have 2 entries'):
    jl.DPP((2, 2), guide_window=(3,))
  with pytest.raises(TypeError, match='window must be a sequence'):
    jl.GatedPool(3)
  with pytest.raises(TypeError, match='DPP needs a floating-point x'):
    jl.DPP((2, 2)).init(jax.random.key(0), np.zeros((4, 4, 1), jnp.int32))


# --- lifting ----------------------------------------------------------------------------


def _perturbed(variables, seed):
  """Random parameters everywhere (biases included), so inversion is not trivially exact."""
  leaves, tree = jax.tree_util.tree_flatten(variables)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree_util.tree_unflatten(
    tree, [a + 0.5 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
  )


def test_module_round_trip_three_ways(rng):
  x = jnp.asarray(rng.standard_normal((2, 7, 6, 3)).astype(np.float32))
  down = jl.LiftDownPool()
  variables = _perturbed(jax.jit(down.init)(jax.random.key(0), x), 1)
  assert set(variables['params']) == {'predict', 'update'}
  low, details = jax.jit(down.apply)(variables, x)
  assert low.shape == (2, 4, 3, 3)
  # 1. the down module's own inverse
  y = jax.jit(lambda v, lo, de: down.apply(v, lo, de, (7, 6), method='inverse'))(
    variables, low, details
  )
  np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5)
  # 2. a standalone LiftUpPool given the down pool's variables (same parameter tree)
  up = jax.jit(lambda v, lo, de: jl.LiftUpPool().apply(v, lo, de, (7, 6)))
  np.testing.assert_allclose(np.asarray(up(variables, low, details)), np.asarray(x), atol=1e-5)
  # and a LiftUpPool with other parameters does not invert it (the check can fail)
  assert float(jnp.abs(up(_perturbed(variables, 2), low, details) - x).max()) > 1e-2

  # 3. the functional form with the module's operators equals the module
  def functional(params, lo, de):
    op = LiftOperator(3)
    return jaxpool.lift_up_pool(
      lo,
      de,
      lambda v: op.apply({'params': params['predict']}, v),
      lambda v: op.apply({'params': params['update']}, v),
      output_size=(7, 6),
    )

  y = jax.jit(functional)(variables['params'], low, details)
  np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5)


class _AutoEncoder(nn.Module):
  """Two lifting layers down, their shared-parameter inverses up."""

  def setup(self):
    self.down1 = jl.LiftDownPool()
    self.down2 = jl.LiftDownPool(kernel_size=2, axes=(-2, -3))
    self.up1 = jl.LiftUpPool(self.down1)
    self.up2 = jl.LiftUpPool(self.down2)

  def __call__(self, x):
    low1, d1 = self.down1(x)
    low2, d2 = self.down2(low1)
    return low2, self.up1(self.up2(low2, d2), d1)


def test_shared_parameter_up_pools_invert_and_layers_do_not_share(rng):
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 3)).astype(np.float32))
  model = _AutoEncoder()
  variables = _perturbed(jax.jit(model.init)(jax.random.key(0), x), 3)
  params = variables['params']
  assert set(params) == {'down1', 'down2'}  # the up pools own nothing
  assert params['down2']['predict']['conv_k']['kernel'].shape == (2, 3, 3)
  assert params['down1']['predict']['conv_k']['kernel'].shape == (3, 3, 3)
  low, y = jax.jit(model.apply)(variables, x)
  assert low.shape == (2, 2, 2, 3)
  np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5)


def test_lift_down_pool_trains_one_optax_step(rng):
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 3)).astype(np.float32))
  down = jl.LiftDownPool()
  params = jax.jit(down.init)(jax.random.key(0), x)['params']
  params = _perturbed(params, 4)  # nonzero biases so every parameter gets a gradient
  opt = optax.sgd(1e-1)
  state = opt.init(params)

  def loss(p):  # the paper's regularisers: small details, low band close to the input
    low, details = down.apply({'params': p}, x)
    return sum(jnp.mean(d**2) for d in details.values()) + jnp.mean(
      (low - jaxpool.avg_pool(x, (2, 2))) ** 2
    )

  @jax.jit
  def step(p, s):
    value, grads = jax.value_and_grad(loss)(p)
    updates, s = opt.update(grads, s)
    return optax.apply_updates(p, updates), s, value, grads

  new, _, before, grads = step(params, state)
  for g in jax.tree_util.tree_leaves(grads):
    assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)
  moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), params, new)
  assert all(jax.tree_util.tree_leaves(moved))
  assert float(jax.jit(loss)(new)) < float(before)


def test_lifting_module_field_errors():
  with pytest.raises(ValueError, match='kernel_size must be a positive int; got 0'):
    jl.LiftDownPool(kernel_size=0)
  with pytest.raises(TypeError, match='axes must be an int or a non-empty sequence of ints'):
    jl.LiftDownPool(axes=())
  with pytest.raises(TypeError, match='down must be a LiftDownPool or None; got MaxPool'):
    jl.LiftUpPool(down=jl.MaxPool((2, 2)))
  with pytest.raises(ValueError, match=r'axes=\(1,\) conflicts with down.axes=\(-3, -2\)'):
    jl.LiftUpPool(down=jl.LiftDownPool(), axes=(1,))
  with pytest.raises(ValueError, match='kernel_size=5 conflicts with down.kernel_size=3'):
    jl.LiftUpPool(down=jl.LiftDownPool(), kernel_size=5)
  jl.LiftUpPool(down=jl.LiftDownPool(axes=[-3, -2]), axes=(-3, -2), kernel_size=3)  # agree


# --- stochastic -------------------------------------------------------------------------


def test_stochastic_modules():
  x = jnp.asarray(np.abs(np.random.default_rng(40).standard_normal((2, 9, 9, 3))), jnp.float32)
  modules = [
    (jl.StochasticPool((3, 3), 2, 1), lambda a, key: stochastic_pool(a, (3, 3), 2, 1, key=key)),
    (
      jl.MixedPool((2, 2), p_max=0.3, granularity='window'),
      lambda a, key: mixed_pool(a, (2, 2), key=key, p_max=0.3, granularity='window'),
    ),
    (jl.S3Pool((2, 2), grid=4), lambda a, key: s3_pool(a, (2, 2), 4, key=key)),
    (
      jl.FractionalMaxPool((2, 2), output_ratio=0.7),
      lambda a, key: fractional_max_pool(a, (2, 2), output_ratio=0.7, key=key),
    ),
  ]
  for module, fn in modules:
    variables = module.init(jax.random.key(0), x, deterministic=True)
    assert variables == {}
    fixed = module.clone(deterministic=True)
    y_eval, y_fixed = jax.jit(
      lambda a, m=module, f=fixed: (m.apply({}, a, deterministic=True), f.apply({}, a))
    )(x)
    np.testing.assert_allclose(y_eval, fn(x, None), rtol=1e-6)
    np.testing.assert_allclose(y_fixed, fn(x, None), rtol=1e-6)
    train = jax.jit(lambda r, m=module: m.apply({}, x, deterministic=False, rngs={'pooling': r}))
    y = train(jax.random.key(1))
    np.testing.assert_array_equal(y, train(jax.random.key(1)))
    assert not np.array_equal(y, train(jax.random.key(2)))
    assert y.shape == y_eval.shape
    with pytest.raises(ValueError, match='deterministic'):
      module.apply({}, x)  # neither field nor argument
    with pytest.raises(Exception, match='pooling'):
      module.apply({}, x, deterministic=False)  # no 'pooling' rng
  fmp = jl.FractionalMaxPool((2, 2), output_size=4, return_indices=True)
  s = np.full((2, 3, 2), 0.25, np.float32)
  y, idx = fmp.apply({}, x, samples=s)
  ref_y, ref_idx = fractional_max_pool(x, (2, 2), 4, samples=s, return_indices=True)
  np.testing.assert_array_equal(y, ref_y)
  np.testing.assert_array_equal(idx, ref_idx)

  class Net(nn.Module):  # the Dropout-style train flag through a model
    @nn.compact
    def __call__(self, a, train: bool):
      return jl.StochasticPool((2, 2))(nn.Dense(3)(a), deterministic=not train)

  net = Net()
  params = net.init(jax.random.key(0), x, train=False)
  out = net.apply(params, x, train=True, rngs={'pooling': jax.random.key(3)})
  assert out.shape == (2, 4, 4, 3)


# --- weighted ---------------------------------------------------------------------------


def test_linen_modules_match_functions():
  rng = np.random.default_rng(17)
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 3)).astype(np.float32))
  key = jax.random.key(0)
  cases = [
    (jl.SoftPool((2, 2), temperature=0.5), jaxpool.soft_pool(x, (2, 2), temperature=0.5)),
    (jl.EDSCWPool((3, 3), 2, 1), jaxpool.edscw_pool(x, (3, 3), 2, 1)),
    (jl.IDWPool((3, 3), 2, 1, eps=1e-3), jaxpool.idw_pool(x, (3, 3), 2, 1, eps=1e-3)),
    (jl.AdaPool((2, 2)), jaxpool.ada_pool(x, 0.5, (2, 2))),
  ]
  for module, want in cases:
    variables = module.init(key, x)
    np.testing.assert_allclose(module.apply(variables, x), want, rtol=1e-6)
  y, w = jl.SoftPool((2, 2), return_weights=True).apply({}, x)
  np.testing.assert_allclose(
    jl.AdaUnPool((2, 2)).apply({}, y, w), jaxpool.ada_unpool(y, w, (2, 2)), rtol=1e-6
  )


def test_linen_soft_pool_learnable_temperature():
  x = jnp.asarray(np.random.default_rng(18).standard_normal((2, 6, 6, 3)).astype(np.float32))
  module = jl.SoftPool((2, 2), temperature=2.0, learnable_temperature=True)
  variables = module.init(jax.random.key(0), x)
  np.testing.assert_allclose(variables['params']['log_temperature'], np.log(2.0), rtol=1e-6)
  np.testing.assert_allclose(
    module.apply(variables, x), jaxpool.soft_pool(x, (2, 2), temperature=2.0), rtol=1e-6
  )
  g = jax.grad(lambda v: module.apply(v, x).sum())(variables)
  assert np.isfinite(g['params']['log_temperature']) and g['params']['log_temperature'] != 0


def test_linen_lip_starts_as_average_pooling_and_accepts_a_logit_module():
  x = jnp.asarray(np.random.default_rng(19).standard_normal((2, 9, 9, 4)).astype(np.float32))
  module = jl.LIP((3, 3), strides=2, padding=1)
  variables = jax.jit(module.init)(jax.random.key(0), x)
  params = variables['params']['logits']
  assert params['conv']['kernel'].shape == (3, 3, 4, 4) and not params['conv']['kernel'].any()
  y, g = jax.jit(
    lambda v: (module.apply(v, x), jax.grad(lambda v: (module.apply(v, x) ** 2).sum())(v))
  )(variables)
  np.testing.assert_allclose(
    y, jaxpool.avg_pool(x, (3, 3), 2, 1, count_include_pad=False), rtol=1e-5, atol=1e-6
  )
  assert np.abs(g['params']['logits']['conv']['kernel']).max() > 0  # it learns
  # 1-d with a custom logit window, unbatched
  m1 = jl.LIP((2,), logit_window=(5,))
  v1 = jax.jit(m1.init)(jax.random.key(0), x[0, 0])
  assert v1['params']['logits']['conv']['kernel'].shape == (5, 4, 4)
  np.testing.assert_allclose(
    jax.jit(m1.apply)(v1, x[0, 0]), jaxpool.avg_pool(x[0, 0], (2,)), rtol=1e-5
  )

  class Twice(nn.Module):
    @nn.compact
    def __call__(self, v):
      return 2 * v

  custom = jl.LIP((2, 2), logit_module=Twice(), return_weights=True)
  y, w = jax.jit(custom.apply)({}, x)
  np.testing.assert_allclose(y, jaxpool.soft_pool(x, (2, 2), temperature=0.5), rtol=1e-5)
  assert w.shape == (2, 4, 4, 2, 2, 4)


@pytest.mark.parametrize(
  'beta_shape,shape',
  [('scalar', ()), ('channel', (3,)), ('location', (4, 4, 1)), ('location_channel', (4, 4, 3))],
)
def test_linen_ada_pool_beta_shapes(beta_shape, shape):
  x = jnp.asarray(np.random.default_rng(20).standard_normal((2, 8, 8, 3)).astype(np.float32))
  module = jl.AdaPool((2, 2), beta_shape=beta_shape)
  variables = module.init(jax.random.key(0), x)
  theta = variables['params']['theta']
  assert theta.shape == shape and not theta.any()  # beta = sigmoid(0) = 0.5
  g = jax.grad(lambda v: (module.apply(v, x) ** 2).sum())(variables)
  assert g['params']['theta'].shape == shape and np.abs(g['params']['theta']).max() > 0
  other = jnp.zeros((2, 10, 10, 3))
  if beta_shape.startswith('location'):
    with pytest.raises(ValueError, match='needs a fixed input size.*output spatial shape'):
      module.apply(variables, other)
  else:
    assert module.apply(variables, other).shape == (2, 5, 5, 3)


def test_module_errors_at_construction():
  with pytest.raises(ValueError, match="beta_shape must be one of .*got 'pixel'"):
    jl.AdaPool((2, 2), beta_shape='pixel')
  with pytest.raises(ValueError, match='temperature must be a positive finite number; got -1'):
    jl.SoftPool((2, 2), temperature=-1)
  with pytest.raises(ValueError, match='eps must be a positive finite number; got 0'):
    jl.EDSCWPool((2, 2), eps=0)
  with pytest.raises(ValueError, match=r'logit_window must have one entry per spatial dim'):
    jl.LIP((2, 2), logit_window=(3,))
  with pytest.raises(ValueError, match='coeff must be a positive finite number'):
    jl.LIP((2, 2), coeff=0)
  with pytest.raises(TypeError, match='return_weights must be a bool'):
    jl.IDWPool((2, 2), return_weights=1)
  with pytest.raises(TypeError, match='window must be a sequence'):
    jl.AdaUnPool(2)
  with pytest.raises(ValueError, match='strides must be an int or have 2 entries'):
    jl.SoftPool((2, 2), strides=(1, 1, 1))
