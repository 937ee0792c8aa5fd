"""Mixed, gated, tree and DPP pooling: forward+backward cost against jaxpool's max pooling.

``max_pool`` (jaxpool, custom VJP) is the baseline: the ratios say what each learned
pooling costs over the cheapest pooling of the same input. Naive formulations
(autodiff through Flax/lax pooling, and the reference nngraph graph of DPP-lite for
2x2/s2, which upsamples the guide) and PyTorch CPU equivalents are listed where they
compute the same function.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

import jaxpool
from benchmarks.common import Case

_RNG = np.random.default_rng(0)
GATE = {k: jnp.asarray(_RNG.normal(0, 0.1, (k, k)), jnp.float32) for k in (2, 3)}
LEAVES = {k: jnp.asarray(_RNG.normal(0, 0.1, (2, k, k)), jnp.float32) for k in (2, 3)}
GATES = {k: jnp.asarray(_RNG.normal(0, 0.1, (1, k, k)), jnp.float32) for k in (2, 3)}


def _naive_max_avg(x, alpha, k, s, p):
  pads = ((p, p), (p, p))
  m = nn.max_pool(x, (k, k), (s, s), pads)
  a = nn.avg_pool(x, (k, k), (s, s), pads, count_include_pad=False)
  return alpha * m + (1 - alpha) * a


def _naive_dpp_2x2(x, alpha, lam, eps=1e-3):
  """The reference nngraph DPP-lite (2x2/s2): nearest-upsampled guide and local mean."""

  def pool(a):
    return nn.avg_pool(a, (2, 2), (2, 2))

  def up(a):
    return jnp.repeat(jnp.repeat(a, 2, -3), 2, -2)

  penalty = (x - up(pool(x))) ** 2 + eps
  w = (penalty / up(pool(penalty))) ** (lam / 2) + alpha
  return pool(x * w) / pool(w)


def _torch_max_avg(xt, alpha, k, s, p):
  import torch.nn.functional as F

  return alpha * F.max_pool2d(xt, k, s, p) + (1 - alpha) * F.avg_pool2d(
    xt, k, s, p, count_include_pad=False
  )


def _torch_gated(xt, gate, k, s, p):
  """Gated pooling via unfold (zero padding adds nothing to the gate's inner product)."""
  import torch
  import torch.nn.functional as F

  n, c, h, w = xt.shape
  cols = F.unfold(xt, k, padding=p, stride=s).view(n, c, k * k, -1)
  z = torch.einsum('nckl,k->ncl', cols, torch.tensor(np.array(gate)).reshape(-1))
  m = F.max_pool2d(xt, k, s, p).flatten(2)
  a = F.avg_pool2d(xt, k, s, p, count_include_pad=False).flatten(2)
  sig = torch.sigmoid(z)
  out = sig * m + (1 - sig) * a
  return out.view(n, c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def _torch_dpp_2x2(xt, alpha, lam, eps=1e-3):
  import torch.nn.functional as F

  def up(a):
    return F.interpolate(a, scale_factor=2, mode='nearest')

  penalty = (xt - up(F.avg_pool2d(xt, 2))) ** 2 + eps
  w = (penalty / up(F.avg_pool2d(penalty, 2))) ** (lam / 2) + alpha
  return F.avg_pool2d(xt * w, 2) / F.avg_pool2d(w, 2)


def cases(quick: bool) -> list[Case]:
  shape = (2, 16, 16, 64) if quick else (16, 56, 56, 64)
  ones = jnp.ones(shape[-1], jnp.float32)
  out = []
  for k, s, p, label in [(2, 2, 0, '2x2/s2'), (3, 2, 1, '3x3/s2/p1')]:
    geo = ((k, k), s, p)
    base = {'max_pool': lambda x, geo=geo: jaxpool.max_pool(x, *geo)}
    out += [
      Case(
        op='max_avg_pool',
        label=label,
        shape=shape,
        baseline='max_pool',
        jax={
          **base,
          'jaxpool': lambda x, geo=geo: jaxpool.max_avg_pool(x, 0.5, *geo),
          'naive jax': lambda x, k=k, s=s, p=p: _naive_max_avg(x, 0.5, k, s, p),
        },
        torch=lambda xt, k=k, s=s, p=p: _torch_max_avg(xt, 0.5, k, s, p),
      ),
      Case(
        op='gated_pool',
        label=label,
        shape=shape,
        baseline='max_pool',
        jax={**base, 'jaxpool': lambda x, geo=geo, k=k: jaxpool.gated_pool(x, GATE[k], *geo)},
        torch=lambda xt, k=k, s=s, p=p: _torch_gated(xt, GATE[k], k, s, p),
      ),
      Case(
        op='tree_pool',
        label=label,
        shape=shape,
        baseline='max_pool',
        jax={
          **base,
          'jaxpool': lambda x, geo=geo, k=k: jaxpool.tree_pool(x, LEAVES[k], GATES[k], *geo),
        },
      ),
    ]
    dpp = {**base, 'jaxpool': lambda x, geo=geo: jaxpool.dpp_pool(x, ones, ones, *geo)}
    torch = None
    if k == 2:
      dpp['naive jax'] = lambda x: _naive_dpp_2x2(x, ones, ones)
      torch = lambda xt: _torch_dpp_2x2(xt, 1.0, 1.0)
    out.append(
      Case(op='dpp_pool', label=label, shape=shape, baseline='max_pool', jax=dpp, torch=torch)
    )
  return out
