"""One photo pooled by every deterministic jaxpool pooling: the picture to look at before picking one.

Usage::

  python examples/gallery.py --out gallery.png              # astronaut, k = 4
  python examples/gallery.py --crop 384 --out docs/figures/gallery.png   # the Performance page's figure
  python examples/gallery.py --photo chelsea --kernel 3 --out cat.png
  python examples/gallery.py --quick --out /tmp/gallery.png  # small crop, k = 2 (CI)

Writes two PNGs: ``--out`` (the photo, one panel per method) and
``<out>_zoom.png`` (a small region, where the methods differ most visibly).
Panels are placed pixel-exactly and each pooled pixel is drawn as an integer
``s x s`` block, so what you see is what the op returned (clipped to [0, 1]
for display). Under each name: the PSNR against the anti-aliased reference of
``benchmarks/detail.py`` (protocol (a)). The methods, their settings and the
learned ops' initial parameters are those of ``benchmarks/detail.py``; photos
are the ones bundled with scikit-image (no download).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import detail  # noqa: E402

#: A region worth zooming into, per photo: (top, left, size) in the uncropped photo.
ZOOM = {
  'astronaut': (80, 160, 128),  # the face and the helmet's rim
  'coffee': (120, 200, 128),  # the cup's rim and the saucer
  'chelsea': (60, 120, 128),  # the cat's eye and fur
  'rocket': (120, 300, 128),  # the gantry's lattice
  'hubble_deep_field': (300, 400, 128),  # faint point sources
}


def _short_note(note: str) -> str:
  if note.startswith('module init'):
    return ' (init)'
  return ' (eval)' if note.startswith('eval mode') else ''


def pooled_images(img: np.ndarray, k: int):
  """``[(name, note, pooled (H/k, W/k, C), psnr_a)]`` for every method defined at ``k``."""
  ref = detail.reference(img, k)
  out = []
  for m in detail.methods():
    y = detail.pool(m, img, k)
    if y is not None:
      out.append((m.name, m.note, y, detail.scores(ref, y)[1]))
  return out


def _scaled(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """``image`` resized to ``shape``: integer repeats when it divides, else bilinear."""
  h, w = image.shape[:2]
  if shape[0] % h == 0 and shape[1] % w == 0 and shape[0] // h == shape[1] // w:
    s = shape[0] // h
    return np.repeat(np.repeat(image, s, axis=0), s, axis=1)
  from skimage.transform import resize

  return resize(image, shape, order=1, anti_aliasing=shape[0] < h)


def draw(
  photo: str, img: np.ndarray, k: int, rows, path: str, origin=(0, 0), zoom=None, target: int = 128
) -> None:
  """A grid: the photo (or its ``zoom`` region), then every pooled image.

  Panels are placed pixel-exactly (``figimage``): each pooled pixel is drawn
  as an ``s x s`` block, ``s`` an integer chosen to make panels about
  ``target`` pixels wide, so no resampling blurs or doubles a pooled pixel.
  The original is resampled to the panel size. Values are clipped to [0, 1].
  """
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  if zoom is None:
    region = lambda a, s: a
    what = f'{photo} {img.shape[0]}x{img.shape[1]}'
  else:
    top, left, size = zoom
    top, left = top - origin[0], left - origin[1]
    # Snap to the k-grid so each shown block is exactly one pooled pixel.
    top, left, size = top - top % k, left - left % k, size - size % k
    region = lambda a, s: a[top // s : (top + size) // s, left // s : (left + size) // s]
    what = f'{photo}, rows {top}:{top + size}, cols {left}:{left + size} of the crop'
  h, w = region(rows[0][2], k).shape[:2]
  s = max(1, round(target / max(h, w)))
  ph, pw = h * s, w * s
  panels = [('original', _scaled(region(img, 1), (ph, pw)))]
  for name, note, y, psnr in rows:
    label = f'{name}{_short_note(note)}\n{detail._fmt_psnr(psnr)} dB'
    panels.append((label, _scaled(region(y, k), (ph, pw))))

  dpi, gap, band, header = 100, 14, 30, 58
  cols = min(6, len(panels))
  nrows = math.ceil(len(panels) / cols)
  cell = max(pw, 140)  # room for the longest label ('fractional_max_pool (eval)')
  width = cols * cell + (cols + 1) * gap
  height = header + nrows * (band + ph + gap)
  fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
  for i, (label, image) in enumerate(panels):
    r, c = divmod(i, cols)
    x0 = gap + c * (cell + gap) + (cell - pw) // 2
    y0 = header + r * (band + ph + gap) + band
    fig.figimage(np.clip(image, 0.0, 1.0), xo=x0, yo=height - y0 - ph, origin='upper')
    fig.text(
      (x0 + pw / 2) / width,
      1 - (y0 - 3) / height,
      label,
      ha='center',
      va='bottom',
      fontsize=8,
      linespacing=1.1,
    )
  fig.text(
    0.5,
    1 - 6 / height,
    f'{what}: {k}x{k} windows, stride {k}, every deterministic jaxpool op\n'
    f'each pooled pixel drawn as a {s}x{s} block\n'
    'dB: PSNR vs the anti-aliased downscale (benchmarks/detail.py, protocol a)',
    ha='center',
    va='top',
    fontsize=8.5,
  )
  _save_rgb(fig, path, dpi)
  plt.close(fig)


def _save_rgb(fig, path: str, dpi: int) -> None:
  """Saves an opaque RGB PNG (smaller than matplotlib's RGBA), pixels unchanged."""
  import io

  from PIL import Image

  buf = io.BytesIO()
  fig.savefig(buf, dpi=dpi, format='png')
  buf.seek(0)
  Image.open(buf).convert('RGB').save(path, optimize=True)


def zoom_path(out: str) -> str:
  stem, ext = os.path.splitext(out)
  return f'{stem}_zoom{ext or ".png"}'


def main(argv=None) -> list[str]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--photo', default='astronaut', choices=sorted(detail.PHOTOS))
  parser.add_argument('--kernel', type=int, default=None, help='window = stride (default 4)')
  parser.add_argument(
    '--out', default='gallery.png', help='PNG path; the zoom goes to <out>_zoom.png'
  )
  parser.add_argument(
    '--crop',
    type=int,
    default=None,
    help='centre crop to at most this many pixels per side (default: whole photo)',
  )
  parser.add_argument('--quick', action='store_true', help='a 96x96 crop, kernel 2 (CI)')
  args = parser.parse_args(argv)
  k = args.kernel or (2 if args.quick else 4)
  full = detail.load_photo(args.photo)
  img = detail.center_crop(full, k, 96 if args.quick else args.crop)
  origin = ((full.shape[0] - img.shape[0]) // 2, (full.shape[1] - img.shape[1]) // 2)
  rows = pooled_images(img, k)
  draw(args.photo, img, k, rows, args.out)
  top, left, size = ZOOM[args.photo]
  if args.quick:  # the crop is small: zoom on its centre quarter
    top, left, size = (
      origin[0] + img.shape[0] // 4,
      origin[1] + img.shape[1] // 4,
      img.shape[0] // 2,
    )
  draw(args.photo, img, k, rows, zoom_path(args.out), origin, (top, left, size), 160)
  for name, _, _, psnr in rows:
    print(f'{name:20s} PSNR(a) {detail._fmt_psnr(psnr)} dB')
  print(f'wrote {args.out} and {zoom_path(args.out)}')
  return [args.out, zoom_path(args.out)]


if __name__ == '__main__':
  main()
