"""Tests of examples/cifar10.py: data pipeline, pooling registry, sharded training, resume, compare.

No network: the CIFAR-10 download path is exercised with a tiny archive in the
official layout, served through ``file://`` and a local HTTP server.
"""

import hashlib
import http.server
import io
import pickle
import socket
import sys
import tarfile
import threading
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from tests import helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))

import cifar10
import cifar_data
import cifar_model

TRAIN_PER_BATCH, TEST = 16, 12  # 80 training images, 12 test images
ARCHIVE = 'cifar-10-python.tar.gz'
CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']


def _batch(rng, n, name):
  labels = rng.integers(0, 10, n)
  # Class-dependent brightness so the tiny run has something to learn.
  data = (rng.integers(0, 96, (n, 3072)) + 16 * labels[:, None]).astype(np.uint8)
  return {
    b'batch_label': name.encode(),
    b'labels': labels.tolist(),
    b'data': data,
    b'filenames': [f'{name}_{i}.png'.encode() for i in range(n)],
  }


@pytest.fixture(scope='module')
def tiny_archive(tmp_path_factory):
  """A CIFAR-10-format ``.tar.gz``: ``(path, md5, {file name: batch dict})``."""
  rng = np.random.default_rng(0)
  batches = {
    f'data_batch_{i}': _batch(rng, TRAIN_PER_BATCH, f'training batch {i} of 5') for i in range(1, 6)
  }
  batches['test_batch'] = _batch(rng, TEST, 'testing batch 1 of 1')
  meta = {b'label_names': [c.encode() for c in CLASSES], b'num_cases_per_batch': TRAIN_PER_BATCH}
  path = tmp_path_factory.mktemp('serve') / ARCHIVE
  with tarfile.open(path, 'w:gz') as tar:
    for name, obj in {**batches, 'batches.meta': meta}.items():
      blob = pickle.dumps(obj)
      info = tarfile.TarInfo(f'{cifar_data.CIFAR10_DIR}/{name}')
      info.size = len(blob)
      tar.addfile(info, io.BytesIO(blob))
  return path, hashlib.md5(path.read_bytes()).hexdigest(), batches


@pytest.fixture(scope='module')
def tiny_data_dir(tiny_archive, tmp_path_factory):
  """A data directory holding the extracted tiny CIFAR-10 (through the real download path)."""
  path, md5, _ = tiny_archive
  data_dir = tmp_path_factory.mktemp('data')
  cifar_data.load_cifar10(data_dir, url=path.as_uri(), md5=md5, progress=False)
  return data_dir


# ----------------------------------------------------------------------------- download


def test_download_checksum_extract_load(tiny_archive, tmp_path):
  path, md5, batches = tiny_archive
  data = cifar_data.load_cifar10(tmp_path, url=path.as_uri(), md5=md5, progress=False)
  assert (tmp_path / ARCHIVE).read_bytes() == path.read_bytes()
  assert not (tmp_path / (ARCHIVE + '.part')).exists()
  assert data.train_images.shape == (5 * TRAIN_PER_BATCH, 32, 32, 3)
  assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int32
  assert data.test_images.shape == (TEST, 32, 32, 3)
  first = batches['data_batch_1']
  # Row-major CHW pickles -> HWC images: pixel (y, x) of channel c is data[c * 1024 + y * 32 + x].
  np.testing.assert_array_equal(
    data.train_images[0, 5, 7], first[b'data'][0, [5 * 32 + 7 + c * 1024 for c in range(3)]]
  )
  np.testing.assert_array_equal(data.train_labels[:TRAIN_PER_BATCH], first[b'labels'])
  np.testing.assert_array_equal(data.test_labels, batches['test_batch'][b'labels'])
  assert data.classes == tuple(CLASSES) and data.flip
  pixels = data.train_images.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(data.mean, pixels.mean(0), rtol=1e-12)
  np.testing.assert_allclose(data.std, pixels.std(0), rtol=1e-12)
  (tmp_path / ARCHIVE).unlink()  # extracted data is reused: no second download
  again = cifar_data.load_cifar10(tmp_path, url='file:///nonexistent', md5=md5, progress=False)
  np.testing.assert_array_equal(again.train_images, data.train_images)


