"""Classic pooling: parity with torch.nn.functional, NumPy references, transforms, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

import jaxpool
from jaxpool import _geometry, _reductions
from tests import helpers
from tests.reference import classic as ref

F_NAMES = {1: '1d', 2: '2d', 3: '3d'}


def _torch_fn(name, n):
  torch = helpers.torch_or_skip()
  return getattr(torch.nn.functional, f'{name}{F_NAMES[n]}')


def _torch_pad_ok(geo):
  # torch checks pad <= window // 2 (not the effective window) before pooling,
  # and its 3-d average pooling refuses inputs smaller than the window.
  return all(p <= k // 2 for p, k in zip(geo['padding'], geo['window'])) and all(
    s >= d * (k - 1) + 1 for s, k, d in zip(geo['spatial'], geo['window'], geo['dilation'])
  )


def _sweep(seed, count, **kw):
  rng = np.random.default_rng(seed)
  out = []
  while len(out) < count:
    geo = helpers.random_geometry(rng, int(rng.integers(1, 4)), **kw)
    if _torch_pad_ok(geo):
      out.append(geo)
  return out


def _torch_grad(fn, x, cotangent, n, *args, **kwargs):
  torch = helpers.torch_or_skip()
  xt = torch.tensor(helpers.to_torch_layout(x, n), requires_grad=True)
  out = fn(xt, *args, **kwargs)
  y = out[0] if isinstance(out, tuple) else out
  y.backward(torch.tensor(helpers.to_torch_layout(cotangent, n)))
  return out, helpers.from_torch_layout(xt.grad, n)


def _jax_value_and_grad(f, x, cotangent, has_aux=False):
  """``f(x)`` and its VJP with ``cotangent`` (:func:`helpers.value_and_vjp`: one jitted
  program, the cotangent an argument).

  With ``has_aux``, ``f`` returns ``(y, aux)`` (integer indices, not differentiated) and this
  returns ``(y, aux, x_bar)``.
  """
  cotangent = jnp.asarray(cotangent)
  if has_aux:
    aux = jax.eval_shape(f, x)[1]
    cotangent = (cotangent, np.zeros(aux.shape, jax.dtypes.float0))
  out, (g,) = helpers.value_and_vjp(f, (jnp.asarray(x),), cotangent)
  return (*out, g) if has_aux else (out, g)


@pytest.mark.parametrize('geo', _sweep(1, 36), ids=str)
def test_max_pool_matches_torch(geo):
  n = len(geo['window'])
  fn = _torch_fn('max_pool', n)
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, *geo['spatial'], 3)).astype(np.float32)
  x[1] = np.round(x[1])  # many ties: torch routes them to the first maximum
  args = (geo['window'], geo['strides'], geo['padding'], geo['dilation'], geo['ceil_mode'])
  f = lambda a: jaxpool.max_pool(a, *args, return_indices=True)
  cotangent = rng.standard_normal(jax.eval_shape(f, x)[0].shape).astype(np.float32)
  y, idx, g = _jax_value_and_grad(f, x, cotangent, has_aux=True)
  (yt, it), gt = _torch_grad(fn, x, cotangent, n, *args, return_indices=True)
  np.testing.assert_array_equal(y, helpers.from_torch_layout(yt, n))
  np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, n))
  assert idx.dtype == jnp.int32
  np.testing.assert_allclose(g, gt, atol=1e-6)


# Small windows that cover their input exactly recompute the winner inside the cotangent's
# loop; their neighbours (a remainder, padding, more taps) hold it. Both, with ties and a NaN.
COVERING = [
  ((8, 6), (2, 2), 2, 0, True),
  ((5, 7), (2, 2), 1, 0, True),
  ((4, 6), (1, 2), (1, 2), 0, True),
  ((10,), (2,), 2, 0, True),
  ((12,), (4,), 4, 0, True),
  ((7, 6), (2, 2), 2, 0, False),  # a row left over
  ((8, 6), (2, 2), 2, 1, False),  # padded
  ((9, 6), (3, 3), 3, 0, False),  # 9 taps
]


@pytest.mark.parametrize('spatial,window,strides,padding,recomputed', COVERING, ids=str)
def test_max_pool_covering_windows_match_torch_with_ties_and_nan(
  spatial, window, strides, padding, recomputed
):
  n = len(window)
  geom = _geometry.pool_geometry((2, *spatial, 3), window, strides, padding, 1, False)[0]
  assert _reductions._recomputed_in_place(geom) is recomputed
  fn = _torch_fn('max_pool', n)
  rng = np.random.default_rng(11)
  x = np.round(rng.standard_normal((2, *spatial, 3)) * 1.5).astype(np.float32)  # many ties
  x[1].reshape(-1)[[1, 7]] = np.nan
  f = lambda a: jaxpool.max_pool(a, window, strides, padding, return_indices=True)
  cotangent = rng.standard_normal(jax.eval_shape(f, x)[0].shape).astype(np.float32)
  y, idx, g = _jax_value_and_grad(f, x, cotangent, has_aux=True)
  (yt, it), gt = _torch_grad(fn, x, cotangent, n, window, strides, padding, return_indices=True)
  np.testing.assert_array_equal(y, helpers.from_torch_layout(yt, n))
  np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, n))
  np.testing.assert_array_equal(g, gt)
  # forward mode picks the same winners
  t = rng.standard_normal(x.shape).astype(np.float32)
  dy = jax.jit(lambda a, v: jax.jvp(lambda b: f(b)[0], (a,), (v,))[1])(x, t)
  want = np.take_along_axis(t.reshape(2, -1, 3), idx.reshape(2, -1, 3), axis=1)
  np.testing.assert_array_equal(dy, want.reshape(dy.shape))


# (window, strides, padding, per-dim forward): overlapping windows over two dims reduce one
# dim at a time unless short and strided (an elementwise max of taps); 64x64 planes with ties,
# without NaN (XLA's own max) and with NaN (the NaN-keeping reduction).
PER_DIM_MAX = [
  ((3, 3), 1, 1, True),
  ((4, 4), 2, 1, True),
  ((2, 2), 1, 0, True),
  ((3, 3), 2, 1, False),
  ((2, 2), 2, 0, False),
]


@pytest.mark.parametrize('window,strides,padding,per_dim', PER_DIM_MAX, ids=str)
def test_max_pool_per_dim_forward_matches_torch_with_nan(window, strides, padding, per_dim):
  geom = _geometry.pool_geometry((2, 64, 64, 2), window, strides, padding, 1, False)[0]
  assert _reductions.extremum_separable(geom) is per_dim
  torch = helpers.torch_or_skip()
  fn = _torch_fn('max_pool', 2)
  rng = np.random.default_rng(17)
  x = np.round(rng.standard_normal((2, 64, 64, 2)) * 2).astype(np.float32)  # ties
  clean = x.copy()
  x[1].reshape(-1)[rng.choice(x[1].size, 6, replace=False)] = np.nan
  f = jax.jit(lambda a: jaxpool.max_pool(a, window, strides, padding, return_indices=True))
  for data in (clean, x):  # the finite path (XLA's max) and the NaN-keeping one
    y, idx = f(data)
    xt = torch.tensor(helpers.to_torch_layout(data, 2))
    yt, it = fn(xt, window, strides, padding, return_indices=True)
    np.testing.assert_array_equal(y, helpers.from_torch_layout(yt, 2))
    np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, 2))


def test_max_pool_nan_and_inf_routing_matches_torch():
  fn = _torch_fn('max_pool', 2)
  x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1) % 5
  x[0, 0, 1, 0] = np.nan
  x[0, 1, 0, 0] = np.nan  # two NaNs in one window: torch picks the last
  x[0, 4:, 4:, 0] = -np.inf  # an all -inf window
  cotangent = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1) + 1
  (yt, it), gt = _torch_grad(fn, x, cotangent, 2, 2, 2, return_indices=True)
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  np.testing.assert_array_equal(y, helpers.from_torch_layout(yt, 2))
  np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, 2))
  _, g = _jax_value_and_grad(lambda a: jaxpool.max_pool(a, (2, 2)), x, cotangent)
  np.testing.assert_array_equal(g, gt)


@pytest.mark.parametrize('geo', _sweep(2, 30, dilation=False), ids=str)
@pytest.mark.parametrize('count_include_pad', [True, False])
def test_avg_pool_matches_torch(geo, count_include_pad):
  n = len(geo['window'])
  fn = _torch_fn('avg_pool', n)
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, *geo['spatial'], 3)).astype(np.float32)
  args = (geo['window'], geo['strides'], geo['padding'])
  f = lambda a: jaxpool.avg_pool(
    a, *args, ceil_mode=geo['ceil_mode'], count_include_pad=count_include_pad
  )
  y = jax.eval_shape(f, x)
  cotangent = rng.standard_normal(y.shape).astype(np.float32)
  yt, gt = _torch_grad(
    fn, x, cotangent, n, *args, ceil_mode=geo['ceil_mode'], count_include_pad=count_include_pad
  )
  y, g = _jax_value_and_grad(jax.jit(f), x, cotangent)
  np.testing.assert_allclose(y, helpers.from_torch_layout(yt, n), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g, gt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('n', [2, 3])
@pytest.mark.parametrize('divisor', [1, 3, 7])
def test_avg_pool_divisor_override_matches_torch(n, divisor):
  fn = _torch_fn('avg_pool', n)
  rng = np.random.default_rng(n)
  x = rng.standard_normal((2,) + (7,) * n + (2,)).astype(np.float32)
  cotangent = rng.standard_normal((2,) + (4,) * n + (2,)).astype(np.float32)
  yt, gt = _torch_grad(fn, x, cotangent, n, 3, 2, 1, ceil_mode=True, divisor_override=divisor)
  y, g = _jax_value_and_grad(
    lambda a: jaxpool.avg_pool(a, (3,) * n, 2, 1, ceil_mode=True, divisor_override=divisor),
    x,
    cotangent,
  )
  np.testing.assert_allclose(y, helpers.from_torch_layout(yt, n), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g, gt, rtol=1e-5, atol=1e-6)


# (spatial, window, strides, padding, ceil_mode, divisor_override, count_include_pad, per-dim):
# the window sums run one reduce-window per dim where windows overlap at unit stride over two
# or more dims, or are large, with a single divisor scaling the first pass's result; small
# strided, tiling and 1-d windows take one pass.
PER_DIM_SUMS = [
  ((14, 13), (7, 7), 1, 3, False, None, True, True),  # the large overlapping window
  ((9, 8), (3, 3), 1, 1, True, None, False, True),  # per-window divisors (no static scale)
  ((7, 9), (3, 2), 1, 1, False, 5, True, True),  # divisor_override
  ((5, 6, 7), (3, 3, 2), (2, 1, 2), 1, True, None, True, True),  # 3-d, three passes
  ((20, 19), (6, 6), 2, 2, False, None, True, True),  # 36 taps: separable pays
  ((9, 8), (3, 3), 2, 1, False, None, True, False),  # small and strided: one pass
  ((8, 6), (2, 2), 2, 0, False, None, True, False),  # tiling: one pass
  ((12,), (3,), 2, 1, False, None, True, False),  # 1-d: one pass
]


@pytest.mark.parametrize(
  'spatial,window,strides,padding,ceil_mode,divisor,cip,per_dim', PER_DIM_SUMS, ids=str
)
def test_avg_pool_per_dim_sums_match_torch(
  spatial, window, strides, padding, ceil_mode, divisor, cip, per_dim
):
  n = len(window)
  geom = _geometry.pool_geometry((2, *spatial, 3), window, strides, padding, 1, ceil_mode)[0]
  assert _reductions.sum_separable(geom) is per_dim
  fn = _torch_fn('avg_pool', n)
  rng = np.random.default_rng(13)
  x = rng.standard_normal((2, *spatial, 3)).astype(np.float32)
  kw = dict(ceil_mode=ceil_mode, count_include_pad=cip)
  if divisor is not None:  # torch's avg_pool1d has no divisor_override
    kw['divisor_override'] = divisor
  f = lambda a: jaxpool.avg_pool(a, window, strides, padding, **kw)
  cotangent = rng.standard_normal(jax.eval_shape(f, x).shape).astype(np.float32)
  y, g = _jax_value_and_grad(f, x, cotangent)
  yt, gt = _torch_grad(fn, x, cotangent, n, window, strides, padding, **kw)
  np.testing.assert_allclose(y, helpers.from_torch_layout(yt, n), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g, gt, rtol=1e-5, atol=1e-6)
  # forward mode: the same linear map as the values (avg_pool of the tangent)
  t = rng.standard_normal(x.shape).astype(np.float32)
  dy = jax.jit(lambda a, v: jax.jvp(f, (a,), (v,))[1])(x, t)
  np.testing.assert_allclose(dy, f(t), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('geo', _sweep(4, 12), ids=str)
def test_avg_pool_with_dilation_matches_reference(geo):
  rng = np.random.default_rng(5)
  x = rng.standard_normal((2, *geo['spatial'], 2)).astype(np.float32)
  pads = [(p, p) for p in geo['padding']]
  for cip in (True, False):
    y = jaxpool.avg_pool(
      x,
      geo['window'],
      geo['strides'],
      geo['padding'],
      geo['dilation'],
      geo['ceil_mode'],
      count_include_pad=cip,
    )
    expect = ref.avg_pool(
      x,
      geo['window'],
      geo['strides'],
      pads,
      geo['dilation'],
      geo['ceil_mode'],
      count_include_pad=cip,
    )
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('p', [1, 2, 3, 1.5])
@pytest.mark.parametrize('n', [1, 2, 3])
def test_lp_pool_matches_torch(p, n):
  fn = _torch_fn('lp_pool', n)
  rng = np.random.default_rng(n)
  x = rng.standard_normal((2,) + (7,) * n + (3,)).astype(np.float32)
  if p != int(p) or p == 3:
    x = np.abs(x) + 0.1  # torch gives NaN for negative sums with fractional 1/p
  window, stride = (3,) * n, 2
  cotangent = rng.standard_normal((2,) + (3,) * n + (3,)).astype(np.float32)
  yt, gt = _torch_grad(fn, x, cotangent, n, p, window if n > 1 else 3, stride)
  y, g = _jax_value_and_grad(lambda a: jaxpool.lp_pool(a, p, window, stride), x, cotangent)
  np.testing.assert_allclose(y, helpers.from_torch_layout(yt, n), rtol=2e-5, atol=1e-5)
  np.testing.assert_allclose(g, gt, rtol=2e-4, atol=1e-5)


# Four random geometries each run, from a pool of twelve in rotation.
@pytest.mark.parametrize('geo', helpers.rotating_share(_sweep(6, 12), 0, 4), ids=str)
def test_lp_pool_geometry_matches_reference(geo):
  rng = np.random.default_rng(8)
  x = rng.standard_normal((2, *geo['spatial'], 2)).astype(np.float32)
  pads = [(p, p) for p in geo['padding']]
  args = (geo['window'], geo['strides'], geo['padding'], geo['dilation'], geo['ceil_mode'])
  for p in (2, 3):
    np.testing.assert_allclose(
      jaxpool.lp_pool(x, p, *args),
      ref.lp_pool(x, p, *args[:2], pads, *args[3:]),
      rtol=2e-5,
      atol=1e-5,
    )


def test_lp_pool_extreme_values_and_zero_windows(x64):
  x = np.array([[1e30], [2e30], [0.0], [0.0], [1e-30], [3e-30]], np.float32)
  y = jaxpool.lp_pool(x, 2, (2,))
  np.testing.assert_allclose(y[:, 0], [np.sqrt(5) * 1e30, 0, np.sqrt(10) * 1e-30], rtol=1e-6)
  g = jax.grad(lambda a: jaxpool.lp_pool(a, 2, (2,)).sum())(x)
  assert np.isfinite(g).all() and (g[2:4] == 0).all()
  gp = jax.grad(lambda p: jaxpool.lp_pool(jnp.abs(jnp.asarray(x)), p, (2,)).sum())(2.0)
  assert np.isfinite(gp)


def test_lp_pool_stacked_and_unrolled_tap_loops_agree(monkeypatch, x64):
  # windows beyond _windows.UNROLL_MAX_TAPS sum one stacked tap array
  from jaxpool import _windows

  x = np.random.default_rng(3).standard_normal((2, 9, 8, 7, 3))
  args = ((3, 2, 2), (2, 1, 3), (1, 1, 0), (1, 2, 1), True)
  out = {}
  for limit in (1000, 0):
    monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', limit)
    # a fresh jit per limit: UNROLL_MAX_TAPS is read when the function is traced
    out[limit] = jax.jit(jax.value_and_grad(lambda a: jnp.sum(jaxpool.lp_pool(a, 3, *args) ** 2)))(
      x
    )
  np.testing.assert_allclose(out[0][0], out[1000][0], rtol=1e-12)
  np.testing.assert_allclose(out[0][1], out[1000][1], rtol=1e-12, atol=1e-14)
  pads = tuple((p, p) for p in args[2])
  np.testing.assert_allclose(
    jaxpool.lp_pool(x, 3, *args),
    ref.lp_pool(x, 3, args[0], args[1], pads, args[3], args[4]),
    rtol=1e-10,
  )


def test_lp_pool_near_the_float32_limit():
  # window maxima above 2**126: 1/max is subnormal, so a plain x / max flushes to 0
  x = np.array([[3e38], [1e37], [-2.5e38], [0.0], [2e38], [2e38]], np.float32)
  y = jax.jit(lambda a: jaxpool.lp_pool(a, 3, (2,)))(x)
  x64 = x[:, 0].astype(np.float64).reshape(3, 2)
  want = np.cbrt((x64**3).sum(1))
  np.testing.assert_allclose(np.asarray(y[:, 0], np.float64), want, rtol=1e-6)
  g = jax.grad(lambda a: jaxpool.lp_pool(a, 2, (2,))[0, 0])(x)
  np.testing.assert_allclose(g[:2, 0], x64[0] / np.sqrt((x64[0] ** 2).sum()), rtol=1e-6)


def test_lp_pool_infinite_p_is_max_of_abs():
  x = np.random.default_rng(0).standard_normal((5, 6, 2)).astype(np.float32)
  np.testing.assert_array_equal(
    jaxpool.lp_pool(x, float('inf'), (2, 3)), jaxpool.max_pool(np.abs(x), (2, 3))
  )


def test_lp_pool_gradient_wrt_traced_p(x64):
  x = np.abs(np.random.default_rng(0).standard_normal((6, 6, 2))) + 0.1
  jtu.check_grads(lambda p: jaxpool.lp_pool(x, p, (2, 2), 1), (2.5,), order=1, modes=['rev'])
  jtu.check_grads(lambda a: jaxpool.lp_pool(a, 2.5, (3, 2), 1, 1), (x,), order=1, modes=['rev'])


@pytest.mark.parametrize('n', [1, 2, 3])
def test_max_unpool_matches_torch(n):
  torch = helpers.torch_or_skip()
  rng = np.random.default_rng(n)
  x = rng.standard_normal((2,) + (7,) * n + (3,)).astype(np.float32)
  y, idx = jaxpool.max_pool(x, (3,) * n, 2, 1, return_indices=True)
  pool = _torch_fn('max_pool', n)
  unpool = getattr(torch.nn.functional, f'max_unpool{F_NAMES[n]}')
  yt, it = pool(torch.tensor(helpers.to_torch_layout(x, n)), 3, 2, 1, return_indices=True)
  for size in (None, (7,) * n, (8,) * n):
    yt_leaf = yt.detach().clone().requires_grad_()
    ut = unpool(yt_leaf, it, 3, 2, 1, output_size=size)
    cotangent = rng.standard_normal(ut.shape).astype(np.float32)
    ut.backward(torch.tensor(cotangent))
    u, (gy,) = helpers.value_and_vjp(
      lambda v: jaxpool.max_unpool(v, idx, (3,) * n, 2, 1, output_size=size),
      (y,),
      jnp.asarray(helpers.from_torch_layout(cotangent, n)),
    )
    np.testing.assert_array_equal(u, helpers.from_torch_layout(ut, n))
    np.testing.assert_array_equal(gy, helpers.from_torch_layout(yt_leaf.grad, n))


def test_max_unpool_round_trip_keeps_maxima():
  # positive inputs: the zeros max_unpool writes elsewhere never beat a maximum
  x = np.abs(np.random.default_rng(0).standard_normal((2, 8, 8, 3))).astype(np.float32) + 0.1
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  u = jaxpool.max_unpool(y, idx, (2, 2))
  np.testing.assert_array_equal(jaxpool.max_pool(u, (2, 2)), y)
  assert (np.count_nonzero(u, axis=(1, 2)) == 16).all()


def test_min_pool_is_negated_max_pool_of_negation():
  rng = np.random.default_rng(0)
  x = np.round(rng.standard_normal((2, 9, 7, 3))).astype(np.float32)
  f_min = lambda a: jaxpool.min_pool(a, (3, 2), (2, 1), 1, 2, True)
  f_max = lambda a: -jaxpool.max_pool(-a, (3, 2), (2, 1), 1, 2, True)
  np.testing.assert_array_equal(f_min(x), f_max(x))
  np.testing.assert_array_equal(
    jax.grad(lambda a: f_min(a).sum())(x), jax.grad(lambda a: f_max(a).sum())(x)
  )


@pytest.mark.parametrize('dtype', [np.int32, np.int8, np.uint8])
def test_max_min_pool_accept_integers(dtype):
  x = np.random.default_rng(0).integers(0, 100, (2, 6, 6, 3)).astype(dtype)
  y = jaxpool.max_pool(x, (3, 3), 2, 1)
  assert y.dtype == dtype
  np.testing.assert_array_equal(y, ref.max_pool(x, (3, 3), (2, 2), [(1, 1)] * 2).astype(dtype))
  assert jaxpool.min_pool(x, (2, 2)).dtype == dtype


@pytest.mark.parametrize('op', ['max_pool', 'avg_pool', 'lp_pool', 'min_pool'])
@pytest.mark.parametrize('dtype', [jnp.bfloat16, jnp.float16])
def test_half_precision_keeps_dtype_and_accumulates_in_f32(op, dtype):
  rng = np.random.default_rng(0)
  x = (rng.standard_normal((2, 9, 9, 4)) * 4).astype(np.float32)
  xh = jnp.asarray(x, dtype)
  args = ((3, 3), 2, 1)
  fn = getattr(jaxpool, op)
  call = (lambda a: fn(a, 2, *args)) if op == 'lp_pool' else (lambda a: fn(a, *args))
  call = jax.jit(call)  # one program per dtype, not one compile per eager primitive
  y = call(xh)
  assert y.dtype == dtype
  expect = call(jnp.asarray(xh, jnp.float32))
  np.testing.assert_allclose(np.asarray(y, np.float32), expect, rtol=1e-2, atol=1e-2)
  g = jax.jit(jax.grad(lambda a: call(a).astype(jnp.float32).sum()))(xh)
  assert g.dtype == dtype and np.isfinite(np.asarray(g, np.float32)).all()


def test_half_precision_sums_do_not_overflow():
  x = jnp.full((1, 8, 8, 1), 60000.0, jnp.float16)  # f16 sum of 64 taps would overflow
  np.testing.assert_array_equal(np.asarray(jaxpool.avg_pool(x, (8, 8)), np.float32), 60000.0)


@pytest.mark.parametrize('op', ['max_pool', 'avg_pool', 'min_pool'])
def test_batch_layouts(op):
  fn = functools.partial(getattr(jaxpool, op), window=(3, 2), strides=(2, 1), padding=1)
  x = np.random.default_rng(0).standard_normal((2, 3, 7, 6, 4)).astype(np.float32)
  y = fn(x)
  np.testing.assert_array_equal(fn(x[0, 1]), y[0, 1])  # unbatched
  np.testing.assert_array_equal(fn(x.reshape(6, 7, 6, 4)).reshape(y.shape), y)
  np.testing.assert_array_equal(jax.vmap(jax.vmap(fn))(x), y)
  np.testing.assert_allclose(jax.jit(fn)(x), y)
  grad = jax.jit(jax.grad(lambda a: (fn(a) ** 2).sum()))  # the values above run eagerly
  g, g0 = grad(x), grad(x[1, 2])
  np.testing.assert_allclose(g[1, 2], g0, rtol=1e-6)


def test_one_and_three_dim_pooling_from_the_same_function():
  x1 = np.random.default_rng(0).standard_normal((2, 3, 10, 4)).astype(np.float32)
  assert jaxpool.max_pool(x1, (3,), 2).shape == (2, 3, 4, 4)
  x3 = np.random.default_rng(0).standard_normal((5, 6, 7, 2)).astype(np.float32)
  assert jaxpool.avg_pool(x3, (2, 2, 2)).shape == (2, 3, 3, 2)  # unbatched 3-d


def test_gradient_has_no_select_and_scatter_or_scatter():
  x = jnp.ones((2, 9, 9, 3))
  for fn in (
    lambda a: jaxpool.max_pool(a, (3, 3), 2, 1, 2),
    lambda a: jaxpool.avg_pool(a, (3, 3), 2, 1),
  ):
    hlo = jax.jit(jax.grad(lambda a: fn(a).sum())).lower(x).as_text()
    assert 'select_and_scatter' not in hlo and 'scatter' not in hlo


def test_max_pool_gradient_with_dilation_where_lax_has_none(x64):
  x = np.random.default_rng(0).standard_normal((2, 9, 8, 2))
  jtu.check_grads(
    lambda a: jaxpool.max_pool(a, (3, 2), (2, 1), 1, (2, 3)), (x,), order=1, modes=['rev']
  )
  jtu.check_grads(
    lambda a: jaxpool.avg_pool(a, (3, 2), (2, 1), 1, (2, 3), True), (x,), order=1, modes=['rev']
  )


def test_padding_forms_agree():
  x = np.random.default_rng(0).standard_normal((2, 9, 8, 3)).astype(np.float32)
  a = jaxpool.max_pool(x, (3, 3), 2, 1)
  np.testing.assert_array_equal(jaxpool.max_pool(x, (3, 3), 2, (1, 1)), a)
  np.testing.assert_array_equal(jaxpool.max_pool(x, (3, 3), 2, ((1, 1), (1, 1))), a)
  same = jaxpool.max_pool(x, (3, 3), 2, 'SAME')
  assert same.shape == (2, 5, 4, 3)
  np.testing.assert_array_equal(same, jaxpool.max_pool(x, (3, 3), 2, 'same'))


def test_same_padding_follows_xla():
  import flax.linen as nn

  x = np.random.default_rng(0).standard_normal((2, 10, 7, 3)).astype(np.float32)
  for window, stride in (((3, 3), 2), ((2, 4), 3), ((4, 1), 1)):
    np.testing.assert_array_equal(
      jaxpool.max_pool(x, window, stride, 'SAME'), nn.max_pool(x, window, (stride,) * 2, 'SAME')
    )
    np.testing.assert_allclose(
      jaxpool.avg_pool(x, window, stride, 'SAME', count_include_pad=False),
      nn.avg_pool(x, window, (stride,) * 2, 'SAME', count_include_pad=False),
      rtol=1e-6,
    )


def test_ceil_mode_drops_window_starting_in_right_padding():
  x = np.arange(5, dtype=np.float32).reshape(5, 1)
  # torch: n=5, k=3, s=3, p=1, ceil_mode -> 2 outputs, not 3.
  np.testing.assert_array_equal(jaxpool.max_pool(x, (3,), 3, 1, ceil_mode=True)[:, 0], [1, 4])
  np.testing.assert_array_equal(
    jaxpool.avg_pool(np.ones((6, 1), np.float32), (4,), 4, ceil_mode=True)[:, 0], [1, 1]
  )
  np.testing.assert_allclose(
    jaxpool.avg_pool(np.ones((6, 1), np.float32), (4,), 4, 1, ceil_mode=True)[:, 0], [0.75, 0.75]
  )


X = np.zeros((2, 8, 8, 3), np.float32)
ERRORS = [
  (lambda: jaxpool.max_pool(X, 2), TypeError, r'window must be a sequence.*got the int 2'),
  (lambda: jaxpool.max_pool(X, (0, 2)), ValueError, r'window entries must be >= 1; got \(0, 2\)'),
  (
    lambda: jaxpool.max_pool(X, (2, 2, 2, 2)),
    ValueError,
    r'x must have shape \(\*batch, \*spatial, channels\).*rank >= 5; got shape \(2, 8, 8, 3\)',
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), strides=(1, 2, 3)),
    ValueError,
    r'strides must be an int or have 2 entries.*got \(1, 2, 3\) with 3',
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), strides=0),
    ValueError,
    r'strides entries must be >= 1; got 0',
  ),
  (lambda: jaxpool.max_pool(X, (2, 2), strides=1.5), TypeError, r'strides must be an int'),
  (
    lambda: jaxpool.max_pool(X, (2, 2), dilation=(1, 0)),
    ValueError,
    r'dilation entries must be >= 1',
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), padding='FULL'),
    ValueError,
    r"padding must be 'VALID', 'SAME'.*got the string 'FULL'",
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), padding=-1),
    ValueError,
    r'padding must be non-negative; got -1',
  ),
  (
    lambda: jaxpool.max_pool(X, (3, 3), padding=2),
    ValueError,
    r'padding must be at most half the effective window.*= 1 on each side.*got 2',
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), padding=(1, 2, 3)),
    ValueError,
    r'padding must be .*\(one per spatial dim\); got \(1, 2, 3\)',
  ),
  (lambda: jaxpool.max_pool(X, (2, 2), padding=1.0), TypeError, r'padding must be'),
  (
    lambda: jaxpool.max_pool(X, (9, 2)),
    ValueError,
    r'window \(9, 2\).*larger than the padded input.*every output size must be >= 1',
  ),
  (
    lambda: jaxpool.max_pool(X, (2, 2), ceil_mode='yes'),
    TypeError,
    r"ceil_mode must be a bool; got 'yes'",
  ),
  (
    lambda: jaxpool.avg_pool(X.astype(np.int32), (2, 2)),
    TypeError,
    r'avg_pool needs a floating-point x .*got dtype int32',
  ),
  (
    lambda: jaxpool.lp_pool(X.astype(np.int32), 2, (2, 2)),
    TypeError,
    r'lp_pool needs a floating-point x',
  ),
  (
    lambda: jaxpool.avg_pool(X, (2, 2), divisor_override=0),
    ValueError,
    r'divisor_override must be a non-zero int or None; got 0',
  ),
  (lambda: jaxpool.lp_pool(X, 0, (2, 2)), ValueError, r'p must be a positive number .*got 0'),
  (
    lambda: jaxpool.lp_pool(X, jnp.ones(2), (2, 2)),
    ValueError,
    r'p must be a positive number or a float array: an array of shape \(\); got shape \(2,\)',
  ),
  (lambda: jaxpool.max_pool('abc', (2, 2)), TypeError, r'x must be a numeric array'),
  (
    lambda: jaxpool.max_unpool(X, X.astype(np.int32)[:, :4], (2, 2)),
    ValueError,
    r'indices must have the shape of y \(2, 8, 8, 3\); got \(2, 4, 8, 3\)',
  ),
  (
    lambda: jaxpool.max_unpool(X, X, (2, 2)),
    TypeError,
    r'indices must be integers; got dtype float32',
  ),
  (
    lambda: jaxpool.max_unpool(X, X.astype(np.int32), (2, 2), output_size=(20, 16)),
    ValueError,
    r'output_size \(20, 16\): entry 0 must be in \(14, 18\).*got 20',
  ),
  (
    lambda: jaxpool.max_unpool(X, X.astype(np.int32), (2, 2), output_size=(16,)),
    ValueError,
    r'output_size must have 2 spatial entries',
  ),
]


@pytest.mark.parametrize('call,error,pattern', ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_bad_arguments_raise_clear_errors(call, error, pattern):
  with pytest.raises(error, match=pattern):
    call()
