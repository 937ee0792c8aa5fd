"""Every pooling module, linen and NNX, as data the module tests walk.

* ``MODULE_FOR`` maps every public function (``jaxpool.__all__``) to its module
  class (the same name in ``jaxpool.linen`` and ``jaxpool.nnx``), so a new op
  cannot land without its modules (tests/test_linen.py checks).
* ``SPECS`` holds one configuration per class, and a reference: the output
  the *function* gives for the module's parameters. tests/test_linen.py and
  tests/test_nnx.py build and run each class against it; tests/test_nnx.py
  also checks that both families have the same fields and errors and, given
  the same parameters, the same numbers; tests/test_reliability.py and
  tests/test_transformations.py walk them with their classes of input.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn

# --- the table: every public function has a module ---------------------------------------

#: function name -> module class name (the same name in jaxpool.linen and jaxpool.nnx).
MODULE_FOR = {
  'max_pool': 'MaxPool',
  'min_pool': 'MinPool',
  'avg_pool': 'AvgPool',
  'lp_pool': 'LPPool',
  'max_unpool': 'MaxUnpool',
  'soft_pool': 'SoftPool',
  'lip_pool': 'LIP',
  'edscw_pool': 'EDSCWPool',
  'idw_pool': 'IDWPool',
  'ada_pool': 'AdaPool',
  'weighted_unpool': 'AdaUnPool',
  'ada_unpool': 'AdaUnPool',
  'adaptive_avg_pool': 'AdaptiveAvgPool',
  'adaptive_max_pool': 'AdaptiveMaxPool',
  'global_pool': 'GlobalPool',
  'channel_pool': 'ChannelPool',
  'spatial_pyramid_pool': 'SpatialPyramidPool',
  'segment_pool': 'SegmentPool',
  'max_avg_pool': 'MaxAvgPool',
  'gated_pool': 'GatedPool',
  'tree_pool': 'TreePool',
  'dpp_pool': 'DPP',
  'blur_pool': 'BlurPool',
  'max_blur_pool': 'MaxBlurPool',
  'lift_down_pool': 'LiftDownPool',
  'lift_up_pool': 'LiftUpPool',
  'stochastic_pool': 'StochasticPool',
  'mixed_pool': 'MixedPool',
  's3_pool': 'S3Pool',
  'fractional_max_pool': 'FractionalMaxPool',
}

#: Function arguments a module does not take as fields: the data passed to ``__call__``,
#: what it owns as parameters or sub-modules, and what it computes (DPP's guide array; its
#: ``guide`` field chooses 'lite' or 'full').
NOT_FIELDS = {
  'x',
  'mask',
  'return_mask',
  'segment_ids',
  'y',
  'indices',
  'weights',
  'low',
  'details',
  'output_size',
  'output_shape',
  'key',
  'samples',
  'logits',
  'alpha',
  'beta',
  'gate',
  'leaves',
  'gates',
  'lam',
  'predict',
  'update',
}
NOT_FIELDS_FOR = {'dpp_pool': {'guide'}, 'adaptive_avg_pool': set(), 'adaptive_max_pool': set()}
#: Where ``output_size`` *is* a field (it is a call argument of the unpooling modules).
FIELD_OUTPUT_SIZE = {'adaptive_avg_pool', 'adaptive_max_pool', 'fractional_max_pool'}
#: Fields whose default is ``None``, meaning "the function's default" (LiftUpPool: or the
#: ``down`` module's value).
NONE_MEANS_DEFAULT = {('lift_up_pool', 'axes')}


def public_classes(mod, base) -> set[str]:
  return {
    name
    for name, obj in vars(mod).items()
    if not name.startswith('_') and isinstance(obj, type) and issubclass(obj, base)
  }


# --- one configuration per class, with the function-level reference ------------------------

X_SHAPE = (2, 8, 8, 3)
C = X_SHAPE[-1]


def module_input(dtype=jnp.float32, positive=False):
  x = np.random.default_rng(0).standard_normal(X_SHAPE).astype(np.float32)
  if positive:
    x = np.abs(x) + 0.1
  return jnp.asarray(x, dtype)


def _lip_logits(x, p, coeff=12.0, eps=1e-5):
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


def _dpp_guide(x, p):
  """DPP's full guide for 2x2/s2 pooling: depthwise 3x3, stride 2, zero row/col on top/left."""
  h = jax.lax.conv_general_dilated(
    x.astype(jnp.float32),
    p['guide_kernel'],
    (2, 2),
    ((1, 0), (1, 0)),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=C,
    precision=jax.lax.Precision.HIGHEST,
  )
  return h + p['guide_bias']