def test_corrupt_download_is_rejected(tiny_archive, tmp_path):
  path, _, _ = tiny_archive
  dest = tmp_path / ARCHIVE
  with pytest.raises(RuntimeError, match='checksum mismatch .* expected 0{32}.*deleted'):
    cifar_data.download(path.as_uri(), dest, '0' * 32, progress=False)
  assert not dest.exists() and not (tmp_path / (ARCHIVE + '.part')).exists()


def test_wrong_file_in_place_is_reported_and_kept(tiny_archive, tmp_path):
  path, md5, _ = tiny_archive
  (tmp_path / ARCHIVE).write_bytes(b'not the archive')
  with pytest.raises(
    RuntimeError,
    match=r'cifar-10-python.tar.gz has md5 [0-9a-f]{32}, expected '
    + md5
    + ': not the expected file. Delete it',
  ):
    cifar_data.download(path.as_uri(), tmp_path / ARCHIVE, md5, progress=False)
  assert (tmp_path / ARCHIVE).read_bytes() == b'not the archive'


def test_complete_part_file_is_used_without_a_request(tiny_archive, tmp_path):
  path, md5, _ = tiny_archive
  (tmp_path / (ARCHIVE + '.part')).write_bytes(path.read_bytes())
  dest = cifar_data.download('file:///nonexistent', tmp_path / ARCHIVE, md5, progress=False)
  assert dest.read_bytes() == path.read_bytes() and not (tmp_path / (ARCHIVE + '.part')).exists()


def test_archive_without_cifar_files_is_rejected(tmp_path):
  bogus = tmp_path / 'serve' / ARCHIVE
  bogus.parent.mkdir()
  with tarfile.open(bogus, 'w:gz') as tar:
    tar.addfile(tarfile.TarInfo('readme.txt'), io.BytesIO(b''))
  md5 = hashlib.md5(bogus.read_bytes()).hexdigest()
  with pytest.raises(RuntimeError, match='does not hold cifar-10-batches-py/data_batch_1'):
    cifar_data.load_cifar10(tmp_path / 'data', url=bogus.as_uri(), md5=md5, progress=False)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
  """Serves ``payload`` at any path, honouring ``Range: bytes=a-``; logs the ranges asked for."""

  payload = b''
  ranges: typing.ClassVar[list] = []

  def do_GET(self):
    start = 0
    header = self.headers.get('Range')
    type(self).ranges.append(header)
    if header:
      start = int(header.split('=')[1].split('-')[0])
      self.send_response(206)
      size = len(self.payload)
      self.send_header('Content-Range', f'bytes {start}-{size - 1}/{size}')
    else:
      self.send_response(200)
    self.send_header('Content-Length', str(len(self.payload) - start))
    self.end_headers()
    self.wfile.write(self.payload[start:])

  def log_message(self, *args):
    pass


def test_partial_download_resumes_with_http_range(tiny_archive, tmp_path):
  path, md5, _ = tiny_archive
  payload = path.read_bytes()
  handler = type('Handler', (_RangeHandler,), {'payload': payload, 'ranges': []})
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    dest = tmp_path / ARCHIVE
    half = len(payload) // 2
    (tmp_path / (ARCHIVE + '.part')).write_bytes(payload[:half])
    url = f'http://127.0.0.1:{server.server_address[1]}/{ARCHIVE}'
    cifar_data.download(url, dest, md5, progress=False, timeout=10)
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
  assert handler.ranges == [f'bytes={half}-']
  assert dest.read_bytes() == payload


def test_part_file_restarts_when_range_is_ignored(tiny_archive, tmp_path):
  path, md5, _ = tiny_archive
  (tmp_path / (ARCHIVE + '.part')).write_bytes(b'garbage from an older attempt')
  dest = cifar_data.download(path.as_uri(), tmp_path / ARCHIVE, md5, progress=False)
  assert dest.read_bytes() == path.read_bytes()  # file:// ignores Range: started over


def test_offline_error_says_where_to_put_the_archive(tmp_path):
  with socket.socket() as s:  # a port nobody listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  url = f'http://127.0.0.1:{port}/{ARCHIVE}'
  with pytest.raises(
    RuntimeError,
    match=r'(?s)could not download .*Connection refused.*'
    r'put it at .*' + ARCHIVE + r' \(md5 .*--dataset digits',
  ):
    cifar_data.load_cifar10(tmp_path, url=url, progress=False)


