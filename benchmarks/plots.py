"""The Performance page's plots, drawn from the saved benchmark results.

Reads ``benchmarks/results/speed.md`` (``benchmarks/speed.py``) and
``benchmarks/results/compile_time.md`` (``benchmarks/compile_time.py``) and writes:

- ``docs/figures/speed_ratios.png``: forward+backward time of each case's peers over
  jaxpool's (above 1: jaxpool is faster), one group of bars per case;
- ``docs/figures/compile_vs_window.png``: gradient trace + compile seconds against the
  window size, one line per op (stride = window).

    python benchmarks/plots.py [--results benchmarks/results] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEERS = ('flax', 'torch', 'torch channels_last')


def table_rows(text: str, header_start: str) -> list[list[str]]:
  """The cells of every row of the Markdown table(s) whose header starts with ``header_start``."""
  rows, inside = [], False
  for line in text.splitlines():
    if line.startswith(header_start):
      inside = True
      continue
    if inside and line.startswith('|---'):
      continue
    if inside and line.startswith('|'):
      rows.append([c.strip() for c in line.strip().strip('|').split('|')])
    else:
      inside = False
  return rows


def speed_ratios(text: str) -> dict[str, dict[str, float]]:
  """``{case: {peer: peer f+b / jaxpool f+b}}`` for the cases with a Flax or PyTorch row."""
  base: dict[str, float] = {}
  out: dict[str, dict[str, float]] = {}
  for op, geometry, _input, impl, _fwd, fb, *_ in table_rows(text, '| op | geometry'):
    case = f'{op} {geometry}'
    if impl == 'jaxpool':
      base[case] = float(fb)
    elif impl in PEERS and case in base:
      out.setdefault(case, {})[impl] = float(fb) / base[case]
  return out


def compile_lines(text: str) -> tuple[list[str], dict[str, list[float]]]:
  """Window labels and ``{op: gradient seconds per window}`` (stride = window rows)."""
  header = next(ln for ln in text.splitlines() if ln.startswith('| op | stride | mode'))
  cells = [c.strip() for c in header.strip().strip('|').split('|')]
  windows = [c for c in cells if re.fullmatch(r'\d+x\d+', c)]
  lines = {}
  for row in table_rows(text, '| op | stride | mode'):
    op, stride, mode = row[:3]
    if stride == '= window' and mode == 'grad':
      lines[op] = [float(v) for v in row[3 : 3 + len(windows)]]
  return windows, lines


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--results', default=str(ROOT / 'benchmarks' / 'results'))
  parser.add_argument('--out', default=str(ROOT / 'docs' / 'figures'))
  args = parser.parse_args(argv)
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  results, out = pathlib.Path(args.results), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)

  ratios = speed_ratios((results / 'speed.md').read_text())
  cases = sorted(ratios)
  fig, ax = plt.subplots(figsize=(11, 0.32 * len(cases) + 1.5))
  height = 0.8 / len(PEERS)
  for k, peer in enumerate(PEERS):
    ys = [i + (k - 1) * height for i in range(len(cases))]
    ax.barh(ys, [ratios[c].get(peer, 0.0) for c in cases], height, label=peer)
  ax.axvline(1.0, color='black', linewidth=0.8)
  ax.set_xscale('log')
  ax.set_yticks(range(len(cases)), cases, fontsize=7)
  ax.invert_yaxis()
  ax.set_xlabel("peer's forward+backward time / jaxpool's (log scale; above 1: jaxpool faster)")
  ax.legend(loc='lower right', fontsize=8)
  ax.set_title('Forward+backward, f32, 2-core CPU (benchmarks/results/speed.md)')
  fig.tight_layout()
  fig.savefig(out / 'speed_ratios.png', dpi=110)
  plt.close(fig)

  windows, lines = compile_lines((results / 'compile_time.md').read_text())
  fig, ax = plt.subplots(figsize=(8, 5))
  sizes = [int(w.split('x')[0]) for w in windows]
  for op, seconds in sorted(lines.items()):
    style = dict(color='black', linewidth=2.5) if op.startswith('flax') else dict(linewidth=1)
    ax.plot(sizes, seconds, marker='o', markersize=3, label=op, **style)
  ax.set_xscale('log', base=2)
  ax.set_xticks(sizes, windows)
  ax.set_xlabel('window (stride = window), 2x64x64x8 f32')
  ax.set_ylabel('gradient trace + compile (s)')
  ax.set_title('Compile time against window size (benchmarks/results/compile_time.md)')
  ax.legend(fontsize=6, ncol=3)
  fig.tight_layout()
  fig.savefig(out / 'compile_vs_window.png', dpi=110)
  plt.close(fig)
  print(f'wrote {out / "speed_ratios.png"} and {out / "compile_vs_window.png"}')


if __name__ == '__main__':
  main()
