"""Stochastic, mixed, S3 and fractional max pooling: references, statistics, torch parity."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import jaxpool
import jaxpool.linen as jl
from jaxpool import stochastic
from tests import helpers
from tests.reference import stochastic as ref

KEY = jax.random.key(0)
# Jitted once per configuration (eager dispatch would compile every primitive separately).
stochastic_pool = jax.jit(jaxpool.stochastic_pool, static_argnums=(1, 2, 3, 4, 5))
mixed_pool = jax.jit(
  jaxpool.mixed_pool, static_argnums=(1, 2, 3, 4, 5), static_argnames=('granularity',)
)
s3_pool = jax.jit(jaxpool.s3_pool, static_argnums=(1, 2))
fractional_max_pool = jax.jit(
  jaxpool.fractional_max_pool,
  static_argnums=(1, 2, 3),
  static_argnames=('output_ratio', 'return_indices'),
)
P_VALUE = 1e-3  # statistical tests reject below this (fixed seeds: deterministic outcomes)


def _pairs(padding):
  return [(p, p) for p in padding]


def _geometry_cases(seed, count):
  rng = np.random.default_rng(seed)
  return [helpers.random_geometry(rng, 1 + i % 3) for i in range(count)]


def _geometry_args(geo):
  return (geo['window'], geo['strides'], geo['padding'], geo['dilation'], geo['ceil_mode'])


def _ref_args(geo):
  return (geo['window'], geo['strides'], _pairs(geo['padding']), geo['dilation'], geo['ceil_mode'])


def _input(rng, geo, n=2, c=3):
  return rng.standard_normal((n, *geo['spatial'], c)).astype(np.float32)


# --- stochastic pooling ------------------------------------------------------------------


@pytest.mark.parametrize('geo', _geometry_cases(1, 12), ids=str)
def test_stochastic_eval_matches_reference(geo):
  x = _input(np.random.default_rng(2), geo)
  y = jax.jit(lambda a: stochastic_pool(a, *_geometry_args(geo)))(x)
  np.testing.assert_allclose(y, ref.stochastic_eval(x, *_ref_args(geo)), rtol=1e-5, atol=1e-6)


def _pooled_chi_square(x, y_draws, laws):
  """Chi-square of observed tap counts against the law, pooled over every window.

  ``y_draws``: (draws, N, *out, C); x's values are distinct, so a value names its tap.
  Returns (statistic, degrees of freedom, windows whose draw was not a tap with p > 0).
  """
  statistic, dof, strays = 0.0, 0, 0
  draws = y_draws.shape[0]
  for (n, p, c), (positions, probs) in laws.items():
    got = y_draws[(slice(None), n, *p, c)]
    if probs.sum() == 0:
      strays += int(np.sum(got != 0))
      continue
    values = np.array([x[(n, *pos, c)] for pos in positions])
    counts = np.array([np.sum(got == v) for v in values])
    support = probs > 0
    strays += draws - int(counts[support].sum())
    expected = draws * probs[support]
    statistic += float(np.sum((counts[support] - expected) ** 2 / expected))
    dof += int(support.sum()) - 1
  return statistic, dof, strays


@pytest.mark.parametrize(
  'geo',
  [
    {
      'window': (3, 3),
      'strides': (2, 2),
      'padding': (1, 1),
      'dilation': (1, 1),
      'ceil_mode': True,
      'spatial': (6, 5),
    },
    {
      'window': (2,),
      'strides': (1,),
      'padding': (1,),
      'dilation': (2,),
      'ceil_mode': False,
      'spatial': (12,),
    },
  ],
  ids=['2d-pad-ceil', '1d-dilated'],
)
def test_stochastic_sampling_frequencies_match_probabilities(geo):
  rng = np.random.default_rng(3)
  x = (rng.standard_normal((1, *geo['spatial'], 2)) + 0.7).astype(np.float32)  # some negative
  x[0, 0, ..., 0] = 0  # zeros too
  draws = 2000
  keys = jax.random.split(jax.random.key(7), draws)
  pool = jax.jit(jax.vmap(lambda k: stochastic_pool(x, *_geometry_args(geo), key=k)))
  y = np.asarray(pool(keys))
  laws = ref.window_probabilities(x, *_ref_args(geo))
  statistic, dof, strays = _pooled_chi_square(x, y, laws)
  assert strays == 0  # only taps with p > 0 are ever drawn; all-zero windows give 0
  assert dof > 5
  assert stats.chi2.sf(statistic, dof) > P_VALUE
  # The test has power: a sampler uniform over the positive taps fails it.
  uniform = np.empty_like(y)
  for (n, p, c), (positions, probs) in laws.items():
    values = np.array([x[(n, *pos, c)] for pos, pr in zip(positions, probs) if pr > 0] or [0.0])
    uniform[(slice(None), n, *p, c)] = rng.choice(values, draws)
  statistic, dof, _ = _pooled_chi_square(x, uniform, laws)
  assert stats.chi2.sf(statistic, dof) < P_VALUE


def test_stochastic_single_window_law():
  # p = (0.1, 0.2, 0.3, 0.4) for x = (1, 2, 3, 4); one call draws per (batch, window, channel)
  x = jnp.broadcast_to(jnp.array([1.0, 2.0, 3.0, 4.0])[None, :, None], (500, 4, 8))
  y = np.asarray(stochastic_pool(x, (4,), key=jax.random.key(11))).ravel()
  counts = np.array([np.sum(y == v) for v in (1, 2, 3, 4)])
  assert counts.sum() == y.size
  assert stats.chisquare(counts, y.size * np.array([0.1, 0.2, 0.3, 0.4])).pvalue > P_VALUE
  assert stats.chisquare(counts, np.full(4, y.size / 4)).pvalue < P_VALUE


@pytest.mark.parametrize('geo', _geometry_cases(4, 4), ids=str)
def test_stochastic_train_draws_valid_taps_and_routes_gradient_to_them(geo):
  rng = np.random.default_rng(5)
  x = _input(rng, geo)
  ct = rng.standard_normal(stochastic_pool(x, *_geometry_args(geo)).shape).astype(np.float32)
  f = lambda a: stochastic_pool(a, *_geometry_args(geo), key=KEY)
  y, vjp = jax.vjp(f, x)
  (g,) = vjp(ct)
  y, g = np.asarray(y), np.asarray(g)
  expected = np.zeros_like(x, np.float64)
  for (n, p, c), (positions, probs) in ref.window_probabilities(x, *_ref_args(geo)).items():
    if probs.sum() == 0:
      assert y[(n, *p, c)] == 0
      continue
    drawn = [
      pos for pos, pr in zip(positions, probs) if pr > 0 and x[(n, *pos, c)] == y[(n, *p, c)]
    ]
    assert len(drawn) == 1, (n, p, c)
    expected[(n, *drawn[0], c)] += ct[(n, *p, c)]
  np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-6)


def test_stochastic_eval_gradient(x64):
  x = np.random.default_rng(6).uniform(0.2, 2.0, (2, 5, 6, 3))
  x[0, 0, 0, 0] = -1.0  # a negative tap: no gradient, no contribution
  f = lambda a: stochastic_pool(a, (3, 2), (2, 2), (1, 1))
  check_grads(f, (x,), order=1, modes=('rev',))

  def plain(a):  # sum a^2 / sum a over the same windows, by autodiff
    pos = jnp.where(a > 0, a, 0)
    cfg = {
      'window_dimensions': (1, 3, 2, 1),
      'window_strides': (1, 2, 2, 1),
      'padding': ((0, 0), (1, 1), (1, 1), (0, 0)),
    }
    s = jax.lax.reduce_window(pos, 0.0, jax.lax.add, **cfg)
    q = jax.lax.reduce_window(pos * pos, 0.0, jax.lax.add, **cfg)
    return q / s

  ct = np.random.default_rng(7).standard_normal(f(x).shape)
  np.testing.assert_allclose(jax.vjp(f, x)[1](ct)[0], jax.vjp(plain, x)[1](ct)[0], rtol=1e-10)


def test_stochastic_extreme_values():
  rng = np.random.default_rng(8)
  x = np.abs(rng.standard_normal((2, 6, 6, 2))).astype(np.float32) + 0.5
  base = np.asarray(stochastic_pool(x, (2, 2)))
  for scale in (1e30, 1e-30):  # sum of squares would overflow / underflow unscaled
    y = np.asarray(stochastic_pool(x * np.float32(scale), (2, 2)))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, base * scale, rtol=1e-5)
  y = stochastic_pool(x + 500, (2, 2))
  np.testing.assert_allclose(
    y, ref.stochastic_eval(x + 500, (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), False), rtol=1e-6
  )
  xi = x.copy()
  xi[:, ::2, ::2] = -np.inf  # -inf beside finite counts as 0
  for key in (None, KEY):
    y, g = jax.value_and_grad(lambda a, key=key: stochastic_pool(a, (2, 2), key=key).sum())(xi)
    assert np.isfinite(y) and np.isfinite(g).all()
  yi = stochastic_pool(xi, (2, 2))
  np.testing.assert_allclose(
    yi,
    ref.stochastic_eval(np.where(np.isinf(xi), 0, xi), (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), False),
    rtol=1e-6,
  )
  zeros = jnp.zeros((1, 4, 4, 1)) - jnp.arange(16.0).reshape(1, 4, 4, 1)  # no positive tap
  for key in (None, KEY):
    y, g = jax.value_and_grad(lambda a, key=key: stochastic_pool(a, (2, 2), key=key).sum())(zeros)
    assert float(y) == 0 and not np.asarray(g).any()


# --- mixed pooling -----------------------------------------------------------------------


@pytest.mark.parametrize('geo', _geometry_cases(9, 12), ids=str)
def test_mixed_eval_matches_reference(geo):
  x = _input(np.random.default_rng(10), geo)
  y = jax.jit(lambda a: mixed_pool(a, *_geometry_args(geo), p_max=0.3))(x)
  np.testing.assert_allclose(y, ref.mixed_eval(x, *_ref_args(geo), 0.3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
  'granularity,unit_axes',
  [('batch', (0, 1, 2, 3, 4)), ('example', (2, 3, 4)), ('channel', (2, 3)), ('window', ())],
)
def test_mixed_train_choice_granularity_and_frequency(granularity, unit_axes):
  # x: (2 batch dims, 8x8, C); max and avg differ in every window
  rng = np.random.default_rng(11)
  x = rng.standard_normal((6, 5, 8, 8, 7)).astype(np.float32)
  mx, avg = ref.max_and_avg(x.reshape(30, 8, 8, 7), (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), False)
  mx, avg = mx.reshape(6, 5, 4, 4, 7), avg.reshape(6, 5, 4, 4, 7)
  p_max = 0.3
  draws = {'batch': 400, 'example': 20, 'channel': 4, 'window': 2}[granularity]
  pool = jax.jit(
    jax.vmap(lambda k: mixed_pool(x, (2, 2), key=k, p_max=p_max, granularity=granularity))
  )
  y = np.asarray(pool(jax.random.split(jax.random.key(12), draws)))
  is_max = np.isclose(y, mx, rtol=1e-6, atol=1e-6)
  assert np.all(is_max | np.isclose(y, avg, rtol=1e-6, atol=1e-6))
  axes = tuple(a + 1 for a in unit_axes)  # after the keys axis
  if axes:  # one choice per unit: constant over the unit's axes
    assert np.all(is_max == is_max.all(axis=axes, keepdims=True))
    picks = is_max.all(axis=axes).ravel()
  else:
    picks = is_max.ravel()
  assert 0 < picks.mean() < 1
  assert stats.binomtest(int(picks.sum()), picks.size, p_max).pvalue > P_VALUE
  assert stats.binomtest(int(picks.sum()), picks.size, 0.5).pvalue < P_VALUE  # power


def test_mixed_gradients(x64):
  x = np.random.default_rng(13).standard_normal((2, 7, 6, 3))
  for key in (None, KEY):
    for gran in ('batch', 'window'):
      f = functools.partial(
        jaxpool.mixed_pool,
        window=(3, 2),
        strides=2,
        padding=1,
        key=key,
        p_max=0.4,
        granularity=gran,
      )
      check_grads(f, (x,), order=1, modes=('rev',))
  # eval gradient = p * max-pool gradient + (1 - p) * exclusive avg-pool gradient
  ct = np.random.default_rng(14).standard_normal((2, 4, 4, 3))
  g = jax.vjp(lambda a: mixed_pool(a, (3, 2), 2, 1, p_max=0.4), x)[1](ct)[0]
  gm = jax.vjp(lambda a: jaxpool.max_pool(a, (3, 2), 2, 1), x)[1](ct)[0]
  ga = jax.vjp(lambda a: jaxpool.avg_pool(a, (3, 2), 2, 1, count_include_pad=False), x)[1](ct)[0]
  np.testing.assert_allclose(g, 0.4 * gm + 0.6 * ga, rtol=1e-12)


def test_mixed_empty_window_gives_zero_and_extremes():
  # window 2, dilation 3, padding 2 on a length-1 input: both outputs read only padding/outside
  x = jnp.ones((1, 1, 2))
  for key in (None, KEY):
    y = mixed_pool(x, (2,), 1, 2, 3, key=key, p_max=0.0)
    assert np.isfinite(np.asarray(y)).all()
  y = mixed_pool(x, (2,), 1, 2, 3, p_max=0.5)
  np.testing.assert_array_equal(
    y, ref.mixed_eval(np.asarray(x), (2,), (1,), [(2, 2)], (3,), False, 0.5)
  )
  rng = np.random.default_rng(15)
  x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
  for big in (x * 1e30, x + 500):
    y = mixed_pool(big, (2, 2), p_max=0.25)
    np.testing.assert_allclose(
      y, ref.mixed_eval(big, (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), False, 0.25), rtol=1e-5
    )


def test_mixed_traced_p_max():
  x = np.random.default_rng(16).standard_normal((1, 4, 4, 2)).astype(np.float32)
  f = jax.jit(lambda a, p: mixed_pool(a, (2, 2), p_max=p))
  np.testing.assert_allclose(f(x, 0.25), mixed_pool(x, (2, 2), p_max=0.25), rtol=1e-6)
  g = jax.grad(lambda p: mixed_pool(x, (2, 2), p_max=p).sum())(0.3)
  mx, avg = ref.max_and_avg(x, (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), False)
  np.testing.assert_allclose(g, (mx - avg).sum(), rtol=1e-5)


# --- S3 pooling --------------------------------------------------------------------------


def test_s3_cells_always_feasible():
  # every cell holds at least the rows it gives, at least one each, and out <= M
  for size in range(1, 300):
    for k in range(1, 9):
      if k > size:
        continue
      out = stochastic._s3_output_size(size, k)
      assert 1 <= out <= size - k + 1
      for g in range(k, 40):
        rows, outs = stochastic._s3_cells(size, k, g)
        assert rows[0] == 0 and rows[-1] == size - k + 1 and outs[-1] == out
        sizes, counts = np.diff(rows), np.diff(outs)
        assert (counts >= 1).all() and (counts <= sizes).all(), (size, k, g)


def test_s3_cells_reproduce_the_authors_layout():
  # L = 32, k = 2, g = 4 (their CIFAR setting): 8 cells of 4 rows (3 for the last), 2 rows each
  rows, outs = stochastic._s3_cells(32, 2, 4)
  np.testing.assert_array_equal(rows, [0, 4, 8, 12, 16, 20, 24, 28, 31])
  np.testing.assert_array_equal(outs, np.arange(0, 17, 2))
  rows, outs = stochastic._s3_cells(32, 2, 2)  # g = k: one row per 2-row cell
  np.testing.assert_array_equal(rows, np.r_[np.arange(0, 31, 2), 31])
  np.testing.assert_array_equal(outs, np.arange(17))


@pytest.mark.parametrize('size,k,g', [(32, 2, 4), (7, 2, 2), (13, 3, 6), (9, 2, 5), (5, 1, 3)])
def test_s3_rows_sorted_distinct_per_cell_and_uniform(size, k, g):
  rows, outs = stochastic._s3_cells(size, k, g)
  draws = 3000
  keys = jax.random.split(jax.random.key(21), draws)
  picked = np.asarray(jax.jit(jax.vmap(lambda key: stochastic._s3_rows(key, size, k, g)))(keys))
  assert picked.shape == (draws, stochastic._s3_output_size(size, k))
  assert (np.diff(picked, axis=1) > 0).all()  # sorted and distinct
  statistic, dof = 0.0, 0
  for i in range(len(rows) - 1):
    mine = picked[:, outs[i] : outs[i + 1]]
    assert ((mine >= rows[i]) & (mine < rows[i + 1])).all()  # each cell gives its count
    size_i, count_i = rows[i + 1] - rows[i], outs[i + 1] - outs[i]
    if size_i > count_i:  # each row of the cell kept with probability count / size
      freq = np.array([np.sum(mine == r) for r in range(rows[i], rows[i + 1])])
      expected = draws * count_i / size_i
      statistic += np.sum((freq - expected) ** 2 / expected)
      dof += size_i - 1
  if dof:
    assert stats.chi2.sf(statistic, dof) > P_VALUE


@pytest.mark.parametrize(
  'shape,window,grid',
  [
    ((2, 8, 8, 3), (2, 2), None),
    ((7, 9, 2), (2, 3), (4, 3)),
    ((1, 2, 11, 2), (3,), 5),
    ((1, 5, 6, 7, 2), (2, 2, 2), None),
  ],
)
def test_s3_eval_and_train_match_references(shape, window, grid):
  x = np.random.default_rng(22).standard_normal(shape).astype(np.float32)
  n = len(window)
  nb = len(shape) - n - 1
  flat = x.reshape(-1, *shape[nb:])
  y_eval = s3_pool(x, window, grid)
  expected = ref.s3_eval(flat, window).reshape(*shape[:nb], *ref.s3_eval(flat, window).shape[1:])
  np.testing.assert_allclose(y_eval, expected, rtol=1e-6, atol=1e-6)
  key = jax.random.key(23)
  y_train = jax.jit(lambda a, k: s3_pool(a, window, grid, key=k))(x, key)
  assert y_train.shape == y_eval.shape  # one output size in both modes
  grid_t = window if grid is None else stochastic._geometry.int_tuple(grid, n, 'grid')
  z = ref.stride1_max_map(flat, window)
  for d, (key_d, size) in enumerate(zip(jax.random.split(key, n), shape[nb : nb + n])):
    z = np.take(z, np.asarray(stochastic._s3_rows(key_d, size, window[d], grid_t[d])), axis=1 + d)
  np.testing.assert_allclose(y_train, z.reshape(y_train.shape), rtol=1e-6)
  assert not np.allclose(y_train, s3_pool(x, window, grid, key=jax.random.key(24)))


def test_s3_gradients(x64):
  x = np.random.default_rng(25).standard_normal((2, 7, 8, 2))
  for key in (None, KEY):
    check_grads(lambda a, key=key: s3_pool(a, (2, 2), 4, key=key), (x,), order=1, modes=('rev',))


# --- fractional max pooling --------------------------------------------------------------


def _fmp_case(rng, nd):
  k = tuple(int(v) for v in rng.integers(1, 4, nd))
  size = tuple(int(v + rng.integers(0, 8)) for v in k)
  strict = 1 if nd == 3 else 0  # torch's 3-d check is out + k - 1 < size (strict)
  out = tuple(
    int(rng.integers(1, s - kk + 2 - strict)) if s - kk + 1 - strict >= 1 else 0
    for s, kk in zip(size, k)
  )
  if min(out) < 1:
    size = tuple(s + 2 for s in size)
    out = tuple(s - kk for s, kk in zip(size, k))
  return k, size, out


def _check_against_torch(torch, nd, dtype, k, size, out, n, c, samples=None):
  """Values, indices and gradients of one configuration against torch's CPU kernel."""
  fn = {2: torch.nn.functional.fractional_max_pool2d, 3: torch.nn.functional.fractional_max_pool3d}[
    nd
  ]
  tdt = getattr(torch, dtype)
  xt = torch.randn(n, c, *size).to(tdt).requires_grad_(True)
  samples = torch.rand(n, c, nd).to(tdt) if samples is None else samples.to(tdt)
  yt, it = fn(xt, k, output_size=out, _random_samples=samples, return_indices=True)
  ct = torch.randn_like(yt)
  (yt * ct).sum().backward()
  x = jnp.asarray(helpers.from_torch_layout(xt.detach().double(), nd), dtype)
  u = jnp.asarray(samples.double().numpy(), dtype)
  cj = jnp.asarray(helpers.from_torch_layout(ct.double(), nd), dtype)

  @jax.jit
  def run(a, s, ctj):
    (y, idx), vjp = jax.vjp(
      lambda b: fractional_max_pool(b, k, out, samples=s, return_indices=True), a
    )
    return y, idx, vjp((ctj, np.zeros(idx.shape, jax.dtypes.float0)))[0]

  y, idx, g = run(x, u, cj)
  assert y.dtype == jnp.dtype(dtype) and idx.dtype == jnp.int32
  np.testing.assert_array_equal(
    np.asarray(y, np.float64), helpers.from_torch_layout(yt.double(), nd)
  )
  np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, nd))
  # gradient: the exact sum of the cotangent over each element's wins, rounded once (f32
  # accumulation); torch accumulates halves in their own precision, so it is only close there
  half = dtype in ('float16', 'bfloat16')
  np.testing.assert_allclose(
    np.asarray(g, np.float64),
    _wins_sum(g.shape, idx, cj),
    rtol=float(jnp.finfo(dtype).eps) if half else 1e-6,
    atol=1e-6,
  )
  np.testing.assert_allclose(
    np.asarray(g, np.float64),
    helpers.from_torch_layout(xt.grad.double(), nd),
    rtol=5e-2 if half else 1e-6,
    atol=float(jnp.finfo(dtype).eps * np.abs(cj).max()) if half else 1e-6,
  )
  return idx


