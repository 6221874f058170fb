# Copyright (c) OpenMMLab. All rights reserved.
"""Command-line options that ``tools/train.py`` and ``tools/test.py``
share (no torch import: ``--help`` stays fast)."""
import argparse
import os

from .compat.allow_pickle import add_allow_pickle_argument


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add checkpoint-loading and launcher options to a tool's parser.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    add_allow_pickle_argument(parser)
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='load only the tensors of the checkpoint (--resume, load_from, '
        'the tested checkpoint) that fit the model, with a warning naming '
        'the others, instead of refusing a checkpoint of another model')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help='set by torch.distributed.launch for each process; leave it '
        'out (torchrun and tools/dist_*.sh use LOCAL_RANK)')


def parse_run_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; pass ``--local_rank`` on as ``LOCAL_RANK``.

    Args:
        parser (argparse.ArgumentParser): A parser with
            :func:`add_run_arguments`'s options.

    Returns:
        argparse.Namespace: The arguments.
    """
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
