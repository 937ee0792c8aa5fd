"""Stochastic pooling with explicit PRNG keys: stochastic, mixed, S3 and fractional max.

Every op takes ``key`` keyword-only: ``key=None`` is evaluation mode
(deterministic, as each paper defines test time), a ``jax.random`` key is
training mode. The same key gives the same result; nothing reads global
state. Under ``vmap`` over inputs with one key every example sees the same
draw shape-for-shape; split the key (or vmap over keys) for independent
draws.

* :func:`stochastic_pool` — Zeiler & Fergus 2013: sample one element per window
  with probability proportional to its (positive part of the) value.
* :func:`mixed_pool` — Yu et al. 2014: max or average, chosen at random.
* :func:`s3_pool` — Zhai et al. 2017: stride-1 max pooling, then a random
  sorted subset of rows/columns per grid cell.
* :func:`fractional_max_pool` — Graham 2014 with PyTorch's pseudo-random
  interval rule; given the same samples it reproduces
  ``torch.nn.functional.fractional_max_pool{2,3}d`` (values, indices, gradients).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _reductions, _windows, classic
from jaxpool._geometry import Geometry, Padding

__all__ = ['fractional_max_pool', 'mixed_pool', 's3_pool', 'stochastic_pool']

GRANULARITIES = ('batch', 'example', 'channel', 'window')


def _check_key(key: Any) -> None:
  if key is None:
    return
  if not isinstance(key, jax.Array) or not (
    jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    or (key.dtype == jnp.uint32 and key.shape == (2,))
  ):
    raise TypeError(
      'key must be None (evaluation) or a single jax.random key (training), e.g. '
      f'jax.random.key(0); got {type(key).__name__} '
      f'{getattr(key, "dtype", "")}{getattr(key, "shape", "")}'
    )
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape != ():
    raise ValueError(
      f'key must be a single key (shape ()); got a key array of shape {key.shape}: '
      'vmap over keys instead'
    )


def _checked(x, op: str, key):
  """``x`` as a float array, with ``key`` checked (every op here starts with both)."""
  x = _numerics.as_array(x)
  _numerics.check_float(x, op)
  _check_key(key)
  return x


def _keyed_window_setup(x, window, strides, padding, dilation, ceil_mode, op: str, key):
  x = _checked(x, op, key)
  geom, nb = _geometry.pool_geometry(x.shape, window, strides, padding, dilation, ceil_mode)
  return x, geom, nb


def _checked_window(x, window, op: str, key):
  """``(x, window, num_batch_dims)`` for the ops with a window but no stride geometry."""
  x = _checked(x, op, key)
  window = _geometry.normalize_window(window)
  return x, window, _geometry.check_rank(x.shape, len(window))


# --- stochastic pooling (Zeiler & Fergus 2013) -----------------------------------------


def _taps_and_scale(x: jnp.ndarray, geom: Geometry) -> tuple[_windows.Taps, jnp.ndarray]:
  """Every tap of ``x`` (0 at padding) and the window scale.

  The scale ``m`` is the window's largest positive entry (1 when there is
  none). Sums of ``max(x, 0) / m`` lie in ``[1, window_size]``, so nothing
  overflows or underflows for any finite input; sampling probabilities are
  scale-free and the eval formula is homogeneous of degree 1
  (``y = m * f(a / m)``), so the scaling is exact. For the same reason ``m`` is a
  constant to differentiation (``y`` does not depend on it; the max reduce-window has
  no derivative, which second derivatives of the rules below would need).
  """
  m = _windows.reduce_window(jnp.maximum(lax.stop_gradient(x), 0), 0, lax.max, geom)
  return _windows.Taps.read(x, geom, 0.0), jnp.where(m > 0, m, 1)


def _draw_taps(taps: _windows.Taps, scale, u, choice_dtype):
  """Tap number drawn per window by inverse CDF; ``K`` for a window with no positive tap.

  ``p_i = a_i / sum_j a_j`` with ``a = max(x, 0) / m``; the tap drawn is the
  first with ``a_i > 0`` whose running sum exceeds ``u * sum a``. If rounding
  leaves ``u * sum a`` at the total, the last positive tap is taken. Sums run
  left to right over the taps: unrolled for a few taps, a ``lax.scan`` over the
  stacked taps (same order, same roundings, an HLO that does not grow with the
  window) beyond ``_windows.UNROLL_MAX_TAPS``.
  """
  k = taps.geom.window_size
  none = jnp.asarray(k, choice_dtype)

  def step(threshold, carry, item):
    running, chosen, last_positive = carry
    index, a = item
    running = running + a
    positive = a > 0
    chosen = jnp.where((chosen == none) & positive & (running > threshold), index, chosen)
    last_positive = jnp.where(positive, index, last_positive)
    return (running, chosen, last_positive), None

  scaled = taps.map(lambda t, m: jnp.maximum(t, 0) / m, scale)
  if not scaled.stacked:
    threshold = u * scaled.sum()
    # carries start from the traced values (full_like): they keep the mesh axes
    start = jnp.full_like(threshold, none, choice_dtype)
    carry = (jnp.zeros_like(threshold), start, start)
    for i, a in enumerate(scaled.data):
      carry, _ = step(threshold, carry, (jnp.asarray(i, choice_dtype), a))
  else:
    total, _ = lax.scan(lambda c, a: (c + a, None), scaled.data[0], scaled.data[1:])
    threshold = u * total
    start = jnp.full_like(total, none, choice_dtype)
    carry, _ = lax.scan(
      functools.partial(step, threshold),
      (jnp.zeros_like(total), start, start),
      (jnp.arange(k, dtype=choice_dtype), scaled.data),
    )
  _, chosen, last_positive = carry
  return jnp.where(chosen == none, last_positive, chosen)


def _stochastic_train_forward(x, u, geom):
  """``(y, choice)``: the drawn tap's value per window and its number (``K``: no draw)."""
  taps, scale = _taps_and_scale(x, geom)
  choice = _draw_taps(taps, scale, u, _windows.choice_dtype(geom))
  return taps.pick(choice), choice


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _stochastic_train(x, u, geom: Geometry):
  return _stochastic_train_forward(x, u, geom)[0]


