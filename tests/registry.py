"""One record per windowed op, parametrised by its window: the path sweeps' registry.

``WINDOWED[name].call(x, window, key)`` runs the op on ``x`` of shape
``(N, *spatial, C)`` with ``len(spatial) == len(window)``, stride 1 (windows
overlap, so a tie can straddle two windows) and fixed learnable arguments; the
window picks the path (up to ``_windows.UNROLL_MAX_TAPS`` taps unrolled, beyond
it stacked, beyond 25 taps with a side above 9 the per-dim passes). ``key`` is
a PRNG key for the stochastic ops' training mode, ``None`` for evaluation.

The flags say what a sweep may expect of the op:

- ``winner``: ``+1`` for the max family (the first maximum wins), ``-1`` for
  the min family, ``0`` for smooth ops. Breaking a tie by ``x - winner * delta
  * flat_index`` reproduces the op's rule, so the derivatives at a tie equal
  those at the tie-broken input (exactly for the max family, to ``O(delta)``
  for smooth ops).
- ``homogeneous``: ``f(c x) = c f(x)`` for ``c > 0`` (up to an ``eps`` far below
  the inputs' scale), so the gradient does not depend on the scale.
- ``kinks``: the tie classes at which the op is not twice differentiable (a
  norm at 0, an inverse distance at 0), with the reason; the Hessian sweep skips
  them.
- ``random``: the op draws in training mode (``key`` given).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

import jaxpool


@dataclasses.dataclass(frozen=True)
class Windowed:
  call: Callable[..., Any]
  winner: int = 0
  homogeneous: bool = False
  kinks: dict[str, str] = dataclasses.field(default_factory=dict)
  random: bool = False


def _ramp(shape, low=-0.5, high=0.5):
  return jnp.asarray(np.linspace(low, high, int(np.prod(shape))).reshape(shape), jnp.float32)


def _ones(n):
  return (1,) * n


WINDOWED = {
  'max_pool': Windowed(lambda x, w, key: jaxpool.max_pool(x, w, 1), winner=1, homogeneous=True),
  'min_pool': Windowed(lambda x, w, key: jaxpool.min_pool(x, w, 1), winner=-1, homogeneous=True),
  'avg_pool': Windowed(lambda x, w, key: jaxpool.avg_pool(x, w, 1), homogeneous=True),
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
  'soft_pool': Windowed(lambda x, w, key: jaxpool.soft_pool(x, w, 1)),
  'lip_pool': Windowed(lambda x, w, key: jaxpool.lip_pool(x, 0.5 * x, w, 1)),
  'edscw_pool': Windowed(
    lambda x, w, key: jaxpool.edscw_pool(x, w, 1),
    kinks={'relu': 'exp(x) / sum exp(x) - 1 weights: 0/0 at an all-zero window'},
  ),
  'idw_pool': Windowed(
    lambda x, w, key: jaxpool.idw_pool(x, w, 1),
    homogeneous=True,
    kinks={
      'constant': '1 / (|x - mean| + eps): |.| at 0 in a constant window',
      'relu': '1 / (|x - mean| + eps): |.| at 0 in an all-zero window',
      'pairs': '1 / (|x - mean| + eps): |.| at 0 where a tap equals the mean',
    },
  ),
  'ada_pool': Windowed(
    lambda x, w, key: jaxpool.ada_pool(x, 0.3, w, 1),
    kinks={'relu': 'its eDSCW half: 0/0 weights at an all-zero window'},
  ),
  'max_avg_pool': Windowed(
    lambda x, w, key: jaxpool.max_avg_pool(x, 0.3, w, 1), winner=1, homogeneous=True
  ),
  'gated_pool': Windowed(lambda x, w, key: jaxpool.gated_pool(x, _ramp(w), w, 1), winner=1),
  'tree_pool': Windowed(
    lambda x, w, key: jaxpool.tree_pool(x, _ramp((2, *w)), _ramp((1, *w), 0.5, -0.5), w, 1)
  ),
  'dpp_pool': Windowed(
    lambda x, w, key: jaxpool.dpp_pool(x, 1.0, 1.0, w, 1),
    kinks={
      'constant': '|x - mean| ** lam with lam = 1: no second derivative at 0',
      'relu': '|x - mean| ** lam with lam = 1: no second derivative at 0',
      'pairs': '|x - mean| ** lam with lam = 1: no second derivative at 0',
    },
  ),
  'max_blur_pool': Windowed(
    lambda x, w, key: jaxpool.max_blur_pool(x, w, (3,) * len(w), 1, 'VALID'),
    winner=1,
    homogeneous=True,
  ),
  'stochastic_pool': Windowed(
    lambda x, w, key: jaxpool.stochastic_pool(x * x + 0.25, w, 1, key=key), random=True
  ),
  'mixed_pool': Windowed(
    lambda x, w, key: jaxpool.mixed_pool(x, w, 1, key=key), winner=1, homogeneous=True, random=True
  ),
  'fractional_max_pool': Windowed(
    lambda x, w, key: jaxpool.fractional_max_pool(x, w, output_size=(2,) * len(w), key=key),
    winner=1,
    homogeneous=True,
    random=True,
  ),
}

#: Global and adaptive ops (no window argument): ``call(x)`` on ``(N, H, W, C)``.
WHOLE = {
  'adaptive_avg_pool': (lambda x: jaxpool.adaptive_avg_pool(x, (5, 3)), True),
  'adaptive_max_pool': (lambda x: jaxpool.adaptive_max_pool(x, (5, 3)), True),
  'global_pool (avg)': (lambda x: jaxpool.global_pool(x, 'avg'), True),
  'global_pool (max)': (lambda x: jaxpool.global_pool(x, 'max'), True),
  'global_pool (lp)': (lambda x: jaxpool.global_pool(x, 'lp', p=3.0), True),
  'global_pool (catavgmax)': (lambda x: jaxpool.global_pool(x, 'catavgmax'), True),
  'spatial_pyramid_pool': (lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 3)), True),
  'spatial_pyramid_pool (avg)': (
    lambda x: jaxpool.spatial_pyramid_pool(x, (1, 2, 3), method='avg'),
    True,
  ),
  'channel_pool': (lambda x: jaxpool.channel_pool(x, 'max'), True),
  'blur_pool (reflect)': (lambda x: jaxpool.blur_pool(x, pad_mode='reflect'), True),
}

#: Windows that take each path: unrolled (<= 9 taps), stacked (> 9 taps), per-dim passes
#: (> 25 taps with a side above 9), in 2-d and 1-d.
PATHS = {'2x2': (2, 2), '3x3': (3, 3), '5x5': (5, 5), '4x3': (4, 3), '10x10': (10, 10), '30': (30,)}


# --- masked ops ---------------------------------------------------------------------------


def _softmax_mean(xp, v, z):
  """``sum softmax(z) v`` over axis 0 (the window's taps), max-subtracted."""
  e = xp.exp(z - z.max(0))
  return (e * v).sum(0) / e.sum(0)


def _dsc(xp, v, eps=1e-6):
  a = v.mean(0)
  return _softmax_mean(xp, v, (2 * xp.abs(v * a) + eps) / (v * v + a * a + eps))


def _idw(xp, v, eps=1e-6):
  w = 1 / (xp.abs(v - v.mean(0)) + eps)
  return (w * v).sum(0) / w.sum(0)


def _filter(window, phase: float) -> np.ndarray:
  """A fixed learned-filter stand-in of shape ``window`` (gates, tree leaves)."""
  return 0.4 * np.cos(1.7 * np.arange(int(np.prod(window))) + phase).reshape(window)


def _at(xp, window, phase, o):
  """The kept taps' filter values, ``(n, 1)``: ``o`` their flat window offsets."""
  return xp.asarray(_filter(window, phase).reshape(-1)[np.asarray(o)])[:, None]


def _sigmoid(xp, z):
  return 1 / (1 + xp.exp(-z))


def _gated(xp, v, o, w):
  s = _sigmoid(xp, (_at(xp, w, 0.0, o) * v).sum(0))
  return s * v.max(0) + (1 - s) * v.mean(0)


def _tree(xp, v, o, w):
  s = _sigmoid(xp, (_at(xp, w, 2.0, o) * v).sum(0))
  return s * (_at(xp, w, 0.0, o) * v).sum(0) + (1 - s) * (_at(xp, w, 1.0, o) * v).sum(0)


def _binomial_mean(xp, v, o, w):
  """The binomial filter's weighted mean of the kept taps (the filter renormalised)."""
  rows = [np.array([math.comb(k - 1, j) for j in range(k)], float) for k in w]
  f = functools.reduce(np.multiply.outer, rows).reshape(-1)[np.asarray(o)]
  f = xp.asarray(f)[:, None]
  return (f * v).sum(0) / f.sum(0)


def _probabilistic_weighting(xp, v):
  """Stochastic pooling's evaluation: ``sum a**2 / sum a``, ``a = max(v, 0)``; 0 without a
  positive entry."""
  a = xp.maximum(v, 0)
  total = a.sum(0)
  return xp.where(total > 0, (a * a).sum(0) / xp.where(total > 0, total, 1), 0)


def _dpp_lite(xp, v, alpha=0.5, lam=1.5, eps=1e-3):
  penalty = (v - v.mean(0)) ** 2 + eps
  w = alpha + (penalty / penalty.mean(0)) ** (lam / 2)
  return (w * v).sum(0) / w.sum(0)


@dataclasses.dataclass(frozen=True)
class Masked:
  """A windowed op with ``mask=``: ``call(x, mask, window, strides, padding, **kw)`` and the
  reduction of one window's unmasked taps, ``reduce(xp, v, logits)`` over axis 0 of ``v``
  (``xp`` NumPy or jax.numpy: the tests' float64 window loop runs it on the kept taps).

  ``winner``: +1/-1 for the max/min family (``return_indices`` for max). ``logits``: the op
  takes LIP logits, passed as ``0.5 * x + 0.25`` (their taps reach ``reduce``).
  ``offsets``: the op weighs taps by a filter of the window's shape; ``reduce`` then takes
  ``(xp, v, o, window)``, ``o`` the kept taps' flat offsets in the window.
  """

  call: Callable[..., Any]
  reduce: Callable[..., Any]
  winner: int = 0
  logits: bool = False
  offsets: bool = False


MASKED = {
  'max_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.max_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: v.max(0),
    winner=1,
  ),
  'min_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.min_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: v.min(0),
    winner=-1,
  ),
  'avg_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.avg_pool(x, w, s, p, count_include_pad=False, mask=m, **k),
    lambda xp, v, l: v.mean(0),
  ),
  'lp_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.lp_pool(x, 2.0, w, s, p, mask=m, **k),
    lambda xp, v, l: xp.sqrt((v * v).sum(0)),
  ),
  'soft_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.soft_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: _softmax_mean(xp, v, v),
  ),
  'soft_pool (traced T)': Masked(
    lambda x, m, w, s, p, **k: jaxpool.soft_pool(
      x, w, s, p, temperature=jnp.asarray(0.5), mask=m, **k
    ),
    lambda xp, v, l: _softmax_mean(xp, v, v / 0.5),
  ),
  'lip_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.lip_pool(x, 0.5 * x + 0.25, w, s, p, mask=m, **k),
    lambda xp, v, l: _softmax_mean(xp, v, l),
    logits=True,
  ),
  'edscw_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.edscw_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: _dsc(xp, v),
  ),
  'idw_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.idw_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: _idw(xp, v),
  ),
  'ada_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.ada_pool(x, 0.3, w, s, p, mask=m, **k),
    lambda xp, v, l: 0.3 * _dsc(xp, v) + 0.7 * _softmax_mean(xp, v, v),
  ),
  'max_avg_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.max_avg_pool(x, 0.3, w, s, p, mask=m, **k),
    lambda xp, v, l: 0.3 * v.max(0) + 0.7 * v.mean(0),
  ),
  'gated_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.gated_pool(
      x, jnp.asarray(_filter(w, 0.0), x.dtype), w, s, p, mask=m, **k
    ),
    _gated,
    offsets=True,
  ),
  'tree_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.tree_pool(
      x,
      jnp.asarray(np.stack([_filter(w, 0.0), _filter(w, 1.0)]), x.dtype),
      jnp.asarray(_filter(w, 2.0)[None], x.dtype),
      w,
      s,
      p,
      mask=m,
      **k,
    ),
    _tree,
    offsets=True,
  ),
  'stochastic_pool (eval)': Masked(
    lambda x, m, w, s, p, **k: jaxpool.stochastic_pool(x, w, s, p, mask=m, **k),
    lambda xp, v, l: _probabilistic_weighting(xp, v),
  ),
  'mixed_pool (eval)': Masked(
    lambda x, m, w, s, p, **k: jaxpool.mixed_pool(x, w, s, p, p_max=0.3, mask=m, **k),
    lambda xp, v, l: 0.3 * v.max(0) + 0.7 * v.mean(0),
  ),
  'blur_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.blur_pool(x, w, s, p, mask=m, **k),
    _binomial_mean,
    offsets=True,
  ),
  'dpp_pool': Masked(
    lambda x, m, w, s, p, **k: jaxpool.dpp_pool(x, 0.5, 1.5, w, s, p, mask=m, **k),
    lambda xp, v, l: _dpp_lite(xp, v),
  ),
}

#: global_pool methods with mask=: the reduction of one example's unmasked positions.
GLOBAL_MASKED = {
  'avg': ({}, lambda xp, v: v.mean(0)),
  'max': ({}, lambda xp, v: v.max(0)),
  'soft': ({'temperature': 0.7}, lambda xp, v: _softmax_mean(xp, v, v / 0.7)),
  'lp': ({'p': 3.0}, lambda xp, v: ((v**3).sum(0)) ** (1 / 3)),
  'gem': ({'p': 3.0}, lambda xp, v: ((xp.maximum(v, 1e-6) ** 3).mean(0)) ** (1 / 3)),
  'avgmax': ({}, lambda xp, v: (v.mean(0) + v.max(0)) / 2),
  'catavgmax': ({}, lambda xp, v: xp.concatenate([v.mean(0), v.max(0)])),
}
