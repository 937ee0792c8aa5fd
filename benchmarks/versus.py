"""Before/after: this checkout's jaxpool against an earlier git revision, side by side in one run.

Usage::

  python benchmarks/versus.py --rev 1fc44b7            # every case (minutes)
  python benchmarks/versus.py --rev 1fc44b7 --only max3,soft2 --reps 15

The revision's ``jaxpool/`` is extracted with ``git archive`` into a temporary
folder and imported as ``jaxpool_then`` (its imports renamed), so both versions
run in one process, interleaved rep by rep on the same input. For each case it
prints the median forward and forward+backward time of each version (the value and
its gradient, as ``jax.vjp`` gives them; a random cotangent passed as an argument,
never a constant), their ratio, the compiled temp memory of that program
(``memory_analysis().temp_size_in_bytes``), its compile time, and the current
version's ``jvp`` tangent time next to Flax's ``jvp`` of ``nn.max_pool`` /
``nn.avg_pool`` where Flax has the op.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def extract(rev: str) -> str:
  """``jaxpool/`` at ``rev`` as package ``jaxpool_then`` in a temp folder; returns the folder."""
  blob = subprocess.run(
    ['git', '-C', ROOT, 'archive', rev, 'jaxpool'], check=True, capture_output=True
  ).stdout
  folder = tempfile.mkdtemp(prefix='jaxpool_then_')
  with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
    for member in tar.getmembers():
      if not member.isfile():
        continue
      text = tar.extractfile(member).read().decode()
      text = re.sub(r'\bjaxpool\b', 'jaxpool_then', text)
      path = os.path.join(folder, member.name.replace('jaxpool', 'jaxpool_then', 1))
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, 'w') as f:
        f.write(text)
  return folder


def cases(J, jnp, jax):
  key = jax.random.key(3)

  def stripes(x):  # segment labels: position index mod 8, the same in every example
    n, h, w = x.shape[:3]
    return jnp.broadcast_to((jnp.arange(h * w) % 8).reshape(h, w), (n, h, w))

  lift = (jnp.asarray([0.5, 0.5]), jnp.asarray([0.25, 0.25]))  # LiftPool's P and U filters
  return {
    'max_pool 3x3/s2/p1': lambda x: J.max_pool(x, (3, 3), 2, 1),
    'max_pool 2x2': lambda x: J.max_pool(x, (2, 2)),
    'max_pool 5x5/s1/p2 (4 images)': lambda x: J.max_pool(x[:4], (5, 5), 1, 2),
    'max_pool 8x8/s8': lambda x: J.max_pool(x, (8, 8)),
    'max_pool 7x7/s1/p3': lambda x: J.max_pool(x, (7, 7), 1, 3),
    'avg_pool 7x7/s1/p3': lambda x: J.avg_pool(x, (7, 7), 1, 3),
    'max_pool 3x3/s1/p1': lambda x: J.max_pool(x, (3, 3), 1, 1),
    'avg_pool 3x3/s1/p1': lambda x: J.avg_pool(x, (3, 3), 1, 1),
    'max_pool 4x4/s2/p1': lambda x: J.max_pool(x, (4, 4), 2, 1),
    'avg_pool 3x3/s2/p1': lambda x: J.avg_pool(x, (3, 3), 2, 1),
    'avg_pool 2x2': lambda x: J.avg_pool(x, (2, 2)),
    'lp_pool p=2 2x2': lambda x: J.lp_pool(jnp.abs(x), 2.0, (2, 2)),
    'soft_pool 2x2': lambda x: J.soft_pool(x, (2, 2)),
    'soft_pool 3x3/s2/p1': lambda x: J.soft_pool(x, (3, 3), 2, 1),
    'soft_pool 4x4/s2/p1 (4 images)': lambda x: J.soft_pool(x[:4], (4, 4), 2, 1),
    'soft_pool 8x8/s8': lambda x: J.soft_pool(x, (8, 8)),
    'lip_pool 3x3/s2/p1': lambda x: J.lip_pool(x, 0.5 * x, (3, 3), 2, 1),
    'edscw_pool 2x2': lambda x: J.edscw_pool(x, (2, 2)),
    'idw_pool 2x2': lambda x: J.idw_pool(x, (2, 2)),
    'ada_pool 3x3/s2/p1': lambda x: J.ada_pool(x, 0.5, (3, 3), 2, 1),
    'max_avg_pool 3x3/s2/p1': lambda x: J.max_avg_pool(x, 0.5, (3, 3), 2, 1),
    'gated_pool 3x3/s2/p1': lambda x: J.gated_pool(x, jnp.full((3, 3), 0.1), (3, 3), 2, 1),
    'dpp_pool 2x2': lambda x: J.dpp_pool(x, 1.0, 1.0, (2, 2)),
    'dpp_pool 3x3/s2/p1': lambda x: J.dpp_pool(x, 1.0, 1.0, (3, 3), 2, 1),
    'blur_pool': lambda x: J.blur_pool(x),
    'max_blur_pool': lambda x: J.max_blur_pool(x),
    'adaptive_max_pool 56->7': lambda x: J.adaptive_max_pool(x, (7, 7)),
    'adaptive_avg_pool 56->7': lambda x: J.adaptive_avg_pool(x, (7, 7)),
    'global_pool max': lambda x: J.global_pool(x, 'max'),
    'stochastic_pool 2x2 train': lambda x: J.stochastic_pool(jnp.abs(x), (2, 2), key=key),
    'stochastic_pool 3x3/s2/p1 eval': lambda x: J.stochastic_pool(jnp.abs(x), (3, 3), 2, 1),
    'mixed_pool 2x2 train': lambda x: J.mixed_pool(x, (2, 2), key=key),
    's3_pool 2x2 train': lambda x: J.s3_pool(x, (2, 2), key=key),
    'fractional_max_pool ->40': lambda x: J.fractional_max_pool(
      x, (2, 2), output_size=(40, 40), key=key
    ),
    'min_pool 3x3/s2/p1': lambda x: J.min_pool(x, (3, 3), 2, 1),
    'max_unpool 2x2': lambda x: J.max_unpool(*J.max_pool(x, (2, 2), return_indices=True), (2, 2)),
    'weighted_unpool 2x2': lambda x: J.weighted_unpool(
      *J.soft_pool(x, (2, 2), return_weights=True), (2, 2)
    ),
    'tree_pool 2x2': lambda x: J.tree_pool(
      x, jnp.full((2, 2, 2), 0.1), jnp.full((1, 2, 2), 0.2), (2, 2)
    ),
    'channel_pool max': lambda x: J.channel_pool(x, 'max'),
    'spatial_pyramid_pool 1,2,4': lambda x: J.spatial_pyramid_pool(x, (1, 2, 4)),
    'segment_pool avg (8 segments)': lambda x: J.segment_pool(x, stripes(x), 8),
    'lift_down_pool': lambda x: J.lift_down_pool(x, lift[0], lift[1]),
    'lift_up_pool': lambda x: J.lift_up_pool(*J.lift_down_pool(x, *lift), *lift),
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rev', required=True, help='the git revision to compare against')
  parser.add_argument('--only', default='', help='comma-separated substrings of case names')
  parser.add_argument('--reps', type=int, default=9)
  parser.add_argument('--shape', default='16,56,56,64')
  args = parser.parse_args(argv)
  sys.path.insert(0, extract(args.rev))
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import jaxpool_then

  import jaxpool
  from benchmarks import common

  shape = tuple(int(v) for v in args.shape.split(','))
  x = jax.random.normal(jax.random.key(0), shape)
  flax_ops = {
    'max_pool 3x3/s2/p1': lambda x: nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))),
    'max_pool 2x2': lambda x: nn.max_pool(x, (2, 2), (2, 2)),
    'avg_pool 3x3/s2/p1': lambda x: nn.avg_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))),
    'avg_pool 2x2': lambda x: nn.avg_pool(x, (2, 2), (2, 2)),
  }

  def prepare(f):
    leaves, tree = jax.tree.flatten(jax.eval_shape(f, x))  # lift_down_pool gives a pair
    g = jax.tree.unflatten(
      tree, [jax.random.normal(jax.random.key(1 + i), o.shape) for i, o in enumerate(leaves)]
    )
    t = jax.random.normal(jax.random.key(2), x.shape)
    start = time.perf_counter()

    def value_and_gradient(x, g):  # what a training step computes: the value is not dead code
      y, vjp = jax.vjp(f, x)
      return y, vjp(g)[0]

    fb = jax.jit(value_and_gradient).lower(x, g).compile()
    compile_s = time.perf_counter() - start
    fwd = jax.jit(f).lower(x).compile()
    try:
      jvp = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1]).lower(x, t).compile()
    except TypeError:  # a custom_vjp: no forward mode
      jvp = None
    calls = {'fwd': (fwd, (x,)), 'f+b': (fb, (x, g))}
    if jvp is not None:
      calls['jvp'] = (jvp, (x, t))
    timed = {m: common.calibrated(fn, a) for m, (fn, a) in calls.items()}
    hlo_ops = sum(
      1
      for line in fb.as_text().splitlines()
      if ' = ' in line and not line.lstrip().startswith('ROOT')
    )
    return timed, fb.memory_analysis().temp_size_in_bytes / 2**20, compile_s, hlo_ops

  print(
    f'# jaxpool now vs {args.rev} (input {"x".join(map(str, shape))} f32; medians of '
    f'{args.reps} interleaved reps of ~20 ms each)\n'
  )
  print(f'Machine: {common.machine_line()}\n')
  print(
    '| case | f+b ms then | f+b ms now | now / then | fwd now / then | f+b temp MiB then -> now '
    '| f+b compile s then -> now | f+b HLO ops then -> now | jvp ms now | Flax jvp ms | jvp / Flax jvp |'
  )
  print('|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|')
  only = [s for s in args.only.split(',') if s]
  then_cases, now_cases = cases(jaxpool_then, jnp, jax), cases(jaxpool, jnp, jax)
  for name in now_cases:
    if only and not any(o in name for o in only):
      continue
    runs = {'then': prepare(then_cases[name]), 'now': prepare(now_cases[name])}
    if name in flax_ops:
      runs['flax'] = prepare(flax_ops[name])
    flat = common.interleaved_medians(
      {(k, m): c for k, (calls, *_) in runs.items() for m, c in calls.items()}, args.reps
    )
    med = {k: {m: flat[k, m] for m in calls} for k, (calls, *_) in runs.items()}
    then, now = med['then'], med['now']
    flax_jvp = med['flax'].get('jvp') if 'flax' in med else None
    jvp = now.get('jvp')
    cells = [
      f'{then["f+b"]:.2f}',
      f'{now["f+b"]:.2f}',
      f'{now["f+b"] / then["f+b"]:.2f}',
      f'{now["fwd"] / then["fwd"]:.2f}',
      f'{runs["then"][1]:.1f} -> {runs["now"][1]:.1f}',
      f'{runs["then"][2]:.2f} -> {runs["now"][2]:.2f}',
      f'{runs["then"][3]} -> {runs["now"][3]}',
      '-' if jvp is None else f'{jvp:.2f}',
      '-' if flax_jvp is None else f'{flax_jvp:.2f}',
      '-' if flax_jvp is None or jvp is None else f'{jvp / flax_jvp:.2f}',
    ]
    print(f'| {name} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