def test_cli_reports_a_data_error_without_traceback(monkeypatch, tmp_path):
  def offline(url, dest, md5, **kwargs):
    raise RuntimeError(f'could not download {url}: no network. Put it at {dest}')

  monkeypatch.setattr(cifar_data, 'download', offline)  # never touch the real URL in tests
  with pytest.raises(SystemExit, match=r'^error: could not download https://www\.cs\.toronto'):
    cifar10.main(['--data-dir', str(tmp_path), '--out', str(tmp_path / 'runs'), '--no-progress'])


# ----------------------------------------------------------------------------- data


def test_digits_resized_with_fixed_split():
  a, b = cifar_data.load_digits(), cifar_data.load_digits()
  assert a.train_images.shape == (1437, 32, 32, 3) and a.test_images.shape == (360, 32, 32, 3)
  assert a.train_images.dtype == np.uint8 and a.train_images.max() == 255
  np.testing.assert_array_equal(a.test_labels, b.test_labels)
  np.testing.assert_array_equal(np.bincount(a.test_labels) >= 35, True)  # stratified
  assert not a.flip


def test_augment_is_a_keyed_shifted_crop():
  x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1)
  key = jax.random.key(3, impl=cifar10.PRNG_IMPL)
  y = cifar_data.augment(key, x, pad=2, flip=False)
  np.testing.assert_array_equal(y, cifar_data.augment(key, x, pad=2, flip=False))
  padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(2):  # every output image is some 6x6 window of its padded input
    windows = [padded[i, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
    assert any(np.array_equal(np.asarray(y[i]), w) for w in windows)
  np.testing.assert_array_equal(cifar_data.augment(key, x, pad=0, flip=False), x)
  flipped = cifar_data.augment(key, x, pad=0, flip=True)
  for i in range(2):
    assert np.array_equal(flipped[i], x[i]) or np.array_equal(flipped[i], x[i, :, ::-1])


def test_epoch_order_depends_on_seed_and_epoch_only():
  order = cifar_data.epoch_order(50, 1, 2)
  np.testing.assert_array_equal(order, cifar_data.epoch_order(50, 1, 2))
  assert sorted(order) == list(range(50))
  assert not np.array_equal(order, cifar_data.epoch_order(50, 1, 3))


def test_eval_batches_cover_every_example_once():
  x, y = np.arange(10)[:, None], np.arange(10)
  batches = list(cifar_data.eval_batches(x, y, 4))
  assert [len(b[0]) for b in batches] == [4, 4, 4]
  weights = np.concatenate([w for _, _, w in batches])
  np.testing.assert_array_equal(np.concatenate([b for _, b, _ in batches])[weights > 0], y)


# ----------------------------------------------------------------------------- registry


# The paper's three every run; the others in a rotating share (all of them over successive runs).
_POOLS = sorted(cifar_model.available_pools(), key=lambda p: p not in ('max', 'avg', 'soft'))


@pytest.mark.parametrize('pool', helpers.rotating_share(_POOLS, 3, 4))
def test_every_registered_pool_builds_inits_and_trains_one_step(pool):
  model = cifar_model.ResNet(pool=pool, width=4, stages=(0, 0))  # stem, pool, head: compiles fast
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16, 16, 3)), jnp.float32)
  labels = jnp.array([1, 2])
  key = jax.random.key(0, impl=cifar10.PRNG_IMPL)
  variables = jax.jit(model.init)(key, x)  # jitted: op-by-op init compiles every op apart
  tx = optax.sgd(0.1)

  @jax.jit
  def step(variables, opt_state):
    def loss_fn(params):
      logits, state = model.apply(
        {**variables, 'params': params},
        x,
        train=True,
        rngs={'pooling': key},
        mutable=['batch_stats'],
      )
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), state

    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables['params'])
    updates, opt_state = tx.update(grads, opt_state)
    params = optax.apply_updates(variables['params'], updates)
    return {**state, 'params': params}, loss, model.apply({**state, 'params': params}, x)

  new, loss, logits = step(variables, tx.init(variables['params']))
  assert np.isfinite(loss) and logits.shape == (2, 10) and np.all(np.isfinite(logits))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new['params'], variables['params'])
  assert all(jax.tree.leaves(changed['Dense_0']))
  if 'pool1' in changed:  # a learned pooling is trained too
    assert any(jax.tree.leaves(changed['pool1'])), changed['pool1']


