"""SoftPool family: jaxpool's custom VJP vs naive autodiff formulations vs PyTorch CPU.

The naive JAX SoftPool is the reference CPU formula, ``avg_pool(x e^x) / avg_pool(e^x)``
with Flax/lax pooling and autodiff (no max subtraction: it overflows for x > 88 in
f32, harmless on N(0, 1) data); PyTorch runs the same formula with autograd.
``jaxpool max_pool`` is listed as the cost of the cheapest pooling on the same input.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

import jaxpool
from benchmarks.common import Case


def _naive_soft(x, window, stride, pad):
  # Exact SoftPool only without padding (zero padding adds e^0 = 1 to the denominator).
  e = jnp.exp(x)
  pads = ((pad, pad),) * len(window)
  return nn.avg_pool(x * e, window, (stride,) * len(window), pads) / nn.avg_pool(
    e, window, (stride,) * len(window), pads
  )


def _torch_soft(xt, window, stride, pad):
  import torch.nn.functional as F

  e = xt.exp()
  return F.avg_pool2d(xt * e, window, stride, pad) / F.avg_pool2d(e, window, stride, pad)


def _naive_ada(x, beta, window):
  # adaPool as plain autodiff (non-overlapping windows): softmax of the DSC
  # logits against the upsampled window mean, blended with the naive SoftPool.
  mean = nn.avg_pool(x, window, window)
  up = jnp.repeat(jnp.repeat(mean, window[0], 1), window[1], 2)
  z = (2 * jnp.abs(x * up) + 1e-6) / (x * x + up * up + 1e-6)
  ez = jnp.exp(z)
  dscw = nn.avg_pool(x * ez, window, window) / nn.avg_pool(ez, window, window)
  return beta * dscw + (1 - beta) * _naive_soft(x, window, window[0], 0)


def cases(quick: bool) -> list[Case]:
  shape = (2, 16, 16, 64) if quick else (16, 56, 56, 64)
  return [
    Case(
      op='soft_pool',
      label='2x2/s2',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.soft_pool(x, (2, 2)),
        'naive jax': lambda x: _naive_soft(x, (2, 2), 2, 0),
        'jaxpool max_pool': lambda x: jaxpool.max_pool(x, (2, 2)),
      },
      torch=lambda xt: _torch_soft(xt, (2, 2), 2, 0),
    ),
    # Overlapping windows (the ResNet stem geometry, without padding so that the
    # naive formula computes the same function).
    Case(
      op='soft_pool',
      label='3x3/s2',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.soft_pool(x, (3, 3), 2),
        'naive jax': lambda x: _naive_soft(x, (3, 3), 2, 0),
        'jaxpool max_pool': lambda x: jaxpool.max_pool(x, (3, 3), 2),
      },
      torch=lambda xt: _torch_soft(xt, (3, 3), 2, 0),
    ),
    Case(
      op='lip_pool',
      label='2x2/s2, logits = x/2',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.lip_pool(x, 0.5 * x, (2, 2)),
        'naive jax': lambda x: (
          nn.avg_pool(x * jnp.exp(0.5 * x), (2, 2), (2, 2))
          / nn.avg_pool(jnp.exp(0.5 * x), (2, 2), (2, 2))
        ),
      },
    ),
    Case(
      op='ada_pool',
      label='2x2/s2, beta 0.5',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.ada_pool(x, 0.5, (2, 2)),
        'naive jax': lambda x: _naive_ada(x, 0.5, (2, 2)),
      },
    ),
  ]
