"""The registry entries of ``jaxpool.classic``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_INDICES,
  ARG_X,
  ARG_Y,
  FLAG,
  LP_P,
  SCALAR_X,
  Good,
  W,
  diff_max_unpool,
  ints,
  max_unpool_call,
  unpool_inputs,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

ENTRIES = {
  'max_pool': Op(
    call=lambda x, key: jaxpool.max_pool(x, (3, 3), 2, 1),
    window=9,
    direct=lambda x, **kw: jaxpool.max_pool(x, (2, 2), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'max_pool': DiffCase(lambda x, p, key: jaxpool.max_pool(x, (3, 3), 2, 1))},
    max_like={
      'max_pool': (
        lambda x: jaxpool.max_pool(x, (3, 3), 2, 1, return_indices=True),
        lambda torch, t: torch.nn.functional.max_pool2d(t, 3, 2, 1, return_indices=True),
      )
    },
    tangent_winner={
      'max_pool': lambda x: jaxpool.max_pool(x, (3, 3), 2, 1),
      'max_pool-2x2': lambda x: jaxpool.max_pool(x, (2, 2)),
    },
    fuzz=lambda x, g: jaxpool.max_pool(x, **g),
    paths={
      'max_pool': Windowed(lambda x, w, key: jaxpool.max_pool(x, w, 1), winner=1, homogeneous=True)
    },
    masked={
      'max_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.max_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: v.max(0),
        winner=1,
      )
    },
    modules=(
      Spec(
        'MaxPool',
        dict(window=(3, 3), strides=2, padding=1, return_indices=True),
        lambda x, p: jaxpool.max_pool(x, (3, 3), 2, 1, return_indices=True),
      ),
    ),
    scalars=(
      Pair(
        'MaxPool',
        lambda **kw: jaxpool.max_pool(SCALAR_X, W, **kw),
        dict(
          return_indices=FLAG,
          ceil_mode=FLAG,
          strides=ints(1, 2),
          dilation=ints(2),
          padding=ints(1, bad=(-1, 2)),
        ),
        dict(window=W),
      ),
    ),
  ),
  'min_pool': Op(
    call=lambda x, key: jaxpool.min_pool(x, (3, 3), 2, 1, dilation=(1, 2)),
    window=9,
    direct=lambda x, **kw: jaxpool.min_pool(x, (2, 2), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={
      'min_pool': DiffCase(lambda x, p, key: jaxpool.min_pool(x, (3, 3), 2, 1, dilation=(1, 2)))
    },
    max_like={
      'min_pool': (
        lambda x: jaxpool.min_pool(x, (3, 3), 1),
        lambda torch, t: -torch.nn.functional.max_pool2d(-t, 3, 1),
      )
    },
    tangent_winner={'min_pool': lambda x: jaxpool.min_pool(x, (3, 3), 2, 1)},
    fuzz=lambda x, g: jaxpool.min_pool(x, **g),
    paths={
      'min_pool': Windowed(lambda x, w, key: jaxpool.min_pool(x, w, 1), winner=-1, homogeneous=True)
    },
    masked={
      'min_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.min_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: v.min(0),
        winner=-1,
      )
    },
    modules=(
      Spec(
        'MinPool',
        dict(window=(2, 3), dilation=(1, 2)),
        lambda x, p: jaxpool.min_pool(x, (2, 3), dilation=(1, 2)),
      ),
    ),
    scalars=(
      Pair(
        'MinPool',
        lambda **kw: jaxpool.min_pool(SCALAR_X, W, **kw),
        dict(ceil_mode=FLAG),
        dict(window=W),
      ),
    ),
  ),
  'avg_pool': Op(
    call=lambda x, key: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True),
    window=9,
    direct=lambda x, **kw: jaxpool.avg_pool(x, (3, 3), 2, 1, **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={
      'avg_pool': DiffCase(lambda x, p, key: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True))
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.avg_pool(x, **g),
    paths={'avg_pool': Windowed(lambda x, w, key: jaxpool.avg_pool(x, w, 1), homogeneous=True)},
    masked={
      'avg_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.avg_pool(
          x, w, s, p, count_include_pad=False, mask=m, **k
        ),
        lambda xp, v, l: v.mean(0),
      )
    },
    modules=(
      Spec(
        'AvgPool',
        dict(window=(3, 3), strides=2, padding=1, ceil_mode=True, count_include_pad=False),
        lambda x, p: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True, count_include_pad=False),
      ),
    ),
    scalars=(
      Pair(
        'AvgPool',
        lambda **kw: jaxpool.avg_pool(SCALAR_X, W, **kw),
        dict(
          count_include_pad=FLAG,
          ceil_mode=FLAG,
          divisor_override=[*ints(3, -2, bad=(0,)), Good(None)],
        ),
        dict(window=W),
      ),
    ),
  ),
  'lp_pool': Op(
    call=lambda x, key: jaxpool.lp_pool(jnp.abs(x), 2.0, (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.lp_pool(x, 2.0, (2, 2), **kw),
    arguments={'p': lambda v: jaxpool.lp_pool(ARG_X, v, (2, 2)), 'mask': MASK_VIA_DIRECT},
    diff={
      'lp_pool': DiffCase(
        lambda x, p, key: jaxpool.lp_pool(x, p['p'], (2, 2)),
        lambda shape: dict(p=np.asarray(2.5)),
        positive=True,
      )
    },
    max_like={
      'lp_pool-inf': (
        lambda x: jaxpool.lp_pool(x, float('inf'), (2, 2)),
        lambda torch, t: torch.nn.functional.max_pool2d(t, 2),
      )
    },
    fuzz=lambda x, g: jaxpool.lp_pool(x, 2, **g),
    paths={
      'lp_pool': Windowed(
        lambda x, w, key: jaxpool.lp_pool(x, 3.0, w, 1),
        homogeneous=True,
        kinks={'relu': 'the 3-norm of an all-zero window has no second derivative'},
      ),
      'lp_pool (p=inf)': Windowed(
        lambda x, w, key: jaxpool.lp_pool(x, float('inf'), w, 1),
        winner=1,
        homogeneous=True,
        kinks={'relu': 'max |x| among zeros: the winner depends on the side |.| is left by'},
      ),
    },
    masked={
      'lp_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.lp_pool(x, 2.0, w, s, p, mask=m, **k),
        lambda xp, v, l: xp.sqrt((v * v).sum(0)),
      )
    },
    secondary={
      'lp_pool-odd': (lambda x: jaxpool.lp_pool(x, 3.0, (2, 2)), 4),
      'lp_pool-traced-p': (lambda x: jaxpool.lp_pool(x, jnp.float32(3.0), (2, 2)), 4),
    },
    modules=(
      Spec(
        'LPPool',
        dict(window=(2, 2), p=3.0, learnable_p=True),
        lambda x, p: jaxpool.lp_pool(x, p['p'], (2, 2)),
        positive=True,
      ),
    ),
    scalars=(
      Pair(
        'LPPool',
        lambda p=2.0, **kw: jaxpool.lp_pool(SCALAR_X, p, W, **kw),
        dict(p=LP_P, ceil_mode=FLAG, learnable_p=FLAG),
        dict(window=W),
        module_only=frozenset({'learnable_p'}),
      ),
    ),
  ),
  'max_unpool': Op(
    call=max_unpool_call,
    window=4,
    direct=lambda x, **kw: jaxpool.max_unpool(x, jnp.zeros(x.shape, jnp.int32), (2, 2)),
    arguments={
      'y': lambda v: jaxpool.max_unpool(v, ARG_INDICES, (2, 2)),
      'indices': lambda v: jaxpool.max_unpool(ARG_Y, v, (2, 2)),
      'mask': lambda v: jaxpool.max_unpool(
        ARG_X, jnp.zeros(ARG_X.shape, jnp.int32), (2, 2), mask=v
      ),
    },
    diff={'max_unpool': DiffCase(diff_max_unpool)},
    max_like={
      'max_unpool': (
        lambda x: jaxpool.max_unpool(*jaxpool.max_pool(x, (2, 2), return_indices=True), (2, 2)),
        lambda torch, t: torch.nn.functional.max_unpool2d(
          *torch.nn.functional.max_pool2d(t, 2, return_indices=True), 2
        ),
      )
    },
    fuzz='the inverse of a pooling: output_size',
    modules=(
      Spec(
        'MaxUnpool',
        dict(window=(2, 2)),
        lambda x, p: jaxpool.max_unpool(*jaxpool.max_pool(x, (2, 2), return_indices=True), (2, 2)),
        inputs=lambda x: jaxpool.max_pool(x, (2, 2), return_indices=True),
      ),
    ),
    scalars=(
      Pair(
        'MaxUnpool',
        lambda **kw: jaxpool.max_unpool(*unpool_inputs(kw), W, **kw),
        dict(strides=ints(2)),
        dict(window=W),
        unpool_inputs,
      ),
    ),
  ),
}
