"""One representative call per public function, for tests that walk the whole API.

``CALLS[name](x, key)`` runs ``jaxpool.<name>`` on a channel-last input ``x``
of shape ``(*batch, H, W, C)`` (H, W >= 12, C = 4) with fixed, valid
parameters; ``key`` is a PRNG key for the stochastic ops (training mode).
Outputs may be pytrees. Every name in ``jaxpool.__all__`` must appear here
(``tests/test_hardening.py`` checks), so a new op cannot skip the
export/sharding/fuzz tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

import jaxpool

C = 4


def _param(shape, seed=0, scale=0.1):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, jnp.float32)


def _lift_down(x, key):
  del key
  return jaxpool.lift_down_pool(x, _param((3,), 1, 0.3), _param((2,), 2, 0.3))


def _lift_up(x, key):
  del key
  low, details = jaxpool.lift_down_pool(x, _param((3,), 1, 0.3), _param((2,), 2, 0.3))
  return jaxpool.lift_up_pool(low, details, _param((3,), 1, 0.3), _param((2,), 2, 0.3))


def _max_unpool(x, key):
  del key
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  return jaxpool.max_unpool(y, idx, (2, 2), output_size=x.shape[-3:-1])


def _weighted_unpool(name):
  def call(x, key):
    del key
    y, w = jaxpool.ada_pool(x, 0.5, (3, 3), 2, 1, return_weights=True)
    return getattr(jaxpool, name)(y, w, (3, 3), 2, 1, output_size=x.shape[-3:-1])

  return call


def _one_batch_dim(x):
  """(*batch, H, W, C) -> (N, H, W, C), N given explicitly (a -1 is ambiguous for empty arrays)."""
  n = 1
  for d in x.shape[:-3]:  # symbolic batch dims (export tests) multiply too
    n = n * d
  return x.reshape(n, *x.shape[-3:])


def _labels(x):
  """Segment labels 0, 1, 0, 1, ... over ``x``'s positions (label 2 stays empty)."""
  return (jnp.arange(math.prod(x.shape[:-1])) % 2).reshape(x.shape[:-1])


CALLS = {
  'max_pool': lambda x, key: jaxpool.max_pool(x, (3, 3), 2, 1),
  'min_pool': lambda x, key: jaxpool.min_pool(x, (3, 3), 2, 1, dilation=(1, 2)),
  'avg_pool': lambda x, key: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True),
  'lp_pool': lambda x, key: jaxpool.lp_pool(jnp.abs(x), 2.0, (2, 2)),
  'max_unpool': _max_unpool,
  'adaptive_avg_pool': lambda x, key: jaxpool.adaptive_avg_pool(x, (5, 3)),
  'adaptive_max_pool': lambda x, key: jaxpool.adaptive_max_pool(x, (5, 3)),
  'global_pool': lambda x, key: jaxpool.global_pool(_one_batch_dim(x), 'gem', p=3.0),
  'segment_pool': lambda x, key: jaxpool.segment_pool(
    _one_batch_dim(x), _labels(_one_batch_dim(x)), 3, 'gem', p=3.0
  ),
  'channel_pool': lambda x, key: jaxpool.channel_pool(x, 'avg'),
  'spatial_pyramid_pool': lambda x, key: jaxpool.spatial_pyramid_pool(_one_batch_dim(x), (1, 2, 3)),
  'soft_pool': lambda x, key: jaxpool.soft_pool(x, (3, 3), 2, 1),
  'lip_pool': lambda x, key: jaxpool.lip_pool(x, jnp.tanh(x[..., :1]), (3, 3), 2, 1),
  'edscw_pool': lambda x, key: jaxpool.edscw_pool(x, (2, 2)),
  'idw_pool': lambda x, key: jaxpool.idw_pool(x, (2, 2)),
  'ada_pool': lambda x, key: jaxpool.ada_pool(x, 0.3, (2, 2)),
  'weighted_unpool': _weighted_unpool('weighted_unpool'),
  'ada_unpool': _weighted_unpool('ada_unpool'),
  'max_avg_pool': lambda x, key: jaxpool.max_avg_pool(x, 0.3, (3, 3), 2, 1),
  'gated_pool': lambda x, key: jaxpool.gated_pool(x, _param((3, 3)), (3, 3), 2, 1),
  'tree_pool': lambda x, key: jaxpool.tree_pool(
    x, _param((4, 2, 2), 1), _param((3, 2, 2), 2), (2, 2)
  ),
  'dpp_pool': lambda x, key: jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2)),
  'blur_pool': lambda x, key: jaxpool.blur_pool(x),
  'max_blur_pool': lambda x, key: jaxpool.max_blur_pool(x),
  'lift_down_pool': _lift_down,
  'lift_up_pool': _lift_up,
  'stochastic_pool': lambda x, key: jaxpool.stochastic_pool(jnp.abs(x), (2, 2), key=key),
  'mixed_pool': lambda x, key: jaxpool.mixed_pool(x, (2, 2), key=key),
  's3_pool': lambda x, key: jaxpool.s3_pool(x, (2, 2), key=key),
  'fractional_max_pool': lambda x, key: jaxpool.fractional_max_pool(
    x, (2, 2), output_size=(7, 7), key=key
  ),
}

