"""Every path of every windowed op swept by class of input (issue 26).

The windows of :data:`tests.ops.PATHS` put each op on its unrolled path,
its stacked path and (max family) its per-dim passes. On each:

- second derivatives at ties (constant windows, many-way ties, ReLU zeros, a
  tie straddling two windows) are symmetric, the same forward-over-reverse as
  reverse-over-reverse, and equal the derivatives at the input with its ties
  broken the way the op's rule breaks them;
- gradients of the positively homogeneous ops at ``|x| ~ finfo.max / window``
  equal their gradients at ``|x| ~ 1``;
- ``jax.export`` with a symbolic batch, ``shard_map`` over 8 host devices and
  batch-sharded ``jit`` give the plain call's value, gradient and jvp, in
  training and evaluation mode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxpool
from tests import helpers
from tests.ops import PATHS, WHOLE, WINDOWED

KEY = jax.random.key(5)
TIES = ('constant', 'pairs', 'relu', 'straddle')


def _tied(kind: str, spatial: tuple[int, ...], window: tuple[int, ...], seed: int = 0):
  """A ``(1, *spatial, 1)`` float64 input holding ties of one class."""
  rng = np.random.default_rng(seed)
  shape = (1, *spatial, 1)
  if kind == 'constant':
    return np.full(shape, 0.7)
  if kind == 'pairs':  # two-way and many-way ties on a coarse grid (zeros: the relu class)
    return rng.integers(1, 4, shape) / 4.0
  if kind == 'relu':
    return np.maximum(rng.standard_normal(shape), 0.0)
  # a tie straddling a window border: equal maxima at the last tap of the first
  # window and the first tap after it, in windows that hold both or only one
  x = rng.uniform(-1, 0, shape)
  first = (0,) * (len(spatial) - 1)
  x[(0, *first, window[-1] - 1, 0)] = x[(0, *first, window[-1], 0)] = 2.0
  return x


def _tie_broken(x, winner: int, delta: float):
  """``x - winner * delta * flat_index``: the op's own tie rule made strict."""
  index = np.arange(x.size, dtype=np.float64).reshape(x.shape)
  return x - (winner or 1) * delta * index


def _loss(f, c):
  def loss(a):
    y = f(a)
    return jnp.sum(y * y + c * y)

  return loss


# The stacked path (10x10) of the max, min and SoftPool-family cores each run; every other
# (op, window) pair in a rotating share (all of them over successive runs).
_TIE_CORES = ['max_pool', 'min_pool', 'soft_pool', 'lip_pool', 'ada_pool']
HESSIAN_CASES = [(name, '10x10') for name in _TIE_CORES] + [
  (name, path)
  for path in ('10x10', '2x2', '3x3', '5x5', '30')
  for name in sorted(WINDOWED)
  if not (path == '10x10' and name in _TIE_CORES)
]


@pytest.mark.parametrize(
  'name,path', helpers.rotating_share(HESSIAN_CASES, fixed=len(_TIE_CORES), share=7)
)
def test_second_derivatives_at_ties(name, path):
  op, window = WINDOWED[name], PATHS[path]
  spatial = tuple(k + 2 for k in window)
  with jax.enable_x64(True):
    f = lambda a: op.call(a, window, None)
    shape = (1, *spatial, 1)
    rng = np.random.default_rng(1)
    c = jnp.asarray(rng.standard_normal(jax.eval_shape(f, jnp.zeros(shape)).shape))
    v = jnp.asarray(rng.standard_normal(shape))
    loss = _loss(f, c)
    size = int(np.prod(shape))
    fwd_rev = jax.jit(lambda a: jax.hessian(loss)(a).reshape(size, size))
    # reverse over reverse, as a Hessian-vector product (a full jacrev(jacrev) compiles slowly)
    rev_rev = jax.jit(lambda a: jax.grad(lambda b: jnp.vdot(jax.grad(loss)(b), v))(a))
    for kind in TIES:
      if kind in op.kinks:
        continue
      x = jnp.asarray(_tied(kind, spatial, window))
      h = np.asarray(fwd_rev(x))
      label = f'{name} {path} {kind}'
      np.testing.assert_allclose(h, h.T, atol=1e-9, err_msg=f'{label}: symmetric')
      np.testing.assert_allclose(
        h @ np.asarray(v).reshape(-1),
        np.asarray(rev_rev(x)).reshape(-1),
        atol=1e-8 * max(1.0, np.abs(h).max()),
        err_msg=f'{label}: forward over reverse = reverse over reverse',
      )
      broken = np.asarray(fwd_rev(jnp.asarray(_tie_broken(np.asarray(x), op.winner, 1e-12))))
      tol = 1e-6 * max(1.0, np.abs(broken).max())  # O(delta) for the smooth ops
      np.testing.assert_allclose(h, broken, atol=tol, err_msg=f'{label}: tie-broken limit')


