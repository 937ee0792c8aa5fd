"""Anti-aliased downsampling: BlurPool and MaxBlurPool (Zhang, ICML 2019).

"Making convolutional networks shift-invariant again" low-pass filters a
signal before subsampling it. The filter is the binomial one: along a dim of
window ``n`` its taps are the row ``C(n-1, j) / 2^(n-1)``, ``j < n``
(``[1]``, ``[1, 1]/2``, ``[1, 2, 1]/4``, ... ``[1, 6, 15, 20, 15, 6, 1]/64``),
and an n-d filter is the outer product of the rows, so it sums to 1 and is
applied per channel (depthwise).

Because the filter is separable, :func:`blur_pool` runs one strided 1-d pass
per spatial dim: a sum of ``window`` strided views of the zero-padded input
(:func:`~jaxpool._windows.window_taps`) scaled by the binomial weights, plus,
for ``'reflect'``/``'edge'``, what the border outputs read instead of zeros (one
small contraction per end: a fixed number of ops whatever the filter size).
It is exact f32 arithmetic (no conv precision setting to get wrong). On
XLA:CPU (16x56x56x64, 3x3/s2) it measured ~10x faster forward and ~40x
faster forward+backward than a depthwise
``lax.conv_general_dilated(feature_group_count=C)``. The passes are linear
and differentiated in both modes (``jvp`` too); reverse mode is JAX's transpose
of the taps (per stride phase: shifted adds at output resolution, interleaved
by a concatenate) and of the border reads' tangent rule: no scatter, no
interior padding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _checks, _fields, _geometry, _masks, _numerics, _windows, classic
from jaxpool._geometry import Padding

__all__ = ['binomial_filter', 'blur_pool', 'max_blur_pool']


def binomial_filter(window: Sequence[int]) -> np.ndarray:
  r"""The normalised binomial (blur) filter of shape ``window``, float64.

  .. math:: f_{j_1 \dots j_n} = \prod_a \binom{k_a - 1}{j_a} \, 2^{-(k_a - 1)}

  the outer product of binomial rows; it sums to 1. ``window`` entries are
  positive ints (the paper uses 1 to 7; any size works).

  Example:
    >>> binomial_filter((3,))
    array([0.25, 0.5 , 0.25])
    >>> binomial_filter((1, 2))
    array([[0.5, 0.5]])
  """
  window = _geometry.normalize_window(window)
  filt = np.ones(())
  for k in window:
    filt = np.multiply.outer(filt, _binomial_row(k))
  return filt


def _binomial_row(k: int) -> np.ndarray:
  return np.array([math.comb(k - 1, j) for j in range(k)], np.float64) / 2.0 ** (k - 1)


def _source(pos: int, size: int, mode: str) -> int:
  """Input index that padded position ``pos`` repeats ('reflect': mirror without the edge)."""
  if mode == 'edge':
    return min(max(pos, 0), size - 1)
  return -pos if pos < 0 else 2 * (size - 1) - pos


def _border_plan(size: int, row: np.ndarray, s: int, lo: int, out: int, mode: str):
  """Static ``((first_output, first_source, weights), ...)``: what border outputs read.

  Output ``p`` reads, for each tap ``j`` in the padding, ``w_j x[source(p s + j - lo)]``.
  The border outputs split into at most two groups (the low and the high end);
  each group's reads form a small matrix ``weights[p - first_output][src - first_source]``
  (nested tuples, hashable), applied as one contraction: a fixed number of ops
  whatever the filter size.
  """
  reads: dict[tuple[int, int], float] = {}  # (output, source) -> summed weight
  for p in range(out):
    for j, w in enumerate(row):
      pos = p * s + j - lo
      if not 0 <= pos < size:
        key = (p, _source(pos, size, mode))
        reads[key] = reads.get(key, 0.0) + float(w)
  groups = []
  for low in (True, False):
    entries = {key: w for key, w in reads.items() if (key[0] < (out + 1) // 2) == low}
    if not entries:
      continue
    p0, p1 = min(k[0] for k in entries), max(k[0] for k in entries) + 1
    s0, s1 = min(k[1] for k in entries), max(k[1] for k in entries) + 1
    weights = np.zeros((p1 - p0, s1 - s0))
    for (p, src), w in entries.items():
      weights[p - p0, src - s0] = w
    groups.append((p0, s0, tuple(map(tuple, weights.tolist()))))
  return tuple(groups)


def _border_reads(x: jnp.ndarray, axis: int, first_source: int, weights) -> jnp.ndarray:
  """``sum_src weights[q][src] x[first_source + src]`` along ``axis``: one contraction."""
  matrix = np.asarray(weights, np.float32)
  rows = lax.slice_in_dim(x, first_source, first_source + matrix.shape[1], axis=axis)
  work = _numerics.compute_dtype(x.dtype)
  reads = jnp.tensordot(
    jnp.asarray(matrix, work), rows.astype(work), axes=([1], [axis]), precision='highest'
  )
  return jnp.moveaxis(reads, 0, axis).astype(x.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _add_border(y: jnp.ndarray, x: jnp.ndarray, axis: int, plan) -> jnp.ndarray:
  """``y[p] += sum w x[src]`` for the border outputs of ``plan``, in place.

  Forward: one ``dynamic_update_slice`` per group (no padded copy of ``x`` and
  no output-sized addend, which XLA:CPU fused badly after a max pool). Tangent:
  ``ẏ`` plus each group's reads of ``ẋ``, padded into place. JAX transposes it to
  the scatter-free backward: ``y``'s cotangent passes through, ``x`` gets the
  groups' few rows of it.
  """
  for p0, s0, weights in plan:
    rows = lax.slice_in_dim(y, p0, p0 + len(weights), axis=axis)
    y = lax.dynamic_update_slice_in_dim(y, rows + _border_reads(x, axis, s0, weights), p0, axis)
  return y


@_add_border.defjvp
def _add_border_jvp(axis, plan, primals, tangents):
  (y, x), (dy, dx) = primals, tangents
  out = y.shape[axis]
  for p0, s0, weights in plan:
    config = [(0, 0, 0)] * dy.ndim
    config[axis] = (p0, out - p0 - len(weights), 0)
    dy = dy + lax.pad(_border_reads(dx, axis, s0, weights), jnp.zeros((), dy.dtype), config)
  return _add_border(y, x, axis, plan), dy


def _blur_axis(
  x: jnp.ndarray,
  nb: int,
  axis: int,
  k: int,
  s: int,
  pads: tuple[int, int],
  out: int,
  pad_mode: str,
  renormalize: bool,
) -> jnp.ndarray:
  """One separable pass along spatial dim ``axis``: ``y[p] = sum_j w_j x[p * s + j - lo]``."""
  n = x.ndim - nb - 1
  spatial = x.shape[nb : nb + n]
  unit = (1,) * n

  def along(value, other):
    return tuple(value if a == axis else other[a] for a in range(n))

  geom = _geometry.Geometry(
    in_shape=spatial,
    out_shape=along(out, spatial),
    window=along(k, unit),
    strides=along(s, unit),
    dilation=unit,
    padding=along(pads, ((0, 0),) * n),
  )
  row = _binomial_row(k)
  taps = _windows.Taps.read(x, geom, 0.0)  # zeros in the padding
  y = taps.data[0] if k == 1 else taps.dot(np.asarray(row, x.dtype))
  lo, hi = pads
  if not (lo or hi):
    return y
  if pad_mode != 'constant':
    plan = _border_plan(spatial[axis], row, s, lo, out, pad_mode)
    return _add_border(y, x, nb + axis, plan) if plan else y
  if renormalize:
    # Weight mass of the taps inside the input, per output position.
    pos = np.arange(out)[:, None] * s + np.arange(k)[None, :] - lo
    mass = (row[None, :] * ((pos >= 0) & (pos < spatial[axis]))).sum(1)
    if not np.all(mass == 1):
      shape = [1] * x.ndim
      shape[nb + axis] = out
      y = y * (1.0 / mass).reshape(shape).astype(x.dtype)
  return y


def blur_pool(
  x: jnp.ndarray,
  window: Sequence[int] = (3, 3),
  strides: int | Sequence[int] | None = 2,
  padding: Padding = 'SAME',
  *,
  pad_mode: str = 'constant',
  count_include_pad: bool = False,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""BlurPool (Zhang, ICML 2019): depthwise binomial blur, then subsampling.

  .. math:: y_p = \sum_{j \in \text{window}} f_j \, x_{p \cdot s + j - \text{pad}_{lo}}

  with :func:`binomial_filter` ``f`` of shape ``window`` (sum 1), per channel.
  ``window=(3, 3), strides=2`` is the paper's default anti-aliased stride-2
  downsampling (``window=(1, 1)`` is plain subsampling ``x[::s, ::s]``).

  Borders — positions outside the input, by ``pad_mode``:

  * ``'constant'`` (default), ``count_include_pad=False``: padded taps never
    contribute, as everywhere in jaxpool: the weights of the taps inside the
    input are renormalised to sum to 1,
    :math:`y_p = \sum_{j\,\mathrm{valid}} f_j x_j / \sum_{j\,\mathrm{valid}} f_j`.
    A constant image stays that constant everywhere, borders included.
  * ``'constant'``, ``count_include_pad=True``: zeros, counted — exactly a
    zero-padded depthwise convolution (timm's ``'blurpc'``); border outputs of
    a constant image are scaled by the filter mass inside the input.
  * ``'reflect'`` (the paper's code; mirror without repeating the edge,
    needs every pad smaller than its spatial size) or ``'edge'`` (repeat the
    edge value): the padding holds real values, all taps count, and constants
    are preserved. ``count_include_pad`` is ignored.

  Padding follows jaxpool's rules (``'SAME'``, ``'VALID'``, int, per-dim ints,
  ``(low, high)`` pairs; explicit pads at most ``window // 2``). Note that
  ``'SAME'`` puts an odd total pad's extra tap on the high side (XLA's rule):
  for a 3-tap window and an even size the taps are ``[2p, 2p + 2]``; pass
  ``padding=1`` for the paper's centring ``[2p - 1, 2p + 1]``
  (``padding=((1, 2), (1, 2))`` matches its 4-tap filter).

  Output size per spatial dim: ``floor((L + lo + hi - k) / s) + 1``
  (``ceil(L / s)`` for ``'SAME'``).

  Gradient: linear, :math:`\bar x_i = \sum_{p, j:\, p s + j - lo = i} c_p f_j \bar y_p`
  (a transposed blur; ``c_p`` the renormalisation factor, or 1), by autodiff of
  the separable passes.

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions are computed in f32.
    window: filter size per spatial dim (e.g. ``(3, 3)``; non-square allowed).
    strides: int or per-dim; ``None`` means ``window``. Default 2.
    padding: as above; default ``'SAME'``.
    pad_mode: ``'constant'``, ``'reflect'`` or ``'edge'``.
    count_include_pad: with ``'constant'``, count the zero padding (plain conv).
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value); needs ``pad_mode='constant'``.
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: a masked position is padding: the filter is renormalised over the
  unmasked taps, :math:`y_p = \sum_j f_j m_j x_j / \sum_j f_j m_j` (with
  ``count_include_pad=True`` the divisor also holds the filter mass in the
  explicit padding, as without a mask). A window with no unmasked tap gives 0
  with a zero gradient. ``'reflect'`` and ``'edge'`` fill the border from data
  a mask may hide, so they refuse a mask.

  Example:
    >>> x = jnp.arange(8.).reshape(8, 1)
    >>> blur_pool(x, (3,), 2, padding=1)[:, 0]   # taps [2p - 1, 2p + 1]
    Array([0.33333334, 2.        , 4.        , 6.        ], dtype=float32)
    >>> blur_pool(x, (3,), 2, padding=1, pad_mode='reflect')[:, 0]
    Array([0.5, 2. , 4. , 6. ], dtype=float32)
  """
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'blur_pool')
  pad_mode = _fields.check_pad_mode(pad_mode)
  count_include_pad = _checks.flag(count_include_pad, 'count_include_pad')
  geom, nb = _geometry.pool_geometry(x.shape, window, strides, padding)
  if pad_mode == 'reflect':
    for size, (lo, hi) in zip(geom.in_shape, geom.padding):
      if max(lo, hi) >= size:
        raise ValueError(
          f"pad_mode='reflect' needs every pad smaller than its spatial size; got "
          f'padding {geom.padding} for spatial shape {geom.in_shape} (use '
          f"pad_mode='edge' or 'constant', or less padding)"
        )
  valid, no_channels, return_mask = _masks.prepare(mask, x, 'blur_pool', return_mask)
  if valid is not None:
    _check_masked_pad_mode(pad_mode, 'blur_pool')
    return _masked_blur(x, geom, nb, valid, no_channels, count_include_pad, return_mask)
  return _blur(
    x.astype(_numerics.compute_dtype(x.dtype)), geom, nb, pad_mode, count_include_pad
  ).astype(x.dtype)


