# Copyright (c) OpenMMLab. All rights reserved.
"""Test-only hooks, imported through a config's ``custom_imports``."""
import os
import signal

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL the process before global iteration ``$MMFER_KILL_AT_ITER``.

    Simulates a crash (OOM killer, pre-emption) mid-epoch. Inactive when the
    variable is unset.
    """

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        kill_at = os.environ.get('MMFER_KILL_AT_ITER')
        if kill_at is not None and runner.iter == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
