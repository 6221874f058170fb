# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseAveragedModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.momentum_teacher import MomentumTeacherMixin, build_teacher
from .fer_classifier import FERClassifier
from .fer_system import FERSystem, PreprocessorCfg

TEACHER_MODES = ('train', 'eval')
PREDICTORS = ('student', 'teacher')


@MODELS.register_module()
class MeanTeacherClassifier(MomentumTeacherMixin, FERSystem):
    """A student :class:`FERClassifier` and its mean teacher (GSMC).

    The teacher is a parameter EMA of the student (a momentum teacher, see
    :mod:`mmfer.models.utils.momentum_teacher`, built from ``ema``), updated
    after every real optimiser step by :class:`mmfer.engine.MeanTeacherHook`,
    which must be in ``custom_hooks``; without it, ``loss()`` warns once the
    teacher has missed two training steps. At each training step the
    student computes its views (as its ``view_batching`` says), the teacher
    gives logits on one view without gradients, and the student's head
    receives both (``teacher_logits``).

    Args:
        student (dict | FERClassifier): The student classifier; ``type``
            defaults to ``'FERClassifier'`` and ``backbone`` to the system's.
        backbone (dict, optional): The student's backbone when ``student``
            names none, so that one line swaps it. Defaults to None.
        ema (dict): Config of an mmengine averaged model
            (``ExponentialMovingAverage``-style, ``model`` is filled in).
            The default, ``MomentumAnnealingEMA`` with ``momentum=0.001``
            and ``gamma=1``, is GSMC's schedule: the source weight
            ``max(0.001, 1 / (1 + step))`` equals
            ``1 - alpha`` with ``alpha = min(1 - 1 / (step + 1), 0.999)``;
            parameters only, so ``update_buffers=False`` (buffers are then
            copied from the student; the train-mode teacher never uses
            them).
        teacher_view (int): Index of the student view fed to the teacher
            (GSMC: 1, the flipped image). Defaults to 1.
        teacher_mode (str): ``'train'`` runs the teacher with batch-statistic
            BatchNorm (GSMC never calls ``teacher.eval()``), ``'eval'`` with
            its running statistics. Defaults to ``'train'``.
        predict_with (str): ``'student'`` (GSMC evaluates the student) or
            ``'teacher'``. Defaults to ``'student'``.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            student's.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 student: Union[dict, FERClassifier],
                 backbone: Optional[dict] = None,
                 ema: dict = dict(
                     type='MomentumAnnealingEMA',
                     momentum=0.001,
                     gamma=1,
                     update_buffers=False),
                 teacher_view: int = 1,
                 teacher_mode: str = 'train',
                 predict_with: str = 'student',
                 data_preprocessor: PreprocessorCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        if teacher_mode not in TEACHER_MODES:
            raise ValueError(f'teacher_mode={teacher_mode!r} must be one of '
                             f'{TEACHER_MODES}.')
        if predict_with not in PREDICTORS:
            raise ValueError(f'predict_with={predict_with!r} must be one of '
                             f'{PREDICTORS}.')
        student = self.build_network(student, backbone)
        super().__init__(
            data_preprocessor,
            init_cfg,
            default_preprocessor=student.data_preprocessor)
        self.student = student
        if not 0 <= teacher_view < student.num_views:
            raise ValueError(
                f'teacher_view={teacher_view} but the student trains on '
                f'{student.num_views} view(s).')
        self.teacher = build_teacher(ema, student)
        self.teacher_view = teacher_view
        self.teacher_mode = teacher_mode
        self.predict_with = predict_with
        self.reset_teacher()

    def teacher_pair(self) -> Tuple[BaseAveragedModel, nn.Module]:
        """The teacher and the student it follows."""
        return self.teacher, self.student

    @torch.no_grad()
    def teacher_logits(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits of the teacher on its view, without gradients.

        Args:
            views (Sequence[Tensor]): The student's training views.

        Returns:
            torch.Tensor: ``(N, num_classes)`` logits.
        """
        teacher = self.teacher.module
        was_training = teacher.training
        teacher.train(self.teacher_mode == 'train')
        logits = teacher(views[self.teacher_view], mode='tensor')
        teacher.train(was_training)
        return logits

    def loss(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
             data_samples: List[DataSample]) -> dict:
        """Student losses with the teacher's logits.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.
            data_samples (list[DataSample]): Annotations.

        Returns:
            dict[str, Tensor]: Losses.
        """
        self.warn_if_teacher_is_frozen()
        views = self.student.make_views(inputs)
        feats = self.student.extract_view_feats(views)
        kwargs = dict(teacher_logits=self.teacher_logits(views))
        if len(feats) > 1:
            kwargs['view2_feats'] = feats[1]
        return self.student.head.loss(feats[0], data_samples, **kwargs)

    @property
    def predictor(self) -> FERClassifier:
        """FERClassifier: The network used for prediction."""
        if self.predict_with == 'teacher':
            return self.teacher.module
        return self.student

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with one network on one view.

        Args:
            inputs (Tensor): ``(N, C, H, W)`` images.
            data_samples (list[DataSample], optional): Annotations.
            **kwargs: Passed to the head's ``predict``.

        Returns:
            list[DataSample]: Predictions.
        """
        return self.predictor.predict(inputs, data_samples, **kwargs)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'):
        """Features of the predicting network, see
        :meth:`ImageClassifier.extract_feat`."""
        return self.predictor.extract_feat(inputs, stage=stage)

    def forward_tensor(
            self, inputs: Union[torch.Tensor,
                                Sequence[torch.Tensor]]) -> torch.Tensor:
        """The predicting network's logits.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.

        Returns:
            torch.Tensor: ``(N, num_classes)``.
        """
        return self.predictor(inputs, mode='tensor')
