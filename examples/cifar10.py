"""Train a compact ResNet on CIFAR-10 (or offline digits) with any jaxpool pooling; compare them.

Offline quick start (scikit-learn's digits, no download, a few poolings compared)::

  python examples/cifar10.py --dataset digits --epochs 2 --compare max,avg,soft,lip,ada

CIFAR-10 (downloaded once into ``~/.cache/jaxpool``, or ``--data-dir``)::

  python examples/cifar10.py --pool soft --epochs 30
  python examples/cifar10.py --compare max,avg,soft,ada --epochs 30 --seeds 0,1,2

Data-parallel over every device with ``jax.sharding``: the batch is split over a
1-d ``Mesh`` axis ``'data'``, parameters are replicated, and XLA inserts the
gradient all-reduce. The same command runs on one CPU, on 8 host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``), on a GPU, and on a
multi-host TPU pod (``--distributed``, or detected from the environment, calls
``jax.distributed.initialize()``; each host feeds its slice of every batch).

Reproducibility: the example order of an epoch depends on ``(seed, epoch)``;
the augmentation and pooling keys on ``(seed, global step)``. So a
run stopped after an epoch and continued with ``--resume`` ends with the same
parameters as an uninterrupted one.

Outputs in ``--out`` (default ``runs/<dataset>``): ``<pool>-s<seed>/metrics.json``,
``metrics.csv`` and ``ckpt/`` (orbax) per run; with ``--compare``, also
``compare.md`` (the table), ``compare.json`` and ``compare.png`` (learning curves).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

import cifar_data
from cifar_model import POOLS, ResNet, available_pools, count_params

# Per-dataset defaults for flags left unset: digits is the quick, offline preset.
PRESETS = {
  'digits': dict(epochs=2, width=8, stages=(1, 1, 1), batch_size=32, warmup_epochs=0.25),
  'cifar10': dict(epochs=30, width=32, stages=(2, 2, 2), batch_size=128, warmup_epochs=2.0),
}
# XLA's RngBitGenerator: compiles in a fraction of a second where threefry took seconds per
# random op on CPU (model init took 20 s); bits are reproducible for a fixed program and mesh.
PRNG_IMPL = 'rbg'
OPTIMIZER_DEFAULTS = {
  'sgd': dict(lr=0.1, weight_decay=5e-4),
  'adamw': dict(lr=2e-3, weight_decay=0.05),
}


# ----------------------------------------------------------------------------- arguments


def parse_args(argv=None) -> argparse.Namespace:
  pools = ', '.join(available_pools())
  p = argparse.ArgumentParser(
    description=__doc__.split('\n\n')[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=f'pooling families in this jaxpool: {pools}',
  )
  p.add_argument('--dataset', choices=('cifar10', 'digits'), default='cifar10')
  p.add_argument(
    '--data-dir',
    type=Path,
    default=None,
    help=f'where the CIFAR-10 tarball lives/is downloaded (default {cifar_data.DEFAULT_DATA_DIR})',
  )
  p.add_argument('--pool', default='max', help=f'downsampling layer: {pools}')
  p.add_argument(
    '--compare',
    default=None,
    metavar='P1,P2,...',
    help="train each pooling in turn and write a table and a plot ('all': every one)",
  )
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--seeds', default=None, metavar='S1,S2,...', help='several seeds (mean and std)')
  p.add_argument('--epochs', type=int, default=None, help='digits: 2, cifar10: 30')
  p.add_argument(
    '--batch-size',
    type=int,
    default=None,
    help='global batch, divisible by the device count (digits: 32, cifar10: 128)',
  )
  p.add_argument('--width', type=int, default=None, help='channels of the first stage (8 / 32)')
  p.add_argument('--stages', default=None, help="residual blocks per stage, e.g. '2,2,2'")
  p.add_argument(
    '--optimizer',
    choices=('sgd', 'adamw'),
    default='sgd',
    help='SGD with Nesterov momentum 0.9, or AdamW',
  )
  p.add_argument('--lr', type=float, default=None, help='peak learning rate (sgd 0.1, adamw 2e-3)')
  p.add_argument('--weight-decay', type=float, default=None, help='on conv/dense kernels only')
  p.add_argument('--warmup-epochs', type=float, default=None, help='linear warmup, then cosine')
  p.add_argument('--label-smoothing', type=float, default=0.1)
  p.add_argument(
    '--flip',
    action=argparse.BooleanOptionalAction,
    default=None,
    help='random horizontal flips (default: on for cifar10, off for digits)',
  )
  p.add_argument('--out', type=Path, default=None, help='output folder (default runs/<dataset>)')
  p.add_argument('--resume', action='store_true', help='continue from the latest checkpoint')
  p.add_argument(
    '--stop-after-epoch',
    type=int,
    default=None,
    metavar='E',
    help='stop once epoch E is saved (as if pre-empted); continue with --resume',
  )
  p.add_argument(
    '--distributed',
    action='store_true',
    help='call jax.distributed.initialize() (multi-host; detected for SLURM, '
    'Open MPI and JAX_COORDINATOR_ADDRESS)',
  )
  p.add_argument('--no-progress', dest='progress', action='store_false', help='no progress bars')
  args = p.parse_args(argv)
  for key, value in PRESETS[args.dataset].items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if isinstance(args.stages, str):
    args.stages = tuple(int(s) for s in args.stages.split(','))
  for key, value in OPTIMIZER_DEFAULTS[args.optimizer].items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  args.out = args.out or Path('runs') / args.dataset
  args.seeds = [int(s) for s in args.seeds.split(',')] if args.seeds else [args.seed]
  if args.compare == 'all':
    args.compare = available_pools()
  elif args.compare:
    args.compare = [s.strip() for s in args.compare.split(',') if s.strip()]
  for name in args.compare or [args.pool]:
    if name not in available_pools():
      known = 'not yet in this jaxpool' if name in POOLS else 'unknown'
      p.error(f'pool {name!r} is {known}; choose from {pools}')
  return args


# ----------------------------------------------------------------------------- devices


def maybe_initialize_distributed(requested: bool) -> None:
  """``jax.distributed.initialize()`` when asked, or when a multi-process launcher is detected."""
  env = os.environ
  detected = (
    'JAX_COORDINATOR_ADDRESS' in env
    or int(env.get('SLURM_NTASKS', 1)) > 1
    or int(env.get('OMPI_COMM_WORLD_SIZE', 1)) > 1
  )
  if (requested or detected) and not jax.distributed.is_initialized():
    jax.distributed.initialize()


def data_mesh() -> jax.sharding.Mesh:
  """A 1-d mesh over every device (of every process), axis ``'data'``."""
  return jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))


def check_batch_size(batch_size: int) -> None:
  if batch_size <= 0 or batch_size % jax.device_count():
    raise ValueError(
      f'--batch-size must be a positive multiple of the device count '
      f'({jax.device_count()} devices); got {batch_size}'
    )


def global_batch(sharding: NamedSharding, *arrays: np.ndarray) -> list[jax.Array]:
  """Global arrays sharded on axis 0 from this process's rows of the global batch.

  Every process holds the whole (small) dataset and the same batch indices;
  process ``i`` contributes rows ``[i * n / P, (i + 1) * n / P)``.
  """
  out = []
  for a in arrays:
    local = len(a) // jax.process_count()
    rows = a[jax.process_index() * local : (jax.process_index() + 1) * local]
    out.append(jax.make_array_from_process_local_data(sharding, rows, a.shape))
  return out


def abstract(tree):
  """Shape, dtype and sharding of every array in ``tree`` (for AOT compiles and restores)."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


