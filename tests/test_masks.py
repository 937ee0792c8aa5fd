"""Masked and segment pooling (issue [masks]), swept over every op with ``mask=``.

References are independent: a float64 loop over each output window that keeps the
taps inside the input and unmasked, reduced by the registry's formula
(:data:`tests.ops.MASKED`), in NumPy for values and in float64 jax.numpy,
differentiated by autodiff, for gradients. Empty windows are 0 with a zero
gradient by the rule under test.
"""

from __future__ import annotations

import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn
from tests import helpers, module_catalogue
from tests.ops import GLOBAL_MASKED, MASKED

NAMES = sorted(MASKED)
# The costliest entries (each is built of other entries' cores: AdaPool of soft and eDSCW, DPP
# of a softmax-like weighting) take turns in the per-op sweeps: one of them each run.
_COSTLY = ['ada_pool', 'dpp_pool']
# The per-op sweeps: the max, min, sum and softmax cores every run; a rotating share of the
# ops built on them (every op over successive runs).
_MASK_CORES = ['avg_pool', 'max_pool', 'min_pool', 'soft_pool', 'soft_pool (traced T)']
SWEPT = _MASK_CORES + helpers.rotating_share(
  [n for n in NAMES if n not in _MASK_CORES and n not in _COSTLY]
  + helpers.rotating_share(_COSTLY, 0, 1),
  0,
  6,
)

# (spatial, window, strides, padding): unrolled, stacked (> 9 taps) and per-dim paths,
# 1-d and 2-d, overlapping and tiling, with padding.
GEOMETRIES = {
  '1d 3/s2/p1': ((11,), (3,), (2,), 1),
  '2d 2x2': ((6, 6), (2, 2), (2, 2), 0),
  '2d 3x3/s2/p1': ((7, 6), (3, 3), (2, 2), 1),
  '2d 4x3/s1': ((7, 6), (4, 3), (1, 1), 0),
  '2d 6x6/s1 (per-dim passes)': ((8, 8), (6, 6), (1, 1), 0),
}