def _lift_operator(p):
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


def _ada_weights(x):
  return jaxpool.ada_pool(x, 0.5, (3, 3), 2, 1, return_weights=True)


def _lifted(x):
  op = lambda v: 0.5 * v
  return jaxpool.lift_down_pool(x, op, op)


@dataclasses.dataclass(frozen=True)
class Spec:
  """One module configuration: fields shared by both APIs, NNX's extra keywords, reference."""

  name: str
  fields: dict
  reference: Callable[..., Any]  # (x, params) or, random: (x, params, key) -> expected output
  nnx_kw: dict = dataclasses.field(default_factory=dict)
  inputs: Callable[[jnp.ndarray], tuple] | None = None  # x -> call args (default: (x,))
  positive: bool = False
  random_init: bool = False  # initial parameters drawn at random (values differ by API)
  random: bool = False  # a stochastic op: run in evaluation and in training mode

  def args(self, x):
    return (x,) if self.inputs is None else tuple(self.inputs(x))

  def expected(self, x, params, key):
    return self.reference(x, params, key) if self.random else self.reference(x, params)

  @property
  def init_kw(self):
    return dict(deterministic=True) if self.random else {}

  @property
  def modes(self):
    """``deterministic`` values to run: None (not a random module), or eval then train."""
    return (True, False) if self.random else (None,)

  def __str__(self):
    return self.name


def _segment_ids(x):
  """Labels 0, 1, 0, 1, ... over ``x``'s positions (segment 2 stays empty)."""
  return (jnp.arange(math.prod(x.shape[:-1])) % 2).reshape(x.shape[:-1])


def _sig(p):
  return jax.nn.sigmoid(p)


