"""The README's test command is exactly what CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _last_command(text: str) -> str:
  lines = [ln.strip() for ln in text.splitlines()
           if ln.strip() and not ln.strip().startswith('#') and not ln.startswith(('set ', 'cd ', 'export '))]
  return lines[-1]


def test_ci_runs_the_readme_test_command():
  readme = (ROOT / 'README.md').read_text()
  block = re.search(r'<!-- test-command -->\s*```(?:bash|sh)?\n(.*?)```', readme, re.S)
  assert block, 'README must mark its test command with <!-- test-command -->'
  ci = (ROOT / '.ci' / 'run').read_text()
  assert _last_command(ci) == block.group(1).strip()
