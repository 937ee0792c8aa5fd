"""Inputs and helpers the registry's entries share (:mod:`tests.ops`)."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxpool


# --- from catalogue
def param(shape, seed=0, scale=0.1):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, jnp.float32)


def lift_down_call(x, key):
  del key
  return jaxpool.lift_down_pool(x, param((3,), 1, 0.3), param((2,), 2, 0.3))


def lift_up_call(x, key):
  del key
  low, details = jaxpool.lift_down_pool(x, param((3,), 1, 0.3), param((2,), 2, 0.3))
  return jaxpool.lift_up_pool(low, details, param((3,), 1, 0.3), param((2,), 2, 0.3))


def max_unpool_call(x, key):
  del key
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  return jaxpool.max_unpool(y, idx, (2, 2), output_size=x.shape[-3:-1])


def weighted_unpool_call(name):
  def call(x, key):
    del key
    y, w = jaxpool.ada_pool(x, 0.5, (3, 3), 2, 1, return_weights=True)
    return getattr(jaxpool, name)(y, w, (3, 3), 2, 1, output_size=x.shape[-3:-1])

  return call


def one_batch_dim(x):
  """(*batch, H, W, C) -> (N, H, W, C), N given explicitly (a -1 is ambiguous for empty arrays)."""
  n = 1
  for d in x.shape[:-3]:  # symbolic batch dims (export tests) multiply too
    n = n * d
  return x.reshape(n, *x.shape[-3:])


def labels(x):
  """Segment labels 0, 1, 0, 1, ... over ``x``'s positions (label 2 stays empty)."""
  return (jnp.arange(math.prod(x.shape[:-1])) % 2).reshape(x.shape[:-1])


def f64(shape, seed, scale=1.0, offset=0.0):
  return np.random.default_rng(seed).standard_normal(shape) * scale + offset


def unit(shape, seed, low=0.2, high=0.8):
  return np.random.default_rng(seed).uniform(low, high, shape)


