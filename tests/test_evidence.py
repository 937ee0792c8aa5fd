"""Smoke tests of the evidence scripts (detail study, gallery) and the facts the study relies on."""

import importlib.util
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool

pytest.importorskip('skimage')
pytest.importorskip('matplotlib')

from benchmarks import detail

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _gallery():
  spec = importlib.util.spec_from_file_location('gallery', ROOT / 'examples' / 'gallery.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _check_png(path: pathlib.Path, min_kb: float = 10) -> None:
  import matplotlib.image

  assert path.exists(), path
  assert path.stat().st_size > min_kb * 1024, f'{path} is only {path.stat().st_size} bytes'
  pixels = matplotlib.image.imread(path)[..., :3]
  assert pixels.shape[0] > 200 and pixels.shape[1] > 200, pixels.shape
  assert pixels.std() > 0.05, 'the PNG is (nearly) one colour'


@pytest.fixture(scope='module')
def photo():
  return detail.center_crop(detail.load_photo('astronaut'), 30, 60)


def test_detail_quick_writes_a_row_per_method_and_a_plot(tmp_path, capsys):
  out = tmp_path / 'detail.md'
  detail.main(['--quick', '--out', str(out)])
  printed = capsys.readouterr().out
  text = out.read_text()
  assert text == printed
  k2 = text.split('### k = 2')[1].split('###')[0]
  rows = {line.split('|')[1].strip(): line for line in k2.splitlines() if line.startswith('| ')}
  names = [m.name for m in detail.methods()]
  assert len(names) >= 10
  for name in names:
    assert name in rows, f'no row for {name}'
    assert '| n/a |' not in rows[name], f'{name} did not produce a (H/k, W/k, C) image'
  assert float(rows['avg_pool'].split('|')[3]) > float(rows['max_pool'].split('|')[3])
  assert 'SoftPool temperature sweep' in text and '1/255 (T=1 on [0, 255])' in text
  _check_png(out.with_suffix('.png'))


def test_gallery_quick_writes_both_pngs(tmp_path):
  out = tmp_path / 'gallery.png'
  paths = _gallery().main(['--quick', '--out', str(out)])
  assert paths == [str(out), str(tmp_path / 'gallery_zoom.png')]
  for p in paths:
    _check_png(pathlib.Path(p))


def test_every_export_is_studied_or_excluded_with_a_reason():
  assert detail.uncovered() == []
  assert not set(detail.EXCLUDED) & {m.op for m in detail.methods()}


@pytest.mark.parametrize('k', [2, 3, 5])
def test_avg_pool_is_downscale_local_mean_so_protocol_a_uses_another_reference(photo, k):
  from skimage.transform import downscale_local_mean

  y = np.asarray(jaxpool.avg_pool(jnp.asarray(photo), (k, k)))
  np.testing.assert_allclose(y, downscale_local_mean(photo, (k, k, 1)), atol=1e-6)
  # Against the Gaussian-prefiltered reference avg pooling is good but not exact.
  _, psnr = detail.scores(detail.reference(photo, k), y)
  assert 25 < psnr < 60


def test_soft_pool_on_0_255_is_a_low_temperature_on_0_1(photo):
  x = jnp.asarray(photo)
  y255 = np.asarray(jaxpool.soft_pool(x * 255.0, (2, 2))) / 255.0
  y_t = np.asarray(jaxpool.soft_pool(x, (2, 2), temperature=1 / 255))
  np.testing.assert_allclose(y255, y_t, atol=1e-5)
  # ... which is nearly max pooling, while T = 1 on [0, 1] is nearly average pooling.
  ymax = np.asarray(jaxpool.max_pool(x, (2, 2)))
  yavg = np.asarray(jaxpool.avg_pool(x, (2, 2)))
  y1 = np.asarray(jaxpool.soft_pool(x, (2, 2)))
  assert np.abs(y_t - ymax).mean() < 0.2 * np.abs(y_t - yavg).mean()
  assert np.abs(y1 - yavg).mean() < 0.2 * np.abs(y1 - ymax).mean()


def test_notes_hold(photo):
  rows = {m.name: m for m in detail.methods()}
  avg = detail.pool(rows['avg_pool'], photo, 2)
  if 'lip_pool' in rows:  # LIP's module starts as average pooling
    np.testing.assert_allclose(detail.pool(rows['lip_pool'], photo, 2), avg, atol=1e-6)
  if 'mixed_pool' in rows:  # eval mode is max_avg_pool's starting point
    np.testing.assert_allclose(
      detail.pool(rows['mixed_pool'], photo, 3),
      detail.pool(rows['max_avg_pool'], photo, 3),
      atol=1e-6,
    )
  if 'fractional_max_pool' in rows:  # integer ratio: alpha = k, the windows tile
    np.testing.assert_array_equal(
      detail.pool(rows['fractional_max_pool'], photo, 3), detail.pool(rows['max_pool'], photo, 3)
    )
  # Haar lifting is average pooling, hence the study lifts with LeGall 5/3.
  low, _ = jaxpool.lift_down_pool(
    jnp.asarray(photo), np.ones(1, np.float32), np.full(1, 0.5, np.float32), axes=(0, 1)
  )
  np.testing.assert_allclose(np.asarray(low), avg, atol=1e-6)
  assert detail.pool(rows['lift_down_pool'], photo, 3) is None
  # blur/max_blur are centred on the k x k window: on a constant image with a
  # bright square of one window, the response peaks at that window's output.
  for name in ('blur_pool', 'max_blur_pool'):
    for k in (2, 3):
      img = np.zeros((12 * k, 12 * k, 1), np.float32)
      img[5 * k : 6 * k, 7 * k : 8 * k] = 1.0
      y = detail.pool(rows[name], img, k)[..., 0]
      assert np.unravel_index(np.argmax(y), y.shape) == (5, 7), (name, k)
      np.testing.assert_allclose([y[4, 7], y[5, 6]], [y[6, 7], y[5, 8]], atol=1e-6)


def test_plots_are_drawn_from_the_saved_results(tmp_path):
  """The Performance page's plots: one bar group per speed case with a peer, one compile line per
  op, drawn from ``benchmarks/results``."""
  from benchmarks import plots

  results = ROOT / 'benchmarks' / 'results'
  ratios = plots.speed_ratios((results / 'speed.md').read_text())
  assert 'max_pool 3x3/s2/p1' in ratios and ratios['max_pool 3x3/s2/p1']['flax'] > 1
  windows, lines = plots.compile_lines((results / 'compile_time.md').read_text())
  assert windows == ['3x3', '8x8', '16x16', '32x32'] and 'max_pool' in lines
  plots.main(['--out', str(tmp_path)])
  _check_png(tmp_path / 'speed_ratios.png')
  _check_png(tmp_path / 'compile_vs_window.png')
