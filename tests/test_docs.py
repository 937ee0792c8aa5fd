"""The Sphinx site builds with warnings as errors and documents every public name.

The API reference is built from the docstrings (autodoc + napoleon), so a new
function or module class must be added to its family page in ``docs/api/``;
this test says which one is missing. Doctests run separately
(``--doctest-modules``).
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import flax.linen as nn
import pytest
from flax import nnx

import jaxpool
import jaxpool.linen as jl
import jaxpool.nnx as jn

DOCS = pathlib.Path(__file__).resolve().parents[1] / 'docs'


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> pathlib.Path:
  if importlib.util.find_spec('sphinx') is None:
    pytest.skip('sphinx is not installed: pip install sphinx (listed in the test extra)')
  out = tmp_path_factory.mktemp('docs')
  warnings = out / 'warnings.txt'
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'sphinx',
      '-W',
      '--keep-going',
      '-E',
      '-q',
      '-b',
      'html',
      '-d',
      str(out / 'doctrees'),
      '-w',
      str(warnings),
      str(DOCS),
      str(out / 'html'),
    ],
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert result.returncode == 0, (
    f'sphinx-build -W failed:\n{warnings.read_text() if warnings.exists() else ""}\n'
    f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
  )
  return out / 'html'


def _documented(site: pathlib.Path) -> set[str]:
  """Every object that has an entry (an anchor) in the API reference."""
  names = set()
  for page in (site / 'api').glob('*.html'):
    names |= set(re.findall(r'<dt class="sig sig-object py" id="([\w.]+)"', page.read_text()))
  return names


def _classes(module, base) -> list[str]:
  return sorted(
    name
    for name, obj in vars(module).items()
    if not name.startswith('_') and isinstance(obj, type) and issubclass(obj, base)
  )


def test_docs_build_without_warnings(site):
  for page in (
    'index',
    'choosing',
    'masks',
    'porting_from_pytorch',
    'modules',
    'design',
    'performance',
    'contributing',
    'api/index',
  ):
    assert (site / f'{page}.html').exists(), page


def test_every_public_function_is_in_the_api_reference(site):
  missing = sorted({f'jaxpool.{name}' for name in jaxpool.__all__} - _documented(site))
  assert not missing, f'add these to their family page in docs/api/: {missing}'


@pytest.mark.parametrize('api,module,base', [('linen', jl, nn.Module), ('nnx', jn, nnx.Module)])
def test_every_module_class_is_in_the_api_reference(site, api, module, base):
  classes = _classes(module, base)
  assert len(classes) >= 28
  missing = sorted({f'jaxpool.{api}.{c}' for c in classes} - _documented(site))
  assert not missing, f'add these to their family page in docs/api/: {missing}'


def test_function_docs_come_from_the_docstrings(site):
  """Napoleon turned the Google sections into fields: parameters and return values."""
  page = (site / 'api' / 'classic.html').read_text()
  entry = page[page.index('id="jaxpool.max_pool"') : page.index('id="jaxpool.min_pool"')]
  assert 'Parameters' in entry and 'Returns' in entry and 'return_indices' in entry


@pytest.mark.parametrize(
  'family',
  ['classic', 'weighted', 'adaptive', 'stochastic', 'learned', 'blur', 'lifting', 'segments'],
)
def test_a_public_op_module_namespace_is_its_all(family):
  """What the module families need from an op module (field checks, initial values, the learned
  sub-networks) lives in private modules, so an op module's public functions are its API."""
  module = importlib.import_module(f'jaxpool.{family}')
  public = {
    name
    for name, value in vars(module).items()
    if not name.startswith('_')
    and callable(value)
    and getattr(value, '__module__', None) == module.__name__
  }
  assert public == set(module.__all__), sorted(public ^ set(module.__all__))
