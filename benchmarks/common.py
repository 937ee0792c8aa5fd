"""Shared benchmark machinery: cases, interleaved timing, compiled memory.

A suite module in ``benchmarks/suites/`` defines ``cases(quick: bool) ->
list[Case]``. Every implementation of a case is timed in the same run,
interleaved rep by rep, and reported as medians and as ratios to the case's
baseline. JAX implementations are jitted; their forward+backward is
``jit(value_and_grad(sum(f(x) * ct)))``. PyTorch runs on the CPU in NCHW
(``(N, C, *spatial)``) layout, optionally also channels-last.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

# PyTorch's OpenMP threads otherwise spin for a while after each op, stealing the cores
# from the JAX call timed next (interleaving would then penalise whichever runs after torch).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


@dataclasses.dataclass
class Case:
  """One benchmark: an op at one geometry, several implementations."""

  op: str
  label: str
  shape: tuple[int, ...]
  jax: dict[str, Callable]
  torch: Callable | None = None
  baseline: str = 'jaxpool'
  torch_channels_last: bool = False
  dtype: str = 'float32'
  #: per implementation, a function of the NumPy input giving the input it is timed on
  #: (e.g. one holding a NaN); the others time the case's input
  inputs: dict[str, Callable] = dataclasses.field(default_factory=dict)


def load_cases(quick: bool, only: set[str] | None = None) -> list[Case]:
  """Collects cases from every suite module, filtered by op name."""
  import benchmarks.suites as suites

  cases = []
  for info in sorted(pkgutil.iter_modules(suites.__path__), key=lambda m: m.name):
    module = importlib.import_module(f'benchmarks.suites.{info.name}')
    if hasattr(module, 'cases'):
      cases.extend(module.cases(quick))
  if only:
    cases = [c for c in cases if c.op in only or f'{c.op} {c.label}' in only]
  return cases


def make_input(case: Case, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(case.shape).astype(case.dtype)


def _block(tree):
  return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def jax_callables(f: Callable, x: np.ndarray):
  """Jitted forward and forward+backward (with a fixed random cotangent)."""
  out = jax.eval_shape(f, jnp.asarray(x))
  ct = jnp.asarray(np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype))
  fwd = jax.jit(f)
  # The cotangent is an argument, never a closed-over constant: XLA would
  # constant-fold a backward that does not depend on x (e.g. avg pooling's).
  fb_ct = jax.jit(jax.value_and_grad(lambda a, c: jnp.sum(f(a) * c)))
  fb = lambda a: fb_ct(a, ct)
  fb.lower = lambda a: fb_ct.lower(a, ct)
  return fwd, fb


def torch_input(x: np.ndarray, n_spatial: int, channels_last: bool):
  """A channel-last NumPy ``x`` as a PyTorch tensor, ``(N, C, *spatial)``; with
  ``channels_last`` (2-d and 3-d) in PyTorch's channels-last memory format."""
  import torch

  xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
  if channels_last and n_spatial in (2, 3):
    xt = xt.contiguous(
      memory_format=torch.channels_last if n_spatial == 2 else torch.channels_last_3d
    )
  return xt


def torch_callables(f: Callable, x: np.ndarray, n_spatial: int, channels_last: bool):
  import torch

  xt = torch_input(x, n_spatial, channels_last)
  with torch.no_grad():
    out = f(xt)
  ct = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(x.dtype))

  def fwd(_):
    with torch.no_grad():
      return f(xt)

  def fb(_):
    leaf = xt.detach().requires_grad_()
    y = f(leaf)
    y.backward(ct)
    return leaf.grad

  return fwd, fb


def time_case(case: Case, reps: int, torch_ok: bool) -> dict[str, dict[str, float]]:
  """Median ms of forward and forward+backward for every implementation, interleaved."""
  x = make_input(case)
  n_spatial = len(case.shape) - 2
  impls: dict[str, tuple[Callable, Callable, object]] = {}
  for name, f in case.jax.items():
    xi = case.inputs[name](x) if name in case.inputs else x
    fwd, fb = jax_callables(f, xi)
    impls[name] = (fwd, fb, jnp.asarray(xi))
  if case.torch is not None and torch_ok:
    impls['torch'] = (*torch_callables(case.torch, x, n_spatial, False), None)
    if case.torch_channels_last:
      impls['torch channels_last'] = (*torch_callables(case.torch, x, n_spatial, True), None)
  samples = {name: {'fwd': [], 'f+b': []} for name in impls}
  for rep in range(reps + 1):  # rep 0 compiles / warms up
    for name, (fwd, fb, arg) in impls.items():
      for kind, fn in (('fwd', fwd), ('f+b', fb)):
        start = time.perf_counter()
        _block(fn(arg)) if arg is not None else fn(arg)
        elapsed = (time.perf_counter() - start) * 1e3
        if rep:
          samples[name][kind].append(elapsed)
  return {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}


def calibrated(fn: Callable, args: tuple) -> tuple[Callable, tuple, int]:
  """``(fn, args, calls)``: ``calls`` calls of ``fn(*args)`` make one rep of about 20 ms of
  work, so that a rep is not one noisy millisecond (``fn`` is called twice to find out)."""
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return fn, args, max(1, round(0.02 / max(time.perf_counter() - start, 1e-6)))


def interleaved_medians(timed: dict, reps: int) -> dict:
  """Median ms per call of each ``key: (fn, args, calls)`` (from :func:`calibrated`), the keys
  timed in turn within each of ``reps`` reps, so that a slow spell of the machine hits all."""
  samples: dict = {key: [] for key in timed}
  for _ in range(reps):
    for key, (fn, args, calls) in timed.items():
      start = time.perf_counter()
      for _ in range(calls):
        out = fn(*args)
      jax.block_until_ready(out)
      samples[key].append((time.perf_counter() - start) * 1e3 / calls)
  return {key: statistics.median(v) for key, v in samples.items()}


def compiled_temp_bytes(f: Callable, x: np.ndarray) -> int | None:
  """Temp bytes XLA allocates for the jitted forward+backward of ``f``."""
  _, fb = jax_callables(f, x)
  stats = fb.lower(jnp.asarray(x)).compile().memory_analysis()
  return None if stats is None else int(stats.temp_size_in_bytes)


def machine_line() -> str:
  lines = [
    f'{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}',
    f'jax {jax.__version__} ({jax.default_backend()}, {len(jax.devices())} device(s))',
  ]
  try:
    import torch

    lines.append(f'torch {torch.__version__} ({torch.get_num_threads()} threads)')
  except ImportError:
    lines.append('torch not installed')
  return '; '.join(lines)
