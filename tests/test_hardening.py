"""The whole public API: export round trips, sharding, shard_map, fuzzed geometry and errors."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import export
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxpool
from tests import helpers
from tests.ops import CALLS, FUZZ_CALLS, NOT_FUZZED, WINDOWED
from tests.reference.windows import out_size

KEY = jax.random.key(0)
# one name per function object (ada_unpool is weighted_unpool)
NAMES = sorted({id(getattr(jaxpool, n)): n for n in sorted(jaxpool.__all__)}.values())
#: The composition tests below run the ops that tests/test_paths.py's sweep (export, shard_map
#: and batch-sharded jit of the value, gradient and jvp on every path) does not.
OFF_PATHS = [n for n in NAMES if n not in WINDOWED]
# Each of the three composition tests runs half of them, at turns a third apart: every op meets
# at least one of the three each run, and all three over successive runs.
_HALF = (len(OFF_PATHS) + 1) // 2
EXPORTED, SHARDED, SHARD_MAPPED = (
  helpers.rotating_share(OFF_PATHS, 0, _HALF, turn=helpers.rotation() + k * len(OFF_PATHS) // 3)
  for k in range(3)
)


def _input(batch=8, seed=0):
  return np.random.default_rng(seed).standard_normal((batch, 12, 12, 4)).astype(np.float32)


def _assert_tree_close(a, b, **kw):
  la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  assert len(la) == len(lb)
  for u, v in zip(la, lb):
    np.testing.assert_allclose(np.asarray(u, np.float32), np.asarray(v, np.float32), **kw)


@pytest.mark.parametrize('name', EXPORTED)
def test_export_round_trip_with_symbolic_batch(name):
  f = jax.jit(lambda a: CALLS[name](a, KEY))
  (batch,) = export.symbolic_shape('b')
  spec = jax.ShapeDtypeStruct((batch, 12, 12, 4), jnp.float32)
  exported = export.export(f)(spec)
  restored = export.deserialize(exported.serialize())
  for n in (8, 3):
    x = _input(n, seed=n)
    _assert_tree_close(restored.call(x), f(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', SHARDED)
def test_sharded_batch_gives_same_numbers_without_gathering_the_input(name):
  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  sharding = NamedSharding(mesh, PartitionSpec('batch'))
  x = _input()
  f = jax.jit(lambda a: CALLS[name](a, KEY))
  xs = jax.device_put(x, sharding)
  compiled = f.lower(xs).compile()  # called below: the sharded program compiles once
  hlo = compiled.as_text()
  assert 'all-gather' not in hlo and 'all-to-all' not in hlo
  _assert_tree_close(compiled(xs), f(x), rtol=1e-6, atol=1e-6)
  # gradients too, still sharded over the batch
  loss = lambda a: sum(
    jnp.sum(jnp.asarray(v, jnp.float32) ** 2)
    for v in jax.tree_util.tree_leaves(CALLS[name](a, KEY))
  )
  grad = jax.jit(jax.grad(loss))
  g = grad(xs)
  assert g.sharding.is_equivalent_to(sharding, g.ndim)
  # (a sharded compile may fuse differently: IDW's weights 1/(|x - a| + eps) make
  # its gradient ill-conditioned, so allow rounding-level differences)
  np.testing.assert_allclose(g, grad(x), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize('name', SHARD_MAPPED)
def test_shard_map_per_example_equals_unsharded(name):
  mesh = Mesh(np.array(jax.devices()[:8]), ('batch',))
  x = _input()
  # evaluation mode (key=None) for the stochastic ops: per-shard draws differ by design
  call = lambda a: CALLS[name](a, None)
  spec = PartitionSpec('batch')
  sharded = jax.jit(jax.shard_map(call, mesh=mesh, in_specs=spec, out_specs=spec))
  _assert_tree_close(sharded(x), call(x), rtol=1e-6, atol=1e-6)


# --- fuzzing the shared geometry of the windowed ops --------------------------------


def test_every_windowed_op_is_fuzzed():
  """Every public function with a ``window`` is fuzzed, or says why not."""
  windowed = {
    name
    for name in jaxpool.__all__
    if 'window' in inspect.signature(getattr(jaxpool, name)).parameters
  }
  unknown = sorted(set(FUZZ_CALLS) - windowed) + sorted(set(NOT_FUZZED) - windowed)
  assert not unknown, f'not public windowed functions: {unknown}'
  missing = sorted(windowed - set(FUZZ_CALLS) - set(NOT_FUZZED))
  assert not missing, (
    f'give these entries in tests/ops a fuzz call (or a string saying why not): {missing}'
  )


FUZZED = sorted(name for name in FUZZ_CALLS if hasattr(jaxpool, name))


@st.composite
def geometries(draw):
  n = draw(st.integers(1, 3))
  window = tuple(draw(st.integers(1, 4)) for _ in range(n))
  strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
  dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
  eff = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  style = draw(st.sampled_from(['int', 'pairs', 'SAME', 'VALID']))
  if style == 'int':
    padding = draw(st.integers(0, min(eff) // 2))
    pads = [(padding, padding)] * n
  elif style == 'pairs':
    pads = [(draw(st.integers(0, e // 2)), draw(st.integers(0, e // 2))) for e in eff]
    padding = tuple(pads)
  else:
    padding, pads = style, None
  spatial = tuple(draw(st.integers(e, e + 7)) for e in eff)
  batch = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
  ceil_mode = draw(st.booleans()) if style != 'SAME' else False
  if pads is None:
    if style == 'VALID':
      pads = [(0, 0)] * n
    else:
      pads = []
      for size, e, s in zip(spatial, eff, strides):
        total = max((-(-size // s) - 1) * s + e - size, 0)
        pads.append((total // 2, total - total // 2))
  out = tuple(
    out_size(size, k, s, d, lo, hi, ceil_mode)
    for size, k, s, d, (lo, hi) in zip(spatial, window, strides, dilation, pads)
  )
  geometry = dict(
    window=window, strides=strides, padding=padding, dilation=dilation, ceil_mode=ceil_mode
  )
  return geometry, batch, spatial, out


def _check_fuzzed(op, case, dtype, scale):
  geometry, batch, spatial, out = case
  x = np.random.default_rng(0).standard_normal((*batch, *spatial, 3)) * scale
  x = jnp.asarray(x, dtype)
  # jitted: one compile per example, not one per eager primitive (the eager path is swept by
  # the catalogue's tests)
  y = jax.jit(lambda a: FUZZ_CALLS[op](a, geometry))(x)
  assert y.shape == (*batch, *out, 3)
  assert y.dtype == dtype
  assert bool(jnp.isfinite(y.astype(jnp.float32)).all())


FUZZ_ARGS = dict(
  op=st.sampled_from(FUZZED),
  case=geometries(),
  dtype=st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]),
  scale=st.sampled_from([1.0, 1e3]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FUZZ_ARGS)
def test_fuzzed_geometry_gives_documented_shape_and_finite_values(op, case, dtype, scale):
  # Hypothesis draws new examples on every run (no fixed seed), so successive CI runs
  # together search far beyond one run's 12; a failure prints the example to reproduce.
  _check_fuzzed(op, case, dtype, scale)


BAD_VALUES = [
  ('window', 3, TypeError),
  ('window', (0, 2), ValueError),
  ('window', (2.5, 2), TypeError),
  ('window', (2, 2, 2, 2, 2), ValueError),
  ('strides', (1, 2, 3), ValueError),
  ('strides', -1, ValueError),
  ('strides', 'two', TypeError),
  ('dilation', 0, ValueError),
  ('padding', 'FULL', ValueError),
  ('padding', -2, ValueError),
  ('padding', 3, ValueError),
  ('padding', ((1, 1),), ValueError),
  ('ceil_mode', 'yes', TypeError),
]


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(FUZZED), bad=st.sampled_from(BAD_VALUES))
def test_fuzzed_bad_arguments_name_the_argument(op, bad):
  argument, value, error = bad
  geometry = dict(window=(2, 2), strides=None, padding=0, dilation=1, ceil_mode=False)
  geometry[argument] = value
  name = 'x' if argument == 'window' and value == (2, 2, 2, 2, 2) else argument
  with pytest.raises(error, match=name):
    FUZZ_CALLS[op](jnp.ones((2, 6, 6, 3)), geometry)


def test_integer_input_to_float_only_ops_names_the_dtype():
  x = jnp.ones((2, 6, 6, 3), jnp.int32)
  for op in sorted(set(FUZZED) - {'max_pool', 'min_pool'}):
    with pytest.raises(TypeError, match='int32'):
      FUZZ_CALLS[op](x, dict(window=(2, 2)))


def test_every_op_is_pure_jax_without_host_callbacks():
  x = _input(2)
  for name in NAMES:
    jaxpr = jax.make_jaxpr(lambda a, name=name: CALLS[name](a, KEY))(x)
    assert 'callback' not in str(jaxpr), name
