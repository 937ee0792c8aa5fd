"""Edge-case classes, each swept over the whole API (issue 15).

Every class walks ``jaxpool.__all__`` through the op registry (``tests/ops``: each op's
catalogue call, window size, direct call, NaN-rule kernel, array arguments and module
configurations), so a new op or module is covered without being listed here.

* empty shapes: a zero-size batch and zero channels give the empty result of the right
  shape and dtype, gradients included, or a ``ValueError`` naming ``x`` where the
  result is undefined (a reduction over zero channels);
* finiteness: values and gradients are finite for mixed-sign inputs of magnitude up to
  ``finfo(dtype).max / window_size`` and down to the smallest normal, in f32/bf16/f16;
* one NaN rule for every max-like op, PyTorch's pooling kernels' (a window holding
  several NaNs -> its last NaN), for values, indices and gradients;
* documented limits of parameterised ops equal the op they reduce to, infinities included;
* index inputs: out-of-range indices raise when concrete and are dropped under ``jit``;
* flags are bools (NumPy bools accepted), type errors name the argument, complex input
  is a ``TypeError``;
* every linen module through ``nn.tabulate`` and every NNX module through ``nnx.tabulate``.
"""

from __future__ import annotations

import dataclasses
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn
from tests import helpers
from tests.helpers import from_torch_layout, to_torch_layout, torch_or_skip
from tests.module_catalogue import linen_module, nnx_module
from tests.ops import (
  ARGUMENTS,
  CALLS,
  DIRECT_CALLS,
  EXTRA,
  MAX_LIKE,
  SPECS,
  WINDOW,
)
from tests.ops.fixtures import ARG_X_NP as _X

KEY = jax.random.key(0)
# one name per function object (ada_unpool is weighted_unpool)
NAMES = sorted({id(getattr(jaxpool, n)): n for n in sorted(jaxpool.__all__)}.values())
#: Ops with a training mode (a key) and an evaluation mode (key=None): both are swept.
RANDOM = {'stochastic_pool', 'mixed_pool', 's3_pool', 'fractional_max_pool'}
FLOATS = [jnp.float32, jnp.bfloat16, jnp.float16]


def _modes(name):
  return (KEY, None) if name in RANDOM else (KEY,)


def _float_leaves(tree):
  return [v for v in jax.tree.leaves(tree) if jnp.issubdtype(v.dtype, jnp.floating)]


def _value_and_grad_fn(f):
  """``x -> (f(x), gradient of the sum of its float outputs)``, one jitted program: what training
  runs, several times cheaper to compile than op-by-op dispatch, and compiled once for every
  input of one shape and dtype."""
  run = helpers.value_and_vjp_fn(f)

  def value_and_grad(x):
    y, (g,) = run((x,))
    return y, g

  return value_and_grad


def _value_and_grad(f, x):
  return _value_and_grad_fn(f)(x)


def test_every_op_has_a_representative_call():
  assert set(jaxpool.__all__) <= set(CALLS)


# --- empty shapes ----------------------------------------------------------------------

#: Reductions over the channel axis: over zero channels the result is undefined.
UNDEFINED_WITHOUT_CHANNELS = {'channel_pool'}
EMPTY = {'batch': (0, 12, 12, 4), 'channels': (2, 12, 12, 0)}


def _expected_empty(f, case):
  """Output shapes and dtypes for the empty input, from the same call with the empty dim 1."""
  shape = list(EMPTY[case])
  shape[0 if case == 'batch' else -1] = 1
  ref = jax.eval_shape(f, jax.ShapeDtypeStruct(tuple(shape), jnp.float32))

  def empty(s):
    dims = list(s.shape)
    dims[0 if case == 'batch' else -1] = 0
    return (tuple(dims), s.dtype)

  return jax.tree.map(empty, ref)


@pytest.mark.parametrize('case', sorted(EMPTY))
@pytest.mark.parametrize('name', NAMES)
def test_empty_batch_and_zero_channels_give_empty_results_and_gradients(name, case):
  x = jnp.zeros(EMPTY[case], jnp.float32)
  if case == 'channels' and name in UNDEFINED_WITHOUT_CHANNELS:
    with pytest.raises(ValueError, match=r'\bx\b'):
      CALLS[name](x, KEY)
    return
  for key in _modes(name):
    f = lambda a, key=key: CALLS[name](a, key)
    y, g = _value_and_grad(f, x)
    assert jax.tree.map(lambda v: (v.shape, v.dtype), y) == _expected_empty(f, case), key
    assert g.shape == x.shape and g.dtype == x.dtype


