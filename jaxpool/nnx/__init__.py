"""Flax NNX modules, one per jaxpool op, with the class names and fields of the linen modules.

Fields are the functions' configuration arguments, in the linen modules'
order and with their defaults, validated at construction by the same checks
(so both APIs raise the same errors) and stored as plain attributes.
Parameters are ``nnx.Param`` with the linen modules' names, shapes and
initial values; what NNX needs up front and linen infers from the first input
comes keyword-only: ``num_features`` (the channel count, where parameters are
per channel), ``input_size`` (the spatial size, for per-location parameters)
and ``rngs`` (random initial values; the ``'pooling'`` stream of the random
modules).
"""

from jaxpool.nnx._adaptive import (
  AdaptiveAvgPool,
  AdaptiveMaxPool,
  ChannelPool,
  GlobalPool,
  SegmentPool,
  SpatialPyramidPool,
)
from jaxpool.nnx._blur import BlurPool, MaxBlurPool
from jaxpool.nnx._classic import AvgPool, LPPool, MaxPool, MaxUnpool, MinPool
from jaxpool.nnx._learned import DPP, GatedPool, MaxAvgPool, TreePool
from jaxpool.nnx._lifting import LiftDownPool, LiftUpPool
from jaxpool.nnx._stochastic import FractionalMaxPool, MixedPool, S3Pool, StochasticPool
from jaxpool.nnx._weighted import LIP, AdaPool, AdaUnPool, EDSCWPool, IDWPool, LIPLogits, SoftPool

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
