# Copyright (c) OpenMMLab. All rights reserved.
"""Evaluate a checkpoint on the test split of a config."""
import argparse
import os.path as osp
import sys

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

from mmfer.utils.tool_args import add_run_arguments, parse_run_args
from mmfer.utils.tool_errors import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a FER model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the test logs')
    parser.add_argument(
        '--out', help='dump predictions or metrics to this pickle file')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        default='pred',
        help='what --out holds')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    add_run_arguments(parser)
    return parse_run_args(parser)


def main() -> None:
    args = parse_args()
    # Imported once the arguments are parsed: torch takes seconds, --help
    # and a mistyped option need none of it.
    from mmengine.fileio import dump
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    from mmpretrain.registry import METRICS

    from mmfer.engine.hooks.checkpoint_fit_hook import \
        configure_checkpoint_fit
    from mmfer.utils.dist_utils import exit_distributed, setup_cpu_distributed
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found.')
    if args.out and osp.exists(args.out):
        raise FileExistsError(
            f'--out {args.out} already exists; choose another file name '
            '(nothing was overwritten).')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    configure_checkpoint_fit(cfg, args.allow_partial_load)
    setup_cpu_distributed(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if args.out and args.out_item == 'pred':
        runner.test_evaluator.metrics.append(
            METRICS.build(dict(type='DumpResults', out_file_path=args.out)))
    metrics = runner.test()
    if args.out and args.out_item == 'metrics':
        dump(metrics, args.out)
    exit_distributed()


if __name__ == '__main__':
    sys.exit(run_tool(main))
