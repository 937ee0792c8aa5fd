"""The registry entries of ``jaxpool.stochastic``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxpool
from tests.ops.fixtures import (
  ARG_X,
  EVAL,
  FLAG,
  KEY0,
  NAN,
  PROBABILITY,
  SAMPLES,
  SCALAR_X,
  Good,
  W,
  choices,
  forms,
  ints,
  probabilistic_weighting,
)
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

ENTRIES = {
  'stochastic_pool': Op(
    call=lambda x, key: jaxpool.stochastic_pool(jnp.abs(x), (2, 2), key=key),
    window=4,
    direct=lambda x, **kw: jaxpool.stochastic_pool(x, (2, 2), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={
      'stochastic_pool': DiffCase(
        lambda x, p, key: jaxpool.stochastic_pool(x, (2, 2), key=key), positive=True
      )
    },
    max_like=None,
    fuzz=lambda x, g: jaxpool.stochastic_pool(jnp.abs(x), **g, key=KEY0),
    paths={
      'stochastic_pool': Windowed(
        lambda x, w, key: jaxpool.stochastic_pool(x * x + 0.25, w, 1, key=key), random=True
      )
    },
    masked={
      'stochastic_pool (eval)': Masked(
        lambda x, m, w, s, p, **k: jaxpool.stochastic_pool(x, w, s, p, mask=m, **k),
        lambda xp, v, l: probabilistic_weighting(xp, v),
      )
    },
    secondary={
      'stochastic_pool-eval-overlap': (lambda x: jaxpool.stochastic_pool(x, (3, 3), 2, 1), 9)
    },
    modules=(
      Spec(
        'StochasticPool',
        dict(window=(3, 3), strides=2, padding=1),
        lambda x, p, key: jaxpool.stochastic_pool(x, (3, 3), 2, 1, key=key),
        positive=True,
        random=True,
      ),
    ),
    scalars=(
      Pair(
        'StochasticPool',
        lambda **kw: jaxpool.stochastic_pool(SCALAR_X, W, **kw),
        dict(ceil_mode=FLAG),
        dict(window=W),
        call_kw=EVAL,
      ),
    ),
  ),
  'mixed_pool': Op(
    call=lambda x, key: jaxpool.mixed_pool(x, (2, 2), key=key),
    window=4,
    direct=lambda x, **kw: jaxpool.mixed_pool(x, (2, 2), **kw),
    arguments={
      'p_max': lambda v: jaxpool.mixed_pool(ARG_X, (2, 2), p_max=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'mixed_pool': DiffCase(
        lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), key=key, granularity='window')
      ),
      'mixed_pool-eval': DiffCase(
        lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), p_max=p['p_max']),
        lambda shape: dict(p_max=np.asarray(0.3)),
      ),
    },
    max_like={
      'mixed_pool': (
        lambda x: jaxpool.mixed_pool(x, (2, 2), p_max=1.0),
        lambda torch, t: torch.nn.functional.max_pool2d(t, 2),
      ),
      'mixed_pool-train': (
        lambda x: jaxpool.mixed_pool(x, (2, 2), key=KEY0, p_max=1.0),
        lambda torch, t: torch.nn.functional.max_pool2d(t, 2),
      ),
    },
    fuzz=lambda x, g: jaxpool.mixed_pool(x, **g, key=KEY0),
    paths={
      'mixed_pool': Windowed(
        lambda x, w, key: jaxpool.mixed_pool(x, w, 1, key=key),
        winner=1,
        homogeneous=True,
        random=True,
      )
    },
    masked={
      'mixed_pool (eval)': Masked(
        lambda x, m, w, s, p, **k: jaxpool.mixed_pool(x, w, s, p, p_max=0.3, mask=m, **k),
        lambda xp, v, l: 0.3 * v.max(0) + 0.7 * v.mean(0),
      )
    },
    secondary={
      'mixed_pool-eval-traced': (lambda x: jaxpool.mixed_pool(x, (2, 2), p_max=jnp.float32(0.3)), 4)
    },
    modules=(
      Spec(
        'MixedPool',
        dict(window=(2, 2), p_max=0.3, granularity='window'),
        lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), key=key, p_max=0.3, granularity='window'),
        random=True,
      ),
    ),
    scalars=(
      Pair(
        'MixedPool',
        lambda **kw: jaxpool.mixed_pool(SCALAR_X, W, **kw),
        dict(p_max=PROBABILITY, granularity=choices('batch', 'example', 'channel', 'window')),
        dict(window=W),
        call_kw=EVAL,
      ),
    ),
  ),
  's3_pool': Op(
    call=lambda x, key: jaxpool.s3_pool(x, (2, 2), key=key),
    window=4,
    direct=lambda x, **kw: jaxpool.s3_pool(x, (2, 2), **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'s3_pool': DiffCase(lambda x, p, key: jaxpool.s3_pool(x, (2, 2), key=key))},
    max_like={
      's3_pool': (
        lambda x: jaxpool.s3_pool(x, (2, 2)),
        lambda torch, t: torch.nn.functional.avg_pool2d(
          torch.nn.functional.max_pool2d(t, 2, 1), 2, 2, 1, count_include_pad=False
        ),
      )
    },
    fuzz='a grid, not strides',
    modules=(
      Spec(
        'S3Pool',
        dict(window=(2, 2), grid=4),
        lambda x, p, key: jaxpool.s3_pool(x, (2, 2), 4, key=key),
        random=True,
      ),
    ),
    scalars=(
      Pair(
        'S3Pool',
        lambda **kw: jaxpool.s3_pool(SCALAR_X, W, **kw),
        dict(grid=ints(2, 3, bad=(1, 0))),
        dict(window=W),
        call_kw=EVAL,
      ),
    ),
  ),
  'fractional_max_pool': Op(
    call=lambda x, key: jaxpool.fractional_max_pool(x, (2, 2), output_size=(7, 7), key=key),
    window=4,
    direct=lambda x, **kw: jaxpool.fractional_max_pool(x, (2, 2), output_size=3, **kw),
    arguments={
      'samples': lambda v: jaxpool.fractional_max_pool(ARG_X, (2, 2), output_size=3, samples=v),
      'mask': MASK_VIA_DIRECT,
    },
    diff={
      'fractional_max_pool': DiffCase(
        lambda x, p, key: jaxpool.fractional_max_pool(x, (2, 2), output_ratio=0.6, key=key)
      )
    },
    max_like={
      'fractional_max_pool': (
        lambda x: jaxpool.fractional_max_pool(
          x, (2, 2), output_size=3, samples=SAMPLES, return_indices=True
        ),
        lambda torch, t: torch.nn.functional.fractional_max_pool2d(
          t, 2, output_size=3, return_indices=True, _random_samples=torch.tensor(SAMPLES)
        ),
      )
    },
    fuzz='pseudo-random windows: output_size or output_ratio',
    paths={
      'fractional_max_pool': Windowed(
        lambda x, w, key: jaxpool.fractional_max_pool(x, w, output_size=(2,) * len(w), key=key),
        winner=1,
        homogeneous=True,
        random=True,
      )
    },
    modules=(
      Spec(
        'FractionalMaxPool',
        dict(window=(2, 2), output_ratio=0.6, return_indices=True),
        lambda x, p, key: jaxpool.fractional_max_pool(
          x, (2, 2), output_ratio=0.6, key=key, return_indices=True
        ),
        random=True,
      ),
    ),
    scalars=(
      Pair(
        'FractionalMaxPool',
        lambda **kw: jaxpool.fractional_max_pool(SCALAR_X, W, **{'output_size': 2, **kw}),
        dict(output_size=ints(2, 3, bad=(0, 4)), return_indices=FLAG),
        dict(window=W, output_size=2),
        call_kw=EVAL,
      ),
      Pair(
        'FractionalMaxPool',
        lambda **kw: jaxpool.fractional_max_pool(SCALAR_X, W, **kw),
        dict(output_ratio=[*forms(0.5), Good((0.5, 0.75)), 0, 1.5, NAN, True, 'a']),
        dict(window=W),
        call_kw=EVAL,
      ),
    ),
  ),
}
