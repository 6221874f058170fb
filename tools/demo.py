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
numbers. With several cores, runs go on at once in worker processes
(``--jobs``), each with its own threads: that changes the wall time only.
"""
import argparse
import json
import multiprocessing
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Optional, Sequence, Tuple

import mmfer  # noqa: F401
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

METHODS = {
    'baseline (CE)': 'configs/baseline/r18_synthfer_noise30.py',
    'EAC': 'configs/eac/r18_synthfer_noise30.py',
    'ReSup': 'configs/resup/r18_synthfer_noise30.py',
    'ReSup-EAC': 'configs/resup/resup-eac_r18_synthfer_noise30.py',
    'LA-Net': 'configs/lanet/r18_synthfer_noise30.py',
    'LA-Net-EAC': 'configs/lanet/lanet-eac_r18_synthfer_noise30.py',
}
# The baseline, one method of each kind (one network with a consistency
# loss; two networks that weight each other's samples): on 2 CPU cores the
# three runs fit in the demo's time with two at once. ReSup-EAC trains two
# EAC networks, as long as the other three together, and LA-Net two towers
# plus a momentum copy: ask for them with --methods.
DEFAULT_METHODS = ('baseline (CE)', 'EAC', 'ReSup')
METHOD_KEYS = {m.lower().replace(' (ce)', ''): m for m in METHODS}
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
        '--methods',
        nargs='+',
        choices=sorted(METHOD_KEYS),
        default=[m.lower().replace(' (ce)', '') for m in DEFAULT_METHODS],
        help='methods to train and test (default: baseline eac resup)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=None,
        help='runs at once, each in its own process with --threads torch '
        'threads (default: on a CPU as many as the cores allow, on a GPU 1); '
        'the printed numbers do not depend on it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides for every config, e.g. train_cfg.max_epochs=2')
    return parser.parse_args(argv)


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import torch  # noqa: E402

from mmfer.apis import train_and_test  # noqa: E402


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
    methods = [METHOD_KEYS[key] for key in args.methods]
    jobs = min(args.jobs or default_jobs(args.threads), len(methods))
    results = run_methods(methods, args, jobs)
    print_table(results, generation, time.time() - start, args.threads, jobs)
    return results


def default_jobs(threads: int) -> int:
    """Runs at once: 1 on a GPU, else as many as the cores give threads.

    Args:
        threads (int): Torch threads per run.

    Returns:
        int: The number of runs at once.
    """
    if torch.cuda.is_available():
        return 1
    return max(1, (os.cpu_count() or 1) // threads)


def run_method(config: str,
               work_dir: str,
               options: dict,
               threads: int,
               log_file: Optional[str] = None) -> Tuple[dict, float]:
    """Train and test one config.

    Args:
        config (str): Config path, relative to the repository.
        work_dir (str): A new folder for the run.
        options (dict): Config overrides.
        threads (int): Torch threads.
        log_file (str, optional): Send this process's output there (runs
            in worker processes would interleave their logs otherwise).

    Returns:
        tuple: The test metrics and the seconds the run took.
    """
    if log_file is not None:
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    torch.set_num_threads(threads)
    start = time.time()
    metrics = train_and_test(osp.join(ROOT, config), work_dir, options)
    return metrics, time.time() - start


def run_methods(methods: Sequence[str], args: argparse.Namespace,
                jobs: int) -> Dict[str, tuple]:
    """Run the methods one after another here, or ``jobs`` at once in
    worker processes.

    Args:
        methods (Sequence[str]): Keys of :data:`METHODS`.
        args (argparse.Namespace): The parsed command line.
        jobs (int): Runs at once.

    Returns:
        dict: ``{method: (test metrics, seconds, work dir)}`` in the order
        of ``methods``.
    """
    os.makedirs(args.work_dir, exist_ok=True)
    options = run_options(args)
    work_dirs = {
        m: osp.join(args.work_dir, work_dir_name(METHODS[m]))
        for m in methods
    }
    if jobs == 1:
        return {
            m: run_method(METHODS[m], work_dirs[m], options, args.threads) +
            (work_dirs[m], )
            for m in methods
        }
    # spawned, not forked: a fork of a process whose OpenMP threads exist
    # can deadlock; each worker's output goes to <work dir>.log
    with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context('spawn')) as pool:
        futures = {
            m: pool.submit(run_method, METHODS[m], work_dirs[m], options,
                           args.threads, work_dirs[m] + '.log')
            for m in methods
        }
        print(f'Training {", ".join(methods)}, {jobs} at once; logs in '
              f'{args.work_dir}/*.log', flush=True)
        results = {}
        for m in methods:
            metrics, seconds = futures[m].result()
            print(f'{m}: done in {seconds:.0f} s', flush=True)
            results[m] = (metrics, seconds, work_dirs[m])
    return results


def print_table(results: dict, generation: float, total: float,
                threads: int, jobs: int) -> None:
    """Print last-epoch accuracies, each run's peak and the wall times.

    Args:
        results (dict): ``{method: (test metrics, seconds, work dir)}``.
        generation (float): Seconds spent generating (or checking) the data.
        total (float): Seconds of the whole demo.
        threads (int): Torch threads per run.
        jobs (int): Runs at once.
    """
    device = 'GPU' if torch.cuda.is_available() else (
        f'CPU, {jobs} run{"s" if jobs > 1 else ""} at once, {threads} torch '
        f'thread{"s" if threads > 1 else ""} each')
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
