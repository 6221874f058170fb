# Copyright (c) OpenMMLab. All rights reserved.
"""Test-only hook, imported through a config's ``custom_imports``."""
import json
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


@HOOKS.register_module()
class SaveRankSampleIdxHook(Hook):
    """Save the ``sample_idx`` of every training sample this rank loaded,
    in order, to ``rank{r}_sample_idx.json``."""

    def before_train(self, runner) -> None:
        self.indices = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.indices += [
            int(s.sample_idx) for s in data_batch['data_samples']
        ]

    def after_train(self, runner) -> None:
        with open(
                osp.join(runner.work_dir,
                         f'rank{runner.rank}_sample_idx.json'), 'w') as f:
            json.dump(self.indices, f)
