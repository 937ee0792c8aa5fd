"""Compiled temporary memory of each op's forward+backward, side by side.

Usage::

  python benchmarks/memory.py [--quick] [--only soft_pool]

For every JAX implementation of every case, prints the temp bytes XLA's
``memory_analysis()`` reports for ``jit(value_and_grad(sum(f(x) * ct)))`` and
the ratio to the case's baseline. No timing; deterministic for a given JAX.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--only', default='')
  args = parser.parse_args(argv)
  only = {s.strip() for s in args.only.split(',') if s.strip()} or None
  print(f'# jaxpool gradient temp memory ({"quick" if args.quick else "full"})\n')
  print(f'Machine: {common.machine_line()}\n')
  print('| op | geometry | input | implementation | temp MiB | / base |')
  print('|---|---|---|---|---:|---:|')
  for case in common.load_cases(args.quick, only):
    x = common.make_input(case)
    sizes = {name: common.compiled_temp_bytes(f, x) for name, f in case.jax.items()}
    base = sizes.get(case.baseline)
    shape = 'x'.join(map(str, case.shape))
    for name, size in sizes.items():
      ratio = f'{size / base:.2f}' if size is not None and base else 'n/a'
      mib = f'{size / 2**20:.2f}' if size is not None else 'n/a'
      print(f'| {case.op} | {case.label} | {shape} | {name} | {mib} | {ratio} |', flush=True)


if __name__ == '__main__':
  main()