def test_a_missing_family_is_not_registered(monkeypatch):
  import jaxpool.linen

  monkeypatch.delattr(jaxpool.linen, 'MaxPool')
  assert 'max' not in cifar_model.available_pools() and 'avg' in cifar_model.available_pools()
  with pytest.raises(ValueError, match="pool 'max' needs jaxpool.linen.MaxPool, which this"):
    cifar_model.make_pool('max', deterministic=True)
  with pytest.raises(SystemExit):
    cifar10.parse_args(['--pool', 'max'])


def test_bad_pool_and_batch_size_errors(capsys):
  with pytest.raises(ValueError, match=r"pool must be one of \[.*'avg'.*\]; got 'nope'"):
    cifar_model.make_pool('nope', deterministic=True)
  with pytest.raises(SystemExit):
    cifar10.parse_args(['--compare', 'max,nope'])
  assert "pool 'nope' is unknown" in capsys.readouterr().err
  assert jax.device_count() == 8
  with pytest.raises(
    ValueError,
    match=r'--batch-size must be a positive multiple of the device '
    r'count \(8 devices\); got 12',
  ):
    cifar10.check_batch_size(12)


# ----------------------------------------------------------------------------- training


def _argv(data_dir, out, *extra):
  return [
    '--dataset',
    'cifar10',
    '--data-dir',
    str(data_dir),
    '--out',
    str(out),
    '--epochs',
    '2',
    '--width',
    '4',
    '--stages',
    '1,1',
    '--batch-size',
    '16',
    '--no-progress',
    *extra,
  ]


@pytest.fixture(scope='module')
def compare_run(tiny_data_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp('compare')
  return out, cifar10.main(_argv(tiny_data_dir, out, '--compare', 'max,avg'))


def test_batches_are_sharded_over_8_devices():
  sharding = NamedSharding(cifar10.data_mesh(), P('data'))
  images, labels = cifar10.global_batch(
    sharding, np.zeros((16, 32, 32, 3), np.uint8), np.arange(16, dtype=np.int32)
  )
  assert len(images.sharding.device_set) == 8 and images.sharding.spec == P('data')
  assert {s.data.shape for s in images.addressable_shards} == {(2, 32, 32, 3)}
  np.testing.assert_array_equal(labels, np.arange(16))


def test_compare_writes_table_plot_and_metrics(compare_run):
  out, result = compare_run
  table = result['table']
  assert table.splitlines()[0].startswith('| pooling | params | final test acc (%)')
  assert [line.split('|')[1].strip() for line in table.splitlines()[2:]] == ['max', 'avg']
  assert (out / 'compare.md').read_text().endswith(table + '\n')
  assert (out / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  for run in result['runs']:
    assert run['devices'] == 8
    assert [h['epoch'] for h in run['history']] == [1, 2]
    assert all(0 <= h['test_acc'] <= 1 and np.isfinite(h['train_loss']) for h in run['history'])
    csv_lines = (out / f'{run["pool"]}-s0' / 'metrics.csv').read_text().splitlines()
    assert csv_lines[0].startswith('epoch,train_loss,train_acc,train_s,test_loss,test_acc')
    assert len(csv_lines) == 3
  # One epoch of the training set on 8 devices: 80 images / batch 16 = 5 steps per epoch.
  assert int(result['runs'][0]['state']['step']) == 10


def test_resume_after_epoch_1_matches_uninterrupted_run(compare_run, tiny_data_dir, tmp_path):
  _, uninterrupted = compare_run
  reference = uninterrupted['runs'][0]
  assert reference['pool'] == 'max'
  first = cifar10.main(_argv(tiny_data_dir, tmp_path, '--pool', 'max', '--stop-after-epoch', '1'))
  assert len(first['runs'][0]['history']) == 1 and int(first['runs'][0]['state']['step']) == 5
  second = cifar10.main(_argv(tiny_data_dir, tmp_path, '--pool', 'max', '--resume'))
  resumed = second['runs'][0]
  assert [h['epoch'] for h in resumed['history']] == [1, 2]
  for key in ('train_loss', 'test_acc'):
    assert [h[key] for h in resumed['history']] == [h[key] for h in reference['history']]
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
    resumed['state'],
    reference['state'],
  )
