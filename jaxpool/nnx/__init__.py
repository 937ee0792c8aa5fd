"""Flax NNX modules, one per jaxpool op: the class names and fields of :mod:`jaxpool.linen`.

Fields mirror the functional arguments, in linen's order and with linen's
defaults, and are validated at construction with the same errors. Parameters
are ``nnx.Param`` with linen's names, shapes and initial values; what NNX needs
up front and linen infers from the first input comes keyword-only:
``num_features`` (the channel count, where parameters are per channel),
``input_size`` (the spatial size, for per-location parameters) and ``rngs``
(random initial values; the ``'pooling'`` stream of the random modules).
"""

from jaxpool.nnx._adaptive import (AdaptiveAvgPool, AdaptiveMaxPool, ChannelPool, GlobalPool,
                                     SpatialPyramidPool)
from jaxpool.nnx._blur import BlurPool, MaxBlurPool
from jaxpool.nnx._classic import AvgPool, LPPool, MaxPool, MaxUnpool, MinPool
from jaxpool.nnx._learned import DPP, GatedPool, MaxAvgPool, TreePool
from jaxpool.nnx._lifting import LiftDownPool, LiftUpPool
from jaxpool.nnx._stochastic import FractionalMaxPool, MixedPool, S3Pool, StochasticPool
from jaxpool.nnx._weighted import (LIP, AdaPool, AdaUnPool, EDSCWPool, IDWPool, LIPLogits,
                                     SoftPool)

__all__ = [
    'AdaPool', 'AdaUnPool', 'AdaptiveAvgPool', 'AdaptiveMaxPool', 'AvgPool', 'BlurPool',
    'ChannelPool', 'DPP', 'EDSCWPool', 'FractionalMaxPool', 'GatedPool', 'GlobalPool', 'IDWPool',
    'LIP', 'LIPLogits', 'LPPool', 'LiftDownPool', 'LiftUpPool', 'MaxAvgPool', 'MaxBlurPool',
    'MaxPool', 'MaxUnpool', 'MinPool', 'MixedPool', 'S3Pool', 'SoftPool', 'SpatialPyramidPool',
    'StochasticPool', 'TreePool',
]
