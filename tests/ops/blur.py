"""The registry entries of ``jaxpool.blur``'s functions (:mod:`tests.ops`)."""

from __future__ import annotations

import jaxpool
from tests.ops.fixtures import FLAG, SCALAR_X, binomial_mean, choices, ints, max_blur_torch
from tests.ops.records import MASK_VIA_DIRECT, DiffCase, Masked, Op, Pair, Spec, Windowed

ENTRIES = {
  'blur_pool': Op(
    call=lambda x, key: jaxpool.blur_pool(x),
    window=9,
    direct=lambda x, **kw: jaxpool.blur_pool(x, **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'blur_pool': DiffCase(lambda x, p, key: jaxpool.blur_pool(x))},
    max_like=None,
    fuzz='no dilation or ceil_mode (a filter, not a window)',
    whole={'blur_pool (reflect)': (lambda x: jaxpool.blur_pool(x, pad_mode='reflect'), True)},
    masked={
      'blur_pool': Masked(
        lambda x, m, w, s, p, **k: jaxpool.blur_pool(x, w, s, p, mask=m, **k),
        binomial_mean,
        offsets=True,
      )
    },
    modules=(Spec('BlurPool', dict(), lambda x, p: jaxpool.blur_pool(x)),),
    scalars=(
      Pair(
        'BlurPool',
        lambda **kw: jaxpool.blur_pool(SCALAR_X, **kw),
        dict(
          pad_mode=choices('constant', 'reflect', 'edge'),
          count_include_pad=FLAG,
          strides=ints(2, 1),
        ),
      ),
    ),
  ),
  'max_blur_pool': Op(
    call=lambda x, key: jaxpool.max_blur_pool(x),
    window=9,
    direct=lambda x, **kw: jaxpool.max_blur_pool(x, **kw),
    arguments={'mask': MASK_VIA_DIRECT},
    diff={'max_blur_pool': DiffCase(lambda x, p, key: jaxpool.max_blur_pool(x))},
    max_like={
      'max_blur_pool': (
        lambda x: jaxpool.max_blur_pool(x, (2, 2), (3, 3), 2, padding=1, count_include_pad=True),
        max_blur_torch,
      )
    },
    fuzz='no dilation or ceil_mode',
    paths={
      'max_blur_pool': Windowed(
        lambda x, w, key: jaxpool.max_blur_pool(x, w, (3,) * len(w), 1, 'VALID'),
        winner=1,
        homogeneous=True,
      )
    },
    modules=(
      Spec(
        'MaxBlurPool',
        dict(window=(3, 3), blur=(2, 2)),
        lambda x, p: jaxpool.max_blur_pool(x, (3, 3), (2, 2)),
      ),
    ),
    scalars=(
      Pair(
        'MaxBlurPool',
        lambda **kw: jaxpool.max_blur_pool(SCALAR_X, **kw),
        dict(
          pad_mode=choices('constant', 'reflect', 'edge'), count_include_pad=FLAG, strides=ints(2)
        ),
      ),
    ),
  ),
}