def _module_input(case):
  return jnp.zeros((0, 8, 8, 3) if case == 'batch' else (2, 8, 8, 0), jnp.float32)


# An empty batch for every module each run; zero channels in a rotating share.
EMPTY_CASES = helpers.rotating_share(
  [(s, 'batch') for s in SPECS] + [(s, 'channels') for s in SPECS], len(SPECS), 5
)


@pytest.mark.parametrize('spec, case', EMPTY_CASES, ids=[f'{s}-{c}' for s, c in EMPTY_CASES])
def test_linen_modules_on_empty_inputs(spec, case):
  x = _module_input(case)
  module = linen_module(spec)
  if case == 'channels' and spec.name == 'ChannelPool':
    with pytest.raises(ValueError, match=r'\bx\b'):
      module.init(KEY, x)
    return
  args = spec.args(x)
  # traced: an empty input's init needs shapes only (eagerly, one compile per op of the module)
  variables = jax.eval_shape(lambda k, *a: module.init(k, *a, **spec.init_kw), KEY, *args)
  variables = jax.tree.map(lambda v: jnp.zeros(v.shape, v.dtype), variables)
  for deterministic in spec.modes:
    kw = {} if deterministic is None else dict(deterministic=deterministic)
    f = lambda a: module.apply(variables, *spec.args(a), rngs={'pooling': KEY}, **kw)
    y, g = _value_and_grad(f, x)
    for leaf in jax.tree.leaves(y):
      assert leaf.size == 0
      assert leaf.dtype in (jnp.float32, jnp.int32)
    assert g.shape == x.shape


@pytest.mark.parametrize('case', sorted(EMPTY))
@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_nnx_modules_on_empty_inputs(spec, case):
  x = _module_input(case)
  module = nnx_module(spec)
  if case == 'channels' and (spec.name == 'ChannelPool' or 'num_features' in spec.nnx_kw):
    # ChannelPool: undefined. Modules built for num_features=3 channels: a channel mismatch.
    with pytest.raises(ValueError):
      module(*spec.args(x), **spec.init_kw)
    return
  for deterministic in spec.modes:
    kw = {} if deterministic is None else dict(deterministic=deterministic, rngs=KEY)
    y, g = _value_and_grad(lambda a: module(*spec.args(a), **kw), x)
    for leaf in jax.tree.leaves(y):
      assert leaf.size == 0
      assert leaf.dtype in (jnp.float32, jnp.int32)
    assert g.shape == x.shape


# --- finite values and gradients at extreme magnitudes ---------------------------------


def _magnitudes(dtype):
  info = jnp.finfo(dtype)
  return {'largest': float(info.max), 'smallest-normal': float(info.tiny)}