def half_up(shape):
  """Spatial output size of 3x3/s2/p1 pooling: ceil(L / 2) per dim."""
  return tuple(-(-s // 2) for s in shape[-3:-1])


def diff_lift_up(x, p, key):
  del key
  low, details = jaxpool.lift_down_pool(
    x, jnp.asarray([0.5, 0.5]), jnp.asarray([0.25, 0.25]), axes=-2
  )
  details = {k: 0.5 * v for k, v in details.items()}  # damped details: not the identity
  return jaxpool.lift_up_pool(low, details, p['predict'], p['update'], axes=-2)


def diff_max_unpool(x, p, key):
  del p, key
  y, idx = jaxpool.max_pool(x, (2, 2), return_indices=True)
  return jaxpool.max_unpool(y, idx, (2, 2), output_size=x.shape[-3:-1])


def diff_weighted_unpool(x, p, key):
  del key
  y = x[..., ::2, ::2, :]  # on the output grid of 3x3/s2/p1 pooling: differentiable y
  return jaxpool.weighted_unpool(y, p['weights'], (3, 3), 2, 1, output_size=x.shape[-3:-1])


def images(x):
  """(*batch, H, W, C) -> (N, H, W, C) for the ops that take exactly one batch dim."""
  return x.reshape(-1, *x.shape[-3:])


LIFT_PARAMS = lambda shape: dict(predict=f64((3, shape[-1]), 11, 0.3), update=f64((2,), 12, 0.3))


# --- from registry
def ramp(shape, low=-0.5, high=0.5):
  return jnp.asarray(np.linspace(low, high, int(np.prod(shape))).reshape(shape), jnp.float32)


def softmax_mean(xp, v, z):
  """``sum softmax(z) v`` over axis 0 (the window's taps), max-subtracted."""
  e = xp.exp(z - z.max(0))
  return (e * v).sum(0) / e.sum(0)


def dsc_reduce(xp, v, eps=1e-6):
  a = v.mean(0)
  return softmax_mean(xp, v, (2 * xp.abs(v * a) + eps) / (v * v + a * a + eps))


def idw_reduce(xp, v, eps=1e-6):
  w = 1 / (xp.abs(v - v.mean(0)) + eps)
  return (w * v).sum(0) / w.sum(0)


def filter_of(window, phase: float) -> np.ndarray:
  """A fixed learned-filter stand-in of shape ``window`` (gates, tree leaves)."""
  return 0.4 * np.cos(1.7 * np.arange(int(np.prod(window))) + phase).reshape(window)


def filter_at(xp, window, phase, o):
  """The kept taps' filter values, ``(n, 1)``: ``o`` their flat window offsets."""
  return xp.asarray(filter_of(window, phase).reshape(-1)[np.asarray(o)])[:, None]


def sigmoid(xp, z):
  return 1 / (1 + xp.exp(-z))


def gated_reduce(xp, v, o, w):
  s = sigmoid(xp, (filter_at(xp, w, 0.0, o) * v).sum(0))
  return s * v.max(0) + (1 - s) * v.mean(0)


def tree_reduce(xp, v, o, w):
  s = sigmoid(xp, (filter_at(xp, w, 2.0, o) * v).sum(0))
  return s * (filter_at(xp, w, 0.0, o) * v).sum(0) + (1 - s) * (filter_at(xp, w, 1.0, o) * v).sum(0)


def binomial_mean(xp, v, o, w):
  """The binomial filter's weighted mean of the kept taps (the filter renormalised)."""
  rows = [np.array([math.comb(k - 1, j) for j in range(k)], float) for k in w]
  f = functools.reduce(np.multiply.outer, rows).reshape(-1)[np.asarray(o)]
  f = xp.asarray(f)[:, None]
  return (f * v).sum(0) / f.sum(0)


def probabilistic_weighting(xp, v):
  """Stochastic pooling's evaluation: ``sum a**2 / sum a``, ``a = max(v, 0)``; 0 without a
  positive entry."""
  a = xp.maximum(v, 0)
  total = a.sum(0)
  return xp.where(total > 0, (a * a).sum(0) / xp.where(total > 0, total, 1), 0)


def dpp_lite(xp, v, alpha=0.5, lam=1.5, eps=1e-3):
  penalty = (v - v.mean(0)) ** 2 + eps
  w = alpha + (penalty / penalty.mean(0)) ** (lam / 2)
  return (w * v).sum(0) / w.sum(0)


# --- from modcat
X_SHAPE = (2, 8, 8, 3)

MODULE_C = X_SHAPE[-1]


def lip_logits(x, p, coeff=12.0, eps=1e-5):
  """LIP's default logits written out: zero-pad SAME conv, instance norm, coeff * sigmoid."""
  x32 = x.astype(jnp.float32)
  h = jax.lax.conv_general_dilated(
    x32,
    p['conv']['kernel'],
    (1, 1),
    'SAME',
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    precision=jax.lax.Precision.HIGHEST,
  )
  mean = h.mean((1, 2), keepdims=True)
  var = ((h - mean) ** 2).mean((1, 2), keepdims=True)
  h = (h - mean) / jnp.sqrt(var + eps)
  return (coeff * jax.nn.sigmoid(h * p['scale'] + p['bias'])).astype(x.dtype)


def dpp_guide(x, p):
  """DPP's full guide for 2x2/s2 pooling: depthwise 3x3, stride 2, zero row/col on top/left."""
  h = jax.lax.conv_general_dilated(
    x.astype(jnp.float32),
    p['guide_kernel'],
    (2, 2),
    ((1, 0), (1, 0)),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=MODULE_C,
    precision=jax.lax.Precision.HIGHEST,
  )
  return h + p['guide_bias']


def lift_operator(p):
  """LiftPool's P/U written out: conv(3, SAME) -> relu -> conv(1) -> tanh along axis -2."""

  def conv(v, q):
    lead = v.shape[:-2]
    v2 = v.astype(jnp.float32).reshape(-1, *v.shape[-2:])
    h = (
      jax.lax.conv_general_dilated(
        v2,
        q['kernel'],
        (1,),
        'SAME',
        dimension_numbers=('NWC', 'WIO', 'NWC'),
        precision=jax.lax.Precision.HIGHEST,
      )
      + q['bias']
    )
    return h.reshape(*lead, *h.shape[-2:])

  return lambda v: jnp.tanh(conv(jax.nn.relu(conv(v, p['conv_k'])), p['conv_1'])).astype(v.dtype)


def ada_weights(x):
  return jaxpool.ada_pool(x, 0.5, (3, 3), 2, 1, return_weights=True)


def module_lifted(x):
  op = lambda v: 0.5 * v
  return jaxpool.lift_down_pool(x, op, op)


def segment_ids(x):
  """Labels 0, 1, 0, 1, ... over ``x``'s positions (segment 2 stays empty)."""
  return (jnp.arange(math.prod(x.shape[:-1])) % 2).reshape(x.shape[:-1])


def sig(p):
  return jax.nn.sigmoid(p)


# --- from hard
KEY0 = jax.random.key(0)


# --- from rel
def max_blur_torch(torch, t):
  filt = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16
  w = torch.tensor(np.broadcast_to(filt, (2, 1, 3, 3)).copy(), dtype=torch.float32)
  return torch.nn.functional.conv2d(
    torch.nn.functional.max_pool2d(t, 2, 1), w, stride=2, padding=1, groups=2
  )


def channel_max_torch(torch, t):
  # a max pool over the channel axis: PyTorch's max_pool1d kernel with the window C
  n, c, h, w = t.shape
  flat = t.permute(0, 2, 3, 1).reshape(n * h * w, 1, c)
  return torch.nn.functional.max_pool1d(flat, c).reshape(n, h, w, 1).permute(0, 3, 1, 2)


def pyramid_torch(torch, t):
  F = torch.nn.functional
  return torch.cat(
    [F.adaptive_max_pool2d(t, l).permute(0, 2, 3, 1).reshape(t.shape[0], -1) for l in (1, 2, 3)],
    dim=1,
  )


SAMPLES = np.random.default_rng(5).uniform(0, 1, (2, 2, 2)).astype(np.float32)

ARG_X_NP = np.random.default_rng(4).standard_normal((2, 8, 8, 3)).astype(np.float32)

ARG_X = jnp.asarray(ARG_X_NP)

ARG_Y, ARG_INDICES = jaxpool.max_pool(ARG_X, (2, 2), return_indices=True)
ARG_YW, ARG_WEIGHTS = jaxpool.ada_pool(ARG_X, 0.5, (2, 2), return_weights=True)
ARG_LOW, ARG_DETAILS = jaxpool.lift_down_pool(ARG_X, jnp.ones(1), jnp.ones(1))
NAN, INF = float('nan'), float('inf')


# --- from hard
def fuzz_filter(g):
  """The filter shape of a gated/tree call: the window, or (2, 2) where the window is one of the
  bad values under test (so the op, not the test's filter, meets it)."""
  w = g['window']
  ok = isinstance(w, tuple) and all(isinstance(k, int) and k > 0 for k in w)
  return w if ok else (2, 2)


# --- from args
class Good:
  """A value the argument must accept (plain values must be refused)."""

  def __init__(self, value: Any):
    self.value = value

  def __repr__(self):
    return f'Good({self.value!r})'


SCALAR_C = 2

SCALAR_X = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (1, 4, 4, SCALAR_C)), jnp.float32)

