"""Trace + compile time of each op's gradient for a 3-d case, vs the Flax/lax baseline.

Usage::

  python benchmarks/compile_time.py [--quick]

For every op, measures the wall time of ``jax.jit(grad(sum(f))).lower(x).compile()``
(tracing, lowering and XLA compilation; nothing is executed) on a
``(2, 16, 16, 16, 8)`` input with a 3x3x3 window, stride 2, padding 1, and
reports it next to the same for ``flax.linen.max_pool`` (lax autodiff).
Medians of a few fresh compiles (caches cleared between them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxpool  # noqa: E402
from benchmarks import common  # noqa: E402

W, S, P = (3, 3, 3), 2, 1
KEY = jax.random.key(0)

OPS = {
    'flax max_pool (baseline)': lambda x: nn.max_pool(x, W, (S,) * 3, ((P, P),) * 3),
    'flax avg_pool': lambda x: nn.avg_pool(x, W, (S,) * 3, ((P, P),) * 3),
    'max_pool': lambda x: jaxpool.max_pool(x, W, S, P),
    'min_pool': lambda x: jaxpool.min_pool(x, W, S, P),
    'avg_pool': lambda x: jaxpool.avg_pool(x, W, S, P),
    'lp_pool': lambda x: jaxpool.lp_pool(jnp.abs(x), 2.0, W, S, P),
    'soft_pool': lambda x: jaxpool.soft_pool(x, W, S, P),
    'lip_pool': lambda x: jaxpool.lip_pool(x, x, W, S, P),
    'edscw_pool': lambda x: jaxpool.edscw_pool(x, W, S, P),
    'idw_pool': lambda x: jaxpool.idw_pool(x, W, S, P),
    'ada_pool': lambda x: jaxpool.ada_pool(x, 0.5, W, S, P),
    'max_avg_pool': lambda x: jaxpool.max_avg_pool(x, 0.5, W, S, P),
    'gated_pool': lambda x: jaxpool.gated_pool(x, jnp.full(W, 0.1), W, S, P),
    'tree_pool': lambda x: jaxpool.tree_pool(x, jnp.full((2, *W), 0.1), jnp.full((1, *W), 0.1),
                                             W, S, P),
    'dpp_pool': lambda x: jaxpool.dpp_pool(x, 1.0, 1.0, W, S, P),
    'blur_pool': lambda x: jaxpool.blur_pool(x, W, S),
    'max_blur_pool': lambda x: jaxpool.max_blur_pool(x, (2, 2, 2), W, S),
    'lift_down_pool': lambda x: jaxpool.lift_down_pool(x, jnp.array([0.5, 0.5]),
                                                       jnp.array([0.25, 0.25]), (-4, -3, -2))[0],
    'adaptive_avg_pool': lambda x: jaxpool.adaptive_avg_pool(x, (5, 5, 5)),
    'adaptive_max_pool': lambda x: jaxpool.adaptive_max_pool(x, (5, 5, 5)),
    'global_pool (gem)': lambda x: jaxpool.global_pool(x, 'gem', p=3.0),
    'spatial_pyramid_pool': lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 4)),
    'stochastic_pool': lambda x: jaxpool.stochastic_pool(jnp.abs(x), W, S, P, key=KEY),
    'mixed_pool': lambda x: jaxpool.mixed_pool(x, W, S, P, key=KEY),
    's3_pool': lambda x: jaxpool.s3_pool(x, (2, 2, 2), key=KEY),
    'fractional_max_pool': lambda x: jaxpool.fractional_max_pool(x, (2, 2, 2), output_size=(11,) * 3,
                                                                 key=KEY),
}


def compile_seconds(f, x, reps: int) -> float:
  times = []
  for _ in range(reps):
    jax.clear_caches()
    grad = jax.jit(jax.grad(lambda a: jnp.sum(f(a))))
    start = time.perf_counter()
    grad.lower(x).compile()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='one compile per op')
  args = parser.parse_args(argv)
  reps = 1 if args.quick else 3
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16, 16, 16, 8)), jnp.float32)
  print('# Trace + compile time of the gradient, 3-d, 3x3x3/s2/p1\n')
  print(f'Machine: {common.machine_line()}\n')
  print('| op | seconds | / flax max_pool |')
  print('|---|---:|---:|')
  base = None
  for name, f in OPS.items():
    if not hasattr(jaxpool, name.split()[0]) and not name.startswith('flax'):
      continue
    seconds = compile_seconds(f, x, reps)
    base = base or seconds
    print(f'| {name} | {seconds:.3f} | {seconds / base:.2f} |', flush=True)


if __name__ == '__main__':
  main()
