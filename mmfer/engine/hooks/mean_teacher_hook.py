# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

# Where the count of real optimiser steps is kept in checkpoints.
CKPT_KEY = 'mean_teacher_optimizer_steps'


def train_optimizers(optim_wrapper) -> List[torch.optim.Optimizer]:
    """The torch optimisers behind a runner's optimiser wrapper.

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The wrapper.

    Returns:
        list[Optimizer]: One optimiser per wrapped optimiser.
    """
    if isinstance(optim_wrapper, OptimWrapperDict):
        return [w.optimizer for w in optim_wrapper.values()]
    return [optim_wrapper.optimizer]


@HOOKS.register_module()
class MeanTeacherHook(Hook):
    """Update a system's momentum teacher after every real optimiser step.

    Calls ``update_teacher()`` of the (unwrapped) model: GSMC's mean teacher
    (:class:`mmfer.models.MeanTeacherClassifier`), LA-Net's momentum encoder
    (:class:`mmfer.models.LANetClassifier`), any system with
    :class:`mmfer.models.MomentumTeacherMixin`. The averaging schedule and
    the buffer handling belong to the model. The hook counts the steps the
    optimiser really takes, through a step post-hook on every optimiser of
    the runner's optimiser wrapper (``OptimWrapper`` or
    ``OptimWrapperDict``), and updates the teacher in ``after_train_iter``
    of an iteration that took one. Iterations that only accumulate
    gradients (``optim_wrapper=dict(accumulative_counts=N)`` with
    ``N > 1``) and steps that AMP's loss scaler skips for inf/nan gradients
    do not step the optimiser, so they leave the teacher (and its EMA step
    count) alone. An iteration in which several optimisers step is one
    step.

    The teacher lives in the model's state dict; the hook stores only its
    count of real steps in checkpoints, so that ``--resume`` continues the
    ``interval`` where the run stopped.

    Args:
        interval (int): Update after every ``interval`` real optimiser
            steps (GSMC, LA-Net: 1). Defaults to 1.
    """

    priority = 'NORMAL'  # after the optimiser step, before checkpointing

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'interval={interval} must be >= 1.')
        self.interval = interval
        self.optimizer_steps = 0
        self._stepped = False
        self._handles: list = []

    def before_train(self, runner) -> None:
        """Check the model and watch the optimisers for real steps.

        Runs after ``--resume`` has loaded the optimiser state (which keeps
        the optimiser objects), and replaces the watchers of an earlier
        ``runner.train()`` instead of adding to them.

        Args:
            runner (Runner): The runner.
        """
        model = get_ori_model(runner.model)
        if not callable(getattr(model, 'update_teacher', None)):
            raise TypeError(
                f'MeanTeacherHook updates a momentum teacher, but '
                f'{type(model).__name__} has no update_teacher(); use a '
                "system with one (model=dict(type='MeanTeacherClassifier' "
                "or 'LANetClassifier', ...)) or remove the hook.")
        model.teacher_updated_by_hook = True
        self._remove_watchers()
        self._stepped = False
        self._handles = [
            optimizer.register_step_post_hook(self._on_step)
            for optimizer in train_optimizers(runner.optim_wrapper)
        ]

    def after_train(self, runner) -> None:
        """Stop watching the optimisers.

        Args:
            runner (Runner): The runner.
        """
        self._remove_watchers()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[Sequence] = None) -> None:
        """Move the teacher towards the student if the optimiser stepped.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch.
            outputs (Sequence, optional): Outputs of the step.
        """
        if not self._stepped:
            return
        self._stepped = False
        self.optimizer_steps += 1
        if self.optimizer_steps % self.interval:
            return
        get_ori_model(runner.model).update_teacher()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the count of real optimiser steps.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved.
        """
        checkpoint[CKPT_KEY] = self.optimizer_steps

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the count when resuming (not for ``load_from``).

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        if getattr(runner, '_resume', False):
            self.optimizer_steps = int(checkpoint.get(CKPT_KEY, 0))

    def _on_step(self, optimizer, args, kwargs) -> None:
        self._stepped = True

    def _remove_watchers(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
