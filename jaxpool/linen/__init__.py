"""Flax linen modules, one per jaxpool op (fields mirror the functional arguments)."""

from jaxpool.linen._adaptive import (
  AdaptiveAvgPool,
  AdaptiveMaxPool,
  ChannelPool,
  GlobalPool,
  SegmentPool,
  SpatialPyramidPool,
)
from jaxpool.linen._blur import BlurPool, MaxBlurPool
from jaxpool.linen._classic import AvgPool, LPPool, MaxPool, MaxUnpool, MinPool
from jaxpool.linen._learned import DPP, GatedPool, MaxAvgPool, TreePool
from jaxpool.linen._lifting import LiftDownPool, LiftUpPool
from jaxpool.linen._stochastic import FractionalMaxPool, MixedPool, S3Pool, StochasticPool
from jaxpool.linen._weighted import LIP, AdaPool, AdaUnPool, EDSCWPool, IDWPool, LIPLogits, SoftPool

__all__ = [
  'AdaPool',
  'AdaUnPool',
  'AdaptiveAvgPool',
  'AdaptiveMaxPool',
  'AvgPool',
  'BlurPool',
  'ChannelPool',
  'DPP',
  'EDSCWPool',
  'FractionalMaxPool',
  'GatedPool',
  'GlobalPool',
  'SegmentPool',
  'IDWPool',
  'LIP',
  'LIPLogits',
  'LPPool',
  'LiftDownPool',
  'LiftUpPool',
  'MaxAvgPool',
  'MaxBlurPool',
  'MaxPool',
  'MaxUnpool',
  'MinPool',
  'MixedPool',
  'S3Pool',
  'SoftPool',
  'SpatialPyramidPool',
  'StochasticPool',
  'TreePool',
]
