"""Root conftest: the one test environment setup (XLA flags, before JAX is imported) and the
names docstring examples use, for ``--doctest-modules``."""

import os

# 8 host devices for the sharding tests. The suite is compile-bound: LLVM's -O0 cuts XLA:CPU
# compile time by ~20%. It may round some float sums differently from -O2 (within every test's
# tolerance; enough to move a 2-epoch training run, see tests/test_readme.py).
os.environ.setdefault(
  'XLA_FLAGS', '--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0'
)
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
  doctest_namespace.update(jax=jax, jnp=jnp, np=np, jaxpool=jaxpool)
  doctest_namespace.update({name: getattr(jaxpool, name) for name in jaxpool.__all__})