def _torch_sweep(nd, dtype, count, seed):
  torch = helpers.torch_or_skip()
  rng = np.random.default_rng(seed)
  for _ in range(count):
    k, size, out = _fmp_case(rng, nd)
    if dtype == 'bfloat16':  # torch asserts when bf16 rounding pushes a window past the end
      size = tuple(min(s, 24) for s in size)
      out = tuple(min(o, s - kk + 1 - (nd == 3)) for o, s, kk in zip(out, size, k))
    _check_against_torch(
      torch, nd, dtype, k, size, out, int(rng.integers(1, 3)), int(rng.integers(1, 4))
    )


@pytest.mark.parametrize('dtype', ['float32', 'float16', 'bfloat16'])
@pytest.mark.parametrize('nd', [2, 3])
def test_fractional_matches_torch(nd, dtype):
  # fixed cases, and as many drawn afresh on each run's turn (helpers.rotation)
  _torch_sweep(nd, dtype, 2 if dtype == 'float32' else 1, 30 + nd)
  _torch_sweep(nd, dtype, 1, (60 + nd, helpers.rotation()))


def test_fractional_adversarial_samples_match_torch_in_f32_and_f64(x64):
  # samples placed where (i + u) * alpha lands next to an integer, where f32 and f64 maths
  # give different windows: torch computes in the input's precision, and so do we
  torch = helpers.torch_or_skip()
  rng = np.random.default_rng(33)
  differ = 0
  for _ in range(4):
    size, k = int(rng.integers(50, 400)), int(rng.integers(1, 4))
    out = int(rng.integers(2, size - k + 2))
    alpha = (size - k) / (out - 1)
    us = []
    for _ in range(64):
      i, m = int(rng.integers(0, out - 1)), int(rng.integers(1, size))
      u = m / alpha - i
      u = u if 0 <= u < 1 else rng.random()
      us.append(float(np.nextafter(np.float32(u), np.float32(rng.choice([-1.0, 2.0])))))
    samples = torch.tensor(np.clip(us, 0, 0.999)).reshape(1, 64, 1).repeat(1, 1, 2)
    idx = {
      dtype: _check_against_torch(torch, 2, dtype, (1, k), (1, size), (1, out), 1, 64, samples)
      for dtype in ('float32', 'float64')
    }
    differ += int(np.sum(np.any(idx['float32'] != idx['float64'], axis=(0, 1, 2))))
  assert differ > 0  # the samples do separate the two precisions


