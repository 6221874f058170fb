# Copyright (c) OpenMMLab. All rights reserved.
"""Test-only hook, imported through a config's ``custom_imports``."""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model


@HOOKS.register_module()
class SaveRankStateHook(Hook):
    """Save each rank's final model state to ``rank{r}_state.pth``.

    Runner checkpoints come from rank 0 only; comparing what every rank
    ended with needs each rank's own copy.
    """

    def after_train(self, runner) -> None:
        state = get_ori_model(runner.model).state_dict()
        torch.save({k: v.detach().cpu()
                    for k, v in state.items()},
                   osp.join(runner.work_dir, f'rank{runner.rank}_state.pth'))
