# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model


@HOOKS.register_module()
class MeanTeacherHook(Hook):
    """Update a mean teacher after every optimiser step.

    Calls ``update_teacher()`` of the (unwrapped) model, e.g.
    :class:`mmfer.models.MeanTeacherClassifier`, after each training
    iteration; the EMA schedule itself belongs to the model. The teacher
    lives in the model's state dict, so checkpoints need nothing from here.

    Args:
        interval (int): Update every ``interval`` iterations (GSMC: 1).
            Defaults to 1.
    """

    priority = 'NORMAL'  # after the optimiser step, before checkpointing

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'interval={interval} must be >= 1.')
        self.interval = interval

    def before_train(self, runner) -> None:
        """Check that the model has a teacher to update.

        Args:
            runner (Runner): The runner.
        """
        model = get_ori_model(runner.model)
        if not callable(getattr(model, 'update_teacher', None)):
            raise TypeError(
                f'MeanTeacherHook updates a mean teacher, but '
                f'{type(model).__name__} has no update_teacher(); use '
                "model=dict(type='MeanTeacherClassifier', ...) or remove "
                'the hook.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[Sequence] = None) -> None:
        """Move the teacher towards the student.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch.
            outputs (Sequence, optional): Outputs of the step.
        """
        if self.every_n_train_iters(runner, self.interval):
            get_ori_model(runner.model).update_teacher()