@_stochastic_train.defjvp
def _stochastic_train_jvp(geom, primals, tangents):
  # y_dot = x_dot at the drawn tap (0 for a window with no draw): x moves the draw only
  # through a discrete choice, so the tangent is linear in x_dot. JAX transposes the
  # pick to "the cotangent to its drawn tap" (selects, shifted pads: no scatter).
  (x, u), (x_dot, _) = primals, tangents
  y, choice = _stochastic_train_forward(x, u, geom)
  choice = _numerics.materialize(choice)
  return y, _windows.Taps.read(x_dot, geom, 0.0).pick(choice)


def _weighting_sums(taps: _windows.Taps, scale):
  """``S = sum a_i / m`` and ``Q = sum (a_i / m)^2`` over each window's positive taps."""
  a = taps.map(lambda t, m: jnp.where(t > 0, t, 0) / m, scale)
  return a.sum(), a.map(lambda v: v * v).sum()


def _stochastic_eval_forward(x, geom):
  """``(y, m, S)``: the probabilistic weighting, the window scale and ``sum a_i / m``."""
  taps, scale = _taps_and_scale(x, geom)
  total, squares = _weighting_sums(taps, scale)
  # Q / S <= 1 first: scale * Q overflows for a large constant window (Q = S = K)
  y = jnp.where(total > 0, scale * (squares / jnp.where(total > 0, total, 1)), 0)
  return y, scale, total


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _stochastic_eval(x, geom: Geometry):
  return _stochastic_eval_forward(x, geom)[0]


@_stochastic_eval.defjvp
def _stochastic_eval_jvp(geom, primals, tangents):
  (x,), (x_dot,) = primals, tangents
  y, scale, total = _stochastic_eval_forward(x, geom)
  return y, _stochastic_eval_tangent(x, scale, total, y, x_dot, geom)


@functools.partial(jax.checkpoint, static_argnums=(5,))
def _stochastic_eval_tangent(x, scale, total, y, x_dot, geom):
  """``y_dot = sum_i (2 x_i - y) / sum_j a_j * x_dot_i`` over the taps with ``x_i > 0``.

  Written as ``(2 x_i / m - y / m) / S``: no overflow for any finite input. Linear in
  ``x_dot``; JAX's transpose of it is the scatter-free backward (per tap, the
  cotangent over ``S`` times the coefficient, put back by shifted pads). Checkpointed,
  so reverse mode keeps only ``x, m, S, y`` and recomputes the coefficients.
  """
  # x / m without the reciprocal 1 / m, which is subnormal (flushed to 0) for m > 2**126
  down, _ = _numerics.scale_normalizer(scale)
  offset_y = _numerics.materialize(down(y))  # else XLA re-evaluates y's chain per tap
  zero = jnp.zeros((), x_dot.dtype)
  # masked on the primal side: the transpose multiplies the cotangent by it (a -inf tap
  # masked after the product would give -inf * 0 = NaN there)
  coef = _windows.Taps.read(x, geom, 0.0).map(
    lambda tap, oy: jnp.where(tap > 0, 2 * down(tap) - oy, zero), offset_y
  )
  weighted = coef.map(jnp.multiply, _windows.Taps.read(x_dot, geom, 0.0)).sum()
  return jnp.where(total > 0, weighted / jnp.where(total > 0, total, 1), zero)