def _check_masked_pad_mode(pad_mode: str, op: str) -> None:
  if pad_mode != 'constant':
    raise ValueError(
      f"{op}: a mask needs pad_mode='constant' ({pad_mode!r} fills the border from "
      f'positions the mask may hide); got pad_mode={pad_mode!r}'
    )


def _blur(y, geom, nb: int, pad_mode: str, count_include_pad: bool):
  """The separable blur passes of :func:`blur_pool`, in ``y``'s dtype."""
  renormalize = pad_mode == 'constant' and not count_include_pad
  for a in reversed(range(geom.ndim)):
    y = _blur_axis(
      y,
      nb,
      a,
      geom.window[a],
      geom.strides[a],
      geom.padding[a],
      geom.out_shape[a],
      pad_mode,
      renormalize,
    )
  return y


def _masked_blur(x, geom, nb: int, valid, no_channels: bool, count_include_pad: bool, return_mask):
  """:func:`blur_pool` over the unmasked taps: the zero-padded blurs of the data and of the
  mask, divided (plus the filter mass in the padding with ``count_include_pad``)."""
  cdt = _numerics.compute_dtype(x.dtype)
  total = _blur(_masks.data(x.astype(cdt), valid), geom, nb, 'constant', True)
  mass = _blur(valid.astype(cdt), geom, nb, 'constant', True)
  any_valid = mass > 0  # binomial weights are positive
  if count_include_pad:
    ones = jnp.ones((1,) * nb + geom.in_shape + (1,), cdt)
    mass = mass + (1 - _blur(ones, geom, nb, 'constant', True))  # the padding's share
  y = total / jnp.where(any_valid, mass, jnp.ones((), cdt))
  y = _masks.zero_where_empty(y, any_valid).astype(x.dtype)
  return (y, _masks.returned(any_valid, no_channels)) if return_mask else y


