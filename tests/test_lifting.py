"""LiftPool: NumPy lifting references, exact inversion, gradients, modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.test_util import check_grads

import jaxpool
import jaxpool.linen as jpl
from jaxpool.lifting import band_names
from jaxpool.linen._lifting import LiftOperator
from tests.reference import lifting as ref

HAAR = (np.ones(1), np.full(1, 0.5))
LEGALL = (np.full(2, 0.5), np.full(2, 0.25))


def down_jit(x, predict, update, axes=(-3, -2)):
  """lift_down_pool compiled once (filters are traced arguments)."""
  return jax.jit(lambda a, p, u: jaxpool.lift_down_pool(a, p, u, axes))(x, predict, update)


def up_jit(low, details, predict, update, axes=(-3, -2), output_size=None):
  return jax.jit(lambda lo, de, p, u: jaxpool.lift_up_pool(lo, de, p, u, axes, output_size))(
    low, details, predict, update
  )


def _operator_pair(rng, channels, kernel_size=3):
  """Random LiftOperator parameters, as the JAX module and as the NumPy reference."""
  op = LiftOperator(kernel_size)
  params = op.init(jax.random.key(int(rng.integers(1 << 30))), jnp.zeros((1, 4, channels)))
  params = jax.tree_util.tree_map(
    lambda a: a + 0.3 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), params
  )
  numpy_params = jax.tree_util.tree_map(np.asarray, params['params'])
  return (lambda v: op.apply(params, v)), ref.lift_operator(numpy_params), params


def _sizes(shape, axes):
  return tuple(shape[a] for a in axes)


# --- values against the NumPy reference ---------------------------------------------------


@pytest.mark.parametrize(
  'shape,axes,kp,ku,per_channel',
  [
    ((2, 8, 3), (-2,), 1, 1, False),
    ((2, 9, 3), (1,), 2, 2, True),
    ((2, 6, 7, 3), (-3, -2), 3, 2, False),
    ((2, 6, 7, 3), (2, 1), 4, 3, True),
    ((5, 4, 2), (0, 1), 2, 1, False),  # unbatched image
    ((2, 3, 5, 4, 6, 2), (2, 3, 4), 3, 3, True),  # 3-d, one extra batch dim
    ((3, 1, 2), (0, 1), 2, 2, False),  # size-1 axis
  ],
)
def test_filters_match_reference(rng, shape, axes, kp, ku, per_channel):
  c = shape[-1]
  wp = rng.standard_normal((kp, c) if per_channel else (kp,)).astype(np.float32)
  wu = rng.standard_normal((ku, c) if per_channel else (ku,)).astype(np.float32)
  x = rng.standard_normal(shape).astype(np.float32)
  low, details = down_jit(jnp.asarray(x), wp, wu, axes)
  axes_n = tuple(a % len(shape) for a in axes)
  expected = ref.lift_down(x, ref.filter_op(wp, (kp - 1) // 2), ref.filter_op(wu, ku // 2), axes_n)
  names = band_names(len(axes))
  assert set(details) == set(names[1:])  # (jit returns dicts with sorted keys)
  np.testing.assert_allclose(np.asarray(low), expected[names[0]], rtol=1e-5, atol=1e-5)
  for name in names[1:]:
    assert details[name].shape == low.shape
    np.testing.assert_allclose(np.asarray(details[name]), expected[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
  'shape,axes', [((2, 8, 6, 3), (-3, -2)), ((2, 7, 5, 3), (-2, -3)), ((2, 9, 2), (-2,))]
)
def test_learned_operators_match_reference(rng, shape, axes):
  c = shape[-1]
  p_jax, p_np, _ = _operator_pair(rng, c)
  u_jax, u_np, _ = _operator_pair(rng, c, kernel_size=2)
  x = rng.standard_normal(shape).astype(np.float32)
  low, details = jax.jit(lambda a: jaxpool.lift_down_pool(a, p_jax, u_jax, axes))(x)
  axes_n = tuple(a % len(shape) for a in axes)
  expected = ref.lift_down(x, p_np, u_np, axes_n)
  np.testing.assert_allclose(np.asarray(low), expected['L' * len(axes)], rtol=1e-4, atol=1e-5)
  for name, band in details.items():
    np.testing.assert_allclose(np.asarray(band), expected[name], rtol=1e-4, atol=1e-5)
  # and the inverse against the reference inverse
  y = jax.jit(
    lambda lo, de: jaxpool.lift_up_pool(lo, de, p_jax, u_jax, axes, _sizes(shape, axes_n))
  )(low, details)
  back = ref.lift_up(expected, p_np, u_np, axes_n, _sizes(shape, axes_n))
  np.testing.assert_allclose(back, x, atol=1e-9)
  np.testing.assert_allclose(np.asarray(y), x, atol=1e-5)


def test_haar_is_average_pooling_and_scaled_differences(rng):
  x = rng.standard_normal((2, 8, 6, 3)).astype(np.float32)
  low, details = down_jit(jnp.asarray(x), *HAAR)
  np.testing.assert_allclose(np.asarray(low), np.asarray(jaxpool.avg_pool(x, (2, 2))), atol=1e-6)
  # HH of Haar: d along H of the W-details = (x11 - x10) - (x01 - x00)
  hh = (x[:, 1::2, 1::2] - x[:, 1::2, ::2]) - (x[:, ::2, 1::2] - x[:, ::2, ::2])
  np.testing.assert_allclose(np.asarray(details['HH']), hh, atol=1e-5)


def test_legall_53_kills_linear_ramps_in_the_interior():
  # LeGall 5/3 predicts odd samples by the mean of their even neighbours: a
  # linear ramp has zero detail except where the zero padding is read.
  x = jnp.arange(16.0).reshape(16, 1)
  _, details = down_jit(x, *LEGALL, axes=0)
  np.testing.assert_allclose(np.asarray(details['H'][:-1, 0]), 0, atol=1e-6)
  assert float(details['H'][-1, 0]) != 0


# --- exact inversion ----------------------------------------------------------------------


@pytest.mark.parametrize(
  'shape,axes',
  [
    ((2, 8, 6, 3), (-3, -2)),
    ((2, 7, 9, 3), (1, 2)),
    ((3, 5, 2), (-2,)),
    ((2, 4, 5, 3, 2), (1, 2, 3)),
    ((6, 6, 6, 2), (2, 0)),
  ],
)
def test_round_trip_functional(x64, rng, shape, axes):
  # Exact algebraically for any P, U; checked in float64 so rounding (which
  # nonlinear P/U amplify through the levels) stays far below the tolerance.
  c = shape[-1]
  x = jnp.asarray(rng.standard_normal(shape))
  sizes = _sizes(shape, [a % len(shape) for a in axes])
  for p, u in (
    (rng.standard_normal((3, c)), rng.standard_normal((2,))),
    (lambda v: jnp.sin(3 * v) + v**2, lambda v: jnp.tanh(v) * 5),
  ):
    f = jax.jit(
      lambda a, p=p, u=u: jaxpool.lift_up_pool(
        *jaxpool.lift_down_pool(a, p, u, axes), p, u, axes, sizes
      )
    )
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(x), rtol=0, atol=1e-10)


def test_default_output_size_keeps_the_repeated_sample():
  x = jnp.arange(5.0).reshape(5, 1)
  low, details = down_jit(x, *HAAR, axes=0)
  assert low.shape == (3, 1)
  y = up_jit(low, details, *HAAR, axes=0)
  np.testing.assert_allclose(np.asarray(y[:, 0]), [0, 1, 2, 3, 4, 4])


def test_zero_details_upsample_the_low_band():
  low = jnp.arange(3.0).reshape(3, 1)
  zeros = {'H': jnp.zeros((3, 1))}
  np.testing.assert_allclose(
    np.asarray(up_jit(low, zeros, *HAAR, axes=0)[:, 0]), [0, 0, 1, 1, 2, 2]
  )


# --- gradients ---------------------------------------------------------------------------


def test_gradients_wrt_input_and_filters(x64, rng):
  x = jnp.asarray(rng.standard_normal((2, 5, 6, 2)))
  wp = jnp.asarray(rng.standard_normal((3, 2)))
  wu = jnp.asarray(rng.standard_normal((2,)))

  def down(a, p, u):
    low, details = jaxpool.lift_down_pool(a, p, u)
    return low, details

  def up(low, hl, p, u):
    details = {'LH': hl, 'HL': 0.5 * hl, 'HH': -hl}
    return jaxpool.lift_up_pool(low, details, p, u, output_size=(5, 6))

  check_grads(jax.jit(down), (x, wp, wu), order=1, modes=('fwd', 'rev'))
  low = jnp.asarray(rng.standard_normal((2, 3, 3, 2)))
  check_grads(jax.jit(up), (low, low[::-1], wp, wu), order=1, modes=('fwd', 'rev'))


def test_gradients_wrt_learned_operator_parameters(x64, rng):
  x = jnp.asarray(rng.standard_normal((2, 6, 4, 2)))
  op = LiftOperator(3)
  pp = op.init(jax.random.key(0), x[0])
  pu = op.init(jax.random.key(1), x[0])
  pu = jax.tree_util.tree_map(lambda a: a + 0.1, pu)  # nonzero biases too
  pp, pu = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), (pp, pu))

  def loss(a, pp, pu):
    low, details = jaxpool.lift_down_pool(a, lambda v: op.apply(pp, v), lambda v: op.apply(pu, v))
    return low, details['HH']

  check_grads(jax.jit(loss), (x, pp, pu), order=1, modes=('rev',))


# --- dtypes, batching, transforms ---------------------------------------------------------


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtypes_kept(rng, dtype):
  x = rng.standard_normal((2, 6, 4, 3)).astype(np.float32)
  exact_low, _exact_details = down_jit(jnp.asarray(x), *LEGALL)
  low, details = down_jit(jnp.asarray(x, dtype), *LEGALL)
  assert low.dtype == dtype and all(d.dtype == dtype for d in details.values())
  tol = 1e-6 if dtype == jnp.float32 else 3e-2
  np.testing.assert_allclose(
    np.asarray(low, np.float32), np.asarray(exact_low), atol=tol * 4, rtol=tol
  )
  y = up_jit(low, details, *LEGALL)
  assert y.dtype == dtype
  np.testing.assert_allclose(np.asarray(y, np.float32), x, atol=tol * 8, rtol=tol)


def test_extreme_values_invert_finitely(rng):
  for scale, shift in ((1000, 0), (1, 500), (1, -500), (1e30, 0)):
    x = jnp.asarray(rng.standard_normal((2, 6, 4, 3)).astype(np.float32) * scale + shift)
    low, details = down_jit(x, *LEGALL)
    assert all(np.isfinite(np.asarray(b)).all() for b in (low, *details.values()))
    y = up_jit(low, details, *LEGALL)
    np.testing.assert_allclose(
      np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-5 * float(jnp.abs(x).max())
    )


def test_vmap_grad_and_unbatched(rng):
  x = jnp.asarray(rng.standard_normal((4, 6, 8, 3)).astype(np.float32))
  f = lambda a: jaxpool.lift_down_pool(a, *LEGALL)
  low, details = jax.jit(f)(x)
  vlow, vdetails = jax.jit(jax.vmap(f))(x)
  np.testing.assert_allclose(np.asarray(vlow), np.asarray(low), atol=1e-6)
  np.testing.assert_allclose(np.asarray(vdetails['HL']), np.asarray(details['HL']), atol=1e-6)
  g = jax.jit(jax.grad(lambda a: jnp.sum(f(a)[0] ** 2)))(x)
  gv = jax.jit(jax.vmap(jax.grad(lambda a: jnp.sum(f(a)[0] ** 2))))(x)
  np.testing.assert_allclose(np.asarray(g), np.asarray(gv), atol=1e-5)
  # two batch dims equal one
  low2, _ = jax.jit(f)(x.reshape(2, 2, 6, 8, 3))
  np.testing.assert_allclose(np.asarray(low2).reshape(low.shape), np.asarray(low), atol=1e-6)


def test_sharded_batch_gives_the_same_numbers(rng):
  devices = np.array(jax.devices()[:8])
  if devices.size < 8:
    pytest.skip('needs 8 host devices')
  x = rng.standard_normal((8, 6, 4, 3)).astype(np.float32)
  xs = jax.device_put(
    jnp.asarray(x), NamedSharding(Mesh(devices, ('batch',)), PartitionSpec('batch'))
  )
  module = jpl.LiftDownPool()
  variables = jax.jit(module.init)(jax.random.key(0), jnp.asarray(x))
  f = jax.jit(lambda v, a: module.apply(v, a))
  g = jax.jit(jax.grad(lambda v, a: jnp.sum(module.apply(v, a)[0] ** 2)))
  for a, b in zip(
    jax.tree_util.tree_leaves(f(variables, xs)),
    jax.tree_util.tree_leaves(f(variables, jnp.asarray(x))),
  ):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
  for a, b in zip(
    jax.tree_util.tree_leaves(g(variables, xs)),
    jax.tree_util.tree_leaves(g(variables, jnp.asarray(x))),
  ):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


# --- errors ------------------------------------------------------------------------------


def test_errors():
  x = jnp.zeros((2, 4, 4, 3))
  p, u = HAAR
  with pytest.raises(TypeError, match='lift_down_pool needs a floating-point x.*int32'):
    jaxpool.lift_down_pool(jnp.zeros((4, 4, 1), jnp.int32), p, u)
  with pytest.raises(ValueError, match=r'never the channel axis; got \(-1,\)'):
    jaxpool.lift_down_pool(x, p, u, axes=(-1,))
  with pytest.raises(ValueError, match=r'axes must name spatial axes of x \(rank 4.*got \(1, 4\)'):
    jaxpool.lift_down_pool(x, p, u, axes=(1, 4))
  with pytest.raises(ValueError, match=r'axes must be distinct; got \(1, -3\)'):
    jaxpool.lift_down_pool(x, p, u, axes=(1, -3))
  with pytest.raises(
    TypeError, match="axes must be an int or a non-empty sequence of ints; got 'hw'"
  ):
    jaxpool.lift_down_pool(x, p, u, axes='hw')
  with pytest.raises(
    ValueError,
    match=r'predict must be a callable or a filter array of shape '
    r'\(K,\) or \(K, C\) with C = 3 channels; got shape '
    r'\(2, 4\)',
  ):
    jaxpool.lift_down_pool(x, jnp.ones((2, 4)), u)
  with pytest.raises(ValueError, match=r'update must be a callable or a filter array.*\(0,\)'):
    jaxpool.lift_down_pool(x, p, jnp.ones((0,)))
  with pytest.raises(
    TypeError, match='update must be a callable or a float filter array; got dtype int32'
  ):
    jaxpool.lift_down_pool(x, p, jnp.ones(2, jnp.int32))
  with pytest.raises(
    ValueError,
    match=r'predict must map a \(\*batch, M, C\) array to one of '
    r'the same shape; given shape \(2, 4, 2, 3\) it returned '
    r'shape \(2, 4, 2, 1\)',
  ):
    jaxpool.lift_down_pool(x, lambda v: v[..., :1], u)
  low, details = jaxpool.lift_down_pool(x, p, u)
  with pytest.raises(
    ValueError,
    match=r"details must be a dict with the bands \['LH', 'HL', "
    r"'HH'\].*got \['HH', 'LH'\]",
  ):
    jaxpool.lift_up_pool(low, {'LH': low, 'HH': low}, p, u)
  with pytest.raises(ValueError, match=r'details must be a dict.*got list'):
    jaxpool.lift_up_pool(low, [low, low, low], p, u)
  with pytest.raises(
    ValueError,
    match=r"details\['HL'\] must have the shape of low "
    r'\(2, 2, 2, 3\); got \(2, 2, 3\)',
  ):
    jaxpool.lift_up_pool(low, {**details, 'HL': low[0]}, p, u)
  with pytest.raises(
    ValueError,
    match=r'output_size must give each lifted axis 2 \* M or '
    r'2 \* M - 1 for band sizes M = \(2, 2\); got \(4, 2\)',
  ):
    jaxpool.lift_up_pool(low, details, p, u, output_size=(4, 2))
  with pytest.raises(ValueError, match='output_size must be an int or have 2 entries'):
    jaxpool.lift_up_pool(low, details, p, u, output_size=(4, 4, 4))
  with pytest.raises(TypeError, match='lift_up_pool needs a floating-point low'):
    jaxpool.lift_up_pool(low.astype(jnp.int32), details, p, u)