def stochastic_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  key: jax.Array | None = None,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Stochastic pooling (Zeiler & Fergus, ICLR 2013).

  With :math:`a_i = \max(x_i, 0)` over the valid taps :math:`R(p)` of window
  ``p`` and :math:`p_i = a_i / \sum_{j \in R(p)} a_j`:

  * training (``key`` given): :math:`y_p = x_l`, :math:`l \sim \mathrm{Cat}(p)`,
    drawn independently per (batch, window, channel) by inverse CDF from one
    uniform per output;
  * evaluation (``key=None``), probabilistic weighting:
    :math:`y_p = \sum_i p_i x_i = \sum_i a_i^2 / \sum_i a_i`.

  Negative entries count as 0 (the paper assumes ReLU inputs); a window with no
  positive entry gives 0. Padded taps never contribute.

  Output size per spatial dim: as :func:`~jaxpool.max_pool` (PyTorch's rule).

  Derivatives (custom JVPs with tangents linear in ``x_dot``; JAX derives reverse
  mode by transposing them, scatter-free; every transformation and order works):
  training, the derivative is the sampled element's (:math:`\dot y_p = \dot x_l`,
  :math:`\bar x_l = \bar y_p`; nothing for a window with no positive entry; the
  draw moves with ``x`` only by discrete choices); evaluation, the exact
  :math:`\partial y / \partial x_i = (2 a_i - y) / \sum_j a_j` for
  :math:`x_i > 0`, else 0. Computed in f32 for half precisions; no overflow for
  any finite magnitude (sums are scaled by the window max).

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window, strides, padding, dilation, ceil_mode: as :func:`~jaxpool.max_pool`.
    key: a ``jax.random`` key for training, ``None`` for evaluation.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: its probability is 0 (it is never
  drawn) and it has no weight in evaluation; a window with no unmasked
  positive entry gives 0 with a zero gradient.

  Example:
    >>> x = jnp.array([[1.], [3.], [0.], [2.]])
    >>> stochastic_pool(x, (2,))[:, 0]  # (1 + 9) / 4, (0 + 4) / 2
    Array([2.5, 2. ], dtype=float32)
    >>> y = stochastic_pool(x, (2,), key=jax.random.key(0))
    >>> bool(y[0, 0] in (1., 3.)), float(y[1, 0])
    (True, 2.0)
  """
  x, geom, _ = _keyed_window_setup(
    x, window, strides, padding, dilation, ceil_mode, 'stochastic_pool', key
  )
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'stochastic_pool', return_mask)
  xc = x.astype(_numerics.compute_dtype(x.dtype))
  if valid is not None:
    xc = _masks.data(xc, valid)  # 0: probability 0, weight 0, a zero derivative
  if key is None:
    y = _stochastic_eval(xc, geom)
  else:
    u = jax.random.uniform(
      key, (*x.shape[: -geom.ndim - 1], *geom.out_shape, x.shape[-1]), xc.dtype
    )
    y = _stochastic_train(xc, u, geom)
  return _masks.with_mask(y.astype(x.dtype), valid, no_channels, geom, return_mask)


# --- mixed pooling (Yu et al. 2014) ----------------------------------------------------


def _choice_shape(y_shape, nb: int, n: int, granularity: str) -> tuple[int, ...]:
  batch, channels = y_shape[:nb], y_shape[-1]
  if granularity == 'batch':
    return ()
  if granularity == 'example':
    return (*batch, *(1,) * n, 1)
  if granularity == 'channel':
    return (*batch, *(1,) * n, channels)
  return tuple(y_shape)


def mixed_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  strides: int | Sequence[int] | None = None,
  padding: Padding = 'VALID',
  dilation: int | Sequence[int] = 1,
  ceil_mode: bool = False,
  *,
  key: jax.Array | None = None,
  p_max: float | jnp.ndarray = 0.5,
  granularity: str = 'channel',
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""Mixed pooling (Yu, Wang, Chen, Wei — RSKT 2014).

  .. math:: y_p = \lambda \max_{i \in R(p)} x_i + (1 - \lambda)\, \frac{1}{|R(p)|}
     \sum_{i \in R(p)} x_i

  * training (``key`` given): :math:`\lambda \sim \mathrm{Bernoulli}(p_{max})`,
    one draw per ``granularity`` unit: ``'batch'`` (one for the whole call),
    ``'example'`` (per index of the batch dims), ``'channel'`` (per example and
    channel) or ``'window'`` (per output element);
  * evaluation (``key=None``): the expectation,
    :math:`\lambda = p_{max}` (the paper keeps the most frequent training
    choice; the expectation is its smooth counterpart and equals it for
    ``p_max`` in {0, 1}).

  The average excludes padding (divisor ``|R(p)|`` = valid taps, PyTorch's
  ``count_include_pad=False``); the max ignores padding. A window with no
  valid tap (only possible with dilation) gives 0.

  Output size: as :func:`~jaxpool.max_pool`. Gradient:
  :math:`\lambda\, \bar y_p` to the first maximum (as :func:`~jaxpool.max_pool`)
  plus :math:`(1 - \lambda)\, \bar y_p / |R(p)|` to every valid tap; scatter-free.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window, strides, padding, dilation, ceil_mode: as :func:`~jaxpool.max_pool`.
    key: a ``jax.random`` key for training, ``None`` for evaluation.
    p_max: probability of choosing max (a number in [0, 1] or a scalar array).
    granularity: ``'batch'``, ``'example'``, ``'channel'`` or ``'window'``.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: the max never picks it, the average
  neither adds nor counts it; a window with no unmasked position gives 0 with a
  zero gradient.

  Example:
    >>> x = jnp.array([[1.], [3.], [0.], [2.]])
    >>> mixed_pool(x, (2,), p_max=0.25)[:, 0]  # 0.25 * max + 0.75 * avg
    Array([2.25, 1.25], dtype=float32)
    >>> mixed_pool(x, (2,), key=jax.random.key(0), p_max=1.0)[:, 0]
    Array([3., 2.], dtype=float32)
  """
  x, geom, nb = _keyed_window_setup(
    x, window, strides, padding, dilation, ceil_mode, 'mixed_pool', key
  )
  p_max = _fields.check_probability(p_max, 'p_max')
  granularity = _checks.choice(granularity, 'granularity', GRANULARITIES)
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'mixed_pool', return_mask)
  xc = x.astype(_numerics.compute_dtype(x.dtype))
  if valid is None:
    avg = _reductions.window_mean(xc, geom)  # cannot overflow
    mx = _reductions.valid_max(xc, geom)
  else:
    mx, avg, any_valid = _reductions.masked_max_and_mean(xc, valid, geom)
  if key is None:
    y = _numerics.blend(p_max, mx, avg)  # exactly max (avg) pooling at p_max = 1 (0)
  else:
    shape = _choice_shape(avg.shape, nb, geom.ndim, granularity)
    use_max = jax.random.bernoulli(key, p_max, shape)
    y = jnp.where(use_max, mx, avg)
  if valid is None:
    return y.astype(x.dtype)
  y = _masks.zero_where_empty(y, any_valid).astype(x.dtype)
  return (y, _masks.returned(any_valid, no_channels)) if return_mask else y


