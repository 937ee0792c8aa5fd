"""Adaptive, global, channel-wise and spatial-pyramid pooling: functions and linen modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.test_util import check_grads

import jaxpool
from jaxpool import _numerics
from tests import helpers
from tests.helpers import from_torch_layout, to_torch_layout, torch_or_skip
from tests.reference import adaptive as ref

# The tests call the ops through jit: one compile per configuration. (Eager dispatch compiles
# each small primitive separately, which costs minutes on a 2-core CPU.) Errors raise at trace.
adaptive_avg_pool = jax.jit(jaxpool.adaptive_avg_pool, static_argnums=(1,))
adaptive_max_pool = jax.jit(jaxpool.adaptive_max_pool, static_argnums=(1, 2))
channel_pool = jax.jit(jaxpool.channel_pool, static_argnums=(1, 2))
spatial_pyramid_pool = jax.jit(jaxpool.spatial_pyramid_pool, static_argnums=(1, 2))
_global_jit = jax.jit(
  lambda x, method, keepdims, static, arrays: jaxpool.global_pool(
    x, method, keepdims, **dict(static), **arrays
  ),
  static_argnums=(1, 2, 3),
)


def global_pool(x, method='avg', keepdims=False, **kw):
  static = tuple(sorted((k, v) for k, v in kw.items() if not hasattr(v, 'shape')))
  arrays = {k: v for k, v in kw.items() if hasattr(v, 'shape')}
  return _global_jit(x, method, keepdims, static, arrays)


# (input spatial, output_size): the brief's cases, then overlap, upsampling and None entries.
TORCH_CASES = [
  ((224,), (7,)),
  ((13,), (13,)),
  ((14,), (5,)),
  ((5,), (8,)),
  ((224, 224), (7, 7)),
  ((13, 13), (13, 13)),
  ((14, 14), (5, 5)),
  ((5, 5), (8, 8)),
  ((14, 9), (5, None)),
  ((7, 12), (None, 5)),
  ((10, 17), (3, 4)),
  ((6, 4), (6, 9)),
  ((6, 5, 7), (4, 2, 9)),
  ((8, 8, 6), (4, 2, 3)),
  ((5, 7, 9), (None, 3, 10)),
]


def _random_cases(count, seed=1):
  rng = np.random.default_rng(seed)
  cases = []
  for _ in range(count):
    n = int(rng.integers(1, 4))
    spatial = tuple(int(v) for v in rng.integers(1, 12, n))
    out = tuple(None if rng.random() < 0.15 else int(rng.integers(1, 12)) for _ in range(n))
    cases.append((spatial, out))
  return cases


def _torch_adaptive(x, out, method, ct):
  """torch values, indices and gradient for a channel-last x with one batch dim."""
  torch = torch_or_skip()
  n = len(out)
  xt = torch.tensor(to_torch_layout(x, n), dtype=torch.float64, requires_grad=True)
  fn = getattr(torch.nn.functional, f'adaptive_{method}_pool{n}d')
  if n == 1:  # torch's 1-d functions take no None entries
    out = tuple(x.shape[1] if o is None else o for o in out)
  if method == 'max':
    y, idx = fn(xt, out, return_indices=True)
  else:
    y, idx = fn(xt, out), None
  (grad,) = torch.autograd.grad(y, xt, torch.tensor(to_torch_layout(ct, n)))
  idx = None if idx is None else from_torch_layout(idx, n)
  return from_torch_layout(y, n), idx, from_torch_layout(grad, n)


def _out_shape(spatial, out):
  return tuple(s if o is None else o for s, o in zip(spatial, out))


# --- torch parity: values, indices, gradients ---------------------------------------------


def _everything(out):
  """One jit per output size: both pools, their VJPs and the max indices."""

  def run(x, ct):
    ya, vjp_a = jax.vjp(lambda a: jaxpool.adaptive_avg_pool(a, out), x)
    ym, vjp_m = jax.vjp(lambda a: jaxpool.adaptive_max_pool(a, out), x)
    _, idx = jaxpool.adaptive_max_pool(x, out, return_indices=True)
    return {'avg': (ya, vjp_a(ct)[0]), 'max': (ym, vjp_m(ct)[0]), 'idx': idx}

  return jax.jit(run)


# PyTorch's own cases every run; two of six random ones in rotation.
@pytest.mark.parametrize(
  'spatial,out', TORCH_CASES + helpers.rotating_share(_random_cases(6), 0, 2)
)
def test_matches_torch(spatial, out, rng):
  channels = 2 if max(spatial) > 100 else 3
  x = rng.standard_normal((2, *spatial, channels)).astype(np.float32)
  ct = rng.standard_normal((2, *_out_shape(spatial, out), channels)).astype(np.float32)
  got = _everything(out)(x, ct)
  for method in ('avg', 'max'):
    want_y, want_idx, want_grad = _torch_adaptive(x, out, method, ct)
    y, grad = got[method]
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6, err_msg=method)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6, err_msg=method)
  assert got['idx'].dtype == jnp.int32
  np.testing.assert_array_equal(got['idx'], want_idx)


def test_torch_ties_route_to_first_max(rng):
  """Integer-valued inputs tie often: gradients and indices still match torch exactly."""
  for spatial, out in [((9, 7), (4, 3)), ((6, 6), (3, 3)), ((5, 4, 6), (3, 3, 4)), ((4,), (7,))]:
    x = rng.integers(0, 3, (2, *spatial, 2)).astype(np.float32)
    ct = rng.standard_normal((2, *out, 2)).astype(np.float32)
    want_y, want_idx, want_grad = _torch_adaptive(x, out, 'max', ct)
    y, vjp = jax.vjp(lambda a, out=out: adaptive_max_pool(a, out), jnp.asarray(x))
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(adaptive_max_pool(x, out, return_indices=True)[1], want_idx)
    np.testing.assert_allclose(vjp(jnp.asarray(ct))[0], want_grad, rtol=1e-6, atol=1e-6)


# --- NumPy references (independent of torch) -----------------------------------------------


@pytest.mark.parametrize('spatial,out', _random_cases(10, seed=7))
def test_matches_numpy_reference(spatial, out, rng):
  x = rng.standard_normal((2, *spatial, 2)).astype(np.float32)
  x[..., 1] = np.round(x[..., 1])  # ties
  ct = rng.standard_normal((2, *_out_shape(spatial, out), 2))
  got = _everything(out)(x, jnp.asarray(ct, jnp.float32))
  want_max, want_idx = ref.adaptive_pool(x, out, 'max')
  np.testing.assert_array_equal(got['max'][0], want_max.astype(np.float32))
  np.testing.assert_array_equal(got['idx'], want_idx)
  np.testing.assert_allclose(got['avg'][0], ref.adaptive_pool(x, out, 'avg'), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got['max'][1], ref.adaptive_max_grad(x, out, ct), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got['avg'][1], ref.adaptive_avg_grad(x, out, ct), rtol=1e-5, atol=1e-5)


def test_window_bounds_are_pytorch_integer_maths():
  """The doc's worked example, the 13 -> 13 identity and a case float32 division gets wrong."""
  x = jnp.arange(5.0).reshape(5, 1)
  np.testing.assert_array_equal(adaptive_avg_pool(x, (3,))[:, 0], [0.5, 2.0, 3.5])
  x = jnp.arange(13.0).reshape(1, 13, 1)
  np.testing.assert_array_equal(adaptive_max_pool(x, (13,)), x)
  x = jnp.arange(91.0).reshape(1, 91, 1)  # Keras' float-bounds bug region (91 -> 13)
  np.testing.assert_array_equal(adaptive_max_pool(x, (13,))[0, :, 0], np.arange(6, 91, 7))
  np.testing.assert_allclose(adaptive_avg_pool(x, (13,))[0, :, 0], np.arange(3, 91, 7))