def test_fractional_1d_and_4d_match_loop_reference():
  rng = np.random.default_rng(34)
  for shape, window, out in [
    ((3, 11, 2), (2,), (6,)),
    ((2, 5, 6, 4, 5, 2), (2, 1, 2, 2), (3, 4, 2, 3)),
  ]:
    x = rng.standard_normal(shape).astype(np.float32)
    samples = rng.random((shape[0], shape[-1], len(window))).astype(np.float32)
    y, idx = fractional_max_pool(x, window, out, samples=samples, return_indices=True)
    y_ref, idx_ref = ref.fractional_max_pool(x, window, out, samples)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    np.testing.assert_array_equal(idx, idx_ref)


def test_fractional_2d_sample_order_is_torchs():
  # 2-d: samples[..., 0] drives W (the last spatial dim), samples[..., 1] drives H
  x = np.random.default_rng(35).standard_normal((1, 9, 9, 1)).astype(np.float32)
  samples = np.array([[[0.9, 0.1]]], np.float32)
  y = fractional_max_pool(x, (2, 2), 5, samples=samples)
  y_ref, _ = ref.fractional_max_pool(x, (2, 2), (5, 5), samples[..., ::-1])
  np.testing.assert_array_equal(y, y_ref.astype(np.float32))
  assert not np.array_equal(y, ref.fractional_max_pool(x, (2, 2), (5, 5), samples)[0])


