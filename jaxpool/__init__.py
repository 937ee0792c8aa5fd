"""jaxpool: every pooling operator, as pure, jit-able JAX functions.

Layout is channel-last, ``(*batch, *spatial, C)``; the length of ``window``
says how many spatial dims are pooled. Flax modules live in
:mod:`jaxpool.linen`.
"""

from jaxpool._version import __version__ as __version__
from jaxpool.adaptive import (
  adaptive_avg_pool,
  adaptive_max_pool,
  channel_pool,
  global_pool,
  spatial_pyramid_pool,
)
from jaxpool.blur import blur_pool, max_blur_pool
from jaxpool.classic import avg_pool, lp_pool, max_pool, max_unpool, min_pool
from jaxpool.learned import dpp_pool, gated_pool, max_avg_pool, tree_pool
from jaxpool.lifting import lift_down_pool, lift_up_pool
from jaxpool.segments import segment_pool
from jaxpool.stochastic import fractional_max_pool, mixed_pool, s3_pool, stochastic_pool
from jaxpool.weighted import (
  ada_pool,
  ada_unpool,
  edscw_pool,
  idw_pool,
  lip_pool,
  soft_pool,
  weighted_unpool,
)

__all__ = [
  'avg_pool',
  'lp_pool',
  'max_pool',
  'max_unpool',
  'min_pool',
  'max_avg_pool',
  'gated_pool',
  'tree_pool',
  'dpp_pool',
  'adaptive_avg_pool',
  'adaptive_max_pool',
  'global_pool',
  'channel_pool',
  'spatial_pyramid_pool',
  'segment_pool',
  'soft_pool',
  'lip_pool',
  'edscw_pool',
  'idw_pool',
  'ada_pool',
  'weighted_unpool',
  'ada_unpool',
  'blur_pool',
  'max_blur_pool',
  'lift_down_pool',
  'lift_up_pool',
  'stochastic_pool',
  'mixed_pool',
  's3_pool',
  'fractional_max_pool',
]
