"""Forward mode, timed as users call it: jaxpool vs Flax (``lax.reduce_window`` + JAX's rules)
vs PyTorch's forward-mode AD (``torch.func.jvp``), side by side in one run.

Usage::

  python benchmarks/forward_mode.py > benchmarks/results/forward_mode.md
  python benchmarks/forward_mode.py --reps 15 --shape 8,56,56,64

Three measures per implementation, medians of interleaved reps:

- ``jvp``: ``jit(lambda x, t: jax.jvp(f, (x,), (t,)))``, the value and the tangent
  (what ``jax.jvp`` returns, and what ``jacfwd`` and forward-over-reverse run);
- ``tangent``: the linear function of ``jax.linearize(f, x)``, jitted with its
  residuals passed as arguments (what a second ``jvp`` at the same point costs);
- ``fwd``: the forward alone, for scale.

The tangent ``t`` is a random argument, never a constant XLA could fold.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # sets OMP_WAIT_POLICY before torch loads

GEOMETRIES = (('3x3/s2/p1', 3, 2, 1), ('2x2/s2', 2, 2, 0))


def _implementations(op: str, window: int, stride: int, pad: int):
  import flax.linen as nn

  import jaxpool

  w, s, p = (window, window), (stride, stride), ((pad, pad), (pad, pad))
  ours = getattr(jaxpool, op)
  flax = getattr(nn, op)
  return {
    'jaxpool': lambda x: ours(x, w, stride, pad),
    'flax': lambda x: flax(x, w, s, p),
  }


def _torch_jvp(op: str, window: int, stride: int, pad: int, x, t):
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    return None
  fn = getattr(F, f'{op}2d')
  xt, tt = (common.torch_input(a, 2, channels_last=True) for a in (x, t))

  def call():
    with torch.no_grad():
      return torch.func.jvp(lambda a: fn(a, window, stride, pad), (xt,), (tt,))

  try:
    call()
  except RuntimeError:  # no forward-mode formula in this build
    return None
  return call


def measure(op: str, label: str, window: int, stride: int, pad: int, shape, reps: int):
  """Median ms per call of each implementation and measure, interleaved rep by rep."""
  import jax
  import numpy as np

  rng = np.random.default_rng(0)
  x_np = rng.standard_normal(shape).astype(np.float32)
  t_np = rng.standard_normal(shape).astype(np.float32)
  x, t = jax.numpy.asarray(x_np), jax.numpy.asarray(t_np)
  timed = {}
  for name, f in _implementations(op, window, stride, pad).items():
    _, linear = jax.linearize(f, x)
    timed[(name, 'jvp')] = common.calibrated(
      jax.jit(lambda x, t, f=f: jax.jvp(f, (x,), (t,))), (x, t)
    )
    timed[(name, 'tangent')] = common.calibrated(jax.jit(lambda lin, t: lin(t)), (linear, t))
    timed[(name, 'fwd')] = common.calibrated(jax.jit(f), (x,))
  torch_call = _torch_jvp(op, window, stride, pad, x_np, t_np)
  if torch_call is not None:
    timed[('torch channels_last', 'jvp')] = common.calibrated(torch_call, ())
  return common.interleaved_medians(timed, reps)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--reps', type=int, default=9)
  parser.add_argument('--shape', default='16,56,56,64', help='input shape, NHWC')
  args = parser.parse_args(argv)
  shape = tuple(int(v) for v in args.shape.split(','))
  print(f'# Forward mode (medians of {args.reps} interleaved reps)\n')
  print(f'Machine: {common.machine_line()}\n')
  print(
    f'Input {"x".join(map(str, shape))} float32. `jvp`: value and tangent, as `jax.jvp` returns '
    "them; `tangent`: `jax.linearize`'s linear function alone, its residuals passed as "
    'arguments; `fwd`: the forward alone. PyTorch: `torch.func.jvp` (value and tangent), '
    'channels-last.\n'
  )
  print(
    '| op | geometry | jaxpool jvp ms | Flax jvp ms | PyTorch jvp ms | jvp / Flax | '
    'jaxpool tangent ms | Flax tangent ms | tangent / Flax | jaxpool fwd ms | Flax fwd ms |'
  )
  print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for op in ('max_pool', 'avg_pool'):
    for label, window, stride, pad in GEOMETRIES:
      m = measure(op, label, window, stride, pad, shape, args.reps)
      torch_ms = m.get(('torch channels_last', 'jvp'))
      print(
        f'| {op} | {label} | {m["jaxpool", "jvp"]:.3f} | {m["flax", "jvp"]:.3f} | '
        f'{"-" if torch_ms is None else f"{torch_ms:.3f}"} | '
        f'{m["jaxpool", "jvp"] / m["flax", "jvp"]:.2f} | {m["jaxpool", "tangent"]:.3f} | '
        f'{m["flax", "tangent"]:.3f} | {m["jaxpool", "tangent"] / m["flax", "tangent"]:.2f} | '
        f'{m["jaxpool", "fwd"]:.3f} | {m["flax", "fwd"]:.3f} |',
        flush=True,
      )


if __name__ == '__main__':
  main()