def test_fractional_defaults_key_ratio_and_layouts():
  rng = np.random.default_rng(36)
  x = rng.standard_normal((2, 10, 9, 3)).astype(np.float32)
  half = jnp.full((2, 3, 2), 0.5)
  np.testing.assert_array_equal(
    fractional_max_pool(x, (2, 2), (6, 5)), fractional_max_pool(x, (2, 2), (6, 5), samples=half)
  )
  u = jax.random.uniform(KEY, (2, 3, 2), jnp.float32)
  np.testing.assert_array_equal(
    fractional_max_pool(x, (2, 2), (6, 5), key=KEY),
    fractional_max_pool(x, (2, 2), (6, 5), samples=u),
  )
  # output_ratio: int(L * ratio), as torch
  assert fractional_max_pool(x, (2, 2), output_ratio=(0.5, 0.7)).shape == (2, 5, 6, 3)
  assert fractional_max_pool(x, (3, 3), output_ratio=0.75).shape == (2, 7, 6, 3)
  # broadcast samples; unbatched and two batch dims agree with the batched call
  np.testing.assert_array_equal(
    fractional_max_pool(x, (2, 2), 5, samples=[0.3, 0.6]),
    fractional_max_pool(x, (2, 2), 5, samples=jnp.tile(jnp.array([0.3, 0.6]), (2, 3, 1))),
  )
  s = rng.random((2, 3, 2)).astype(np.float32)
  batched = fractional_max_pool(x, (2, 2), 5, samples=s)
  np.testing.assert_array_equal(fractional_max_pool(x[1], (2, 2), 5, samples=s[1]), batched[1])
  x2 = np.stack([x, x[::-1]])
  s2 = np.stack([s, s[::-1]])
  np.testing.assert_array_equal(fractional_max_pool(x2, (2, 2), 5, samples=s2)[1, 0], batched[1])
  # output 1: PyTorch starts the only window at L - k
  y = fractional_max_pool(x, (2, 2), 1)
  np.testing.assert_array_equal(y, x[:, 8:, 7:].max(axis=(1, 2), keepdims=True))
  # alpha = k exactly: the windows tile, max pooling
  np.testing.assert_array_equal(
    fractional_max_pool(x[:, :9], (3, 3), 3), jaxpool.max_pool(x[:, :9], (3, 3))
  )