def _mixed_signs(shape, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.uniform(0.5, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
  base.reshape(-1, shape[-1])[::7] = np.sign(base.reshape(-1, shape[-1])[::7])  # exactly +-1
  return base


def _check_finite(value_and_grad, x, label):
  """``value_and_grad``: a :func:`_value_and_grad_fn`."""
  y, g = value_and_grad(x)
  for leaf in _float_leaves(y):
    assert bool(jnp.isfinite(leaf.astype(jnp.float32)).all()), f'{label}: value'
  assert bool(jnp.isfinite(g.astype(jnp.float32)).all()), f'{label}: gradient'


# float32 for every op each run; the half precisions in a rotating share (all over successive
# runs: each is checked to its own finfo.max).
MAGNITUDE_CASES = helpers.rotating_share(
  [(n, jnp.float32) for n in NAMES] + [(n, d) for d in FLOATS[1:] for n in NAMES], len(NAMES), 5
)


@pytest.mark.parametrize(
  'name, dtype', MAGNITUDE_CASES, ids=[f'{n}-{jnp.dtype(d).name}' for n, d in MAGNITUDE_CASES]
)
def test_values_and_gradients_finite_from_smallest_normal_to_max_over_window(name, dtype):
  base = _mixed_signs((2, 12, 12, 4))
  for key in _modes(name):
    run = _value_and_grad_fn(lambda a, key=key: CALLS[name](a, key))  # one compile per mode
    for label, top in _magnitudes(dtype).items():
      scale = top / WINDOW[name] if label == 'largest' else 2 * top
      mode = 'train' if key is not None else 'eval'
      _check_finite(run, jnp.asarray(base * scale, dtype), f'{name} {label} {mode}')


# float32 for every path each run; the half precisions in a rotating share.
SECONDARY_CASES = helpers.rotating_share(
  [(c, d) for d in FLOATS for c in sorted(EXTRA)], len(EXTRA), 6
)


@pytest.mark.parametrize(
  'case, dtype', SECONDARY_CASES, ids=[f'{c}-{jnp.dtype(d).name}' for c, d in SECONDARY_CASES]
)
def test_values_and_gradients_finite_on_secondary_paths(case, dtype):
  f, window = EXTRA[case]
  run = _value_and_grad_fn(f)  # one compile for both magnitudes
  base = _mixed_signs((2, 12, 12, 4), seed=1)
  for label, top in _magnitudes(dtype).items():
    scale = top / window if label == 'largest' else 2 * top
    _check_finite(run, jnp.asarray(base * scale, dtype), f'{case} {label}')


def test_constant_window_of_1e38():
  """The cases of issue 15: a constant 1e38 window and IDW near 1e38 (inside max / 2)."""
  x = jnp.full((1, 2, 2, 1), 1e38, jnp.float32)
  for f in (
    lambda a: jaxpool.stochastic_pool(a, (2, 2)),
    lambda a: jaxpool.idw_pool(a, (2, 2)),
    lambda a: jaxpool.edscw_pool(a, (2, 2)),
    lambda a: jaxpool.soft_pool(a, (2, 2)),
  ):
    y, g = _value_and_grad(f, x)
    np.testing.assert_allclose(y, 1e38, rtol=1e-6)
    np.testing.assert_allclose(g, 0.25, rtol=1e-5)
  x = jnp.asarray([[[[1e38], [-1e38]], [[5e37], [-3e37]]]], jnp.float32)
  _check_finite(_value_and_grad_fn(lambda a: jaxpool.idw_pool(a, (2, 2))), x, 'idw 1e38')


# --- one NaN rule: PyTorch's pooling kernels (last NaN of a window) ------------------------


def _nan_input():
  x = np.random.default_rng(3).standard_normal((2, 6, 6, 2)).astype(np.float32)
  for b, i, j, c in [
    (0, 0, 0, 0),
    (0, 0, 1, 0),
    (0, 1, 0, 0),
    (0, 3, 3, 0),
    (0, 4, 5, 0),
    (0, 5, 4, 0),
    (0, 2, 2, 1),
    (0, 2, 3, 1),
    (0, 5, 5, 1),
    (0, 0, 5, 1),
    (1, 1, 1, 0),
    (1, 1, 2, 0),
    (1, 2, 1, 0),
    (1, 4, 4, 1),
    (1, 5, 4, 1),
  ]:
    x[b, i, j, c] = np.nan
  return x


def _t(a, torch):
  return torch.tensor(to_torch_layout(np.asarray(a), 2), requires_grad=True)


def _as_list(out):
  return list(out) if isinstance(out, tuple) else [out]


# The PyTorch ops themselves (max, min, adaptive max, unpool) every run; the ops built on the
# same extremum core in a rotating share (all over successive runs).
_NAN_EVERY_RUN = [
  c for c in ('max_pool', 'min_pool', 'adaptive_max_pool', 'max_unpool') if c in MAX_LIKE
]
NAN_CASES = helpers.rotating_share(
  _NAN_EVERY_RUN + [c for c in sorted(MAX_LIKE) if c not in _NAN_EVERY_RUN], len(_NAN_EVERY_RUN), 2
)


@pytest.mark.parametrize('case', NAN_CASES)
def test_max_like_ops_follow_pytorchs_nan_rule(case):
  torch = torch_or_skip()
  ours, theirs = MAX_LIKE[case]
  x = _nan_input()
  on_abs = case.endswith('-inf')  # PyTorch gets |x|; JAX's d|x|/dx is -1 below 0 and at NaN
  t = _t(np.abs(x) if on_abs else x, torch)
  want = _as_list(theirs(torch, t))
  got = _as_list(ours(jnp.asarray(x)))
  y_t = want[0]
  g_out = np.random.default_rng(1).standard_normal(tuple(y_t.shape)).astype(np.float32)
  y_t.backward(torch.tensor(g_out))
  y = np.asarray(got[0])
  y_want = y_t.detach().numpy()
  if y_want.ndim == 4:
    y_want = from_torch_layout(y_want, 2)
  np.testing.assert_allclose(y, y_want, rtol=1e-5, atol=1e-6, equal_nan=True)
  assert np.isnan(y).any()
  if len(want) > 1:  # indices
    np.testing.assert_array_equal(got[1], from_torch_layout(want[1], 2))
  g_jax = g_out if g_out.ndim == 2 else from_torch_layout(g_out, 2)
  # the values above ran eagerly; the gradient runs as one jitted program
  _, (g,) = helpers.value_and_vjp(
    lambda a: _as_list(ours(a))[0], (jnp.asarray(x),), jnp.asarray(g_jax)
  )
  want_g = from_torch_layout(t.grad, 2)
  if on_abs:
    want_g = want_g * np.where(x >= 0, 1, -1)
  np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', sorted(MAX_LIKE))
def test_nan_survives_at_sizes_xla_cpu_vectorises(case):
  # XLA:CPU's own max/min reductions drop NaN from about 4096 elements on (jnp.max of a
  # 64x64 plane holding a NaN is a number); the 6x6 input above is too small to show it.
  torch = torch_or_skip()
  ours, theirs = MAX_LIKE[case]
  rng = np.random.default_rng(5)
  x = rng.standard_normal((2, 64, 64, 2)).astype(np.float32)
  for _ in range(12):
    x[tuple(rng.integers(0, s) for s in x.shape)] = np.nan
  want = _as_list(theirs(torch, _t(np.abs(x) if case.endswith('-inf') else x, torch)))
  got = _as_list(jax.jit(ours)(jnp.asarray(x)))
  y_want = want[0].detach().numpy()
  if y_want.ndim == 4:
    y_want = from_torch_layout(y_want, 2)
  np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(y_want))
  assert np.isnan(y_want).any()
  if len(want) > 1:  # indices
    np.testing.assert_array_equal(got[1], from_torch_layout(want[1], 2))


# --- documented limits of parameterised ops, infinities included -------------------------

INF = np.inf
#: 1-d windows of 4 (one output each): finite, +-inf, both, all -inf, and sums that overflow.
LIMIT_WINDOWS = np.array(
  [
    [3.0, 1.0, -2.0, 0.5],
    [INF, 1.0, 2.0, -1.0],
    [-INF, 1.0, 2.0, 0.0],
    [INF, -INF, 1.0, 2.0],
    [-INF, -INF, -INF, -INF],
    [3e38, 3e38, 1.0, 2.0],
    [-3e38, 3e38, 3e38, 1.0],
    [1.2e-38, -1.2e-38, 2.4e-38, 0.0],
  ],
  np.float32,
)
#: Windows whose average exists and is the large-temperature limit of SoftPool.
SOFT_AVERAGE_ROWS = [0, 1]
#: T -> 0 means T far below the differences of the window (not so for the last, tiny row).
SOFT_MAX_ROWS = list(range(7))


def _reference(kind, rows=None):
  w = LIMIT_WINDOWS.astype(np.float64)
  with np.errstate(invalid='ignore', over='ignore'):  # inf - inf; sums beyond float32
    out = {'max': w.max(1), 'mean': w.mean(1), 'sum': w.sum(1), 'max_abs': np.abs(w).max(1)}[kind]
    out = out.astype(np.float32)
  return out if rows is None else out[rows]


def _windows(rows=None):
  w = LIMIT_WINDOWS if rows is None else LIMIT_WINDOWS[rows]
  return jnp.asarray(w[:, :, None])  # (batch, L=4, C=1)


def _traced(value):
  return jnp.asarray(value, jnp.float32)


#: (description, call on (batch, 4, 1) windows -> (batch, 1, 1), reference, rows, rtol)
LIMITS = [
  ('mixed_pool p_max=1 is max', lambda x: jaxpool.mixed_pool(x, (4,), p_max=1.0), 'max'),
  ('mixed_pool p_max=0 is avg', lambda x: jaxpool.mixed_pool(x, (4,), p_max=0.0), 'mean'),
  (
    'mixed_pool traced p_max=1 is max',
    lambda x: jax.jit(lambda a, p: jaxpool.mixed_pool(a, (4,), p_max=p))(x, _traced(1)),
    'max',
  ),
  (
    'mixed_pool traced p_max=0 is avg',
    lambda x: jax.jit(lambda a, p: jaxpool.mixed_pool(a, (4,), p_max=p))(x, _traced(0)),
    'mean',
  ),
  ('max_avg_pool alpha=1 is max', lambda x: jaxpool.max_avg_pool(x, 1.0, (4,)), 'max'),
  ('max_avg_pool alpha=0 is avg', lambda x: jaxpool.max_avg_pool(x, 0.0, (4,)), 'mean'),
  ('max_avg_pool alpha=1 per channel', lambda x: jaxpool.max_avg_pool(x, jnp.ones(1), (4,)), 'max'),
  (
    'soft_pool T->0 is max',
    lambda x: jaxpool.soft_pool(x, (4,), temperature=1e-30),
    'max',
    SOFT_MAX_ROWS,
  ),
  (
    'soft_pool traced T->0 is max',
    lambda x: jaxpool.soft_pool(x, (4,), temperature=_traced(1e-30)),
    'max',
    SOFT_MAX_ROWS,
  ),
  (
    'soft_pool large T is avg',
    lambda x: jaxpool.soft_pool(x, (4,), temperature=1e30),
    'mean',
    SOFT_AVERAGE_ROWS,
  ),
  (
    'soft_pool traced large T is avg',
    lambda x: jaxpool.soft_pool(x, (4,), temperature=_traced(1e30)),
    'mean',
    SOFT_AVERAGE_ROWS,
  ),
  ('lp_pool p=1 is sum', lambda x: jaxpool.lp_pool(x, 1.0, (4,)), 'sum'),
  ('lp_pool traced p=1 is sum', lambda x: jaxpool.lp_pool(x, _traced(1), (4,)), 'sum'),
  (
    'lp_pool large p is max |x|',
    lambda x: jaxpool.lp_pool(x, 1e4, (4,)),
    'max_abs',
    None,
    4**1e-4 - 1 + 1e-6,
  ),
  (
    'lp_pool traced large p is max |x|',
    lambda x: jaxpool.lp_pool(x, _traced(1e4), (4,)),
    'max_abs',
    None,
    4**1e-4 - 1 + 1e-5,
  ),
  ('lp_pool p=inf is max |x|', lambda x: jaxpool.lp_pool(x, float('inf'), (4,)), 'max_abs'),
  ('global lp p=1 is sum', lambda x: jaxpool.global_pool(x, 'lp', p=1.0), 'sum'),
  (
    'global lp large p is max |x|',
    lambda x: jaxpool.global_pool(x, 'lp', p=1e4),
    'max_abs',
    None,
    4**1e-4 - 1 + 1e-6,
  ),
  (
    'global soft T->0 is max',
    lambda x: jaxpool.global_pool(x, 'soft', temperature=1e-30),
    'max',
    SOFT_MAX_ROWS,
  ),
  (
    'global soft large T is avg',
    lambda x: jaxpool.global_pool(x, 'soft', temperature=1e30),
    'mean',
    SOFT_AVERAGE_ROWS,
  ),
]


@pytest.mark.parametrize('limit', LIMITS, ids=lambda c: c[0])
def test_documented_limits_hold_with_infinities(limit):
  description, call, kind, rows, rtol = (*limit, None, None)[:5]
  got = np.asarray(call(_windows(rows))).reshape(-1)
  # atol: a mean of the tiny row is subnormal, which XLA:CPU flushes to zero
  np.testing.assert_allclose(
    got,
    _reference(kind, rows),
    rtol=rtol or 1e-6,
    atol=float(np.finfo(np.float32).tiny),
    equal_nan=True,
    err_msg=description,
  )


def test_ada_pool_limits_are_its_branches():
  x = _windows()
  for beta, branch in ((0.0, jaxpool.soft_pool(x, (4,))), (1.0, jaxpool.edscw_pool(x, (4,)))):
    np.testing.assert_array_equal(jaxpool.ada_pool(x, beta, (4,)), branch)
    np.testing.assert_array_equal(jaxpool.ada_pool(x, jnp.full((1,), beta), (4,)), branch)


def test_gem_p1_is_the_mean_of_the_clamped_input():
  x = jnp.abs(_windows())
  got = np.asarray(jaxpool.global_pool(x, 'gem', p=1.0, eps=1e-30)).reshape(-1)
  with np.errstate(over='ignore'):
    want = np.maximum(np.abs(LIMIT_WINDOWS.astype(np.float64)), 1e-30).mean(1).astype(np.float32)
  np.testing.assert_allclose(got, want, rtol=1e-6)


# --- index inputs -----------------------------------------------------------------------

#: Public functions taking flat indices, and the name of that argument.
INDEX_INPUTS = {'max_unpool': 'indices'}


def test_every_index_input_is_listed():
  for name in NAMES:
    params = inspect.signature(getattr(jaxpool, name)).parameters
    found = {p for p in params if p == 'indices' or p.endswith('index')}
    assert found == ({INDEX_INPUTS[name]} if name in INDEX_INPUTS else set()), name


def _unpool_case():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 4, 4, 3)), jnp.float32)
  return jaxpool.max_pool(x, (2, 2), return_indices=True)


