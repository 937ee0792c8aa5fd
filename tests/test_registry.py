"""The op registry (``tests/ops``) holds one entry per public name, and nothing else.

Every cross-cutting sweep walks the registry, so an op without an entry would skip them
all: these tests fail, naming the op or class, when a name in ``jaxpool.__all__``,
``jaxpool.linen.__all__`` or ``jaxpool.nnx.__all__`` has no entry, and when an entry names
what is not public.
"""

from __future__ import annotations

import inspect

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn
from tests.ops import ALIASES, MODULE_FOR, OPS

#: Public classes that are parts of other modules (LIP's logit network), covered through them.
SUB_MODULES = {'LIPLogits'}


def functions_without_entry(ops, aliases) -> list[str]:
  return sorted(set(jaxpool.__all__) - set(ops) - set(aliases))


def classes_without_entry(ops, api) -> list[str]:
  specced = {spec.name for op in ops.values() for spec in op.modules}
  return sorted(set(api.__all__) - specced - SUB_MODULES)


def test_every_public_function_has_an_entry():
  missing = functions_without_entry(OPS, ALIASES)
  assert not missing, f'add an entry to tests/ops/<family>.py for {missing}'


def test_every_module_class_has_an_entry():
  for api in (jl, jn):
    missing = classes_without_entry(OPS, api)
    assert not missing, f'{api.__name__}: give an entry in tests/ops a Spec of {missing}'


def test_a_removed_entry_is_named():
  """The two tests above can fail, and say which op."""
  for name in ('tree_pool', 'lip_pool', 'fractional_max_pool'):
    ops = {n: op for n, op in OPS.items() if n != name}
    assert functions_without_entry(ops, ALIASES) == [name]
    assert classes_without_entry(ops, jl) == [MODULE_FOR[name]]


def test_entries_name_public_functions_and_their_classes():
  assert sorted(set(OPS) - set(jaxpool.__all__)) == []
  for alias, name in ALIASES.items():
    assert getattr(jaxpool, alias) is getattr(jaxpool, name), alias
    assert alias not in OPS
  for name, op in OPS.items():
    assert op.modules, f'{name}: no module class'
    for spec in op.modules:
      assert isinstance(getattr(jl, spec.name, None), type), f'jaxpool.linen lacks {spec.name}'
      assert isinstance(getattr(jn, spec.name, None), type), f'jaxpool.nnx lacks {spec.name}'
    classes = {spec.name for spec in op.modules} | SUB_MODULES
    for pair in op.scalars:
      assert pair.module in classes, f'{name}: a scalar pair of {pair.module}'


def test_fuzz_field_matches_the_signature():
  """A function with a ``window`` is fuzzed or says why not; one without has ``fuzz=None``."""
  for name, op in OPS.items():
    windowed = 'window' in inspect.signature(getattr(jaxpool, name)).parameters
    if windowed:
      assert op.fuzz is not None, f'{name}: a fuzz call, or a string saying why not'
    else:
      assert op.fuzz is None, f'{name} has no window: fuzz=None'


def test_differentiable_cases_and_arguments_belong_to_their_op():
  for name, op in OPS.items():
    assert op.diff, f'{name}: at least one differentiable case'
    params = inspect.signature(getattr(jaxpool, name)).parameters
    keywords = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for argument in op.arguments:
      assert argument in params or keywords, f'{name}: {argument!r} is not an argument'


def test_every_function_is_benchmarked_before_and_after():
  """``benchmarks/versus.py`` (before/after any change) has a case of every op, and each
  case traces to the op's output on a small input."""
  import jax
  import jax.numpy as jnp

  from benchmarks import versus

  cases = versus.cases(jaxpool, jnp, jax)
  missing = sorted(set(OPS) - {case.split()[0] for case in cases})
  assert not missing, f'add a case to benchmarks/versus.py for {missing}'
  x = jax.ShapeDtypeStruct((2, 56, 56, 3), jnp.float32)  # the benchmarks: 56x56
  for f in cases.values():
    jax.eval_shape(lambda a, f=f: jax.vjp(f, a)[0], x)  # raises if the case does not trace