def test_fractional_ties_nan_and_extremes():
  x = np.zeros((1, 4, 4, 1), np.float32)
  _, idx = fractional_max_pool(x, (2, 2), 2, samples=[0.5, 0.5], return_indices=True)
  np.testing.assert_array_equal(idx[0, ..., 0], [[0, 2], [8, 10]])  # ties: the first tap
  x[0, 0, 0, 0] = x[0, 1, 1, 0] = np.nan
  x[0, 2:, 2:, 0] = -np.inf
  x[0, 2, 3, 0] = 1e38
  y, idx = fractional_max_pool(x, (2, 2), 2, samples=[0.5, 0.5], return_indices=True)
  assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 5  # the last NaN wins, as torch
  assert y[0, 1, 1, 0] == 1e38 and idx[0, 1, 1, 0] == 11
  g = jax.grad(lambda a: fractional_max_pool(a, (2, 2), 2).sum())(x)
  assert np.isfinite(np.asarray(g)).all()


def test_fractional_gradient(x64):
  x = np.random.default_rng(37).standard_normal((2, 9, 8, 2))
  s = np.random.default_rng(38).random((2, 2, 2))
  check_grads(
    lambda a: fractional_max_pool(a, (2, 3), (5, 4), samples=s), (x,), order=1, modes=('rev',)
  )
  # overlapping windows accumulate: gradient counts how often each element is the max
  g = jax.grad(lambda a: fractional_max_pool(a, (3, 3), (6, 5), samples=s).sum())(x)
  _, idx = ref.fractional_max_pool(x, (3, 3), (6, 5), s[..., ::-1])
  counts = np.zeros((2, 72, 2))
  for n in range(2):
    for c in range(2):
      np.add.at(counts[n, :, c], idx[n, ..., c].ravel(), 1)
  np.testing.assert_array_equal(g, counts.reshape(x.shape))


