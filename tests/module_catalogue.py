"""What the module tests share: the field rules, building and running both APIs.

Each module class's configuration and function-level reference (a
:class:`~tests.ops.records.Spec`) is in its op's registry entry (``tests/ops``, the
``modules`` field); ``SPECS`` and ``MODULE_FOR`` there are their views.
tests/test_linen.py and tests/test_nnx.py build and run each class against its
reference; tests/test_nnx.py also checks that both families have the same fields and
errors and, given the same parameters, the same numbers; tests/test_reliability.py and
tests/test_transformations.py walk them with their classes of input.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxpool.linen as jl
import jaxpool.nnx as jn
from tests.ops import SPECS, Spec
from tests.ops.fixtures import X_SHAPE

# --- fields a module does not take ----------------------------------------------------

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


# --- the module input and the classes with parameters -----------------------------------


def module_input(dtype=jnp.float32, positive=False):
  x = np.random.default_rng(0).standard_normal(X_SHAPE).astype(np.float32)
  if positive:
    x = np.abs(x) + 0.1
  return jnp.asarray(x, dtype)


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
