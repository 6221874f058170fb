# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import Runner

from mmfer.utils.work_dir import check_fresh_work_dir


def train_and_test(config: str,
                   work_dir: str,
                   cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Train a config, then evaluate its last-epoch model on the test split.

    Args:
        config (str): Path of the config file.
        work_dir (str): A new folder for logs and checkpoints.
        cfg_options (dict, optional): Config overrides, e.g.
            ``{'randomness.seed': 1}``.

    Returns:
        dict: The test metrics of the last-epoch model (``accuracy/top1``,
        ``single-label/recall`` = mean per-class accuracy, ...).
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = osp.abspath(work_dir)
    check_fresh_work_dir(cfg.work_dir, resume=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.test()