@pytest.mark.parametrize('method', ['avg', 'max'])
@pytest.mark.parametrize(
  'spatial,out', [((7,), (3,)), ((5, 4), (3, 6)), ((4, 3, 5), (2, 3, 2)), ((6, 6), (3, 2))]
)
def test_check_grads(method, spatial, out, x64, rng):
  # distinct values: the max gradient is smooth around them
  x = jnp.asarray(rng.permutation(np.prod(spatial) * 2).reshape(1, *spatial, 2) / 3.0)
  fn = adaptive_avg_pool if method == 'avg' else adaptive_max_pool
  check_grads(
    lambda a: fn(a, out), (x,), order=2 if method == 'avg' else 1, modes=['rev'], eps=1e-3
  )


@pytest.mark.parametrize('method', ['avg', 'max'])
def test_backward_has_no_scatter(method):
  fn = adaptive_avg_pool if method == 'avg' else adaptive_max_pool
  for out in [(5, 3), (4, 4), (8, 5)]:
    grad = jax.jit(jax.grad(lambda a, out=out: jnp.sum(fn(a, out) ** 2)))
    hlo = grad.lower(jnp.ones((2, 16, 12, 3))).as_text()
    assert 'scatter' not in hlo.lower(), out


# --- special values, dtypes, batch dims ----------------------------------------------------


def test_extreme_values(rng):
  x = rng.standard_normal((2, 14, 9, 3)).astype(np.float32)
  for scaled in (x * 1000, x + 500, x - 500, x * 1e30):
    want = ref.adaptive_pool(scaled, (5, 4), 'avg')
    np.testing.assert_allclose(adaptive_avg_pool(scaled, (5, 4)), want, rtol=1e-5)
    want_max, _ = ref.adaptive_pool(scaled, (5, 4), 'max')
    np.testing.assert_array_equal(adaptive_max_pool(scaled, (5, 4)), want_max.astype(np.float32))
  x = np.array([[1.0], [-np.inf], [2.0], [-np.inf], [-np.inf]], np.float32)[None]  # (1, 5, 1)
  np.testing.assert_array_equal(adaptive_max_pool(x, (2,))[0, :, 0], [2.0, 2.0])
  np.testing.assert_array_equal(adaptive_max_pool(x, (5,))[0, :, 0], x[0, :, 0])
  g = jax.grad(lambda a: jnp.sum(adaptive_max_pool(a, (2,))))(jnp.asarray(x))
  np.testing.assert_array_equal(g[0, :, 0], [0, 0, 2, 0, 0])
  assert np.all(np.isfinite(g))
  np.testing.assert_array_equal(adaptive_avg_pool(x, (2,))[0, :, 0], [-np.inf, -np.inf])