SPECS = [
  Spec(
    'MaxPool',
    dict(window=(3, 3), strides=2, padding=1, return_indices=True),
    lambda x, p: jaxpool.max_pool(x, (3, 3), 2, 1, return_indices=True),
  ),
  Spec(
    'MinPool',
    dict(window=(2, 3), dilation=(1, 2)),
    lambda x, p: jaxpool.min_pool(x, (2, 3), dilation=(1, 2)),
  ),
  Spec(
    'AvgPool',
    dict(window=(3, 3), strides=2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda x, p: jaxpool.avg_pool(x, (3, 3), 2, 1, ceil_mode=True, count_include_pad=False),
  ),
  Spec(
    'LPPool',
    dict(window=(2, 2), p=3.0, learnable_p=True),
    lambda x, p: jaxpool.lp_pool(x, p['p'], (2, 2)),
    positive=True,
  ),
  Spec(
    'MaxUnpool',
    dict(window=(2, 2)),
    lambda x, p: jaxpool.max_unpool(*jaxpool.max_pool(x, (2, 2), return_indices=True), (2, 2)),
    inputs=lambda x: jaxpool.max_pool(x, (2, 2), return_indices=True),
  ),
  Spec(
    'SoftPool',
    dict(window=(3, 3), strides=2, padding=1, temperature=0.5, learnable_temperature=True),
    lambda x, p: jaxpool.soft_pool(x, (3, 3), 2, 1, temperature=jnp.exp(p['log_temperature'])),
  ),
  Spec(
    'LIP',
    dict(window=(3, 3), strides=2, padding=1),
    lambda x, p: jaxpool.lip_pool(x, _lip_logits(x, p['logits']), (3, 3), 2, 1),
    nnx_kw=dict(num_features=C),
  ),
  Spec(
    'EDSCWPool',
    dict(window=(2, 2), return_weights=True),
    lambda x, p: jaxpool.edscw_pool(x, (2, 2), return_weights=True),
  ),
  Spec(
    'IDWPool',
    dict(window=(3, 3), strides=2, padding='SAME', eps=1e-4),
    lambda x, p: jaxpool.idw_pool(x, (3, 3), 2, 'SAME', eps=1e-4),
  ),
  Spec(
    'AdaPool',
    dict(window=(2, 2), beta_shape='location_channel'),
    lambda x, p: jaxpool.ada_pool(x, _sig(p['theta']), (2, 2)),
    nnx_kw=dict(num_features=C, input_size=(8, 8)),
  ),
  Spec(
    'AdaUnPool',
    dict(window=(3, 3), strides=2, padding=1),
    lambda x, p: jaxpool.weighted_unpool(*_ada_weights(x), (3, 3), 2, 1),
    inputs=_ada_weights,
  ),
  Spec(
    'AdaptiveAvgPool',
    dict(output_size=(5, None)),
    lambda x, p: jaxpool.adaptive_avg_pool(x, (5, None)),
  ),
  Spec(
    'AdaptiveMaxPool',
    dict(output_size=3, return_indices=True),
    lambda x, p: jaxpool.adaptive_max_pool(x, 3, return_indices=True),
  ),
  Spec(
    'GlobalPool',
    dict(method='gem', learnable_p=True, p_shape='channel'),
    lambda x, p: jaxpool.global_pool(x, 'gem', p=p['p']),
    nnx_kw=dict(num_features=C),
    positive=True,
  ),
  Spec(
    'SegmentPool',
    dict(num_segments=3, method='gem', learnable_p=True, p_shape='channel'),
    lambda x, p: jaxpool.segment_pool(x, _segment_ids(x), 3, 'gem', p=p['p']),
    nnx_kw=dict(num_features=C),
    inputs=lambda x: (x, _segment_ids(x)),
    positive=True,
  ),
  Spec(
    'ChannelPool',
    dict(method='avg', keepdims=False),
    lambda x, p: jaxpool.channel_pool(x, 'avg', False),
  ),
  Spec(
    'SpatialPyramidPool',
    dict(levels=(1, 2, 3), method='avg'),
    lambda x, p: jaxpool.spatial_pyramid_pool(x, (1, 2, 3), 'avg'),
  ),
  Spec(
    'MaxAvgPool',
    dict(window=(3, 3), strides=2, padding=1, alpha_shape='channel'),
    lambda x, p: jaxpool.max_avg_pool(x, _sig(p['alpha_logit']), (3, 3), 2, 1),
    nnx_kw=dict(num_features=C),
  ),
  Spec(
    'GatedPool',
    dict(window=(2, 2), per_channel=True),
    lambda x, p: jaxpool.gated_pool(x, p['gate'], (2, 2)),
    nnx_kw=dict(num_features=C, rngs=0),
    random_init=True,
  ),
  Spec(
    'TreePool',
    dict(window=(2, 2), depth=2),
    lambda x, p: jaxpool.tree_pool(x, p['leaves'], p['gates'], (2, 2)),
    nnx_kw=dict(rngs=0),
    random_init=True,
  ),
  Spec(
    'DPP',
    dict(window=(2, 2), guide='full', symmetric=False),
    lambda x, p: jaxpool.dpp_pool(
      x,
      jnp.exp(p['log_alpha']),
      jnp.exp(p['log_lam']),
      (2, 2),
      guide=_dpp_guide(x, p),
      symmetric=False,
    ),
    nnx_kw=dict(num_features=C),
  ),
  Spec('BlurPool', dict(), lambda x, p: jaxpool.blur_pool(x)),
  Spec(
    'MaxBlurPool',
    dict(window=(3, 3), blur=(2, 2)),
    lambda x, p: jaxpool.max_blur_pool(x, (3, 3), (2, 2)),
  ),
  Spec(
    'LiftDownPool',
    dict(),
    lambda x, p: jaxpool.lift_down_pool(
      x, _lift_operator(p['predict']), _lift_operator(p['update'])
    ),
    nnx_kw=dict(num_features=C, rngs=0),
    random_init=True,
  ),
  Spec(
    'LiftUpPool',
    dict(),
    lambda x, p: jaxpool.lift_up_pool(
      *_lifted(x), _lift_operator(p['predict']), _lift_operator(p['update'])
    ),
    nnx_kw=dict(num_features=C, rngs=0),
    inputs=_lifted,
    random_init=True,
  ),
  Spec(
    'StochasticPool',
    dict(window=(3, 3), strides=2, padding=1),
    lambda x, p, key: jaxpool.stochastic_pool(x, (3, 3), 2, 1, key=key),
    positive=True,
    random=True,
  ),
  Spec(
    'MixedPool',
    dict(window=(2, 2), p_max=0.3, granularity='window'),
    lambda x, p, key: jaxpool.mixed_pool(x, (2, 2), key=key, p_max=0.3, granularity='window'),
    random=True,
  ),
  Spec(
    'S3Pool',
    dict(window=(2, 2), grid=4),
    lambda x, p, key: jaxpool.s3_pool(x, (2, 2), 4, key=key),
    random=True,
  ),
  Spec(
    'FractionalMaxPool',
    dict(window=(2, 2), output_ratio=0.6, return_indices=True),
    lambda x, p, key: jaxpool.fractional_max_pool(
      x, (2, 2), output_ratio=0.6, key=key, return_indices=True
    ),
    random=True,
  ),
]
SPEC = {s.name: s for s in SPECS}
#: The classes whose spec has parameters: their module code maps parameters into the function's
#: arguments, so their derivatives are tested through the module. The rest call the function
#: with their fields, so their derivatives are the function's (tested per function).
WITH_PARAMS = frozenset(
  {
    'LPPool',
    'SoftPool',
    'LIP',
    'AdaPool',
    'GlobalPool',
    'SegmentPool',
    'MaxAvgPool',
    'GatedPool',
    'TreePool',
    'DPP',
    'LiftDownPool',
    'LiftUpPool',
  }
)


# --- building and running both APIs -----------------------------------------------------


def linen_module(spec: Spec) -> nn.Module:
  return getattr(jl, spec.name)(**spec.fields)


def nnx_module(spec: Spec) -> nnx.Module:
  kw = dict(spec.nnx_kw)
  if 'rngs' in kw:
    kw['rngs'] = nnx.Rngs(kw['rngs'])
  return getattr(jn, spec.name)(**spec.fields, **kw)


def nnx_params(module: nnx.Module) -> dict:
  return nnx.state(module, nnx.Param).to_pure_dict()


def load_params(module: nnx.Module, params: dict) -> None:
  """Copies a linen ``params`` tree into an NNX module (same names by construction)."""
  state = nnx.state(module, nnx.Param)
  state.replace_by_pure_dict(params)
  nnx.update(module, state)


def assert_close(got, want, rtol=1e-5, atol=1e-6):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
    if jnp.issubdtype(g.dtype, jnp.integer):
      np.testing.assert_array_equal(g, w)
    else:
      np.testing.assert_allclose(
        np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=rtol, atol=atol
      )


def check_dtype(out, dtype, like):
  """Float outputs keep the input dtype, integer ones (indices) are int32; shapes as ``like``.

  ``like`` is the f32 output for the same input, or None in training mode, where
  rounding the input may change what is sampled and only shapes are compared.
  """
  leaves = jax.tree.leaves(out)
  assert all(
    o.dtype == (jnp.int32 if jnp.issubdtype(o.dtype, jnp.integer) else dtype) for o in leaves
  ), [o.dtype for o in leaves]
  assert all(np.all(np.isfinite(np.asarray(o, np.float32))) for o in leaves)
  if like is not None:
    assert jax.tree.structure(out) == jax.tree.structure(like)
    for o, r in zip(leaves, jax.tree.leaves(like)):
      assert o.shape == r.shape
      if not jnp.issubdtype(r.dtype, jnp.integer):  # bf16 rounding may move argmax ties
        np.testing.assert_allclose(np.asarray(o, np.float32), r, rtol=5e-2, atol=5e-2)


KEY = jax.random.key(7)


def linen_run(spec, module, variables, args, deterministic):
  """Jitted output, and the training key drawn (None in evaluation / for non-random modules)."""
  if deterministic is None:
    return jax.jit(module.apply)(variables, *args), None
  rngs = {'pooling': KEY}
  key = None if deterministic else module.bind(variables, rngs=rngs).make_rng('pooling')
  out = jax.jit(lambda v, *a: module.apply(v, *a, deterministic=deterministic, rngs=rngs))(
    variables, *args
  )
  return out, key


# --- fields: one surface for functions, linen and NNX -------------------------------------


def linen_fields(cls) -> list[tuple[str, Any]]:
  return [
    (f.name, f.default)
    for f in dataclasses.fields(cls)
    if f.name not in ('parent', 'name') and f.init
  ]


BAD_CONFIGS = [
  ('MaxPool', dict(window=3), TypeError, 'window must be a sequence'),
  ('MinPool', dict(window=(2, 2), strides=(1, 2, 3)), ValueError, 'strides must be an int'),
  ('AvgPool', dict(window=(2, 2), dilation=0), ValueError, 'dilation entries must be >= 1'),
  ('AvgPool', dict(window=(2, 2), padding='FULL'), ValueError, "padding must be 'VALID'"),
  ('MaxPool', dict(window=(3, 3), padding=2), ValueError, 'padding must be at most half'),
  ('SoftPool', dict(window=(2, 2), ceil_mode='yes'), TypeError, 'ceil_mode must be a bool'),
  ('LPPool', dict(window=(2, 2), p=0.0), ValueError, 'p must be a positive number'),
  (
    'LPPool',
    dict(window=(2, 2), p='2'),
    TypeError,
    "p must be a positive number or a float array; got str '2'",
  ),
  ('LPPool', dict(window=(2, 2), learnable_p=1), TypeError, 'learnable_p must be a bool'),
  ('MaxPool', dict(window=(2, 2), return_indices=1), TypeError, 'return_indices must be a bool'),
  ('AvgPool', dict(window=(2, 2), count_include_pad=1), TypeError, 'count_include_pad must be'),
  ('AvgPool', dict(window=(2, 2), divisor_override=0), ValueError, 'divisor_override must be'),
  ('MaxUnpool', dict(window=(2, 2), padding=-1), ValueError, 'padding entries must be >= 0'),
  ('MaxUnpool', dict(window=(0, 2)), ValueError, 'window entries must be >= 1'),
  ('SoftPool', dict(window=(2, 2), temperature=0.0), ValueError, 'temperature must be'),
  ('LIP', dict(window=(2, 2), logit_window=(3,)), ValueError, 'logit_window must have one'),
  ('EDSCWPool', dict(window=(2, 2), eps=0.0), ValueError, 'eps must be a positive'),
  ('IDWPool', dict(window=(2, 2), return_weights=1), TypeError, 'return_weights must be a'),
  ('AdaPool', dict(window=(2, 2), beta_shape='pixel'), ValueError, 'beta_shape must be one'),
  ('AdaUnPool', dict(window=(2, 2), strides=0), ValueError, 'strides entries must be >= 1'),
  ('AdaptiveAvgPool', dict(output_size=0), ValueError, 'output_size entries must be >= 1'),
  ('AdaptiveMaxPool', dict(output_size='7'), TypeError, 'output_size must be an int'),
  ('GlobalPool', dict(method='median'), ValueError, 'method must be one of'),
  ('SegmentPool', dict(num_segments=0), ValueError, 'num_segments must be'),
  ('SegmentPool', dict(num_segments=2, method='sum', p=2.0), ValueError, "'sum' takes no p"),
  ('GlobalPool', dict(method='avg', learnable_p=True), ValueError, 'learnable_p needs'),
  ('ChannelPool', dict(method='median'), ValueError, 'method must be one of'),
  ('SpatialPyramidPool', dict(method='lp'), ValueError, 'method must be one of'),
  ('MaxAvgPool', dict(window=(2, 2), alpha_shape='pixel'), ValueError, 'alpha_shape must be'),
  ('GatedPool', dict(window=(2, 2), per_channel='yes'), TypeError, 'per_channel must be a bool'),
  ('TreePool', dict(window=(2, 2), depth=-1), ValueError, 'depth must be an int >= 0'),
  ('DPP', dict(window=(2, 2), guide='heavy'), ValueError, 'guide must be one of'),
  ('DPP', dict(window=(2, 2), guide_window=(3, 3, 3)), ValueError, 'guide_window must be'),
  ('BlurPool', dict(window=(0, 3)), ValueError, 'window entries must be >= 1'),
  ('MaxBlurPool', dict(blur=(3,)), ValueError, 'blur must have one entry per spatial dim'),
  ('LiftDownPool', dict(kernel_size=0), ValueError, 'kernel_size must be a positive int'),
  ('LiftUpPool', dict(axes='HW'), TypeError, 'axes must be an int or a non-empty sequence'),
]
