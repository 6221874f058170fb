# Copyright (c) OpenMMLab. All rights reserved.
"""Compare FER methods over seeds: mean +- std of the last epoch.

Trains and tests every config with every seed through
:func:`mmfer.apis.train_and_test` (one run after another, in this process)
and prints, per config, the mean and the sample standard deviation over the
runs of the last-epoch test top-1 and mean per-class accuracy. The table
and every run's numbers are also written to
``<work-dir>/compare_methods.json``.

``--seeds`` sets the training seed (``randomness.seed``: initialisation,
data order, augmentation); the noisy labels stay the config's draw. With
``--noise-seeds`` the label noise is drawn again as well
(``train_dataloader.dataset.noise_seed``, for configs with seeded noise):
every training seed with every noise seed, or seed ``i`` with noise seed
``i`` with ``--paired``. The table says which of the two were varied.

Example::

    python tools/analysis_tools/compare_methods.py \\
        --configs configs/baseline/r18_synthfer_noise30.py \\
                  configs/eac/r18_synthfer_noise30.py \\
        --seeds 0 1 2 --noise-seeds 0 1 2 --paired \\
        --work-dir work_dirs/compare
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TOP1 = 'accuracy/top1'
MEAN_CLASS = 'single-label/recall'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
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
        help='training seeds, randomness.seed (default: 0 1 2)')
    parser.add_argument(
        '--noise-seeds',
        nargs='+',
        type=int,
        default=None,
        help='also redraw the label noise with these seeds '
        '(train_dataloader.dataset.noise_seed); default: keep each '
        "config's noise draw")
    parser.add_argument(
        '--paired',
        action='store_true',
        help='run seed i with noise seed i (the two lists must be equally '
        'long) instead of every seed with every noise seed')
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
    args = parser.parse_args(argv)
    if args.paired and args.noise_seeds is None:
        parser.error('--paired pairs --seeds with --noise-seeds; give '
                     '--noise-seeds too')
    return args


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

from mmfer.apis import train_and_test  # noqa: E402


def summarise(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for one value).

    Args:
        values (Sequence[float]): One value per run.

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
        f'{"config":<{width}}  {"runs":>5}  {"top-1 (%)":>15}  '
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


def seed_pairs(seeds: Sequence[int],
               noise_seeds: Optional[Sequence[int]] = None,
               paired: bool = False) -> List[Tuple[int, Optional[int]]]:
    """The (training seed, noise seed) of each run of one config.

    Args:
        seeds (Sequence[int]): Training seeds.
        noise_seeds (Sequence[int], optional): Noise seeds; ``None`` keeps
            the config's noise draw (noise seed ``None`` in every pair).
        paired (bool): Pair ``seeds[i]`` with ``noise_seeds[i]`` instead of
            taking every combination.

    Returns:
        list[tuple[int, int | None]]: The pairs, training seed major.
    """
    if noise_seeds is None:
        return [(seed, None) for seed in seeds]
    if paired:
        if len(seeds) != len(noise_seeds):
            raise ValueError(
                f'--paired needs as many --seeds ({list(seeds)}) as '
                f'--noise-seeds ({list(noise_seeds)}); give lists of equal '
                'length or drop --paired to run every combination.')
        return list(zip(seeds, noise_seeds))
    return [(seed, noise) for seed in seeds for noise in noise_seeds]


def spread_label(seeds: Sequence[int],
                 noise_seeds: Optional[Sequence[int]] = None,
                 paired: bool = False) -> str:
    """Say what the mean +- std is taken over.

    Args:
        seeds (Sequence[int]): Training seeds.
        noise_seeds (Sequence[int], optional): Noise seeds, if varied.
        paired (bool): Whether the two were paired.

    Returns:
        str: E.g. ``'training seeds [0, 1] x noise seeds [0, 1] (4 runs per
        config)'``.
    """
    runs = len(seed_pairs(seeds, noise_seeds, paired))
    if noise_seeds is None:
        return (f'training seeds {list(seeds)} ({runs} runs per config); '
                "noise draw fixed (each config's noise_seed or noise file)")
    join = 'paired with' if paired else 'x'
    return (f'training seeds {list(seeds)} {join} noise seeds '
            f'{list(noise_seeds)} ({runs} runs per config)')


def noisy_dataset_key(config: str, cfg_options: dict) -> str:
    """The config key of the training set's ``noise_seed``.

    Wrappers (``dict(type='RepeatDataset', dataset=...)``) are followed to
    the innermost dataset.

    Args:
        config (str): Config file.
        cfg_options (dict): Overrides for every config.

    Returns:
        str: E.g. ``'train_dataloader.dataset.noise_seed'``.

    Raises:
        ValueError: If the training set has no seeded label noise, so a
            noise seed would change nothing.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    key, dataset = 'train_dataloader.dataset', cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        key, dataset = f'{key}.dataset', dataset['dataset']
    seeded = (
        dataset.get('noise_rate', 0) > 0
        or dataset.get('noise_transition') is not None)
    if dataset.get('noise_file') is not None or not seeded:
        raise ValueError(
            f'{config}: --noise-seeds needs seeded label noise, but {key} '
            f"has noise_file={dataset.get('noise_file')!r}, "
            f"noise_rate={dataset.get('noise_rate', 0)!r}, "
            f"noise_transition={dataset.get('noise_transition')!r}: a noise "
            'seed would change nothing. Set noise_rate (or '
            'noise_transition) instead of a noise file, e.g. with '
            '--cfg-options, or drop --noise-seeds.')
    return f'{key}.noise_seed'