def _wins_sum(x_shape, idx, cot):
  """x̄ by a loop: each plane's cotangent added at its maxima's flat indices (float64)."""
  idx, cot = np.asarray(idx), np.asarray(cot, np.float64)
  n, c = x_shape[0], x_shape[-1]
  exact = np.zeros((n, math.prod(x_shape[1:-1]), c))
  for b in range(n):
    for ch in range(c):
      np.add.at(exact[b, :, ch], idx[b, ..., ch].ravel(), cot[b, ..., ch].ravel())
  return exact.reshape(x_shape)


@pytest.mark.parametrize(
  'shape, window, out, dtype',
  [
    ((2, 13, 3), (3,), (7,), 'float32'),  # 1-d, overlapping windows
    ((2, 5, 6, 4, 5, 2), (2, 1, 2, 2), (3, 4, 2, 3), 'float32'),  # 4-d
    ((2, 300, 2), (2,), (290,), 'bfloat16'),  # bf16 rounding repeats starts
  ],
)
def test_fractional_gradient_is_the_sum_over_wins(shape, window, out, dtype):
  rng = np.random.default_rng(39)
  x = jnp.asarray(rng.standard_normal(shape), dtype)
  u = jnp.asarray(rng.random((shape[0], shape[-1], len(window))), dtype)
  y, idx = fractional_max_pool(x, window, out, samples=u, return_indices=True)
  cot = jnp.asarray(rng.standard_normal(y.shape), dtype)
  g = jax.vjp(lambda a: fractional_max_pool(a, window, out, samples=u), x)[1](cot)[0]
  assert g.dtype == x.dtype
  np.testing.assert_allclose(
    np.asarray(g, np.float64),
    _wins_sum(shape, idx, cot),
    rtol=float(jnp.finfo(dtype).eps),
    atol=1e-6,
  )
  if dtype == 'bfloat16':  # the case does hold coinciding windows (repeated starts)
    starts = stochastic._fractional_starts(u[..., 0], shape[1], window[0], out[0], x.dtype)
    assert np.any(np.diff(np.asarray(starts), axis=-1) <= 0)