def test_nan_propagates_and_routes_to_first_nan():
  x = jnp.array([1.0, jnp.nan, 3.0, jnp.nan, 0.0]).reshape(1, 5, 1)
  y, idx = adaptive_max_pool(x, (2,), return_indices=True)  # windows [0, 3), [2, 5)
  assert np.isnan(y).all()
  np.testing.assert_array_equal(idx[0, :, 0], [1, 3])
  g = jax.grad(lambda a: jnp.sum(jnp.where(jnp.isnan(y), 1.0, 0.0) * adaptive_max_pool(a, (2,))))
  np.testing.assert_array_equal(np.nan_to_num(g(x))[0, :, 0], [0, 1, 0, 1, 0])


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtypes(dtype, rng):
  x = rng.standard_normal((2, 14, 10, 3)).astype(np.float32)
  xd = jnp.asarray(x, dtype)
  tol = 1e-6 if dtype == jnp.float32 else 1e-2
  for out in [(5, 3), (7, 5), (28, 10)]:
    y = adaptive_avg_pool(xd, out)
    assert y.dtype == dtype
    want = ref.adaptive_pool(np.asarray(xd, np.float32), out, 'avg')
    np.testing.assert_allclose(np.asarray(y, np.float32), want, rtol=tol, atol=tol)
    m = adaptive_max_pool(xd, out)
    assert m.dtype == dtype
    np.testing.assert_array_equal(
      np.asarray(m, np.float32), ref.adaptive_pool(np.asarray(xd, np.float32), out, 'max')[0]
    )
    g = jax.grad(lambda a, out=out: jnp.sum(adaptive_avg_pool(a, out).astype(jnp.float32)))(xd)
    assert g.dtype == dtype


def test_integer_input():
  x = jnp.arange(2 * 7 * 3).reshape(2, 7, 3)
  y, idx = adaptive_max_pool(x, (3,), return_indices=True)
  assert y.dtype == x.dtype
  want, want_idx = ref.adaptive_pool(np.asarray(x), (3,), 'max')
  np.testing.assert_array_equal(y, want)
  np.testing.assert_array_equal(idx, want_idx)
  np.testing.assert_array_equal(global_pool(x, 'max'), np.asarray(x).max(1))
  with pytest.raises(TypeError, match='adaptive_avg_pool needs a floating-point x.*int32'):
    adaptive_avg_pool(x, (3,))
  with pytest.raises(TypeError, match="global_pool.*'gem'.*floating-point.*int32"):
    global_pool(x, 'gem')


def test_batch_dims_and_int_output_size(rng):
  x = rng.standard_normal((2, 3, 11, 4)).astype(np.float32)
  y = adaptive_avg_pool(x, (4,))
  assert y.shape == (2, 3, 4, 4)
  np.testing.assert_allclose(y[1, 2], adaptive_avg_pool(x[1, 2], (4,)), rtol=1e-6)
  y, idx = adaptive_max_pool(x[0], (4,), return_indices=True)  # (3, 11, 4): batch 3
  np.testing.assert_array_equal(idx[2], adaptive_max_pool(x[0, 2], (4,), True)[1])
  # an int output_size pools every spatial dim of an (N, *spatial, C) input
  assert adaptive_avg_pool(x, 2).shape == (2, 2, 2, 4)
  assert adaptive_max_pool(x[..., None], 3).shape == (2, 3, 3, 3, 1)


def test_jit_vmap_grad(rng):
  x = jnp.asarray(rng.standard_normal((3, 2, 10, 7, 4)).astype(np.float32))
  for fn in (jaxpool.adaptive_avg_pool, jaxpool.adaptive_max_pool):  # eager vs jit
    f = jax.jit(lambda a, fn=fn: fn(a, (4, None)))
    y = f(x[0])
    np.testing.assert_allclose(y, fn(x[0], (4, None)), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(f)(x), f(x), rtol=1e-6)  # 2 batch dims
    g = jax.jit(jax.grad(lambda a, fn=fn: jnp.sum(jnp.sin(fn(a, (3, 5))))))(x)
    gv = jax.jit(jax.vmap(jax.grad(lambda a, fn=fn: jnp.sum(jnp.sin(fn(a, (3, 5)))))))(x)
    np.testing.assert_allclose(g, gv, rtol=1e-6)
  _, idx = jax.jit(lambda a: jaxpool.adaptive_max_pool(a, (3, 5), return_indices=True))(x[0])
  _, want = jaxpool.adaptive_max_pool(x[0], (3, 5), return_indices=True)
  np.testing.assert_array_equal(idx, want)