# ----------------------------------------------------------------------------- training


def make_schedule(args, steps_per_epoch: int) -> optax.Schedule:
  """Linear warmup from 0 to ``--lr`` over ``--warmup-epochs``, then cosine decay to 0."""
  total = args.epochs * steps_per_epoch
  warmup = min(int(args.warmup_epochs * steps_per_epoch), total - 1)
  return optax.warmup_cosine_decay_schedule(0.0, args.lr, warmup, total)


def make_optimizer(args, schedule: optax.Schedule) -> optax.GradientTransformation:
  """SGD-Nesterov or AdamW on ``schedule``; weight decay on conv/dense kernels only."""
  kernels_only = lambda params: jax.tree_util.tree_map_with_path(
    lambda path, _: getattr(path[-1], 'key', None) == 'kernel', params
  )
  if args.optimizer == 'adamw':
    return optax.adamw(schedule, weight_decay=args.weight_decay, mask=kernels_only)
  return optax.chain(
    optax.add_decayed_weights(args.weight_decay, kernels_only),
    optax.sgd(schedule, momentum=0.9, nesterov=True),
  )


class Trainer:
  """Holds the model, optimiser, mesh and the compiled steps of one run."""

  def __init__(self, args, dataset: cifar_data.Dataset, pool: str, seed: int):
    check_batch_size(args.batch_size)
    self.args, self.dataset, self.seed = args, dataset, seed
    self.steps_per_epoch = len(dataset.train_labels) // args.batch_size
    if self.steps_per_epoch == 0:
      raise ValueError(
        f'--batch-size {args.batch_size} exceeds the {len(dataset.train_labels)} training examples'
      )
    self.model = ResNet(
      pool=pool, width=args.width, stages=args.stages, num_classes=len(dataset.classes)
    )
    self.schedule = make_schedule(args, self.steps_per_epoch)
    self.tx = make_optimizer(args, self.schedule)
    self.mesh = data_mesh()
    self.replicated = NamedSharding(self.mesh, P())
    self.batch_sharding = NamedSharding(self.mesh, P('data'))
    init_key, self.train_key = jax.random.split(jax.random.key(seed, impl=PRNG_IMPL))
    self.state = jax.jit(self._init, out_shardings=self.replicated)(init_key)
    self.flip = dataset.flip if args.flip is None else args.flip
    self.mean, self.std = dataset.mean.astype(np.float32), dataset.std.astype(np.float32)
    image = jax.ShapeDtypeStruct(
      (args.batch_size, *dataset.train_images.shape[1:]), jnp.uint8, sharding=self.batch_sharding
    )
    label = jax.ShapeDtypeStruct((args.batch_size,), jnp.int32, sharding=self.batch_sharding)
    weight = jax.ShapeDtypeStruct((args.batch_size,), jnp.float32, sharding=self.batch_sharding)
    abstract_state = abstract(self.state)
    t0 = time.perf_counter()
    self.train_step = (
      jax.jit(self._train_step, out_shardings=self.replicated)
      .lower(abstract_state, image, label)
      .compile()
    )
    self.eval_step = (
      jax.jit(self._eval_step, out_shardings=self.replicated)
      .lower(abstract_state, image, label, weight)
      .compile()
    )
    self.compile_s = time.perf_counter() - t0

  def _init(self, key):
    shape = (1, *self.dataset.train_images.shape[1:])
    variables = self.model.init({'params': key, 'pooling': key}, jnp.zeros(shape), train=False)
    params = variables.pop('params')
    return {
      'step': jnp.zeros((), jnp.int32),
      'params': params,
      'model_state': dict(variables),
      'opt_state': self.tx.init(params),
    }

  def _normalize(self, images):
    return (images.astype(jnp.float32) / 255.0 - self.mean) / self.std

  def _train_step(self, state, images, labels):
    """One SGD step on a global batch; keys from ``fold_in(train_key, step)``."""
    aug_key, pool_key = jax.random.split(jax.random.fold_in(self.train_key, state['step']))
    x = self._normalize(cifar_data.augment(aug_key, images, flip=self.flip))
    targets = optax.smooth_labels(
      jax.nn.one_hot(labels, len(self.dataset.classes)), self.args.label_smoothing
    )

    def loss_fn(params):
      logits, model_state = self.model.apply(
        {'params': params, **state['model_state']},
        x,
        train=True,
        rngs={'pooling': pool_key},
        mutable=list(state['model_state']),
      )
      return optax.softmax_cross_entropy(logits, targets).mean(), (logits, model_state)

    (loss, (logits, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state['params']
    )
    updates, opt_state = self.tx.update(grads, state['opt_state'], state['params'])
    new_state = {
      'step': state['step'] + 1,
      'params': optax.apply_updates(state['params'], updates),
      'model_state': model_state,
      'opt_state': opt_state,
    }
    metrics = {
      'loss': loss * len(labels),
      'correct': jnp.sum(jnp.argmax(logits, -1) == labels),
      'count': jnp.asarray(len(labels), jnp.float32),
    }
    return new_state, metrics

  def _eval_step(self, state, images, labels, weights):
    logits = self.model.apply(
      {'params': state['params'], **state['model_state']}, self._normalize(images), train=False
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
      'loss': jnp.sum(loss * weights),
      'correct': jnp.sum((jnp.argmax(logits, -1) == labels) * weights),
      'count': jnp.sum(weights),
    }

  def train_epoch(self, epoch: int, progress: bool) -> dict:
    """One pass over the training set in the order fixed by ``(seed, epoch)``."""
    d, bs = self.dataset, self.args.batch_size
    order = cifar_data.epoch_order(len(d.train_labels), self.seed, epoch)
    totals = None
    t0 = time.perf_counter()
    bar = tqdm(
      range(self.steps_per_epoch),
      desc=f'epoch {epoch + 1}/{self.args.epochs}',
      leave=False,
      disable=not progress,
      dynamic_ncols=True,
    )
    for i in bar:
      idx = order[i * bs : (i + 1) * bs]
      images, labels = global_batch(self.batch_sharding, d.train_images[idx], d.train_labels[idx])
      self.state, metrics = self.train_step(self.state, images, labels)
      totals = metrics if totals is None else jax.tree.map(jnp.add, totals, metrics)
      if progress and (i % 10 == 0 or i == self.steps_per_epoch - 1):
        t = jax.device_get(totals)
        bar.set_postfix(
          loss=f'{t["loss"] / t["count"]:.3f}', acc=f'{t["correct"] / t["count"]:.3f}'
        )
    totals = jax.device_get(totals)
    return {
      'train_loss': float(totals['loss'] / totals['count']),
      'train_acc': float(totals['correct'] / totals['count']),
      'train_s': time.perf_counter() - t0,
    }

  def evaluate(self) -> dict:
    d = self.dataset
    t0 = time.perf_counter()
    totals = None
    for batch in cifar_data.eval_batches(d.test_images, d.test_labels, self.args.batch_size):
      metrics = self.eval_step(self.state, *global_batch(self.batch_sharding, *batch))
      totals = metrics if totals is None else jax.tree.map(jnp.add, totals, metrics)
    totals = jax.device_get(totals)
    return {
      'test_loss': float(totals['loss'] / totals['count']),
      'test_acc': float(totals['correct'] / totals['count']),
      'eval_s': time.perf_counter() - t0,
    }

  def learning_rate(self) -> float:
    return float(self.schedule(int(self.state['step'])))


def run_one(args, dataset: cifar_data.Dataset, pool: str, seed: int) -> dict:
  """Trains (or resumes) one run; writes its metrics and checkpoints; returns a summary."""
  run_dir = args.out / f'{pool}-s{seed}'
  main_process = jax.process_index() == 0
  trainer = Trainer(args, dataset, pool, seed)
  ckpt_dir = (run_dir / 'ckpt').absolute()
  if not args.resume and ckpt_dir.exists():
    if main_process:
      shutil.rmtree(ckpt_dir)  # a fresh run: old checkpoints would shadow the new ones
    multihost_utils.sync_global_devices('fresh checkpoint directory')
  manager = ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(max_to_keep=2))
  history = []
  if args.resume and manager.latest_step() is not None:
    restored = manager.restore(
      manager.latest_step(),
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract(trainer.state)), meta=ocp.args.JsonRestore()
      ),
    )
    trainer.state, history = restored.state, restored.meta['history']
    if main_process:
      print(f'[{pool} s{seed}] resumed after epoch {len(history)} from {ckpt_dir}')
  params = count_params(trainer.state['params'])
  progress = args.progress and main_process
  for epoch in range(len(history), args.epochs):
    record = {
      'epoch': epoch + 1,
      **trainer.train_epoch(epoch, progress),
      **trainer.evaluate(),
      'lr': trainer.learning_rate(),
    }
    history.append(record)
    manager.save(
      epoch + 1,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(trainer.state), meta=ocp.args.JsonSave({'history': history})
      ),
    )
    if main_process:
      print(
        f'[{pool} s{seed}] epoch {epoch + 1}/{args.epochs}  '
        f'train loss {record["train_loss"]:.4f} acc {record["train_acc"]:.4f}  '
        f'test loss {record["test_loss"]:.4f} acc {record["test_acc"]:.4f}  '
        f'({record["train_s"]:.1f}s)',
        flush=True,
      )
      write_metrics(run_dir, history)
    if args.stop_after_epoch is not None and epoch + 1 >= args.stop_after_epoch:
      break
  manager.wait_until_finished()
  manager.close()
  return {
    'pool': pool,
    'seed': seed,
    'params': params,
    'compile_s': trainer.compile_s,
    'devices': jax.device_count(),
    'history': history,
    'state': trainer.state,
  }


