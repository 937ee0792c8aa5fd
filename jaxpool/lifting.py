r"""LiftPool (Zhao & Snoek, ICLR 2021): pooling by the lifting scheme, exactly invertible.

Along one axis, the lifting scheme splits a signal into its even and odd
samples, predicts the odd ones from the even ones and updates the even ones
with the prediction error:

.. math::

  x_e[n] = x[2n], \quad x_o[n] = x[2n + 1], \quad
  d = x_o - P(x_e), \quad s = x_e + U(d).

``s`` (the low band, "L") is the pooled signal, ``d`` (the high band, "H")
the detail it lost. Whatever the operators ``P`` and ``U`` are, the step is
undone by ``x_e = s - U(d)``, ``x_o = d + P(x_e)`` and interleaving — so
:func:`lift_up_pool` inverts :func:`lift_down_pool` exactly given every band.
Lifting along several axes in turn splits each band again: two axes give the
LL, LH, HL and HH bands at half resolution.

``P`` and ``U`` are *1-d operators* on channel-last signals: callables
``(*batch, M, C) -> (*batch, M, C)`` — the learned small convolutions of the
paper (:class:`jaxpool.linen.LiftDownPool` supplies them) or any function —
or arrays holding a linear filter, which gives the classic wavelets (Haar,
LeGall 5/3, ...). The same ``P`` and ``U`` serve every axis and band, as in
the paper (where a 2-d LiftDownPool reuses its 1-d operators three times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax

from jaxpool import _fields, _geometry, _masks, _numerics

__all__ = ['lift_down_pool', 'lift_up_pool', 'band_names']

Operator = Callable[[jnp.ndarray], jnp.ndarray] | jnp.ndarray


def band_names(num_axes: int) -> tuple[str, ...]:
  """Names of the bands of a lifting along ``num_axes`` axes, low band first.

  One letter per lifted axis, in the order of ``axes``: ``'L'`` for the low
  (update) branch along that axis, ``'H'`` for the high (detail) branch.

  Example:
    >>> band_names(2)
    ('LL', 'LH', 'HL', 'HH')
  """
  names: tuple[str, ...] = ('',)
  for _ in range(num_axes):
    names = tuple(n + b for n in names for b in 'LH')
  return names


def _normalize_axes(axes: Any, ndim: int, name: str) -> tuple[int, ...]:
  """Axes as non-negative ints: distinct, in range, never the channel (last) axis."""
  axes = _fields.axes_tuple(axes)
  out = []
  for a in axes:
    if not -ndim <= a < ndim or a % ndim == ndim - 1:
      raise ValueError(
        f'axes must name spatial axes of {name} (rank {ndim}, channels last): ints in '
        f'[0, {ndim - 2}] or [{-ndim}, -2], never the channel axis; got {axes!r}'
      )
    out.append(int(a) % ndim)
  if len(set(out)) != len(out):
    raise ValueError(f'axes must be distinct; got {axes!r}')
  return tuple(out)


def _filter_op(w: jnp.ndarray, start: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """Linear 1-d filter along axis -2, zero padded: ``y[n] = sum_j w[j] v[n + j - start]``."""
  k = w.shape[0]

  def apply(v):
    m = v.shape[-2]
    config = [(0, 0, 0)] * v.ndim
    config[-2] = (start, k - 1 - start, 0)
    vp = lax.pad(v, jnp.zeros((), v.dtype), config) if k > 1 else v
    y = None
    for j in range(k):
      term = w[j] * lax.slice_in_dim(vp, j, j + m, axis=v.ndim - 2)
      y = term if y is None else y + term
    return y

  return apply


# Where a K-tap filter starts, relative to the sample it produces. P predicts
# x_o[n] (position 2n + 1): an even filter [a, b] reads x_e[n], x_e[n + 1], the
# even samples on both sides. U updates x_e[n] (position 2n): [a, b] reads
# d[n - 1], d[n]. Odd filters are centred.
_FILTER_START = {'predict': lambda k: (k - 1) // 2, 'update': lambda k: k // 2}


def _operator(op: Any, name: str, channels: int) -> Callable:
  """A callable operator from a callable (output shape checked) or a filter array."""
  if callable(op):

    def checked(v):
      y = jnp.asarray(op(v))
      if y.shape != v.shape:
        raise ValueError(
          f'{name} must map a (*batch, M, C) array to one of the same shape; '
          f'given shape {v.shape} it returned shape {y.shape}'
        )
      return y

    return checked
  w = _numerics.as_array(op, name)
  if not jnp.issubdtype(w.dtype, jnp.floating):
    raise TypeError(f'{name} must be a callable or a float filter array; got dtype {w.dtype}')
  if w.ndim not in (1, 2) or w.shape[0] < 1 or (w.ndim == 2 and w.shape[1] != channels):
    raise ValueError(
      f'{name} must be a callable or a filter array of shape (K,) or (K, C) with '
      f'C = {channels} channels; got shape {w.shape}'
    )
  return _filter_op(w, _FILTER_START[name](w.shape[0]))


def _lift(v: jnp.ndarray, axis: int, predict: Callable, update: Callable):
  """One lifting step along ``axis``: returns ``(s, d)``, the axis halved (rounded up)."""
  v = jnp.moveaxis(v, axis, -2)
  if v.shape[-2] % 2:
    v = jnp.concatenate([v, v[..., -1:, :]], axis=-2)  # odd: repeat the last sample
  pairs = v.reshape(*v.shape[:-2], v.shape[-2] // 2, 2, v.shape[-1])
  even, odd = pairs[..., 0, :], pairs[..., 1, :]
  d = odd - predict(even)
  s = even + update(d)
  return jnp.moveaxis(s, -2, axis), jnp.moveaxis(d, -2, axis)


def _unlift(
  s: jnp.ndarray, d: jnp.ndarray, axis: int, size: int, predict: Callable, update: Callable
) -> jnp.ndarray:
  """Inverse of :func:`_lift`: interleaves the recovered samples, keeps ``size`` of them."""
  s, d = jnp.moveaxis(s, axis, -2), jnp.moveaxis(d, axis, -2)
  even = s - update(d)
  odd = d + predict(even)
  v = jnp.stack([even, odd], axis=-2).reshape(*s.shape[:-2], 2 * s.shape[-2], s.shape[-1])
  return jnp.moveaxis(v[..., :size, :], -2, axis)


_NO_MASK = (
  'a lifting is an invertible transform of every position (each odd sample is predicted from '
  'its even neighbours, and lift_up_pool restores all of them); a masked position has no '
  'value to predict from or to restore'
)


def lift_down_pool(
  x: jnp.ndarray,
  predict: Operator,
  update: Operator,
  axes: int | Sequence[int] = (-3, -2),
  *,
  mask: None = None,
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  r"""LiftDownPool (Zhao & Snoek, ICLR 2021): lifting-scheme downsampling.

  Along each axis in ``axes``, in that order, every band is split into even
  and odd samples and lifted:

  .. math:: d = x_o - P(x_e), \qquad s = x_e + U(d)

  ``s`` continues as the low (``'L'``) branch, ``d`` as the high (``'H'``)
  branch. Two axes give the bands ``LL, LH, HL, HH`` (letters in ``axes``
  order, see :func:`band_names`); ``LL`` is the pooled output, the others the
  details :func:`lift_up_pool` needs to invert it. The order of ``axes``
  matters when ``P``/``U`` are nonlinear: pass ``axes=(-2, -3)`` to lift the
  width first, as the paper describes.

  Operators (the same ``P``/``U`` for every axis and band):

  * a callable ``(*batch, M, C) -> (*batch, M, C)`` acting along axis ``-2``
    (the lifted axis is moved there; the other spatial axes ride along as
    batch dims) — e.g. the paper's conv(K) -> ReLU -> conv(1) -> tanh;
  * an array filter ``w`` of shape ``(K,)`` (shared over channels) or
    ``(K, C)``, zero padded: :math:`P(e)[n] = \sum_j w_j e[n + j - \lfloor (K-1)/2 \rfloor]`
    and :math:`U(d)[n] = \sum_j w_j d[n + j - \lfloor K/2 \rfloor]`, so an even
    ``P`` reads the even samples on both sides of ``x[2n + 1]`` and an even
    ``U`` the details on both sides of ``x[2n]``. Haar: ``P = [1]``,
    ``U = [1/2]`` (``s`` is the pairwise mean); LeGall 5/3:
    ``P = [1/2, 1/2]``, ``U = [1/4, 1/4]``.

  Odd sizes: an axis of odd length ``L`` is extended by repeating its last
  sample, so each lifted axis becomes ``ceil(L / 2)``; pass the original sizes
  as ``output_size`` to :func:`lift_up_pool` to get them back.

  Gradient: by autodiff through ``P``, ``U`` and the reshapes (w.r.t. ``x``
  and any parameters ``P``/``U`` close over or the filter arrays).

  Args:
    x: ``(*batch, *spatial, C)`` floats; half precisions are computed in f32
      (the operators see f32) and the bands returned in ``x``'s dtype.
    predict: ``P``, a callable or filter array as above.
    update: ``U``, a callable or filter array as above.
    axes: the spatial axes of ``x`` to lift (ints, negative allowed, not the
      channel axis); default ``(-3, -2)``: height then width of ``(N, H, W, C)``.
    mask: refused (a ``TypeError``): a lifting is an invertible transform of
      every position — each odd sample is predicted from its even neighbours and
      :func:`lift_up_pool` restores them all — so a masked position has no value
      to predict from or to restore.

  Returns:
    ``(low, details)``: ``low`` the all-``L`` band, ``details`` a dict from
    band name (e.g. ``'LH'``) to band, every band shaped like ``x`` with each
    lifted axis ``ceil(L / 2)``.

  Example:
    >>> x = jnp.array([[1.], [3.], [4.], [8.]])
    >>> low, details = lift_down_pool(x, jnp.ones(1), jnp.full(1, 0.5), axes=0)
    >>> low[:, 0], details['H'][:, 0]
    (Array([2., 6.], dtype=float32), Array([2., 4.], dtype=float32))
  """
  _masks.refuse(mask, 'lift_down_pool', _NO_MASK)
  x = _numerics.as_array(x)
  _numerics.check_float(x, 'lift_down_pool')
  axes = _normalize_axes(axes, x.ndim, 'x')
  p = _operator(predict, 'predict', x.shape[-1])
  u = _operator(update, 'update', x.shape[-1])
  bands = {'': x.astype(_numerics.compute_dtype(x.dtype))}
  for axis in axes:
    split = {}
    for name, band in bands.items():
      split[name + 'L'], split[name + 'H'] = _lift(band, axis, p, u)
    bands = split
  names = band_names(len(axes))
  low = bands[names[0]].astype(x.dtype)
  return low, {n: bands[n].astype(x.dtype) for n in names[1:]}


def lift_up_pool(
  low: jnp.ndarray,
  details: Mapping[str, jnp.ndarray],
  predict: Operator,
  update: Operator,
  axes: int | Sequence[int] = (-3, -2),
  output_size: int | Sequence[int] | None = None,
  *,
  mask: None = None,
) -> jnp.ndarray:
  r"""LiftUpPool (Zhao & Snoek, ICLR 2021): the exact inverse of :func:`lift_down_pool`.

  Along each axis of ``axes`` in reverse order, every pair of bands
  ``(s, d)`` is merged back:

  .. math:: x_e = s - U(d), \qquad x_o = d + P(x_e), \qquad x[2n] = x_e[n],\ x[2n+1] = x_o[n]

  With the ``P``, ``U`` and ``axes`` given to :func:`lift_down_pool`,
  ``lift_up_pool(*lift_down_pool(x, P, U, axes), P, U, axes, output_size=...) == x``
  up to rounding, for any ``P`` and ``U``. (Setting a detail band to zero
  gives a learned upsampling of the low band.)

  Output size: each lifted axis becomes ``2 M`` (``M`` its band size), or
  ``output_size`` — the original sizes, one per entry of ``axes``, each
  ``2 M`` or ``2 M - 1``.

  Args:
    low: the low band ``(*batch, *spatial, C)``.
    details: dict from band name to band, the keys of :func:`band_names`
      after the first (e.g. ``'LH', 'HL', 'HH'``), each shaped like ``low``.
    predict, update, axes: as given to :func:`lift_down_pool`.
    output_size: None, an int, or one int per entry of ``axes``.
    mask: refused (a ``TypeError``), as :func:`lift_down_pool`'s.

  Returns:
    the reconstructed signal, in ``low``'s dtype.

  Example:
    >>> low, details = jnp.array([[2.], [6.]]), {'H': jnp.array([[2.], [4.]])}
    >>> lift_up_pool(low, details, jnp.ones(1), jnp.full(1, 0.5), axes=0)[:, 0]
    Array([1., 3., 4., 8.], dtype=float32)
  """
  _masks.refuse(mask, 'lift_up_pool', _NO_MASK)
  low = _numerics.as_array(low, 'low')
  _numerics.check_float(low, 'lift_up_pool', 'low')
  axes = _normalize_axes(axes, low.ndim, 'low')
  names = band_names(len(axes))
  if not isinstance(details, Mapping) or set(details) != set(names[1:]):
    got = sorted(details) if isinstance(details, Mapping) else type(details).__name__
    raise ValueError(
      f'details must be a dict with the bands {list(names[1:])} for {len(axes)} lifted '
      f'axes (as returned by lift_down_pool); got {got}'
    )
  halves = [low.shape[a] for a in axes]
  if output_size is None:
    sizes = tuple(2 * m for m in halves)
  else:
    sizes = _geometry.int_tuple(output_size, len(axes), 'output_size')
    for size, m in zip(sizes, halves):
      if size not in (2 * m - 1, 2 * m):
        raise ValueError(
          f'output_size must give each lifted axis 2 * M or 2 * M - 1 for band sizes '
          f'M = {tuple(halves)}; got {output_size!r}'
        )
  cdt = _numerics.compute_dtype(low.dtype)
  bands = {names[0]: low.astype(cdt)}
  for name in names[1:]:
    band = _numerics.as_array(details[name], f"details['{name}']")
    if band.shape != low.shape:
      raise ValueError(
        f"details['{name}'] must have the shape of low {low.shape}; got {band.shape}"
      )
    bands[name] = band.astype(cdt)
  p = _operator(predict, 'predict', low.shape[-1])
  u = _operator(update, 'update', low.shape[-1])
  for depth in reversed(range(len(axes))):
    bands = {
      prefix: _unlift(bands[prefix + 'L'], bands[prefix + 'H'], axes[depth], sizes[depth], p, u)
      for prefix in band_names(depth)
    }
  return bands[''].astype(low.dtype)
