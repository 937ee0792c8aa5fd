"""Scalar arguments: a function and its linen and NNX modules take the same values.

For every function/module pair and every scalar argument (flags, choices, ``eps``,
``temperature``, ``p``, ``p_max``, sizes, ...), each value -- a Python value, a NumPy
scalar, a concrete 0-d JAX array; good and bad -- goes to the function, to the linen module
(built, then initialised on a tiny input: some checks need the input) and to the NNX module
(built, then called). All three must accept it, or all refuse it with the same exception
type and message. Each value is also held to the rule (``GOOD``/bad), so "all three refuse"
cannot hide a value that should work. Scalars only the modules have (``learnable_p``,
``per_channel``, ``depth``, ``kernel_size``, ...) are compared between linen and NNX.

Scalars that select the computation (flags, choices, ``eps``, sizes) take Python values,
NumPy scalars and concrete 0-d JAX arrays (``jaxpool/_checks.py``); those a function also
takes as arrays (``temperature``, ``p``, ``p_max``) keep its semantics: a number is the
static path, an array the traced (learnable) one, its value unchecked.

Tiny: a (1, 4, 4, 2) input; functions and NNX modules run eagerly, linen modules are traced
with ``jax.eval_shape`` (their checks run at construction and at trace time).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn
from tests.helpers import value_and_vjp
from tests.ops import PAIRS, Pair
from tests.ops.fixtures import SCALAR_X, Good

X = SCALAR_X
KEY = jax.random.key(0)


#: NNX cases that fail because of jaxpool.nnx (being rewritten): ``(module, field): why``.
#: Remove an entry once NNX mirrors linen (the xfail is strict, so a fixed one fails).
NNX_KNOWN: dict[tuple[str, str], str] = {}

CASES = [(pair, field) for pair in PAIRS for field in pair.scalars]


def _id(case) -> str:
  pair, field = case
  return f'{pair.module}.{field}'


def _outcome(run: Callable[[], Any]):
  """``'ok'``, or the exception's type name and message."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', DeprecationWarning)
      jax.block_until_ready(run())
  except Exception as e:  # compared, not swallowed
    return type(e).__name__, str(e)
  return 'ok'


def _inputs(pair: Pair, kw: dict) -> tuple:
  return (X,) if pair.inputs is None else pair.inputs(kw)


def _fields(pair: Pair, field: str, value: Any) -> dict:
  return {**pair.fields, field: value}


def _linen(pair: Pair, field: str, value: Any):
  # Arguments are checked when the module is built and traced: eval_shape traces the call
  # (same errors) without compiling or running it.
  kw = _fields(pair, field, value)
  module = getattr(jl, pair.module)(**kw)
  return jax.eval_shape(
    lambda: module.init_with_output(
      {'params': KEY, 'pooling': KEY}, *_inputs(pair, kw), **pair.call_kw
    )
  )


def _nnx(pair: Pair, field: str, value: Any):
  # Built and called under nnx.eval_shape, as the linen modules under eval_shape: the same
  # checks, nothing compiled.
  kw = _fields(pair, field, value)

  def build_and_call():
    module = getattr(jn, pair.module)(**kw, **pair.nnx_kw())
    return module(*_inputs(pair, kw), **pair.call_kw)

  return nnx.eval_shape(build_and_call)


def _function(pair: Pair, field: str, value: Any):
  # Traced like the modules (eval_shape: the same argument checks, no compile): values are
  # closed over, so Python numbers stay Python numbers and concrete checks still see them.
  return jax.eval_shape(lambda: pair.function(**{field: value}))


_CACHE: dict = {}


def _cached(run: Callable[..., Any], pair: Pair, field: str, index: int, value: Any):
  """The outcome of ``run(pair, field, value)``, computed once (the linen and NNX tests share)."""
  key = (run.__name__, PAIRS.index(pair), field, index)
  if key not in _CACHE:
    _CACHE[key] = _outcome(lambda: run(pair, field, value))
  return _CACHE[key]


def _expected(pair: Pair, field: str, value: Any, outcome) -> None:
  good = isinstance(value, Good)
  if good:
    assert outcome == 'ok', f'{pair.module} {field}={value!r} must be accepted; got {outcome}'
  else:
    assert outcome != 'ok', f'{pair.module} {field}={value!r} must be refused'


