# Copyright (c) OpenMMLab. All rights reserved.
"""The `make demo` run: SynthFER at 30% label noise, trained and tested.

Generates the embedded SynthFER dataset if it is missing, trains each
method's SynthFER config from scratch, evaluates the last-epoch model on the
clean test split and prints top-1 and mean per-class accuracy side by side,
with each run's wall time. Runs on the GPU when there is one.

On a CPU the run is deterministic: the same machine prints the same numbers
every time. It uses one torch thread by default (``--threads``): the split
of a reduction over threads changes the float rounding, so a fixed count
keeps the numbers independent of the machine's core count, and one thread
does not stall when other processes share the cores, as spinning OpenMP
threads do. CPUs with other vector units may still print slightly different
numbers.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time
from typing import Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import mmfer  # noqa: E402,F401
from mmfer.apis import train_and_test  # noqa: E402

METHODS = {
    'baseline (CE)': 'configs/baseline/r18_synthfer_noise30.py',
    'EAC': 'configs/eac/r18_synthfer_noise30.py',
}
# The SynthFER the configs expect (configs/_base_/datasets/synthfer.py),
# rendered at the configs' `img_size`, so that loading needs no resize.
NUM_TRAIN = 2000
NUM_TEST = 700


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--data-root',
        default=osp.join(ROOT, 'data', 'synthfer'),
        help='SynthFER folder, generated there if missing')
    parser.add_argument(
        '--work-dir',
        default=osp.join(ROOT, 'work_dirs', 'demo',
                         time.strftime('%Y%m%d_%H%M%S')),
        help='a new folder for the runs\' logs and checkpoints')
    parser.add_argument('--seed', type=int, default=0, help='training seed')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads on the CPU; the printed numbers are '
        'reproducible for a given number')
    parser.add_argument(
        '--num-train',
        type=int,
        default=NUM_TRAIN,
        help='SynthFER training images to generate')
    parser.add_argument(
        '--num-test',
        type=int,
        default=NUM_TEST,
        help='SynthFER test images to generate')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides for both configs, e.g. train_cfg.max_epochs=2')
    return parser.parse_args(argv)


def run_options(args: argparse.Namespace) -> dict:
    """The config overrides that every method's run gets.

    Args:
        args (argparse.Namespace): The parsed command line.

    Returns:
        dict: Overrides for :func:`mmfer.apis.train_and_test`.
    """
    options = {
        'randomness.seed': args.seed,
        # Only CPU kernels are all deterministic: CUDA's average-pooling
        # backward has no deterministic version and would raise.
        'randomness.deterministic': not torch.cuda.is_available(),
    }
    for split in ('train', 'val', 'test'):
        options[f'{split}_dataloader.dataset.data_root'] = args.data_root
    options.update(args.cfg_options)
    return options


def work_dir_name(config: str) -> str:
    """``configs/<method>/<name>.py`` -> ``<method>_<name>``.

    The methods' SynthFER configs share their file name.

    Args:
        config (str): A config path.

    Returns:
        str: The run's folder name.
    """
    folder, name = osp.split(osp.splitext(config)[0])
    return f'{osp.basename(folder)}_{name}'


def main(argv=None) -> dict:
    """Generate the data, train and test every method, print the table.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if ``None``.

    Returns:
        dict: ``{method: (test metrics, seconds, work dir)}``.
    """
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    # every method's config inherits the baseline's data
    baseline = osp.join(ROOT, METHODS['baseline (CE)'])
    img_size = Config.fromfile(baseline).img_size
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'dataset_converters', 'make_synthfer.py'),
        '--out', args.data_root, '--num-train', str(args.num_train),
        '--num-test', str(args.num_test), '--size', str(img_size)
    ], check=True)
    generation = time.time() - start
    results = {}
    for method, config in METHODS.items():
        work_dir = osp.join(args.work_dir, work_dir_name(config))
        method_start = time.time()
        metrics = train_and_test(
            osp.join(ROOT, config), work_dir, run_options(args))
        results[method] = (metrics, time.time() - method_start, work_dir)
    print_table(results, generation, time.time() - start)
    return results


def print_table(results: dict, generation: float, total: float) -> None:
    """Print last-epoch accuracies, each run's peak and the wall times.

    Args:
        results (dict): ``{method: (test metrics, seconds, work dir)}``.
        generation (float): Seconds spent generating (or checking) the data.
        total (float): Seconds of the whole demo.
    """
    threads = torch.get_num_threads()
    device = 'GPU' if torch.cuda.is_available() else \
        f'CPU, {threads} torch thread{"s" if threads > 1 else ""}'
    print('\nSynthFER, 30% symmetric label noise, clean test split, '
          'LAST-epoch model (the headline):')
    print(f'{"method":<16}{"top-1 (%)":>11}{"mean per-class (%)":>20}'
          f'{"train+test (s)":>16}  work dir')
    for method, (metrics, seconds, work_dir) in results.items():
        print(f'{method:<16}{metrics["accuracy/top1"]:>11.2f}'
              f'{metrics["single-label/recall"]:>20.2f}{seconds:>16.0f}'
              f'  {work_dir}')
    print('\nReference only, NOT a result: the best epoch, selected on the '
          'test split.')
    print(f'{"method":<16}{"peak top-1 (%)":>16}{"mean per-class (%)":>20}'
          f'{"epoch":>7}')
    for method, (_, _, work_dir) in results.items():
        best = _best_epoch(work_dir)
        if best is not None:
            print(f'{method:<16}{best["top1"]:>16.2f}'
                  f'{best.get("mean_class_acc", float("nan")):>20.2f}'
                  f'{best["epoch"]:>7}')
    print('A peak well above the last epoch means the noisy labels were '
          'memorised after it.')
    print(f'\nWall time ({device}): data {generation:.0f} s, '
          + ', '.join(f'{method} {seconds:.0f} s'
                      for method, (_, seconds, _) in results.items())
          + f'; total {total:.0f} s.')


def _best_epoch(work_dir: str) -> Optional[dict]:
    """The best epoch recorded by ``FERReportHook``, or ``None``."""
    report = osp.join(work_dir, 'fer_results.json')
    if not osp.isfile(report):
        return None
    with open(report) as f:
        return json.load(f)['best_epoch']


if __name__ == '__main__':
    main()