# Ops that mix information across the batch by design (none act across examples
# except through shared random draws, which never need the input gathered).
CROSS_EXAMPLE: set[str] = set()


# --- differentiable calls, for the transformation tests (tests/test_transformations.py) ------
#
# ``DIFF_CASES[case_id]`` is one differentiable call of ``jaxpool.<op>``:
# ``call(x, params, key)`` with ``params`` a dict of the op's *learnable*
# arguments (its tangents are tested too) built by ``params(shape)`` from the
# input shape, as float64 NumPy arrays (so they follow ``jax.enable_x64``).
# Every call works for any ``x`` of shape ``(*batch, H, W, C)`` with H, W >= 6,
# so the same table serves (2, 8, 8, 3) inputs and tiny (1, 6, 6, 2) ones
# (Jacobians, Hessians). Outputs are pytrees of float arrays only. Several
# cases may exercise one op (``op``); every function in ``jaxpool.__all__`` must
# be the ``op`` of at least one case (tests/test_transformations.py checks; an
# alias such as ``ada_unpool``, the same function as ``weighted_unpool``, is
# covered by the function's case).


@dataclasses.dataclass(frozen=True)
class DiffCase:
  """One differentiable call: ``call(x, params, key)``, learnable ``params(shape)``."""

  op: str
  call: Callable[..., Any]
  params: Callable[[tuple[int, ...]], dict] = lambda shape: {}
  positive: bool = False  # the op needs (or is only smooth on) positive inputs


def tie_free(shape, seed: int = 0, positive: bool = False) -> np.ndarray:
  """Float64 values without ties: a random permutation of a jittered grid.

  In ``(-1, 1)`` (``positive``: ``(0.25, 1.25)``); any two values differ by at
  least ``1 / size`` and none is within ``0.5 / size`` of 0, so maxima, signs
  and orders are unchanged by perturbations far below that (finite differences).
  """
  rng = np.random.default_rng(seed)
  n = math.prod(shape)
  v = (rng.permutation(n) + 0.5 + rng.uniform(-0.25, 0.25, n)) * (2.0 / n) - 1.0
  if positive:
    v = 0.75 + v / 2
  return v.reshape(shape)


def _f64(shape, seed, scale=1.0, offset=0.0):
  return np.random.default_rng(seed).standard_normal(shape) * scale + offset


def _unit(shape, seed, low=0.2, high=0.8):
  return np.random.default_rng(seed).uniform(low, high, shape)