def write_metrics(run_dir: Path, history: list[dict]) -> None:
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / 'metrics.json').write_text(json.dumps(history, indent=1))
  with open(run_dir / 'metrics.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)


# ----------------------------------------------------------------------------- comparison


def summarize(runs: list[dict]) -> list[dict]:
  """One row per pooling: mean (and std over seeds) of final/best test accuracy and time."""
  rows = []
  for pool in dict.fromkeys(r['pool'] for r in runs):
    group = [r for r in runs if r['pool'] == pool]
    final = [r['history'][-1]['test_acc'] for r in group]
    best = [max(h['test_acc'] for h in r['history']) for r in group]
    epoch_s = [h['train_s'] for r in group for h in r['history']]
    rows.append(
      {
        'pool': pool,
        'seeds': [r['seed'] for r in group],
        'params': group[0]['params'],
        'final_acc': statistics.mean(final),
        'final_std': statistics.stdev(final) if len(final) > 1 else 0.0,
        'best_acc': statistics.mean(best),
        'epoch_s': statistics.mean(epoch_s),
        'compile_s': statistics.mean(r['compile_s'] for r in group),
      }
    )
  return rows


def markdown_table(rows: list[dict]) -> str:
  lines = [
    '| pooling | params | final test acc (%) | best test acc (%) | train s/epoch | compile s |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    final = f'{100 * r["final_acc"]:.2f}'
    if len(r['seeds']) > 1:
      final += f' ± {100 * r["final_std"]:.2f}'
    lines.append(
      f'| {r["pool"]} | {r["params"]:,} | {final} | {100 * r["best_acc"]:.2f} | '
      f'{r["epoch_s"]:.2f} | {r["compile_s"]:.1f} |'
    )
  return '\n'.join(lines)


def plot_curves(runs: list[dict], path: Path) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
  for pool in dict.fromkeys(r['pool'] for r in runs):
    group = [r['history'] for r in runs if r['pool'] == pool]
    epochs = [h['epoch'] for h in group[0]]
    mean = lambda k: np.mean([[h[k] for h in hist] for hist in group], axis=0)
    ax_loss.plot(epochs, mean('train_loss'), marker='o', label=pool)
    ax_acc.plot(epochs, 100 * mean('test_acc'), marker='o', label=pool)
  ax_loss.set(xlabel='epoch', ylabel='train loss (label-smoothed)', title='training loss')
  ax_acc.set(xlabel='epoch', ylabel='test accuracy (%)', title='test accuracy')
  ax_acc.legend()
  for ax in (ax_loss, ax_acc):
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_comparison(args, dataset: cifar_data.Dataset, runs: list[dict]) -> str:
  """Writes ``compare.md``, ``compare.json`` and ``compare.png`` to ``--out``; returns the table."""
  rows = summarize(runs)
  table = markdown_table(rows)
  header = (
    f'{dataset.name}, {args.epochs} epochs, width {args.width}, stages {args.stages}, '
    f'batch {args.batch_size}, {args.optimizer} lr {args.lr}, seeds {args.seeds}, '
    f'{jax.device_count()} x {jax.devices()[0].platform}'
  )
  (args.out / 'compare.md').write_text(f'{header}\n\n{table}\n')
  (args.out / 'compare.json').write_text(
    json.dumps(
      {
        'config': header,
        'rows': rows,
        'runs': [{k: r[k] for k in ('pool', 'seed', 'history')} for r in runs],
      },
      indent=1,
    )
  )
  plot_curves(runs, args.out / 'compare.png')
  return table


def main(argv=None) -> dict:
  """Runs the command line; returns ``{'runs': [...], 'table': str | None}`` (for tests)."""
  args = parse_args(argv)
  maybe_initialize_distributed(args.distributed)
  try:
    dataset = cifar_data.load(args.dataset, args.data_dir, progress=args.progress)
  except RuntimeError as e:  # download/checksum/extraction: the message says what to do
    raise SystemExit(f'error: {e}') from e
  args.out.mkdir(parents=True, exist_ok=True)
  runs = [
    run_one(args, dataset, pool, seed)
    for pool in (args.compare or [args.pool])
    for seed in args.seeds
  ]
  table = None
  if args.compare and jax.process_index() == 0:
    table = write_comparison(args, dataset, runs)
    print(f'\n{table}\n\nwritten to {args.out / "compare.md"} and compare.png')
  return {'runs': runs, 'table': table}


if __name__ == '__main__':
  main()