def test_sharded_batch(rng):
  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  sharding = NamedSharding(mesh, PartitionSpec('batch'))
  x = rng.standard_normal((8, 14, 9, 3)).astype(np.float32)
  xs = jax.device_put(x, sharding)

  def loss(a):
    return (
      jnp.sum(adaptive_avg_pool(a, (5, 4)) ** 2)
      + jnp.sum(adaptive_max_pool(a, (5, 4)) ** 2)
      + jnp.sum(global_pool(a, 'gem') ** 2)
      + jnp.sum(spatial_pyramid_pool(a) ** 2)
    )

  f = jax.jit(jax.value_and_grad(loss))
  (v, g), (v0, g0) = f(xs), f(jnp.asarray(x))
  np.testing.assert_allclose(v, v0, rtol=1e-5)
  np.testing.assert_allclose(g, g0, rtol=1e-5, atol=1e-6)
  _, idx = jax.jit(lambda a: adaptive_max_pool(a, (5, 4), return_indices=True))(xs)
  np.testing.assert_array_equal(idx, adaptive_max_pool(x, (5, 4), return_indices=True)[1])


def test_indices_work_with_max_unpool(rng):
  x = rng.standard_normal((2, 8, 12, 3)).astype(np.float32)
  y, idx = adaptive_max_pool(x, (4, 4), return_indices=True)  # blocks 2 x 3
  y2, idx2 = jaxpool.max_pool(x, (2, 3), return_indices=True)
  np.testing.assert_array_equal(
    jaxpool.max_unpool(y, idx, (2, 3)), jaxpool.max_unpool(y2, idx2, (2, 3))
  )
  # overlapping windows: max_unpool with a window/stride that reproduces the input size
  y, idx = adaptive_max_pool(x[:, :7], (3, 5), return_indices=True)
  up = jaxpool.max_unpool(y, idx, (3, 3), (2, 2), output_size=(7, 12))
  torch = torch_or_skip()
  yt, it = torch.nn.functional.adaptive_max_pool2d(
    torch.tensor(to_torch_layout(x[:, :7], 2)), (3, 5), return_indices=True
  )
  want = torch.nn.functional.max_unpool2d(yt, it, (3, 3), (2, 2), output_size=(7, 12))
  np.testing.assert_array_equal(up, from_torch_layout(want, 2))


# --- errors ---------------------------------------------------------------------------------


def test_adaptive_errors():
  x = jnp.ones((2, 6, 6, 3))
  with pytest.raises(ValueError, match=r'output_size entries must be >= 1.*\(0, 3\)'):
    adaptive_avg_pool(x, (0, 3))
  with pytest.raises(ValueError, match=r'output_size entries must be >= 1.*-2'):
    adaptive_max_pool(x, -2)
  with pytest.raises(ValueError, match=r'3 spatial dim\(s\) for a 3-entry output_size.*rank >= 4'):
    adaptive_avg_pool(jnp.ones((6, 6, 3)), (2, 2, 2))
  with pytest.raises(TypeError, match=r'output_size entries must be positive ints or None.*2.5'):
    adaptive_avg_pool(x, (2.5, 2))
  with pytest.raises(TypeError, match=r'output_size must be an int or a non-empty sequence.*None'):
    adaptive_max_pool(x, None)
  with pytest.raises(TypeError, match=r'output_size must be an int or a non-empty sequence.*\(\)'):
    adaptive_max_pool(x, ())
  with pytest.raises(
    ValueError,
    match=r'an int output_size means x is \(N, \*spatial, C\)'
    r'.*\(6, 3\)',
  ):
    adaptive_avg_pool(jnp.ones((6, 3)), 2)
  with pytest.raises(ValueError, match='non-empty spatial dims.*0'):
    adaptive_avg_pool(jnp.ones((2, 0, 3)), (2,))
  with pytest.raises(TypeError, match="return_indices must be a bool; got 'yes'"):
    adaptive_max_pool(x, (2, 2), return_indices='yes')


# --- global pooling -------------------------------------------------------------------------

GLOBAL = [
  ('avg', {}),
  ('max', {}),
  ('soft', {}),
  ('soft', {'temperature': 0.3}),
  ('lp', {}),
  ('lp', {'p': 3}),
  ('gem', {}),
  ('gem', {'p': 2.5, 'eps': 1e-3}),
  ('avgmax', {}),
  ('catavgmax', {}),
]


@pytest.mark.parametrize('spatial', [(7,), (5, 6), (3, 4, 2)])
def test_global_matches_numpy(spatial, rng):
  x = rng.standard_normal((2, *spatial, 3)).astype(np.float32)
  run = jax.jit(
    lambda a: [
      (
        jaxpool.global_pool(jnp.abs(a) if m == 'lp' else a, m, **k),
        jaxpool.global_pool(jnp.abs(a) if m == 'lp' else a, m, True, **k),
      )
      for m, k in GLOBAL
    ]
  )
  for (method, kw), (y, yk) in zip(GLOBAL, run(x)):
    want = ref.global_pool(np.abs(x) if method == 'lp' else x, method, **kw)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=1e-6, err_msg=f'{method} {kw}')
    assert yk.shape == (2, *(1,) * len(spatial), want.shape[-1])
    np.testing.assert_array_equal(yk.reshape(y.shape), y)