def _half_up(shape):
  """Spatial output size of 3x3/s2/p1 pooling: ceil(L / 2) per dim."""
  return tuple(-(-s // 2) for s in shape[-3:-1])


def _d_lift_up(x, p, key):
  del key
  low, details = jaxpool.lift_down_pool(
    x, jnp.asarray([0.5, 0.5]), jnp.asarray([0.25, 0.25]), axes=-2
  )
  details = {k: 0.5 * v for k, v in details.items()}  # damped details: not the identity
  return jaxpool.lift_up_pool(low, details, p['predict'], p['update'], axes=-2)


def _d_max_unpool(x, p, key):
  del p, key
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  return jaxpool.max_unpool(y, idx, (2, 2), output_size=x.shape[-3:-1])


def _d_weighted_unpool(x, p, key):
  del key
  y = x[..., ::2, ::2, :]  # on the output grid of 3x3/s2/p1 pooling: differentiable y
  return jaxpool.weighted_unpool(y, p['weights'], (3, 3), 2, 1, output_size=x.shape[-3:-1])


def _images(x):
  """(*batch, H, W, C) -> (N, H, W, C) for the ops that take exactly one batch dim."""
  return x.reshape(-1, *x.shape[-3:])


_LIFT_PARAMS = lambda shape: dict(predict=_f64((3, shape[-1]), 11, 0.3), update=_f64((2,), 12, 0.3))

DIFF_CASES: dict[str, DiffCase] = {
  'max_pool': DiffCase('max_pool', lambda x, p, key: jaxpool.max_pool(x, (3, 3), 2, 1)),
  'min_pool': DiffCase(
    'min_pool', lambda x, p, key: jaxpool.min_pool(x, (3, 3), 2, 1, dilation=(1, 2))
  ),
  'avg_pool': DiffCase(
    'avg_pool', lambda x, p, key: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True)
  ),
  'lp_pool': DiffCase(
    'lp_pool',
    lambda x, p, key: jaxpool.lp_pool(x, p['p'], (2, 2)),
    lambda shape: dict(p=np.asarray(2.5)),
    positive=True,
  ),
  'max_unpool': DiffCase('max_unpool', _d_max_unpool),
  'adaptive_avg_pool': DiffCase(
    'adaptive_avg_pool', lambda x, p, key: jaxpool.adaptive_avg_pool(x, (5, 3))
  ),
  'adaptive_max_pool': DiffCase(
    'adaptive_max_pool', lambda x, p, key: jaxpool.adaptive_max_pool(x, (5, 3))
  ),
  'global_pool': DiffCase(
    'global_pool',
    lambda x, p, key: jaxpool.global_pool(_images(x), 'gem', p=p['p']),
    lambda shape: dict(p=_unit((shape[-1],), 1, 2.0, 4.0)),
    positive=True,
  ),
  'segment_pool': DiffCase(
    'segment_pool',
    lambda x, p, key: jaxpool.segment_pool(_images(x), _labels(_images(x)), 3, 'gem', p=p['p']),
    lambda shape: dict(p=_unit((shape[-1],), 1, 2.0, 4.0)),
    positive=True,
  ),
  'segment_pool-max': DiffCase(
    'segment_pool',
    lambda x, p, key: jaxpool.segment_pool(_images(x), _labels(_images(x)), 3, 'max'),
  ),
  'global_pool-catavgmax': DiffCase(
    'global_pool', lambda x, p, key: jaxpool.global_pool(_images(x), 'catavgmax')
  ),
  'channel_pool': DiffCase('channel_pool', lambda x, p, key: jaxpool.channel_pool(x, 'max')),
  'spatial_pyramid_pool': DiffCase(
    'spatial_pyramid_pool', lambda x, p, key: jaxpool.spatial_pyramid_pool(_images(x), (1, 2, 3))
  ),
  'soft_pool': DiffCase(
    'soft_pool',
    lambda x, p, key: jaxpool.soft_pool(
      x, (2, 2), 1, 1, temperature=p['temperature']
    ),  # overlap and padding
    lambda shape: dict(temperature=np.asarray(0.7)),
  ),
  'lip_pool': DiffCase(
    'lip_pool',
    lambda x, p, key: jaxpool.lip_pool(
      x, p['logits'] + jnp.tanh(x[..., :1]), (2, 2), 1
    ),  # overlapping windows
    lambda shape: dict(logits=_f64((*shape[:-1], 1), 3, 0.5)),
  ),
  'edscw_pool': DiffCase(
    'edscw_pool',
    lambda x, p, key: jaxpool.edscw_pool(  # weights too
      x, (1, 2), return_weights=True
    ),
  ),
  'idw_pool': DiffCase('idw_pool', lambda x, p, key: jaxpool.idw_pool(x, (2, 2))),
  'ada_pool': DiffCase(
    'ada_pool',
    lambda x, p, key: jaxpool.ada_pool(x, p['beta'], (1, 2)),
    lambda shape: dict(beta=_unit((shape[-1],), 4)),
  ),
  'weighted_unpool': DiffCase(
    'weighted_unpool',
    _d_weighted_unpool,
    lambda shape: dict(
      weights=_unit((*shape[:-3], *_half_up(shape), 3, 3, shape[-1]), 15, 0.05, 0.3)
    ),
  ),
  'max_avg_pool': DiffCase(
    'max_avg_pool',
    lambda x, p, key: jaxpool.max_avg_pool(x, p['alpha'], (3, 3), 2, 1),
    lambda shape: dict(alpha=_unit((shape[-1],), 5)),
  ),
  'gated_pool': DiffCase(
    'gated_pool',
    lambda x, p, key: jaxpool.gated_pool(x, p['gate'], (2, 2), 1),
    lambda shape: dict(gate=_f64((2, 2), 6, 0.5)),
  ),
  'tree_pool': DiffCase(
    'tree_pool',
    lambda x, p, key: jaxpool.tree_pool(  # depth 1
      x, p['leaves'], p['gates'], (2, 2)
    ),
    lambda shape: dict(leaves=_f64((2, 2, 2), 7, 0.5), gates=_f64((1, 2, 2, shape[-1]), 8, 0.5)),
  ),
  'dpp_pool': DiffCase(
    'dpp_pool',
    lambda x, p, key: jaxpool.dpp_pool(x, p['alpha'], p['lam'], (2, 2)),
    lambda shape: dict(
      alpha=_unit((shape[-1],), 13, 0.5, 1.5), lam=_unit((shape[-1],), 14, 1.0, 2.0)
    ),
  ),
  'blur_pool': DiffCase('blur_pool', lambda x, p, key: jaxpool.blur_pool(x)),
  'max_blur_pool': DiffCase('max_blur_pool', lambda x, p, key: jaxpool.max_blur_pool(x)),
  'lift_down_pool': DiffCase(
    'lift_down_pool',
    lambda x, p, key: jaxpool.lift_down_pool(x, p['predict'], p['update'], axes=-3),
    _LIFT_PARAMS,
  ),  # the height; lift_up: width
  'lift_up_pool': DiffCase('lift_up_pool', _d_lift_up, _LIFT_PARAMS),
  'stochastic_pool': DiffCase(
    'stochastic_pool', lambda x, p, key: jaxpool.stochastic_pool(x, (2, 2), key=key), positive=True
  ),
  'mixed_pool': DiffCase(
    'mixed_pool', lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), key=key, granularity='window')
  ),
  'mixed_pool-eval': DiffCase(
    'mixed_pool',
    lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), p_max=p['p_max']),
    lambda shape: dict(p_max=np.asarray(0.3)),
  ),
  's3_pool': DiffCase('s3_pool', lambda x, p, key: jaxpool.s3_pool(x, (2, 2), key=key)),
  'fractional_max_pool': DiffCase(
    'fractional_max_pool',
    lambda x, p, key: jaxpool.fractional_max_pool(x, (2, 2), output_ratio=0.6, key=key),
  ),
}
