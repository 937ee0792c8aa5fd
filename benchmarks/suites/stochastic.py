"""Stochastic, mixed, S3 and fractional max pooling: training-mode cost against max pooling.

``max_pool`` (jaxpool, custom VJP) is the baseline: the ratios say what each random
pooling costs over the cheapest pooling of the same input, in training mode (a fixed
key) and, where it differs in kind, evaluation mode. Naive formulations: stochastic
pooling by ``jax.random.categorical`` over explicit patches (autodiff through a
gather), mixed pooling by autodiff through Flax's pools. PyTorch has fractional max
pooling only.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

import jaxpool
from benchmarks.common import Case

KEY = jax.random.key(0)


def _naive_stochastic(x, k, s, p):
  """Categorical over the window's patches (zero padding has probability 0)."""
  n, _, _, c = x.shape
  patches = lax.conv_general_dilated_patches(
    x,
    (k, k),
    (s, s),
    ((p, p), (p, p)),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    precision=lax.Precision.HIGHEST,
  )
  oh, ow = patches.shape[1:3]
  patches = patches.reshape(n, oh, ow, c, k * k)  # feature dim is (C, kh, kw)
  a = jnp.maximum(lax.stop_gradient(patches), 0)
  logits = jnp.where(a > 0, jnp.log(jnp.where(a > 0, a, 1)), -jnp.inf)
  choice = jax.random.categorical(KEY, logits, axis=-1)
  picked = jnp.take_along_axis(patches, choice[..., None], axis=-1)[..., 0]
  return jnp.where(jnp.any(a > 0, axis=-1), picked, 0)


def _naive_mixed(x, k, s, p):
  pads = ((p, p), (p, p))
  m = nn.max_pool(x, (k, k), (s, s), pads)
  a = nn.avg_pool(x, (k, k), (s, s), pads, count_include_pad=False)
  use_max = jax.random.bernoulli(KEY, 0.5, (x.shape[0], 1, 1, x.shape[-1]))
  return jnp.where(use_max, m, a)


def _torch_fractional(xt, k, out):
  import torch.nn.functional as F

  return F.fractional_max_pool2d(xt, k, output_size=out)


def cases(quick: bool) -> list[Case]:
  shape = (2, 16, 16, 8) if quick else (16, 56, 56, 64)
  out = []
  for k, s, p, label in [(2, 2, 0, '2x2/s2'), (3, 2, 1, '3x3/s2/p1')]:
    geo = ((k, k), s, p)
    base = {'max_pool': lambda x, geo=geo: jaxpool.max_pool(x, *geo)}
    out += [
      Case(
        op='stochastic_pool',
        label=label,
        shape=shape,
        baseline='max_pool',
        jax={
          **base,
          'jaxpool train': lambda x, geo=geo: jaxpool.stochastic_pool(jnp.abs(x), *geo, key=KEY),
          'jaxpool eval': lambda x, geo=geo: jaxpool.stochastic_pool(jnp.abs(x), *geo),
          'naive jax train': lambda x, k=k, s=s, p=p: _naive_stochastic(jnp.abs(x), k, s, p),
        },
      ),
      Case(
        op='mixed_pool',
        label=label,
        shape=shape,
        baseline='max_pool',
        jax={
          **base,
          'jaxpool train': lambda x, geo=geo: jaxpool.mixed_pool(x, *geo, key=KEY),
          'jaxpool eval': lambda x, geo=geo: jaxpool.mixed_pool(x, *geo),
          'naive jax train': lambda x, k=k, s=s, p=p: _naive_mixed(x, k, s, p),
        },
      ),
    ]
  out.append(
    Case(
      op='s3_pool',
      label='2x2, grid 2 / grid 4',
      shape=shape,
      baseline='max_pool',
      jax={
        'max_pool': lambda x: jaxpool.max_pool(x, (2, 2)),
        'jaxpool train g2': lambda x: jaxpool.s3_pool(x, (2, 2), key=KEY),
        'jaxpool train g4': lambda x: jaxpool.s3_pool(x, (2, 2), 4, key=KEY),
        'jaxpool eval': lambda x: jaxpool.s3_pool(x, (2, 2)),
      },
    )
  )
  frac = tuple(int(v * 0.7) for v in shape[1:3])
  out.append(
    Case(
      op='fractional_max_pool',
      label=f'2x2, out {frac[0]}x{frac[1]}',
      shape=shape,
      baseline='max_pool',
      jax={
        'max_pool': lambda x: jaxpool.max_pool(x, (2, 2)),
        'jaxpool': lambda x: jaxpool.fractional_max_pool(x, (2, 2), frac, key=KEY),
      },
      torch=lambda xt: _torch_fractional(xt, 2, frac),
    )
  )
  return out
