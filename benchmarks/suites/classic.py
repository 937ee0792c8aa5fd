"""Classic pooling: jaxpool vs Flax (lax.reduce_window + autodiff) vs PyTorch CPU."""

from __future__ import annotations

import itertools

import flax.linen as nn

import jaxpool
from benchmarks.common import Case


def cases(quick: bool) -> list[Case]:
  n = 2 if quick else 16
  size = 16 if quick else 56
  shape = (n, size, size, 64)
  out = []
  for label, window, stride, pad in (('3x3/s2/p1', (3, 3), 2, 1), ('2x2/s2', (2, 2), 2, 0)):
    pads = ((pad, pad), (pad, pad))

    def torch_max(xt, window=window, stride=stride, pad=pad):
      import torch.nn.functional as F

      return F.max_pool2d(xt, window, stride, pad)

    def torch_avg(xt, window=window, stride=stride, pad=pad):
      import torch.nn.functional as F

      return F.avg_pool2d(xt, window, stride, pad)

    out.append(
      Case(
        op='max_pool',
        label=label,
        shape=shape,
        jax={
          'jaxpool': lambda x, w=window, s=stride, p=pad: jaxpool.max_pool(x, w, s, p),
          'flax': lambda x, w=window, s=stride, p=pads: nn.max_pool(x, w, (s, s), p),
        },
        torch=torch_max,
        torch_channels_last=True,
      )
    )
    out.append(
      Case(
        op='avg_pool',
        label=label,
        shape=shape,
        jax={
          'jaxpool': lambda x, w=window, s=stride, p=pad: jaxpool.avg_pool(x, w, s, p),
          'flax': lambda x, w=window, s=stride, p=pads: nn.avg_pool(x, w, (s, s), p),
        },
        torch=torch_avg,
        torch_channels_last=True,
      )
    )
  # big windows: a tiling 8x8 (window = stride) and an overlapping 7x7 at stride 1
  big = (('8x8/s8', (8, 8), 8, 0), ('7x7/s1/p3', (7, 7), 1, 3))
  for (label, window, stride, pad), op in itertools.product(big, ('max_pool', 'avg_pool')):
    pads = ((pad, pad), (pad, pad))
    out.append(
      Case(
        op=op,
        label=label,
        shape=shape,
        jax={
          'jaxpool': lambda x, o=op, w=window, s=stride, p=pad: getattr(jaxpool, o)(x, w, s, p),
          'flax': lambda x, o=op, w=window, s=stride, p=pads: getattr(nn, o)(x, w, (s, s), p),
        },
        torch=lambda xt, o=op, w=window, s=stride, p=pad: getattr(
          __import__('torch').nn.functional, f'{o}2d'
        )(xt, w, s, p),
        torch_channels_last=True,
      )
    )
  out.append(
    Case(
      op='max_pool',
      label='3x3x3/s2/p1 (3-d)',
      shape=(2, 16, 16, 16, 32) if not quick else (1, 8, 8, 8, 8),
      jax={
        'jaxpool': lambda x: jaxpool.max_pool(x, (3, 3, 3), 2, 1),
        'flax': lambda x: nn.max_pool(x, (3, 3, 3), (2, 2, 2), ((1, 1),) * 3),
      },
      torch=lambda xt: __import__('torch').nn.functional.max_pool3d(xt, 3, 2, 1),
    )
  )
  out.append(
    Case(
      op='max_pool',
      label='3/s2/p1 (1-d)',
      shape=(16, 4096, 64) if not quick else (2, 64, 8),
      jax={
        'jaxpool': lambda x: jaxpool.max_pool(x, (3,), 2, 1),
        'flax': lambda x: nn.max_pool(x, (3,), (2,), ((1, 1),)),
      },
      torch=lambda xt: __import__('torch').nn.functional.max_pool1d(xt, 3, 2, 1),
    )
  )
  return out