def test_global_max_grad_to_first_max_and_ties():
  x = jnp.array([[[[1.0], [3.0]], [[3.0], [0.0]]]])  # (1, 2, 2, 1): tie at (0, 1) and (1, 0)
  g = jax.grad(lambda a: jnp.sum(global_pool(a, 'max')))(x)
  np.testing.assert_array_equal(g[0, ..., 0], [[0, 1], [0, 0]])
  g = jax.grad(lambda a: jnp.sum(channel_pool(a, 'max')))(jnp.array([[2.0, 5.0, 5.0]]))
  np.testing.assert_array_equal(g, [[0, 1, 0]])


@pytest.mark.parametrize('method,kw', GLOBAL)
def test_global_grads(method, kw, x64, rng):
  x = jnp.asarray(rng.permutation(2 * 5 * 4 * 3).reshape(2, 5, 4, 3) / 20.0 + 0.1)
  check_grads(lambda a: global_pool(a, method, **kw), (x,), order=1, modes=['rev'], eps=1e-4)


def test_power_means_grad_wrt_p(x64, rng):
  """GeM / LP custom JVPs: gradients in x and p (learnable, scalar or per channel)."""
  x = jnp.asarray(np.abs(rng.standard_normal((2, 4, 5, 3))) + 0.05)
  gem = jaxpool.global_pool
  # Each function jitted: check_grads calls it many times (eagerly, every op compiles apart).
  check_grads(
    jax.jit(lambda q: gem(x, 'gem', p=q)),
    (jnp.asarray(3.0),),
    order=1,
    modes=['rev', 'fwd'],
    eps=1e-5,
  )
  check_grads(
    jax.jit(lambda a, q: gem(a, 'gem', p=q)),
    (x, jnp.asarray([1.5, 3.0, 6.0])),
    order=1,
    modes=['rev', 'fwd'],
    eps=1e-4,
  )
  check_grads(
    jax.jit(lambda a, q: gem(a, 'lp', p=q)), (x, jnp.asarray(2.5)), order=1, modes=['rev'], eps=1e-4
  )
  check_grads(jax.jit(lambda a: gem(a, 'lp', p=3)), (x - 0.5,), order=1, modes=['rev'])  # signs
  check_grads(
    jax.jit(lambda t: gem(x, 'soft', temperature=t)), (jnp.asarray(0.7),), order=1, modes=['rev']
  )
  # d/dp by central finite differences in float64
  f = jax.jit(lambda q: jnp.sum(gem(x, 'gem', p=q)))
  fd = (f(3.0 + 1e-6) - f(3.0 - 1e-6)) / 2e-6
  np.testing.assert_allclose(jax.grad(f)(jnp.asarray(3.0)), fd, rtol=1e-6)


def test_global_limits_and_extremes(rng):
  x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
  avg, mx = global_pool(x, 'avg'), global_pool(x, 'max')
  np.testing.assert_allclose(global_pool(x, 'soft', temperature=1e-4), mx, rtol=1e-5)
  np.testing.assert_allclose(global_pool(x, 'soft', temperature=1e5), avg, atol=1e-4)
  xp = np.abs(x) + 0.1
  np.testing.assert_allclose(global_pool(xp, 'gem', p=1), global_pool(xp, 'avg'), rtol=1e-6)
  np.testing.assert_allclose(global_pool(xp, 'gem', p=200.0), global_pool(xp, 'max'), rtol=0.03)
  np.testing.assert_allclose(global_pool(xp, 'lp', p=float('inf')), global_pool(xp, 'max'))
  # every method's value and gradient, one compile per input shape
  every = jax.jit(
    lambda a: [
      jax.value_and_grad(lambda b, m=m, k=k: jnp.sum(jaxpool.global_pool(b, m, **k)))(a)
      for m, k in GLOBAL
    ]
  )
  base = [np.asarray(global_pool(xp, m, **k)) for m, k in GLOBAL]
  for scale in (1e-30, 1e4, 1e30):  # no overflow or underflow: scaled evaluation
    xs = (xp * scale).astype(np.float32)
    for (method, kw), (v, g), want in zip(GLOBAL, every(xs), base):
      assert np.isfinite(v) and np.all(np.isfinite(g)), (method, kw, scale)
      y = global_pool(xs, method, **kw)
      # homogeneous of degree 1 (soft is not; gem only above eps)
      if method != 'soft' and (method != 'gem' or scale > 1):
        np.testing.assert_allclose(
          np.asarray(y) / scale, want, rtol=1e-4, err_msg=f'{method} {kw} {scale}'
        )
  # near the top of the float range (XLA CPU flushes 1 / 3e38 to zero: no division by max)
  xs = (xp / xp.max() * 3e38).astype(np.float32)
  for (method, kw), (_, g) in zip(GLOBAL, every(xs)):
    if method in ('max', 'soft', 'gem'):
      y = np.asarray(global_pool(xs, method, **kw), np.float64)
      assert np.all(np.isfinite(g)) and np.all(y > 1e37) and np.all(np.isfinite(y)), (method, kw)
  # -inf beside finite: zero weight for soft, clamped for gem, ignored by max
  xi = x.copy()
  xi[:, 0, 0] = -np.inf
  for (method, _), (v, g) in zip(GLOBAL, every(xi)):
    if method in ('max', 'soft', 'gem'):
      assert not np.isnan(v) and not np.any(np.isnan(g)), method
  soft_ref = ref.global_pool(np.where(np.isinf(xi), -1e30, xi), 'soft')
  np.testing.assert_allclose(global_pool(xi, 'soft'), soft_ref, rtol=1e-5)
  all_neg_inf = np.full((1, 3, 1), -np.inf, np.float32)
  assert global_pool(all_neg_inf, 'soft')[0, 0] == -np.inf


