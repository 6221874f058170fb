# Copyright (c) OpenMMLab. All rights reserved.
"""The momentum teacher of mmfer's systems: GSMC's mean teacher and LA-Net's
momentum encoder are one mechanism.

The teacher is an mmengine averaged model (``ExponentialMovingAverage``,
``MomentumAnnealingEMA``...) of some online modules, never trained by
gradients. :class:`mmfer.engine.MeanTeacherHook` calls the system's
``update_teacher()`` after every real optimiser step: iterations that only
accumulate gradients and AMP steps skipped for inf/nan gradients leave it
alone. Buffers the averaged model does not average (``update_buffers=False``)
are copied from the online modules at each update; under distributed
training each rank then averages the teacher's floating-point buffers over
the ranks, since mmengine's DDP wrapper does not broadcast buffers, so that
every rank holds the same teacher. The teacher and its update count are in
the system's state dict: checkpoints save them and ``--resume`` restores
them.
"""
import logging
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import BaseAveragedModel, BaseModule
from mmpretrain.registry import MODELS

from mmfer.utils.dist_utils import average_float_buffers


def build_teacher(ema: dict, online: nn.Module) -> BaseAveragedModel:
    """Build the averaged model of ``online``.

    Args:
        ema (dict): Config of an mmengine averaged model; ``model`` is
            filled in.
        online (nn.Module): The modules the teacher follows.

    Returns:
        BaseAveragedModel: The teacher, a frozen copy of ``online``.
    """
    teacher = MODELS.build(dict(ema, model=online))
    # The teacher takes the online weights after their initialisation
    # (reset_teacher), never its own checkpoint: a Pretrained init_cfg left
    # in the copy would have the system's pretrained-load check count the
    # copy, still at its construction weights, as a failed load.
    for module in teacher.modules():
        if isinstance(module, BaseModule):
            module.init_cfg = None
    return teacher


class MomentumTeacherMixin:
    """The teacher side of a system (a :class:`FERSystem` subclass) with a
    momentum teacher built by :func:`build_teacher`.

    A subclass implements :meth:`teacher_pair`, calls :meth:`reset_teacher`
    at the end of ``__init__`` and :meth:`warn_if_teacher_is_frozen` at each
    training step. Initialisation copies the online modules into the teacher
    after mmengine's initialisation and the pretrained-load check.
    """

    # Set by MeanTeacherHook, which updates on real optimiser steps only:
    # then training steps without an update are expected.
    teacher_updated_by_hook = False
    _steps_since_update = 0

    def teacher_pair(self) -> Tuple[BaseAveragedModel, nn.Module]:
        """The teacher and the online modules it follows.

        Returns:
            tuple: ``(teacher, online)``.
        """
        raise NotImplementedError

    def init_weights(self) -> None:
        """Initialise the online modules, then copy them into the teacher."""
        super().init_weights()
        self.reset_teacher()

    @torch.no_grad()
    def reset_teacher(self) -> None:
        """Copy the online modules into the teacher; the next update is
        step 1."""
        teacher, online = self.teacher_pair()
        teacher.steps.zero_()
        # mmengine averaged models copy the source on their first update.
        teacher.update_parameters(online)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """One averaging step of the teacher towards the online modules."""
        teacher, online = self.teacher_pair()
        teacher.update_parameters(online)
        if is_distributed():
            average_float_buffers(teacher.module)
        self._steps_since_update = 0

    def warn_if_teacher_is_frozen(self) -> None:
        """Warn once the teacher has missed two training steps (no hook)."""
        if self.teacher_updated_by_hook:
            return
        self._steps_since_update += 1
        if self._steps_since_update == 3:
            print_log(
                f'{type(self).__name__}: the teacher was not updated for 2 '
                "training steps; add dict(type='MeanTeacherHook') to "
                'custom_hooks.',
                logger='current',
                level=logging.WARNING)