@pytest.mark.parametrize('case', CASES, ids=_id)
def test_linen_module_takes_the_functions_values(case):
  pair, field = case
  for index, entry in enumerate(pair.scalars[field]):
    value = entry.value if isinstance(entry, Good) else entry
    got = _cached(_linen, pair, field, index, value)
    if pair.function is not None and field not in pair.module_only:
      want = _cached(_function, pair, field, index, value)
      _expected(pair, field, entry, want)
      assert got == want, f'{pair.module} {field}={value!r}: linen {got} but function {want}'
    else:
      _expected(pair, field, entry, got)


def _nnx_cases():
  out = []
  for case in CASES:
    why = NNX_KNOWN.get((case[0].module, case[1]))
    marks = [pytest.mark.xfail(reason=f'NNX: {why}', strict=True)] if why else []
    out.append(pytest.param(case, marks=marks, id=_id(case)))
  return out


@pytest.mark.parametrize('case', _nnx_cases())
def test_nnx_module_takes_the_functions_values(case):
  pair, field = case
  for index, entry in enumerate(pair.scalars[field]):
    value = entry.value if isinstance(entry, Good) else entry
    got = _outcome(lambda: _nnx(pair, field, value))
    if pair.function is not None and field not in pair.module_only:
      want = _cached(_function, pair, field, index, value)
    else:
      want = _cached(_linen, pair, field, index, value)
    assert got == want, f'{pair.module} {field}={value!r}: NNX {got} but expected {want}'


def test_every_module_with_a_scalar_field_is_walked():
  walked = {pair.module for pair in PAIRS}
  assert walked == set(jn.__all__), sorted(set(jn.__all__) - walked)


# --- errors name the user's argument --------------------------------------------------------


def test_lip_logits_errors_name_kernel_size():
  with pytest.raises(ValueError, match=r'kernel_size entries must be >= 1; got \(0,\)'):
    jl.LIPLogits((0,))
  with pytest.raises(TypeError, match='kernel_size must be a sequence'):
    jl.LIPLogits(3)


# --- renamed arguments ----------------------------------------------------------------------


def test_unpool_output_shape_is_a_deprecated_output_size():
  y, w = jaxpool.soft_pool(X, (2, 2), return_weights=True)
  want = jaxpool.weighted_unpool(y, w, (2, 2), output_size=(4, 4))
  for unpool in (jaxpool.weighted_unpool, jaxpool.ada_unpool):
    with pytest.warns(DeprecationWarning, match='output_shape= is deprecated, use output_size='):
      got = unpool(y, w, (2, 2), output_shape=(4, 4))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match='got both output_size=.* and its old name output_shape='):
      unpool(y, w, (2, 2), output_size=(4, 4), output_shape=(4, 4))
  module = jl.AdaUnPool((2, 2))
  with pytest.warns(DeprecationWarning, match='AdaUnPool: output_shape= is deprecated'):
    got = module.apply({}, y, w, output_shape=(4, 4))
  np.testing.assert_array_equal(got, want)
  with pytest.raises(TypeError, match='AdaUnPool got both output_size='):
    module.apply({}, y, w, output_size=(4, 4), output_shape=(4, 4))


def test_lip_logits_epsilon_is_a_deprecated_eps():
  with pytest.warns(DeprecationWarning, match='LIPLogits: epsilon= is deprecated, use eps='):
    old = jl.LIPLogits((3, 3), epsilon=1e-3)
  assert old.eps == 1e-3
  new = jl.LIPLogits((3, 3), eps=1e-3)
  x = X * jnp.arange(16.0).reshape(1, 4, 4, 1)
  variables = new.init(KEY, x)
  variables = jax.tree.map(lambda v: v + 0.1, variables)  # a non-zero conv: eps matters
  with warnings.catch_warnings():
    warnings.simplefilter('error', DeprecationWarning)  # a resolved module does not warn again
    np.testing.assert_array_equal(old.apply(variables, x), new.apply(variables, x))
    assert not math.isclose(
      float(jnp.sum(jl.LIPLogits((3, 3)).apply(variables, x))),
      float(jnp.sum(new.apply(variables, x))),
    )
  with pytest.raises(TypeError, match='LIPLogits got both eps=0.001 and its old name epsilon='):
    jl.LIPLogits((3, 3), eps=1e-3, epsilon=1e-4)