SCALAR_IDS = (jnp.arange(16) % 2).reshape(1, 4, 4)


def forms(*values):
  """Good values as Python, NumPy and 0-d JAX: ``forms(2)`` -> 2, np.int64(2), jnp 2."""
  numpy = {bool: np.bool_, int: np.int64, float: np.float32}
  return [Good(f(v)) for v in values for f in (lambda v: v, numpy[type(v)], jnp.asarray)]


FLAG = [
  Good(True),
  Good(np.bool_(False)),
  Good(jnp.asarray(True)),
  1,
  'yes',
  None,
  np.int64(0),
  jnp.asarray(1),
]

POSITIVE = [
  *forms(1e-3),
  Good(np.float64(0.5)),
  Good(1),
  Good(jnp.asarray(2)),
  0,
  -1.0,
  NAN,
  INF,
  np.float32(NAN),
  'yes',
  True,
  None,
  jnp.asarray(-1.0),
  jnp.asarray(True),
]

TEMPERATURE = [
  *forms(0.5),
  Good(np.int64(2)),
  Good(jnp.full((SCALAR_C,), 2.0)),
  0,
  -1.0,
  NAN,
  INF,
  'yes',
  True,
  None,
  jnp.asarray(2),
  jnp.ones(3),
]

LP_P = [
  *forms(2.5),
  Good(np.int64(2)),
  Good(INF),
  0,
  -1.5,
  NAN,
  'yes',
  True,
  None,
  jnp.asarray(2),
  jnp.ones(2),
]

GLOBAL_POSITIVE = [
  *forms(3.0),
  Good(np.int64(2)),
  Good(jnp.full((SCALAR_C,), 3.0)),
  0,
  -1.0,
  NAN,
  'x',
  True,
  jnp.asarray(3),
  jnp.ones(3),
]

PROBABILITY = [
  *forms(0.25),
  Good(0),
  Good(np.float64(1.0)),
  -0.1,
  1.5,
  NAN,
  'yes',
  True,
  None,
  jnp.asarray(1),
  jnp.ones(2),
]


def choices(*allowed: str) -> list:
  return [
    *(Good(a) for a in allowed),
    Good(np.str_(allowed[-1])),
    'nope',
    allowed[0].upper(),
    1,
    None,
  ]


def ints(*good: int, bad: tuple = (0, -1)) -> list:
  """Sizes: the good ints in every form; the bad ones, floats, bools and strings refused."""
  return [
    *forms(good[0]),
    *map(Good, good[1:]),
    *bad,
    float(good[0]),
    True,
    str(good[0]),
    jnp.asarray(float(good[0])),
  ]


def unpool_inputs(kw):
  del kw
  return jaxpool.max_pool(SCALAR_X, (2, 2), return_indices=True)


def soft_weights(kw):
  del kw
  return jaxpool.soft_pool(SCALAR_X, (2, 2), return_weights=True)


SCALAR_PREDICT = jnp.asarray([0.5, 0.5])

SCALAR_UPDATE = jnp.asarray([0.25, 0.25])


def pair_lifted(kw):
  axes = kw.get('axes', (-3, -2))
  try:
    return jaxpool.lift_down_pool(SCALAR_X, SCALAR_PREDICT, SCALAR_UPDATE, axes)
  except (TypeError, ValueError):  # a bad axes value: any valid bands will do
    return jaxpool.lift_down_pool(SCALAR_X, SCALAR_PREDICT, SCALAR_UPDATE)


EVAL = dict(deterministic=True)

FEATURES = lambda: dict(num_features=SCALAR_C)

FEATURES_AND_RNGS = lambda: dict(num_features=SCALAR_C, rngs=nnx.Rngs(0))

FEATURES_SIZES_AND_RNGS = lambda: dict(num_features=SCALAR_C, input_size=(4, 4), rngs=nnx.Rngs(0))

W = (2, 2)