def plan_runs(configs: Sequence[str],
              seeds: Sequence[int],
              work_dir: str,
              cfg_options: dict,
              noise_seeds: Optional[Sequence[int]] = None,
              paired: bool = False) -> List[dict]:
    """List every run with its overrides, before any training.

    Args:
        configs (Sequence[str]): Config files.
        seeds (Sequence[int]): Training seeds.
        work_dir (str): Parent folder of the runs.
        cfg_options (dict): Overrides for every config.
        noise_seeds (Sequence[int], optional): Noise seeds, if varied.
        paired (bool): Pair seeds and noise seeds.

    Returns:
        list[dict]: ``name``, ``config``, ``seed``, ``noise_seed`` (``None``
        when not varied), ``work_dir`` and ``options`` of each run.
    """
    names = [config_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f'--configs lists a config twice: {names}')
    pairs = seed_pairs(seeds, noise_seeds, paired)
    plan = []
    for config, name in zip(configs, names):
        noise_key = (
            noisy_dataset_key(config, cfg_options)
            if noise_seeds is not None else None)
        for seed, noise_seed in pairs:
            options = dict(cfg_options, **{'randomness.seed': seed})
            leaf = f'seed{seed}'
            if noise_seed is not None:
                options[noise_key] = noise_seed
                leaf += f'_noise{noise_seed}'
            plan.append(
                dict(
                    name=name,
                    config=config,
                    seed=seed,
                    noise_seed=noise_seed,
                    work_dir=osp.join(work_dir, name.replace('/', '_'), leaf),
                    options=options))
    return plan


def run_all(plan: Sequence[dict]) -> Dict[str, List[dict]]:
    """Train and test every planned run.

    Args:
        plan (Sequence[dict]): Runs from :func:`plan_runs`.

    Returns:
        dict: ``{config name: [{'seed', 'noise_seed', 'top1',
        'mean_class', 'work_dir'}, ...]}``.
    """
    runs: Dict[str, List[dict]] = {}
    for run in plan:
        metrics = train_and_test(run['config'], run['work_dir'],
                                 run['options'])
        runs.setdefault(run['name'], []).append(
            dict(
                seed=run['seed'],
                noise_seed=run['noise_seed'],
                top1=float(metrics[TOP1]),
                mean_class=float(metrics[MEAN_CLASS]),
                work_dir=run['work_dir']))
    return runs


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the comparison and print its table.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.
    """
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    try:
        plan = plan_runs(args.configs, args.seeds, work_dir, args.cfg_options,
                         args.noise_seeds, args.paired)
    except ValueError as err:  # every check runs before any training
        sys.exit(f'compare_methods: error: {err}')
    runs = run_all(plan)
    summary = {
        name:
        dict(
            top1=summarise([r['top1'] for r in records]),
            mean_class=summarise([r['mean_class'] for r in records]))
        for name, records in runs.items()
    }
    label = spread_label(args.seeds, args.noise_seeds, args.paired)
    table = format_table(summary)
    with open(osp.join(work_dir, 'compare_methods.json'), 'w') as f:
        json.dump(
            dict(
                summary=summary,
                spread=dict(
                    label=label,
                    seeds=args.seeds,
                    noise_seeds=args.noise_seeds,
                    paired=args.paired),
                runs=runs,
                cfg_options=args.cfg_options),
            f,
            indent=2)
    print('\nClean test split, LAST-epoch model, mean +- sample std over '
          f'{label}:\n{table}\nRuns and table: '
          f'{osp.join(work_dir, "compare_methods.json")}')


if __name__ == '__main__':
    main()
