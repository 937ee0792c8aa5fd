"""Every op under JAX's transformations: forward mode, second order, vmap, linearize.

The acceptance tests of issue 16. Every public function (through
``tests.ops``, so a new op cannot skip them) in float64, on
inputs without ties (``tie_free``), stochastic ops with a fixed key (training
mode: piecewise smooth in ``x`` for a fixed key):

* ``jax.jvp`` against central finite differences, w.r.t. ``x`` and the op's
  learnable arguments together, then w.r.t. each learnable argument alone;
* the dot-product test ``<J t, c> = <t, J^T c>`` (jvp against vjp) to 1e-9;
* ``jax.linearize`` equals ``jax.jvp``; ``jax.jit(jax.vmap(jvp))`` equals the
  jvp of each example;
* on a tiny input: ``jacfwd`` equals ``jacrev`` (w.r.t. ``x`` and the
  parameters); w.r.t. ``x``, forward-over-reverse Hessian-vector products
  (``jax.hessian(s)``, the ``vmap`` of ``jvp(grad(s), (x,), (v,))`` over basis
  vectors, times ``v``) equal reverse-over-reverse ``grad(<grad(s), v>)``;
  ``jax.hessian`` is symmetric; reverse-over-reverse alone matches central
  differences of the gradient; ``s = sum(y * c) + sum(y**2) / 2`` so that
  second derivatives are not trivially zero;
* every linen and NNX module: ``jax.jvp`` through ``apply`` / the NNX call
  against central differences (w.r.t. its float call arguments and parameters);
* ties and NaN: for the max-type ops the tangent of each output follows the
  same input as its gradient (jvp with one-hot tangents = rows of the vjp).

The file is compile-bound: each case's derivatives are compiled once per
process into four jitted programs (``_forward``, ``_vmapped``,
``_tiny_forward``, ``_tiny_reverse``) that its tests share, and ``cid`` is a
module-scoped parameter so that pytest (and xdist's load scheduling, which
hands out consecutive tests) keeps a case's tests together. Reverse-only checks
use reverse-only programs, so they pass or fail independently of forward mode.
Run alone with ``-n 0`` or ``-n 2``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import jaxpool
from tests import helpers
from tests.helpers import tie_free
from tests.module_catalogue import WITH_PARAMS, linen_module, nnx_module
from tests.ops import DIFF_CASES, SPECS, WINNER_OPS

pytestmark = pytest.mark.usefixtures('x64')

KEY = jax.random.key(3)
SHAPE = (2, 8, 8, 3)  # every derivative check
TINY = (1, 6, 6, 2)  # full Jacobians and Hessians
STEP = 1e-6  # central differences in float64
CASES = sorted(DIFF_CASES)
by_case = pytest.mark.parametrize('cid', CASES, scope='module')
# Against differences: half of the cases every run, a rotating share of the rest. Second order:
# a quarter every run, a rotating share of the rest (all over successive runs; the tie Hessians
# of tests/test_paths.py cover the cores' stacked paths each run).
FIRST_ORDER = helpers.rotating_share(CASES[::2] + CASES[1::2], len(CASES[::2]), 4)
by_first_order_case = pytest.mark.parametrize('cid', FIRST_ORDER, scope='module')
SECOND_ORDER = helpers.rotating_share(
  CASES[::4] + CASES[1::4] + CASES[2::4] + CASES[3::4], len(CASES[::4]), 4
)
by_second_order_case = pytest.mark.parametrize('cid', SECOND_ORDER, scope='module')


# --- helpers ------------------------------------------------------------------------------


def _np(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _vdot(a, b):
  """Inner product of two pytrees of the same structure (traced)."""
  return sum(jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _np_vdot(a, b) -> float:
  return float(sum(np.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def _np_norm(a) -> float:
  return float(np.sqrt(_np_vdot(a, a)))


def _normal_like(tree, seed):
  leaves, treedef = jax.tree.flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(
    treedef, [jnp.asarray(rng.standard_normal(np.shape(v))) for v in leaves]
  )


def _central_differences(f, primals, tangents, step):
  """``(f(primals + step t) - f(primals - step t)) / 2 step``, both points in one vmap."""
  points = jax.tree.map(lambda p, t: jnp.stack([p + step * t, p - step * t]), primals, tangents)
  out = jax.vmap(f)(*points)
  return jax.tree.map(lambda y: (y[0] - y[1]) / (2 * step), out)


def _primals(cid, shape=SHAPE, seed=0):
  case = DIFF_CASES[cid]
  x = jnp.asarray(tie_free(shape, seed, case.positive))
  params = {k: jnp.asarray(v, jnp.float64) for k, v in case.params(shape).items()}
  return x, params


def _fn(cid):
  case = DIFF_CASES[cid]
  return lambda x, p: case.call(x, p, KEY)


def _point(cid, seed=0):
  """Primals ``(x, params)``, tangents for both, a cotangent for the output."""
  primals = _primals(cid, seed=seed)
  tangents = _normal_like(primals, 1)
  cot = _normal_like(jax.eval_shape(_fn(cid), *primals), 2)
  return primals, tangents, cot


def _scalar(cid):
  """``sum(y * c) + sum(y**2) / 2`` over the output leaves: a non-trivial second derivative."""
  f = _fn(cid)

  def s(x, p, c):
    return sum(
      jnp.sum(y * w) + 0.5 * jnp.sum(y * y)
      for y, w in zip(jax.tree.leaves(f(x, p)), jax.tree.leaves(c))
    )

  return s


def _assert_close(got, want, rtol, atol_scale, what):
  """Leafwise ``|got - want| <= rtol |want| + atol_scale * max|want|``, float64 throughout."""
  got, want = _np(got), _np(want)
  assert jax.tree.structure(got) == jax.tree.structure(want), what
  scale = max([float(np.max(np.abs(w))) for w in jax.tree.leaves(want) if w.size] + [1e-300])
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.shape == w.shape and g.dtype == w.dtype == np.float64, (what, g.dtype, w.dtype)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol_scale * scale, err_msg=what)


# --- compiled programs, one set per case and process --------------------------------------


@functools.cache
def _forward(cid):
  """jit: output, jvp, central differences, vjp and linearize, for given tangents."""
  f = _fn(cid)

  @jax.jit
  def run(primals, tangents, cot):
    y, jt = jax.jvp(f, primals, tangents)
    fd = _central_differences(f, primals, tangents, STEP)
    _, vjp = jax.vjp(f, *primals)
    _, lin = jax.linearize(f, *primals)
    return dict(y=y, jvp=jt, fd=fd, vjp=vjp(cot), lin=lin(*tangents))

  return run


def _forward_at(cid, seed=0, wrt=None):
  """``_forward`` at the standard point; tangents on x and every parameter, or ``wrt`` only."""
  primals, tangents, cot = _point(cid, seed)
  if wrt is not None:
    tx, tp = tangents
    tangents = (
      jnp.zeros_like(tx),
      {k: v if k == wrt else jnp.zeros_like(v) for k, v in tp.items()},
    )
  return primals, tangents, cot, _np(_forward(cid)(primals, tangents, cot))


@functools.cache
def _vmapped(cid):
  f = _fn(cid)
  jvp = lambda x, p, tx, tp: jax.jvp(f, (x, p), (tx, tp))
  return jax.jit(jax.vmap(jvp, in_axes=(0, None, 0, None)))


def _tiny_problem(cid):
  """The tiny-input problem on flat vectors: ``(z0, x0, v, f, s)``.

  ``f(z)``: the flat output as a function of ``z``, ``x`` and the parameters flattened
  together (``z0``); ``s(x)``: the scalar as a function of the flat ``x`` alone (parameters
  fixed: second derivatives w.r.t. them would cost a third more compile time), at ``x0``,
  with the direction ``v`` for Hessian-vector products.
  """
  x, p = _primals(cid, TINY)
  z0, unravel = ravel_pytree((x, p))
  f = _fn(cid)
  c = _normal_like(jax.eval_shape(f, x, p), 2)
  s = _scalar(cid)
  v = jnp.asarray(np.random.default_rng(3).standard_normal(x.size))
  return (
    z0,
    x.ravel(),
    v,
    lambda z: ravel_pytree(f(*unravel(z)))[0],
    lambda x_flat: s(x_flat.reshape(x.shape), p, c),
  )


@functools.cache
def _tiny_forward(cid):
  """On the tiny input, float64 NumPy: ``jacfwd(f)`` and ``jax.hessian(s)``.

  ``jax.hessian(s)`` is ``jacfwd(jacrev(s))``, i.e. ``vmap`` of the forward-over-reverse
  Hessian-vector product ``v -> jvp(grad(s), (x,), (v,))`` over the basis vectors, so
  ``hessian @ v`` is that product for any ``v`` (compiled once: the batched form traces
  everything the unbatched one does).
  """
  z0, x0, _, flat, scalar = _tiny_problem(cid)
  return _np(jax.jit(lambda z, x: (jax.jacfwd(flat)(z), jax.hessian(scalar)(x)))(z0, x0))


@functools.cache
def _tiny_reverse(cid):
  """Reverse mode only, on the tiny input, float64 NumPy: ``jacrev(f)``, the
  reverse-over-reverse product ``grad(lambda x: vdot(grad(s)(x), v))`` and its
  central differences ``(grad(s)(x + h v) - grad(s)(x - h v)) / 2h``."""
  z0, x0, v, flat, scalar = _tiny_problem(cid)
  h = 1e-5

  @jax.jit
  def run(z, x, v):
    grad = jax.grad(scalar)
    rev_rev = jax.grad(lambda x: jnp.vdot(grad(x), v))(x)
    up, down = jax.vmap(grad)(jnp.stack([x + h * v, x - h * v]))
    return jax.jacrev(flat)(z), rev_rev, (up - down) / (2 * h)

  return _np(run(z0, x0, v))


# --- the catalogue covers the API --------------------------------------------------------


def test_catalogue_covers_every_public_function():
  functions = {id(getattr(jaxpool, name)) for name in jaxpool.__all__}
  ops = {DIFF_CASES[c].op for c in CASES}
  assert ops <= set(jaxpool.__all__), sorted(ops - set(jaxpool.__all__))
  covered = {id(getattr(jaxpool, op)) for op in ops}
  missing = [n for n in jaxpool.__all__ if id(getattr(jaxpool, n)) not in covered]
  assert not missing, f'public functions without a DIFF_CASES entry: {missing}'
  assert covered == functions


def test_catalogue_inputs_are_tie_free_and_outputs_float64():
  for cid in CASES:
    x, _p = _primals(cid)
    assert x.dtype == jnp.float64 and np.unique(np.asarray(x)).size == x.size
    for shape in (SHAPE, TINY):
      out = jax.eval_shape(_fn(cid), *_primals(cid, shape))
      assert all(o.dtype == jnp.float64 for o in jax.tree.leaves(out)), (cid, out)


def test_every_learnable_argument_is_a_tangent():
  """The learnable arguments named in issue 16 are all parameters of some case."""
  have = {(DIFF_CASES[c].op, a) for c in CASES for a in DIFF_CASES[c].params(SHAPE)}
  want = {
    ('lp_pool', 'p'),
    ('ada_pool', 'beta'),
    ('max_avg_pool', 'alpha'),
    ('soft_pool', 'temperature'),
    ('gated_pool', 'gate'),
    ('lip_pool', 'logits'),
    ('tree_pool', 'leaves'),
    ('tree_pool', 'gates'),
    ('dpp_pool', 'alpha'),
    ('dpp_pool', 'lam'),
    ('lift_down_pool', 'predict'),
    ('lift_down_pool', 'update'),
    ('lift_up_pool', 'predict'),
    ('lift_up_pool', 'update'),
    ('global_pool', 'p'),
    ('mixed_pool', 'p_max'),
    ('weighted_unpool', 'weights'),
  }
  assert want <= have, sorted(want - have)


# --- first order ----------------------------------------------------------------------------


@by_first_order_case
def test_jvp_against_differences_vjp_and_linearize(cid):
  """jvp = central differences (along x and every parameter, then each parameter alone);
  the dot-product test <J t, c> = <t, J^T c> against the vjp; linearize = jvp."""
  _, tangents, cot, out = _forward_at(cid)
  assert _np_norm(out['jvp']) > 0
  _assert_close(out['jvp'], out['fd'], 1e-5, 1e-7, f'{cid}: jvp vs central differences')
  for arg in sorted(DIFF_CASES[cid].params(SHAPE)):
    *_, along = _forward_at(cid, wrt=arg)
    assert _np_norm(along['jvp']) > 0, f'{cid}: the output does not depend on {arg}'
    _assert_close(along['jvp'], along['fd'], 1e-5, 1e-7, f'{cid}: jvp along {arg} alone')
  forward, reverse = _np_vdot(out['jvp'], cot), _np_vdot(tangents, out['vjp'])
  bound = _np_norm(out['jvp']) * _np_norm(cot)
  assert abs(forward - reverse) <= 1e-9 * max(abs(forward), 1e-2 * bound), (
    f'{cid}: dot-product test <J t, c> = {forward!r} != <t, J^T c> = {reverse!r}'
  )
  _assert_close(out['lin'], out['jvp'], 1e-10, 1e-12, f'{cid}: linearize vs jvp')


@by_case
def test_jit_vmap_jvp_equals_jvp_per_example(cid):
  examples = [_forward_at(cid, seed) for seed in (0, 5)]
  xs = jnp.stack([e[0][0] for e in examples])
  txs = jnp.stack([e[1][0] for e in examples])
  (_, p), (_, tp) = examples[0][0], examples[0][1]
  ys, jts = _np(_vmapped(cid)(xs, p, txs, tp))
  for i, (*_, out) in enumerate(examples):
    _assert_close(jax.tree.map(lambda a: a[i], ys), out['y'], 1e-10, 1e-12, f'{cid}: y[{i}]')
    _assert_close(jax.tree.map(lambda a: a[i], jts), out['jvp'], 1e-10, 1e-12, f'{cid}: jvp[{i}]')


# --- second order and full Jacobians (tiny input) ------------------------------------------


@by_second_order_case
def test_reverse_over_reverse_matches_differences_of_the_gradient(cid):
  """Reverse mode alone: ``grad(<grad(s), v>)`` against central differences of ``grad(s)``."""
  _, reverse_over_reverse, fd = _tiny_reverse(cid)
  assert np.all(np.isfinite(reverse_over_reverse)) and np.any(reverse_over_reverse != 0)
  scale = float(np.max(np.abs(fd)))
  np.testing.assert_allclose(
    reverse_over_reverse,
    fd,
    rtol=1e-5,
    atol=1e-7 * scale,
    err_msg=f'{cid}: reverse-over-reverse vs differences of grad',
  )


@by_second_order_case
def test_jacfwd_jacrev_hvp_and_hessian(cid):
  """``jacfwd`` = ``jacrev``; the forward-over-reverse Hessian-vector product
  ``jax.hessian(s) @ v`` (= ``jvp(grad(s), (x,), (v,))``) equals reverse-over-reverse
  ``grad(<grad(s), v>)``; ``jax.hessian(s)`` is symmetric."""
  jac_fwd, hessian = _tiny_forward(cid)
  jac_rev, reverse_over_reverse, _ = _tiny_reverse(cid)
  assert jac_fwd.shape == jac_rev.shape and np.any(jac_rev != 0)
  np.testing.assert_allclose(
    jac_fwd,
    jac_rev,
    rtol=1e-9,
    atol=1e-12 * np.max(np.abs(jac_rev)),
    err_msg=f'{cid}: jacfwd vs jacrev',
  )
  scale = float(np.max(np.abs(reverse_over_reverse)))
  assert scale > 0
  v = np.asarray(_tiny_problem(cid)[2])
  np.testing.assert_allclose(
    hessian @ v,
    reverse_over_reverse,
    rtol=1e-8,
    atol=1e-10 * scale,
    err_msg=f'{cid}: HVP forward-over-reverse vs reverse-over-reverse',
  )
  assert hessian.shape[0] == hessian.shape[1] and np.all(np.isfinite(hessian))
  np.testing.assert_allclose(
    hessian,
    hessian.T,
    rtol=1e-9,
    atol=1e-11 * np.max(np.abs(hessian)),
    err_msg=f'{cid}: jax.hessian is not symmetric',
  )


# --- modules: jvp through linen apply and the NNX call ------------------------------------


def _module_call_args(spec):
  """The module's call arguments, computed once: ``(float_args, rebuild)``.

  Derived inputs (MaxUnpool's indices, AdaUnPool's weights, LiftUpPool's bands)
  are evaluated outside the differentiated function, so the jvp is w.r.t. the
  module's own float arguments (and its parameters), not the op that made them.
  """
  x = jnp.asarray(tie_free((2, 8, 8, 3), 0, spec.positive))
  leaves, treedef = jax.tree.flatten(jax.jit(spec.args)(x))
  inexact = [jnp.issubdtype(v.dtype, jnp.inexact) for v in leaves]

  def rebuild(floats):
    it = iter(floats)
    return treedef.unflatten([next(it) if f else v for v, f in zip(leaves, inexact)])

  return [v for v, f in zip(leaves, inexact) if f], rebuild


def _perturbed(params, seed=2):
  """float64 parameters, moved off their initial values so that every one matters."""
  return jax.tree.map(
    lambda a, n: jnp.asarray(a, jnp.float64) + 0.1 * n, params, _normal_like(params, seed)
  )


def _float_leaves(tree):
  return [v for v in jax.tree.leaves(tree) if jnp.issubdtype(v.dtype, jnp.inexact)]


#: (step, rtol, atol relative to the largest tangent) where a module computes part of its
#: output in float32 whatever the input dtype, so that float64 differences are only good to
#: float32's precision: LIP's default logit module (``LIPLogits``) normalises in float32 and
#: casts back (its differences are off by ~0.5% at step 1e-3; lip_pool itself, with float64
#: logits, is held to 1e-5 in ``test_jvp_against_differences_vjp_and_linearize``).
MODULE_DIFFERENCES = {'LIP': (1e-3, 1e-2, 1e-3)}
#: Modules with parameters: jvp w.r.t. parameters and inputs through the module's own code.
PARAMETERISED = [spec for spec in SPECS if spec.name in WITH_PARAMS]


def _check_module_jvp(spec, api, f, params, args):
  """jvp of ``f(params, args)`` (float leaves of the output) against central differences."""
  primals = (params, args)
  tangents = _normal_like(primals, 1)
  step, rtol, atol = MODULE_DIFFERENCES.get(spec.name, (STEP, 1e-5, 1e-7))

  @jax.jit
  def run(primals, tangents):
    return jax.jvp(f, primals, tangents)[1], _central_differences(f, primals, tangents, step)

  jt, fd = _np(run(primals, tangents))
  assert _np_norm(jt) > 0
  _assert_close(jt, fd, rtol, atol, f'{api}.{spec.name}: module jvp vs central differences')


@pytest.mark.parametrize('spec', PARAMETERISED, ids=str)
def test_linen_module_jvp(spec):
  module = linen_module(spec)
  args, rebuild = _module_call_args(spec)
  variables = jax.jit(lambda a: module.init(jax.random.key(0), *rebuild(a), **spec.init_kw))(args)
  params = _perturbed(variables.get('params', {}))
  rest = {k: v for k, v in variables.items() if k != 'params'}
  kw = dict(deterministic=False, rngs={'pooling': KEY}) if spec.random else {}

  def f(params, args):
    return _float_leaves(module.apply({'params': params, **rest}, *rebuild(args), **kw))

  _check_module_jvp(spec, 'linen', f, params, args)


@pytest.mark.parametrize('spec', PARAMETERISED, ids=str)
def test_nnx_module_jvp(spec):
  module = nnx_module(spec)
  args, rebuild = _module_call_args(spec)
  graphdef, params, rest = nnx.split(module, nnx.Param, ...)
  params = _perturbed(params)
  kw = dict(deterministic=False, rngs=KEY) if spec.random else {}

  def f(params, args):
    return _float_leaves(nnx.merge(graphdef, params, rest)(*rebuild(args), **kw))

  _check_module_jvp(spec, 'nnx', f, params, args)


# --- ties and NaN: the tangent follows the gradient's winner ------------------------------


def _tied(nan: bool):
  """(1, 6, 6, 2) float64 with many ties (values in {0, 1, 2}), optionally some NaN."""
  x = np.random.default_rng(4).integers(0, 3, TINY).astype(np.float64)
  if nan:  # two NaN in the first 3x3/s2/p1 window (and channel 0's global max), two more
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = x[0, 4, 5, 1] = x[0, 5, 2, 1] = np.nan
  return jnp.asarray(x)


@functools.cache
def _winner_jacobians(name):
  """jit: (jvp with one-hot input tangents, vjp with one-hot cotangents) as (out, in) matrices."""
  f = WINNER_OPS[name]

  @jax.jit
  def run(x):
    y, vjp = jax.vjp(f, x)
    eye_in = jnp.eye(x.size, dtype=x.dtype).reshape(-1, *x.shape)
    eye_out = jnp.eye(y.size, dtype=y.dtype).reshape(-1, *y.shape)
    forward = jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(eye_in)  # (n_in, *y.shape)
    reverse = jax.vmap(lambda c: vjp(c)[0])(eye_out)  # (n_out, *x.shape)
    return forward.reshape(x.size, y.size).T, reverse.reshape(y.size, x.size)

  return run


@pytest.mark.parametrize('nan', [False, True], ids=['ties', 'nan'])
@pytest.mark.parametrize('name', sorted(WINNER_OPS))
def test_tangent_follows_the_gradient_winner(name, nan):
  """jvp with one-hot input tangents = rows of the vjp with one-hot cotangents."""
  forward, reverse = _np(_winner_jacobians(name)(_tied(nan)))
  # The gradient credits one winner per output (ties occur, so the rule matters) ...
  assert np.all(np.isfinite(reverse)) and np.all(reverse.sum(axis=1) == 1)
  assert set(np.unique(reverse)) == {0.0, 1.0}
  # ... and the tangent follows exactly that winner.
  np.testing.assert_array_equal(forward, reverse)