@pytest.mark.parametrize('bad', [-1, -16, 16, 1000])
def test_out_of_range_indices_raise_when_concrete(bad):
  y, idx = _unpool_case()
  idx = idx.at[0, 1, 0, 2].set(bad)
  with pytest.raises(ValueError, match='indices'):
    jaxpool.max_unpool(y, idx, (2, 2))
  with pytest.raises(ValueError, match='indices'):
    jaxpool.max_unpool(y, np.asarray(idx), (2, 2))


@pytest.mark.parametrize('bad', [-1, -16, 16, 1000])
def test_out_of_range_indices_are_dropped_under_jit(bad):
  y, idx = _unpool_case()
  idx = idx.at[0, 1, 0, 2].set(bad)
  unpool = jax.jit(lambda v, i: jaxpool.max_unpool(v, i, (2, 2)))
  out, vjp = jax.vjp(lambda v: unpool(v, idx), y)
  # the same as unpooling without that entry (a zero written nowhere)
  want = jaxpool.max_unpool(y.at[0, 1, 0, 2].set(0), jnp.where(idx < 0, 0, idx % 16), (2, 2))
  np.testing.assert_array_equal(out, want)
  g = np.asarray(vjp(jnp.ones_like(out))[0])
  assert g[0, 1, 0, 2] == 0
  assert (np.delete(g.reshape(-1), np.ravel_multi_index((0, 1, 0, 2), g.shape)) == 1).all()