def _plain_softmax_pool(x, logits, w):
  """``sum_i softmax(logits)_i x_i`` per 1-d window of ``w`` (stride 1): the plain formula."""
  n = x.shape[1] - w + 1
  taps = jnp.stack([x[:, i : i + n] for i in range(w)], -1)
  scores = jnp.stack([logits[:, i : i + n] for i in range(w)], -1)
  return jnp.sum(jax.nn.softmax(scores, axis=-1) * taps, -1)


@pytest.mark.parametrize('w', helpers.rotating_share([2, 30, 3], 1, 1))
def test_softpool_family_hessian_at_ties_is_the_plain_formulas(w):
  """SoftPool, LIP and AdaPool's SoftPool half, on windows of tied values (issue 26's case)."""
  with jax.enable_x64(True):
    x = jnp.asarray(np.round(np.random.default_rng(2).standard_normal((1, w + 3, 1)) * 2) / 2)
    x = x.at[:, : w // 2 + 1].set(1.0)
    cases = {
      'soft_pool': (
        lambda a: jaxpool.soft_pool(a, (w,), 1),
        lambda a: _plain_softmax_pool(a, a, w),
      ),
      'lip_pool': (
        lambda a: jaxpool.lip_pool(a, 0.5 * a, (w,), 1),
        lambda a: _plain_softmax_pool(a, 0.5 * a, w),
      ),
    }
    for name, (f, plain) in cases.items():  # jitted: one program per Hessian
      h = jax.jit(jax.hessian(lambda a: jnp.sum(f(a) ** 2)))(x)
      want = jax.jit(jax.hessian(lambda a: jnp.sum(plain(a) ** 2)))(x)
      np.testing.assert_allclose(h, want, atol=1e-10, err_msg=name)
    two = jnp.asarray([[[1.0], [1.0]]])
    h = jax.hessian(lambda a: jnp.sum(jaxpool.soft_pool(a, (2,))))(two).reshape(2, 2)
    np.testing.assert_allclose(h, [[0.5, -0.5], [-0.5, 0.5]], atol=1e-12)


# --- gradients near the top of float32 ------------------------------------------------

MAGNITUDE_CASES = [
  (name, path)
  for path in ('3x3', '4x3', '10x10')
  for name in sorted(WINDOWED)
  if WINDOWED[name].homogeneous
]


def _magnitude_check(f, x, window_size, label):
  scale = float(jnp.finfo(jnp.float32).max) / (4 * window_size)
  c = jnp.asarray(np.random.default_rng(3).standard_normal(jax.eval_shape(f, x).shape), jnp.float32)
  grad = jax.jit(jax.grad(lambda a: jnp.sum(f(a) * c)))
  small, large = np.asarray(grad(x)), np.asarray(grad(x * scale))
  assert np.isfinite(large).all(), label
  np.testing.assert_allclose(
    large, small, rtol=1e-3, atol=1e-3 * np.abs(small).max(), err_msg=label
  )


@pytest.mark.parametrize('name,path', MAGNITUDE_CASES)
def test_homogeneous_ops_gradient_is_scale_free_up_to_finfo_max(name, path):
  window = PATHS[path]
  x = jnp.asarray(helpers.tie_free_mixed((2, *(k + 3 for k in window), 3)), jnp.float32)
  f = lambda a: WINDOWED[name].call(a, window, None)
  _magnitude_check(f, x, int(np.prod(window)), f'{name} {path}')


@pytest.mark.parametrize('name', sorted(n for n in WHOLE if WHOLE[n][1]))
def test_homogeneous_whole_input_ops_gradient_is_scale_free(name):
  x = jnp.asarray(helpers.tie_free_mixed((2, 12, 12, 3)), jnp.float32)
  _magnitude_check(WHOLE[name][0], x, 144, name)


# --- export, shard_map and batch-sharded jit on every path ---------------------------

_ALL_COMPOSITIONS = [
  (name, path, mode)
  for path in ('4x3', '2x2')
  for name in sorted(WINDOWED)
  for mode in (('eval', 'train') if WINDOWED[name].random else ('eval',))
]
# Each run: the stacked path of the ops whose rules once failed there (fractional, stochastic)
# and of the max and softmax cores; a rotating share of the other cases.
_COMPOSED_CORES = ['fractional_max_pool', 'stochastic_pool', 'max_pool', 'soft_pool']
_COMPOSED_EVERY_RUN = [c for c in _ALL_COMPOSITIONS if c[1] == '4x3' and c[0] in _COMPOSED_CORES]
COMPOSITION_CASES = _COMPOSED_EVERY_RUN + [
  c for c in _ALL_COMPOSITIONS if c not in _COMPOSED_EVERY_RUN
]


def _value_grad_jvp(f):
  def run(x, c, t):
    y, vjp = jax.vjp(f, x)
    return y, vjp(c)[0], jax.jvp(f, (x,), (t,))[1]

  return run


def _close(a, b, label, tol=1e-5):
  for part, u, v in zip(('value', 'gradient', 'jvp'), a, b):
    np.testing.assert_allclose(
      np.asarray(u), np.asarray(v), rtol=tol, atol=tol, err_msg=f'{label} {part}'
    )


@pytest.mark.parametrize(
  'name,path,mode',
  helpers.rotating_share(COMPOSITION_CASES, fixed=len(_COMPOSED_EVERY_RUN), share=10),
)
def test_export_shard_map_and_sharded_jit_on_every_path(name, path, mode):
  window = PATHS[path]
  op = WINDOWED[name]
  key = KEY if mode == 'train' else None
  f = lambda a: op.call(a, window, key)
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.standard_normal((8, 9, 10, 3)), jnp.float32)
  c = jnp.asarray(rng.standard_normal(jax.eval_shape(f, x).shape), jnp.float32)
  t = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
  run = _value_grad_jvp(f)
  plain = jax.jit(run)(x, c, t)
  label = f'{name} {path} {mode}'
  # IDW's weights 1 / (|x - mean| + eps) make its gradient ill-conditioned: a different
  # fusion (a sharded or exported compile) moves it at the rounding level
  tol = 1e-3 if name == 'idw_pool' else 1e-4

  (b,) = export.symbolic_shape('b')
  specs = [jax.ShapeDtypeStruct((b, *a.shape[1:]), a.dtype) for a in (x, c, t)]
  exported = export.deserialize(export.export(jax.jit(run))(*specs).serialize())
  _close(exported.call(x, c, t), plain, f'{label} export', tol)

  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  batch = PartitionSpec('batch')
  if not op.random or mode == 'eval':  # per-shard draws differ from one whole draw by design
    mapped = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=batch, out_specs=batch))
    _close(mapped(x, c, t), plain, f'{label} shard_map', tol)
  else:  # training mode runs under shard_map and draws per shard
    mapped = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=batch, out_specs=batch))
    for leaf in jax.tree.leaves(mapped(x, c, t)):
      assert bool(jnp.isfinite(leaf).all()), label

  sharding = NamedSharding(mesh, batch)
  args = [jax.device_put(a, sharding) for a in (x, c, t)]
  compiled = jax.jit(run).lower(*args).compile()
  hlo = compiled.as_text()
  assert 'all-gather' not in hlo and 'all-to-all' not in hlo, f'{label}: the batch is gathered'
  out = compiled(*args)
  gradient = out[1]
  assert gradient.sharding.is_equivalent_to(sharding, gradient.ndim), f'{label}: gradient sharding'
  _close(out, plain, f'{label} sharded jit', tol)
