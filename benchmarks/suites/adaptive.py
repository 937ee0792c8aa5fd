"""Adaptive and global pooling: jaxpool vs naive JAX (lax autodiff) vs PyTorch CPU."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from benchmarks.common import Case


def _torch():
  import torch.nn.functional as F

  return F


def _naive_adaptive_avg(x, out):
  """Per-bin slices and means (PyTorch's loop written in JAX; autodiff backward)."""
  _, h, w, _ = x.shape
  rows = []
  for i in range(out):
    h0, h1 = i * h // out, -(-(i + 1) * h // out)
    cols = []
    for j in range(out):
      w0, w1 = j * w // out, -(-(j + 1) * w // out)
      cols.append(jnp.mean(x[:, h0:h1, w0:w1], axis=(1, 2)))
    rows.append(jnp.stack(cols, axis=1))
  return jnp.stack(rows, axis=1)


def _with_nan(x: np.ndarray) -> np.ndarray:
  """A copy of the NumPy input with one NaN, the input that the "a NaN in x" rows are timed
  on: the max ops take their NaN-exact path (the rule holds; the time is reported)."""
  x = x.copy()
  x[0, 1, 2, 3] = np.nan
  return x


_NAN = 'jaxpool, a NaN in x'


def cases(quick: bool) -> list[Case]:
  n, size, c = (2, 16, 32) if quick else (16, 56, 256)
  shape = (n, size, size, c)
  out = 4 if quick else 7
  odd = (2, 14, 14, 32) if quick else (16, 14, 14, 512)
  return [
    Case(
      op='adaptive_avg_pool',
      label=f'{size}->{out}',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.adaptive_avg_pool(x, (out, out)),
        'naive jax': lambda x: _naive_adaptive_avg(x, out),
      },
      torch=lambda xt: _torch().adaptive_avg_pool2d(xt, out),
      torch_channels_last=True,
    ),
    Case(
      op='adaptive_max_pool',
      label=f'{size}->{out}',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.adaptive_max_pool(x, (out, out)),
        _NAN: lambda x: jaxpool.adaptive_max_pool(x, (out, out)),
      },
      torch=lambda xt: _torch().adaptive_max_pool2d(xt, out),
      torch_channels_last=True,
      inputs={_NAN: _with_nan},
    ),
    Case(
      op='adaptive_avg_pool',
      label='14->5 (overlapping)',
      shape=odd,
      jax={
        'jaxpool': lambda x: jaxpool.adaptive_avg_pool(x, (5, 5)),
        'naive jax': lambda x: _naive_adaptive_avg(x, 5),
      },
      torch=lambda xt: _torch().adaptive_avg_pool2d(xt, 5),
      torch_channels_last=True,
    ),
    Case(
      op='adaptive_max_pool',
      label='14->5 (overlapping)',
      shape=odd,
      jax={
        'jaxpool': lambda x: jaxpool.adaptive_max_pool(x, (5, 5)),
        _NAN: lambda x: jaxpool.adaptive_max_pool(x, (5, 5)),
      },
      torch=lambda xt: _torch().adaptive_max_pool2d(xt, 5),
      torch_channels_last=True,
      inputs={_NAN: _with_nan},
    ),
    Case(
      op='global_pool',
      label='avg',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.global_pool(x, 'avg'),
        'jnp.mean': lambda x: jnp.mean(x, axis=(1, 2)),
      },
      torch=lambda xt: xt.mean(dim=(2, 3)),
      torch_channels_last=True,
    ),
    Case(
      op='global_pool',
      label='max',
      shape=shape,
      jax={
        'jaxpool': lambda x: jaxpool.global_pool(x, 'max'),
        _NAN: lambda x: jaxpool.global_pool(x, 'max'),
        'jnp.max (drops NaN on CPU)': lambda x: jnp.max(x, axis=(1, 2)),
      },
      torch=lambda xt: _torch().adaptive_max_pool2d(xt, 1).flatten(1),
      torch_channels_last=True,
      inputs={_NAN: _with_nan},
    ),
    Case(
      op='global_pool',
      label='gem p=3',
      shape=shape,
      jax={'jaxpool': lambda x: jaxpool.global_pool(x, 'gem', p=3.0)},
      torch=lambda xt: xt.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3),
      torch_channels_last=True,
    ),
  ]