@pytest.mark.parametrize('dtype', [jnp.bfloat16, jnp.float16])
def test_global_half_precision(dtype, rng):
  x = np.abs(rng.standard_normal((2, 6, 5, 3))).astype(np.float32)
  xd = jnp.asarray(x, dtype)
  for method, kw in GLOBAL:
    y = global_pool(xd, method, **kw)
    assert y.dtype == dtype
    np.testing.assert_allclose(
      np.asarray(y, np.float32),
      ref.global_pool(np.asarray(xd, np.float32), method, **kw),
      rtol=2e-2,
      atol=2e-2,
    )


def test_global_errors():
  x = jnp.ones((2, 4, 4, 3))
  with pytest.raises(
    ValueError,
    match=r"method must be one of 'avg', 'avgmax', 'catavgmax', "
    r"'gem', 'lp', 'max', 'soft'; got 'mean'",
  ):
    global_pool(x, 'mean')
  with pytest.raises(
    ValueError,
    match=r"method 'avg' takes keyword arguments \[\]; got "
    r"unexpected \['p'\]",
  ):
    global_pool(x, 'avg', p=3)
  with pytest.raises(
    ValueError,
    match=r"'gem' takes keyword arguments \['p', 'eps'\].*"
    r"\['temperature'\]",
  ):
    global_pool(x, 'gem', temperature=2.0)
  with pytest.raises(ValueError, match=r'p must be a positive number \(inf allowed\); got 0'):
    global_pool(x, 'gem', p=0)
  with pytest.raises(
    ValueError, match=r'eps must be a positive number \(inf allowed\); got -1e-06'
  ):
    global_pool(x, 'gem', eps=-1e-6)
  with pytest.raises(
    ValueError, match=r'temperature must be a positive number \(inf allowed\); got 0.0'
  ):
    global_pool(x, 'soft', temperature=0.0)
  with pytest.raises(
    ValueError,
    match=r'p must be a positive number or a float array: an array of shape '
    r'\(\) or \(3,\); got shape \(2,\)',
  ):
    global_pool(x, 'gem', p=jnp.ones(2))
  with pytest.raises(TypeError, match="p must be a positive number or a float array; got str 'x'"):
    global_pool(x, 'lp', p='x')
  with pytest.raises(ValueError, match=r'rank >= 3.*\(4, 3\)'):
    global_pool(jnp.ones((4, 3)))
  with pytest.raises(TypeError, match="keepdims must be a bool; got 'no'"):
    global_pool(x, keepdims='no')


# --- channel pooling ------------------------------------------------------------------------


@pytest.mark.parametrize('method', ['max', 'avg', 'soft'])
def test_channel_pool(method, rng):
  x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
  y = channel_pool(x, method)
  np.testing.assert_allclose(y, ref.channel_pool(x, method), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(channel_pool(x, method, keepdims=False), y[..., 0])
  assert channel_pool(jnp.asarray(x, jnp.bfloat16), method).dtype == jnp.bfloat16
  assert channel_pool(x[0, 0, 0], method).shape == (1,)
  with jax.enable_x64(True):
    check_grads(
      lambda a: channel_pool(a, method),
      (jnp.asarray(x[0, :2], jnp.float64),),
      order=1,
      modes=['rev'],
    )
  np.testing.assert_allclose(jax.vmap(lambda a: channel_pool(a, method))(x), y, rtol=1e-6)


def test_channel_pool_errors():
  with pytest.raises(ValueError, match=r"method must be one of 'avg', 'max', 'soft'; got 'min'"):
    channel_pool(jnp.ones((2, 3)), 'min')
  with pytest.raises(ValueError, match='rank >= 1'):
    channel_pool(jnp.float32(1.0))
  with pytest.raises(TypeError, match="channel_pool.*'avg'.*floating-point.*int32"):
    channel_pool(jnp.ones((2, 3), jnp.int32), 'avg')


# --- spatial pyramid ------------------------------------------------------------------------


@pytest.mark.parametrize('method', ['max', 'avg'])
@pytest.mark.parametrize(
  'spatial,levels',
  [((9, 7), (1, 2, 4)), ((3,), (1, 2, 4, 5)), ((5, 4, 6), (1, 2)), ((6, 8), (1, (2, 3)))],
)
def test_spatial_pyramid(method, spatial, levels, rng):
  x = rng.standard_normal((2, *spatial, 3)).astype(np.float32)
  sizes = [(lv,) * len(spatial) if isinstance(lv, int) else tuple(lv) for lv in levels]
  bins = sum(int(np.prod(z)) for z in sizes)
  ct = rng.standard_normal((2, 3 * bins))

  def run(a, c):
    y, vjp = jax.vjp(lambda b: jaxpool.spatial_pyramid_pool(b, levels, method), a)
    return y, vjp(c)[0]

  y, g = jax.jit(run)(x, jnp.asarray(ct, jnp.float32))
  want = ref.spatial_pyramid(x, levels, method)
  assert y.shape == (2, 3 * bins) == want.shape
  np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
  # the gradient is the sum of each level's adaptive-pool gradient
  grad_ref = ref.adaptive_max_grad if method == 'max' else ref.adaptive_avg_grad
  want_g, start = 0, 0
  for z in sizes:
    count = 3 * int(np.prod(z))
    want_g = want_g + grad_ref(x, z, ct[:, start : start + count].reshape(2, *z, 3))
    start += count
  np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-5)


