# Copyright (c) OpenMMLab. All rights reserved.
"""Compare FER methods over several seeds: mean +- std of the last epoch.

Trains and tests every config with every seed through
:func:`mmfer.apis.train_and_test` (one run after another, in this process)
and prints, per config, the mean and the sample standard deviation over
seeds of the last-epoch test top-1 and mean per-class accuracy. The table
and every run's numbers are also written to
``<work-dir>/compare_methods.json``.

Example::

    python tools/analysis_tools/compare_methods.py \\
        --configs configs/baseline/r18_synthfer_noise30.py \\
                  configs/eac/r18_synthfer_noise30.py \\
        --seeds 0 1 2 --work-dir work_dirs/compare
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import mmfer  # noqa: E402,F401  (stack fixes before any config is read)
from mmengine.config import DictAction  # noqa: E402

from mmfer.apis import train_and_test  # noqa: E402

TOP1 = 'accuracy/top1'
MEAN_CLASS = 'single-label/recall'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and test configs over seeds; report the '
        'last-epoch test accuracy as mean +- std.')
    parser.add_argument(
        '--configs', nargs='+', required=True, help='config files')
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=[0, 1, 2],
        help='random seeds (default: 0 1 2)')
    parser.add_argument(
        '--work-dir',
        default=osp.join('work_dirs', 'compare_methods',
                         time.strftime('%Y%m%d_%H%M%S')),
        help='a new folder; each run goes to <config name>/seed<k> in it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides applied to every config, e.g. '
        'train_cfg.max_epochs=30')
    return parser.parse_args()


def summarise(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for one value).

    Args:
        values (Sequence[float]): One value per seed.

    Returns:
        dict: ``mean``, ``std`` and ``n``.
    """
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return dict(mean=statistics.fmean(values), std=std, n=len(values))


def format_table(summary: Dict[str, Dict[str, dict]]) -> str:
    """Render the per-config summary as a text table.

    Args:
        summary (dict): ``{config: {'top1': stats, 'mean_class': stats}}``
            with stats from :func:`summarise`.

    Returns:
        str: The table.
    """
    width = max([len('config')] + [len(name) for name in summary])
    lines = [
        f'{"config":<{width}}  {"seeds":>5}  {"top-1 (%)":>15}  '
        f'{"mean per-class (%)":>18}'
    ]
    for name, stats in summary.items():
        top1, mean_class = stats['top1'], stats['mean_class']
        lines.append(
            f'{name:<{width}}  {top1["n"]:>5}  '
            f'{top1["mean"]:>7.2f} +- {top1["std"]:<5.2f}  '
            f'{mean_class["mean"]:>9.2f} +- {mean_class["std"]:<5.2f}')
    return '\n'.join(lines)


def config_name(config: str) -> str:
    """Name a config by its path in the repo, else by its file name.

    Args:
        config (str): Config file.

    Returns:
        str: E.g. ``configs/eac/r18_synthfer_noise30``.
    """
    rel = osp.relpath(osp.abspath(config), ROOT)
    if rel.startswith('..'):
        rel = osp.basename(config)
    return osp.splitext(rel)[0]


def run_all(configs: Sequence[str], seeds: Sequence[int], work_dir: str,
            cfg_options: dict) -> Dict[str, List[dict]]:
    """Train and test every config with every seed.

    Args:
        configs (Sequence[str]): Config files.
        seeds (Sequence[int]): Seeds.
        work_dir (str): Parent folder of the runs.
        cfg_options (dict): Overrides for every config.

    Returns:
        dict: ``{config name: [{'seed', 'top1', 'mean_class'}, ...]}``.
    """
    names = [config_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f'--configs lists a config twice: {names}')
    runs: Dict[str, List[dict]] = {}
    for config, name in zip(configs, names):
        for seed in seeds:
            run_dir = osp.join(work_dir, name.replace('/', '_'), f'seed{seed}')
            options = dict(cfg_options, **{'randomness.seed': seed})
            metrics = train_and_test(config, run_dir, options)
            runs.setdefault(name, []).append(
                dict(
                    seed=seed,
                    top1=float(metrics[TOP1]),
                    mean_class=float(metrics[MEAN_CLASS]),
                    work_dir=run_dir))
    return runs


def main() -> None:
    args = parse_args()
    work_dir = osp.abspath(args.work_dir)
    runs = run_all(args.configs, args.seeds, work_dir, args.cfg_options)
    summary = {
        name:
        dict(
            top1=summarise([r['top1'] for r in records]),
            mean_class=summarise([r['mean_class'] for r in records]))
        for name, records in runs.items()
    }
    table = format_table(summary)
    with open(osp.join(work_dir, 'compare_methods.json'), 'w') as f:
        json.dump(
            dict(summary=summary, runs=runs, cfg_options=args.cfg_options),
            f,
            indent=2)
    print('\nClean test split, LAST-epoch model, mean +- sample std over '
          f'seeds {args.seeds}:\n{table}\nRuns and table: '
          f'{osp.join(work_dir, "compare_methods.json")}')


if __name__ == '__main__':
    main()
