"""The registry entries of ``jaxpool.weighted``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_WEIGHTS,
  ARG_X,
  ARG_YW,
  FEATURES_AND_RNGS,
  FLAG,
  MODULE_C,
  POSITIVE,
  SCALAR_C,
  SCALAR_X,
  TEMPERATURE,
  Good,
  W,
  ada_weights,
  choices,
  diff_weighted_unpool,
  dsc_reduce,
  f64,
  half_up,
  idw_reduce,
  ints,
  lip_logits,
  sig,
  soft_weights,
  softmax_mean,
  unit,
  weighted_unpool_call,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

ENTRIES = {
  'soft_pool': Op(
    call=lambda x, key: jaxpool.soft_pool(x, (3, 3), 2, 1),
    window=9,
    direct=lambda x, **kw: jaxpool.soft_pool(x, (2, 2), **kw),
    arguments={
      'temperature': lambda v: jaxpool.soft_pool(ARG_X, (2, 2), temperature=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'soft_pool': DiffCase(
        lambda x, p, key: jaxpool.soft_pool(x, (2, 2), 1, 1, temperature=p['temperature']),
        lambda shape: dict(temperature=np.asarray(0.7)),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.soft_pool(x, **g),
    paths={'soft_pool': Windowed(lambda x, w, key: jaxpool.soft_pool(x, w, 1))},
    masked={
      'soft_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.soft_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: softmax_mean(xp, v, v),
      ),
      'soft_pool (traced T)': Masked(
        lambda x, m, w, s, p, **k: jaxpool.soft_pool(
          x, w, s, p, temperature=jnp.asarray(0.5), mask=m, **k
        ),
        lambda xp, v, l: softmax_mean(xp, v, v / 0.5),
      ),
    },
    secondary={
      'soft_pool-traced-temperature': (
        lambda x: jaxpool.soft_pool(x, (2, 2), temperature=jnp.float32(0.5)),
        4,
      )
    },
    modules=(
      Spec(
        'SoftPool',
        dict(window=(3, 3), strides=2, padding=1, temperature=0.5, learnable_temperature=True),
        lambda x, p: jaxpool.soft_pool(x, (3, 3), 2, 1, temperature=jnp.exp(p['log_temperature'])),
      ),
    ),
    scalars=(
      Pair(
        'SoftPool',
        lambda **kw: jaxpool.soft_pool(SCALAR_X, W, **kw),
        dict(
          temperature=TEMPERATURE, return_weights=FLAG, ceil_mode=FLAG, learnable_temperature=FLAG
        ),
        dict(window=W),
        module_only=frozenset({'learnable_temperature'}),
      ),
    ),
  ),
  'lip_pool': Op(
    call=lambda x, key: jaxpool.lip_pool(x, jnp.tanh(x[..., :1]), (3, 3), 2, 1),
    window=9,
    direct=lambda x, **kw: jaxpool.lip_pool(x, x, (2, 2), **kw),
    arguments={'logits': lambda v: jaxpool.lip_pool(ARG_X, v, (2, 2)), 'mask': MASK_VIA_DIRECT},
    diff={
      'lip_pool': DiffCase(
        lambda x, p, key: jaxpool.lip_pool(x, p['logits'] + jnp.tanh(x[..., :1]), (2, 2), 1),
        lambda shape: dict(logits=f64((*shape[:-1], 1), 3, 0.5)),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.lip_pool(x, 0.5 * x, **g),
    paths={'lip_pool': Windowed(lambda x, w, key: jaxpool.lip_pool(x, 0.5 * x, w, 1))},
    masked={
      'lip_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.lip_pool(x, 0.5 * x + 0.25, w, s, p, mask=m, **k),
        lambda xp, v, l: softmax_mean(xp, v, l),
        logits=True,
      )
    },
    modules=(
      Spec(
        'LIP',
        dict(window=(3, 3), strides=2, padding=1),
        lambda x, p: jaxpool.lip_pool(x, lip_logits(x, p['logits']), (3, 3), 2, 1),
        nnx_kw=dict(num_features=MODULE_C),
      ),
    ),
    scalars=(
      Pair(
        'LIP',
        lambda **kw: jaxpool.lip_pool(SCALAR_X, jnp.zeros_like(SCALAR_X), W, **kw),
        dict(
          return_weights=FLAG,
          coeff=POSITIVE,
          logit_window=[Good((3, 3)), Good((1, np.int64(3))), (3,), (0, 3), 3],
        ),
        dict(window=W),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'coeff', 'logit_window'}),
      ),
      Pair(
        'LIPLogits',
        None,
        dict(
          coeff=POSITIVE,
          eps=POSITIVE,
          kernel_size=[Good((3, 3)), Good((np.int64(1), 3)), (0,), (0, 3), 3, 'ab'],
        ),
        dict(kernel_size=(3, 3)),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'coeff', 'eps', 'kernel_size'}),
      ),
    ),
  ),
  'edscw_pool': Op(
    call=lambda x, key: jaxpool.edscw_pool(x, (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.edscw_pool(x, (2, 2), **kw),
    arguments={'eps': lambda v: jaxpool.edscw_pool(ARG_X, (2, 2), eps=v), 'mask': MASK_VIA_DIRECT},
    diff={
      'edscw_pool': DiffCase(
        lambda x, p, key: jaxpool.edscw_pool(  # weights too
          x, (1, 2), return_weights=True
        )
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.edscw_pool(x, **g),
    paths={
      'edscw_pool': Windowed(
        lambda x, w, key: jaxpool.edscw_pool(x, w, 1),
        kinks={'relu': 'exp(x) / sum exp(x) - 1 weights: 0/0 at an all-zero window'},
      )
    },
    masked={
      'edscw_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.edscw_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: dsc_reduce(xp, v),
      )
    },
    secondary={'edscw_pool-overlap': (lambda x: jaxpool.edscw_pool(x, (3, 3), 2, 1), 9)},
    modules=(
      Spec(
        'EDSCWPool',
        dict(window=(2, 2), return_weights=True),
        lambda x, p: jaxpool.edscw_pool(x, (2, 2), return_weights=True),
      ),
    ),
    scalars=(
      Pair(
        'EDSCWPool',
        lambda **kw: jaxpool.edscw_pool(SCALAR_X, W, **kw),
        dict(eps=POSITIVE, return_weights=FLAG),
        dict(window=W),
      ),
    ),
  ),
  'idw_pool': Op(
    call=lambda x, key: jaxpool.idw_pool(x, (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.idw_pool(x, (2, 2), **kw),
    arguments={'eps': lambda v: jaxpool.idw_pool(ARG_X, (2, 2), eps=v), 'mask': MASK_VIA_DIRECT},
    diff={'idw_pool': DiffCase(lambda x, p, key: jaxpool.idw_pool(x, (2, 2)))},
    max_like=None,
    fuzz=lambda x, g: jaxpool.idw_pool(x, **g),
    paths={
      'idw_pool': Windowed(
        lambda x, w, key: jaxpool.idw_pool(x, w, 1),
        homogeneous=True,
        kinks={
          'constant': '1 / (|x - mean| + eps): |.| at 0 in a constant window',
          'relu': '1 / (|x - mean| + eps): |.| at 0 in an all-zero window',
          'pairs': '1 / (|x - mean| + eps): |.| at 0 where a tap equals the mean',
        },
      )
    },
    masked={
      'idw_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.idw_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: idw_reduce(xp, v),
      )
    },
    secondary={'idw_pool-overlap': (lambda x: jaxpool.idw_pool(x, (3, 3), 2, 1), 9)},
    modules=(
      Spec(
        'IDWPool',
        dict(window=(3, 3), strides=2, padding='SAME', eps=1e-4),
        lambda x, p: jaxpool.idw_pool(x, (3, 3), 2, 'SAME', eps=1e-4),
      ),
    ),
    scalars=(
      Pair(
        'IDWPool',
        lambda **kw: jaxpool.idw_pool(SCALAR_X, W, **kw),
        dict(eps=POSITIVE, return_weights=FLAG),
        dict(window=W),
      ),
    ),
  ),
  'ada_pool': Op(
    call=lambda x, key: jaxpool.ada_pool(x, 0.3, (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.ada_pool(x, 0.5, (2, 2), **kw),
    arguments={
      'beta': lambda v: jaxpool.ada_pool(ARG_X, v, (2, 2)),
      'eps': lambda v: jaxpool.ada_pool(ARG_X, 0.5, (2, 2), eps=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'ada_pool': DiffCase(
        lambda x, p, key: jaxpool.ada_pool(x, p['beta'], (1, 2)),
        lambda shape: dict(beta=unit((shape[-1],), 4)),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.ada_pool(x, 0.5, **g),
    paths={
      'ada_pool': Windowed(
        lambda x, w, key: jaxpool.ada_pool(x, 0.3, w, 1),
        kinks={'relu': 'its eDSCW half: 0/0 weights at an all-zero window'},
      )
    },
    masked={
      'ada_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.ada_pool(x, 0.3, w, s, p, mask=m, **k),
        lambda xp, v, l: 0.3 * dsc_reduce(xp, v) + 0.7 * softmax_mean(xp, v, v),
      )
    },
    modules=(
      Spec(
        'AdaPool',
        dict(window=(2, 2), beta_shape='location_channel'),
        lambda x, p: jaxpool.ada_pool(x, sig(p['theta']), (2, 2)),
        nnx_kw=dict(num_features=MODULE_C, input_size=(8, 8)),
      ),
    ),
    scalars=(
      Pair(
        'AdaPool',
        lambda **kw: jaxpool.ada_pool(SCALAR_X, 0.5, W, **kw),
        dict(
          eps=POSITIVE,
          return_weights=FLAG,
          beta_shape=choices('scalar', 'channel', 'location', 'location_channel'),
        ),
        dict(window=W),
        nnx_kw=lambda: dict(num_features=SCALAR_C, input_size=(4, 4)),
        module_only=frozenset({'beta_shape'}),
      ),
    ),
  ),
  'weighted_unpool': Op(
    call=weighted_unpool_call('weighted_unpool'),
    window=9,
    direct=lambda x, **kw: jaxpool.weighted_unpool(
      x[:, :4, :4], jnp.ones((*x.shape[:1], 4, 4, 2, 2, x.shape[-1]), jnp.float32), (2, 2)
    ),
    arguments={
      'y': lambda v: jaxpool.weighted_unpool(v, ARG_WEIGHTS, (2, 2)),
      'weights': lambda v: jaxpool.weighted_unpool(ARG_YW, v, (2, 2)),
    },
    diff={
      'weighted_unpool': DiffCase(
        diff_weighted_unpool,
        lambda shape: dict(
          weights=unit((*shape[:-3], *half_up(shape), 3, 3, shape[-1]), 15, 0.05, 0.3)
        ),
      )
    },
    max_like=None,
    fuzz='the inverse of a pooling: output_size',
    modules=(
      Spec(
        'AdaUnPool',
        dict(window=(3, 3), strides=2, padding=1),
        lambda x, p: jaxpool.weighted_unpool(*ada_weights(x), (3, 3), 2, 1),
        inputs=ada_weights,
      ),
    ),
    scalars=(
      Pair(
        'AdaUnPool',
        lambda **kw: jaxpool.ada_unpool(*soft_weights(kw), W, **kw),
        dict(strides=ints(2)),
        dict(window=W),
        soft_weights,
      ),
    ),
  ),
}
