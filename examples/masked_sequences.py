"""Variable-length sequences: pooling the padding as data versus masking it.

A small 1-d conv classifier over noisy sums of two sinusoids whose class is the pair
of frequencies; lengths drawn from 24 to 128, batches zero-padded to 128. Each
pooling (max, avg) is trained twice, once pooling the padded positions as data and
once with ``mask=``, then evaluated on the same test sequences padded to 128 and to
192. Masked pooling gives the same logits at both lengths; pooling the padding
does not. Runs in about a minute on a CPU::

  python examples/masked_sequences.py [--steps 300]
"""

from __future__ import annotations

import argparse
import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxpool

FREQS = [(3, 7), (3, 11), (5, 7), (5, 11)]  # cycles over a 128-sample span, one pair per class
MAX_LEN = 128


def make_data(n: int, seed: int):
  """``x`` ``(n, MAX_LEN, 1)`` zero-padded, ``lengths`` ``(n,)``, ``labels`` ``(n,)``."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, len(FREQS), n)
  lengths = rng.integers(24, MAX_LEN + 1, n)
  t = np.arange(MAX_LEN) / MAX_LEN
  x = np.zeros((n, MAX_LEN, 1), np.float32)
  for i, (label, length) in enumerate(zip(labels, lengths)):
    f1, f2 = FREQS[label]
    phase = rng.uniform(0, 2 * np.pi, 2)
    signal = np.sin(2 * np.pi * f1 * t + phase[0]) + np.sin(2 * np.pi * f2 * t + phase[1])
    x[i, :length, 0] = (signal + 0.3 * rng.standard_normal(MAX_LEN))[:length]
  return x, lengths, labels


class Classifier(nn.Module):
  """conv -> relu -> pool (3, stride 2, ceil_mode) -> conv -> relu -> global pool -> dense."""

  pooling: str  # 'max' or 'avg'
  masked: bool

  @nn.compact
  def __call__(self, x, mask):
    if self.pooling == 'max':
      local = jaxpool.max_pool
    else:  # padding must not count either, or the divisor depends on the padded length
      local = functools.partial(jaxpool.avg_pool, count_include_pad=False)
    h = nn.relu(nn.Conv(16, (7,))(x))
    # ceil_mode: the window that starts on a sequence's last position exists whatever the
    # padded length (without it, a sequence that fills the array loses that window)
    if self.masked:  # outputs with no real position in their window are 0
      h, mask = local(h, (3,), 2, 1, ceil_mode=True, mask=mask, return_mask=True)
    else:
      h = local(h, (3,), 2, 1, ceil_mode=True)
    h = nn.relu(nn.Conv(32, (5,))(h))
    if self.masked:
      h = jaxpool.global_pool(h, self.pooling, mask=mask)
    else:
      h = jaxpool.global_pool(h, self.pooling)
    return nn.Dense(len(FREQS))(h)


def train(model, x, lengths, labels, steps: int, seed: int = 0):
  mask = jnp.arange(MAX_LEN)[None] < jnp.asarray(lengths)[:, None]
  params = model.init(jax.random.key(seed), jnp.asarray(x[:2]), mask[:2])
  opt = optax.adam(3e-3)
  state = opt.init(params)

  @jax.jit
  def step(params, state, xb, mb, yb):
    def loss(p):
      logits = model.apply(p, xb, mb)
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state, value

  rng = np.random.default_rng(seed)
  for _ in range(steps):
    idx = rng.integers(0, len(x), 64)
    params, state, _ = step(params, state, jnp.asarray(x[idx]), mask[idx], jnp.asarray(labels[idx]))
  return params


def evaluate(model, params, x, lengths, labels):
  """Accuracy at length 128, and how the logits change when padded to 192 instead."""
  logits = {}
  for total in (MAX_LEN, MAX_LEN + 64):
    xp = np.zeros((len(x), total, 1), np.float32)
    xp[:, :MAX_LEN] = x
    mask = jnp.arange(total)[None] < jnp.asarray(lengths)[:, None]
    logits[total] = np.asarray(jax.jit(model.apply)(params, jnp.asarray(xp), mask))
  a, b = logits[MAX_LEN], logits[MAX_LEN + 64]
  accuracy = float((a.argmax(-1) == labels).mean())
  changed = float((a.argmax(-1) != b.argmax(-1)).mean())
  return accuracy, changed, float(np.abs(a - b).max())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=300)
  args = parser.parse_args(argv)
  x, lengths, labels = make_data(2048, seed=0)
  xt, lt, yt = make_data(512, seed=1)
  print(
    '| pooling | padding | test accuracy | predictions changed at length 192 | max logit change |'
  )
  print('|---|---|---:|---:|---:|')
  start = time.perf_counter()
  for pooling in ('max', 'avg'):
    for masked in (False, True):
      model = Classifier(pooling, masked)
      params = train(model, x, lengths, labels, args.steps)
      accuracy, changed, delta = evaluate(model, params, xt, lt, yt)
      how = 'masked' if masked else 'pooled as data'
      print(f'| {pooling} | {how} | {accuracy:.3f} | {changed:.3f} | {delta:.2e} |', flush=True)
  print(f'\n{time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
  main()
