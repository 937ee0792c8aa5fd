"""The registry entries of ``jaxpool.lifting``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_DETAILS,
  ARG_LOW,
  ARG_X,
  FEATURES_AND_RNGS,
  LIFT_PARAMS,
  MODULE_C,
  SCALAR_PREDICT,
  SCALAR_UPDATE,
  SCALAR_X,
  Good,
  diff_lift_up,
  forms,
  ints,
  lift_down_call,
  lift_operator,
  lift_up_call,
  module_lifted,
  pair_lifted,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Op, Pair, Spec

ENTRIES = {
  'lift_down_pool': Op(
    call=lift_down_call,
    window=16,
    direct=lambda x, **kw: jaxpool.lift_down_pool(x, jnp.ones(1), jnp.ones(1), **kw),
    arguments={
      'predict': lambda v: jaxpool.lift_down_pool(ARG_X, v, jnp.ones(1)),
      'update': lambda v: jaxpool.lift_down_pool(ARG_X, jnp.ones(1), v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'lift_down_pool': DiffCase(  # along the height; lift_up_pool's case: the width
        lambda x, p, key: jaxpool.lift_down_pool(x, p['predict'], p['update'], axes=-3), LIFT_PARAMS
      )
    },
    max_like=None,
    fuzz=None,
    modules=(
      Spec(
        'LiftDownPool',
        dict(),
        lambda x, p: jaxpool.lift_down_pool(
          x, lift_operator(p['predict']), lift_operator(p['update'])
        ),
        nnx_kw=dict(num_features=MODULE_C, rngs=0),
        random_init=True,
      ),
    ),
    scalars=(
      Pair(
        'LiftDownPool',
        lambda **kw: jaxpool.lift_down_pool(SCALAR_X, SCALAR_PREDICT, SCALAR_UPDATE, **kw),
        dict(
          axes=[
            *forms(-2),
            Good(1),
            Good((-3, -2)),
            Good((np.int64(-3), jnp.asarray(-2))),
            'HW',
            (),
            (-1,),
            (-2, -2),
            1.5,
            True,
          ]
        ),
        nnx_kw=FEATURES_AND_RNGS,
      ),
      Pair(
        'LiftDownPool',
        None,
        dict(kernel_size=ints(1, 3)),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'kernel_size'}),
      ),
    ),
  ),
  'lift_up_pool': Op(
    call=lift_up_call,
    window=64,
    direct=lambda x, **kw: jaxpool.lift_up_pool(
      x,
      {k: jnp.zeros(x.shape, jnp.float32) for k in ('LH', 'HL', 'HH')},
      jnp.ones(1),
      jnp.ones(1),
      **kw,
    ),
    arguments={
      'predict': lambda v: jaxpool.lift_up_pool(ARG_LOW, ARG_DETAILS, v, jnp.ones(1)),
      'update': lambda v: jaxpool.lift_up_pool(ARG_LOW, ARG_DETAILS, jnp.ones(1), v),
      'low': lambda v: jaxpool.lift_up_pool(v, ARG_DETAILS, jnp.ones(1), jnp.ones(1)),
      'details': lambda v: jaxpool.lift_up_pool(
        ARG_LOW, dict.fromkeys(ARG_DETAILS, v), jnp.ones(1), jnp.ones(1)
      ),
      'mask': lambda v: jaxpool.lift_up_pool(
        ARG_LOW, ARG_DETAILS, jnp.ones(1), jnp.ones(1), mask=v
      ),
    },
    diff={'lift_up_pool': DiffCase(diff_lift_up, LIFT_PARAMS)},
    max_like=None,
    fuzz=None,
    modules=(
      Spec(
        'LiftUpPool',
        dict(),
        lambda x, p: jaxpool.lift_up_pool(
          *module_lifted(x), lift_operator(p['predict']), lift_operator(p['update'])
        ),
        nnx_kw=dict(num_features=MODULE_C, rngs=0),
        inputs=module_lifted,
        random_init=True,
      ),
    ),
    scalars=(
      Pair(
        'LiftUpPool',
        lambda **kw: jaxpool.lift_up_pool(*pair_lifted(kw), SCALAR_PREDICT, SCALAR_UPDATE, **kw),
        dict(axes=[*forms(-2), Good((-3, -2)), 'HW', (), (-1,), 1.5, True]),
        inputs=pair_lifted,
        nnx_kw=FEATURES_AND_RNGS,
      ),
      Pair(
        'LiftUpPool',
        None,
        dict(kernel_size=ints(1, 3)),
        inputs=pair_lifted,
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'kernel_size'}),
      ),
    ),
  ),
}
