# Copyright (c) OpenMMLab. All rights reserved.
"""Time ``import mmfer`` against ``import mmpretrain``, and every tool's
``--help``.

Each measurement is the wall time of a fresh ``python`` process (startup
included), the median over ``--runs`` runs. Besides the plain imports it
times what a run needs next: ``import mmfer, mmpretrain`` (the stack with
mmfer's fixes applied) and a registry lookup that imports a package's
models (``FERClassifier`` through mmfer's registry locations, against
mmpretrain's own ``ImageClassifier``), and it says which of torch,
torchvision, mmengine, mmcv and mmpretrain each statement imports.
``--importtime N`` adds the N slowest modules (cumulative, from
``python -X importtime``) of ``import mmfer`` and ``import mmpretrain``.
Example::

    python tools/analysis_tools/benchmark_import.py --runs 5
"""
import argparse
import glob
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STACK = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmpretrain')
OPS_WARNING = 'MultiScaleDeformableAttention'
LOOKUP = ('from mmpretrain.registry import MODELS; '
          "assert MODELS.get('{}') is not None")
# label -> statement
STATEMENTS = {
    'import mmpretrain': 'import mmpretrain',
    'import mmfer': 'import mmfer',
    'import mmfer, mmpretrain': 'import mmfer, mmpretrain',
    'ImageClassifier lookup':
    'import mmpretrain; ' + LOOKUP.format('ImageClassifier'),
    'FERClassifier lookup': 'import mmfer; ' + LOOKUP.format('FERClassifier'),
}
# (numerator, denominator) of the printed ratios
RATIOS = (('import mmfer', 'import mmpretrain'),
          ('import mmfer, mmpretrain', 'import mmpretrain'),
          ('FERClassifier lookup', 'ImageClassifier lookup'))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--runs', type=int, default=5, help='runs per measurement')
    parser.add_argument(
        '--importtime',
        type=int,
        default=0,
        metavar='N',
        help='also list the N slowest modules of each import')
    parser.add_argument(
        '--skip-tools', action='store_true', help='time the imports only')
    return parser.parse_args()


def timed(command: List[str], runs: int) -> Tuple[float, str]:
    """Median wall time of ``command`` over ``runs`` runs, and the output
    of the last run.

    Raises:
        RuntimeError: If a run fails.
    """
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            command, capture_output=True, text=True, cwd=REPO)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f'{command} failed:\n{proc.stderr[-2000:]}')
    return statistics.median(times), proc.stdout + proc.stderr


def imported_stack(statement: str) -> str:
    """Which packages of :data:`STACK` ``statement`` imports."""
    code = (f'{statement}\nimport sys\n'
            f'print(*[m for m in {STACK!r} if m in sys.modules])')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          check=True)
    return proc.stdout.strip() or 'none of them'


def slowest_modules(statement: str, num: int) -> List[Tuple[float, str]]:
    """The ``num`` slowest modules of ``statement``, cumulative seconds."""
    if num == 0:
        return []
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', statement],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          check=True)
    rows = re.findall(r'import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)',
                      proc.stderr)
    times = [(int(us) / 1e6, f'{indent}{name}') for us, indent, name in rows]
    return sorted(times, reverse=True)[:num]


def tools() -> List[str]:
    """Every command-line script of tools/ and demo/, repo-relative."""
    scripts = glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)
    scripts += glob.glob(osp.join(REPO, 'demo', '*.py'))
    return sorted(
        osp.relpath(path, REPO) for path in scripts
        if "__name__ == '__main__'" in open(path, encoding='utf-8').read())


def main() -> None:
    args = parse_args()
    print(f'python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median '
          f'wall time of {args.runs} fresh processes')
    medians: Dict[str, float] = {}
    for label, statement in STATEMENTS.items():
        medians[label], _ = timed([sys.executable, '-c', statement],
                                  args.runs)
        print(f'{medians[label]:7.2f} s  {label:26s} (`{statement}`) '
              f'imports {imported_stack(statement)}')
    for numerator, denominator in RATIOS:
        print(f'ratio {numerator} / {denominator}: '
              f'{medians[numerator] / medians[denominator]:.2f}')
    for statement in ('import mmfer', 'import mmpretrain'):
        if args.importtime:
            print(f'\nslowest modules of `{statement}` (-X importtime, '
                  'cumulative):')
        for seconds, name in slowest_modules(statement, args.importtime):
            print(f'{seconds:7.3f} s  {name}')
    if args.skip_tools:
        return
    print('\n--help of each tool:')
    for tool in tools():
        seconds, output = timed([sys.executable, tool, '--help'], args.runs)
        warning = '  (prints the mmcv ops warning)' \
            if OPS_WARNING in output else ''
        print(f'{seconds:7.2f} s  {tool}{warning}')


if __name__ == '__main__':
    main()
