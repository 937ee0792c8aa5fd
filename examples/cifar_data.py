"""Data for the CIFAR-10 example: download, verify, extract, load; augment on device.

Two datasets, both returned as uint8 images ``(N, 32, 32, 3)`` and int32 labels:

- ``cifar10``: the official python tarball, downloaded once into a cache
  directory (resumable through HTTP ``Range`` on a ``.part`` file, md5-checked),
  extracted, and read from its pickled batches.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (no network),
  resized to 32x32x3, with a fixed-seed stratified train/test split.

Batches are assembled on the host in a deterministic order (a permutation drawn
from ``(seed, epoch)``); augmentation (random crop + flip) runs on device inside
the jitted train step from an explicit key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm

CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
CIFAR10_MD5 = 'c58f30108f718f92721af3b95e74349a'
CIFAR10_DIR = 'cifar-10-batches-py'
CIFAR10_FILES = tuple(f'data_batch_{i}' for i in range(1, 6)) + ('test_batch', 'batches.meta')
DEFAULT_DATA_DIR = Path('~/.cache/jaxpool').expanduser()


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Images as uint8 ``(N, H, W, 3)``, labels as int32 ``(N,)``."""

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  classes: tuple[str, ...]
  flip: bool  # whether horizontal flips preserve the labels (True for CIFAR, not for digits)

  @functools.cached_property
  def _moments(self) -> tuple[np.ndarray, np.ndarray]:
    # From per-channel histograms of the uint8 values: exact, and no float copy of the images.
    counts = np.stack(
      [
        np.bincount(self.train_images[..., c].ravel(), minlength=256)
        for c in range(self.train_images.shape[-1])
      ]
    )
    values = np.arange(256) / 255.0
    mean = counts @ values / counts.sum(1)
    var = counts @ values**2 / counts.sum(1) - mean**2
    return mean, np.sqrt(np.maximum(var, 0))

  @property
  def mean(self) -> np.ndarray:
    """Per-channel mean of the training images, in [0, 1] units."""
    return self._moments[0]

  @property
  def std(self) -> np.ndarray:
    """Per-channel standard deviation of the training images, in [0, 1] units."""
    return self._moments[1]


# ----------------------------------------------------------------------------- download


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(chunk), b''):
      digest.update(block)
  return digest.hexdigest()


def download(
  url: str,
  dest: Path,
  md5: str,
  *,
  progress: bool = True,
  timeout: float = 60.0,
  chunk: int = 1 << 20,
) -> Path:
  """Downloads ``url`` to ``dest`` unless a file with the right md5 is already there.

  Bytes go to ``dest + '.part'`` first. If a ``.part`` exists, the download
  resumes with ``Range: bytes=<size>-``; a server that ignores the range (status
  200 instead of 206, or a ``file://`` URL) restarts it from zero. The finished
  file is md5-checked before it is renamed to ``dest``; a mismatch deletes it
  and raises ``RuntimeError``. Network errors raise ``RuntimeError`` saying
  where to put a manually downloaded file; the ``.part`` is kept for a resume.
  A file already at ``dest`` (only ever put there verified, or by the user) with
  the wrong md5 raises ``RuntimeError`` and is left alone.
  """
  dest = Path(dest)
  if dest.exists():
    got = md5sum(dest)
    if got != md5:
      raise RuntimeError(
        f'{dest} has md5 {got}, expected {md5}: not the expected file. Delete '
        f'it to download again, or replace it with a good copy.'
      )
    return dest
  dest.parent.mkdir(parents=True, exist_ok=True)
  part = dest.with_name(dest.name + '.part')
  have = part.stat().st_size if part.exists() else 0
  if have and md5sum(part) == md5:  # complete, but stopped before the rename
    os.replace(part, dest)
    return dest
  request = urllib.request.Request(url, headers={'Range': f'bytes={have}-'} if have else {})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      status = getattr(response, 'status', None)  # None for file:// URLs
      resumed = have > 0 and status == 206 and _range_start(response) == have
      if not resumed:
        have = 0
      length = response.headers.get('Content-Length')
      total = int(length) + have if length is not None else None
      with (
        open(part, 'ab' if resumed else 'wb') as f,
        tqdm(
          total=total,
          initial=have,
          unit='B',
          unit_scale=True,
          desc=f'download {dest.name}',
          disable=not progress,
        ) as bar,
      ):
        for block in iter(lambda: response.read(chunk), b''):
          f.write(block)
          bar.update(len(block))
  except (urllib.error.URLError, OSError) as e:
    kept = f' The partial download in {part} resumes next time.' if part.exists() else ''
    raise RuntimeError(
      f'could not download {url}: {getattr(e, "reason", e)}.\n'
      f'Without network access, fetch that file elsewhere and put it at {dest} '
      f'(md5 {md5}); or point --data-dir at a folder holding it; or run offline with '
      f'--dataset digits.{kept}'
    ) from e
  got = md5sum(part)
  if got != md5:
    part.unlink()
    raise RuntimeError(
      f'checksum mismatch for {url}: md5 {got}, expected {md5}. The corrupt '
      f'download was deleted; run again to re-download, or put a good copy at '
      f'{dest}.'
    )
  os.replace(part, dest)
  return dest


