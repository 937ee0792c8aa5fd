"""Windows beyond the unrolled size: the stacked, separable and gather paths.

Past ``_windows.UNROLL_MAX_TAPS`` taps every op reads its taps as one stacked
array (one dim at a time: a reshape or a skew, whatever the window), max/min
pooling runs one pass per dim, and fractional max pooling gathers every tap at
once. These tests hold those paths to the same references as the small ones:
PyTorch for max/min/avg/LP/fractional pooling (values, indices, gradients, ties
and NaN, windows up to the whole input, 1-d to 3-d, padding, dilation,
ceil_mode), and the unrolled path (itself tested against NumPy references) for
the other windowed ops that no family test already checks this way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import _geometry, _reductions, _windows
from tests import helpers

F_NAMES = {1: '1d', 2: '2d', 3: '3d'}

# (spatial, window, strides, padding, dilation, ceil_mode): all beyond 9 taps
BIG = [
  ((23,), (23,), 1, 0, 1, False),  # 1-d, the whole input
  ((31,), (12,), 5, 6, 1, True),  # 1-d, padded, ceil_mode
  ((17, 19), (17, 19), None, 0, 1, False),  # 2-d global window
  ((20, 21), (8, 8), 8, 0, 1, True),  # tiling (window = stride), ceil_mode
  ((16, 15), (7, 7), 1, 3, 1, False),  # overlapping, stride 1, padded
  ((19, 18), (5, 4), (2, 3), (2, 1), (2, 3), True),  # dilation, mixed strides
  ((9, 10, 8), (4, 5, 3), (2, 3, 1), (1, 2, 0), 1, False),  # 3-d
  ((8, 7, 9), (8, 7, 9), None, 0, 1, False),  # 3-d global window
]


def _case_id(case):
  spatial, window, strides, padding, dilation, ceil_mode = case
  return f'{spatial}-k{window}-s{strides}-p{padding}-d{dilation}-ceil{ceil_mode}'


def _input(rng, spatial, channels=3, batch=2, ties=True, nan=True):
  x = rng.standard_normal((batch, *spatial, channels)).astype(np.float32)
  if ties:
    x = np.round(x * 2) / 2  # many exact ties: the first maximum must win
  if nan:
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 3, replace=False)] = np.nan
  return x


def _torch_max(torch, x, case, return_indices):
  spatial, window, strides, padding, dilation, ceil_mode = case
  n = len(spatial)
  fn = getattr(torch.nn.functional, f'max_pool{F_NAMES[n]}')
  return fn(
    x,
    window,
    window if strides is None else strides,
    padding,
    dilation,
    ceil_mode,
    return_indices=return_indices,
  )


@pytest.mark.parametrize('case', [c for c in BIG if np.prod(c[1]) < 100], ids=_case_id)
def test_stacked_taps_equal_the_unrolled_taps_and_transpose(case, rng):
  spatial, window, strides, padding, dilation, ceil_mode = case
  geom, _ = _geometry.pool_geometry((2, *spatial, 3), window, strides, padding, dilation, ceil_mode)
  x = jnp.asarray(rng.standard_normal((2, *spatial, 3)), jnp.float32)

  @jax.jit
  def both(a, ct):
    stacked, vjp_s = jax.vjp(lambda b: _windows.stacked_window_taps(b, geom, -3.0), a)
    unrolled, vjp_u = jax.vjp(lambda b: jnp.stack(_windows.window_taps(b, geom, -3.0)), a)
    return stacked, unrolled, vjp_s(ct)[0], vjp_u(ct)[0]

  ct = jnp.asarray(rng.standard_normal((geom.window_size, 2, *geom.out_shape, 3)), jnp.float32)
  stacked, unrolled, back_s, back_u = both(x, ct)
  np.testing.assert_array_equal(stacked, unrolled)
  np.testing.assert_allclose(back_s, back_u, rtol=1e-5, atol=1e-5)
  text = (
    jax.jit(jax.grad(lambda a: jnp.sum(_windows.stacked_window_taps(a, geom, 0.0))))
    .lower(x)
    .as_text()
  )
  assert 'scatter' not in text


@pytest.mark.parametrize('case', BIG, ids=_case_id)
def test_max_pool_big_windows_match_torch(case, rng):
  torch = helpers.torch_or_skip()
  spatial, window, strides, padding, dilation, ceil_mode = case
  n = len(spatial)
  x = _input(rng, spatial)
  xt = torch.tensor(helpers.to_torch_layout(x, n), requires_grad=True)
  yt, it = _torch_max(torch, xt, case, True)
  ct = rng.standard_normal(helpers.from_torch_layout(yt.detach(), n).shape).astype(np.float32)
  yt.backward(torch.tensor(helpers.to_torch_layout(ct, n)))

  @jax.jit
  def run(a, c):
    f = lambda b: jaxpool.max_pool(b, window, strides, padding, dilation, ceil_mode)
    y, vjp = jax.vjp(f, a)
    _, idx = jaxpool.max_pool(a, window, strides, padding, dilation, ceil_mode, return_indices=True)
    _, tangent = jax.jvp(f, (a,), (c_in,))
    return y, idx, vjp(c)[0], tangent

  c_in = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
  y, idx, grad, tangent = run(jnp.asarray(x), jnp.asarray(ct))
  np.testing.assert_array_equal(y, helpers.from_torch_layout(yt.detach(), n))
  np.testing.assert_array_equal(idx, helpers.from_torch_layout(it, n))
  np.testing.assert_allclose(grad, helpers.from_torch_layout(xt.grad, n), rtol=1e-6, atol=1e-6)
  # forward mode follows the same winner: the tangent is c_in at the index
  planes = np.asarray(c_in).reshape(2, -1, 3)
  expect = np.take_along_axis(planes, np.asarray(idx).reshape(2, -1, 3), axis=1)
  np.testing.assert_array_equal(np.asarray(tangent).reshape(2, -1, 3), expect)


@pytest.mark.parametrize('case', BIG[1:6:2], ids=_case_id)
def test_min_pool_big_windows_mirror_max_pool(case, rng):
  spatial, window, strides, padding, dilation, ceil_mode = case
  x = jnp.asarray(_input(rng, spatial))
  args = (window, strides, padding, dilation, ceil_mode)
  ct = jnp.asarray(
    rng.standard_normal(jax.eval_shape(lambda a: jaxpool.min_pool(a, *args), x).shape)
  )
  # jitted value-and-vjp programs, not one compile per eager op
  y, (g,) = helpers.value_and_vjp(lambda a: jaxpool.min_pool(a, *args), (x,), ct)
  y_max, (g_max,) = helpers.value_and_vjp(lambda a: jaxpool.max_pool(a, *args), (-x,), -ct)
  np.testing.assert_array_equal(y, -y_max)
  np.testing.assert_array_equal(g, -g_max)


@pytest.mark.parametrize(
  'case',
  [
    c
    for c in BIG
    if all(p <= k // 2 for p, k in zip(np.broadcast_to(c[3], len(c[0])), c[1])) and c[4] == 1
  ],
  ids=_case_id,
)
def test_avg_and_lp_pool_big_windows_match_torch(case, rng):
  torch = helpers.torch_or_skip()
  spatial, window, strides, padding, _, ceil_mode = case
  n = len(spatial)
  s = window if strides is None else strides
  x = np.abs(_input(rng, spatial, ties=False, nan=False)) + 0.1
  ct = None
  for name, jfn, tfn in (
    (
      'avg',
      lambda a: jaxpool.avg_pool(a, window, strides, padding, 1, ceil_mode),
      lambda t: getattr(torch.nn.functional, f'avg_pool{F_NAMES[n]}')(
        t, window, s, padding, ceil_mode
      ),
    ),
    (
      'lp',
      lambda a: jaxpool.lp_pool(a, 2.0, window, strides, 0, 1, ceil_mode),
      lambda t: getattr(torch.nn.functional, f'lp_pool{F_NAMES[n]}')(
        t, 2.0, window[0] if n == 1 else window, s, ceil_mode
      ),
    ),
  ):
    if name == 'lp' and (np.any(np.asarray(padding)) or ceil_mode):
      # torch's LP pooling has no padding, and under ceil_mode scales a partial window's
      # mean by the full window size; jaxpool sums the valid taps (its reference tests)
      continue
    xt = torch.tensor(helpers.to_torch_layout(x, n), requires_grad=True)
    yt = tfn(xt)
    ct = rng.standard_normal(helpers.from_torch_layout(yt.detach(), n).shape).astype(np.float32)
    yt.backward(torch.tensor(helpers.to_torch_layout(ct, n)))
    y, (g,) = helpers.value_and_vjp(jfn, (jnp.asarray(x),), jnp.asarray(ct))
    np.testing.assert_allclose(
      y, helpers.from_torch_layout(yt.detach(), n), rtol=2e-5, atol=1e-6, err_msg=name
    )
    np.testing.assert_allclose(
      g,
      helpers.from_torch_layout(xt.grad, n),
      rtol=2e-5,
      atol=1e-6,
      err_msg=name,
    )


def test_fractional_max_pool_big_windows_match_torch():
  torch = helpers.torch_or_skip()
  from tests.test_stochastic import _check_against_torch  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  _check_against_torch(torch, 2, 'float32', (5, 4), (24, 19), (9, 7), 2, 3)
  _check_against_torch(torch, 3, 'float32', (3, 3, 2), (9, 8, 7), (4, 5, 3), 1, 2)


KEY = jax.random.key(3)
# every windowed op whose own family tests do not already hold its stacked path to its
# unrolled one (the SoftPool family, DPP, LP and the stochastic draw have such tests),
# at a window beyond the unrolled size: f(x, window, strides, padding)
WINDOWED = {
  'max_avg_pool': lambda x, w, s, p: jaxpool.max_avg_pool(x, 0.3, w, s, p),
  'gated_pool': lambda x, w, s, p: jaxpool.gated_pool(
    x, jnp.linspace(-1, 1, int(np.prod(w))).reshape(w), w, s, p
  ),
  'tree_pool': lambda x, w, s, p: jaxpool.tree_pool(
    x,
    jnp.linspace(-1, 1, 2 * int(np.prod(w))).reshape(2, *w),
    jnp.linspace(1, -1, int(np.prod(w))).reshape(1, *w),
    w,
    s,
    p,
  ),
  'stochastic_pool (eval)': lambda x, w, s, p: jaxpool.stochastic_pool(jnp.abs(x), w, s, p),
  'stochastic_pool (train)': lambda x, w, s, p: jaxpool.stochastic_pool(
    jnp.abs(x), w, s, p, key=KEY
  ),
  'mixed_pool': lambda x, w, s, p: jaxpool.mixed_pool(x, w, s, p, key=KEY),
  'blur_pool': lambda x, w, s, p: jaxpool.blur_pool(x, w, s),
  'weighted_unpool': lambda x, w, s, p: jaxpool.weighted_unpool(
    *jaxpool.soft_pool(x, w, s, p, return_weights=True), w, s, p, output_size=x.shape[1:-1]
  ),
}


def _value_grad_jvp(f, x, ct, t):
  y, vjp = jax.vjp(f, x)
  return y, vjp(ct)[0], jax.jvp(f, (x,), (t,))[1]


# Half of the ops each run, in rotation (all of them over successive runs).
@pytest.mark.parametrize('name', helpers.rotating_share(sorted(WINDOWED), 0, len(WINDOWED) // 2))
def test_every_windowed_op_big_window_equals_the_unrolled_path(name, rng, monkeypatch):
  f = WINDOWED[name]
  for spatial, w, s, p in (((11, 12), (4, 3), 2, 1),):
    x = jnp.asarray(rng.standard_normal((2, *spatial, 3)), jnp.float32)
    g = lambda a, w=w, s=s, p=p: f(a, w, s, p)
    ct = jnp.asarray(rng.standard_normal(jax.eval_shape(g, x).shape), jnp.float32)
    t = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
    # the default (stacked) path; the one jitted function inside jaxpool may hold a trace
    # made under another UNROLL_MAX_TAPS by a test before
    _reductions.extremum_forward.clear_cache()
    stacked = jax.jit(lambda a, c, u, g=g: _value_grad_jvp(g, a, c, u))(x, ct, t)
    monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', 10**6)
    jax.clear_caches()  # UNROLL_MAX_TAPS is read when a function is traced
    unrolled = jax.jit(lambda a, c, u, g=g: _value_grad_jvp(g, a, c, u))(x, ct, t)
    monkeypatch.undo()
    jax.clear_caches()
    for part, a, b in zip(('value', 'gradient', 'jvp'), stacked, unrolled):
      np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=f'{name} {w} {part}')
