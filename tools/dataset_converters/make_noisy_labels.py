# Copyright (c) OpenMMLab. All rights reserved.
"""Write a noisy-label file in EAC format from a clean label list.

Example (RAF-DB, 30% symmetric noise, like EAC's noise03.txt)::

    python tools/dataset_converters/make_noisy_labels.py \
        data/rafdb/EmoLabel/list_patition_label.txt \
        data/rafdb/EmoLabel/noise30_seed0.txt --rate 0.3 --seed 0

``--type lanet --seed 0`` writes the labels LA-Net trains on (its in-code
draw; 1,219 / 2,481 / 3,703 flips at 0.1 / 0.2 / 0.3 on RAF-DB).
"""
import argparse
import os.path as osp
import sys
from typing import List

# Kept in sync with mmfer.datasets.noise.NOISE_TYPES (tested); spelled out
# so that --help answers before torch is imported.
NOISE_TYPES = ('symmetric', 'asymmetric', 'lanet')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', help='clean "<name> <label>" list')
    parser.add_argument('out_file', help='noisy label file to write')
    parser.add_argument('--rate', type=float, required=True,
                        help='share of flipped labels in [0, 1)')
    parser.add_argument('--type', choices=NOISE_TYPES, default='symmetric',
                        help='noise model (lanet: LA-Net\'s draw, the 7 '
                        'basic expressions only)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--split-prefix', default='train_',
                        help='only names starting with this are kept '
                        '(RAF-DB: train_); "" keeps all lines')
    parser.add_argument('--label-base', type=int, default=1,
                        help='the label the file uses for class 0 '
                        '(RAF-DB: 1)')
    parser.add_argument('--classes', nargs='+',
                        help='class names in label order (for asymmetric '
                        'and lanet noise and the report; default: '
                        'RAF-DB\'s)')
    return parser.parse_args(argv)


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import numpy as np  # noqa: E402

from mmfer.datasets.noise import (  # noqa: E402
    asymmetric_transition, flip_labels, lanet_flip_labels, noise_summary,
    symmetric_transition)
from mmfer.datasets.rafdb import RAFDB_CLASSES  # noqa: E402
from mmfer.utils.atomic_io import atomic_write_text  # noqa: E402


def read_labels(path: str, prefix: str, base: int, num_classes: int):
    """Read ``<name> <label>`` lines, checking each label."""
    names, labels = [], []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields or not fields[0].startswith(prefix):
                continue
            if len(fields) != 2 or not fields[1].lstrip('-').isdigit() or \
                    not 0 <= int(fields[1]) - base < num_classes:
                sys.exit(f'{path}:{line_no}: expected "<name> <label>" with '
                         f'a label in {base}..{base + num_classes - 1}, got '
                         f'{line.strip()!r}')
            names.append(fields[0])
            labels.append(int(fields[1]) - base)
    if not names:
        sys.exit(f'{path}: no line starts with {prefix!r}; check '
                 '--split-prefix.')
    return names, labels


def draw(clean: List[int], args: argparse.Namespace) -> np.ndarray:
    """Draw the noisy labels.

    Args:
        clean (list[int]): Clean 0-based labels, in file order.
        args (argparse.Namespace): ``type``, ``rate``, ``seed``, ``classes``.

    Returns:
        np.ndarray: The noisy labels.
    """
    if args.type == 'lanet':
        return lanet_flip_labels(clean, args.classes, args.rate, args.seed)
    if args.type == 'symmetric':
        matrix = symmetric_transition(len(args.classes), args.rate)
    else:
        matrix = asymmetric_transition(args.classes, args.rate)
    return flip_labels(clean, matrix, args.seed)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.classes = args.classes or list(RAFDB_CLASSES)
    if osp.exists(args.out_file):
        sys.exit(f'{args.out_file} exists; choose another name (nothing '
                 'was overwritten).')
    names, clean = read_labels(args.ann_file, args.split_prefix,
                               args.label_base, len(args.classes))
    try:
        noisy = draw(clean, args)
    except ValueError as err:  # bad --rate or --classes for --type
        sys.exit(f'--type {args.type}: {err}')
    atomic_write_text(
        args.out_file, ''.join(f'{n} {int(y) + args.label_base}\n'
                               for n, y in zip(names, noisy)))
    report = noise_summary(clean, noisy, args.classes)
    per_class = ', '.join(f'{k} {v:.1%}'
                          for k, v in report['per_class'].items())
    print(f'wrote {args.out_file}: {report["num_noisy"]}/'
          f'{report["num_samples"]} labels flipped ({report["rate"]:.2%}, '
          f'{args.type}, seed {args.seed}); per class: {per_class}')


if __name__ == '__main__':
    main()