def _range_start(response) -> int | None:
  """The first byte offset of a 206 response's ``Content-Range: bytes a-b/n``."""
  value = response.headers.get('Content-Range', '')
  try:
    return int(value.split()[1].split('-')[0])
  except (IndexError, ValueError):
    return None


# ----------------------------------------------------------------------------- CIFAR-10


def load_cifar10(
  data_dir: Path | str | None = None,
  *,
  url: str = CIFAR10_URL,
  md5: str = CIFAR10_MD5,
  progress: bool = True,
) -> Dataset:
  """CIFAR-10 from ``data_dir`` (default ``~/.cache/jaxpool``); fetched and extracted once."""
  data_dir = Path(data_dir).expanduser() if data_dir else DEFAULT_DATA_DIR
  folder = data_dir / CIFAR10_DIR
  if not all((folder / name).exists() for name in CIFAR10_FILES):
    archive = download(url, data_dir / url.rsplit('/', 1)[-1], md5, progress=progress)
    extract(archive, data_dir)
    missing = [name for name in CIFAR10_FILES if not (folder / name).exists()]
    if missing:
      raise RuntimeError(
        f'{archive} does not hold {CIFAR10_DIR}/{missing[0]}: not the CIFAR-10 python archive?'
      )
  train = [_read_batch(folder / f'data_batch_{i}') for i in range(1, 6)]
  test_images, test_labels = _read_batch(folder / 'test_batch')
  with open(folder / 'batches.meta', 'rb') as f:
    meta = pickle.load(f, encoding='bytes')
  classes = tuple(n.decode() if isinstance(n, bytes) else n for n in meta[b'label_names'])
  return Dataset(
    'cifar10',
    np.concatenate([x for x, _ in train]),
    np.concatenate([y for _, y in train]),
    test_images,
    test_labels,
    classes,
    True,
  )


def extract(archive: Path, into: Path) -> None:
  """Extracts ``archive`` into ``into`` (via a temporary folder, so a crash leaves no half tree)."""
  tmp = into / f'.extract-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    with tarfile.open(archive, 'r:gz') as tar:
      tar.extractall(tmp, filter='data')
    for entry in tmp.iterdir():
      target = into / entry.name
      shutil.rmtree(target, ignore_errors=True)
      os.replace(entry, target)
  except tarfile.TarError as e:
    raise RuntimeError(f'cannot extract {archive}: {e}; delete it and run again') from e
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
  with open(path, 'rb') as f:
    batch = pickle.load(f, encoding='bytes')
  images = np.asarray(batch[b'data'], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), np.asarray(batch[b'labels'], np.int32)


# ----------------------------------------------------------------------------- digits


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
  """scikit-learn's 1797 8x8 digits, resized to 32x32x3 uint8; stratified split with ``seed``."""
  from sklearn.datasets import load_digits as sk_digits
  from sklearn.model_selection import train_test_split

  digits = sk_digits()
  small = jnp.asarray(digits.images, jnp.float32)[..., None] / 16.0  # (N, 8, 8, 1) in [0, 1]
  big = jax.image.resize(small, (small.shape[0], 32, 32, 1), 'linear')
  images = np.asarray(jnp.round(jnp.clip(big, 0, 1) * 255), np.uint8).repeat(3, axis=-1)
  labels = digits.target.astype(np.int32)
  x_tr, x_te, y_tr, y_te = train_test_split(
    images, labels, test_size=test_fraction, random_state=seed, stratify=labels
  )
  return Dataset('digits', x_tr, y_tr, x_te, y_te, tuple(str(d) for d in range(10)), False)


def load(name: str, data_dir: Path | str | None = None, progress: bool = True) -> Dataset:
  if name == 'cifar10':
    return load_cifar10(data_dir, progress=progress)
  if name == 'digits':
    return load_digits()
  raise ValueError(f"dataset must be 'cifar10' or 'digits'; got {name!r}")


# ----------------------------------------------------------------------------- batches


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The example order of one epoch: a permutation determined by ``(seed, epoch)`` alone."""
  return np.random.default_rng((seed, epoch)).permutation(num_examples)


def eval_batches(images: np.ndarray, labels: np.ndarray, batch_size: int):
  """Fixed-size batches covering every example; the last is zero-padded with weight 0."""
  for start in range(0, len(images), batch_size):
    x, y = images[start : start + batch_size], labels[start : start + batch_size]
    weight = np.ones(len(x), np.float32)
    pad = batch_size - len(x)
    if pad:
      x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
      y = np.concatenate([y, np.zeros(pad, y.dtype)])
      weight = np.concatenate([weight, np.zeros(pad, np.float32)])
    yield x, y, weight


def augment(key: jax.Array, images: jax.Array, pad: int = 4, flip: bool = True) -> jax.Array:
  """Random ``pad``-pixel-shift crop (zero padding) and, if ``flip``, random horizontal flip.

  ``images``: ``(N, H, W, C)``; one crop offset and one coin per example, from ``key``.
  """
  n, h, w, c = images.shape
  crop_key, flip_key = jax.random.split(key)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(crop_key, (n, 2), 0, 2 * pad + 1)
  crop = jax.vmap(lambda img, o: lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c)))
  out = crop(padded, offsets)
  if flip:
    coin = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
    out = jnp.where(coin, out[:, :, ::-1], out)
  return out