def test_unpool_output_sizes_take_concrete_jax_ints_as_every_size_does():
  x = jnp.arange(32.0).reshape(1, 4, 4, 2)
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  sizes = ((4, 4), (jnp.asarray(4), np.int64(4)), [jnp.asarray(4), 4])
  outs = [jaxpool.max_unpool(y, idx, (2, 2), output_size=s) for s in sizes]
  y, w = jaxpool.soft_pool(x, (2, 2), return_weights=True)
  outs += [jaxpool.weighted_unpool(y, w, (2, 2), output_size=s) for s in sizes]
  for out in outs:
    assert out.shape == x.shape
  with pytest.raises(TypeError, match='output_size must be a sequence of ints'):
    jaxpool.max_unpool(y, idx, (2, 2), output_size=(jnp.asarray(4.0), 4))


# --- one meaning whatever the form: Python, NumPy and 0-d JAX scalars -------------------

_TIED = jnp.asarray(
  np.array([-4.0, 2.0, 0.5, 3.0, -3.0, 1.0, 3.0, -1.0]).reshape(1, 2, 4, 1), jnp.float32
)  # a tie |3| = |-3| = 3 and 3 = 3, a dominant negative value

#: An op with one array-or-number argument: ``call(x, value)`` and the values to try.
FORMS = {
  'lp_pool p': (lambda x, v: jaxpool.lp_pool(x, v, (2, 2)), [1.0, 2.0, 3.0, np.inf]),
  'global_pool lp p': (lambda x, v: jaxpool.global_pool(x, 'lp', p=v), [2.0, 3.0, np.inf]),
  'global_pool gem p': (lambda x, v: jaxpool.global_pool(jnp.abs(x), 'gem', p=v), [1.0, 3.0]),
  'global_pool soft temperature': (
    lambda x, v: jaxpool.global_pool(x, 'soft', temperature=v),
    [0.5, 2.0],
  ),
  'soft_pool temperature': (lambda x, v: jaxpool.soft_pool(x, (2, 2), temperature=v), [0.5, 3.0]),
  'ada_pool beta': (lambda x, v: jaxpool.ada_pool(x, v, (2, 2)), [0.0, 0.3, 1.0]),
  'max_avg_pool alpha': (lambda x, v: jaxpool.max_avg_pool(x, v, (2, 2)), [0.0, 0.3, 1.0]),
  'mixed_pool p_max': (lambda x, v: jaxpool.mixed_pool(x, (2, 2), p_max=v), [0.0, 0.3, 1.0]),
}


@pytest.mark.parametrize('case', sorted(FORMS))
def test_python_numpy_and_jax_scalars_give_one_value_and_gradient(case):
  call, values = FORMS[case]
  for v in values:
    results = {}
    for form, value in (
      ('python', float(v)),
      ('numpy', np.float32(v)),
      ('jax', jnp.float32(v)),
    ):
      # jitted with the value closed over: its form (Python, NumPy, JAX) reaches the op
      y, (grad,) = value_and_vjp(lambda a, value=value: call(a, value), (_TIED,))
      results[form] = (np.asarray(y), np.asarray(grad))
    for form in ('numpy', 'jax'):
      for part, a, b in zip(('value', 'gradient'), results[form], results['python']):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f'{case}={v} {form} {part}')


@pytest.mark.parametrize('form', [float, np.float32, np.float64, jnp.float32], ids=str)
def test_p_inf_follows_the_first_maximum_of_abs_x_in_every_form(form):
  """The case of issue 26: a NumPy inf once took the traced path and split the tie."""
  x = jnp.asarray([-4.0, 2.0, 4.0, 0.5, 4.0, -3.0, -4.0, 0.0], jnp.float32).reshape(1, 2, 4, 1)
  p = form(np.inf)
  g = jax.grad(lambda a: jnp.sum(jaxpool.global_pool(a, 'lp', p=p)))(x)
  np.testing.assert_array_equal(g.reshape(-1), [-1, 0, 0, 0, 0, 0, 0, 0])
  g = jax.grad(lambda a: jnp.sum(jaxpool.lp_pool(a, p, (2, 2))))(x)
  # windows [-4, 2, 4, -3] and [4, 0.5, -4, 0]: |x| = 4 tied in each, the first wins
  np.testing.assert_array_equal(g.reshape(-1), [-1, 0, 1, 0, 0, 0, 0, 0])
