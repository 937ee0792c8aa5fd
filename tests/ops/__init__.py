"""The op registry: one :class:`~tests.ops.records.Op` per public function.

An entry holds everything the cross-cutting sweeps need of its op (the catalogue call, the
differentiable cases, the window size, the NaN rule's PyTorch kernel, the fuzzer's call,
the path and mask calls, the modules' configurations, the scalar and array arguments); the
fields are documented on :class:`~tests.ops.records.Op`. Entries live beside their
family, ``tests/ops/<family>.py`` for ``jaxpool/<family>.py``; inputs and helpers they share
in :mod:`tests.ops.fixtures`.

The sweeps (catalogue, modules, reliability, arguments, transformations, hardening, paths,
masks) walk the views below, each built from ``OPS``; ``tests/test_registry.py`` fails,
naming the op, when a name in ``jaxpool.__all__``, ``jaxpool.linen`` or ``jaxpool.nnx`` has
no entry. Adding an op: its function, its entry here, its reference and family tests, its
two module classes, its docs line (docs/contributing.md walks through it).
"""

from __future__ import annotations

import dataclasses

from tests.ops import adaptive, blur, classic, learned, lifting, segments, stochastic, weighted
from tests.ops.adaptive import GLOBAL_MASKED
from tests.ops.fixtures import ARG_X
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

__all__ = [
  'ALIASES',
  'GLOBAL_MASKED',
  'PATHS',
  'ARGUMENTS',
  'CALLS',
  'DIFF_CASES',
  'DIRECT_CALLS',
  'EXTRA',
  'FUZZ_CALLS',
  'MASKED',
  'MAX_LIKE',
  'MODULE_FOR',
  'NOT_FUZZED',
  'NOT_MAX_LIKE',
  'OPS',
  'PAIRS',
  'SPECS',
  'WHOLE',
  'WINDOW',
  'WINDOWED',
  'WINNER_OPS',
  'DiffCase',
  'Masked',
  'Op',
  'Pair',
  'Spec',
  'Windowed',
]

OPS: dict[str, Op] = {}
for _family in (classic, adaptive, segments, weighted, learned, blur, lifting, stochastic):
  OPS.update(_family.ENTRIES)

#: Windows that take each path: unrolled (<= 9 taps), stacked (> 9 taps), per-dim passes
#: (> 25 taps with a side above 9), in 2-d and 1-d.
PATHS = {'2x2': (2, 2), '3x3': (3, 3), '5x5': (5, 5), '4x3': (4, 3), '10x10': (10, 10), '30': (30,)}

#: Public names that are another name's function (the same object): covered by its entry.
ALIASES = {'ada_unpool': 'weighted_unpool'}


def _merged(field: str) -> dict:
  """``{case: value}`` over every entry's dict-valued ``field`` (case ids are unique)."""
  out: dict = {}
  for op in OPS.values():
    for case, value in (getattr(op, field) or {}).items():
      assert case not in out, f'case {case!r} of {field} is in two entries'
      out[case] = value
  return out


# --- the views the sweeps walk -------------------------------------------------------------

#: name -> ``call(x, key)`` (aliases included: export and sharding run every public name).
CALLS = {name: op.call for name, op in OPS.items()} | {
  alias: OPS[name].call for alias, name in ALIASES.items()
}
WINDOW = {name: op.window for name, op in OPS.items()}
DIRECT_CALLS = {name: op.direct for name, op in OPS.items()}
DIFF_CASES = {
  case: dataclasses.replace(diff, op=name)
  for name, op in OPS.items()
  for case, diff in op.diff.items()
}
MAX_LIKE = _merged('max_like')
NOT_MAX_LIKE = {name for name, op in OPS.items() if op.max_like is None}
WINNER_OPS = _merged('tangent_winner')
FUZZ_CALLS = {name: op.fuzz for name, op in OPS.items() if callable(op.fuzz)}
NOT_FUZZED = {name: op.fuzz for name, op in OPS.items() if isinstance(op.fuzz, str)} | {
  alias: OPS[name].fuzz for alias, name in ALIASES.items() if isinstance(OPS[name].fuzz, str)
}
WINDOWED = _merged('paths')
WHOLE = _merged('whole')
MASKED = _merged('masked')
EXTRA = _merged('secondary')
SPECS = [spec for op in OPS.values() for spec in op.modules]
#: function name -> its module class (the same name in jaxpool.linen and jaxpool.nnx).
MODULE_FOR = {name: op.modules[0].name for name, op in OPS.items()} | {
  alias: OPS[name].modules[0].name for alias, name in ALIASES.items()
}
PAIRS = [pair for op in OPS.values() for pair in op.scalars]
#: (function, array argument) -> a call with that argument replaced by ``v``.
ARGUMENTS = {
  (name, argument): (
    (lambda direct: lambda v: direct(ARG_X, mask=v))(op.direct) if call == MASK_VIA_DIRECT else call
  )
  for name, op in OPS.items()
  for argument, call in op.arguments.items()
}