# --- flags and argument types --------------------------------------------------------------


def _flags(fn) -> list[str]:
  return [p.name for p in inspect.signature(fn).parameters.values() if isinstance(p.default, bool)]


@pytest.mark.parametrize('name', sorted(n for n in NAMES if _flags(getattr(jaxpool, n))))
def test_every_flag_is_a_bool(name):
  call = DIRECT_CALLS[name]
  x = jnp.asarray(_X)
  for flag in _flags(getattr(jaxpool, name)):
    # return_mask needs a mask to return
    extra = {'mask': jnp.ones(x.shape[:-1], bool)} if flag == 'return_mask' else {}
    for bad in ('no', 1, None, 0.0):
      with pytest.raises(TypeError, match=flag):
        call(x, **{flag: bad}, **extra)
    for value in (False, True):
      # a NumPy bool is the Python bool: the same program (traced, not compiled)
      want = jax.make_jaxpr(lambda a, value=value: call(a, **{flag: value}, **extra))(x)
      got = jax.make_jaxpr(lambda a, value=value: call(a, **{flag: np.bool_(value)}, **extra))(x)
      assert str(got) == str(want), flag


def _bool_fields(cls) -> list[str]:
  return [f.name for f in dataclasses.fields(cls) if isinstance(f.default, bool)]


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_every_module_flag_is_a_bool(spec):
  for field in _bool_fields(getattr(jl, spec.name)):
    for api in (jl, jn):
      kw = dict(spec.fields)
      extra = dict(spec.nnx_kw) if api is jn else {}
      if 'rngs' in extra:
        extra['rngs'] = nnx.Rngs(extra['rngs'])
      with pytest.raises(TypeError, match=field):
        getattr(api, spec.name)(**{**kw, field: 'no'}, **extra)
      if 'rngs' in extra:
        extra['rngs'] = nnx.Rngs(0)
      getattr(api, spec.name)(**{**kw, field: np.bool_(kw.get(field, False))}, **extra)


