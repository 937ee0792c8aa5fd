"""The registry entries of ``jaxpool.adaptive``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_X,
  FEATURES,
  FLAG,
  GLOBAL_POSITIVE,
  MODULE_C,
  SCALAR_X,
  Good,
  channel_max_torch,
  choices,
  images,
  ints,
  one_batch_dim,
  pyramid_torch,
  softmax_mean,
  unit,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Op, Pair, Spec

ENTRIES = {
  'adaptive_avg_pool': Op(
    call=lambda x, key: jaxpool.adaptive_avg_pool(x, (5, 3)),
    window=16,
    direct=lambda x, **kw: jaxpool.adaptive_avg_pool(x, (3, 3), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'adaptive_avg_pool': DiffCase(lambda x, p, key: jaxpool.adaptive_avg_pool(x, (5, 3)))},
    max_like=None,
    fuzz=None,
    whole={'adaptive_avg_pool': (lambda x: jaxpool.adaptive_avg_pool(x, (5, 3)), True)},
    modules=(
      Spec(
        'AdaptiveAvgPool',
        dict(output_size=(5, None)),
        lambda x, p: jaxpool.adaptive_avg_pool(x, (5, None)),
      ),
    ),
    scalars=(
      Pair(
        'AdaptiveAvgPool',
        lambda **kw: jaxpool.adaptive_avg_pool(SCALAR_X, **kw),
        dict(
          output_size=[
            *ints(2, 3),
            Good((2, None)),
            Good((np.int64(1), jnp.asarray(3))),
            (0, 2),
            (),
            (2.0, 2),
          ]
        ),
      ),
    ),
  ),
  'adaptive_max_pool': Op(
    call=lambda x, key: jaxpool.adaptive_max_pool(x, (5, 3)),
    window=16,
    direct=lambda x, **kw: jaxpool.adaptive_max_pool(x, (3, 3), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'adaptive_max_pool': DiffCase(lambda x, p, key: jaxpool.adaptive_max_pool(x, (5, 3)))},
    max_like={
      'adaptive_max_pool': (
        lambda x: jaxpool.adaptive_max_pool(x, (4, 3), return_indices=True),
        lambda torch, t: torch.nn.functional.adaptive_max_pool2d(t, (4, 3), return_indices=True),
      )
    },
    tangent_winner={'adaptive_max_pool': lambda x: jaxpool.adaptive_max_pool(x, (4, 3))},
    fuzz=None,
    whole={'adaptive_max_pool': (lambda x: jaxpool.adaptive_max_pool(x, (5, 3)), True)},
    modules=(
      Spec(
        'AdaptiveMaxPool',
        dict(output_size=3, return_indices=True),
        lambda x, p: jaxpool.adaptive_max_pool(x, 3, return_indices=True),
      ),
    ),
    scalars=(
      Pair(
        'AdaptiveMaxPool',
        lambda **kw: jaxpool.adaptive_max_pool(SCALAR_X, **{'output_size': 2, **kw}),
        dict(output_size=ints(2), return_indices=FLAG),
        dict(output_size=2),
      ),
    ),
  ),
  'global_pool': Op(
    call=lambda x, key: jaxpool.global_pool(one_batch_dim(x), 'gem', p=3.0),
    window=144,
    direct=lambda x, **kw: jaxpool.global_pool(x, 'max', **kw),
    arguments={
      'p': lambda v: jaxpool.global_pool(ARG_X, 'lp', p=v),
      'eps': lambda v: jaxpool.global_pool(ARG_X, 'gem', eps=v),
      'temperature': lambda v: jaxpool.global_pool(ARG_X, 'soft', temperature=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'global_pool': DiffCase(
        lambda x, p, key: jaxpool.global_pool(images(x), 'gem', p=p['p']),
        lambda shape: dict(p=unit((shape[-1],), 1, 2.0, 4.0)),
        positive=True,
      ),
      'global_pool-catavgmax': DiffCase(
        lambda x, p, key: jaxpool.global_pool(images(x), 'catavgmax')
      ),
    },
    max_like={
      'global_pool': (
        lambda x: jaxpool.global_pool(x, 'max'),
        lambda torch, t: torch.nn.functional.adaptive_max_pool2d(t, 1)[..., 0, 0],
      ),
      'global_pool-avgmax': (
        lambda x: jaxpool.global_pool(x, 'avgmax'),
        lambda torch, t: (
          (
            torch.nn.functional.adaptive_max_pool2d(t, 1)
            + torch.nn.functional.adaptive_avg_pool2d(t, 1)
          )[..., 0, 0]
          / 2
        ),
      ),
      # max of |x|: PyTorch sees |x| as its input (d|x|/dx at NaN differs between frameworks)
      'global_pool-lp-inf': (
        lambda x: jaxpool.global_pool(x, 'lp', p=float('inf')),
        lambda torch, t: torch.nn.functional.adaptive_max_pool2d(t, 1)[..., 0, 0],
      ),
    },
    tangent_winner={'global_pool-max': lambda x: jaxpool.global_pool(x, 'max')},
    fuzz=None,
    whole={
      'global_pool (avg)': (lambda x: jaxpool.global_pool(x, 'avg'), True),
      'global_pool (max)': (lambda x: jaxpool.global_pool(x, 'max'), True),
      'global_pool (lp)': (lambda x: jaxpool.global_pool(x, 'lp', p=3.0), True),
      'global_pool (catavgmax)': (lambda x: jaxpool.global_pool(x, 'catavgmax'), True),
    },
    secondary={
      'global_pool-lp-odd': (lambda x: jaxpool.global_pool(x, 'lp', p=3.0), 144),
      'global_pool-soft': (lambda x: jaxpool.global_pool(x, 'soft', temperature=0.5), 144),
      'global_pool-avgmax': (lambda x: jaxpool.global_pool(x, 'avgmax'), 144),
    },
    modules=(
      Spec(
        'GlobalPool',
        dict(method='gem', learnable_p=True, p_shape='channel'),
        lambda x, p: jaxpool.global_pool(x, 'gem', p=p['p']),
        nnx_kw=dict(num_features=MODULE_C),
        positive=True,
      ),
    ),
    scalars=(
      Pair(
        'GlobalPool',
        lambda method='avg', keepdims=False, **kw: jaxpool.global_pool(
          SCALAR_X, method, keepdims, **kw
        ),
        dict(
          method=choices('avg', 'max', 'soft', 'lp', 'gem', 'avgmax', 'catavgmax'), keepdims=FLAG
        ),
      ),
      Pair(
        'GlobalPool',
        lambda **kw: jaxpool.global_pool(SCALAR_X, 'gem', **kw),
        dict(p=GLOBAL_POSITIVE, eps=GLOBAL_POSITIVE),
        dict(method='gem'),
      ),
      Pair(
        'GlobalPool',
        lambda **kw: jaxpool.global_pool(SCALAR_X, 'soft', **kw),
        dict(temperature=GLOBAL_POSITIVE),
        dict(method='soft'),
      ),
      Pair(
        'GlobalPool',
        None,
        dict(learnable_p=FLAG, p_shape=choices('scalar', 'channel')),
        dict(method='gem'),
        nnx_kw=FEATURES,
        module_only=frozenset({'learnable_p', 'p_shape'}),
      ),
    ),
  ),
  'channel_pool': Op(
    call=lambda x, key: jaxpool.channel_pool(x, 'avg'),
    window=4,
    direct=lambda x, **kw: jaxpool.channel_pool(x, 'max', **kw),
    diff={'channel_pool': DiffCase(lambda x, p, key: jaxpool.channel_pool(x, 'max'))},
    max_like={'channel_pool': (lambda x: jaxpool.channel_pool(x, 'max'), channel_max_torch)},
    tangent_winner={'channel_pool-max': lambda x: jaxpool.channel_pool(x, 'max')},
    fuzz=None,
    whole={'channel_pool': (lambda x: jaxpool.channel_pool(x, 'max'), True)},
    secondary={'channel_pool-soft': (lambda x: jaxpool.channel_pool(x, 'soft'), 4)},
    modules=(
      Spec(
        'ChannelPool',
        dict(method='avg', keepdims=False),
        lambda x, p: jaxpool.channel_pool(x, 'avg', False),
      ),
    ),
    scalars=(
      Pair(
        'ChannelPool',
        lambda **kw: jaxpool.channel_pool(SCALAR_X, **kw),
        dict(method=choices('avg', 'max', 'soft'), keepdims=FLAG),
      ),
    ),
  ),
  'spatial_pyramid_pool': Op(
    call=lambda x, key: jaxpool.spatial_pyramid_pool(one_batch_dim(x), (1, 2, 3)),
    window=144,
    direct=lambda x, **kw: jaxpool.spatial_pyramid_pool(x, **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={
      'spatial_pyramid_pool': DiffCase(
        lambda x, p, key: jaxpool.spatial_pyramid_pool(images(x), (1, 2, 3))
      )
    },
    max_like={
      'spatial_pyramid_pool': (lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 3)), pyramid_torch)
    },
    fuzz=None,
    whole={
      'spatial_pyramid_pool': (lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 3)), True),
      'spatial_pyramid_pool (avg)': (
        lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 3), method='avg'),
        True,
      ),
    },
    modules=(
      Spec(
        'SpatialPyramidPool',
        dict(levels=(1, 2, 3), method='avg'),
        lambda x, p: jaxpool.spatial_pyramid_pool(x, (1, 2, 3), 'avg'),
      ),
    ),
    scalars=(
      Pair(
        'SpatialPyramidPool',
        lambda **kw: jaxpool.spatial_pyramid_pool(SCALAR_X, **kw),
        dict(
          method=choices('avg', 'max'),
          levels=[
            Good((1, 2)),
            Good([1, np.int64(2)]),
            Good((jnp.asarray(1),)),
            Good(((1, 2),)),
            (0,),
            (1, 0),
            'ab',
            3,
            (),
            (1.5,),
          ],
        ),
      ),
    ),
  ),
}


#: global_pool methods with mask=: the reduction of one example's unmasked positions.
GLOBAL_MASKED = {
  'avg': ({}, lambda xp, v: v.mean(0)),
  'max': ({}, lambda xp, v: v.max(0)),
  'soft': ({'temperature': 0.7}, lambda xp, v: softmax_mean(xp, v, v / 0.7)),
  'lp': ({'p': 3.0}, lambda xp, v: ((v**3).sum(0)) ** (1 / 3)),
  'gem': ({'p': 3.0}, lambda xp, v: ((xp.maximum(v, 1e-6) ** 3).mean(0)) ** (1 / 3)),
  'avgmax': ({}, lambda xp, v: (v.mean(0) + v.max(0)) / 2),
  'catavgmax': ({}, lambda xp, v: xp.concatenate([v.mean(0), v.max(0)])),
}
