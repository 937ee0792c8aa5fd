"""A compact ResNet whose downsampling layers are jaxpool modules, and the ``--pool`` registry.

The registry maps a short name to a ``jaxpool.linen`` class name and the
arguments of a 2x downsampling layer. Only names whose class exists in the
installed ``jaxpool.linen`` are offered (:func:`available_pools`), so a family
that is not there yet never breaks the script.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

import jaxpool.linen

# name -> (jaxpool.linen class, keyword arguments of a 2x downsampling layer). Not here: the
# unpooling modules, AdaptiveAvg/MaxPool (2x downsampling is avg/max), and the global, channel
# and pyramid pools (they do not downsample). A module returning a tuple contributes its first
# element (LiftDownPool: the low band).
POOLS: dict[str, tuple[str, dict]] = {
  'max': ('MaxPool', dict(window=(2, 2))),
  'min': ('MinPool', dict(window=(2, 2))),
  'avg': ('AvgPool', dict(window=(2, 2))),
  'lp': ('LPPool', dict(window=(2, 2), p=2.0)),
  'soft': ('SoftPool', dict(window=(2, 2))),
  'lip': ('LIP', dict(window=(2, 2))),
  'ada': ('AdaPool', dict(window=(2, 2))),
  'edscw': ('EDSCWPool', dict(window=(2, 2))),
  'idw': ('IDWPool', dict(window=(2, 2))),
  'stochastic': ('StochasticPool', dict(window=(2, 2))),
  'mixed': ('MixedPool', dict(window=(2, 2))),
  's3': ('S3Pool', dict(window=(2, 2))),
  'fractional': ('FractionalMaxPool', dict(window=(2, 2), output_ratio=(0.5, 0.5))),
  'max_avg': ('MaxAvgPool', dict(window=(2, 2))),
  'gated': ('GatedPool', dict(window=(2, 2))),
  'tree': ('TreePool', dict(window=(2, 2))),
  'dpp': ('DPP', dict(window=(2, 2))),
  'blur': ('BlurPool', dict(window=(3, 3), strides=2, padding='SAME')),
  'max_blur': ('MaxBlurPool', dict(window=(2, 2), blur=(3, 3), strides=2)),
  'lift': ('LiftDownPool', dict(kernel_size=3)),
}


def available_pools() -> list[str]:
  """The registry names whose module exists in the installed ``jaxpool.linen``."""
  return [name for name, (cls, _) in POOLS.items() if getattr(jaxpool.linen, cls, None)]


def make_pool(pool: str, *, deterministic: bool, **overrides) -> nn.Module:
  """A 2x downsampling module for ``pool``; random modules get ``deterministic``."""
  if pool not in POOLS:
    raise ValueError(f'pool must be one of {sorted(POOLS)}; got {pool!r}')
  cls_name, kwargs = POOLS[pool]
  cls = getattr(jaxpool.linen, cls_name, None)
  if cls is None:
    raise ValueError(
      f'pool {pool!r} needs jaxpool.linen.{cls_name}, which this jaxpool does not '
      f'have; available: {", ".join(available_pools())}'
    )
  kwargs = {**kwargs, **overrides}
  if 'deterministic' in {f.name for f in dataclasses.fields(cls)}:
    kwargs['deterministic'] = deterministic
  return cls(**kwargs)


class Block(nn.Module):
  """Basic residual block: conv-BN-ReLU-conv-BN plus a (projected) shortcut, then ReLU."""

  features: int

  @nn.compact
  def __call__(self, x, train: bool):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    y = nn.relu(norm()(nn.Conv(self.features, (3, 3), use_bias=False)(x)))
    y = norm()(nn.Conv(self.features, (3, 3), use_bias=False)(y))
    if x.shape[-1] != self.features:
      x = norm()(nn.Conv(self.features, (1, 1), use_bias=False)(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  """Stem conv, then stages of residual blocks; stage ``i > 0`` starts with a ``pool`` layer.

  With ``stages=(1, 1, 1)`` and ``width=w``: channels ``w, 2w, 4w`` at 32, 16
  and 8 pixels for a 32x32 input, then global average pooling and a linear head.
  """

  pool: str = 'max'
  width: int = 16
  stages: Sequence[int] = (1, 1, 1)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(self.width, (3, 3), use_bias=False)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    for i, blocks in enumerate(self.stages):
      if i:
        x = make_pool(self.pool, deterministic=not train, name=f'pool{i}')(x)
        x = x[0] if isinstance(x, tuple) else x
      for _ in range(blocks):
        x = Block(self.width * 2**i)(x, train)
    return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
