"""SoftPool family: float64 NumPy references, exact gradients, identities, extremes,
modules and errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

import jaxpool
from jaxpool import _windows
from tests import helpers
from tests.reference import weighted as ref
from tests.reference.windows import windows

OPS = ('soft', 'lip', 'edscw', 'idw', 'ada')


def _sweep(seed, count, max_taps=8, fast=None, min_taps=1):
  # Windows of at most `max_taps` taps keep the compile time of the unrolled
  # per-tap code (and so the suite) short; larger windows (the stacked-taps
  # path, _windows.UNROLL_MAX_TAPS) have their own sweep.
  rng = np.random.default_rng(seed)
  out = []
  while len(out) < count:
    ndim = 1 + len(out) % 3 if min_taps <= 4 else 2 + len(out) % 2  # 1-d has <= 4 taps
    geo = helpers.random_geometry(rng, ndim)
    if min_taps <= np.prod(geo['window']) <= max_taps:
      out.append(geo)
  fast = count if fast is None else fast
  # `fast` cases a run: the first `fast - 1` always, one of the others in turn (helpers.rotation)
  return helpers.rotating_share(out, fast - 1, 1)


def _args(geo):
  return (geo['window'], geo['strides'], geo['padding'], geo['dilation'], geo['ceil_mode'])


def _ref_args(geo):
  n = len(geo['window'])

  def per_dim(v, default=None):
    v = default if v is None else v
    return (v,) * n if isinstance(v, int) else tuple(v)

  return (
    geo['window'],
    per_dim(geo['strides'], geo['window']),
    tuple((p, p) for p in per_dim(geo['padding'])),
    per_dim(geo['dilation']),
    geo['ceil_mode'],
  )


def _freeze(geo):
  return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in geo.items()))


@functools.cache
def _jitted(op, frozen, temperature, return_weights):
  a = _args(dict(frozen))

  def f(x, z, beta):
    if op == 'soft':
      return jaxpool.soft_pool(x, *a, temperature=temperature, return_weights=return_weights)
    if op == 'lip':
      return jaxpool.lip_pool(x, z, *a, return_weights=return_weights)
    if op == 'edscw':
      return jaxpool.edscw_pool(x, *a, return_weights=return_weights)
    if op == 'idw':
      return jaxpool.idw_pool(x, *a, return_weights=return_weights)
    return jaxpool.ada_pool(x, beta, *a, return_weights=return_weights)

  return jax.jit(f)


def _call(op, x, geo, *, z=None, beta=None, temperature=0.7, return_weights=False):
  """The jaxpool op named ``op`` (LIP takes logits ``z``, adaPool ``beta``), jitted once."""
  return _jitted(op, _freeze(geo), temperature, return_weights)(x, z, beta)


def _reference(op, x, geo, *, z=None, beta=None, temperature=0.7):
  a = _ref_args(geo)
  if op == 'ada':
    return ref.ada_pool(x, beta, *a)
  kind = {'soft': 'soft', 'lip': 'lip', 'edscw': 'edscw', 'idw': 'idw'}[op]
  return ref.weighted_pool(x, kind, *a, temperature=temperature, logits=z)


# --- a plain JAX formulation (explicit gathers, jax.nn.softmax), for autodiff gradients ---


def _gather_plan(spatial, geo):
  """(P, K) flat input indices of every window tap (0 where padded) and their validity."""
  a = _ref_args(geo)
  idx, valid = [], []
  for _, taps in windows(spatial, *a):
    idx.append([0 if pos is None else int(np.ravel_multi_index(pos, spatial)) for pos, _ in taps])
    valid.append([pos is not None for pos, _ in taps])
  return np.array(idx), np.array(valid)


def _plain(op, x, geo, *, z=None, beta=None, temperature=0.7, eps=1e-6):
  spatial = x.shape[1:-1]
  idx, valid = _gather_plan(spatial, geo)
  out = ref.out_shape(spatial, *_ref_args(geo))
  mask = jnp.asarray(valid)[None, :, :, None]
  taps = x.reshape(x.shape[0], -1, x.shape[-1])[:, idx, :]  # (B, P, K, C)
  count = jnp.maximum(mask.sum(2, keepdims=True), 1)
  mean = jnp.where(mask, taps, 0).sum(2, keepdims=True) / count

  def pool(logits):
    w = jax.nn.softmax(jnp.where(mask, logits, -1e30), axis=2)
    return (w * jnp.where(mask, taps, 0)).sum(2)

  if op == 'soft':
    y = pool(taps / temperature)
  elif op == 'lip':
    y = pool(jnp.broadcast_to(z, x.shape).reshape(taps.shape[0], -1, taps.shape[-1])[:, idx, :])
  elif op == 'idw':
    y = pool(-jnp.log(jnp.abs(taps - mean) + eps))
  else:
    dscw = pool((2 * jnp.abs(taps * mean) + eps) / (taps**2 + mean**2 + eps))
    if op == 'edscw':
      y = dscw
    else:
      b = jnp.broadcast_to(beta, (x.shape[0], *out, x.shape[-1])).reshape(dscw.shape)
      y = b * dscw + (1 - b) * pool(taps)
  return y.reshape(x.shape[0], *out, x.shape[-1])


def _inputs(rng, geo, op, batch=2, channels=2):
  x = rng.standard_normal((batch, *geo['spatial'], channels))
  z = rng.standard_normal(x.shape[:-1] + (1,)) * 2 if op == 'lip' else None
  beta = None
  if op == 'ada':
    out = ref.out_shape(geo['spatial'], *_ref_args(geo))
    beta = rng.uniform(size=(*out, 1))
  return x, z, beta


# --- values and gradients against the references -----------------------------------------


def _diff_args(op, x, z, beta):
  return (x, z) if op == 'lip' else (x, beta) if op == 'ada' else (x,)


def _split(op, a):
  return dict(z=a[1] if op == 'lip' else None, beta=a[1] if op == 'ada' else None)


@pytest.mark.parametrize('geo', _sweep(3, 9, fast=3), ids=str)
def test_values_weights_and_gradients_match_references(geo, x64):
  _check_against_references(geo)


@pytest.mark.parametrize('geo', _sweep(41, 4, max_taps=64, min_taps=10, fast=2), ids=str)
def test_large_windows_match_references(geo, x64):
  assert np.prod(geo['window']) > _windows.UNROLL_MAX_TAPS  # the stacked-taps path
  _check_against_references(geo)


def test_stacked_and_unrolled_paths_agree_including_weight_cotangents(monkeypatch, x64):
  rng = np.random.default_rng(17)
  geo = dict(window=(3, 4), strides=(2, 3), padding=(1, 2), dilation=(2, 1), ceil_mode=True)
  x = rng.standard_normal((2, 9, 11, 3))
  z = rng.standard_normal((2, 9, 11, 1))
  calls = {
    'soft': lambda a, z: jaxpool.soft_pool(a, *_args(geo), temperature=0.6, return_weights=True),
    'lip': lambda a, z: jaxpool.lip_pool(a, z, *_args(geo), return_weights=True),
    'edscw': lambda a, z: jaxpool.edscw_pool(a, *_args(geo), return_weights=True),
    'idw': lambda a, z: jaxpool.idw_pool(a, *_args(geo), return_weights=True),
    'ada': lambda a, z: jaxpool.ada_pool(a, 0.3, *_args(geo), return_weights=True),
  }

  def run(f):
    # a fresh jit per path: UNROLL_MAX_TAPS is read when the function is traced
    cts = jax.tree_util.tree_map(lambda o: rng.standard_normal(o.shape), jax.eval_shape(f, x, z))

    def value_and_vjp(x, z, cts):
      out, vjp = jax.vjp(f, x, z)
      return out, vjp(cts)

    return jax.jit(value_and_vjp)(x, z, cts)

  # SoftPool and LIP each run; one of the distance-weighted ops in rotation.
  names = ['soft', 'lip', *helpers.rotating_share(['edscw', 'idw', 'ada'], 0, 1)]
  for name in names:
    f = calls[name]
    state = rng.bit_generator.state
    monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', 1000)
    unrolled = run(f)
    rng.bit_generator.state = state
    monkeypatch.setattr(_windows, 'UNROLL_MAX_TAPS', 0)
    stacked = run(f)
    for a, b in zip(jax.tree_util.tree_leaves(unrolled), jax.tree_util.tree_leaves(stacked)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=name)


def _check_against_references(geo):
  rng = np.random.default_rng(11)
  inputs = {op: _inputs(rng, geo, op) for op in OPS}
  shapes = {
    op: jax.eval_shape(lambda a, z, b, op=op: _call(op, a, geo, z=z, beta=b), *inputs[op])
    for op in OPS
  }
  cts = {op: rng.standard_normal(shapes[op].shape) for op in OPS}

  @jax.jit
  def run(inputs, cts):  # one compilation per geometry: values, weights, both VJPs
    out = {}
    for op in OPS:
      args = _diff_args(op, *inputs[op])
      y, w = _call(op, inputs[op][0], geo, z=inputs[op][1], beta=inputs[op][2], return_weights=True)
      ours = jax.vjp(lambda *a, op=op: _call(op, a[0], geo, **_split(op, a)), *args)[1](cts[op])
      plain = jax.vjp(lambda *a, op=op: _plain(op, a[0], geo, **_split(op, a)), *args)[1](cts[op])
      out[op] = (y, w, ours, plain)
    return out

  results = run(inputs, cts)
  for op in OPS:
    x, z, beta = inputs[op]
    y, w, ours, plain = results[op]
    y_ref, w_ref = _reference(op, x, geo, z=z, beta=beta)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12, err_msg=op)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12, err_msg=op)
    assert w.shape == (x.shape[0], *y.shape[1:-1], *geo['window'], x.shape[-1])
    for a, b in zip(ours, plain):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=op)
    g = cts[op]
    if op == 'soft':
      np.testing.assert_allclose(
        ours[0], ref.soft_pool_grad(x, g, *_ref_args(geo), temperature=0.7), rtol=1e-10, atol=1e-12
      )
    if op == 'lip':
      gx, gz = ref.lip_pool_grad(x, z, g, *_ref_args(geo))
      np.testing.assert_allclose(ours[0], gx, rtol=1e-10, atol=1e-12)
      np.testing.assert_allclose(ours[1], gz.sum(-1, keepdims=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('op', helpers.rotating_share(['edscw', 'idw', 'ada'], 1, 1))
def test_gradients_match_numpy_finite_differences(op, x64):
  rng = np.random.default_rng(5)
  for geo in (
    dict(
      window=(3, 2), strides=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True, spatial=(5, 4)
    ),
    dict(window=(3,), strides=(2,), padding=(1,), dilation=(1,), ceil_mode=False, spatial=(7,)),
  ):
    x, _, beta = _inputs(rng, geo, op)
    g = rng.standard_normal(jax.eval_shape(lambda a: _call(op, a, geo, beta=beta), x).shape)
    want = ref.numerical_vjp(lambda a: _reference(op, a, geo, beta=beta)[0], x, g)
    got = jax.grad(lambda a: jnp.sum(_call(op, a, geo, beta=beta) * g))(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_check_grads_including_weights_and_temperature(x64):
  rng = np.random.default_rng(2)
  x = rng.standard_normal((2, 6, 5, 3))
  z = rng.standard_normal((2, 6, 5, 3))
  geo = dict(window=(3, 2), strides=(2, 1), padding=(1, 1), dilation=1, ceil_mode=True)
  a = _args(geo)
  jtu.check_grads(
    jax.jit(lambda x: jaxpool.soft_pool(x, *a, temperature=0.5, return_weights=True)),
    (x,),
    order=1,
    modes=['rev'],
  )
  jtu.check_grads(
    jax.jit(lambda x, z: jaxpool.lip_pool(x, z, *a, return_weights=True)),
    (x, z),
    order=1,
    modes=['rev'],
  )
  jtu.check_grads(
    jax.jit(lambda x, b: jaxpool.ada_pool(x, b, *a, return_weights=True)),
    (x, np.full((3,), 0.3)),
    order=1,
    modes=['rev'],
  )
  # A traced temperature (scalar or per channel) gets its exact gradient.
  jtu.check_grads(
    jax.jit(lambda t: jaxpool.soft_pool(x, *a, temperature=t)),
    (np.float64(0.6),),
    order=1,
    modes=['rev'],
  )
  jtu.check_grads(
    jax.jit(lambda t: jaxpool.soft_pool(x, *a, temperature=t)),
    (np.array([0.5, 1.0, 2.0]),),
    order=1,
    modes=['rev'],
  )
  np.testing.assert_allclose(
    jaxpool.soft_pool(x, *a, temperature=jnp.float64(0.6)),
    jaxpool.soft_pool(x, *a, temperature=0.6),
    rtol=1e-13,
  )


def test_non_overlapping_block_backward_matches_reference(x64):
  # strides == window without dilation takes the block-layout backward; check its
  # padding, ceil_mode and floor-mode remainder handling, tied and untied.
  rng = np.random.default_rng(4)
  for pad, ceil, spatial in (
    (0, False, (7, 9)),
    (1, False, (6, 7)),
    (0, True, (7, 8)),
    (1, True, (5, 9)),
  ):
    geo = dict(
      window=(2, 3),
      strides=(2, 3),
      padding=(1, pad),
      dilation=(1, 1),
      ceil_mode=ceil,
      spatial=spatial,
    )
    x = rng.standard_normal((2, *spatial, 3))
    z = rng.standard_normal((2, *spatial, 3))
    g = rng.standard_normal(jaxpool.soft_pool(x, *_args(geo)).shape)

    @jax.jit
    def grads(x, z, g):
      soft = [
        jax.grad(lambda a, t=t: jnp.sum(jaxpool.soft_pool(a, *_args(geo), temperature=t) * g))(x)
        for t in (1.0, 0.3)
      ]
      lip = jax.grad(lambda a, b: jnp.sum(jaxpool.lip_pool(a, b, *_args(geo)) * g), argnums=(0, 1))(
        x, z
      )
      return soft, lip

    soft, (gx, gz) = grads(x, z, g)
    for t, got in zip((1.0, 0.3), soft):
      np.testing.assert_allclose(
        got, ref.soft_pool_grad(x, g, *_ref_args(geo), temperature=t), rtol=1e-10, atol=1e-12
      )
    wx, wz = ref.lip_pool_grad(x, z, g, *_ref_args(geo))
    np.testing.assert_allclose(gx, wx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gz, wz, rtol=1e-10, atol=1e-12)


# --- extreme values ----------------------------------------------------------------------


@pytest.mark.parametrize('op', OPS)
def test_large_and_shifted_inputs_are_finite_and_exact(op):
  rng = np.random.default_rng(8)
  geo = dict(window=(3, 3), strides=2, padding=1, dilation=1, ceil_mode=True, spatial=(7, 7))
  geo_block = dict(
    window=(2, 2), strides=None, padding=0, dilation=1, ceil_mode=False, spatial=(6, 6)
  )
  for g_ in (geo, geo_block):
    x0, z, beta = _inputs(rng, g_, op)
    if g_ is geo_block and op == 'ada':
      beta = rng.uniform(size=(3, 3, 1))
    for x in (x0 * 1000, x0 + 500, x0 - 500):
      x = x.astype(np.float32)
      zz = None if z is None else (z * 1000).astype(np.float32)
      y, vjp = jax.vjp(lambda a: _call(op, a, g_, z=zz, beta=beta), x)
      (gx,) = vjp(jnp.ones_like(y))
      y_ref, _ = _reference(op, x.astype(np.float64), g_, z=zz, beta=beta)
      assert np.isfinite(np.asarray(y)).all() and np.isfinite(np.asarray(gx)).all(), op
      np.testing.assert_allclose(
        y, y_ref, rtol=1e-5, atol=2e-3 * np.abs(x).max() * 1e-3, err_msg=op
      )
      assert np.abs(gx).max() < 10, op  # the weights sum to 1 per window


def test_minus_inf_beside_finite_values_gives_finite_values_and_gradients():
  rng = np.random.default_rng(9)
  x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
  x[0, 0, 0, 0] = x[1, 2:4, 3, 1] = x[0, 5, :, 2] = -np.inf  # never a whole window
  geo_overlap = dict(window=(3, 3), strides=2, padding=1, dilation=1, ceil_mode=False)
  geo_block = dict(window=(2, 2), strides=None, padding=0, dilation=1, ceil_mode=False)
  for geo in (geo_overlap, geo_block):
    a = _args(geo)
    ra = _ref_args(geo)
    for temperature in (1.0, 2.0):
      y, (g,) = helpers.value_and_vjp(
        lambda v: jaxpool.soft_pool(v, *a, temperature=temperature), (x,)
      )
      assert np.isfinite(np.asarray(y)).all() and np.isfinite(np.asarray(g)).all()
      np.testing.assert_allclose(
        y, ref.weighted_pool(x, 'soft', *ra, temperature=temperature)[0], rtol=1e-5, atol=1e-6
      )
      np.testing.assert_allclose(
        g,
        ref.soft_pool_grad(x, np.ones(y.shape), *ra, temperature=temperature),
        rtol=1e-5,
        atol=1e-6,
      )
      assert (np.asarray(g)[np.isneginf(x)] == 0).all()
    # LIP: -inf logits beside finite ones; the value is finite, the gradients too.
    z = np.where(np.isneginf(x), -np.inf, rng.standard_normal(x.shape)).astype(np.float32)
    xf = np.where(np.isneginf(x), 3.0, x).astype(np.float32)
    y, (gx, gz) = helpers.value_and_vjp(lambda v, w: jaxpool.lip_pool(v, w, *a), (xf, z))
    for arr in (y, gx, gz):
      assert np.isfinite(np.asarray(arr)).all()
    np.testing.assert_allclose(
      y, ref.weighted_pool(xf, 'lip', *ra, logits=z)[0], rtol=1e-5, atol=1e-6
    )
  # A window of only -inf pools to -inf, with a finite gradient.
  xi = np.full((4, 1), -np.inf, np.float32)
  y, vjp = jax.vjp(lambda v: jaxpool.soft_pool(v, (2,)), xi)
  (g,) = vjp(jnp.ones_like(y))
  assert (np.asarray(y) == -np.inf).all() and np.isfinite(np.asarray(g)).all()


def test_huge_magnitudes_do_not_overflow():
  x = np.array([[3e38], [3e38], [3e38], [-3e38]], np.float32)
  for op in (jaxpool.soft_pool, jaxpool.edscw_pool, jaxpool.idw_pool):
    y = op(x, (4,))
    assert np.isfinite(np.asarray(y)).all(), op
  np.testing.assert_allclose(jaxpool.soft_pool(x, (4,)), [[3e38]], rtol=1e-6)
  np.testing.assert_allclose(jaxpool.soft_pool(x, (3,), 1), [[3e38], [3e38]], rtol=1e-6)


@pytest.mark.parametrize('op', ['edscw', 'idw'])
def test_zero_and_constant_windows(op, x64):
  fn = {'edscw': jaxpool.edscw_pool, 'idw': jaxpool.idw_pool}[op]
  c = np.array([0.0, 2.5, -7.0, 1e-9])
  x = np.broadcast_to(c, (2, 6, 6, 4)).copy()
  x[1] = np.kron(np.arange(9).reshape(3, 3), np.ones((2, 2)))[..., None]  # constant 2x2 blocks
  y, (g,) = helpers.value_and_vjp(lambda a: fn(a, (2, 2)), (x,))
  np.testing.assert_allclose(y[0], np.broadcast_to(c, (3, 3, 4)), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(y[1, ..., 0], np.arange(9).reshape(3, 3), rtol=1e-12)
  assert np.isfinite(np.asarray(g)).all()
  np.testing.assert_allclose(g[0], 0.25, rtol=1e-6)  # d(mean of a constant window)/dx_i
  y_ref, _ = ref.weighted_pool(x, op, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), False)
  np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-15)
  # f32 and a padded, overlapping geometry
  y32 = fn(x.astype(np.float32), (3, 3), 1, 1)
  assert np.isfinite(np.asarray(y32)).all()
  np.testing.assert_allclose(y32[0], np.broadcast_to(c, (6, 6, 4)), rtol=1e-6, atol=1e-12)


# --- dtypes, batch dims, transforms, sharding --------------------------------------------


@pytest.mark.parametrize(
  'dtype,rtol', [(jnp.float32, 1e-5), (jnp.bfloat16, 2e-2), (jnp.float16, 2e-3)]
)
def test_half_precisions_keep_dtype_and_accumulate_in_f32(dtype, rtol):
  rng = np.random.default_rng(1)
  geo = dict(window=(2, 2), strides=1, padding=1, dilation=1, ceil_mode=False, spatial=(5, 6))
  inputs = {}
  for op in OPS:
    x, z, beta = _inputs(rng, geo, op, channels=3)
    inputs[op] = ((x * 4).astype(dtype), None if z is None else z.astype(dtype), beta)

  @jax.jit
  def run(inputs):
    out = {}
    for op, (x, z, beta) in inputs.items():
      a = _args(geo)
      call = {
        'soft': lambda v: jaxpool.soft_pool(v, *a, temperature=0.7, return_weights=True),
        'lip': lambda v: jaxpool.lip_pool(v, z, *a, return_weights=True),
        'edscw': lambda v: jaxpool.edscw_pool(v, *a, return_weights=True),
        'idw': lambda v: jaxpool.idw_pool(v, *a, return_weights=True),
        'ada': lambda v: jaxpool.ada_pool(v, beta, *a, return_weights=True),
      }[op]
      y, w = call(x)
      g = jax.grad(lambda v: jnp.sum(call(v)[0].astype(jnp.float32)))(x)
      out[op] = (y, w, g)
    return out

  for op, (y, w, g) in run(inputs).items():
    x, z, beta = inputs[op]
    assert y.dtype == dtype and w.dtype == dtype and g.dtype == dtype, op
    x64_ = np.asarray(x, np.float64)
    y_ref, _ = _reference(
      op, x64_, geo, z=None if z is None else np.asarray(z, np.float64), beta=beta
    )
    scale = np.abs(x64_).max()
    np.testing.assert_allclose(
      np.asarray(y, np.float64), y_ref, rtol=rtol, atol=rtol * scale, err_msg=op
    )
    assert np.isfinite(np.asarray(g, np.float32)).all(), op
    if op == 'soft':
      want = ref.soft_pool_grad(x64_, np.ones(y.shape), *_ref_args(geo), temperature=0.7)
      np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=10 * rtol, atol=10 * rtol)


@pytest.mark.parametrize('op', OPS)
def test_unbatched_and_two_batch_dims(op):
  rng = np.random.default_rng(3)
  geo = dict(window=(3,), strides=2, padding=1, dilation=1, ceil_mode=True, spatial=(9,))
  x = rng.standard_normal((2, 3, 9, 4)).astype(np.float32)
  z = rng.standard_normal((2, 3, 9, 1)).astype(np.float32) if op == 'lip' else None
  beta = np.float32(0.3) if op == 'ada' else None
  flat = _call(op, x.reshape(6, 9, 4), geo, z=None if z is None else z.reshape(6, 9, 1), beta=beta)
  two = _call(op, x, geo, z=z, beta=beta)
  one = _call(op, x[1, 2], geo, z=None if z is None else z[1, 2], beta=beta)
  np.testing.assert_allclose(two.reshape(flat.shape), flat, rtol=1e-6)
  np.testing.assert_allclose(one, flat[5], rtol=1e-6)


def test_jit_vmap_grad_compose():
  rng = np.random.default_rng(6)
  x = rng.standard_normal((3, 2, 8, 8, 2)).astype(np.float32)
  f = lambda a: jaxpool.soft_pool(a, (3, 3), 2, 1, temperature=0.5)
  batched = jax.jit(jax.vmap(f))(x)
  np.testing.assert_allclose(batched, jax.jit(f)(x), rtol=1e-5, atol=1e-6)
  g1 = jax.jit(jax.vmap(jax.grad(lambda a: f(a).sum())))(x)
  g2 = jax.jit(jax.grad(lambda a: f(a).sum()))(x)
  np.testing.assert_allclose(g1, g2, rtol=1e-5)
  # eDSCW's window-mean tangent passes a reverse barrier (a cond: a select under vmap);
  # one example holds a NaN, which reaches its gradient and no other's
  xn = x.copy()
  xn[1, 0, 3, 4, 1] = np.nan
  e = lambda a: jnp.sum(jaxpool.edscw_pool(a, (3, 3), 2, 1) ** 2)
  g1 = jax.jit(jax.vmap(jax.grad(e)))(xn)
  g2 = jax.jit(jax.grad(e))(xn)
  np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.isnan(g2).reshape(3, -1).any(axis=1), [False, True, False])
  # vmapped (traced) temperature and beta
  ts = np.array([0.5, 1.0, 2.0], np.float32)
  yt = jax.jit(jax.vmap(lambda t: jaxpool.soft_pool(x[0], (2, 2), temperature=t)))(ts)
  yb = jax.jit(jax.vmap(lambda b: jaxpool.ada_pool(x[0], b, (2, 2))))(ts / 2)
  for i, t in enumerate(ts):
    np.testing.assert_allclose(
      yt[i], jaxpool.soft_pool(x[0], (2, 2), temperature=float(t)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
      yb[i], jaxpool.ada_pool(x[0], float(t) / 2, (2, 2)), rtol=1e-5, atol=1e-6
    )


def test_gradient_has_no_scatter():
  x = jnp.ones((2, 9, 9, 3))
  for fn in (
    lambda a: jaxpool.soft_pool(a, (3, 3), 2, 1, 2),
    lambda a: jaxpool.soft_pool(a, (2, 2)),
    lambda a: jaxpool.lip_pool(a, a * 2, (3, 3), 2, 1),
    lambda a: jaxpool.ada_pool(a, 0.5, (3, 3), 2, 1),
  ):
    hlo = jax.jit(jax.grad(lambda a: fn(a).sum())).lower(x).as_text()
    assert 'scatter' not in hlo


# --- identities --------------------------------------------------------------------------


@pytest.mark.parametrize('geo', _sweep(21, 4, fast=2), ids=str)
def test_lip_identities(geo, x64):
  rng = np.random.default_rng(12)
  x = rng.standard_normal((2, *geo['spatial'], 3))
  a = _args(geo)
  np.testing.assert_allclose(jaxpool.lip_pool(x, x, *a), jaxpool.soft_pool(x, *a), rtol=1e-13)
  # ... with the same gradient: x_bar(lip) + z_bar(lip) = x_bar(soft).
  g = rng.standard_normal(jaxpool.soft_pool(x, *a).shape)
  _, (gx, gz) = helpers.value_and_vjp(lambda u, v: jaxpool.lip_pool(u, v, *a), (x, x), g)
  _, (gs,) = helpers.value_and_vjp(lambda u: jaxpool.soft_pool(u, *a), (x,), g)
  np.testing.assert_allclose(gx + gz, gs, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(
    jaxpool.lip_pool(x, 0 * x, *a),
    jaxpool.avg_pool(x, *a, count_include_pad=False),
    rtol=1e-12,
    atol=1e-14,
  )


def test_soft_pool_temperature_limits():
  rng = np.random.default_rng(13)
  # Distinct values at least 0.1 apart: T = 1e-3 separates them by e^-100.
  x = (rng.permutation(2 * 7 * 8 * 3).reshape(2, 7, 8, 3) * 0.1).astype(np.float32)
  for args in (((2, 2),), ((3, 3), 2, 1), ((3, 2), 1, 0, 2, True)):
    mx = jaxpool.max_pool(x, *args)
    errors = [
      float(jnp.abs(jaxpool.soft_pool(x, *args, temperature=t) - mx).max())
      for t in (1.0, 0.1, 1e-3)
    ]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5
    mean = jaxpool.avg_pool(x, *args, count_include_pad=False)
    np.testing.assert_allclose(jaxpool.soft_pool(x, *args, temperature=1e7), mean, rtol=2e-5)


def test_ada_pool_endpoints_and_beta_gradient(x64):
  rng = np.random.default_rng(14)
  x = rng.standard_normal((2, 7, 7, 3))
  a = ((3, 3), 2, 1)
  np.testing.assert_allclose(jaxpool.ada_pool(x, 0.0, *a), jaxpool.soft_pool(x, *a), rtol=1e-14)
  np.testing.assert_allclose(jaxpool.ada_pool(x, 1.0, *a), jaxpool.edscw_pool(x, *a), rtol=1e-14)
  for shape in ((), (3,), (4, 4, 1), (4, 4, 3), (2, 4, 4, 3)):
    beta = rng.uniform(size=shape)
    y = jaxpool.ada_pool(x, beta, *a)
    want = beta * jaxpool.edscw_pool(x, *a) + (1 - beta) * jaxpool.soft_pool(x, *a)
    np.testing.assert_allclose(y, want, rtol=1e-13)
    g = jax.grad(lambda b: jaxpool.ada_pool(x, b, *a).sum())(beta)
    diff = np.asarray(jaxpool.edscw_pool(x, *a) - jaxpool.soft_pool(x, *a))
    lead = diff.ndim - len(shape)
    want = diff.sum(
      tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1), keepdims=False
    )
    np.testing.assert_allclose(g, want.reshape(shape), rtol=1e-12)
    y_ref, w_ref = ref.ada_pool(x, beta, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), False)
    yw, w = jaxpool.ada_pool(x, beta, *a, return_weights=True)
    np.testing.assert_allclose(yw, y_ref, rtol=1e-12)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('geo', _sweep(31, 6, fast=2), ids=str)
def test_weighted_unpool_is_the_transpose_of_fixed_weight_pooling(geo, x64):
  rng = np.random.default_rng(15)
  x = rng.standard_normal((2, *geo['spatial'], 3))
  a = _args(geo)
  y, w = jaxpool.soft_pool(x, *a, return_weights=True)
  # The pooling itself is y_p = sum_i w_{p,i} x_i: <ct, y> = <unpool(ct), x>.
  ct = rng.standard_normal(y.shape)
  up = jaxpool.weighted_unpool(
    ct, w, geo['window'], geo['strides'], geo['padding'], geo['dilation'], output_size=x.shape
  )
  assert up.shape == x.shape
  np.testing.assert_allclose(np.sum(ct * y), np.sum(up * x), rtol=1e-10)
  np.testing.assert_allclose(
    up, ref.weighted_unpool(ct, w, geo['spatial'], *_ref_args(geo)), rtol=1e-12, atol=1e-14
  )

  def pool_fixed(v):  # x -> sum_i w_{p,i} x_i for the fixed weights w, as plain JAX
    idx, valid = _gather_plan(geo['spatial'], geo)
    taps = v.reshape(v.shape[0], -1, v.shape[-1])[:, idx, :]
    ww = w.reshape(w.shape[0], -1, idx.shape[1], w.shape[-1])
    return (ww * jnp.where(valid[None, :, :, None], taps, 0)).sum(2).reshape(y.shape)

  (transposed,) = jax.linear_transpose(pool_fixed, x)(ct)
  np.testing.assert_allclose(up, transposed, rtol=1e-12, atol=1e-14)
  # ada_unpool is the same function, and it is differentiable in y and the weights.
  assert jaxpool.ada_unpool is jaxpool.weighted_unpool
  jtu.check_grads(
    lambda c, ww: jaxpool.weighted_unpool(c, ww, *a[:4], output_size=x.shape),
    (ct, w),
    order=1,
    modes=['rev'],
  )


def test_weighted_unpool_default_output_size_and_shared_channel_weights():
  x = jnp.arange(2 * 6 * 4 * 3, dtype=jnp.float32).reshape(2, 6, 4, 3) / 10
  y, w = jaxpool.idw_pool(x, (2, 2), return_weights=True)
  up = jaxpool.ada_unpool(y, w, (2, 2))
  assert up.shape == x.shape
  up1 = jaxpool.weighted_unpool(y, w[..., :1], (2, 2))
  np.testing.assert_allclose(up1[..., 0], up[..., 0], rtol=1e-6)
  up_same = jaxpool.weighted_unpool(
    *jaxpool.soft_pool(x, (3, 3), 2, 'SAME', return_weights=True), (3, 3), 2, 'SAME'
  )
  assert up_same.shape == x.shape


def test_weights_are_a_distribution_with_zeros_at_padding():
  rng = np.random.default_rng(16)
  x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
  for op in ('soft', 'edscw', 'idw'):
    geo = dict(window=(3, 3), strides=2, padding=1, dilation=1, ceil_mode=True)
    y, w = _call(op, x, geo, return_weights=True)
    np.testing.assert_allclose(w.sum((3, 4)), 1, rtol=1e-5)
    assert (w[:, 0, :, 0, :] == 0).all() and (w[:, :, 0, :, 0] == 0).all()  # left/top padding
    np.testing.assert_allclose(
      np.sum(y),
      np.sum(x * jaxpool.weighted_unpool(jnp.ones_like(y), w, (3, 3), 2, 1, output_size=x.shape)),
      rtol=1e-5,
    )


# --- errors ------------------------------------------------------------------------------


def test_errors_name_the_argument():
  x = jnp.zeros((2, 6, 6, 3))
  with pytest.raises(TypeError, match='soft_pool needs a floating-point x.*int32'):
    jaxpool.soft_pool(jnp.zeros((2, 6, 6, 3), jnp.int32), (2, 2))
  with pytest.raises(TypeError, match='edscw_pool needs a floating-point x.*int32'):
    jaxpool.edscw_pool(jnp.zeros((6, 3), jnp.int32), (2,))
  with pytest.raises(ValueError, match='temperature must be a positive finite number; got 0'):
    jaxpool.soft_pool(x, (2, 2), temperature=0)
  with pytest.raises(ValueError, match='temperature must be a positive finite number; got inf'):
    jaxpool.soft_pool(x, (2, 2), temperature=float('inf'))
  with pytest.raises(TypeError, match='temperature must be a positive number'):
    jaxpool.soft_pool(x, (2, 2), temperature=True)
  with pytest.raises(
    ValueError,
    match=r'temperature must be .* shape \(\) or \(C,\) = \(3,\); '
    r'got shape \(2,\)',
  ):
    jaxpool.soft_pool(x, (2, 2), temperature=jnp.ones(2))
  with pytest.raises(
    TypeError, match='temperature must be a positive number or a float array; got dtype int32'
  ):
    jaxpool.soft_pool(x, (2, 2), temperature=jnp.ones(3, jnp.int32))
  with pytest.raises(
    ValueError,
    match=r"logits must be broadcastable to x's shape \(2, 6, 6, 3\)"
    r'.*got shape \(5,\)',
  ):
    jaxpool.lip_pool(x, jnp.zeros(5), (2, 2))
  with pytest.raises(TypeError, match='lip_pool needs a floating-point logits.*int32'):
    jaxpool.lip_pool(x, jnp.zeros((2, 6, 6, 1), jnp.int32), (2, 2))
  with pytest.raises(ValueError, match='eps must be a positive finite number; got 0'):
    jaxpool.edscw_pool(x, (2, 2), eps=0)
  with pytest.raises(TypeError, match="eps must be a positive finite number; got '1'"):
    jaxpool.idw_pool(x, (2, 2), eps='1')
  with pytest.raises(
    ValueError,
    match=r'beta must be broadcastable to the output shape '
    r'\(2, 3, 3, 3\).*\(\*out_spatial, 1\) = \(3, 3, 1\).*'
    r'got shape \(4,\)',
  ):
    jaxpool.ada_pool(x, jnp.ones(4), (2, 2))
  with pytest.raises(ValueError, match=r'beta must lie in \[0, 1\]; got 1.5'):
    jaxpool.ada_pool(x, 1.5, (2, 2))
  with pytest.raises(TypeError, match='beta must be a float'):
    jaxpool.ada_pool(x, True, (2, 2))
  with pytest.raises(TypeError, match="return_weights must be a bool; got 'yes'"):
    jaxpool.soft_pool(x, (2, 2), return_weights='yes')
  with pytest.raises(ValueError, match='larger than the padded input'):
    jaxpool.soft_pool(x, (7, 7))
  with pytest.raises(ValueError, match='padding must be at most half the effective window'):
    jaxpool.idw_pool(x, (2, 2), padding=2)


def test_unpool_errors():
  y = jnp.zeros((2, 3, 3, 3))
  w = jnp.zeros((2, 3, 3, 2, 2, 3))
  with pytest.raises(
    ValueError,
    match=r'weights must have shape \(\*batch, \*out, \*window, C\) '
    r'= \(2, 3, 3, 2, 2, 3\).*got \(2, 3, 3, 4, 3\)',
  ):
    jaxpool.weighted_unpool(y, jnp.zeros((2, 3, 3, 4, 3)), (2, 2))
  with pytest.raises(
    ValueError,
    match=r'output_size \(9, 9\).*gives \(4, 4\) windows \(\(5, 5\) '
    r"with ceil_mode\), not y's spatial shape \(3, 3\)",
  ):
    jaxpool.weighted_unpool(y, w, (2, 2), output_size=(9, 9))
  with pytest.raises(ValueError, match='output_size must have 2 spatial entries'):
    jaxpool.weighted_unpool(y, w, (2, 2), output_size=(6, 6, 6))
  with pytest.raises(TypeError, match='output_size must be a sequence of ints'):
    jaxpool.weighted_unpool(y, w, (2, 2), output_size='66')
  with pytest.raises(TypeError, match='weighted_unpool needs a floating-point y.*int32'):
    jaxpool.weighted_unpool(jnp.zeros((2, 3, 3, 3), jnp.int32), w, (2, 2))
  # ceil_mode poolings unpool to their input shape when it is given
  x = jnp.ones((2, 7, 7, 3))
  yc, wc = jaxpool.soft_pool(x, (2, 2), ceil_mode=True, return_weights=True)
  assert jaxpool.weighted_unpool(yc, wc, (2, 2), output_size=x.shape).shape == x.shape


def test_doc_claims_from_the_issue_hold():
  # SoftPool output lies between the window mean and max (per channel), and is
  # shift-equivariant but not scale-equivariant.
  rng = np.random.default_rng(22)
  x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
  y = jaxpool.soft_pool(x, (2, 2))
  assert (y <= jaxpool.max_pool(x, (2, 2)) + 1e-6).all()
  assert (y >= jaxpool.avg_pool(x, (2, 2)) - 1e-6).all()
  np.testing.assert_allclose(jaxpool.soft_pool(x + 3, (2, 2)), y + 3, rtol=1e-5, atol=1e-5)
  assert not np.allclose(jaxpool.soft_pool(2 * x, (2, 2)), 2 * y, rtol=1e-3)
  # per channel: changing one channel leaves the others alone (the reference's CPU
  # path shares one weight map across channels).
  x2 = x.copy()
  x2[..., 0] *= 5
  np.testing.assert_array_equal(jaxpool.soft_pool(x2, (2, 2))[..., 1:], y[..., 1:])
