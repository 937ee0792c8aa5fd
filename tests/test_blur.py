"""BlurPool and MaxBlurPool: NumPy loop references, torch conv parity, gradients, modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.test_util import check_grads

import jaxpool
from jaxpool.blur import binomial_filter
from tests.helpers import from_torch_layout, to_torch_layout, torch_or_skip
from tests.reference import blur as ref


def blur_jit(x, *args, **kw):
  """blur_pool compiled once per configuration (eager dispatch compiles every slice)."""
  return jax.jit(lambda a: jaxpool.blur_pool(a, *args, **kw))(x)


def max_blur_jit(x, *args, **kw):
  return jax.jit(lambda a: jaxpool.max_blur_pool(a, *args, **kw))(x)


PASCAL = {
  1: [1],
  2: [1, 1],
  3: [1, 2, 1],
  4: [1, 3, 3, 1],
  5: [1, 4, 6, 4, 1],
  6: [1, 5, 10, 10, 5, 1],
  7: [1, 6, 15, 20, 15, 6, 1],
}


def _pads(padding, spatial, window, strides):
  """Explicit (lo, hi) pairs for the reference, from any padding form."""
  n = len(window)
  if padding == 'SAME':
    return [ref.same_pads(size, k, s) for size, k, s in zip(spatial, window, strides)]
  if padding == 'VALID':
    return [(0, 0)] * n
  if isinstance(padding, int):
    return [(padding, padding)] * n
  return [tuple(p) if isinstance(p, tuple) else (p, p) for p in padding]


def _random_config(rng, ndim):
  window = tuple(int(v) for v in rng.integers(1, 8 if ndim < 3 else 4, ndim))
  strides = tuple(int(v) for v in rng.integers(1, 4, ndim))
  spatial = tuple(int(rng.integers(k, k + 7)) for k in window)
  form = rng.integers(0, 4)
  if form == 0:
    padding = 'SAME'
  elif form == 1:
    padding = 'VALID'
  elif form == 2:
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in window)
  else:
    padding = tuple(
      (int(rng.integers(0, k // 2 + 1)), int(rng.integers(0, k // 2 + 1))) for k in window
    )
  pad_mode, include = [
    ('constant', False),
    ('constant', True),
    ('reflect', False),
    ('edge', False),
  ][rng.integers(0, 4)]
  return dict(
    window=window,
    strides=strides,
    padding=padding,
    pad_mode=pad_mode,
    count_include_pad=include,
    spatial=spatial,
  )


# --- the filter -------------------------------------------------------------------------


@pytest.mark.parametrize('k', range(1, 8))
def test_binomial_rows_are_pascal(k):
  row = binomial_filter((k,))
  np.testing.assert_allclose(row, np.array(PASCAL[k]) / 2 ** (k - 1), rtol=0, atol=1e-15)
  np.testing.assert_allclose(row, ref.binomial_row(k), atol=1e-15)


@pytest.mark.parametrize('window', [(1, 1), (2, 5), (7, 3), (4, 4), (6, 1, 2)])
def test_blur_of_a_delta_is_the_filter(window):
  # Stride 1, VALID, on a delta at the centre of a (2k - 1)-sized image: the
  # outputs read the filter flipped — the binomial filter is symmetric.
  spatial = tuple(2 * k - 1 for k in window)
  x = np.zeros(spatial + (1,), np.float32)
  x[tuple(k - 1 for k in window)] = 1
  y = blur_jit(jnp.asarray(x), window, 1, 'VALID')[..., 0]
  expected = np.ones(())
  for k in window:
    expected = np.multiply.outer(expected, np.array(PASCAL[k], np.float64) / 2 ** (k - 1))
  np.testing.assert_allclose(np.asarray(y), expected, atol=1e-7)
  assert abs(float(y.sum()) - 1) < 1e-6


def test_window_one_is_subsampling(rng):
  x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
  y = blur_jit(jnp.asarray(x), (1, 1), (2, 3))
  np.testing.assert_array_equal(np.asarray(y), x[:, ::2, ::3])


# --- values against the NumPy loop reference ----------------------------------------------


@pytest.mark.parametrize('ndim,seed', [(1, 0), (1, 1), (2, 2), (2, 3), (2, 4), (2, 5), (3, 6)])
def test_blur_pool_matches_reference(ndim, seed):
  rng = np.random.default_rng(seed)
  for _ in range(6):
    cfg = _random_config(rng, ndim)
    if cfg['pad_mode'] == 'reflect' and any(
      max(lo, hi) >= size
      for (lo, hi), size in zip(
        _pads(cfg['padding'], cfg['spatial'], cfg['window'], cfg['strides']), cfg['spatial']
      )
    ):
      cfg['pad_mode'] = 'edge'
    x = rng.standard_normal((2, *cfg['spatial'], 3))
    pads = _pads(cfg['padding'], cfg['spatial'], cfg['window'], cfg['strides'])
    expected = ref.blur_pool(
      x, cfg['window'], cfg['strides'], pads, cfg['pad_mode'], cfg['count_include_pad']
    )
    y = blur_jit(
      jnp.asarray(x, jnp.float32),
      cfg['window'],
      cfg['strides'],
      cfg['padding'],
      pad_mode=cfg['pad_mode'],
      count_include_pad=cfg['count_include_pad'],
    )
    assert y.shape == expected.shape, cfg
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5, err_msg=str(cfg))


@pytest.mark.parametrize(
  'window,blur,strides,padding,pad_mode',
  [
    ((2, 2), (3, 3), 2, 'SAME', 'constant'),
    ((3, 2), (4, 3), (2, 3), 1, 'reflect'),
    ((2,), (5,), 2, 'VALID', 'edge'),
    ((2, 2, 2), (3, 2, 3), 2, 'SAME', 'constant'),
  ],
)
def test_max_blur_pool_matches_reference(rng, window, blur, strides, padding, pad_mode):
  spatial = (9, 8, 7)[: len(window)]
  x = rng.standard_normal((2, *spatial, 3))
  dense = ref.max_pool_dense(x, window)
  strides_t = (strides,) * len(window) if isinstance(strides, int) else strides
  pads = _pads(padding, dense.shape[1:-1], blur, strides_t)
  expected = ref.blur_pool(dense, blur, strides_t, pads, pad_mode)
  y = max_blur_jit(jnp.asarray(x, jnp.float32), window, blur, strides, padding, pad_mode=pad_mode)
  assert y.shape == expected.shape
  np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_max_blur_pool_default_sizes():
  assert jax.eval_shape(jaxpool.max_blur_pool, jnp.zeros((2, 56, 56, 4))).shape == (2, 28, 28, 4)
  y = jax.eval_shape(lambda a: jaxpool.max_blur_pool(a, strides=None), jnp.zeros((3, 7, 7, 2)))
  assert y.shape == (3, 2, 2, 2)


# --- borders and constants ----------------------------------------------------------------


@pytest.mark.parametrize('pad_mode', ['constant', 'reflect', 'edge'])
@pytest.mark.parametrize(
  'window,strides,padding',
  [
    ((3, 3), 2, 'SAME'),
    ((4, 4), 2, ((1, 2), (1, 2))),
    ((7, 5), (2, 3), (3, 2)),
    ((5, 5, 5), 2, 'SAME'),
  ],
)
def test_constant_image_stays_constant(pad_mode, window, strides, padding):
  x = jnp.full((2, 11, 10, 9, 3)[: len(window) + 2], 3.7, jnp.float32)
  y = blur_jit(x, window, strides, padding, pad_mode=pad_mode)
  np.testing.assert_allclose(np.asarray(y), 3.7, rtol=1e-6)
  y = max_blur_jit(x, (2,) * len(window), window, strides, padding, pad_mode=pad_mode)
  np.testing.assert_allclose(np.asarray(y), 3.7, rtol=1e-6)


def test_counted_zero_padding_is_constant_in_the_interior_only():
  x = jnp.ones((12, 12, 2))
  y = np.asarray(blur_jit(x, (3, 3), 2, 1, count_include_pad=True))
  np.testing.assert_allclose(y[1:, 1:], 1, rtol=1e-6)
  np.testing.assert_allclose(y[0, 1:], 0.75, rtol=1e-6)  # one row of 1/4 weight in the pad
  np.testing.assert_allclose(y[0, 0], 0.75**2, rtol=1e-6)


def test_reflect_against_timm_style_torch_conv(rng):
  """F.conv2d(F.pad(x, mode='reflect' | zeros), binomial, stride=2, groups=C)."""
  torch = torch_or_skip()
  F = torch.nn.functional
  x = rng.standard_normal((2, 13, 10, 5)).astype(np.float32)
  xt = torch.from_numpy(np.ascontiguousarray(to_torch_layout(x, 2)))
  for k in (3, 4, 5):
    filt = torch.tensor(binomial_filter((k, k)), dtype=torch.float32)[None, None].repeat(5, 1, 1, 1)
    lo, hi = (k - 1) // 2, k // 2  # the paper's [floor((k-1)/2), ceil((k-1)/2)]
    padding = ((lo, hi), (lo, hi))
    for mode, kw in (
      ('reflect', dict(pad_mode='reflect')),
      ('constant', dict(count_include_pad=True)),
    ):
      expected = F.conv2d(F.pad(xt, (lo, hi, lo, hi), mode=mode), filt, stride=2, groups=5)
      y = blur_jit(jnp.asarray(x), (k, k), 2, padding, **kw)
      np.testing.assert_allclose(np.asarray(y), from_torch_layout(expected, 2), atol=1e-5)


@pytest.mark.parametrize(
  'pad_mode,spatial,window,padding',
  [
    ('reflect', (4, 5), (7, 6), ((3, 3), (2, 3))),  # every output reads the padding
    ('edge', (1, 2), (5, 4), ((2, 2), (1, 2))),  # one-sample axis: all taps repeat it
    ('edge', (3,), (7,), ((3, 3),)),
  ],
)
def test_reflect_and_edge_on_tiny_inputs(x64, rng, pad_mode, spatial, window, padding):
  x = rng.standard_normal((2, *spatial, 3))
  f = jax.jit(lambda a: jaxpool.blur_pool(a, window, 1, padding, pad_mode=pad_mode))
  expected = ref.blur_pool(x, window, (1,) * len(window), padding, pad_mode)
  np.testing.assert_allclose(np.asarray(f(jnp.asarray(x))), expected, atol=1e-12)
  check_grads(f, (jnp.asarray(x),), order=2, modes=('rev',))


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize(
  'window,strides,padding,pad_mode,include',
  [
    ((3, 3), 2, 'SAME', 'constant', False),
    ((4, 2), (2, 1), ((1, 2), (0, 1)), 'reflect', False),
    ((5,), 3, 2, 'edge', False),
    ((2, 3, 3), 2, 'SAME', 'constant', True),
  ],
)
def test_blur_pool_gradients(x64, rng, window, strides, padding, pad_mode, include):
  x = jnp.asarray(rng.standard_normal((2, *(7, 6, 5)[: len(window)], 2)))
  f = jax.jit(
    lambda a: jaxpool.blur_pool(
      a, window, strides, padding, pad_mode=pad_mode, count_include_pad=include
    )
  )
  check_grads(f, (x,), order=2, modes=('rev',))  # custom VJP: reverse mode, grad of grad


def test_max_blur_pool_gradients(x64, rng):
  x = jnp.asarray(rng.standard_normal((2, 7, 6, 2)))  # distinct values: max is smooth here
  check_grads(
    jax.jit(lambda a: jaxpool.max_blur_pool(a, (2, 2), (3, 3), 2)), (x,), order=1, modes=('rev',)
  )


# --- dtypes, extremes, batching, transforms ------------------------------------------------


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtypes_kept(rng, dtype):
  x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
  for fn in (jax.jit(jaxpool.blur_pool), jax.jit(jaxpool.max_blur_pool)):
    exact = np.asarray(fn(jnp.asarray(x)))
    y = fn(jnp.asarray(x, dtype))
    assert y.dtype == dtype
    tol = 1e-6 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(np.asarray(y, np.float32), exact, atol=tol * 4, rtol=tol)


@pytest.mark.parametrize(
  'transform', [lambda x: x * 1000, lambda x: x + 500, lambda x: x - 500, lambda x: x * 1e37]
)
def test_extreme_values_stay_finite_and_bounded(rng, transform):
  x = transform(rng.standard_normal((2, 9, 8, 3)).astype(np.float32))
  for kw in (dict(), dict(pad_mode='reflect'), dict(count_include_pad=True)):
    y = np.asarray(blur_jit(jnp.asarray(x), (5, 5), 2, **kw))
    assert np.all(np.isfinite(y))
    bound = np.abs(x).max() * (1 + 1e-6)
    if kw.get('count_include_pad'):  # zeros counted: |y| <= max |x| only
      assert np.abs(y).max() <= bound
    else:  # a convex combination of the window stays within the input's range
      lo, hi = np.sort([x.min() * (1 - 1e-6), x.min() * (1 + 1e-6)])[0], x.max()
      assert y.max() <= hi + 1e-6 * np.abs(hi) and y.min() >= lo - 1e-6 * np.abs(lo)
  pads = [ref.same_pads(s, 5, 2) for s in (9, 8)]
  np.testing.assert_allclose(
    np.asarray(blur_jit(jnp.asarray(x), (5, 5), 2)),
    ref.blur_pool(x, (5, 5), (2, 2), pads),
    rtol=1e-5,
    atol=1e-5 * np.abs(x).max(),
  )
  assert np.isfinite(np.asarray(blur_jit(jnp.full((6, 6, 1), 3e38), (3, 3)))).all()


def test_unbatched_and_two_batch_dims(rng):
  x = jnp.asarray(rng.standard_normal((2, 3, 10, 9, 4)).astype(np.float32))
  batched = blur_jit(x.reshape(6, 10, 9, 4), (3, 4), 2)
  np.testing.assert_allclose(
    np.asarray(blur_jit(x, (3, 4), 2)), np.asarray(batched).reshape(2, 3, 5, 5, 4), atol=1e-6
  )
  np.testing.assert_allclose(
    np.asarray(blur_jit(x[1, 2], (3, 4), 2)), np.asarray(batched[5]), atol=1e-6
  )
  # 1-d pooling of (B1, B2, L, C)
  y = max_blur_jit(x[..., 0, :], (2,), (3,), 2)
  assert y.shape == (2, 3, 5, 4)


def test_jit_vmap_grad(rng):
  x = jnp.asarray(rng.standard_normal((4, 9, 8, 3)).astype(np.float32))
  f = lambda a: jaxpool.blur_pool(a, (3, 3), 2, pad_mode='reflect')
  y = jax.jit(f)(x)
  np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(x)), np.asarray(y), atol=1e-6)
  np.testing.assert_allclose(
    np.asarray(y),
    ref.blur_pool(x, (3, 3), (2, 2), [ref.same_pads(9, 3, 2), ref.same_pads(8, 3, 2)], 'reflect'),
    atol=1e-5,
  )
  g = jax.jit(jax.grad(lambda a: jnp.sum(f(a) ** 2)))(x)
  g_unbatched = jax.jit(jax.vmap(jax.grad(lambda a: jnp.sum(f(a) ** 2))))(x)
  np.testing.assert_allclose(np.asarray(g), np.asarray(g_unbatched), atol=1e-5)
  # The gradient of a sum of a counted-zero-pad blur is the filter mass each input gets.
  ones = jax.jit(
    jax.grad(lambda a: jnp.sum(jaxpool.blur_pool(a, (3,), 1, 1, count_include_pad=True)))
  )(jnp.ones((5, 1)))
  np.testing.assert_allclose(np.asarray(ones[:, 0]), [0.75, 1, 1, 1, 0.75])


def test_sharded_batch_gives_the_same_numbers(rng):
  devices = np.array(jax.devices()[:8])
  if devices.size < 8:
    pytest.skip('needs 8 host devices')
  x = rng.standard_normal((8, 12, 10, 3)).astype(np.float32)
  sharding = NamedSharding(Mesh(devices, ('batch',)), PartitionSpec('batch'))
  xs = jax.device_put(jnp.asarray(x), sharding)
  f = jax.jit(lambda a: jaxpool.max_blur_pool(a, (2, 2), (4, 4), 2, pad_mode='reflect'))
  g = jax.jit(jax.grad(lambda a: jnp.sum(jaxpool.blur_pool(a, (3, 3)) ** 2)))
  np.testing.assert_allclose(np.asarray(f(xs)), np.asarray(f(jnp.asarray(x))), atol=1e-6)
  np.testing.assert_allclose(np.asarray(g(xs)), np.asarray(g(jnp.asarray(x))), atol=1e-6)


# --- errors ------------------------------------------------------------------------------


def test_errors():
  x = jnp.zeros((2, 8, 8, 3))
  with pytest.raises(TypeError, match='blur_pool needs a floating-point x.*int32'):
    jaxpool.blur_pool(jnp.zeros((8, 8, 1), jnp.int32))
  with pytest.raises(TypeError, match='max_blur_pool needs a floating-point x.*int32'):
    jaxpool.max_blur_pool(jnp.zeros((8, 8, 1), jnp.int32))
  with pytest.raises(
    ValueError,
    match=r"pad_mode must be one of 'constant', 'reflect', "
    r"'edge'; got 'zeros'",
  ):
    jaxpool.blur_pool(x, pad_mode='zeros')
  with pytest.raises(
    ValueError,
    match=r"pad_mode='reflect' needs every pad smaller than its "
    r'spatial size; got padding \(\(1, 1\), \(2, 2\)\)',
  ):
    jaxpool.blur_pool(jnp.zeros((3, 2, 1)), (3, 5), 1, (1, 2), pad_mode='reflect')
  with pytest.raises(TypeError, match='count_include_pad must be a bool; got 1'):
    jaxpool.blur_pool(x, count_include_pad=1)
  with pytest.raises(TypeError, match='window must be a sequence'):
    jaxpool.blur_pool(x, 3)
  with pytest.raises(ValueError, match='window entries must be >= 1'):
    jaxpool.blur_pool(x, (0, 3))
  with pytest.raises(ValueError, match='strides must be an int or have 2 entries'):
    jaxpool.blur_pool(x, (3, 3), (2, 2, 2))
  with pytest.raises(ValueError, match='padding must be at most half the effective window'):
    jaxpool.blur_pool(x, (3, 3), 2, 2)
  with pytest.raises(ValueError, match="padding must be 'VALID', 'SAME'"):
    jaxpool.blur_pool(x, padding='FULL')
  with pytest.raises(ValueError, match='rank >= 3'):
    jaxpool.blur_pool(jnp.zeros((8, 8)))
  with pytest.raises(ValueError, match='larger than the padded input'):
    jaxpool.blur_pool(jnp.zeros((2, 2, 1)), (5, 5), 1, 'VALID')
  with pytest.raises(
    ValueError,
    match=r'blur must have one entry per spatial dim of window '
    r'\(2, 2\); got \(3,\)',
  ):
    jaxpool.max_blur_pool(x, (2, 2), (3,))
  with pytest.raises(TypeError, match='blur must be a sequence'):
    jaxpool.max_blur_pool(x, (2, 2), 3)


@pytest.mark.parametrize('pad_mode', ['constant', 'reflect', 'edge'])
def test_gradient_program_does_not_grow_with_the_filter(pad_mode):
  """Issue 26: the border once took one op per border row (a 32x32 filter compiled ~30x a 3x3)."""
  x = jnp.ones((2, 40, 40, 4), jnp.float32)

  def ops(k):
    f = lambda a: jnp.sum(jaxpool.blur_pool(a, (k, k), 2, k // 2, pad_mode=pad_mode))
    return jax.jit(jax.grad(f)).lower(x).as_text().count('stablehlo.')

  # up to 9 taps a pass is unrolled (a few ops per tap), beyond it one stacked read
  counts = {k: ops(k) for k in (3, 9, 12, 32)}
  assert counts[32] == counts[12], (pad_mode, counts)
  assert counts[32] <= 2 * counts[3] and counts[9] <= 3 * counts[3], (pad_mode, counts)
