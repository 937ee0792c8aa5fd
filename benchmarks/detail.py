"""How much detail each deterministic pooling keeps, measured on real photographs.

Usage::

  python benchmarks/detail.py                 # 5 photos, kernels 2, 3, 5 (3 CPU-minutes)
  python benchmarks/detail.py --out detail.md --plot docs/figures/detail.png
  python benchmarks/detail.py --quick         # one photo, kernel 2, a 96x96 crop (CI)

Prints Markdown tables (means over the photos per kernel, the SoftPool
temperature sweep, the scale dependence, per-photo PSNRs); ``--out`` also
writes them, ``--plot`` (default: ``--out`` with ``.png``) draws the figure.

Photos: the colour photographs bundled inside scikit-image's wheel
(``skimage.data``: astronaut, coffee, chelsea, rocket, hubble_deep_field);
nothing is downloaded — a photo missing from the installed package is an
error, never a fetch. Each is converted to float32 in [0, 1] and centre-cropped
to a multiple of 30 = lcm(2, 3, 5) per side, so every kernel tiles it exactly.

Every op pools with ``window = strides = (k, k)``, ``'VALID'`` padding, and
must return ``(H / k, W / k, C)`` (ops that cannot are left out at that k).
Two protocols, metrics from ``skimage.metrics`` with ``data_range=1`` (outputs
are not clipped; SSIM is the default 7x7 uniform-window SSIM, ``channel_axis=-1``):

(a) *vs an anti-aliased reference*: the pooled image against
    ``skimage.transform.resize(photo, (H/k, W/k), order=1, anti_aliasing=True)``
    — a Gaussian prefilter with sigma = (k - 1) / 2, then bilinear sampling at
    the window centres. (``downscale_local_mean`` is *not* used: it is
    ``avg_pool`` exactly, so avg pooling would score PSNR = inf by definition;
    ``tests/test_evidence.py`` checks that identity.)
(b) *upsampled vs the original*: the pooled image brought back to (H, W) by
    nearest neighbour (each output repeated k x k, exactly over its window)
    and by bilinear interpolation
    (``resize(y, (H, W), order=1, anti_aliasing=False, mode='edge')``), then
    compared with the photo itself.

Scale: images are in [0, 1]. SoftPool (and AdaPool, which contains it) is not
scale-equivariant: its weights are ``softmax(x / T)``, so feeding the same
photo in [0, 255] with ``T = 1`` is ``T = 1/255`` on [0, 1], close to max
pooling. The temperature sweep and the scale table show this.

Learned ops start where their Flax module starts (the paper's init), drawn
with ``PRNGKey(0)`` where the init is random — see the notes column.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jaxpool  # noqa: E402

#: Bundled colour photos: skimage.data name -> file inside the installed package.
PHOTOS = {
  'astronaut': 'astronaut.png',
  'coffee': 'coffee.png',
  'chelsea': 'chelsea.png',
  'rocket': 'rocket.jpg',
  'hubble_deep_field': 'hubble_deep_field.jpg',
}
KERNELS = (2, 3, 5)
CROP_MULTIPLE = 30  # lcm of KERNELS: every kernel tiles the crop exactly
TEMPERATURES = (0.001, 1 / 255, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0)

#: Exported names that are not a deterministic k x k downsampling, and why.
EXCLUDED = {
  'max_unpool': 'unpooling (inverse of max_pool), not a downsampling',
  'weighted_unpool': 'unpooling, not a downsampling',
  'ada_unpool': 'unpooling, not a downsampling',
  'lift_up_pool': 'unpooling (inverse of lift_down_pool)',
  'adaptive_avg_pool': 'equals avg_pool when k divides the size (the crops are divisible)',
  'adaptive_max_pool': 'equals max_pool when k divides the size (the crops are divisible)',
  'global_pool': 'reduces all spatial positions to one',
  'segment_pool': 'reduces each labelled region to one vector',
  'channel_pool': 'pools over channels, not space',
  'spatial_pyramid_pool': 'fixed-length global descriptor, not an image',
}


def load_photo(name: str) -> np.ndarray:
  """A bundled skimage photo as float32 ``(H, W, 3)`` in [0, 1]; never downloads."""
  import skimage
  import skimage.data

  filename = PHOTOS.get(name)
  if filename is None:
    raise ValueError(f'photo must be one of {", ".join(PHOTOS)}; got {name!r}')
  path = os.path.join(os.path.dirname(skimage.data.__file__), filename)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'{filename} is not bundled with scikit-image {skimage.__version__} ({path}); '
      'this study uses bundled photos only and never downloads'
    )
  img = skimage.io.imread(path)
  if img.ndim == 2:
    img = img[..., None]
  return img[..., :3].astype(np.float32) / 255.0


def center_crop(img: np.ndarray, multiple: int, size: int | None = None) -> np.ndarray:
  """Centre crop to ``size`` x ``size`` (if given), then down to a multiple per side."""
  h, w = img.shape[:2]
  th, tw = (min(size, h), min(size, w)) if size else (h, w)
  th, tw = th - th % multiple, tw - tw % multiple
  top, left = (h - th) // 2, (w - tw) // 2
  return img[top : top + th, left : left + tw]


# ----------------------------------------------------------------------------- the ops


@dataclasses.dataclass(frozen=True)
class Method:
  """One row of the study: ``fn(x, k)`` pools ``(H, W, C)`` by ``k`` (None: not at this k)."""

  name: str
  op: str  # the jaxpool function it exercises
  fn: Callable[[jnp.ndarray, int], jnp.ndarray | None]
  note: str = ''


def _module_pool(module_cls, **fields):
  """Pools with a Flax module's *initial* parameters (``PRNGKey(0)``): the paper's start."""

  def fn(x, k):
    module = module_cls(window=(k, k), **fields)
    y, _ = module.init_with_output(jax.random.PRNGKey(0), x)
    return y

  return fn


def _power_mean(p):
  # LPPool is (sum x^p)^(1/p): k^(2/p) times the power mean; the study compares
  # images, so it divides by n^(1/p) to stay in the image's range.
  return lambda x, k: jaxpool.lp_pool(x, p, (k, k)) / (k * k) ** (1.0 / p)


def _blur(x, k):
  # Binomial filter of size k + 2, stride k, one pixel of (renormalised) padding:
  # each output is centred on the same k x k window as every other op's.
  return jaxpool.blur_pool(x, (k + 2, k + 2), k, 1)


def _max_blur(x, k):
  # Dense k x k max (stride 1), then the paper's 3-tap binomial blur at stride k,
  # padding 1: centred on the k x k window as well.
  return jaxpool.max_blur_pool(x, (k, k), (3, 3), k, 1)


LEGALL_53 = (np.array([0.5, 0.5], np.float32), np.array([0.25, 0.25], np.float32))


def _lift(x, k):
  # LeGall 5/3 lifting (P = [1/2, 1/2], U = [1/4, 1/4]), log2(k) levels of the LL
  # band; Haar (P = [1], U = [1/2]) would be avg_pool exactly. Powers of 2 only.
  levels = int(math.log2(k))
  if 2**levels != k:
    return None
  for _ in range(levels):
    x, _ = jaxpool.lift_down_pool(x, *LEGALL_53, axes=(0, 1))
  return x


def methods() -> list[Method]:
  """Every deterministic pooling exported by ``jaxpool`` now, as study rows."""
  from jaxpool import linen

  have = set(jaxpool.__all__)
  rows = [
    Method('max_pool', 'max_pool', lambda x, k: jaxpool.max_pool(x, (k, k))),
    Method('avg_pool', 'avg_pool', lambda x, k: jaxpool.avg_pool(x, (k, k))),
    Method('min_pool', 'min_pool', lambda x, k: jaxpool.min_pool(x, (k, k))),
    Method('lp_pool p=2', 'lp_pool', _power_mean(2.0), 'divided by n^(1/p): the power mean'),
    Method('lp_pool p=3', 'lp_pool', _power_mean(3.0), 'divided by n^(1/p) (GeM p=3)'),
    Method(
      'soft_pool T=1',
      'soft_pool',
      lambda x, k: jaxpool.soft_pool(x, (k, k)),
      'scale-dependent; see the T sweep',
    ),
    Method(
      'lip_pool',
      'lip_pool',
      _module_pool(getattr(linen, 'LIP', None)),
      'module init (zero logit conv): equals avg_pool',
    ),
    Method('edscw_pool', 'edscw_pool', lambda x, k: jaxpool.edscw_pool(x, (k, k))),
    Method('idw_pool', 'idw_pool', lambda x, k: jaxpool.idw_pool(x, (k, k))),
    Method(
      'ada_pool',
      'ada_pool',
      _module_pool(getattr(linen, 'AdaPool', None)),
      'module init: beta = 0.5',
    ),
    Method(
      'max_avg_pool',
      'max_avg_pool',
      _module_pool(getattr(linen, 'MaxAvgPool', None)),
      'module init: alpha = 0.5',
    ),
    Method(
      'gated_pool',
      'gated_pool',
      _module_pool(getattr(linen, 'GatedPool', None)),
      'module init: gate ~ N(0, 0.1^2), seed 0',
    ),
    Method(
      'tree_pool',
      'tree_pool',
      _module_pool(getattr(linen, 'TreePool', None)),
      'module init: depth 1, filters ~ N(0, 0.1^2), seed 0 (untrained)',
    ),
    Method(
      'dpp_pool',
      'dpp_pool',
      _module_pool(getattr(linen, 'DPP', None)),
      'module init: alpha = lam = 1, lite guide, symmetric',
    ),
    Method('blur_pool', 'blur_pool', _blur, 'binomial (k+2)^2, padding 1'),
    Method('max_blur_pool', 'max_blur_pool', _max_blur, 'k^2 max stride 1, 3^2 blur, padding 1'),
    Method(
      'lift_down_pool',
      'lift_down_pool',
      _lift,
      'LeGall 5/3 LL band, k = 2^j only; centred on the even pixel',
    ),
    Method(
      'stochastic_pool',
      'stochastic_pool',
      lambda x, k: jaxpool.stochastic_pool(x, (k, k)),
      'eval mode (key=None)',
    ),
    Method(
      'mixed_pool',
      'mixed_pool',
      lambda x, k: jaxpool.mixed_pool(x, (k, k)),
      'eval mode: 0.5 max + 0.5 avg (= max_avg_pool at init)',
    ),
    Method(
      's3_pool',
      's3_pool',
      lambda x, k: jaxpool.s3_pool(x, (k, k)),
      'eval mode: avg (padding k//2) of the stride-1 max map',
    ),
    Method(
      'fractional_max_pool',
      'fractional_max_pool',
      lambda x, k: jaxpool.fractional_max_pool(
        x, (k, k), output_size=(x.shape[0] // k, x.shape[1] // k)
      ),
      'eval mode (samples 0.5); output H/k gives alpha = k: equals max_pool',
    ),
  ]
  return [m for m in rows if m.op in have]


def uncovered() -> list[str]:
  """Exported names neither studied nor excluded with a reason (should be empty)."""
  studied = {m.op for m in methods()}
  return [n for n in jaxpool.__all__ if n not in studied and n not in EXCLUDED]


@functools.cache
def _jitted(fn: Callable) -> Callable:
  """``fn`` jitted with ``k`` static: one program per image size and ``k``, not one compile
  per eager op."""
  return jax.jit(fn, static_argnums=1)


def pool(method: Method, img: np.ndarray, k: int, scale: float = 1.0) -> np.ndarray | None:
  """``method`` on ``img * scale``, divided back by ``scale``; None if not defined at k."""
  y = _jitted(method.fn)(jnp.asarray(img * scale), k)
  if y is None:
    return None
  y = np.asarray(y, np.float64) / scale
  if y.shape != (img.shape[0] // k, img.shape[1] // k, img.shape[2]):
    return None
  return y


# ----------------------------------------------------------------------------- the metrics


def reference(img: np.ndarray, k: int) -> np.ndarray:
  """Protocol (a)'s reference: Gaussian-prefiltered (sigma (k-1)/2) bilinear downscale."""
  from skimage.transform import resize

  h, w = img.shape[:2]
  return resize(img.astype(np.float64), (h // k, w // k), order=1, anti_aliasing=True)


def upsample(y: np.ndarray, k: int, how: str) -> np.ndarray:
  """Protocol (b): back to full size by ``'nearest'`` (k x k repeat) or ``'bilinear'``."""
  if how == 'nearest':
    return np.repeat(np.repeat(y, k, axis=0), k, axis=1)
  from skimage.transform import resize

  return resize(y, (y.shape[0] * k, y.shape[1] * k), order=1, anti_aliasing=False, mode='edge')


def scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """(SSIM, PSNR in dB) of ``b`` against ``a``, both in [0, 1] units."""
  from skimage.metrics import peak_signal_noise_ratio, structural_similarity

  a, b = a.astype(np.float64), b.astype(np.float64)
  ssim = structural_similarity(a, b, channel_axis=-1, data_range=1.0)
  with np.errstate(divide='ignore'):
    psnr = peak_signal_noise_ratio(a, b, data_range=1.0)
  return float(ssim), float(psnr)


PROTOCOLS = ('a', 'b-nearest', 'b-bilinear')


def evaluate(y: np.ndarray, img: np.ndarray, ref: np.ndarray, k: int) -> dict[str, tuple]:
  """Scores of one pooled image under every protocol."""
  return {
    'a': scores(ref, y),
    'b-nearest': scores(img, upsample(y, k, 'nearest')),
    'b-bilinear': scores(img, upsample(y, k, 'bilinear')),
  }


# ----------------------------------------------------------------------------- the study


@dataclasses.dataclass
class Study:
  photos: list[str]
  kernels: tuple[int, ...]
  shapes: dict[str, tuple[int, ...]]
  # (method, k) -> photo -> protocol -> (ssim, psnr)
  results: dict[tuple[str, int], dict[str, dict[str, tuple[float, float]]]]
  # (T, k) -> photo -> (ssim, psnr) under protocol (a)
  sweep: dict[tuple[float, int], dict[str, tuple[float, float]]]
  # (method, k) -> photo -> psnr under (a) with the photo fed in [0, 255]
  scaled: dict[tuple[str, int], dict[str, float]]
  notes: dict[str, str]
  seconds: float = 0.0


def run_study(
  photos, kernels, crop: int | None = None, temperatures=TEMPERATURES, log=print
) -> Study:
  start = time.perf_counter()
  rows = methods()
  results, sweep, scaled, shapes = {}, {}, {}, {}
  for photo in photos:
    img = center_crop(
      load_photo(photo), CROP_MULTIPLE if crop is None else math.lcm(*kernels), crop
    )
    shapes[photo] = img.shape
    log(f'# {photo} {img.shape[0]}x{img.shape[1]}', file=sys.stderr)
    for k in kernels:
      ref = reference(img, k)
      for m in rows:
        y = pool(m, img, k)
        if y is None:
          continue
        results.setdefault((m.name, k), {})[photo] = evaluate(y, img, ref, k)
        y255 = pool(m, img, k, scale=255.0)
        scaled.setdefault((m.name, k), {})[photo] = scores(ref, y255)[1]
      for t in temperatures:
        y = np.asarray(jaxpool.soft_pool(jnp.asarray(img), (k, k), temperature=t), np.float64)
        sweep.setdefault((t, k), {})[photo] = scores(ref, y)
  notes = {m.name: m.note for m in rows}
  return Study(
    list(photos), tuple(kernels), shapes, results, sweep, scaled, notes, time.perf_counter() - start
  )


def _mean(values) -> float:
  values = list(values)
  if any(math.isinf(v) for v in values):
    return math.inf
  return sum(values) / len(values)


def _fmt_psnr(v: float) -> str:
  return 'inf' if math.isinf(v) else f'{v:.2f}'


def markdown(study: Study) -> str:
  """The study as Markdown tables (means over the photos)."""
  out = []
  photos = ', '.join(f'{p} ({s[0]}x{s[1]})' for p, s in study.shapes.items())
  out.append(f'Photos (skimage.data, bundled, float32 in [0, 1], centre-cropped): {photos}.')
  out.append(
    'Every op: window = stride = k x k, VALID. SSIM / PSNR (dB) are means over the '
    'photos; higher is better.'
  )
  out.append(
    '(a) pooled vs `resize(photo, (H/k, W/k), order=1, anti_aliasing=True)` '
    '(Gaussian sigma (k-1)/2). (b) pooled, upsampled by nearest (k x k repeat) or '
    'bilinear, vs the photo.'
  )
  out.append(
    "(a) rewards window weights close to that Gaussian (blur_pool's 5-tap binomial "
    'at k = 3 has variance 1 = sigma^2); (b) asks how well the pooled image stands '
    'for the photo. Neither rewards exaggerated extremes, which max-like ops keep.'
  )
  names = [m for m in study.notes if any((m, k) in study.results for k in study.kernels)]
  for k in study.kernels:
    out.append('')
    out.append(f'### k = {k}')
    out.append('')
    out.append(
      '| method | SSIM (a) | PSNR (a) | SSIM (b, nearest) | PSNR (b, nearest) '
      '| SSIM (b, bilinear) | PSNR (b, bilinear) | notes |'
    )
    out.append('|---|---|---|---|---|---|---|---|')
    for name in names:
      per_photo = study.results.get((name, k))
      if per_photo is None:
        out.append(f'| {name} | n/a | n/a | n/a | n/a | n/a | n/a | {study.notes[name]} |')
        continue
      cells = []
      for proto in PROTOCOLS:
        cells.append(f'{_mean(r[proto][0] for r in per_photo.values()):.4f}')
        cells.append(_fmt_psnr(_mean(r[proto][1] for r in per_photo.values())))
      out.append(f'| {name} | ' + ' | '.join(cells) + f' | {study.notes[name]} |')

  out.append('')
  out.append('### SoftPool temperature sweep, protocol (a), images in [0, 1]')
  out.append('')
  out.append(
    '`soft_pool(x, temperature=T)` weights `softmax(x / T)`: on a photo in [0, 255] '
    'with T = 1 it equals T = 1/255 here.'
  )
  out.append('')
  head = ' | '.join(f'SSIM k={k} | PSNR k={k}' for k in study.kernels)
  out.append(f'| T | {head} |')
  out.append('|---|' + '---|---|' * len(study.kernels))
  temps = sorted({t for t, _ in study.sweep})
  for t in temps:
    label = '1/255 (T=1 on [0, 255])' if abs(t - 1 / 255) < 1e-12 else f'{t:g}'
    cells = []
    for k in study.kernels:
      r = study.sweep[(t, k)].values()
      cells += [f'{_mean(s for s, _ in r):.4f}', _fmt_psnr(_mean(p for _, p in r))]
    out.append(f'| {label} | ' + ' | '.join(cells) + ' |')
  for name in ('avg_pool', 'max_pool'):
    cells = []
    for k in study.kernels:
      r = study.results[(name, k)].values()
      cells += [f'{_mean(x["a"][0] for x in r):.4f}', _fmt_psnr(_mean(x['a'][1] for x in r))]
    out.append(f'| ({name}) | ' + ' | '.join(cells) + ' |')

  out.append('')
  out.append(
    '### Scale dependence, protocol (a) PSNR: photo in [0, 1] vs in [0, 255] '
    '(output divided by 255)'
  )
  out.append('')
  changed, same = [], []
  for name in names:
    deltas = []
    for k in study.kernels:
      if (name, k) in study.results:
        p1 = _mean(r['a'][1] for r in study.results[(name, k)].values())
        p255 = _mean(study.scaled[(name, k)].values())
        deltas.append((k, p1, p255))
    if any(not (math.isinf(a) and math.isinf(b)) and abs(a - b) > 0.005 for _, a, b in deltas):
      changed.append((name, deltas))
    else:
      same.append(name)
  out.append('| method | ' + ' | '.join(f'k={k}: [0, 1] -> [0, 255]' for k in study.kernels) + ' |')
  out.append('|---|' + '---|' * len(study.kernels))
  for name, deltas in changed:
    by_k = {k: f'{_fmt_psnr(a)} -> {_fmt_psnr(b)}' for k, a, b in deltas}
    out.append(f'| {name} | ' + ' | '.join(by_k.get(k, 'n/a') for k in study.kernels) + ' |')
  out.append('')
  out.append(f'Unchanged (within 0.005 dB): {", ".join(same)}.')

  if len(study.photos) > 1:
    k = study.kernels[0]
    out.append('')
    out.append(f'### Per photo, k = {k}: PSNR (a) / PSNR (b, bilinear)')
    out.append('')
    out.append('| method | ' + ' | '.join(study.photos) + ' |')
    out.append('|---|' + '---|' * len(study.photos))
    for name in names:
      per_photo = study.results.get((name, k))
      if per_photo is None:
        continue
      cells = [
        f'{_fmt_psnr(per_photo[p]["a"][1])} / {_fmt_psnr(per_photo[p]["b-bilinear"][1])}'
        for p in study.photos
      ]
      out.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  missing = uncovered()
  if missing:
    out.append('')
    out.append(f'Not in this study (no row and no exclusion reason yet): {", ".join(missing)}.')
  return '\n'.join(out) + '\n'


def plot(study: Study, path: str) -> None:
  """Three panels: PSNR (a) and PSNR (b, bilinear) per method and k; SoftPool vs T."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  names = [m for m in study.notes if any((m, k) in study.results for k in study.kernels)]
  # Untrained random filters (tree_pool at init) are tens of dB below the rest.
  off_chart = [m for m in names if 'untrained' in study.notes[m]]
  names = [m for m in names if m not in off_chart]
  colors = dict(zip(study.kernels, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red')))
  markers = dict(zip(study.kernels, ('o', 's', '^', 'D')))
  fig, axes = plt.subplots(
    1, 3, figsize=(16, 0.32 * len(names) + 2.6), gridspec_kw={'width_ratios': [1, 1, 1.1]}
  )
  ypos = np.arange(len(names))[::-1]
  for ax, proto, title in (
    (axes[0], 'a', 'PSNR (a): pooled vs anti-aliased downscale'),
    (axes[1], 'b-bilinear', 'PSNR (b): bilinear upsample vs photo'),
  ):
    for k in study.kernels:
      xs = []
      for name in names:
        r = study.results.get((name, k))
        xs.append(np.nan if r is None else _mean(v[proto][1] for v in r.values()))
      xs = np.array(xs, float)
      ax.scatter(
        np.where(np.isinf(xs), np.nan, xs),
        ypos,
        color=colors[k],
        marker=markers[k],
        label=f'k = {k}',
        zorder=3,
      )
    ax.set_yticks(ypos, names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel('dB, mean over photos (higher: closer)')
    ax.set_title(title, fontsize=11)
    ax.grid(axis='x', alpha=0.3)
    ax.grid(axis='y', alpha=0.15)
  handles, labels = axes[0].get_legend_handles_labels()
  ax = axes[2]
  temps = sorted({t for t, _ in study.sweep})
  for k in study.kernels:
    ps = [_mean(p for _, p in study.sweep[(t, k)].values()) for t in temps]
    ax.plot(temps, ps, color=colors[k], marker=markers[k])
    for name, style in (('avg_pool', '--'), ('max_pool', ':')):
      r = study.results[(name, k)].values()
      ax.axhline(_mean(x['a'][1] for x in r), color=colors[k], linestyle=style, linewidth=1)
  top = ax.get_ylim()[1]
  for t, label in ((1 / 255, 'T=1 on [0, 255]'), (1.0, 'T=1 on [0, 1]')):
    ax.axvline(t, color='gray', linewidth=0.8)
    ax.text(t * 1.15, top, label, rotation=90, va='top', fontsize=8, color='dimgray')
  ax.set_xscale('log')
  ax.set_xlabel('temperature T (photo in [0, 1])')
  ax.set_ylabel('PSNR (a), dB')
  ax.set_title('soft_pool vs T (dashed: avg_pool, dotted: max_pool)', fontsize=11)
  ax.grid(alpha=0.3)
  fig.legend(
    handles,
    labels,
    loc='upper center',
    ncol=len(study.kernels),
    fontsize=10,
    frameon=False,
    bbox_to_anchor=(0.5, 1.0),
  )
  caption = (
    f'{len(study.photos)} bundled skimage photo(s); window = stride = k. '
    '(a) reference: resize(anti_aliasing=True), Gaussian sigma (k-1)/2.'
  )
  if off_chart:
    caption += f' Off the chart (untrained random filters): {", ".join(off_chart)}.'
  fig.text(0.5, 0.005, caption, ha='center', va='bottom', fontsize=9, color='dimgray')
  fig.tight_layout(rect=(0, 0.03, 1, 0.95))
  fig.savefig(path, dpi=90)
  plt.close(fig)


def main(argv=None) -> Study:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    '--quick', action='store_true', help='one photo, kernel 2, a 96x96 crop (CI smoke run)'
  )
  parser.add_argument('--photos', default=None, help=f'comma-separated, from {",".join(PHOTOS)}')
  parser.add_argument('--kernels', default=None, help='comma-separated, default 2,3,5')
  parser.add_argument(
    '--out',
    default=None,
    help='write the Markdown here (and the plot next to it as .png unless --plot is given)',
  )
  parser.add_argument('--plot', default=None, help='write the PNG plot here')
  args = parser.parse_args(argv)
  photos = args.photos.split(',') if args.photos else ['astronaut'] if args.quick else list(PHOTOS)
  kernels = (
    tuple(int(k) for k in args.kernels.split(','))
    if args.kernels
    else (2,)
    if args.quick
    else KERNELS
  )
  temperatures = (0.01, 1 / 255, 1.0) if args.quick else TEMPERATURES
  study = run_study(photos, kernels, 96 if args.quick else None, temperatures)
  text = markdown(study)
  print(text, end='')
  print(
    f'({study.seconds:.1f} s; jax {jax.__version__} on {jax.devices()[0].platform})',
    file=sys.stderr,
  )
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)
  plot_path = args.plot or (os.path.splitext(args.out)[0] + '.png' if args.out else None)
  if plot_path:
    plot(study, plot_path)
  return study


if __name__ == '__main__':
  main()
