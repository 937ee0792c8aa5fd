"""Speed of every op, side by side: jaxpool vs Flax/lax autodiff vs PyTorch CPU.

Usage::

  python benchmarks/speed.py            # full shapes (minutes)
  python benchmarks/speed.py --quick    # small shapes, a CI smoke run
  python benchmarks/speed.py --only max_pool,avg_pool --reps 15

Prints a Markdown table: median milliseconds of the forward and of
forward+backward for each implementation, and the ratio to the case's baseline
(``ratio < 1`` means faster than jaxpool's baseline implementation is *not*
implied: the ratio column is ``implementation / baseline``).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='small shapes, few reps (CI smoke run)')
  parser.add_argument('--only', default='', help='comma-separated op names')
  parser.add_argument('--reps', type=int, default=None, help='timed repetitions per implementation')
  args = parser.parse_args(argv)
  reps = args.reps or (2 if args.quick else 9)
  only = {s.strip() for s in args.only.split(',') if s.strip()} or None
  try:
    import torch

    torch_ok = True
    del torch
  except ImportError:
    torch_ok = False
  cases = common.load_cases(args.quick, only)
  print(f'# jaxpool speed ({"quick" if args.quick else "full"}; medians of {reps} reps)\n')
  print(f'Machine: {common.machine_line()}\n')
  print('| op | geometry | input | implementation | fwd ms | f+b ms | fwd / base | f+b / base |')
  print('|---|---|---|---|---:|---:|---:|---:|')
  for case in cases:
    result = common.time_case(case, reps, torch_ok)
    base = result[case.baseline]
    shape = 'x'.join(map(str, case.shape))
    for name, t in result.items():
      print(
        f'| {case.op} | {case.label} | {shape} | {name} | {t["fwd"]:.2f} | {t["f+b"]:.2f} '
        f'| {t["fwd"] / base["fwd"]:.2f} | {t["f+b"] / base["f+b"]:.2f} |',
        flush=True,
      )


if __name__ == '__main__':
  main()
