# Copyright (c) OpenMMLab. All rights reserved.
"""Train a model from an mmfer (or mmpretrain) config."""
import argparse
import os.path as osp
import sys

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

from mmfer.utils.tool_args import add_run_arguments, parse_run_args
from mmfer.utils.tool_errors import run_tool
from mmfer.utils.work_dir import (RESUME_AUTO, RESUME_LATEST,
                                  check_fresh_work_dir, check_resumable)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a FER model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const=RESUME_LATEST,
        metavar='CHECKPOINT|auto',
        help='resume from the given checkpoint, or, with no value, from the '
        'latest one in the work dir (an error if there is none); '
        f'`--resume {RESUME_AUTO}` resumes if the work dir holds a '
        'checkpoint and starts afresh otherwise')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: bfloat16 autocast on the model\'s device '
        '(CPU or GPU) through FERAmpOptimWrapper; set '
        'optim_wrapper.dtype=float16 in --cfg-options for GPUs without '
        'bfloat16')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the total batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_epochs=10')
    add_run_arguments(parser)
    return parse_run_args(parser)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'FERAmpOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.resume in (RESUME_LATEST, RESUME_AUTO):
        cfg.resume = check_resumable(cfg.work_dir, args.resume)
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main() -> None:
    args = parse_args()
    # Imported once the arguments are parsed: torch takes seconds, --help
    # and a mistyped option need none of it.
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmfer.engine.hooks.checkpoint_fit_hook import \
        configure_checkpoint_fit
    from mmfer.utils.dist_utils import exit_distributed, setup_cpu_distributed
    cfg = merge_args(Config.fromfile(args.config), args)
    configure_checkpoint_fit(cfg, args.allow_partial_load)
    check_fresh_work_dir(cfg.work_dir, cfg.get('resume'))
    setup_cpu_distributed(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    exit_distributed()


if __name__ == '__main__':
    sys.exit(run_tool(main))
