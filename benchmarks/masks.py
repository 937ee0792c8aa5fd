"""Masked and segment pooling: forward+backward time side by side, in one run.

Usage::

  python benchmarks/masks.py                 # every case (a few minutes on 2 cores)
  python benchmarks/masks.py --rev 008324f   # also mask=None now vs that revision

For each masked case (a random mask, about 30% False, passed as an argument like
the cotangent) it times ``value_and_grad`` of

* jaxpool with ``mask=``,
* the same jaxpool op without a mask (the cost of masking),
* the idiom a Flax user writes: for max, ``nn.max_pool`` of ``where(m, x, -inf)``
  then ``where`` on the pooled mask for empty windows; for avg,
  ``nn.avg_pool(x * m) / nn.avg_pool(m)`` with a zero divisor fixed up.

Segment cases time ``segment_pool`` against ``vmap(jax.ops.segment_max)`` and
``vmap(jax.ops.segment_sum)`` (divided by the segment sizes for the mean) over 16
rows of 4096 x 64 with 8 segments per row. With ``--rev``, ``mask=None`` runs
against that revision's jaxpool (see ``versus.py``): time and the gradient's
compiled HLO size. Writes ``benchmarks/results/masks.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _timer(fn, args, reps):
  import jax

  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3


def _ops(hlo: str) -> int:
  """Instructions in an HLO module's text (metadata such as source paths left out)."""
  return sum(1 for line in hlo.splitlines() if ' = ' in line)


def _fb(f, jax, jnp):
  """``value_and_grad`` of ``sum(f(x, m) * cot)``, jitted; ``cot`` an argument."""

  def loss(x, m, cot):
    return jnp.sum(f(x, m) * cot)

  return jax.jit(jax.value_and_grad(loss))