# --- shared behaviour: keys, jit/vmap, dtypes, sharding, modules, errors ----------------

OPS = {
  'stochastic_pool': lambda x, key: stochastic_pool(x, (3, 3), 2, 1, key=key),
  'mixed_pool': lambda x, key: mixed_pool(x, (3, 3), 2, 1, key=key, granularity='window'),
  's3_pool': lambda x, key: s3_pool(x, (2, 2), key=key),
  'fractional_max_pool': lambda x, key: fractional_max_pool(x, (2, 2), (6, 5), key=key),
}


def _data(shape=(8, 9, 9, 3)):
  return np.random.default_rng(40).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize('name', sorted(OPS))
def test_keys_determinism_jit_and_vmap(name):
  op = OPS[name]
  x = _data()
  y = op(x, KEY)
  np.testing.assert_array_equal(y, op(x, KEY))  # same key, same result (OPS are jitted)
  assert not np.array_equal(op(x, jax.random.key(1)), y)  # another key, another draw
  keys = jax.random.split(KEY, 3)
  per_key = jax.jit(jax.vmap(op, in_axes=(None, 0)))(x, keys)
  for i in range(3):
    np.testing.assert_array_equal(per_key[i], op(x, keys[i]))
  per_example = jax.vmap(op, in_axes=(0, None))(x, KEY)  # one key: the unbatched draw each
  for i in (0, 5):
    np.testing.assert_array_equal(per_example[i], op(x[i], KEY))
  if name == 'stochastic_pool':  # raw uint32 keys work too (one shared key check)
    legacy = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(op(x, legacy), op(x, jax.random.wrap_key_data(legacy)))


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_half_precision_keeps_dtype(name, dtype):
  op = OPS[name]
  x = _data((2, 9, 9, 3))
  xh = jnp.asarray(x, dtype)
  train = jax.value_and_grad(lambda a: op(a, KEY).astype(jnp.float32).sum())
  y, y32, (_, g) = jax.jit(lambda a: (op(a, None), op(a.astype(jnp.float32), None), train(a)))(xh)
  # evaluation: f32 maths on the rounded input, rounded once
  assert y.dtype == jnp.dtype(dtype)
  tol = 1e-2 if dtype == 'bfloat16' else 2e-3
  np.testing.assert_allclose(np.asarray(y, np.float32), y32, rtol=tol, atol=tol)
  assert g.dtype == jnp.dtype(dtype) and np.isfinite(np.asarray(g, np.float32)).all()


@pytest.mark.parametrize('name', sorted(OPS))
def test_unbatched_and_two_batch_dims(name):
  op = OPS[name]
  x = _data((2, 3, 9, 9, 3))
  y, y_one, y_flat, y_train = jax.jit(
    lambda a: (op(a, None), op(a[1, 2], None), op(a.reshape(6, 9, 9, 3), None), op(a, KEY))
  )(x)
  np.testing.assert_allclose(y_one, y[1, 2], rtol=1e-6)
  np.testing.assert_allclose(y_flat.reshape(y.shape), y, rtol=1e-6)
  assert y_train.shape == y.shape and y.shape[:2] == (2, 3)


@pytest.mark.parametrize(
  'build,error,match',
  [
    (lambda: jl.MixedPool((2, 2), p_max=1.5), ValueError, r'p_max .*\[0, 1\].*1\.5'),
    (lambda: jl.MixedPool((2, 2), granularity='pixel'), ValueError, "granularity .*'pixel'"),
    (lambda: jl.S3Pool((2, 2), grid=1), ValueError, r'grid must be >= window.*\(1, 1\)'),
    (lambda: jl.S3Pool(2), TypeError, 'window must be a sequence'),
    (lambda: jl.StochasticPool((2, 2), padding=3), ValueError, 'padding must be at most half'),
    (lambda: jl.FractionalMaxPool((2, 2)), ValueError, 'exactly one of output_size'),
    (lambda: jl.FractionalMaxPool((2, 2), output_size=0), ValueError, 'output_size entries'),
    (lambda: jl.FractionalMaxPool((2, 2), output_ratio=1.5), ValueError, r'output_ratio.*\(0, 1\]'),
  ],
)
def test_module_construction_errors(build, error, match):
  with pytest.raises(error, match=match):
    build()


X = np.ones((2, 8, 8, 3), np.float32)