def test_spatial_pyramid_errors():
  x = jnp.ones((2, 4, 4, 3))
  with pytest.raises(ValueError, match=r"method must be one of 'avg', 'max'; got 'soft'"):
    spatial_pyramid_pool(x, method='soft')
  with pytest.raises(ValueError, match=r'levels must be positive; got \(1, 0\)'):
    spatial_pyramid_pool(x, (1, 0))
  with pytest.raises(TypeError, match='levels must be a non-empty sequence.*got 4'):
    spatial_pyramid_pool(x, 4)
  with pytest.raises(ValueError, match='levels entry must be an int or have 2 entries'):
    spatial_pyramid_pool(x, (1, (2, 2, 2)))
  with pytest.raises(ValueError, match='rank >= 3'):
    spatial_pyramid_pool(jnp.ones((4, 3)))


@pytest.fixture(params=['tested whole', 'read once'])
def read_once(request, monkeypatch):
  """Both NaN tests of the max reductions: small inputs are tested whole, large ones
  (``_numerics.read_once``) read their row maxima and finiteness in one pass; a threshold of
  0 bytes takes the second path at test sizes."""
  if request.param == 'read once':
    monkeypatch.setattr(_numerics, 'READ_ONCE_BYTES', 0)
  return request.param


def _first_max_gradient(x: np.ndarray) -> np.ndarray:
  """Per (image, channel): 1 at PyTorch's winner over all positions (the last NaN if
  any, else the first maximum in row-major order), 0 elsewhere."""
  n, c = x.shape[0], x.shape[-1]
  flat = x.reshape(n, -1, c)
  out = np.zeros_like(flat)
  for i in range(n):
    for j in range(c):
      v = flat[i, :, j]
      nan = np.flatnonzero(np.isnan(v))
      out[i, nan[-1] if nan.size else int(np.argmax(v == np.max(v))), j] = 1
  return out.reshape(x.shape)


