"""Fixtures shared by the test modules.

The environment (8 host CPU devices for the sharding tests, XLA flags) is set
once, in the repository's root ``conftest.py``, before JAX is imported.
"""

import jax
import numpy as np
import pytest


@pytest.fixture
def rng():
  """A NumPy generator with a fixed seed (tests are reproducible)."""
  return np.random.default_rng(0)


@pytest.fixture
def x64():
  """Runs the test body with 64-bit JAX types (for gradient checks)."""
  with jax.enable_x64(True):
    yield


def pytest_report_header(config):
  from tests import helpers

  return (
    f'long sweeps: rotation {helpers.rotation()} '
    '(set JAXPOOL_TEST_ROTATION to this value to re-run the same cases)'
  )