@pytest.mark.parametrize('name', NAMES)
def test_complex_input_is_a_type_error(name):
  x = jnp.asarray(_X * (1 + 1j), jnp.complex64)
  with pytest.raises(TypeError, match=r'complex64'):
    DIRECT_CALLS[name](x)


#: Arguments that are static configuration (geometry, names, keys), checked elsewhere.
STATIC = {
  'x',
  'window',
  'strides',
  'padding',
  'dilation',
  'output_size',
  'output_ratio',
  'output_shape',
  'levels',
  'method',
  'grid',
  'axes',
  'granularity',
  'key',
  'blur',
  'pad_mode',
  'divisor_override',
  'kw',
  'num_segments',
}


def test_every_array_argument_is_listed():
  for name in NAMES:
    fn = getattr(jaxpool, name)
    for p in inspect.signature(fn).parameters:
      if p in STATIC or p in _flags(fn):
        continue
      assert (name, p) in ARGUMENTS, (name, p)


@pytest.mark.parametrize('case', sorted(ARGUMENTS), ids=lambda c: '.'.join(c))
def test_wrong_argument_types_raise_errors_naming_the_argument(case):
  _, argument = case
  for value in ('2', jnp.asarray([0.5 + 1j]), {'a': 1} if argument != 'details' else 3):
    with pytest.raises((TypeError, ValueError), match=argument):
      ARGUMENTS[case](value)