def _winner_input(spatial, content, seed):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((3, *spatial, 4)).astype(np.float32)
  if content == 'ties':
    x = np.round(x).clip(-1, 1)
    x[1] = 0.0
    x[2, ..., 0] = -0.0
    x[2, 0, 0, 0] = 0.0
  elif content == 'nan':
    x[0, spatial[0] // 2, 3, 1] = np.nan
    x[0, spatial[0] - 1, 5, 1] = np.nan
    x[1, 0, 0, 2] = np.nan
  elif content == 'inf':
    x[0, 1, 1, 0] = np.inf
    x[1] = -np.inf
  return x, rng


def _check_winner_routing(pool, x, want, rng):
  """``pool``'s gradient (jit; vmap per image) and tangent go to the winners in ``want``; the
  value beside the tangent is the forward's (the tangent rule computes its own)."""
  grad = jax.grad(lambda a: jnp.sum(pool(a)))
  per_image = jax.vmap(lambda a: grad(a[None])[0])
  t = rng.standard_normal(x.shape).astype(np.float32)
  # the three transformations in one jitted program; the forward alone in another
  g, g_per_image, (value, tangent) = jax.jit(
    lambda a, b: (grad(a), per_image(a), jax.jvp(pool, (a,), (b,)))
  )(jnp.asarray(x), jnp.asarray(t))
  np.testing.assert_array_equal(np.asarray(g), want)
  np.testing.assert_array_equal(np.asarray(g_per_image), want)
  np.testing.assert_array_equal(np.asarray(value), np.asarray(jax.jit(pool)(jnp.asarray(x))))
  return np.asarray(tangent), want * t


@pytest.mark.parametrize('spatial', [(16, 16), (56, 56), (17, 17), (2, 300)])
@pytest.mark.parametrize('content', ['normal', 'ties', 'nan', 'inf'])
def test_global_max_gradient_goes_to_pytorchs_winner_on_both_paths(spatial, content, read_once):
  # 256 positions or more that factor into rows of 8 or more search the winner row by row
  # (a plain row max, then one row), inputs with NaN or inf by the two-level scan over the
  # rows' slices; 17x17 (289 = 17 * 17) and 2x300 (20 * 30) take the rows, both under jit
  # and vmap.
  x, rng = _winner_input(spatial, content, len(content) + spatial[0])
  want = _first_max_gradient(x)
  pool = lambda a: jaxpool.global_pool(a, 'max')
  tangent, routed = _check_winner_routing(pool, x, want, rng)
  np.testing.assert_array_equal(tangent, np.sum(routed, axis=(1, 2)))


@pytest.mark.parametrize(
  'spatial, out', [((16, 16), 2), ((24, 40), (3, 5)), ((16, 16), 4), ((32, 48), (2, 3))]
)
@pytest.mark.parametrize('content', ['normal', 'ties', 'nan', 'inf'])
def test_adaptive_max_block_winner_on_every_path(spatial, out, content, read_once):
  # Blocks of fewer than 64 taps (4x4) are scanned tap by tap, whatever the input holds;
  # 8x8 blocks too where the input is read once (large), else, like larger ones (16x16),
  # they search row by row when the input is finite, by the two-level scan otherwise.
  x, rng = _winner_input(spatial, content, len(content) + spatial[1])
  oh, ow = (out, out) if isinstance(out, int) else out
  kh, kw = spatial[0] // oh, spatial[1] // ow
  blocks = x.reshape(3, oh, kh, ow, kw, 4).transpose(0, 1, 3, 2, 4, 5).reshape(-1, kh, kw, 4)
  want = _first_max_gradient(blocks).reshape(3, oh, ow, kh, kw, 4)
  want = want.transpose(0, 1, 3, 2, 4, 5).reshape(x.shape)
  pool = lambda a: jaxpool.adaptive_max_pool(a, (oh, ow))
  tangent, routed = _check_winner_routing(pool, x, want, rng)
  routed = routed.reshape(3, oh, kh, ow, kw, 4).sum(axis=(2, 4))
  np.testing.assert_array_equal(tangent, routed)
  y, index = jax.jit(lambda a: jaxpool.adaptive_max_pool(a, (oh, ow), return_indices=True))(x)
  per_block = want.reshape(3, oh, kh, ow, kw, 4).transpose(0, 1, 3, 2, 4, 5)
  flat = np.argmax(per_block.reshape(3, oh, ow, kh * kw, 4), axis=3)  # the winner in its block
  rows, cols = flat // kw, flat % kw
  oy, ox = np.arange(oh)[:, None, None] * kh, np.arange(ow)[None, :, None] * kw
  np.testing.assert_array_equal(np.asarray(index), (oy + rows) * spatial[1] + ox + cols)
  np.testing.assert_array_equal(
    np.isnan(np.asarray(y)), np.isnan(blocks).any(axis=(1, 2)).reshape(3, oh, ow, 4)
  )


@pytest.mark.parametrize('spatial', [(16, 16), (56, 56), (2, 300), (2, 2048)])
@pytest.mark.parametrize('content', ['normal', 'ties', 'nan', 'inf', 'zeros'])
def test_max_value_on_every_path(spatial, content, read_once):
  # The forward reads row maxima and finiteness in one pass; rows whose maxima are finite and
  # not zero give the result, an input with NaN or inf a NaN-keeping max by slices, and
  # one with a zero maximum the plain one (the key loses the sign of zero). Each path under
  # jit, vmap and eagerly gives NumPy's maximum (NaN where the window holds one), all three
  # agree bit for bit, and a zero maximum has the sign XLA's own max gives it, as before the
  # one-pass key (it is not PyTorch's: XLA's vectorised max picks among +0 and -0 by shape).
  x, _ = _winner_input(spatial, 'ties' if content == 'zeros' else content, len(content))
  if content == 'zeros':  # a channel of dead ReLUs: +0 and -0 only, the rest positive
    x[:, ..., 3] = np.where(x[:, ..., 3] > 0, 0.0, -0.0)
    x[:, ..., :3] = np.abs(x[:, ..., :3]) + 1
  pools = {
    'global': (lambda a: jaxpool.global_pool(a, 'max'), lambda v: v.max(axis=(1, 2))),
    'adaptive': (
      lambda a: jaxpool.adaptive_max_pool(a, (1, 2)),
      lambda v: np.stack([h.max(axis=(1, 2)) for h in np.split(v, 2, axis=2)], axis=1)[:, None],
    ),
  }
  signs = {}
  for name, (pool, reference) in pools.items():
    jitted = np.asarray(jax.jit(pool)(jnp.asarray(x)))
    signs[name] = np.signbit(jitted)
    per_image = np.asarray(jax.jit(jax.vmap(lambda a: pool(a[None])[0]))(jnp.asarray(x)))
    eager = np.asarray(pool(jnp.asarray(x)))
    np.testing.assert_array_equal(jitted, reference(x), err_msg=name)
    for other in (per_image, eager):
      np.testing.assert_array_equal(other, jitted, err_msg=name)
      np.testing.assert_array_equal(np.signbit(other), np.signbit(jitted), err_msg=name)
  plain = np.asarray(jax.jit(lambda a: jnp.max(a, axis=(1, 2)))(jnp.asarray(x)))
  np.testing.assert_array_equal(signs['global'], np.signbit(plain))
