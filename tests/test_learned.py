"""Mixed max-average, gated, tree and DPP pooling: functions and linen modules."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.test_util import check_grads

import jaxpool
from tests.helpers import random_geometry
from tests.reference import learned as ref
from tests.reference.windows import out_shape

OPS = ('max_avg', 'gated', 'tree', 'dpp')


# --- one calling convention for every op -----------------------------------------------


def _geometry(window, strides=None, padding=0, dilation=1, ceil_mode=False, spatial=None):
  return dict(
    window=tuple(window),
    strides=strides,
    padding=padding,
    dilation=dilation,
    ceil_mode=ceil_mode,
    spatial=spatial,
  )


def _out_spatial(g, spatial):
  n = len(g['window'])
  strides = g['window'] if g['strides'] is None else g['strides']
  strides = (strides,) * n if isinstance(strides, int) else tuple(strides)
  dilation = (g['dilation'],) * n if isinstance(g['dilation'], int) else tuple(g['dilation'])
  pad = g['padding']
  pads = [(pad, pad)] * n if isinstance(pad, int) else [(p, p) for p in pad]
  return out_shape(spatial, g['window'], strides, pads, dilation, g['ceil_mode'])


def _case(op, rng, g, x_shape, variant):
  """(params, opts): array parameters (a tuple, None allowed) and static options."""
  n = len(g['window'])
  batch, spatial, channels = x_shape[: -n - 1], x_shape[-n - 1 : -1], x_shape[-1]
  out = _out_spatial(g, spatial)
  w = g['window']
  if op == 'max_avg':
    shapes = [(), (channels,), (*out, 1), (*out, channels)]
    return (rng.uniform(0, 1, shapes[variant % 4]),), {}
  if op == 'gated':
    return (rng.normal(0, 1, (w, (*w, channels))[variant % 2]),), {}
  if op == 'tree':
    depth, tail = variant % 3, ((), (channels,))[variant % 2]
    return (
      rng.normal(0, 0.5, (2**depth, *w, *tail)),
      rng.normal(0, 1, (2**depth - 1, *w, *tail)),
    ), {}
  shape = ((channels,), ())[variant % 2]
  guide = rng.normal(0, 1, (*batch, *out, channels)) if variant % 3 == 1 else None
  return (
    (rng.uniform(0, 2, shape), rng.uniform(0.2, 3, shape), guide),
    dict(symmetric=variant % 4 < 2),
  )


def _geo_args(g):
  return g['window'], g['strides'], g['padding'], g['dilation'], g['ceil_mode']


def _jax(op, x, params, g, **opts):
  if op == 'max_avg':
    return jaxpool.max_avg_pool(x, *params, *_geo_args(g))
  if op == 'gated':
    return jaxpool.gated_pool(x, *params, *_geo_args(g))
  if op == 'tree':
    return jaxpool.tree_pool(x, *params, *_geo_args(g))
  alpha, lam, guide = params
  return jaxpool.dpp_pool(
    x,
    alpha,
    lam,
    g['window'],
    g['strides'],
    g['padding'],
    guide=guide,
    dilation=g['dilation'],
    ceil_mode=g['ceil_mode'],
    **opts,
  )


def _ref(op, x, params, g, **opts):
  geo = _geo_args(g)
  if op == 'max_avg':
    return ref.max_avg_pool(x, *params, *geo)
  if op == 'gated':
    return ref.gated_pool(x, *params, *geo)
  if op == 'tree':
    return ref.tree_pool(x, *params, *geo)
  alpha, lam, guide = params
  return ref.dpp_pool(
    x,
    alpha,
    lam,
    g['window'],
    g['strides'],
    g['padding'],
    guide=guide,
    dilation=g['dilation'],
    ceil_mode=g['ceil_mode'],
    **opts,
  )


def _jitted(op, g, opts):
  return jax.jit(functools.partial(_jax, op, g=g, **opts))


@functools.cache
def _fn(name, *static, **static_kw):
  """``jaxpool.<name>(*arrays, *static, **static_kw)`` jitted once; arrays stay traced.

  A keyword array (DPP's guide) is passed as the keyword ``guide`` of the result.
  """
  op = getattr(jaxpool, name)
  return jax.jit(lambda *arrays, **kw: op(*arrays, *static, **kw, **static_kw))


def _as(params, dtype):
  return tuple(None if p is None else jnp.asarray(p, dtype) for p in params)


# --- values against the NumPy loop references ---------------------------------------------


@pytest.mark.parametrize('ndim, n_cases', [(1, 4), (2, 4), (3, 2)])
@pytest.mark.parametrize('op', OPS)
def test_geometry_sweep_matches_reference(op, ndim, n_cases):
  rng = np.random.default_rng(100 * ndim + OPS.index(op))
  for variant in range(n_cases):
    g = random_geometry(rng, ndim, max_window=4 if ndim < 3 else 3)
    x = rng.normal(size=(2, *g['spatial'], 3))
    params, opts = _case(op, rng, g, x.shape, variant)
    got = _jitted(op, g, opts)(jnp.asarray(x, jnp.float32), _as(params, jnp.float32))
    want = _ref(op, x, params, g, **opts)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=f'{g} {opts}')


@pytest.mark.parametrize('op', OPS)
def test_extreme_magnitudes_match_reference(op):
  rng = np.random.default_rng(1)
  g = _geometry((3, 3), 2, 1, ceil_mode=True)
  base = rng.normal(size=(2, 7, 6, 2))
  params, opts = _case(op, rng, g, base.shape, 1)
  f = _jitted(op, g, opts)
  for x in (base * 1000, base + 500, base * 1e30):
    got = f(jnp.asarray(x, jnp.float32), _as(params, jnp.float32))
    want = _ref(op, x, params, g, **opts)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-4 * np.abs(x).max())


@pytest.mark.parametrize('op', OPS)
def test_finite_values_and_gradients_at_float32_limits(op):
  rng = np.random.default_rng(2)
  g = _geometry((3, 3), 2, 1)
  x = jnp.asarray(np.clip(rng.normal(size=(1, 6, 6, 2)), -1, 1) * 3e38, jnp.float32)
  params, opts = _case(op, rng, g, x.shape, 0)
  if op == 'gated':  # |w| <= 1: no product overflows (the documented condition)
    params = (np.clip(params[0], -1, 1),)
  if op == 'tree':  # leaves with sum |v| <= 1, so the true result is representable
    params = (params[0] / np.abs(params[0]).sum((1, 2), keepdims=True), params[1])
  params = _as(params, jnp.float32)
  f = functools.partial(_jax, op, g=g, **opts)
  y = jax.jit(f)(x, params)
  grads = jax.jit(jax.grad(lambda x, p: jnp.sum(f(x, p) / 1e38), argnums=(0, 1)))(x, params)
  assert np.all(np.isfinite(y))
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(grads))


# --- gradients ------------------------------------------------------------------------------

GRAD_1D = _geometry((3,), 2, 1, ceil_mode=True)
GRAD_2D = _geometry((2, 3), (1, 2), (1, 1), dilation=(2, 1))


@pytest.mark.parametrize(
  'op, variant, g',
  [
    ('max_avg', 3, GRAD_2D),
    ('gated', 1, GRAD_2D),
    ('gated', 0, GRAD_1D),
    ('tree', 1, GRAD_2D),
    ('tree', 2, GRAD_1D),
    ('dpp', 0, GRAD_2D),
    ('dpp', 2, GRAD_2D),
    ('dpp', 1, GRAD_1D),
    ('dpp', 7, GRAD_1D),
  ],
  ids=lambda v: (
    v if isinstance(v, str) else str(v) if isinstance(v, int) else f'{len(v["window"])}d'
  ),
)
def test_gradients_of_inputs_and_parameters(x64, op, variant, g):
  del x64
  rng = np.random.default_rng(3 + variant)
  spatial = (7,) * len(g['window'])
  x = rng.normal(size=(2, *spatial, 2))
  params, opts = _case(op, rng, g, x.shape, variant)
  arrays = tuple(p for p in params if p is not None)

  def f(x, *arrays):
    it = iter(arrays)
    full = tuple(None if p is None else next(it) for p in params)
    return _jax(op, x, full, g, **opts)

  check_grads(jax.jit(f), (jnp.asarray(x), *map(jnp.asarray, arrays)), order=1, modes=['rev'])


def test_max_avg_ties_go_to_the_first_maximum():
  x = np.array([[1.0], [3.0], [3.0], [0.0]])
  grad_x, grad_alpha = jax.jit(
    jax.grad(lambda x, a: jaxpool.max_avg_pool(x, a, (4,)).sum(), argnums=(0, 1))
  )(x, 0.25)
  np.testing.assert_allclose(grad_x[:, 0], [0.1875, 0.4375, 0.1875, 0.1875])
  np.testing.assert_allclose(grad_alpha, 3 - 1.75)


def test_gated_ties_and_gate_gradient():
  x = np.array([[1.0], [3.0], [3.0], [0.0]])
  grad_x, grad_gate = jax.jit(
    jax.grad(lambda x, w: jaxpool.gated_pool(x, w, (4,)).sum(), argnums=(0, 1))
  )(x, np.zeros(4))
  # sigma = 1/2: half the first maximum plus 1/8 each; d/dgate = sigma'(0) (max - avg) x.
  np.testing.assert_allclose(grad_x[:, 0], [0.125, 0.625, 0.125, 0.125])
  np.testing.assert_allclose(grad_gate, 0.25 * 1.25 * x[:, 0])


# --- limits that pin the maths --------------------------------------------------------------


GEO = ((3, 3), 2, 1, 1, True)  # window, strides, padding, dilation, ceil_mode


def _x(rng, shape=(2, 7, 6, 3), low=None, high=None):
  data = rng.normal(size=shape) if low is None else rng.uniform(low, high, shape)
  return jnp.asarray(data, jnp.float32)


def test_max_avg_limits_are_avg_and_max(rng):
  x = _x(rng)
  avg = _fn('avg_pool', *GEO, count_include_pad=False)(x)
  np.testing.assert_allclose(_fn('max_avg_pool', *GEO)(x, 0.0), avg, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(_fn('max_avg_pool', *GEO)(x, 1.0), _fn('max_pool', *GEO)(x))


def test_gated_zero_gate_is_mean_of_max_and_avg(rng):
  x = _x(rng)
  want = 0.5 * (_fn('max_pool', *GEO)(x) + _fn('avg_pool', *GEO, count_include_pad=False)(x))
  for gate in (np.zeros((3, 3)), np.zeros((3, 3, 3))):
    np.testing.assert_allclose(_fn('gated_pool', *GEO)(x, gate), want, rtol=1e-6, atol=1e-6)


def test_gated_saturated_gate_selects_max_or_avg(rng):
  x = _x(rng, (2, 6, 6, 2), 1, 2)  # positive: sign(<gate, x>) = sign(gate)
  gated = _fn('gated_pool', (2, 2))
  np.testing.assert_allclose(
    gated(x, np.full((2, 2), 100.0)), _fn('max_pool', (2, 2))(x), rtol=1e-6
  )
  np.testing.assert_allclose(
    gated(x, np.full((2, 2), -100.0)), _fn('avg_pool', (2, 2))(x), rtol=1e-6
  )
  # Overlapping windows (the limits' masks held as bool arrays): values and gradients too.
  ct = _x(rng, (2, 3, 3, 2))
  grad = lambda f: jax.jit(jax.value_and_grad(lambda a: jnp.sum(f(a) * ct)))
  geo = ((3, 3), 2, 1)
  for gate, pool in ((100.0, jaxpool.max_pool), (-100.0, jaxpool.avg_pool)):
    got = grad(lambda a, gate=gate: jaxpool.gated_pool(a, np.full((3, 3), gate), *geo))(x)
    kw = {} if pool is jaxpool.max_pool else {'count_include_pad': False}
    want = grad(lambda a, pool=pool, kw=kw: pool(a, *geo, **kw))(x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-7)


def test_tree_heap_order_and_leaf_filters(rng):
  x = _x(rng, (2, 6, 6, 2), 1, 2)  # positive: sigma(+100 * sum x) = 1 picks the left child
  tree = _fn('tree_pool', (2, 2))
  avg = _fn('avg_pool', (2, 2))(x)
  leaves = np.stack([np.full((2, 2), (m + 1) / 4) for m in range(4)])  # leaf m: (m+1) * avg
  # gates of nodes 0, 1, 2; node i has children 2i+1, 2i+2; leaves are nodes 3..6
  for signs, leaf in [((1, 1, 1), 0), ((1, -1, 1), 1), ((-1, 1, 1), 2), ((-1, 1, -1), 3)]:
    gates = 100.0 * np.asarray(signs, np.float32)[:, None, None] * np.ones((3, 2, 2))
    np.testing.assert_allclose(
      tree(x, leaves, gates), (leaf + 1) * avg, rtol=1e-5, err_msg=str(signs)
    )
  # depth 0: one leaf, no gate -- a linear filter; a one-hot filter picks its tap.
  one_hot = np.zeros((1, 2, 2))
  one_hot[0, 1, 0] = 1.0
  np.testing.assert_allclose(tree(x, one_hot, np.zeros((0, 2, 2))), x[:, 1::2, 0::2], rtol=1e-6)
  # equal leaves: any gate gives that leaf.
  np.testing.assert_allclose(
    tree(x, np.repeat(leaves[:1], 2, 0), _x(rng, (1, 2, 2))), avg, rtol=1e-5
  )


def _dpp_fn(window, strides=None, padding=0, dilation=1, ceil_mode=False, **kw):
  """dpp_pool(x, alpha, lam, guide) jitted for a static geometry and options."""
  f = _fn('dpp_pool', window, strides, padding, dilation=dilation, ceil_mode=ceil_mode, **kw)
  return lambda x, alpha, lam, guide=None: f(x, alpha, lam, guide=guide)


@pytest.mark.parametrize('symmetric', [True, False])
def test_dpp_lam_zero_is_average_pooling(rng, symmetric):
  x = _x(rng)
  dpp = _dpp_fn(*GEO, symmetric=symmetric)
  avg = _fn('avg_pool', *GEO, count_include_pad=False)(x)
  guide = _x(rng, avg.shape)
  for g in (None, guide):
    for alpha in (0.0, 0.3, np.arange(3.0)):
      np.testing.assert_allclose(dpp(x, alpha, 0.0, g), avg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dpp(x, 0.5, 1e-6, g), avg, rtol=1e-4, atol=1e-5)
  # and alpha -> inf swamps the detail term
  np.testing.assert_allclose(dpp(x, 1e7, 2.0), avg, rtol=1e-4, atol=1e-5)


@functools.cache
def _dpp_and_grads(symmetric):
  def f(x, a, l, g):
    y, vjp = jax.vjp(
      lambda *args: jaxpool.dpp_pool(*args[:3], (3, 3), 2, 1, guide=args[3], symmetric=symmetric),
      x,
      a,
      l,
      g,
    )
    return y, vjp(jnp.ones_like(y))

  return jax.jit(f)


@pytest.mark.parametrize('value', [0.0, -3.0, 1e-20, 1e30, -2e38])
def test_dpp_of_constant_windows_is_the_constant(rng, value):
  x = np.full((1, 6, 6, 3), value, jnp.float32)
  # equal weights and zero weight derivatives: the gradient of the mean over valid taps,
  # sum over the windows holding a pixel of 1 / count; counts per dim (2, 3, 3)
  per_dim = np.array([1 / 2, 1 / 2 + 1 / 3, 1 / 3, 2 / 3, 1 / 3, 1 / 3])
  avg_grad = np.broadcast_to(np.outer(per_dim, per_dim)[None, :, :, None], x.shape)
  alpha, lam = np.array([0.0, 1.0, 5.0]), np.array([0.5, 2.0, 30.0])
  for symmetric in (True, False):
    for guide in (None, _x(rng, (1, 3, 3, 3))):
      y, grads = _dpp_and_grads(symmetric)(x, alpha, lam, guide)
      np.testing.assert_allclose(y, value, rtol=1e-6)
      assert all(np.all(np.isfinite(gr)) for gr in jax.tree.leaves(grads))
      np.testing.assert_allclose(grads[0], avg_grad, rtol=1e-5)


def test_dpp_large_lambda_and_alpha_stay_finite(rng):
  x = _x(rng, (2, 8, 8, 2))
  lo, hi = _fn('min_pool', (2, 2))(x), _fn('max_pool', (2, 2))(x)
  dpp = _dpp_fn((2, 2))
  value_and_grads = jax.jit(
    jax.value_and_grad(lambda x, a, l: jaxpool.dpp_pool(x, a, l, (2, 2)).sum(), argnums=(0, 1, 2))
  )
  for alpha, lam in [(0.0, 300.0), (1e30, 300.0), (1e-30, 1e4), (3e38, 0.0), (3e38, 1e6)]:
    alpha, lam = np.float32(alpha), np.float32(lam)
    total, grads = value_and_grads(x, alpha, lam)
    assert np.isfinite(total) and all(np.all(np.isfinite(gr)) for gr in grads)
    y = dpp(x, alpha, lam)
    assert np.all((y >= lo - 1e-5) & (y <= hi + 1e-5))  # a convex combination


def test_dpp_asymmetric_rewards_only_taps_above_the_guide():
  x = np.array([[0.0], [0.0], [0.0], [-4.0]])
  # guide -1, d = (1, 1, 1, -3). Symmetric: d**2 / mean = (1, 1, 1, 9) / 3, the outlier
  # weighs most. Asymmetric: max(d, 0)**2 / mean = (1, 1, 1, 0) / 0.75, it weighs least.
  sym = _dpp_fn((4,), eps=1e-12)(x, 1.0, 2.0)
  asym = _dpp_fn((4,), eps=1e-12, symmetric=False)(x, 1.0, 2.0)
  np.testing.assert_allclose(sym[:, 0], [-4.0 * 4 / 8], rtol=1e-6)  # weights 4/3 x3, 4
  np.testing.assert_allclose(asym[:, 0], [-4.0 * 1 / 8], rtol=1e-6)  # weights 7/3 x3, 1


# --- dtypes, batch dims, transformations, sharding -----------------------------------------


@pytest.mark.parametrize('dtype', [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize('op', OPS)
def test_half_precision_keeps_dtype(op, dtype):
  rng = np.random.default_rng(4)
  g = _geometry((3, 3), 2, 1)
  x = rng.normal(size=(2, 7, 7, 3))
  params, opts = _case(op, rng, g, x.shape, 2)
  f = _jitted(op, g, opts)
  y = f(jnp.asarray(x, dtype), _as(params, jnp.float32))
  assert y.dtype == dtype
  want = f(np.asarray(jnp.asarray(x, dtype)).astype(np.float32), _as(params, jnp.float32))
  np.testing.assert_allclose(np.asarray(y, np.float32), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('op', OPS)
def test_batch_dims_vmap_and_sharding(op):
  rng = np.random.default_rng(5)
  g = _geometry((2, 2), 1, 1, ceil_mode=True)
  x = jnp.asarray(rng.normal(size=(8, 5, 6, 3)), jnp.float32)
  params, opts = _case(op, rng, g, x.shape, 1 if op != 'dpp' else 0)  # dpp: lite guide
  params = _as(params, jnp.float32)
  f = jax.jit(functools.partial(_jax, op, g=g, **opts))
  y = f(x, params)
  # unbatched
  np.testing.assert_allclose(f(x[3], params), y[3], rtol=1e-6, atol=1e-6)
  # two batch dims
  y2 = f(x.reshape(2, 4, 5, 6, 3), params)
  np.testing.assert_allclose(y2.reshape(y.shape), y, rtol=1e-6, atol=1e-6)
  # vmap over the batch
  np.testing.assert_allclose(jax.jit(jax.vmap(f, (0, None)))(x, params), y, rtol=1e-6, atol=1e-6)
  # a batch sharded over 8 devices, forward and gradient
  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec('batch')))
  np.testing.assert_allclose(f(xs, params), y, rtol=1e-6, atol=1e-6)
  loss = jax.jit(jax.grad(lambda x, p: jnp.sum(f(x, p) ** 2), argnums=(0, 1)))
  for a, b in zip(jax.tree.leaves(loss(xs, params)), jax.tree.leaves(loss(x, params))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_dpp_guide_under_vmap_and_grad(rng):
  x = jnp.asarray(rng.normal(size=(4, 6, 6, 2)), jnp.float32)
  guide = jnp.asarray(rng.normal(size=(4, 3, 3, 2)), jnp.float32)
  f = lambda x, g: jaxpool.dpp_pool(x, 1.0, 1.5, (2, 2), guide=g, symmetric=False)
  np.testing.assert_allclose(jax.jit(jax.vmap(f))(x, guide), jax.jit(f)(x, guide), rtol=1e-6)
  grad = jax.jit(jax.grad(lambda g: f(x, g).sum()))(guide)
  assert grad.shape == guide.shape and np.any(grad != 0)


def test_dpp_reverse_barrier_changes_nothing_but_the_program(monkeypatch, rng):
  """Overlapping (or padded) windows read their tangent taps through
  ``_numerics.reverse_barrier`` (a cond); tiling windows do not. With and without NaN (one
  example holds one), under jit and vmap, gradients and jvps equal those of the same rule
  without the barrier."""
  from jaxpool import _numerics

  x = rng.normal(size=(4, 9, 8, 3)).astype(np.float32)
  x[1, 4, 3, 2] = np.nan
  t = rng.normal(size=x.shape).astype(np.float32)

  def program(geo):
    f = lambda a: jaxpool.dpp_pool(a, 0.5, 1.5, *geo)
    grad = jax.grad(lambda a, c: jnp.sum(f(a) * c))
    per_example = jax.vmap(lambda a, c: grad(a[None], c[None])[0])
    tangent = lambda a, u: jax.jvp(f, (a,), (u,))[1]
    run = lambda a, c, u: {'grad': grad(a, c), 'vmap': per_example(a, c), 'jvp': tangent(a, u)}
    ct = np.random.default_rng(1).normal(size=jax.eval_shape(f, x).shape).astype(np.float32)
    return jax.jit(run), ct, str(jax.make_jaxpr(grad)(x, ct)).count('cond[')

  for geo, barrier in ((((3, 3), 2, 1), True), (((2, 3), 1), True), (((2, 2),), False)):
    assert (program(geo)[2] > 0) == barrier, geo
  run, ct, _ = program(((3, 3), 2, 1))
  got = run(x, ct, t)
  with monkeypatch.context() as m:
    m.setattr(_numerics, 'reverse_barrier', lambda tree, live: tree)
    run, ct, conds = program(((3, 3), 2, 1))
    assert conds == 0
    want = run(x, ct, t)
  for key in want:
    nan = np.isnan(want[key]).reshape(4, -1).any(axis=1)
    np.testing.assert_array_equal(nan, [False, True, False, False], err_msg=key)
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


# --- errors --------------------------------------------------------------------------------


def test_errors_name_the_argument():
  x = np.zeros((2, 6, 6, 3))
  with pytest.raises(TypeError, match='max_avg_pool needs a floating-point x.*int32'):
    jaxpool.max_avg_pool(np.zeros((6, 6, 1), jnp.int32), 0.5, (2, 2))
  with pytest.raises(TypeError, match='dpp_pool needs a floating-point'):
    jaxpool.dpp_pool(np.zeros((6, 6, 1), jnp.int32), 1.0, 1.0, (2, 2))
  with pytest.raises(
    ValueError,
    match=r'alpha must broadcast to the output shape \(2, 3, 3, 3\)'
    r'.*got shape \(4,\)',
  ):
    jaxpool.max_avg_pool(x, np.zeros(4), (2, 2))
  with pytest.raises(ValueError, match=r'alpha must broadcast.*got shape \(2, 2, 1\)'):
    jaxpool.max_avg_pool(x, np.zeros((2, 2, 1)), (2, 2))
  with pytest.raises(
    ValueError,
    match=r'gate must have shape \(2, 2\) .* or \(2, 2, 3\) .*'
    r'got shape \(4,\)',
  ):
    jaxpool.gated_pool(x, np.zeros(4), (2, 2))
  with pytest.raises(ValueError, match=r'gate must have shape.*got shape \(2, 2, 2\)'):
    jaxpool.gated_pool(x, np.zeros((2, 2, 2)), (2, 2))
  with pytest.raises(ValueError, match=r'leaves must hold 2\*\*depth filters .* got 3'):
    jaxpool.tree_pool(x, np.zeros((3, 2, 2)), np.zeros((2, 2, 2)), (2, 2))
  with pytest.raises(
    ValueError, match=r'gates must have shape \(1, 2, 2\) .*got shape \(2, 2, 2\)'
  ):
    jaxpool.tree_pool(x, np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), (2, 2))
  with pytest.raises(ValueError, match=r'leaves must have shape .*got shape \(2, 2\)'):
    jaxpool.tree_pool(x, np.zeros((2, 2)), np.zeros((1, 2, 2)), (2, 2))
  with pytest.raises(
    ValueError, match=r'leaves must have shape \(2, 2, 2\) .*got shape \(2, 3, 2\)'
  ):
    jaxpool.tree_pool(x, np.zeros((2, 3, 2)), np.zeros((1, 2, 2)), (2, 2))
  with pytest.raises(ValueError, match=r'alpha must be >= 0 everywhere'):
    jaxpool.dpp_pool(x, np.array([1.0, -1.0, 1.0]), 1.0, (2, 2))
  with pytest.raises(
    ValueError, match=r'lam must be a scalar or have shape \(3,\).*got shape \(2,\)'
  ):
    jaxpool.dpp_pool(x, 1.0, np.ones(2), (2, 2))
  with pytest.raises(ValueError, match=r'lam must be >= 0'):
    jaxpool.dpp_pool(x, 1.0, -0.5, (2, 2))
  with pytest.raises(
    ValueError,
    match=r'guide must have the output shape .* \(2, 3, 3, 3\); '
    r'got shape \(2, 6, 6, 3\)',
  ):
    jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2), guide=x)
  with pytest.raises(ValueError, match='eps must be a positive finite number; got 0'):
    jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2), eps=0)
  with pytest.raises(TypeError, match="symmetric must be a bool; got 'yes'"):
    jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2), symmetric='yes')
  with pytest.raises(ValueError, match='larger than the padded input'):
    jaxpool.gated_pool(x, np.zeros((7, 7)), (7, 7))
  with pytest.raises(TypeError, match='window must be a sequence'):
    jaxpool.dpp_pool(x, 1.0, 1.0, 2)


def test_traced_parameters_skip_the_value_check():
  x = np.ones((4, 4, 1))
  y = jax.jit(lambda a, l: jaxpool.dpp_pool(x, a, l, (2, 2)))(1.0, 2.0)
  np.testing.assert_allclose(y, 1.0)


def test_dpp_stacked_and_unrolled_tap_paths_agree(monkeypatch, x64):
  # windows beyond _windows.UNROLL_MAX_TAPS run on one stacked tap array
  from jaxpool import _windows

  rng = np.random.default_rng(8)
  x = rng.standard_normal((2, 9, 8, 3))
  guide = rng.standard_normal((2, 5, 3, 3))
  alpha, lam = np.array([0.5, 1.0, 2.0]), np.array([1.0, 0.5, 3.0])
  calls = {
    'lite': lambda x, a, l: jaxpool.dpp_pool(
      x, a, l, (3, 4), (2, 3), ((1, 1), (2, 1)), dilation=(1, 2), ceil_mode=True
    ),
    'guided asymmetric': lambda x, a, l: jaxpool.dpp_pool(
      x,
      a,
      l,
      (3, 4),
      (2, 3),
      ((1, 1), (2, 1)),
      guide=guide,
      symmetric=False,
      dilation=(1, 2),
      ceil_mode=True,
    ),
  }
  for name, f in calls.items():
    out = {}
    for limit in (1000, 0):
      monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', limit)
      # a fresh jit per limit: UNROLL_MAX_TAPS is read when the function is traced
      ct = np.cos(np.arange(math.prod(jax.eval_shape(f, x, alpha, lam).shape)))

      def value_and_vjp(x, alpha, lam, ct, f=f):
        y, vjp = jax.vjp(f, x, alpha, lam)
        return y, vjp(ct.reshape(y.shape))

      out[limit] = jax.jit(value_and_vjp)(x, alpha, lam, ct)
    for a, b in zip(jax.tree.leaves(out[1000]), jax.tree.leaves(out[0])):
      np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13, err_msg=name)