def _windows(spatial, window, strides, pad):
  """Per output position, the ``(flat window offset, in-input spatial index)`` of its taps
  (padding left out)."""
  outs = [(n + 2 * pad - k) // s + 1 for n, k, s in zip(spatial, window, strides)]
  windows = {}
  for p in itertools.product(*(range(o) for o in outs)):
    taps = []
    for flat, o in enumerate(itertools.product(*(range(k) for k in window))):
      i = tuple(pi * s + oi - pad for pi, oi, s in zip(p, o, strides))
      if all(0 <= a < n for a, n in zip(i, spatial)):
        taps.append((flat, i))
    windows[p] = taps
  return outs, windows


def reference(xp, entry, x, mask, spatial, window, strides, pad):
  """The op by its definition: per window, ``entry.reduce`` of the kept taps; 0 when none."""
  outs, windows = _windows(spatial, window, strides, pad)
  logits = 0.5 * x + 0.25
  rows = []
  for b in range(x.shape[0]):
    out = []
    for p in itertools.product(*(range(o) for o in outs)):
      kept = [(o, i) for o, i in windows[p] if mask[(b, *i)]]
      if not kept:
        out.append(xp.zeros(x.shape[-1], x.dtype))
        continue
      v = xp.stack([x[(b, *i)] for _, i in kept])
      if entry.offsets:
        out.append(entry.reduce(xp, v, [o for o, _ in kept], window))
        continue
      lg = xp.stack([logits[(b, *i)] for _, i in kept])
      out.append(entry.reduce(xp, v, lg))
    rows.append(xp.stack(out).reshape(*outs, x.shape[-1]))
  return xp.stack(rows)


def _case(spatial, seed, kind='random'):
  """``x`` ``(2, *spatial, 2)`` and a mask holding empty windows, an all-masked example row,
  single valid positions."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((2, *spatial, 2))
  if kind == 'random':
    mask = rng.random((2, *spatial)) < 0.55
    mask[1, : spatial[0] // 2] = False  # a masked slab: whole windows and rows empty
  elif kind == 'single':
    mask = np.zeros((2, *spatial), bool)
    mask[0, (0,) * len(spatial)] = True  # one valid position; example 1 all masked
  else:
    mask = np.ones((2, *spatial), bool)
  return x, mask


# Every op on the 1-d geometry, the max and softmax cores on 3x3/s2/p1; a
# rotating share of the other pairs (every op on every geometry over successive runs).
_CORES = ('max_pool', 'soft_pool')  # the max and softmax cores
_FIXED = [(n, '1d 3/s2/p1') for n in SWEPT] + [(n, '2d 3x3/s2/p1') for n in _CORES]
_OTHERS = [(n, g) for g in sorted(GEOMETRIES) for n in NAMES if (n, g) not in _FIXED]
LOOP_CASES = helpers.rotating_share(_FIXED + _OTHERS, len(_FIXED), 2)


@pytest.mark.parametrize('name, geometry', LOOP_CASES)
def test_masked_values_and_gradients_match_a_float64_window_loop(name, geometry, x64):
  entry = MASKED[name]
  spatial, window, strides, pad = GEOMETRIES[geometry]
  # one jitted value-and-gradient program for both masks (a runtime argument), not one
  # compile per eager op
  run = helpers.value_and_vjp_fn(lambda x, m: entry.call(x, m, window, strides, pad))
  for kind, seed in (('random', 0), ('single', 1)):
    x, mask = _case(spatial, seed, kind)
    want = reference(np, entry, x, mask, spatial, window, strides, pad)
    cot = np.random.default_rng(seed + 7).standard_normal(want.shape)
    y, (g, _) = run((jnp.asarray(x), jnp.asarray(mask)), jnp.asarray(cot))
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-12, err_msg=f'{name} {kind}')
    if kind != 'random':
      continue

    def loss(x, f):
      return jnp.sum(f(x) * cot)

    # the loop's gradient jitted: one program, not one compile per eager op in the loop
    g_ref = jax.jit(
      jax.grad(
        lambda x: loss(x, lambda x: reference(jnp, entry, x, mask, spatial, window, strides, pad))
      )
    )(jnp.asarray(x))
    np.testing.assert_allclose(g, g_ref, rtol=1e-7, atol=1e-10, err_msg=f'{name} {kind}')
    assert not np.any(np.asarray(g)[~mask]), f'{name}: gradient at a masked position'


@pytest.mark.parametrize('name', SWEPT)
def test_all_true_mask_is_no_mask_and_the_pooled_mask_is_any(name):
  entry = MASKED[name]
  spatial, window, strides, pad = GEOMETRIES['2d 3x3/s2/p1']
  x, mask = _case(spatial, 3, 'random')
  x = jnp.asarray(x, jnp.float32)
  ones = jnp.ones(mask.shape, bool)
  f_none = lambda x: entry.call(x, None, window, strides, pad)
  f_ones = lambda x: entry.call(x, ones, window, strides, pad)
  np.testing.assert_allclose(f_ones(x), f_none(x), rtol=2e-6, atol=1e-7)
  g1 = jax.jit(jax.grad(lambda x: jnp.sum(f_ones(x) ** 2)))(x)
  g0 = jax.jit(jax.grad(lambda x: jnp.sum(f_none(x) ** 2)))(x)
  np.testing.assert_allclose(g1, g0, rtol=2e-5, atol=1e-6)
  _y, pooled = entry.call(x, jnp.asarray(mask), window, strides, pad, return_mask=True)
  outs, windows = _windows(spatial, window, strides, pad)
  want = np.array(
    [
      [any(mask[(b, *i)] for _, i in windows[p]) for p in itertools.product(*map(range, outs))]
      for b in range(2)
    ]
  ).reshape(2, *outs)
  np.testing.assert_array_equal(pooled, want)
  assert pooled.shape == (2, *outs)
  # the full-shape mask form returns the full-shape pooled mask
  _, pooled_c = entry.call(x, jnp.asarray(mask)[..., None], window, strides, pad, return_mask=True)
  np.testing.assert_array_equal(pooled_c[..., 0], want)


# (ada_pool, the costliest, is its two parts' sum: it rotates with the others)
JACOBIAN_NAMES = helpers.rotating_share(
  list(_CORES) + [n for n in NAMES if n not in _CORES], len(_CORES), 3
)


@pytest.mark.parametrize('name', SWEPT)
def test_garbage_at_masked_positions_never_reaches_values_or_derivatives(name):
  """inf, NaN and finfo.max under the mask: the results are those of zeros there; every
  derivative (grad, jvp, jacfwd == jacrev, the dot-product test) finite, 0 at masked inputs."""
  entry = MASKED[name]
  spatial, window, strides, pad = (5, 4), (3, 2), (1, 2), 1
  x, mask = _case(spatial, 4, 'random')
  x = jnp.asarray(x, jnp.float32)
  m = jnp.asarray(mask)
  garbage = jnp.where(m[..., None], x, jnp.asarray([jnp.nan, jnp.inf], jnp.float32))
  big = jnp.where(m[..., None], x, jnp.finfo(jnp.float32).max)
  # jitted: each transformation below is then one program to compile, not one per eager op
  f = jax.jit(lambda x: entry.call(x, m, window, strides, pad))
  clean = jnp.where(m[..., None], x, 0)
  for bad in (garbage, big):
    np.testing.assert_array_equal(f(bad), f(clean))
    g = jax.grad(lambda x: jnp.sum(jnp.sin(f(x))))(bad)
    assert np.isfinite(g).all() and not np.asarray(g)[~mask].any()
  t = jax.random.normal(jax.random.key(1), x.shape)
  y, y_dot = jax.jvp(f, (garbage,), (t,))
  assert np.isfinite(y).all() and np.isfinite(y_dot).all()
  _, y_dot_clean = jax.jvp(f, (clean,), (jnp.where(m[..., None], t, 0),))
  np.testing.assert_allclose(y_dot, y_dot_clean, rtol=1e-6, atol=1e-7)
  # dot-product test: <J t, u> == <t, J^T u>
  u = jax.random.normal(jax.random.key(2), y.shape)
  _, vjp = jax.vjp(f, garbage)
  np.testing.assert_allclose(jnp.vdot(y_dot, u), jnp.vdot(t, vjp(u)[0]), rtol=1e-4)
  if name not in JACOBIAN_NAMES:
    return  # jacfwd == jacrev: the cores every run, the others in rotation
  small = jax.jit(lambda x: entry.call(x, m[:1, :3, :3], (2, 2), 1, 0))
  xs = garbage[:1, :3, :3, :1]
  jf, jr = jax.jacfwd(small)(xs), jax.jacrev(small)(xs)
  assert np.isfinite(jf).all()
  np.testing.assert_allclose(jf, jr, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('name', SWEPT)
def test_a_masked_border_is_padding(name):
  """Pooling with padding p equals pooling x explicitly padded by p with that border masked:
  values, indices (max) and gradients."""
  entry = MASKED[name]
  x, _ = _case((7, 6), 5, 'all')
  x = jnp.asarray(x, jnp.float32)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=123.0)
  m = jnp.pad(jnp.ones((2, 7, 6), bool), ((0, 0), (1, 1), (1, 1)))
  padded = lambda x: entry.call(x, None, (3, 3), 2, 1)
  masked = lambda xp: entry.call(xp, m, (3, 3), 2, 0)
  np.testing.assert_allclose(masked(xp), padded(x), rtol=2e-6, atol=1e-7)
  g_pad = jax.jit(jax.grad(lambda x: jnp.sum(padded(x) ** 2)))(x)
  g_mask = jax.jit(jax.grad(lambda xp: jnp.sum(masked(xp) ** 2)))(xp)
  np.testing.assert_allclose(g_mask[:, 1:-1, 1:-1], g_pad, rtol=2e-5, atol=1e-6)
  assert not np.asarray(g_mask)[~np.asarray(m)].any()
  if entry.winner == 1:
    _, i_pad = entry.call(x, None, (3, 3), 2, 1, return_indices=True)
    _, i_mask = entry.call(xp, m, (3, 3), 2, 0, return_indices=True)
    rows, cols = np.divmod(np.asarray(i_mask), 8)
    np.testing.assert_array_equal((rows - 1) * 6 + (cols - 1), i_pad)


def test_avg_pool_count_include_pad_beside_a_mask():
  """count_include_pad counts the explicit padding, never a masked position."""
  x = jnp.arange(1.0, 7.0).reshape(1, 6, 1)
  m = jnp.array([[True, True, False, True, True, True]])
  # windows of 3, stride 3, padding 1: [pad, 1, 2] and [3 (masked), 4, 5]
  y = jaxpool.avg_pool(x, (3,), 3, 1, count_include_pad=True, mask=m)
  np.testing.assert_allclose(y[0, :, 0], [(1 + 2) / 3, (4 + 5) / 2])
  y = jaxpool.avg_pool(x, (3,), 3, 1, count_include_pad=False, mask=m)
  np.testing.assert_allclose(y[0, :, 0], [1.5, 4.5])
  y = jaxpool.avg_pool(x, (3,), 3, 1, divisor_override=4, mask=m)
  np.testing.assert_allclose(y[0, :, 0], [3 / 4, 9 / 4])


def test_max_blur_pool_is_the_masked_max_then_the_masked_blur_of_float64_loops(x64):
  """Dense masked max (stride 1) then the blur renormalised over the dense windows that hold
  an unmasked position: both steps by the window loop; the pads refuse a mask but 'constant'."""
  spatial, window, blur, strides, pad = (7, 6), (2, 2), (3, 3), 2, 1
  x, mask = _case(spatial, 9, 'random')
  dense_spatial = tuple(n - k + 1 for n, k in zip(spatial, window))
  dense = reference(np, MASKED['max_pool'], x, mask, spatial, window, (1, 1), 0)
  _, windows = _windows(spatial, window, (1, 1), 0)
  dense_mask = np.array(
    [[any(mask[(b, *i)] for _, i in windows[p]) for p in np.ndindex(dense_spatial)] for b in (0, 1)]
  ).reshape(2, *dense_spatial)
  blur_entry = MASKED['blur_pool']
  want = reference(np, blur_entry, dense, dense_mask, dense_spatial, blur, (strides,) * 2, pad)
  y, pooled = jaxpool.max_blur_pool(
    jnp.asarray(x), window, blur, strides, pad, mask=jnp.asarray(mask), return_mask=True
  )
  np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
  _, want_mask = jaxpool.blur_pool(
    jnp.asarray(dense), blur, strides, pad, mask=jnp.asarray(dense_mask), return_mask=True
  )
  np.testing.assert_array_equal(pooled, want_mask)
  g = jax.grad(
    lambda x: jnp.sum(jaxpool.max_blur_pool(x, window, blur, strides, pad, mask=mask) ** 2)
  )(jnp.asarray(x))
  assert np.isfinite(g).all() and not np.asarray(g)[~mask].any()
  for op in (jaxpool.blur_pool, jaxpool.max_blur_pool):
    with pytest.raises(ValueError, match="pad_mode='constant'"):
      op(jnp.asarray(x), pad_mode='reflect', mask=mask)


def test_blur_pool_count_include_pad_beside_a_mask():
  """count_include_pad keeps the filter mass in the explicit padding in the divisor."""
  x = jnp.arange(1.0, 7.0).reshape(1, 6, 1)
  m = jnp.array([[True, True, False, True, True, True]])
  # window 3 (weights 1/4, 1/2, 1/4), stride 2, padding 1: [pad, 1, 2], [2, 3 (masked), 4], ...
  y = jaxpool.blur_pool(x, (3,), 2, 1, count_include_pad=True, mask=m)
  np.testing.assert_allclose(y[0, :2, 0], [(0.5 * 1 + 0.25 * 2) / 1.0, (0.25 * 2 + 0.25 * 4) / 0.5])
  y = jaxpool.blur_pool(x, (3,), 2, 1, mask=m)
  np.testing.assert_allclose(y[0, :2, 0], [(0.5 * 1 + 0.25 * 2) / 0.75, 3.0])


def test_training_draws_never_reach_a_masked_position():
  """stochastic_pool draws only unmasked positive taps; mixed_pool's draws pick the masked max
  or the masked mean; s3_pool keeps rows of the masked max map. Gradients are 0 under the mask."""
  spatial, window, strides, pad = (7, 6), (3, 3), (2, 2), 1
  x, mask = _case(spatial, 11, 'random')
  x = jnp.asarray(np.abs(x) + 0.1, jnp.float32)  # every tap positive: any unmasked may be drawn
  m = jnp.asarray(mask)
  _, windows = _windows(spatial, window, strides, pad)
  top = MASKED['max_pool'].call(x, m, window, strides, pad)
  mean = MASKED['avg_pool'].call(x, m, window, strides, pad)
  for seed in range(4):
    key = jax.random.key(seed)
    y, pooled = jaxpool.stochastic_pool(x, window, strides, pad, key=key, mask=m, return_mask=True)
    for b in range(2):
      for p in np.ndindex(*y.shape[1:3]):
        kept = {float(x[(b, *i, c)]) for _, i in windows[p] if mask[(b, *i)] for c in range(2)}
        for c in range(2):
          value = float(y[(b, *p, c)])
          assert value in kept if pooled[(b, *p)] else value == 0.0
    g = jax.grad(
      lambda x: jnp.sum(jaxpool.stochastic_pool(x, window, strides, pad, key=key, mask=m))
    )(x)
    assert not np.asarray(g)[~mask].any()
    z = jaxpool.mixed_pool(x, window, strides, pad, key=key, granularity='window', mask=m)
    assert np.all((np.asarray(z) == np.asarray(top)) | np.isclose(z, mean, rtol=1e-6))
  # s3: on an input increasing in row-major order a stride-1 max is its window's last tap,
  # which says which max-map entries a draw kept; the masked op keeps the same entries of
  # the masked max map.
  xs, mask = _case((8, 8), 12, 'random')
  mask[0, 3:6, 2:7] = False  # empty windows of the max map
  ms = jnp.asarray(mask)
  ident = jnp.arange(64.0).reshape(1, 8, 8, 1)
  dense, dense_mask = jaxpool.max_pool(jnp.asarray(xs), (2, 2), 1, mask=ms, return_mask=True)
  for seed in range(3):
    key = jax.random.key(seed)
    rows = np.asarray(jaxpool.s3_pool(ident, (2, 2), 4, key=key))[0, ..., 0].astype(int)
    i, j = rows // 8 - 1, rows % 8 - 1
    y, pooled = jaxpool.s3_pool(jnp.asarray(xs), (2, 2), 4, key=key, mask=ms, return_mask=True)
    np.testing.assert_array_equal(y, np.asarray(dense)[:, i, j])
    np.testing.assert_array_equal(pooled, np.asarray(dense_mask)[:, i, j])
  y, pooled = jaxpool.s3_pool(jnp.asarray(xs), (2, 2), mask=ms, return_mask=True)
  want = jaxpool.avg_pool(
    dense, (2, 2), 2, 1, count_include_pad=False, mask=dense_mask, return_mask=True
  )
  np.testing.assert_array_equal(y, want[0])
  np.testing.assert_array_equal(pooled, want[1])


def test_ops_without_a_masked_meaning_refuse_a_mask_and_say_why():
  x = jnp.ones((2, 8, 8, 3))
  m = jnp.ones((2, 8, 8), bool)
  with pytest.raises(TypeError, match='fractional_max_pool takes no mask: .*tile the whole grid'):
    jaxpool.fractional_max_pool(x, (2, 2), output_size=5, mask=m)
  f = jnp.full((2,), 0.5)
  with pytest.raises(TypeError, match='lift_down_pool takes no mask: .*invertible'):
    jaxpool.lift_down_pool(x, f, f, mask=m)
  low, details = jaxpool.lift_down_pool(x, f, f)
  with pytest.raises(TypeError, match='lift_up_pool takes no mask: .*invertible'):
    jaxpool.lift_up_pool(low, details, f, f, mask=m)


def test_max_pool_indices_never_point_at_a_masked_position_and_unpool_round_trips():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((3, 9, 8, 4)), jnp.float32)
  m = jnp.asarray(rng.random((3, 9, 8)) < 0.3)
  for window, strides in (((2, 2), 2), ((3, 3), 3), ((5, 5), 5)):

    @jax.jit  # the pool and the unpool as one program (the mask a runtime argument)
    def pool_and_unpool(x, m, window=window, strides=strides):
      y, idx, pooled = jaxpool.max_pool(
        x, window, strides, mask=m, return_indices=True, return_mask=True
      )
      u = jaxpool.max_unpool(y, idx, window, strides, output_size=(9, 8), mask=pooled)
      return idx, pooled, u

    idx, pooled, u = pool_and_unpool(x, m)
    i = np.asarray(idx)
    assert (i[~np.asarray(pooled)] == -1).all()
    flat = np.asarray(m).reshape(3, -1)
    for b in range(3):
      hit = i[b][np.asarray(pooled)[b]]
      assert flat[b][hit].all()
    covered = np.zeros((3, 9, 8), bool)
    covered[:, : (9 // strides) * strides, : (8 // strides) * strides] = True
    kept = np.asarray(u) != 0
    np.testing.assert_array_equal(np.asarray(u)[kept], np.asarray(x)[kept])
    assert (kept <= (np.asarray(m) & covered)[..., None]).all()


# Three ops every run (the max, sum and softmax cores), one more in rotation.
_RUNTIME = ['max_pool', 'avg_pool', 'soft_pool']
RUNTIME_CASES = helpers.rotating_share(
  _RUNTIME + [n for n in NAMES if n not in _RUNTIME], len(_RUNTIME), 1
)


@pytest.mark.parametrize('name', RUNTIME_CASES)
def test_masks_are_runtime_values_under_jit_vmap_export_and_sharding(name):
  entry = MASKED[name]
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.standard_normal((8, 10, 6, 3)), jnp.float32)
  m = jnp.asarray(rng.random((8, 10, 6)) < 0.6)
  f = lambda x, m: entry.call(x, m, (3, 3), 2, 1)
  want = f(x, m)
  grad = jax.grad(lambda x, m: jnp.sum(f(x, m) ** 2))
  g_want = grad(x, m)
  traces = []

  def counted(x, m):
    traces.append(1)
    return f(x, m)

  jitted = jax.jit(counted)
  jitted(x, m)
  np.testing.assert_allclose(
    jitted(x, ~m | m.at[0].set(False)), f(x, ~m | m.at[0].set(False)), rtol=1e-5, atol=1e-6
  )
  assert len(traces) == 1, 'a new mask must not recompile'
  per_example = jax.jit(jax.vmap(lambda x, m: f(x[None], m[None])[0]))(x, m)
  # A compiled program may fuse differently from the eager one: float32 rounding, not more.
  np.testing.assert_allclose(per_example, want, rtol=1e-5, atol=1e-6)
  (b,) = export.symbolic_shape('b')
  spec = (jax.ShapeDtypeStruct((b, 10, 6, 3), jnp.float32), jax.ShapeDtypeStruct((b, 10, 6), bool))
  exported = export.export(jax.jit(f))(*spec)
  np.testing.assert_allclose(exported.call(x, m), want, rtol=1e-5, atol=1e-6)
  g_exp = export.export(jax.jit(grad))(*spec)
  np.testing.assert_allclose(g_exp.call(x, m), g_want, rtol=1e-5, atol=1e-6)
  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec('batch')))
  ms = jax.device_put(m, NamedSharding(mesh, PartitionSpec('batch')))
  np.testing.assert_allclose(jax.jit(f)(xs, ms), want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jax.jit(grad)(xs, ms), g_want, rtol=1e-5, atol=1e-6)


def test_padding_invariance_of_a_sequence_pooled_at_two_lengths():
  """The same sequences padded to two lengths (garbage in the padding): equal outputs at
  the real positions and equal global pools, for every masked op."""
  rng = np.random.default_rng(8)
  lengths = np.array([5, 13, 1])
  seq = rng.standard_normal((3, 13, 2)).astype(np.float32)
  outs = {}
  for total in (16, 24):
    x = np.full((3, total, 2), 7.0e3, np.float32)
    x[:, :13] = seq
    m = np.arange(total)[None] < lengths[:, None]
    x[~m] = 7.0e3
    # every op at this length in one jitted program (the mask a runtime argument)
    pooled = jax.jit(
      lambda x, m: (
        {n: MASKED[n].call(x, m, (3,), 2, 1, return_mask=True) for n in SWEPT},
        {
          k: jaxpool.global_pool(jnp.abs(x), k, mask=m, **GLOBAL_MASKED[k][0])
          for k in GLOBAL_MASKED
        },
      )
    )
    windowed, whole = pooled(jnp.asarray(x), jnp.asarray(m))
    for name, (y, p) in windowed.items():
      outs.setdefault(name, []).append((np.asarray(y)[:, :7], np.asarray(p)[:, :7]))
    for method, y in whole.items():
      outs.setdefault(method, []).append((np.asarray(y), None))
  for name, ((a, pa), (b, pb)) in outs.items():
    valid = pa[..., None] if pa is not None else np.ones(a.shape, bool)
    np.testing.assert_allclose(a * valid, b * valid, rtol=1e-6, atol=1e-7, err_msg=name)
    if pa is not None:
      np.testing.assert_array_equal(pa, pb)


def _adaptive_reference(xp, x, mask, out, reduce):
  """Per bin ``[floor(i L / O), ceil((i + 1) L / O))`` per dim: ``reduce`` of its unmasked
  positions, 0 when none."""
  spatial = x.shape[1:-1]
  bins = [
    [range((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)] for n, o in zip(spatial, out)
  ]
  rows = []
  for b in range(x.shape[0]):
    cells = []
    for cell in itertools.product(*bins):
      kept = [i for i in itertools.product(*cell) if mask[(b, *i)]]
      if kept:
        cells.append(reduce(xp.stack([x[(b, *i)] for i in kept])))
      else:
        cells.append(xp.zeros(x.shape[-1], x.dtype))
    rows.append(xp.stack(cells).reshape(*out, x.shape[-1]))
  return xp.stack(rows)


@pytest.mark.parametrize('method', ['avg', 'max'])
def test_adaptive_and_pyramid_pools_with_a_mask_match_a_float64_loop(method, x64):
  op = {'avg': jaxpool.adaptive_avg_pool, 'max': jaxpool.adaptive_max_pool}[method]
  reduce = {'avg': lambda v: v.mean(0), 'max': lambda v: v.max(0)}[method]
  for seed, (spatial, out) in enumerate([((7, 5), (3, 2)), ((4, 6), (3, 4)), ((5,), (7,))]):
    # one jitted program per geometry, the mask a runtime argument
    pool = jax.jit(lambda x, m, out=out: op(x, out, mask=m, return_mask=True))
    for kind in ('random', 'single'):
      x, mask = _case(spatial, seed, kind)
      y, pooled = pool(jnp.asarray(x), jnp.asarray(mask))
      want = _adaptive_reference(np, x, mask, out, reduce)
      np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12, err_msg=f'{spatial} {kind}')
      any_ref = _adaptive_reference(np, mask[..., None] * 1.0, mask, out, lambda v: v.max(0))
      np.testing.assert_array_equal(pooled, any_ref[..., 0] > 0)
      if seed or kind != 'random':
        continue  # the gradient reference (autodiff of the loop) once: it is slow
      cot = np.random.default_rng(seed).standard_normal(want.shape)
      loss = lambda x, f: jnp.sum(f(x) * cot)
      g = jax.jit(jax.grad(loss), static_argnums=1)(
        jnp.asarray(x), lambda x: op(x, out, mask=jnp.asarray(mask))
      )
      # the loop's gradient jitted: one program, not one compile per eager op in the loop
      g_ref = jax.jit(
        jax.grad(lambda x: loss(x, lambda x: _adaptive_reference(jnp, x, mask, out, reduce)))
      )(jnp.asarray(x))
      np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)
      assert not np.asarray(g)[~mask].any()
  # garbage under the mask; all-true is no mask; the pyramid is its levels' pools
  x, mask = _case((9, 7), 5, 'random')
  m = jnp.asarray(mask)
  clean = jnp.where(m[..., None], x, 0)
  garbage = jnp.where(m[..., None], x, jnp.asarray([jnp.nan, jnp.inf]))
  pool = jax.jit(lambda x, m: op(x, (3, 2), mask=m))
  np.testing.assert_array_equal(pool(garbage, m), pool(clean, m))
  g = jax.jit(jax.grad(lambda x, m: jnp.sum(jnp.sin(pool(x, m)))))(garbage, m)
  assert np.isfinite(g).all() and not np.asarray(g)[~mask].any()
  np.testing.assert_allclose(
    pool(jnp.asarray(x), jnp.ones(mask.shape, bool)), jax.jit(op, static_argnums=1)(x, (3, 2))
  )
  spp = jax.jit(lambda x, m: jaxpool.spatial_pyramid_pool(x, (1, (2, 3)), method, mask=m))
  parts = jax.jit(
    lambda x, m: jnp.concatenate([op(x, s, mask=m).reshape(2, -1) for s in ((1, 1), (2, 3))], -1)
  )
  np.testing.assert_array_equal(spp(garbage, m), parts(clean, m))
  if method == 'max':
    _, idx = jax.jit(lambda x, m: op(x, (3, 2), return_indices=True, mask=m))(jnp.asarray(x), m)
    flat = mask.reshape(2, -1)
    for b in range(2):
      i = np.asarray(idx)[b].reshape(-1)
      assert flat[b][i[i >= 0]].all()


@pytest.mark.parametrize('method', sorted(GLOBAL_MASKED))
def test_global_pool_with_a_mask_matches_a_float64_loop(method, x64):
  kw, reduce = GLOBAL_MASKED[method]
  rng = np.random.default_rng(9)
  x = np.abs(rng.standard_normal((4, 5, 3, 2))) + 0.1
  mask = rng.random((4, 5, 3)) < 0.5
  mask[1] = False  # an empty example
  mask[2] = False
  mask[2, 4, 2] = True  # a single valid position

  def ref(xp, x):
    rows = []
    for b in range(4):
      v = x[b][mask[b]]
      width = 2 * x.shape[-1] if method == 'catavgmax' else x.shape[-1]
      rows.append(reduce(xp, v) if mask[b].any() else xp.zeros(width, x.dtype))
    return xp.stack(rows)

  want = ref(np, x)
  # one jitted program; the cotangent 2 * want makes g the gradient of sum(y ** 2), as g_ref
  y, (g, _) = helpers.value_and_vjp(
    lambda x, m: jaxpool.global_pool(x, method, mask=m, **kw),
    (jnp.asarray(x), jnp.asarray(mask)),
    jnp.asarray(2 * want),
  )
  np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-12)
  g_ref = jax.jit(jax.grad(lambda x: jnp.sum(ref(jnp, x) ** 2)))(jnp.asarray(x))
  np.testing.assert_allclose(g, g_ref, rtol=1e-7, atol=1e-10)
  assert not np.asarray(g)[~mask].any()
  y_keep = jax.eval_shape(
    lambda x, m: jaxpool.global_pool(x, method, True, mask=m, **kw), x, jnp.asarray(mask)
  )
  assert y_keep.shape == (4, 1, 1, y.shape[-1])


def test_global_pool_mask_with_learnable_p_and_temperature_has_finite_gradients():
  x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 6, 2)), jnp.float32)
  m = jnp.array([[True] * 6, [False] * 6, [True, False] * 3])
  for method, name in (('gem', 'p'), ('lp', 'p'), ('soft', 'temperature')):
    g = jax.grad(lambda v: jnp.sum(jaxpool.global_pool(jnp.abs(x), method, mask=m, **{name: v})))(
      jnp.full((2,), 2.5)
    )
    assert np.isfinite(g).all(), method


# --- segment pooling ------------------------------------------------------------------------


def _segment_case(seed=0):
  rng = np.random.default_rng(seed)
  x = np.abs(rng.standard_normal((3, 12, 2))) + 0.1
  ids = rng.integers(0, 4, (3, 12))
  ids[1] = np.repeat([0, 0, 2, 3], 3)  # segment 1 empty in row 1
  return x, ids


# The sum, max, mean and softmax cores every run; the other methods in rotation.
_SEGMENT_CORES = ['sum', 'max', 'avg', 'soft']
SEGMENT_METHODS = _SEGMENT_CORES + [m for m in sorted(GLOBAL_MASKED) if m not in _SEGMENT_CORES]


@pytest.mark.parametrize('method', helpers.rotating_share(SEGMENT_METHODS, len(_SEGMENT_CORES), 2))
def test_segment_pool_matches_a_float64_loop(method, x64):
  kw, reduce = GLOBAL_MASKED.get(method, ({}, lambda xp, v: v.sum(0)))
  x, ids = _segment_case()

  def ref(xp, x):
    rows = []
    for b in range(3):
      row = []
      for n in range(5):  # segment 4 is empty everywhere
        sel = ids[b] == n
        width = 2 * x.shape[-1] if method == 'catavgmax' else x.shape[-1]
        row.append(reduce(xp, x[b][sel]) if sel.any() else xp.zeros(width, x.dtype))
      rows.append(xp.stack(row))
    return xp.stack(rows)

  f = lambda x: jaxpool.segment_pool(x, jnp.asarray(ids), 5, method, **kw)
  t = jnp.asarray(np.random.default_rng(2).standard_normal(x.shape))
  y, y_dot = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,)))(jnp.asarray(x), t)
  np.testing.assert_allclose(y, ref(np, x), rtol=1e-9, atol=1e-12)
  g = jax.jit(jax.grad(lambda x: jnp.sum(f(x) ** 2)))(jnp.asarray(x))
  g_ref = jax.jit(jax.grad(lambda x: jnp.sum(ref(jnp, x) ** 2)))(jnp.asarray(x))
  np.testing.assert_allclose(g, g_ref, rtol=1e-7, atol=1e-10)
  _, y_dot_ref = jax.jit(lambda x, t: jax.jvp(lambda x: ref(jnp, x), (x,), (t,)))(jnp.asarray(x), t)
  np.testing.assert_allclose(y_dot, y_dot_ref, rtol=1e-7, atol=1e-10)


def test_segment_pool_agrees_with_jax_ops_segment_reductions_on_non_empty_segments():
  x, ids = _segment_case(3)
  x = jnp.asarray(x, jnp.float32)
  ids_j = jnp.asarray(ids)
  for method, op in (('sum', jax.ops.segment_sum), ('max', jax.ops.segment_max)):
    ours = jaxpool.segment_pool(x, ids_j, 5, method)
    theirs = jax.vmap(lambda x, i: op(x, i, num_segments=5))(x, ids_j)
    present = np.stack([np.isin(np.arange(5), ids[b]) for b in range(3)])
    np.testing.assert_allclose(np.asarray(ours)[present], np.asarray(theirs)[present], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours)[~present], 0)
    assert np.isneginf(np.asarray(theirs)[~present]).all() or method == 'sum'


def test_segment_pool_drops_out_of_range_ids_under_jit_and_raises_when_concrete():
  x = jnp.arange(8.0).reshape(1, 8, 1)
  ids = jnp.array([[0, 0, -1, 1, 1, 5, 1, 0]])
  with pytest.raises(
    ValueError, match=r'segment_ids must lie in \[0, num_segments\) = \[0, 2\); got 2 outside'
  ):
    jaxpool.segment_pool(x, ids, 2, 'sum')
  y = jax.jit(lambda x, i: jaxpool.segment_pool(x, i, 2, 'sum'))(x, ids)
  np.testing.assert_allclose(y[0, :, 0], [0 + 1 + 7, 3 + 4 + 6])
  garbage = x.at[0, 2, 0].set(jnp.nan).at[0, 5, 0].set(jnp.inf)
  y = jax.jit(lambda x, i: jaxpool.segment_pool(x, i, 2, 'max'))(garbage, ids)
  np.testing.assert_allclose(y[0, :, 0], [7, 6])
  g = jax.jit(jax.grad(lambda x, i: jnp.sum(jaxpool.segment_pool(x, i, 2, 'avg'))))(garbage, ids)
  assert np.isfinite(g).all() and g[0, 2, 0] == 0 and g[0, 5, 0] == 0


def test_segment_pool_errors_name_the_argument():
  x = jnp.ones((2, 4, 3))
  ids = jnp.zeros((2, 4), jnp.int32)
  with pytest.raises(TypeError, match='segment_ids must be integers; got dtype float32'):
    jaxpool.segment_pool(x, ids.astype(jnp.float32), 2)
  with pytest.raises(ValueError, match=r'segment_ids must have .* \(2, 4\); got \(2, 3\)'):
    jaxpool.segment_pool(x, ids[:, :3], 2)
  with pytest.raises(ValueError, match='num_segments'):
    jaxpool.segment_pool(x, ids, 0)
  with pytest.raises(ValueError, match='method'):
    jaxpool.segment_pool(x, ids, 2, 'median')
  with pytest.raises(ValueError, match="'sum' takes no keyword arguments"):
    jaxpool.segment_pool(x, ids, 2, 'sum', p=2.0)


# --- argument checks and modules --------------------------------------------------------------


def test_mask_errors_name_the_argument():
  x = jnp.ones((2, 6, 3))
  with pytest.raises(TypeError, match=r'max_pool: mask must be a boolean array .*got dtype int32'):
    jaxpool.max_pool(x, (2,), mask=jnp.ones((2, 6), jnp.int32))
  with pytest.raises(
    ValueError, match=r'avg_pool: mask must have shape \(2, 6\) .*got shape \(2, 5\)'
  ):
    jaxpool.avg_pool(x, (2,), mask=jnp.ones((2, 5), bool))
  with pytest.raises(ValueError, match=r'got shape \(6,\)'):
    jaxpool.soft_pool(x, (2,), mask=jnp.ones((6,), bool))
  with pytest.raises(TypeError, match='mask must be a boolean array'):
    jaxpool.lp_pool(x, 2.0, (2,), mask=True)
  with pytest.raises(ValueError, match='return_mask=True needs a mask'):
    jaxpool.idw_pool(x, (2,), return_mask=True)
  with pytest.raises(TypeError, match='return_mask must be a bool'):
    jaxpool.max_pool(x, (2,), mask=jnp.ones((2, 6), bool), return_mask='yes')
  with pytest.raises(ValueError, match='global_pool: mask must have shape'):
    jaxpool.global_pool(x, mask=jnp.ones((2, 7), bool))


def test_masks_are_not_differentiable_but_pass_through_jvp():
  x = jnp.ones((1, 4, 1))
  m = jnp.array([[True, False, True, True]])
  _y, y_dot = jax.jvp(lambda x: jaxpool.avg_pool(x, (2,), mask=m), (x,), (jnp.ones_like(x),))
  np.testing.assert_allclose(y_dot[0, :, 0], [1.0, 1.0])


@pytest.mark.parametrize(
  'linen, nnx_cls, kwargs',
  [
    (jl.MaxPool, jn.MaxPool, {}),
    (jl.MinPool, jn.MinPool, {}),
    (jl.AvgPool, jn.AvgPool, {'count_include_pad': False}),
    (jl.LPPool, jn.LPPool, {'p': 2.0}),
    (jl.SoftPool, jn.SoftPool, {'learnable_temperature': True}),
    (jl.EDSCWPool, jn.EDSCWPool, {}),
    (jl.IDWPool, jn.IDWPool, {}),
    (jl.AdaPool, jn.AdaPool, {}),
  ],
)
def test_modules_take_the_mask_at_call_time(linen, nnx_cls, kwargs):
  rng = np.random.default_rng(10)
  x = jnp.asarray(rng.standard_normal((2, 9, 3)), jnp.float32)
  m = jnp.asarray(rng.random((2, 9)) < 0.5)
  module = linen((3,), 2, 1, **kwargs)
  params = module.init(jax.random.key(0), x, mask=m)
  y, pooled = module.apply(params, x, mask=m, return_mask=True)
  nnx_module = nnx_cls((3,), 2, 1, **kwargs)
  y2, pooled2 = nnx_module(x, mask=m, return_mask=True)
  np.testing.assert_allclose(y2, y, rtol=1e-6)
  np.testing.assert_array_equal(pooled, pooled2)
  name = linen.__name__
  fn = {
    'MaxPool': jaxpool.max_pool,
    'MinPool': jaxpool.min_pool,
    'AvgPool': lambda *a, **k: jaxpool.avg_pool(*a, count_include_pad=False, **k),
    'LPPool': lambda x, *a, **k: jaxpool.lp_pool(x, 2.0, *a, **k),
    'SoftPool': jaxpool.soft_pool,
    'EDSCWPool': jaxpool.edscw_pool,
    'IDWPool': jaxpool.idw_pool,
    'AdaPool': lambda x, *a, **k: jaxpool.ada_pool(x, 0.5, *a, **k),
  }[name]
  np.testing.assert_allclose(y, fn(x, (3,), 2, 1, mask=m), rtol=1e-6, atol=1e-7)


def _takes(module_cls, name: str) -> bool:
  return name in inspect.signature(module_cls.__call__).parameters


MASKED_SPECS = [
  spec
  for spec in module_catalogue.SPECS
  if spec.inputs is None
  and _takes(getattr(jl, spec.name), 'mask')
  and spec.name not in ('GlobalPool', 'SegmentPool')  # their own tests below
]


@pytest.mark.parametrize('spec', MASKED_SPECS, ids=str)
def test_every_module_with_a_mask_honours_it_in_both_families(spec):
  """Catalogue-driven: each module whose ``__call__`` takes ``mask`` — linen and NNX with the
  same parameters agree; garbage under the mask is never read; an all-true mask is no mask."""
  assert _takes(getattr(jn, spec.name), 'mask'), f'nnx.{spec.name} takes no mask'
  rng = np.random.default_rng(12)
  x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
  if spec.positive:
    x = np.abs(x) + 0.1
  mask = rng.random((2, 8, 8)) < 0.6
  mask[1, :4] = False
  m = jnp.asarray(mask)
  x = jnp.asarray(x)
  module = module_catalogue.linen_module(spec)
  variables = module.init(jax.random.key(0), x, **spec.init_kw)
  returns = _takes(getattr(jl, spec.name), 'return_mask')
  kw = dict(spec.init_kw, mask=m, **({'return_mask': True} if returns else {}))
  out = module.apply(variables, x, **kw)
  clean = jnp.where(m[..., None], x, 0)
  garbage = jnp.where(m[..., None], x, jnp.asarray(jnp.nan, x.dtype))
  module_catalogue.assert_close(module.apply(variables, garbage, **kw), out)
  module_catalogue.assert_close(module.apply(variables, clean, **kw), out)
  ones = jnp.ones_like(m)
  y_ones = module.apply(variables, x, **dict(kw, mask=ones))
  y_none = module.apply(variables, x, **spec.init_kw)
  if returns:  # the pooled mask is last
    y_ones = y_ones[0] if len(y_ones) == 2 else y_ones[:-1]
  module_catalogue.assert_close(y_ones, y_none)
  nnx_module = module_catalogue.nnx_module(spec)
  if variables.get('params'):
    module_catalogue.load_params(nnx_module, variables['params'])
  nnx_kw = dict(kw)
  if spec.random:
    nnx_kw['deterministic'] = True
  module_catalogue.assert_close(nnx_module(x, **nnx_kw), out)


def test_lip_and_global_and_segment_modules():
  rng = np.random.default_rng(11)
  x = jnp.asarray(rng.standard_normal((2, 8, 3)), jnp.float32)
  m = jnp.asarray(rng.random((2, 8)) < 0.5)
  lip = jl.LIP((2,))
  params = lip.init(jax.random.key(0), x, mask=m)
  y = lip.apply(params, x, mask=m)
  np.testing.assert_allclose(
    y, jaxpool.avg_pool(x, (2,), count_include_pad=False, mask=m), rtol=1e-5, atol=1e-6
  )
  y = jn.LIP((2,), num_features=3, rngs=__import__('flax').nnx.Rngs(0))(x, mask=m)
  np.testing.assert_allclose(
    y, jaxpool.avg_pool(x, (2,), count_include_pad=False, mask=m), rtol=1e-5, atol=1e-6
  )
  gem = jl.GlobalPool('gem', learnable_p=True)
  params = gem.init(jax.random.key(0), jnp.abs(x), mask=m)
  np.testing.assert_allclose(
    gem.apply(params, jnp.abs(x), mask=m), jaxpool.global_pool(jnp.abs(x), 'gem', mask=m), rtol=1e-6
  )
  np.testing.assert_allclose(
    jn.GlobalPool('gem', learnable_p=True)(jnp.abs(x), mask=m),
    jaxpool.global_pool(jnp.abs(x), 'gem', mask=m),
    rtol=1e-6,
  )
  ids = jnp.asarray(rng.integers(0, 3, (2, 8)))
  seg = jl.SegmentPool(3, 'gem', learnable_p=True, p_shape='channel')
  params = seg.init(jax.random.key(0), jnp.abs(x), ids)
  assert params['params']['p'].shape == (3,)
  want = jaxpool.segment_pool(jnp.abs(x), ids, 3, 'gem')
  np.testing.assert_allclose(seg.apply(params, jnp.abs(x), ids), want, rtol=1e-6)
  seg2 = jn.SegmentPool(3, 'gem', learnable_p=True, p_shape='channel', num_features=3)
  np.testing.assert_allclose(seg2(jnp.abs(x), ids), want, rtol=1e-6)
  np.testing.assert_allclose(
    jl.SegmentPool(3, 'sum').apply({}, x, ids), jaxpool.segment_pool(x, ids, 3, 'sum'), rtol=1e-6
  )
  with pytest.raises(ValueError, match="'sum' takes no p"):
    jn.SegmentPool(3, 'sum', p=2.0)
  with pytest.raises(ValueError, match='num_segments'):
    jl.SegmentPool(0)


def test_the_masked_sequences_example_is_padding_invariant_only_when_masked():
  import sys

  sys.path.insert(0, str(__import__('pathlib').Path(__file__).parents[1] / 'examples'))
  import masked_sequences as ex

  x, lengths, labels = ex.make_data(128, seed=0)
  xt, lt, yt = ex.make_data(64, seed=1)
  for masked in (False, True):
    model = ex.Classifier('avg', masked)
    params = ex.train(model, x, lengths, labels, steps=5)
    _, _, delta = ex.evaluate(model, params, xt, lt, yt)
    assert (delta == 0) if masked else (delta > 1e-3), (masked, delta)