def masked_cases(jaxpool, nn, jax, jnp):
  def flax_max(window, strides, padding):
    def f(x, m):
      mf = m[..., None]
      y = nn.max_pool(jnp.where(mf, x, -jnp.inf), window, strides, padding)
      any_valid = nn.max_pool(mf.astype(x.dtype), window, strides, padding) > 0
      return jnp.where(any_valid, y, 0)

    return f

  def flax_avg(window, strides, padding):
    def f(x, m):
      mf = m[..., None].astype(x.dtype)
      num = nn.avg_pool(x * mf, window, strides, padding)
      den = nn.avg_pool(mf, window, strides, padding)
      return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0)

    return f

  p2 = ((1, 1), (1, 1))
  p1 = ((1, 1),)
  return {
    'max 3x3/s2/p1': (
      (16, 56, 56, 64),
      lambda x, m: jaxpool.max_pool(x, (3, 3), 2, 1, mask=m),
      lambda x, m: jaxpool.max_pool(x, (3, 3), 2, 1),
      flax_max((3, 3), (2, 2), p2),
    ),
    'max 2x2/s2': (
      (16, 56, 56, 64),
      lambda x, m: jaxpool.max_pool(x, (2, 2), mask=m),
      lambda x, m: jaxpool.max_pool(x, (2, 2)),
      flax_max((2, 2), (2, 2), 'VALID'),
    ),
    'avg 3x3/s2/p1': (
      (16, 56, 56, 64),
      lambda x, m: jaxpool.avg_pool(x, (3, 3), 2, 1, count_include_pad=False, mask=m),
      lambda x, m: jaxpool.avg_pool(x, (3, 3), 2, 1, count_include_pad=False),
      flax_avg((3, 3), (2, 2), p2),
    ),
    'avg 2x2/s2': (
      (16, 56, 56, 64),
      lambda x, m: jaxpool.avg_pool(x, (2, 2), mask=m),
      lambda x, m: jaxpool.avg_pool(x, (2, 2)),
      flax_avg((2, 2), (2, 2), 'VALID'),
    ),
    'max 1-d 3/s2/p1': (
      (16, 4096, 64),
      lambda x, m: jaxpool.max_pool(x, (3,), 2, 1, mask=m),
      lambda x, m: jaxpool.max_pool(x, (3,), 2, 1),
      flax_max((3,), (2,), p1),
    ),
    'avg 1-d 3/s2/p1': (
      (16, 4096, 64),
      lambda x, m: jaxpool.avg_pool(x, (3,), 2, 1, count_include_pad=False, mask=m),
      lambda x, m: jaxpool.avg_pool(x, (3,), 2, 1, count_include_pad=False),
      flax_avg((3,), (2,), p1),
    ),
    'soft 3x3/s2/p1': (
      (16, 56, 56, 64),
      lambda x, m: jaxpool.soft_pool(x, (3, 3), 2, 1, mask=m),
      lambda x, m: jaxpool.soft_pool(x, (3, 3), 2, 1),
      None,
    ),
    'soft 1-d 3/s2/p1': (
      (16, 4096, 64),
      lambda x, m: jaxpool.soft_pool(x, (3,), 2, 1, mask=m),
      lambda x, m: jaxpool.soft_pool(x, (3,), 2, 1),
      None,
    ),
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--reps', type=int, default=9)
  parser.add_argument('--only', default='', help='comma-separated substrings of case names')
  parser.add_argument('--rev', default='', help='also compare mask=None with this git revision')
  args = parser.parse_args(argv)
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np

  import jaxpool
  from benchmarks.common import machine_line

  only = [s for s in args.only.split(',') if s]
  keep = lambda name: not only or any(s in name for s in only)
  rng = np.random.default_rng(0)
  lines = [
    '# Masked and segment pooling, f+b (value_and_grad) medians in ms',
    '',
    f'Machine: {machine_line()}',
    '',
    f'Command: `python benchmarks/masks.py{" --rev " + args.rev if args.rev else ""}`',
    '',
    '| case | masked | unmasked | masked / unmasked | Flax idiom | masked / Flax idiom |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for name, (shape, masked, plain, idiom) in masked_cases(jaxpool, nn, jax, jnp).items():
    if not keep(name):
      continue
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    m = jnp.asarray(rng.random(shape[:-1]) > 0.3)
    cot = jnp.asarray(rng.standard_normal(masked(x, m).shape), jnp.float32)
    fns = [_fb(f, jax, jnp) for f in (masked, plain, idiom) if f is not None]
    for f in fns:
      f(x, m, cot)
    times = [[] for _ in fns]
    for _ in range(args.reps):  # interleaved, rep by rep
      for i, f in enumerate(fns):
        times[i].append(_timer(f, (x, m, cot), 1))
    t = [statistics.median(v) for v in times]
    flax_cols = f'{t[2]:.2f} | {t[0] / t[2]:.2f}' if idiom is not None else '- | -'
    lines.append(f'| {name} | {t[0]:.2f} | {t[1]:.2f} | {t[0] / t[1]:.2f} | {flax_cols} |')
    print(lines[-1], flush=True)

  lines += [
    '',
    '| segment case (16 x 4096 x 64, 8 segments) | segment_pool | vmap(jax.ops) | ratio |',
    '|---|---:|---:|---:|',
  ]
  x = jnp.asarray(rng.standard_normal((16, 4096, 64)), jnp.float32)
  ids = jnp.asarray(np.sort(rng.integers(0, 8, (16, 4096)), axis=1), jnp.int32)

  def ops_mean(x, i):
    total = jax.vmap(lambda x, i: jax.ops.segment_sum(x, i, 8))(x, i)
    count = jax.vmap(lambda i: jax.ops.segment_sum(jnp.ones_like(i, x.dtype), i, 8))(i)
    return total / jnp.maximum(count, 1)[..., None]

  segment = {
    'max': (
      lambda x, i: jaxpool.segment_pool(x, i, 8, 'max'),
      lambda x, i: jax.vmap(lambda x, i: jax.ops.segment_max(x, i, 8))(x, i),
    ),
    'avg': (lambda x, i: jaxpool.segment_pool(x, i, 8, 'avg'), ops_mean),
    'sum': (
      lambda x, i: jaxpool.segment_pool(x, i, 8, 'sum'),
      lambda x, i: jax.vmap(lambda x, i: jax.ops.segment_sum(x, i, 8))(x, i),
    ),
  }
  for name, (ours, theirs) in segment.items():
    if not keep('segment ' + name):
      continue
    cot = jnp.asarray(rng.standard_normal((16, 8, 64)), jnp.float32)
    fns = [_fb(f, jax, jnp) for f in (ours, theirs)]
    times = [[] for _ in fns]
    for f in fns:
      f(x, ids, cot)
    for _ in range(args.reps):
      for k, f in enumerate(fns):
        times[k].append(_timer(f, (x, ids, cot), 1))
    t = [statistics.median(v) for v in times]
    lines.append(f'| segment {name} | {t[0]:.2f} | {t[1]:.2f} | {t[0] / t[1]:.2f} |')
    print(lines[-1], flush=True)

  if args.rev:
    from benchmarks.versus import extract

    sys.path.insert(0, extract(args.rev))
    import jaxpool_then

    lines += [
      '',
      f'mask=None now vs {args.rev}: f+b ms and the gradient program (instructions in its optimised HLO)',
      '',
      '| case | then ms | now ms | now / then | HLO ops then | HLO ops now |',
      '|---|---:|---:|---:|---:|---:|',
    ]
    x = jnp.asarray(rng.standard_normal((16, 56, 56, 64)), jnp.float32)
    none_cases = {
      'max_pool 3x3/s2/p1': lambda J: lambda x, m: J.max_pool(x, (3, 3), 2, 1),
      'avg_pool 3x3/s2/p1': lambda J: lambda x, m: J.avg_pool(x, (3, 3), 2, 1),
      'soft_pool 3x3/s2/p1': lambda J: lambda x, m: J.soft_pool(x, (3, 3), 2, 1),
      'global_pool avg': lambda J: lambda x, m: J.global_pool(x, 'avg'),
    }
    for name, make in none_cases.items():
      fs = [make(jaxpool_then), make(jaxpool)]
      cot = jnp.asarray(rng.standard_normal(fs[1](x, None).shape), jnp.float32)
      fns = [_fb(f, jax, jnp) for f in fs]
      hlo = [_ops(f.lower(x, None, cot).compile().as_text()) for f in fns]
      times = [[] for _ in fns]
      for f in fns:
        f(x, None, cot)
      for _ in range(args.reps):
        for k, f in enumerate(fns):
          times[k].append(_timer(f, (x, None, cot), 1))
      t = [statistics.median(v) for v in times]
      lines.append(
        f'| {name} | {t[0]:.2f} | {t[1]:.2f} | {t[1] / t[0]:.2f} | {hlo[0]} | {hlo[1]} |'
      )
      print(lines[-1], flush=True)

  os.makedirs(os.path.join(ROOT, 'benchmarks', 'results'), exist_ok=True)
  with open(os.path.join(ROOT, 'benchmarks', 'results', 'masks.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
  main()
