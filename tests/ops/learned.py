"""The registry entries of ``jaxpool.learned``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_X,
  FEATURES_AND_RNGS,
  FEATURES_SIZES_AND_RNGS,
  FLAG,
  MODULE_C,
  POSITIVE,
  SCALAR_X,
  Good,
  W,
  choices,
  dpp_guide,
  dpp_lite,
  f64,
  filter_of,
  fuzz_filter,
  gated_reduce,
  ints,
  param,
  ramp,
  sig,
  tree_reduce,
  unit,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

ENTRIES = {
  'max_avg_pool': Op(
    call=lambda x, key: jaxpool.max_avg_pool(x, 0.3, (3, 3), 2, 1),
    window=9,
    direct=lambda x, **kw: jaxpool.max_avg_pool(x, 0.5, (2, 2), **kw),
    arguments={'alpha': lambda v: jaxpool.max_avg_pool(ARG_X, v, (2, 2)), 'mask': MASK_VIA_DIRECT},
    diff={
      'max_avg_pool': DiffCase(
        lambda x, p, key: jaxpool.max_avg_pool(x, p['alpha'], (3, 3), 2, 1),
        lambda shape: dict(alpha=unit((shape[-1],), 5)),
      )
    },
    max_like={
      'max_avg_pool': (
        lambda x: jaxpool.max_avg_pool(x, 1.0, (3, 3), 2, 1),
        lambda torch, t: torch.nn.functional.max_pool2d(t, 3, 2, 1),
      )
    },
    fuzz=lambda x, g: jaxpool.max_avg_pool(x, 0.5, **g),
    paths={
      'max_avg_pool': Windowed(
        lambda x, w, key: jaxpool.max_avg_pool(x, 0.3, w, 1), winner=1, homogeneous=True
      )
    },
    masked={
      'max_avg_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.max_avg_pool(x, 0.3, w, s, p, mask=m, **k),
        lambda xp, v, l: 0.3 * v.max(0) + 0.7 * v.mean(0),
      )
    },
    modules=(
      Spec(
        'MaxAvgPool',
        dict(window=(3, 3), strides=2, padding=1, alpha_shape='channel'),
        lambda x, p: jaxpool.max_avg_pool(x, sig(p['alpha_logit']), (3, 3), 2, 1),
        nnx_kw=dict(num_features=MODULE_C),
      ),
    ),
    scalars=(
      Pair(
        'MaxAvgPool',
        lambda **kw: jaxpool.max_avg_pool(SCALAR_X, 0.5, W, **kw),
        dict(
          ceil_mode=FLAG, alpha_shape=choices('scalar', 'channel', 'location', 'location_channel')
        ),
        dict(window=W),
        nnx_kw=FEATURES_SIZES_AND_RNGS,
        module_only=frozenset({'alpha_shape'}),
      ),
    ),
  ),
  'gated_pool': Op(
    call=lambda x, key: jaxpool.gated_pool(x, param((3, 3)), (3, 3), 2, 1),
    window=9,
    direct=lambda x, **kw: jaxpool.gated_pool(x, jnp.zeros((2, 2)), (2, 2), **kw),
    arguments={'gate': lambda v: jaxpool.gated_pool(ARG_X, v, (2, 2)), 'mask': MASK_VIA_DIRECT},
    diff={
      'gated_pool': DiffCase(
        lambda x, p, key: jaxpool.gated_pool(x, p['gate'], (2, 2), 1),
        lambda shape: dict(gate=f64((2, 2), 6, 0.5)),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.gated_pool(x, jnp.full(fuzz_filter(g), 0.1, x.dtype), **g),
    paths={
      'gated_pool': Windowed(lambda x, w, key: jaxpool.gated_pool(x, ramp(w), w, 1), winner=1)
    },
    masked={
      'gated_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.gated_pool(
          x, jnp.asarray(filter_of(w, 0.0), x.dtype), w, s, p, mask=m, **k
        ),
        gated_reduce,
        offsets=True,
      )
    },
    modules=(
      Spec(
        'GatedPool',
        dict(window=(2, 2), per_channel=True),
        lambda x, p: jaxpool.gated_pool(x, p['gate'], (2, 2)),
        nnx_kw=dict(num_features=MODULE_C, rngs=0),
        random_init=True,
      ),
    ),
    scalars=(
      Pair(
        'GatedPool',
        lambda **kw: jaxpool.gated_pool(SCALAR_X, jnp.zeros(W), W, **kw),
        dict(ceil_mode=FLAG, per_channel=FLAG),
        dict(window=W),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'per_channel'}),
      ),
    ),
  ),
  'tree_pool': Op(
    call=lambda x, key: jaxpool.tree_pool(x, param((4, 2, 2), 1), param((3, 2, 2), 2), (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.tree_pool(
      x, jnp.ones((1, 2, 2)), jnp.zeros((0, 2, 2)), (2, 2), **kw
    ),
    arguments={
      'leaves': lambda v: jaxpool.tree_pool(ARG_X, v, jnp.zeros((1, 2, 2)), (2, 2)),
      'gates': lambda v: jaxpool.tree_pool(ARG_X, jnp.zeros((2, 2, 2)), v, (2, 2)),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'tree_pool': DiffCase(
        lambda x, p, key: jaxpool.tree_pool(  # depth 1
          x, p['leaves'], p['gates'], (2, 2)
        ),
        lambda shape: dict(leaves=f64((2, 2, 2), 7, 0.5), gates=f64((1, 2, 2, shape[-1]), 8, 0.5)),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.tree_pool(
      x,
      jnp.full((2, *fuzz_filter(g)), 0.1, x.dtype),
      jnp.full((1, *fuzz_filter(g)), 0.2, x.dtype),
      **g,
    ),
    paths={
      'tree_pool': Windowed(
        lambda x, w, key: jaxpool.tree_pool(x, ramp((2, *w)), ramp((1, *w), 0.5, -0.5), w, 1)
      )
    },
    masked={
      'tree_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.tree_pool(
          x,
          jnp.asarray(np.stack([filter_of(w, 0.0), filter_of(w, 1.0)]), x.dtype),
          jnp.asarray(filter_of(w, 2.0)[None], x.dtype),
          w,
          s,
          p,
          mask=m,
          **k,
        ),
        tree_reduce,
        offsets=True,
      )
    },
    modules=(
      Spec(
        'TreePool',
        dict(window=(2, 2), depth=2),
        lambda x, p: jaxpool.tree_pool(x, p['leaves'], p['gates'], (2, 2)),
        nnx_kw=dict(rngs=0),
        random_init=True,
      ),
    ),
    scalars=(
      Pair(
        'TreePool',
        None,
        dict(per_channel=FLAG, depth=[*ints(0, 2, bad=(-1,))]),
        dict(window=W),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'per_channel', 'depth'}),
      ),
    ),
  ),
  'dpp_pool': Op(
    call=lambda x, key: jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2)),
    window=4,
    direct=lambda x, **kw: jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2), **kw),
    arguments={
      'alpha': lambda v: jaxpool.dpp_pool(ARG_X, v, 1.0, (2, 2)),
      'lam': lambda v: jaxpool.dpp_pool(ARG_X, 1.0, v, (2, 2)),
      'guide': lambda v: jaxpool.dpp_pool(ARG_X, 1.0, 1.0, (2, 2), guide=v),
      'eps': lambda v: jaxpool.dpp_pool(ARG_X, 1.0, 1.0, (2, 2), eps=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'dpp_pool': DiffCase(
        lambda x, p, key: jaxpool.dpp_pool(x, p['alpha'], p['lam'], (2, 2)),
        lambda shape: dict(
          alpha=unit((shape[-1],), 13, 0.5, 1.5), lam=unit((shape[-1],), 14, 1.0, 2.0)
        ),
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.dpp_pool(x, 1.0, 1.0, **g),
    paths={
      'dpp_pool': Windowed(
        lambda x, w, key: jaxpool.dpp_pool(x, 1.0, 1.0, w, 1),
        kinks={
          'constant': '|x - mean| ** lam with lam = 1: no second derivative at 0',
          'relu': '|x - mean| ** lam with lam = 1: no second derivative at 0',
          'pairs': '|x - mean| ** lam with lam = 1: no second derivative at 0',
        },
      )
    },
    masked={
      'dpp_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.dpp_pool(x, 0.5, 1.5, w, s, p, mask=m, **k),
        lambda xp, v, l: dpp_lite(xp, v),
      )
    },
    secondary={
      'dpp_pool-asymmetric': (lambda x: jaxpool.dpp_pool(x, 2.0, 3.0, (2, 2), symmetric=False), 4)
    },
    modules=(
      Spec(
        'DPP',
        dict(window=(2, 2), guide='full', symmetric=False),
        lambda x, p: jaxpool.dpp_pool(
          x,
          jnp.exp(p['log_alpha']),
          jnp.exp(p['log_lam']),
          (2, 2),
          guide=dpp_guide(x, p),
          symmetric=False,
        ),
        nnx_kw=dict(num_features=MODULE_C),
      ),
    ),
    scalars=(
      Pair(
        'DPP',
        lambda **kw: jaxpool.dpp_pool(SCALAR_X, 1.0, 1.0, W, **kw),
        dict(symmetric=FLAG, eps=POSITIVE, ceil_mode=FLAG),
        dict(window=W),
        nnx_kw=FEATURES_AND_RNGS,
      ),
      Pair(
        'DPP',
        None,
        dict(guide=choices('lite', 'full'), guide_window=[*ints(3, 1), Good((3, 1)), (3, 3, 3)]),
        dict(window=W, guide='full'),
        nnx_kw=FEATURES_AND_RNGS,
        module_only=frozenset({'guide', 'guide_window'}),
      ),
    ),
  ),
}
