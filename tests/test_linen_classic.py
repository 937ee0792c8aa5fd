"""Flax linen modules for classic pooling: thin, validated at construction, same numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxpool
import jaxpool.linen as jl

X = np.random.default_rng(0).standard_normal((2, 9, 8, 3)).astype(np.float32)


@pytest.mark.parametrize('module,fn', [
    (jl.MaxPool((3, 3), 2, 1, ceil_mode=True), lambda x: jaxpool.max_pool(x, (3, 3), 2, 1, 1, True)),
    (jl.MinPool((2, 3), dilation=(1, 2)), lambda x: jaxpool.min_pool(x, (2, 3), dilation=(1, 2))),
    (jl.AvgPool((3, 3), 2, 1, count_include_pad=False),
     lambda x: jaxpool.avg_pool(x, (3, 3), 2, 1, count_include_pad=False)),
    (jl.LPPool((2, 2), p=3.0), lambda x: jaxpool.lp_pool(x, 3.0, (2, 2))),
])
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
  loss = lambda p: jnp.mean((module.apply({'params': p}, x) - 1.0) ** 2)  # noqa: E731
  grads = jax.grad(loss)(params)
  updates, _ = opt.update(grads, state)
  new = optax.apply_updates(params, updates)
  assert float(new['p']) != 2.0 and loss(new) < loss(params)


@pytest.mark.parametrize('build,error,pattern', [
    (lambda: jl.MaxPool(3), TypeError, 'window must be a sequence'),
    (lambda: jl.AvgPool((2, 2), strides=(1, 2, 3)), ValueError, 'strides must be an int or have 2'),
    (lambda: jl.MinPool((2, 2), dilation=0), ValueError, 'dilation entries must be >= 1'),
    (lambda: jl.LPPool((2, 2), p=-1.0), ValueError, 'p must be a positive number'),
    (lambda: jl.MaxUnpool((0, 2)), ValueError, 'window entries must be >= 1'),
])
def test_impossible_configurations_fail_at_construction(build, error, pattern):
  with pytest.raises(error, match=pattern):
    build()
