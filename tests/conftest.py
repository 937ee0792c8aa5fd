"""Test configuration shared by every test module.

The suite runs with 8 host CPU devices so sharding tests see a real mesh; the
flag must be set before JAX is imported, hence here.
"""

import os

# 8 host devices for the sharding tests. The suite is compile-bound: LLVM's -O0 cuts XLA:CPU
# compile time by ~20% and changes no result (no fast-math, so no reassociation either way).
os.environ.setdefault(
    'XLA_FLAGS', '--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
  """A NumPy generator with a fixed seed (tests are reproducible)."""
  return np.random.default_rng(0)


@pytest.fixture
def x64():
  """Runs the test body with 64-bit JAX types (for gradient checks)."""
  with jax.enable_x64(True):
    yield


def pytest_configure(config):
  config.addinivalue_line('markers', 'slow: long-running tests (run by the CI slow job)')
