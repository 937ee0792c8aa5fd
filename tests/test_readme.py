"""The README's commands are what CI runs, and its quick-start table is what the example prints."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import jax
import jax.numpy as jnp

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / 'README.md').read_text()
# The quick-start row re-run by test_quick_start_row_is_what_the_example_prints: the cheapest
# pooling that goes through the weighted core (about 20 s on 2 cores; all five take about a minute).
RERUN_POOL = 'soft'
# How far a re-run's accuracy may sit from the README's: the observed spread of the five rows
# across machines and XLA builds is under 2 points (README, "Quick start" output), so a change
# that moves training beyond 3 points is not rounding.
ACCURACY_TOLERANCE = 3.0


def _block(marker: str) -> str:
  block = re.search(rf'<!-- {marker} -->\s*```[a-z]*\n(.*?)```', README, re.S)
  assert block, f'README must mark a code block with <!-- {marker} -->'
  return block.group(1).strip()


def _ci_commands() -> list[str]:
  """The commands ``.ci/run`` runs, in order (``a && b`` is two), setup lines left out."""
  lines = [ln.strip() for ln in (ROOT / '.ci' / 'run').read_text().splitlines()]
  lines = [
    ln
    for ln in lines
    if ln and not ln.startswith(('#', 'set ', 'cd ', 'export ', 'package', 'trap '))
  ]
  return [cmd.strip() for ln in lines for cmd in ln.split(' && ')]


def test_ci_runs_the_readme_test_command():
  readme = [cmd.strip() for cmd in _block('test-command').split(' && ')]
  ci = _ci_commands()
  setup, test = readme[:-1], readme[-1]
  # CI installs exactly as the README does, and ends with the README's test command; the checks it
  # runs in between (lint, types, package) come on top of it.
  assert ci[: len(setup)] == setup, (ci, readme)
  assert ci[-1] == test == '.venv/bin/python -m pytest', (ci, readme)


def test_ci_checks_lint_types_and_the_package_before_the_tests():
  ci = _ci_commands()
  for check in (
    '.venv/bin/ruff check .',
    '.venv/bin/ruff format --check .',
    '.venv/bin/mypy',
    '.ci/package >"$package_log" 2>&1 &',
  ):
    assert check in ci[:-1], (check, ci)
  assert os.access(ROOT / '.ci' / 'package', os.X_OK)
  # the package check runs beside the tests; its status decides the script's at exit
  assert 'wait "$package" || status=1' in (ROOT / '.ci' / 'run').read_text()


# ----------------------------------------------------------------------------- quick start


def _main_command_args() -> list[str]:
  """The arguments the README's main command passes to ``examples/cifar10.py``."""
  words = shlex.split(_block('main-command').split(' && ')[-1])
  script = words.index('examples/cifar10.py')
  return words[script + 1 :]


def _readme_output() -> tuple[str, dict[str, list[str]]]:
  """The README's copy of the main command's output: its header line and ``{pool: row cells}``."""
  lines = _block('main-command-output').splitlines()
  rows = [
    [c.strip() for c in ln.strip().strip('|').split('|')] for ln in lines if ln.startswith('|')
  ]
  assert rows[0][:4] == ['pooling', 'params', 'final test acc (%)', 'best test acc (%)'], rows[0]
  return lines[0], {row[0]: row for row in rows[2:]}


def _examples():
  if str(ROOT / 'examples') not in sys.path:
    sys.path.insert(0, str(ROOT / 'examples'))
  import cifar10
  import cifar_model

  return cifar10, cifar_model


def test_quick_start_table_has_every_pooling_and_its_parameter_count():
  cifar10, cifar_model = _examples()
  args = cifar10.parse_args(_main_command_args())
  header, rows = _readme_output()
  assert list(rows) == args.compare, "README rows must be the main command's --compare list"
  assert header.startswith(
    f'{args.dataset}, {args.epochs} epochs, width {args.width}, '
    f'stages {args.stages}, batch {args.batch_size}, '
  ), header
  for pool, row in rows.items():
    model = cifar_model.ResNet(pool=pool, width=args.width, stages=args.stages, num_classes=10)
    key = jax.random.key(0)
    shapes = jax.eval_shape(
      lambda: model.init({'params': key, 'pooling': key}, jnp.zeros((1, 32, 32, 3)), train=False)[
        'params'
      ]
    )
    assert row[1] == f'{cifar_model.count_params(shapes):,}', (pool, row)


def test_quick_start_row_is_what_the_example_prints(tmp_path):
  """Re-runs one pooling of the main command as the README runs it (1 CPU device, no XLA flags).

  The parameter count must match exactly. The accuracies depend on every float rounding on the
  way (the device count, XLA flags, the CPU XLA compiles for), so they must match within
  ``ACCURACY_TOLERANCE``: a change that moves them further changed the training, and the README's
  table must be re-made (re-run the main command and paste its output).
  """
  args = _main_command_args()
  at = args.index('--compare')
  args[at + 1] = RERUN_POOL
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(
    JAX_PLATFORMS='cpu',
    PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]),
  )
  done = subprocess.run(
    [
      sys.executable,
      str(ROOT / 'examples' / 'cifar10.py'),
      *args,
      '--out',
      str(tmp_path / 'runs'),
      '--no-progress',
    ],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert done.returncode == 0, done.stdout + done.stderr
  printed = (tmp_path / 'runs' / 'compare.md').read_text().splitlines()
  header, rows = _readme_output()
  row = [c.strip() for c in printed[-1].strip().strip('|').split('|')]
  stale = (
    "README.md's quick-start output (<!-- main-command-output -->) is not what the main "
    'command prints now; re-run it and paste its runs/digits/compare.md'
  )
  assert printed[0] == header, f'{stale}:\n{printed[0]}\n!=\n{header}'
  assert row[:2] == rows[RERUN_POOL][:2], (
    f'{stale}:\nprinted {row[:2]}\nREADME  {rows[RERUN_POOL][:2]}'
  )
  for printed_acc, readme_acc in zip(row[2:4], rows[RERUN_POOL][2:4]):
    assert abs(float(printed_acc) - float(readme_acc)) <= ACCURACY_TOLERANCE, (
      f'{stale} (beyond the {ACCURACY_TOLERANCE}-point rounding spread):\n'
      f'printed {row[:4]}\nREADME  {rows[RERUN_POOL][:4]}'
    )
