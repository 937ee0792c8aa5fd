"""Anti-aliased pooling: BlurPool / MaxBlurPool vs a grouped-conv formulation and PyTorch CPU.

jaxpool's max_pool (2x2/s2) is the cost baseline: the op that anti-aliased
pooling replaces. PyTorch is timm's formulation,
``F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), binomial, stride=2, groups=C)``.
"""

from __future__ import annotations

import numpy as np
from jax import lax

import jaxpool
from benchmarks.common import Case
from jaxpool.blur import binomial_filter

BASELINE = 'jaxpool max_pool 2x2/s2'


def _grouped_conv(x, pad_mode='reflect'):
  """The direct JAX translation: reflect pad, then a depthwise lax conv."""
  import jax.numpy as jnp

  c = x.shape[-1]
  filt = np.tile(binomial_filter((3, 3))[:, :, None, None], (1, 1, 1, c)).astype(x.dtype)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=pad_mode)
  return lax.conv_general_dilated(
    xp,
    jnp.asarray(filt),
    (2, 2),
    'VALID',
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=c,
    precision=lax.Precision.HIGHEST,
  )


def _torch_blur(xt, dense_max=False):
  import torch
  import torch.nn.functional as F

  c = xt.shape[1]
  filt = torch.tensor(binomial_filter((3, 3)), dtype=xt.dtype)[None, None].repeat(c, 1, 1, 1)
  if dense_max:
    xt = F.max_pool2d(xt, 2, 1)
  return F.conv2d(F.pad(xt, (1, 1, 1, 1), mode='reflect'), filt, stride=2, groups=c)


def cases(quick: bool) -> list[Case]:
  shape = (2, 16, 16, 8) if quick else (16, 56, 56, 64)
  max_pool = lambda x: jaxpool.max_pool(x, (2, 2))
  return [
    Case(
      op='blur_pool',
      label='3x3/s2 reflect p1',
      shape=shape,
      baseline=BASELINE,
      jax={
        'jaxpool': lambda x: jaxpool.blur_pool(x, (3, 3), 2, 1, pad_mode='reflect'),
        'jaxpool default (SAME, renormalised zeros)': lambda x: jaxpool.blur_pool(x),
        'naive jax (grouped conv)': _grouped_conv,
        BASELINE: max_pool,
      },
      torch=_torch_blur,
      torch_channels_last=True,
    ),
    Case(
      op='max_blur_pool',
      label='max 2x2/s1 + blur 3x3/s2 reflect p1',
      shape=shape,
      baseline=BASELINE,
      jax={
        'jaxpool': lambda x: jaxpool.max_blur_pool(x, (2, 2), (3, 3), 2, 1, pad_mode='reflect'),
        'naive jax (lax max + grouped conv)': lambda x: _grouped_conv(
          lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), 'VALID')
        ),
        BASELINE: max_pool,
      },
      torch=lambda xt: _torch_blur(xt, dense_max=True),
      torch_channels_last=True,
    ),
  ]
