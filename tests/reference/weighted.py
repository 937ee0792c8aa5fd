"""Float64 NumPy loop references for the softmax-weighted family (never imports jaxpool).

Arrays are ``(B, *spatial, C)`` with exactly one batch dim; ``pads`` are
``(low, high)`` pairs per spatial dim. Each window is enumerated by
:func:`tests.reference.windows.windows`; its valid taps get softmax weights of
their logits (computed per channel, shifted by the window maximum), and the
output is the weighted sum.
"""

from __future__ import annotations

import itertools

import numpy as np

from tests.reference.windows import out_shape, windows


def _softmax(z: np.ndarray) -> np.ndarray:
  """Softmax over axis 0 (taps), per column; -inf logits get weight 0, all -inf uniform."""
  zmax = z.max(0)
  with np.errstate(invalid='ignore'):
    d = np.where(z == zmax, 0.0, z - zmax)
  e = np.exp(d)
  return e / e.sum(0)


def _logits(kind: str, vals: np.ndarray, logit_vals, temperature: float, eps: float):
  if kind == 'soft':
    return vals / temperature
  if kind == 'lip':
    return logit_vals
  a = vals.mean(0)
  if kind == 'edscw':
    return (2 * np.abs(vals * a) + eps) / (vals**2 + a**2 + eps)
  if kind == 'idw':
    with np.errstate(divide='ignore'):
      return -np.log(np.abs(vals - a) + eps)
  raise ValueError(kind)


def weighted_pool(
  x, kind, window, strides, pads, dilation, ceil_mode, *, temperature=1.0, logits=None, eps=1e-6
):
  """Returns ``(y, weights)``: ``y (B, *out, C)``, weights ``(B, *out, *window, C)``.

  ``kind``: 'soft' (z = x / T), 'lip' (z = logits), 'edscw', 'idw'. Windows
  without a valid tap give 0.
  """
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  outs = out_shape(spatial, window, strides, pads, dilation, ceil_mode)
  batch, channels = x.shape[0], x.shape[-1]
  lg = None if logits is None else np.broadcast_to(np.asarray(logits, np.float64), x.shape)
  y = np.zeros((batch, *outs, channels))
  w_all = np.zeros((batch, *outs, *window, channels))
  offsets = list(itertools.product(*(range(k) for k in window)))
  for p, taps in windows(spatial, window, strides, pads, dilation, ceil_mode):
    valid = [(j, pos) for j, (pos, _) in zip(offsets, taps) if pos is not None]
    if not valid:
      continue
    vals = np.stack([x[(slice(None), *pos)] for _, pos in valid])  # (n, B, C)
    lv = None if lg is None else np.stack([lg[(slice(None), *pos)] for _, pos in valid])
    w = _softmax(_logits(kind, vals, lv, temperature, eps))
    with np.errstate(invalid='ignore'):  # 0 * -inf where the weight is 0
      y[(slice(None), *p)] = np.where(w > 0, w * vals, 0).sum(0)
    for (j, _), wi in zip(valid, w):
      w_all[(slice(None), *p, *j)] = wi
  return y, w_all


def soft_pool_grad(x, g, window, strides, pads, dilation, ceil_mode, temperature=1.0):
  """Closed-form SoftPool VJP: x_bar_i = sum_p g_p w_{p,i} (1 + (x_i - y_p) / T)."""
  x = np.asarray(x, np.float64)
  y, w_all = weighted_pool(
    x, 'soft', window, strides, pads, dilation, ceil_mode, temperature=temperature
  )
  x_bar = np.zeros_like(x)
  offsets = list(itertools.product(*(range(k) for k in window)))
  for p, taps in windows(x.shape[1:-1], window, strides, pads, dilation, ceil_mode):
    for j, (pos, _) in zip(offsets, taps):
      if pos is None:
        continue
      w = w_all[(slice(None), *p, *j)]
      xi, yp = x[(slice(None), *pos)], y[(slice(None), *p)]
      with np.errstate(invalid='ignore'):
        diff = np.where(xi == yp, 0.0, xi - yp)
        contrib = np.where(w > 0, g[(slice(None), *p)] * w * (1 + diff / temperature), 0)
      x_bar[(slice(None), *pos)] += contrib
  return x_bar


def lip_pool_grad(x, logits, g, window, strides, pads, dilation, ceil_mode):
  """Closed-form LIP VJP: x_bar_i = sum_p g_p w_{p,i}, z_bar_i = sum_p g_p w_{p,i} (x_i - y_p)."""
  x = np.asarray(x, np.float64)
  z = np.broadcast_to(np.asarray(logits, np.float64), x.shape)
  y, w_all = weighted_pool(x, 'lip', window, strides, pads, dilation, ceil_mode, logits=z)
  x_bar, z_bar = np.zeros_like(x), np.zeros_like(x)
  offsets = list(itertools.product(*(range(k) for k in window)))
  for p, taps in windows(x.shape[1:-1], window, strides, pads, dilation, ceil_mode):
    for j, (pos, _) in zip(offsets, taps):
      if pos is None:
        continue
      w = w_all[(slice(None), *p, *j)]
      gp = g[(slice(None), *p)]
      x_bar[(slice(None), *pos)] += gp * w
      z_bar[(slice(None), *pos)] += np.where(
        w > 0, gp * w * (x[(slice(None), *pos)] - y[(slice(None), *p)]), 0
      )
  return x_bar, z_bar


def ada_pool(x, beta, window, strides, pads, dilation, ceil_mode, eps=1e-6):
  """adaPool: ``beta * eDSCW + (1 - beta) * SoftPool``; returns ``(y, fused weights)``."""
  yd, wd = weighted_pool(x, 'edscw', window, strides, pads, dilation, ceil_mode, eps=eps)
  ym, wm = weighted_pool(x, 'soft', window, strides, pads, dilation, ceil_mode)
  b = np.broadcast_to(np.asarray(beta, np.float64), yd.shape)
  bw = b.reshape(*b.shape[:-1], *(1,) * len(window), b.shape[-1])
  return b * yd + (1 - b) * ym, bw * wd + (1 - bw) * wm


def weighted_unpool(y, weights, in_spatial, window, strides, pads, dilation, ceil_mode):
  """x_hat_i = sum over windows p containing i of weights[p, i] * y_p."""
  y = np.asarray(y, np.float64)
  weights = np.asarray(weights, np.float64)
  x_hat = np.zeros((y.shape[0], *in_spatial, y.shape[-1]))
  offsets = list(itertools.product(*(range(k) for k in window)))
  for p, taps in windows(in_spatial, window, strides, pads, dilation, ceil_mode):
    for j, (pos, _) in zip(offsets, taps):
      if pos is not None:
        x_hat[(slice(None), *pos)] += weights[(slice(None), *p, *j)] * y[(slice(None), *p)]
  return x_hat


def numerical_vjp(f, x, g, h=1e-6):
  """Central-difference gradient of ``sum(f(x) * g)`` with respect to every entry of ``x``."""
  x = np.asarray(x, np.float64)
  grad = np.zeros_like(x)
  flat = grad.reshape(-1)
  for i in range(x.size):
    xp, xm = x.copy().reshape(-1), x.copy().reshape(-1)
    xp[i] += h
    xm[i] -= h
    flat[i] = (np.sum(f(xp.reshape(x.shape)) * g) - np.sum(f(xm.reshape(x.shape)) * g)) / (2 * h)
  return grad
