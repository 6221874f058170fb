# Copyright (c) OpenMMLab. All rights reserved.
"""The `make demo` run: SynthFER at 30% label noise, trained and tested.

Generates the embedded SynthFER dataset if it is missing, trains each
method's SynthFER config from scratch, evaluates the last-epoch model on the
clean test split and prints top-1 and mean per-class accuracy side by side.
Runs on the GPU when there is one.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import mmfer  # noqa: E402,F401
from mmfer.apis import train_and_test  # noqa: E402

METHODS = {
    'baseline (CE)': 'configs/baseline/r18_synthfer_noise30.py',
    'EAC': 'configs/eac/r18_synthfer_noise30.py',
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--data-root', default=osp.join(ROOT, 'data', 'synthfer'))
    parser.add_argument(
        '--work-dir',
        default=osp.join(ROOT, 'work_dirs', 'demo',
                         time.strftime('%Y%m%d_%H%M%S')))
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'dataset_converters', 'make_synthfer.py'),
        '--out', args.data_root
    ], check=True)
    results = {}
    for method, config in METHODS.items():
        options = {
            'randomness.seed': args.seed,
            'train_dataloader.dataset.data_root': args.data_root,
            'val_dataloader.dataset.data_root': args.data_root,
            'test_dataloader.dataset.data_root': args.data_root,
        }
        # configs/<method>/<name>.py -> <method>_<name>: the methods'
        # SynthFER configs share their file name
        folder, name = osp.split(osp.splitext(config)[0])
        work_dir = osp.join(args.work_dir, f'{osp.basename(folder)}_{name}')
        start = time.time()
        metrics = train_and_test(osp.join(ROOT, config), work_dir, options)
        results[method] = (metrics, time.time() - start, work_dir)
    print_table(results)


def print_table(results: dict) -> None:
    """Print last-epoch accuracies, and each run's peak for reference.

    Args:
        results (dict): ``{method: (test metrics, seconds, work dir)}``.
    """
    print('\nSynthFER, 30% symmetric label noise, clean test split, '
          'LAST-epoch model (the headline):')
    print(f'{"method":<16}{"top-1 (%)":>11}{"mean per-class (%)":>20}'
          f'{"peak top-1 (epoch)":>20}{"time (s)":>10}  work dir')
    for method, (metrics, seconds, work_dir) in results.items():
        peak = _peak(work_dir)
        print(f'{method:<16}{metrics["accuracy/top1"]:>11.2f}'
              f'{metrics["single-label/recall"]:>20.2f}{peak:>20}'
              f'{seconds:>10.0f}  {work_dir}')
    print('Peak: the best epoch on the test split, for reference only. A '
          'peak well above the last epoch means the noisy labels were '
          'memorised.')


def _peak(work_dir: str) -> str:
    report = osp.join(work_dir, 'fer_results.json')
    if not osp.isfile(report):
        return 'n/a'
    with open(report) as f:
        best = json.load(f)['best_epoch']
    return f'{best["top1"]:.2f} ({best["epoch"]})'


if __name__ == '__main__':
    main()
