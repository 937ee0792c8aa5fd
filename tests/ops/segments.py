"""The registry entries of ``jaxpool.segments``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp

import jaxpool
from tests.ops.fixtures import (
  ARG_X,
  MODULE_C,
  SCALAR_IDS,
  SCALAR_X,
  choices,
  images,
  ints,
  labels,
  one_batch_dim,
  segment_ids,
  unit,
)
from tests.ops.records import DiffCase, Op, Pair, Spec

ENTRIES = {
  'segment_pool': Op(
    call=lambda x, key: jaxpool.segment_pool(
      one_batch_dim(x), labels(one_batch_dim(x)), 3, 'gem', p=3.0
    ),
    window=144,
    direct=lambda x, **kw: jaxpool.segment_pool(x, jnp.zeros(x.shape[:-1], jnp.int32), 2, 'max'),
    arguments={'segment_ids': lambda v: jaxpool.segment_pool(ARG_X, v, 2)},
    diff={
      'segment_pool': DiffCase(
        lambda x, p, key: jaxpool.segment_pool(images(x), labels(images(x)), 3, 'gem', p=p['p']),
        lambda shape: dict(p=unit((shape[-1],), 1, 2.0, 4.0)),
        positive=True,
      ),
      'segment_pool-max': DiffCase(
        lambda x, p, key: jaxpool.segment_pool(images(x), labels(images(x)), 3, 'max')
      ),
    },
    max_like=None,  # its 'max' is global_pool's, swept there against PyTorch
    fuzz=None,
    modules=(
      Spec(
        'SegmentPool',
        dict(num_segments=3, method='gem', learnable_p=True, p_shape='channel'),
        lambda x, p: jaxpool.segment_pool(x, segment_ids(x), 3, 'gem', p=p['p']),
        nnx_kw=dict(num_features=MODULE_C),
        inputs=lambda x: (x, segment_ids(x)),
        positive=True,
      ),
    ),
    scalars=(
      Pair(
        'SegmentPool',
        lambda num_segments=2, method='avg', **kw: jaxpool.segment_pool(
          SCALAR_X, SCALAR_IDS, num_segments, method, **kw
        ),
        dict(
          num_segments=ints(2),
          method=choices('sum', 'avg', 'max', 'soft', 'lp', 'gem', 'avgmax', 'catavgmax'),
        ),
        dict(num_segments=2),
        inputs=lambda kw: (SCALAR_X, SCALAR_IDS),
      ),
    ),
  ),
}