# --- Flax tooling -----------------------------------------------------------------------


class _Holder(nn.Module):
  """A model holding a pooling module (what Module.tabulate users have)."""

  inner: nn.Module

  @nn.compact
  def __call__(self, *args, **kw):
    return self.inner(*args, **kw)


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_linen_modules_tabulate(spec):
  x = jnp.asarray(_X if not spec.positive else np.abs(_X) + 0.1)
  args = spec.args(x)
  module = linen_module(spec)
  table = nn.tabulate(module, KEY)(*args, **spec.init_kw)
  assert spec.name in table
  table = _Holder(linen_module(spec)).tabulate(KEY, *args, **spec.init_kw)
  assert spec.name in table


@pytest.mark.parametrize('spec', SPECS, ids=str)
def test_nnx_modules_tabulate(spec):
  x = jnp.asarray(_X if not spec.positive else np.abs(_X) + 0.1)
  table = nnx.tabulate(nnx_module(spec), *spec.args(x), **spec.init_kw)
  assert spec.name in table


# --- call-time flags of the module families: the constructors' check ----------------------

_RANDOM_SPECS = [spec for spec in SPECS if any(m is not None for m in spec.modes)]
_BAD_FLAGS = ('False', 'no', 0, 1, 0.0, np.int64(0))
_GOOD_FLAGS = (False, True, np.bool_(False), np.bool_(True))


@pytest.mark.parametrize('spec', _RANDOM_SPECS, ids=str)
def test_module_call_time_flags_take_the_construction_time_values(spec):
  """``deterministic`` at the call and in the constructor: one check, one set of values."""
  x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (1, 8, 8, 3)), jnp.float32)
  module = linen_module(spec)
  variables = module.init(KEY, *spec.args(x), **spec.init_kw)
  call = lambda m, **kw: m.apply(variables, *spec.args(x), rngs={'pooling': KEY}, **kw)
  for bad in _BAD_FLAGS:
    with pytest.raises(TypeError, match='deterministic'):
      call(module, deterministic=bad)
    with pytest.raises(TypeError, match='deterministic'):
      call(module.clone(deterministic=bad))
    with pytest.raises(TypeError, match='deterministic'):
      nnx_module(spec)(*spec.args(x), deterministic=bad, rngs=KEY)
    with pytest.raises(TypeError, match='deterministic'):
      getattr(jn, spec.name)(**dict(spec.fields), deterministic=bad, rngs=nnx.Rngs(0))
  for good in _GOOD_FLAGS:
    want = call(module, deterministic=bool(good))
    for got in (call(module, deterministic=good), call(module.clone(deterministic=good))):
      for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(g, w)
    nnx_module(spec)(*spec.args(x), deterministic=good, rngs=KEY)
    getattr(jn, spec.name)(**dict(spec.fields), deterministic=good, rngs=nnx.Rngs(0))
