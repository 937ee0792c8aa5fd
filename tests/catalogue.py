"""One representative call per public function, for tests that walk the whole API.

``CALLS[name](x, key)`` runs ``jaxpool.<name>`` on a channel-last input ``x``
of shape ``(*batch, H, W, C)`` (H, W >= 12, C = 4) with fixed, valid
parameters; ``key`` is a PRNG key for the stochastic ops (training mode).
Outputs may be pytrees. Every name in ``jaxpool.__all__`` must appear here
(``tests/test_hardening.py`` checks), so a new op cannot skip the
export/sharding/fuzz tests.
"""

from __future__ import annotations

import jax
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
    return getattr(jaxpool, name)(y, w, (3, 3), 2, 1, output_shape=x.shape[-3:-1])
  return call


def _one_batch_dim(x):
  """(*batch, H, W, C) -> (N, H, W, C), N given explicitly (a -1 is ambiguous for empty arrays)."""
  n = 1
  for d in x.shape[:-3]:  # symbolic batch dims (export tests) multiply too
    n = n * d
  return x.reshape(n, *x.shape[-3:])


CALLS = {
    'max_pool': lambda x, key: jaxpool.max_pool(x, (3, 3), 2, 1),
    'min_pool': lambda x, key: jaxpool.min_pool(x, (3, 3), 2, 1, dilation=(1, 2)),
    'avg_pool': lambda x, key: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True),
    'lp_pool': lambda x, key: jaxpool.lp_pool(jnp.abs(x), 2.0, (2, 2)),
    'max_unpool': _max_unpool,
    'adaptive_avg_pool': lambda x, key: jaxpool.adaptive_avg_pool(x, (5, 3)),
    'adaptive_max_pool': lambda x, key: jaxpool.adaptive_max_pool(x, (5, 3)),
    'global_pool': lambda x, key: jaxpool.global_pool(_one_batch_dim(x), 'gem', p=3.0),
    'channel_pool': lambda x, key: jaxpool.channel_pool(x, 'avg'),
    'spatial_pyramid_pool': lambda x, key: jaxpool.spatial_pyramid_pool(
        _one_batch_dim(x), (1, 2, 3)),
    'soft_pool': lambda x, key: jaxpool.soft_pool(x, (3, 3), 2, 1),
    'lip_pool': lambda x, key: jaxpool.lip_pool(x, jnp.tanh(x[..., :1]), (3, 3), 2, 1),
    'edscw_pool': lambda x, key: jaxpool.edscw_pool(x, (2, 2)),
    'idw_pool': lambda x, key: jaxpool.idw_pool(x, (2, 2)),
    'ada_pool': lambda x, key: jaxpool.ada_pool(x, 0.3, (2, 2)),
    'weighted_unpool': _weighted_unpool('weighted_unpool'),
    'ada_unpool': _weighted_unpool('ada_unpool'),
    'max_avg_pool': lambda x, key: jaxpool.max_avg_pool(x, 0.3, (3, 3), 2, 1),
    'gated_pool': lambda x, key: jaxpool.gated_pool(x, _param((3, 3)), (3, 3), 2, 1),
    'tree_pool': lambda x, key: jaxpool.tree_pool(x, _param((4, 2, 2), 1), _param((3, 2, 2), 2),
                                                  (2, 2)),
    'dpp_pool': lambda x, key: jaxpool.dpp_pool(x, 1.0, 1.0, (2, 2)),
    'blur_pool': lambda x, key: jaxpool.blur_pool(x),
    'max_blur_pool': lambda x, key: jaxpool.max_blur_pool(x),
    'lift_down_pool': _lift_down,
    'lift_up_pool': _lift_up,
    'stochastic_pool': lambda x, key: jaxpool.stochastic_pool(jnp.abs(x), (2, 2), key=key),
    'mixed_pool': lambda x, key: jaxpool.mixed_pool(x, (2, 2), key=key),
    's3_pool': lambda x, key: jaxpool.s3_pool(x, (2, 2), key=key),
    'fractional_max_pool': lambda x, key: jaxpool.fractional_max_pool(
        x, (2, 2), output_size=(7, 7), key=key),
}

# Ops that mix information across the batch by design (none act across examples
# except through shared random draws, which never need the input gathered).
CROSS_EXAMPLE: set[str] = set()