# --- S3Pool (Zhai et al. 2017) ---------------------------------------------------------


def _cdiv(a: int, b: int) -> int:
  return -(-a // b)


def _s3_output_size(size: int, k: int) -> int:
  """Output size of :func:`s3_pool` along a dim of ``size`` with window ``k`` (both modes).

  The eval average pooling (window ``k``, stride ``k``, padding ``k // 2``,
  floor rule) of the stride-1 max map of size ``M = size - k + 1``:
  ``(M + 2 * (k // 2) - k) // k + 1``, i.e. ``(size + 1) // k`` for even ``k``
  and ``size // k`` for odd ``k``; always in ``[1, M]``.
  """
  m = size - k + 1
  return (m + 2 * (k // 2) - k) // k + 1


def _s3_cells(size: int, k: int, g: int) -> tuple[np.ndarray, np.ndarray]:
  """Static S3 layout along one dim: cell row bounds and per-cell sample bounds.

  The stride-1 max map's ``M = size - k + 1`` rows are split into
  ``n = ceil(out / (g // k))`` cells with bounds ``ceil(i * M / n)``, and the
  ``out`` output rows into ``n`` groups with bounds ``ceil(i * out / n)``; cell
  ``i`` contributes its group's count of distinct rows. Each cell holds at
  least as many rows as it gives (checked exhaustively for sizes < 300,
  windows <= 8, grids < 40 in the tests). When ``g`` divides ``size`` and ``k``
  divides ``g`` this is the authors' layout: ``size / g`` cells of ``g`` rows
  (``g - k + 1`` for the last one when ``k = 2``) giving ``g / k`` rows each.

  Returns:
    ``(row_bounds, out_bounds)``, int arrays of length ``n + 1``.
  """
  m = size - k + 1
  out = _s3_output_size(size, k)
  n = _cdiv(out, g // k)
  rows = np.array([_cdiv(i * m, n) for i in range(n + 1)])
  outs = np.array([_cdiv(i * out, n) for i in range(n + 1)])
  return rows, outs


def _s3_rows(key: jax.Array, size: int, k: int, g: int) -> jnp.ndarray:
  """The sorted rows of the stride-1 max map kept along one dim: int32 ``(out,)``.

  Per cell, a uniformly random subset of the given size (the first entries of
  a random permutation, drawn as an argsort of uniforms), sorted.
  """
  rows, outs = _s3_cells(size, k, g)
  sizes, counts = np.diff(rows), np.diff(outs)
  n, width, take = len(sizes), int(sizes.max()), int(counts.max())
  exists = np.arange(width)[None, :] < sizes[:, None]
  scores = jnp.where(exists, jax.random.uniform(key, (n, width)), 2.0)
  order = jnp.argsort(scores, axis=1)[:, :take].astype(jnp.int32)
  used = np.arange(take)[None, :] < counts[:, None]
  order = jnp.sort(jnp.where(used, order, width), axis=1)  # unused slots sort last
  flat = np.flatnonzero(used.ravel())
  return (order + rows[:-1, None].astype(np.int32)).reshape(-1)[flat]


def s3_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  grid: int | Sequence[int] | None = None,
  *,
  key: jax.Array | None = None,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""S3Pool: stochastic spatial sampling (Zhai et al., CVPR 2017).

  Step 1: :math:`z = ` ``max_pool(x, window, strides=1)`` (VALID), a map of
  ``M = L - k + 1`` rows per spatial dim.

  * training (``key`` given): per spatial dim, the ``M`` rows are split into
    ``n = ceil(out / (g // k))`` grid cells and each cell keeps a uniformly
    random, sorted subset of distinct rows (``g // k`` of them when sizes
    divide; see :func:`_s3_cells` for the exact bounds); the output is
    ``z`` restricted to the kept rows of every dim (an outer-product
    selection). One draw per call, shared by the batch and the channels, as
    the authors' code; vmap over split keys for per-example draws.
  * evaluation (``key=None``): ``avg_pool(z, window, strides=window,
    padding=window // 2, count_include_pad=False)``.

  Output size, the same in both modes so a network's shapes do not depend on
  the mode (the authors' train rule ``L // g * (g // k)`` and their eval rule
  disagree when ``g`` does not divide ``L``; we take the eval one)::

    out = (M + 2 * (k // 2) - k) // k + 1   # = (L + 1) // k for even k, L // k for odd k

  Gradient: the transpose of the row selection (a scatter of the kept rows)
  followed by :func:`~jaxpool.max_pool`'s scatter-free max backward; in
  evaluation the average-pool backward.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window: ``k`` per spatial dim (the pooling factor).
    grid: grid cell size ``g`` per dim (int or sequence), ``g >= k``;
      ``None`` means ``window``.
    key: a ``jax.random`` key for training, ``None`` for evaluation.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value).
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: step 1 is :func:`~jaxpool.max_pool` with the mask (a masked position
  is never a maximum), and its pooled mask goes on: evaluation averages the
  max-map entries whose window holds an unmasked position; training keeps the
  drawn rows as without a mask (the draw is shared by the batch, whose masks
  differ), and a kept entry whose window holds no unmasked position is 0, with
  a zero gradient and False in the pooled mask.

  Example:
    >>> x = jnp.arange(16.).reshape(4, 4, 1)
    >>> s3_pool(x, (2, 2)).shape  # max map 3x3, eval average pool -> 2x2
    (2, 2, 1)
    >>> s3_pool(x, (2, 2), key=jax.random.key(0)).shape
    (2, 2, 1)
  """
  x, window, nb = _checked_window(x, window, 's3_pool', key)
  n = len(window)
  grid = _fields.check_grid(grid, window)
  _, _, return_mask = _masks.prepare(mask, x, 's3_pool', return_mask)
  if mask is None:
    z, z_mask = classic.max_pool(x, window, strides=1), None
  else:
    z, z_mask = classic.max_pool(x, window, strides=1, mask=mask, return_mask=True)
  if key is None:
    return classic.avg_pool(
      z,
      window,
      strides=window,
      padding=[k // 2 for k in window],
      count_include_pad=False,
      mask=z_mask,
      return_mask=return_mask,
    )
  spatial = x.shape[nb : nb + n]
  for axis, (key_d, size, k, g) in enumerate(zip(jax.random.split(key, n), spatial, window, grid)):
    rows = _s3_rows(key_d, size, k, g)
    z = jnp.take(z, rows, axis=nb + axis, mode='clip')
    if z_mask is not None:
      z_mask = jnp.take(z_mask, rows, axis=nb + axis, mode='clip')
  return (z, z_mask) if return_mask else z


# --- fractional max pooling (Graham 2014, PyTorch's rule) ------------------------------


def _round_like(v: jnp.ndarray, dtype) -> jnp.ndarray:
  """Rounds f32 ``v`` to the nearest ``dtype`` value (f16/bf16), kept in f32.

  Done with integer bit arithmetic so that no compiler pass can keep excess
  precision: this is how c10::Half / c10::BFloat16 arithmetic rounds after
  every operation.
  """
  dtype = jnp.dtype(dtype)
  if dtype.itemsize >= 4:
    return v
  bits = lax.bitcast_convert_type(v, jnp.uint32)
  drop = 16 if dtype == jnp.bfloat16 else 13
  half = jnp.uint32((1 << (drop - 1)) - 1)
  bits = (bits + half + ((bits >> drop) & 1)) & jnp.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
  rounded = lax.bitcast_convert_type(bits, jnp.float32)
  if dtype == jnp.float16:  # subnormal halves have an absolute step of 2**-24
    tiny = jnp.round(v * 2.0**24) * 2.0**-24
    rounded = jnp.where(jnp.abs(v) < 2.0**-14, tiny, rounded)
  return rounded


def _host_round(value: float, dtype) -> np.ndarray:
  """A Python number in ``dtype`` (as the C++ cast), returned in the working float dtype."""
  dtype = jnp.dtype(dtype)
  work = np.float64 if dtype == np.float64 else np.float32
  if dtype.itemsize >= 4:
    return np.asarray(value, dtype)
  return np.asarray(np.asarray(value, np.float32).astype(dtype), work)


def _fractional_starts(u: jnp.ndarray, size: int, k: int, out: int, dtype) -> jnp.ndarray:
  """PyTorch's ``generate_intervals``: window starts along one dim, int32 ``(*u.shape, out)``.

  ``alpha = (size - k) / (out - 1)``, ``start_i = int((i + u) * alpha) - int(u * alpha)``
  for ``i < out - 1`` and ``start_{out-1} = size - k``, evaluated in ``dtype``'s
  precision with a rounding after every operation, exactly as ATen's CPU
  kernel does in the input's scalar type (f16/bf16 emulated bit-exactly). Starts
  are clipped to ``[0, size - k]`` (bf16 rounding can push PyTorch past the
  end, where it fails an internal assert).
  """
  last = size - k
  if out == 1:
    return jnp.full((*u.shape, 1), last, jnp.int32)
  dtype = jnp.dtype(dtype)
  work = np.float64 if dtype == np.float64 else np.float32
  if dtype.itemsize >= 4:
    alpha = np.asarray(np.asarray(last, dtype) / np.asarray(out - 1, dtype), work)
  else:
    alpha = _host_round(float(_host_round(last, dtype) / _host_round(out - 1, dtype)), dtype)
  i = np.stack([_host_round(v, dtype) for v in range(out - 1)]).astype(work)
  u = _round_like(u.astype(work), dtype)[..., None]
  head = _round_like(_round_like(u + i, dtype) * alpha, dtype)
  base = _round_like(u * alpha, dtype)
  starts = head.astype(jnp.int32) - base.astype(jnp.int32)
  starts = jnp.concatenate([starts, jnp.full((*starts.shape[:-1], 1), last, jnp.int32)], -1)
  return jnp.clip(starts, 0, last)


def _plane_gather(planes: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
  """``planes[..., index, c]`` per (batch, channel) plane: flat positions on axis -2."""
  return jnp.take_along_axis(planes, index, axis=-2, mode='promise_in_bounds')


def _window_maxima(
  planes: jnp.ndarray, base: jnp.ndarray, geom: tuple[tuple[int, ...], tuple[int, ...]]
):
  """Per (batch, channel) plane, the maximum of the box at each ``base`` and its position.

  ``planes``: ``(*batch, prod(spatial), C)``; ``base``: ``(*batch, P, C)`` flat
  position of each window's first tap; ``geom = (spatial, window)``. Taps run
  in row-major order; a later tap wins if strictly larger or NaN (PyTorch's
  rule). Returns ``(y, index)``, both ``(*batch, P, C)``. The search runs on
  constant planes; the value's derivative is :func:`_at_winner`'s (the
  integer index has none, so no float0 tangent is ever built).
  """
  y, index = _search(lax.stop_gradient(planes), base, geom)
  return _at_winner(y, planes, index), index


def _search(planes, base, geom):
  spatial, window = geom
  if math.prod(window) > _windows.UNROLL_MAX_TAPS:
    return _stacked_window_maxima(planes, base, spatial, window)
  offsets = list(itertools.product(*(range(k) for k in window)))
  best_index = base + int(np.ravel_multi_index(offsets[0], spatial))
  best_value = _plane_gather(planes, best_index)
  for offset in offsets[1:]:
    index = base + int(np.ravel_multi_index(offset, spatial))
    value = _plane_gather(planes, index)
    better = (value > best_value) | jnp.isnan(value)
    best_value = jnp.where(better, value, best_value)
    best_index = jnp.where(better, index, best_index)
  return best_value, best_index


def _stacked_window_maxima(planes, base, spatial, window):
  """:func:`_window_maxima` by one gather of every tap and reductions over the tap axis.

  The winner: the last NaN if the window holds one, else the first maximum (the
  same as the unrolled scan), found against an iota: an HLO of fixed size.
  """
  k = math.prod(window)
  offsets = np.ravel_multi_index(np.unravel_index(np.arange(k), window), spatial).astype(np.int32)
  index = base[..., :, None, :] + jnp.asarray(offsets)[:, None]  # (*batch, P, K, C)
  # explicit sizes: a reshape to -1 cannot infer a dim of an empty batch or channel axis
  flat = index.reshape(*index.shape[:-3], index.shape[-3] * k, index.shape[-1])
  values = _plane_gather(planes, flat).reshape(index.shape)
  tap = lax.broadcasted_iota(jnp.int32, values.shape, values.ndim - 2)
  best = _numerics.stacked_extremum(values, axis=-2)
  winner = _reductions.winning_tap(values, best[..., None, :], tap, -2, k)
  best_index = base
  rest = winner
  for axis in reversed(range(len(window))):
    best_index = best_index + (rest % window[axis]) * math.prod(spatial[axis + 1 :])
    rest = rest // window[axis]
  return best, best_index


@jax.custom_jvp
def _at_winner(y: jnp.ndarray, planes: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
  """``y`` (the planes' entries at ``index``), differentiated as the gather it is."""
  del planes, index
  return y


@_at_winner.defjvp
def _at_winner_jvp(primals, tangents):
  # y_dot_p = x_dot at the window's maximum: one gather of the tangent at the argmax
  # positions, in f32 for f16/bf16. Its transpose (reverse mode, derived by JAX) is
  # x_bar_j = sum over {p: index_p = j} of y_bar_p: one scatter-add (as PyTorch's
  # backward; a scatter is inherent here, windows land anywhere in the plane),
  # accumulated in f32 and rounded once to x's dtype.
  y, planes, index = primals
  _, planes_dot, _ = tangents
  work = _numerics.compute_dtype(planes_dot.dtype)
  y_dot = _plane_gather(planes_dot.astype(work), index).astype(planes_dot.dtype)
  return _at_winner(y, planes, index), y_dot


_FRACTIONAL_NO_MASK = (
  'its pseudo-random regions tile the whole grid to a fixed output size, so a padded input '
  'gets other regions than its real extent would (crop, or pool each extent on its own)'
)


def fractional_max_pool(
  x: jnp.ndarray,
  window: Sequence[int],
  output_size: int | Sequence[int] | None = None,
  output_ratio: float | Sequence[float] | None = None,
  *,
  key: jax.Array | None = None,
  samples: jnp.ndarray | None = None,
  return_indices: bool = False,
  mask: None = None,
):
  r"""Fractional max pooling (Graham 2014) with PyTorch's pseudo-random intervals.

  Along each spatial dim, with :math:`\alpha = (L - k) / (out - 1)` and a
  sample :math:`u \in [0, 1)` per (batch, channel, dim), output ``i`` pools the
  fixed-size window ``[s_i, s_i + k)`` with

  .. math:: s_i = \lfloor (i + u)\,\alpha \rfloor - \lfloor u\,\alpha \rfloor
     \ (i < out - 1), \qquad s_{out - 1} = L - k

  and :math:`y = \max` over the box of windows (first maximum in row-major
  order on ties, a NaN wins, as PyTorch). The float maths runs in ``x``'s
  precision exactly as PyTorch's CPU kernel (see :func:`_fractional_starts`),
  so the same samples give the same windows — for f16/bf16 too.

  Samples: ``samples`` of shape ``(*batch, C, ndim)`` (broadcastable) in
  ``[0, 1)``, in PyTorch's ``_random_samples`` order — for 2-d pooling
  ``samples[..., 0]`` drives the *last* spatial dim (W) and ``samples[..., 1]``
  the first (H); for every other ``ndim`` (3-d: T, H, W) entry ``j`` drives
  spatial dim ``j``. Cast to ``x``'s dtype. Otherwise a ``key`` draws them
  uniformly (training); with neither, ``u = 0.5`` (a deterministic evaluation
  mode: PyTorch has no eval mode and keeps drawing).

  Output size: ``output_size`` (int or per dim), or ``int(L * output_ratio)``
  (ratio in (0, 1], per dim or shared), exactly one of them; ``k + out - 1 <= L``
  must hold.

  Derivatives: the tangent is :math:`\dot x` at each window's maximum (a custom
  JVP: one gather); the gradient, its transpose derived by JAX, is
  :math:`\bar x_j = \sum_{p:\, \mathrm{argmax}_p = j} \bar y_p`: a scatter-add
  (as PyTorch), accumulated in f32 and rounded once to ``x``'s dtype.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window: window size ``k`` per spatial dim.
    output_size: output spatial size (int or sequence).
    output_ratio: output size as a fraction of the input (number or sequence).
    key: a ``jax.random`` key to draw the samples (training).
    samples: explicit samples (reproduces PyTorch's ``_random_samples``).
    return_indices: also return int32 flat indices of each maximum into its
      (batch, channel) plane (PyTorch's convention), shaped like ``y``.
    mask: refused (a ``TypeError``): the pooling regions are drawn to tile the
      whole grid to a fixed output size, so a padded input would get other
      regions than its real extent alone: no mask makes the result independent of
      the padding. Crop, or pool each real extent on its own.

  Returns:
    ``y`` of shape ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, indices)``.

  Example:
    >>> x = jnp.arange(25.).reshape(5, 5, 1)
    >>> fractional_max_pool(x, (2, 2), output_size=3)[..., 0]  # u = 0.5: starts 0, 2, 3
    Array([[ 6.,  8.,  9.],
           [16., 18., 19.],
           [21., 23., 24.]], dtype=float32)
  """
  _masks.refuse(mask, 'fractional_max_pool', _FRACTIONAL_NO_MASK)
  x, window, nb = _checked_window(x, window, 'fractional_max_pool', key)
  n = len(window)
  batch, spatial, channels = x.shape[:nb], x.shape[nb : nb + n], x.shape[-1]
  out = _fractional_output_size(output_size, output_ratio, spatial, window, x.shape)
  return_indices = _checks.flag(return_indices, 'return_indices')
  u = _fractional_samples(samples, key, (*batch, channels, n), x.dtype)
  base = _fractional_window_starts(u, spatial, window, out, x.dtype)
  y, best_index = _window_maxima(
    x.reshape(*batch, math.prod(spatial), channels), base, (tuple(spatial), tuple(window))
  )
  y = y.reshape(*batch, *out, channels)
  if return_indices:
    return y, best_index.reshape(*batch, *out, channels)
  return y


def _fractional_output_size(output_size, output_ratio, spatial, window, x_shape):
  """The output size from exactly one of ``output_size`` and ``output_ratio``, checked to fit."""
  n = len(window)
  if (output_size is None) == (output_ratio is None):
    raise ValueError(
      'fractional_max_pool needs exactly one of output_size and output_ratio; got '
      f'output_size={output_size!r}, output_ratio={output_ratio!r}'
    )
  if output_size is not None:
    out = _geometry.int_tuple(output_size, n, 'output_size')
  else:
    out = _fields.ratio_output_size(output_ratio, spatial)
    if any(o < 1 for o in out):
      raise ValueError(
        f'output_ratio {output_ratio!r} gives output size {out} for spatial shape '
        f'{tuple(spatial)}; every output size must be >= 1'
      )
  for d, (size, k, o) in enumerate(zip(spatial, window, out)):
    if k + o - 1 > size:
      raise ValueError(
        f'fractional_max_pool needs window + output_size - 1 <= input size in every dim; '
        f'dim {d}: window {k} + output {o} - 1 > {size} (x shape {x_shape}, '
        f'window {window}, output size {out})'
      )
  return out


def _fractional_samples(samples, key, sample_shape, dtype) -> jnp.ndarray:
  """``u`` of shape ``(*batch, C, ndim)`` in ``dtype``: given, drawn with ``key``, or 0.5."""
  if samples is not None:
    if key is not None:
      raise ValueError('fractional_max_pool takes a key or samples, not both')
    samples = _numerics.as_array(samples, 'samples')
    if not jnp.issubdtype(samples.dtype, jnp.floating):
      raise TypeError(f'samples must be floats in [0, 1); got dtype {samples.dtype}')
    try:
      samples = jnp.broadcast_to(samples, sample_shape)
    except ValueError:
      raise ValueError(
        f'samples must have shape (*batch, C, ndim) = {sample_shape} (or broadcast to it); '
        f'got {samples.shape}'
      ) from None
    return samples.astype(dtype)
  if key is not None:
    return jax.random.uniform(key, sample_shape, dtype)
  return jnp.full(sample_shape, 0.5, dtype)


def _fractional_window_starts(u, spatial, window, out, dtype) -> jnp.ndarray:
  """Flat per-plane index of each window's first tap, ``(*batch, prod(out), C)``.

  ``u``: ``(*batch, C, ndim)`` samples in PyTorch's order (2-d samples are (W, H)).
  """
  n = len(window)
  batch, channels = u.shape[:-2], u.shape[-2]
  order = (1, 0) if n == 2 else tuple(range(n))
  strides = [math.prod(spatial[d + 1 :]) for d in range(n)]
  base = jnp.zeros((*batch, channels, *(1,) * n), jnp.int32)
  for d in range(n):
    starts = _fractional_starts(
      lax.stop_gradient(u[..., order[d]]), spatial[d], window[d], out[d], dtype
    )
    base = base + (starts * strides[d]).reshape(
      *batch, channels, *(1,) * d, out[d], *(1,) * (n - d - 1)
    )
  # explicit sizes: a reshape to -1 cannot infer a dim of an empty batch or channel axis
  return jnp.moveaxis(base, len(batch), -1).reshape(*batch, math.prod(out), channels)
