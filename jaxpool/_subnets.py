"""The learned sub-networks that modules build around an op's function: LIP's logit window
and gate (the logits LIP pools by) and DPP's strided guide (its learned full guide).

The functions take these as plain arrays (``logits``, ``guide``); the linen and NNX modules
compute them with the parameters they own, both from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxpool import _geometry, _numerics
from jaxpool._geometry import Geometry


def strided_guide(
  x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray, geom: Geometry
) -> jnp.ndarray:
  """DPP's learned guide: a depthwise filter read with the pooling strides, at output resolution.

  ``kernel`` ``(*guide_window, 1, C)`` and ``bias`` ``(C,)``; filter tap ``j``
  of output ``p`` reads input ``p * s - lo_g + j``, which centres the filter on
  the pooling window's middle tap; zero padding. Computed in ``x``'s compute
  dtype; the result is :func:`dpp_pool`'s ``guide``.
  """
  n = geom.ndim
  nb = x.ndim - n - 1
  channels = x.shape[-1]
  gw = kernel.shape[:n]
  cdt = _numerics.compute_dtype(x.dtype)
  if channels == 0:  # no filter to apply (a grouped conv needs at least one group)
    return jnp.zeros((*x.shape[:nb], *geom.out_shape, 0), cdt)
  xb = x.astype(cdt).reshape(math.prod(x.shape[:nb]), *x.shape[nb:])  # no -1: empty x
  config = [(0, 0, 0)]
  for size, out, k, s, d, (lo, _), g in zip(
    geom.in_shape, geom.out_shape, geom.window, geom.strides, geom.dilation, geom.padding, gw
  ):
    lo_g = lo - d * (k - 1) // 2 + (g - 1) // 2
    config.append((lo_g, (out - 1) * s + g - size - lo_g, 0))
  config.append((0, 0, 0))
  xp = lax.pad(xb, jnp.zeros((), cdt), config)
  spatial = tuple(range(1, n + 1))
  dn = lax.ConvDimensionNumbers(
    lhs_spec=(0, n + 1, *spatial), rhs_spec=(n + 1, n, *range(n)), out_spec=(0, n + 1, *spatial)
  )
  guide = lax.conv_general_dilated(
    xp,
    kernel.astype(cdt),
    geom.strides,
    'VALID',
    dimension_numbers=dn,
    feature_group_count=channels,
    precision=lax.Precision.HIGHEST,
  )
  guide = guide + bias.astype(cdt)
  return guide.reshape(*x.shape[:nb], *geom.out_shape, channels)


def lip_logit_window(window: Sequence[int], logit_window: Sequence[int] | None) -> tuple[int, ...]:
  """The kernel size of LIP's default logit conv: ``logit_window``, or 3 per spatial dim.

  ``logit_window`` must have one entry per spatial dim of ``window``; the LIP
  modules check it at construction.
  """
  n = len(_geometry.normalize_window(window))
  if logit_window is None:
    return (3,) * n
  kernel = _geometry.normalize_window(logit_window, 'logit_window')
  if len(kernel) != n:
    raise ValueError(
      f'logit_window must have one entry per spatial dim of window {window!r}; got {logit_window!r}'
    )
  return kernel


def lip_gate(
  h: jnp.ndarray, scale: jnp.ndarray, bias: jnp.ndarray, coeff: float, eps: float, ndim: int, dtype
) -> jnp.ndarray:
  """LIP's default logits from its conv features ``h``: ``coeff * sigmoid(InstanceNorm(h))``.

  Instance norm over the ``ndim`` spatial dims before the channels (in f32:
  mean, biased variance plus ``eps``), then the per-channel ``scale`` and
  ``bias``, then the paper's ``SoftGate``, which bounds the logits to ``(0,
  coeff)``; cast to ``dtype``. The LIP modules of both Flax APIs apply it
  after their zero-initialised conv.
  """
  axes = tuple(range(h.ndim - ndim - 1, h.ndim - 1))
  h32 = h.astype(jnp.float32)
  mean = h32.mean(axes, keepdims=True)
  var = jnp.square(h32 - mean).mean(axes, keepdims=True)
  h32 = (h32 - mean) * lax.rsqrt(var + eps)
  return (coeff * jax.nn.sigmoid(h32 * scale + bias)).astype(dtype)