@pytest.mark.parametrize(
  'call,error,match',
  [
    (
      lambda: jaxpool.stochastic_pool(X.astype(np.int32), (2, 2)),
      TypeError,
      'stochastic_pool needs a floating-point x.*int32',
    ),
    (lambda: jaxpool.mixed_pool(X.astype(np.int32), (2, 2)), TypeError, 'mixed_pool.*int32'),
    (lambda: jaxpool.s3_pool(X.astype(np.int8), (2, 2)), TypeError, 's3_pool.*int8'),
    (
      lambda: jaxpool.fractional_max_pool(X.astype(np.int32), (2, 2), 3),
      TypeError,
      'fractional_max_pool.*int32',
    ),
    (lambda: jaxpool.stochastic_pool(X, (2, 2), key=0), TypeError, 'key must be None .* got int'),
    (
      lambda: jaxpool.mixed_pool(X, (2, 2), key=jax.random.split(KEY, 2)),
      ValueError,
      r'single key .*shape \(2,\)',
    ),
    (lambda: jaxpool.stochastic_pool(X, (9, 9)), ValueError, 'larger than the padded input'),
    (lambda: jaxpool.stochastic_pool(X[0, 0], (2, 2)), ValueError, 'rank >= 3'),
    (lambda: jaxpool.mixed_pool(X, (2, 2), p_max=-0.1), ValueError, r'p_max .*-0\.1'),
    (lambda: jaxpool.mixed_pool(X, (2, 2), p_max=True), TypeError, 'p_max .*bool'),
    (lambda: jaxpool.mixed_pool(X, (2, 2), p_max=jnp.ones(2)), ValueError, r'p_max .*shape \(\)'),
    (
      lambda: jaxpool.mixed_pool(X, (2, 2), granularity='layer'),
      ValueError,
      "granularity must be one of .*'layer'",
    ),
    (lambda: jaxpool.s3_pool(X, (2, 2), grid=(4,)), ValueError, 'grid must be an int or have 2'),
    (lambda: jaxpool.s3_pool(X, (2, 2), grid=(1, 4)), ValueError, 'grid must be >= window'),
    (lambda: jaxpool.s3_pool(X, (9, 2)), ValueError, 'larger than the padded input'),
    (lambda: jaxpool.s3_pool(X[0], (2, 2, 2)), ValueError, 'rank >= 4'),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2)),
      ValueError,
      'exactly one of output_size and output_ratio',
    ),
    (lambda: jaxpool.fractional_max_pool(X, (2, 2), 3, 0.5), ValueError, 'exactly one of'),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), 8),
      ValueError,
      r'window \+ output_size - 1 <= input size.*dim 0: window 2 \+ output 8 - 1 > 8',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), (3, 0)),
      ValueError,
      'output_size entries must be >= 1',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), output_ratio=0.05),
      ValueError,
      r'output_ratio 0\.05 gives output size \(0, 0\)',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), output_ratio=(0.5,)),
      TypeError,
      'output_ratio must be a number or a sequence of 2',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), output_ratio=0),
      ValueError,
      r'output_ratio entries must be in \(0, 1\]',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), 3, samples=np.ones((2, 3, 3))),
      ValueError,
      r'samples must have shape \(\*batch, C, ndim\) = \(2, 3, 2\).*\(2, 3, 3\)',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), 3, samples=np.ones((2, 3, 2), int)),
      TypeError,
      'samples must be floats',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), 3, key=KEY, samples=np.zeros(2)),
      ValueError,
      'a key or samples, not both',
    ),
    (
      lambda: jaxpool.fractional_max_pool(X, (2, 2), 3, return_indices=1),
      TypeError,
      'return_indices must be a bool',
    ),
  ],
)
def test_errors(call, error, match):
  with pytest.raises(error, match=match):
    call()


def test_gradients_have_no_select_and_scatter():
  x = jnp.ones((2, 9, 9, 3))
  for name in ('stochastic_pool', 'mixed_pool'):
    for key in (None, KEY):
      hlo = jax.jit(jax.grad(lambda a, op=OPS[name], key=key: op(a, key).sum())).lower(x).as_text()
      assert 'select_and_scatter' not in hlo and 'scatter' not in hlo, name


def test_stochastic_draw_is_the_same_unrolled_and_scanned(monkeypatch):
  # beyond _windows.UNROLL_MAX_TAPS the inverse-CDF draw runs as a lax.scan in the same order
  from jaxpool import _windows

  x = np.abs(np.random.default_rng(4).standard_normal((2, 7, 6, 5, 3))).astype(np.float32)
  x[0, :3] = 0  # windows without a positive entry draw nothing
  key = jax.random.key(3)
  f = lambda a: jaxpool.stochastic_pool(a, (3, 2, 2), (2, 1, 2), (1, 1, 0), key=key)
  shape = jax.eval_shape(f, x).shape
  ct = np.cos(np.arange(np.prod(shape))).reshape(shape).astype(np.float32)
  out = {}
  for limit in (1000, 0):
    monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', limit)
    y, (g,) = helpers.value_and_vjp(f, (x,), ct)  # traced anew: the limit applies
    out[limit] = (y, g)
  assert (out[0][0] != 0).any() and (out[0][1] != 0).any()
  np.testing.assert_array_equal(out[0][0], out[1000][0])
  np.testing.assert_array_equal(out[0][1], out[1000][1])
