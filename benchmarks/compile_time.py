"""Trace + compile time of each op's gradient and jvp, vs the Flax/lax baseline.

Usage::

  python benchmarks/compile_time.py [--quick] [--only soft_pool,max_pool] [--no-3d] [--no-sweep]

Two tables. First, for every op, the wall time of
``jax.jit(grad(sum(f))).lower(x).compile()`` (tracing, lowering and XLA
compilation; nothing is executed) on a ``(2, 16, 16, 16, 8)`` input with a
3x3x3 window, stride 2, padding 1, next to the same for ``flax.linen.max_pool``
(lax autodiff). Second, a window-size sweep on a ``(2, 64, 64, 8)`` input:
every windowed op's gradient and ``jvp`` at 3x3, 8x8, 16x16 and 32x32 windows
(the blur filters in every ``pad_mode``),
with stride = window (PyTorch's default) and stride 1, reported against the
op's own 3x3 time and Flax's ``max_pool`` 32x32 gradient. Medians of a few
fresh compiles (caches cleared between them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxpool
from benchmarks import common

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
  'tree_pool': lambda x: jaxpool.tree_pool(
    x, jnp.full((2, *W), 0.1), jnp.full((1, *W), 0.1), W, S, P
  ),
  'dpp_pool': lambda x: jaxpool.dpp_pool(x, 1.0, 1.0, W, S, P),
  'blur_pool': lambda x: jaxpool.blur_pool(x, W, S),
  'max_blur_pool': lambda x: jaxpool.max_blur_pool(x, (2, 2, 2), W, S),
  'lift_down_pool': lambda x: jaxpool.lift_down_pool(
    x, jnp.array([0.5, 0.5]), jnp.array([0.25, 0.25]), (-4, -3, -2)
  )[0],
  'adaptive_avg_pool': lambda x: jaxpool.adaptive_avg_pool(x, (5, 5, 5)),
  'adaptive_max_pool': lambda x: jaxpool.adaptive_max_pool(x, (5, 5, 5)),
  'global_pool (gem)': lambda x: jaxpool.global_pool(x, 'gem', p=3.0),
  'spatial_pyramid_pool': lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 4)),
  'stochastic_pool': lambda x: jaxpool.stochastic_pool(jnp.abs(x), W, S, P, key=KEY),
  'mixed_pool': lambda x: jaxpool.mixed_pool(x, W, S, P, key=KEY),
  's3_pool': lambda x: jaxpool.s3_pool(x, (2, 2, 2), key=KEY),
  'fractional_max_pool': lambda x: jaxpool.fractional_max_pool(
    x, (2, 2, 2), output_size=(11,) * 3, key=KEY
  ),
}


def _sweep_ops(k: int, s: int):
  """Every op with a window, at a k x k window and stride s (2-d)."""
  w = (k, k)
  return {
    'flax max_pool': lambda x: nn.max_pool(x, w, (s, s)),
    'max_pool': lambda x: jaxpool.max_pool(x, w, s),
    'min_pool': lambda x: jaxpool.min_pool(x, w, s),
    'avg_pool': lambda x: jaxpool.avg_pool(x, w, s),
    'lp_pool': lambda x: jaxpool.lp_pool(jnp.abs(x), 2.0, w, s),
    'soft_pool': lambda x: jaxpool.soft_pool(x, w, s),
    'lip_pool': lambda x: jaxpool.lip_pool(x, x, w, s),
    'edscw_pool': lambda x: jaxpool.edscw_pool(x, w, s),
    'idw_pool': lambda x: jaxpool.idw_pool(x, w, s),
    'ada_pool': lambda x: jaxpool.ada_pool(x, 0.5, w, s),
    'weighted_unpool': lambda x: jaxpool.weighted_unpool(
      *jaxpool.soft_pool(x, w, s, return_weights=True), w, s, output_size=x.shape[1:3]
    ),
    'max_avg_pool': lambda x: jaxpool.max_avg_pool(x, 0.5, w, s),
    'gated_pool': lambda x: jaxpool.gated_pool(x, jnp.full(w, 0.1), w, s),
    'tree_pool': lambda x: jaxpool.tree_pool(
      x, jnp.full((2, *w), 0.1), jnp.full((1, *w), 0.1), w, s
    ),
    'dpp_pool': lambda x: jaxpool.dpp_pool(x, 1.0, 1.0, w, s),
    'stochastic_pool': lambda x: jaxpool.stochastic_pool(jnp.abs(x), w, s, key=KEY),
    'stochastic_pool (eval)': lambda x: jaxpool.stochastic_pool(jnp.abs(x), w, s),
    'mixed_pool': lambda x: jaxpool.mixed_pool(x, w, s, key=KEY),
    'blur_pool': lambda x: jaxpool.blur_pool(x, w, s),
    'blur_pool (reflect)': lambda x: jaxpool.blur_pool(x, w, s, pad_mode='reflect'),
    'blur_pool (edge)': lambda x: jaxpool.blur_pool(x, w, s, pad_mode='edge'),
    'max_blur_pool': lambda x: jaxpool.max_blur_pool(x, w, (3, 3), s),
    'max_blur_pool (reflect blur)': lambda x: jaxpool.max_blur_pool(
      x, (2, 2), w, s, pad_mode='reflect'
    ),
    's3_pool': lambda x: jaxpool.s3_pool(x, w, key=KEY),
    'fractional_max_pool': lambda x: jaxpool.fractional_max_pool(
      x, w, output_size=(16, 16), key=KEY
    ),
  }


SWEEP_WINDOWS = (3, 8, 16, 32)
# ops whose stride is not an argument: swept once (window only)
_NO_STRIDE = ('s3_pool', 'fractional_max_pool')


def compile_seconds(f, x, reps: int, mode: str = 'grad') -> float:
  times = []
  for _ in range(reps):
    jax.clear_caches()
    if mode == 'grad':
      fn = jax.jit(jax.grad(lambda a: jnp.sum(f(a))))
      args = (x,)
    else:  # the tangent is an argument: nothing to constant-fold
      fn = jax.jit(lambda a, t: jax.jvp(f, (a,), (t,))[1])
      args = (x, x)
    start = time.perf_counter()
    fn.lower(*args).compile()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def sweep(reps: int, only) -> None:
  """Compile seconds of every windowed op over window sizes, gradient and jvp."""
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 64, 64, 8)), jnp.float32)
  print('\n# Window-size sweep: trace + compile seconds, 2-d (2, 64, 64, 8) f32\n')
  print(
    'Columns: seconds at each window (gradient / jvp); `32/3`: the 32x32 time over the '
    "op's 3x3 time (goal <= 3); `32 / flax`: over Flax's max_pool 32x32 gradient "
    '(goal <= 10).\n'
  )
  head = ' | '.join(f'{k}x{k}' for k in SWEEP_WINDOWS)
  print(f'| op | stride | mode | {head} | 32/3 | 32 / flax |')
  print('|---|---|---|' + '---:|' * (len(SWEEP_WINDOWS) + 2))
  flax32 = None
  for stride_name in ('= window', '1'):
    for name in _sweep_ops(3, 1):
      if only and name not in only and not name.startswith('flax'):
        continue
      if name in _NO_STRIDE and stride_name == '1':
        continue
      for mode in ('grad', 'jvp'):
        secs = []
        for k in SWEEP_WINDOWS:
          s = k if stride_name == '= window' else 1
          secs.append(compile_seconds(_sweep_ops(k, s)[name], x, reps, mode))
        if name.startswith('flax') and mode == 'grad' and stride_name == '= window':
          flax32 = secs[-1]
        cells = ' | '.join(f'{v:.2f}' for v in secs)
        ratio = f'{secs[-1] / flax32:.1f}' if flax32 else ''
        print(
          f'| {name} | {stride_name} | {mode} | {cells} | {secs[-1] / secs[0]:.1f} | {ratio} |',
          flush=True,
        )


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='one compile per op')
  parser.add_argument('--only', default='', help='comma-separated op names (sweep)')
  parser.add_argument('--no-3d', action='store_true', help='skip the 3-d table')
  parser.add_argument('--no-sweep', action='store_true', help='skip the window-size sweep')
  args = parser.parse_args(argv)
  reps = 1 if args.quick else 3
  only = {v.strip() for v in args.only.split(',') if v.strip()}
  print(f'Machine: {common.machine_line()}\n')
  if not args.no_3d:
    table_3d(reps)
  if not args.no_sweep:
    sweep(reps, only)


def table_3d(reps: int) -> None:
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16, 16, 16, 8)), jnp.float32)
  print('# Trace + compile time of the gradient, 3-d, 3x3x3/s2/p1\n')
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
