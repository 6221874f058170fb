# Copyright (c) OpenMMLab. All rights reserved.
"""Generate SynthFER, a procedural facial-expression data set that is laid
out exactly like RAF-DB basic.

Example::

    python tools/dataset_converters/make_synthfer.py --out data/synthfer

Running it again with the same parameters is a no-op, so build scripts may
call it unconditionally.
"""
import argparse
import logging
import sys
import time

# The renderer needs numpy and OpenCV only (``import mmfer`` imports
# neither torch nor mmengine), so generating the data set never does.
from mmfer.synthfer import generate_synthfer


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Generate the SynthFER data set in the RAF-DB basic '
        'layout')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='data set seed')
    parser.add_argument(
        '--num-train', type=int, default=3000, help='training images')
    parser.add_argument(
        '--num-test', type=int, default=700, help='test images')
    parser.add_argument(
        '--size', type=int, default=100, help='image side in pixels')
    parser.add_argument(
        '--ambiguous-ratio',
        type=float,
        default=0.1,
        help='share of faces mixing two neighbouring expressions')
    parser.add_argument(
        '--workers', type=int, default=2, help='rendering processes')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace the output folder whatever it holds, and regenerate '
        'even if it already holds this data set')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Generate the data set.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if ``None``.

    Returns:
        int: The exit status.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    start = time.perf_counter()
    try:
        meta = generate_synthfer(
            args.out,
            seed=args.seed,
            num_train=args.num_train,
            num_test=args.num_test,
            size=args.size,
            ambiguous_ratio=args.ambiguous_ratio,
            workers=args.workers,
            force=args.force)
    except (FileExistsError, ValueError) as err:
        print(f'make_synthfer: error: {err}', file=sys.stderr)
        return 1
    if meta is None:
        print(f'{args.out} already holds SynthFER with the same parameters '
              '(seed, sizes, ambiguous ratio, version); nothing to do')
        return 0
    elapsed = time.perf_counter() - start
    counts = meta['counts']
    print(f'SynthFER written to {args.out}: {counts["train"]["total"]} train '
          f'+ {counts["test"]["total"]} test images '
          f'({meta["ambiguous_count"]} ambiguous), '
          f'{args.size}x{args.size} px, seed {args.seed}, '
          f'{elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