def max_blur_pool(
  x: jnp.ndarray,
  window: Sequence[int] = (2, 2),
  blur: Sequence[int] = (3, 3),
  strides: int | Sequence[int] | None = 2,
  padding: Padding = 'SAME',
  *,
  pad_mode: str = 'constant',
  count_include_pad: bool = False,
  mask: jnp.ndarray | None = None,
  return_mask: bool = False,
):
  r"""MaxBlurPool (Zhang, ICML 2019): dense max pooling, then :func:`blur_pool`.

  .. math:: y = \mathrm{BlurPool}_{\text{blur}, s}\big(\mathrm{MaxPool}_{\text{window}, 1}(x)\big)

  The paper's anti-aliased replacement for ``MaxPool(k, stride=s)``: evaluate
  the max densely (stride 1, no padding, as the paper), then low-pass and
  subsample. ``padding``, ``pad_mode`` and ``count_include_pad`` are those of
  the blur step (see :func:`blur_pool`); ``strides=None`` means ``blur``.

  Output size per spatial dim: the blur's rule applied to ``L - window + 1``
  (``ceil((L - window + 1) / s)`` for ``'SAME'``; e.g. 56 -> 28 for the defaults).

  Gradient: the blur's transpose, then the max-pool rule (each dense window's
  cotangent to its first maximum), without scatter.

  Args:
    x: ``(*batch, *spatial, C)`` floats.
    window: max-pool window per spatial dim (stride 1, ``'VALID'``).
    blur: blur filter size per spatial dim.
    strides: subsampling factor of the blur (int or per-dim), default 2.
    padding, pad_mode, count_include_pad: of the blur, as :func:`blur_pool`.
    mask: bool, ``(*batch, *spatial)`` or broadcastable to ``x``: the positions
      that are data (a runtime value); needs ``pad_mode='constant'``.
    return_mask: also return the pooled mask (needs ``mask``).

  Returns:
    ``(*batch, *out, C)`` in ``x``'s dtype, or ``(y, pooled_mask)``.

  Masks: the dense max pool takes the mask (:func:`jaxpool.max_pool`) and the
  blur takes the pooled one: masked positions never win a max, and dense
  windows with no unmasked position are left out of the blur.

  Example:
    >>> x = jnp.array([[0.], [4.], [0.], [0.], [0.], [0.]])
    >>> max_blur_pool(x, (2,), (3,), 2)[:, 0]
    Array([4., 1., 0.], dtype=float32)
  """
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'max_blur_pool')
  window = _geometry.normalize_window(window)
  blur = _geometry.normalize_window(blur, 'blur')
  if len(blur) != len(window):
    raise ValueError(f'blur must have one entry per spatial dim of window {window}; got {blur!r}')
  pad_mode = _fields.check_pad_mode(pad_mode)
  valid, _, return_mask = _masks.prepare(mask, x, 'max_blur_pool', return_mask)
  if valid is None:
    dense = classic.max_pool(x, window, 1)
  else:
    _check_masked_pad_mode(pad_mode, 'max_blur_pool')
    dense, mask = classic.max_pool(x, window, 1, mask=mask, return_mask=True)
  return blur_pool(
    dense,
    blur,
    strides,
    padding,
    pad_mode=pad_mode,
    count_include_pad=count_include_pad,
    mask=mask,
    return_mask=return_mask,
  )
