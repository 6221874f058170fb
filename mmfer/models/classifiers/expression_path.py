# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Tuple, Union

import torch
from mmpretrain.structures import DataSample

FEATURE_STAGES = ('backbone', 'neck', 'pre_logits')
Feats = Tuple[torch.Tensor, ...]


class ExpressionPathMixin:
    """Prediction of a two-tower system (:class:`LANetClassifier`): the
    expression tower of ``self.backbone`` (``forward_expression``), then
    ``self.neck`` (or None) and ``self.head``, at the cost of a plain
    classifier; the landmark tower does not run.
    """

    @property
    def num_views(self) -> int:
        """int: How many views the head trains on (1 or 2)."""
        return int(getattr(self.head, 'num_views', 1))

    def _check_single_view(self, inputs) -> None:
        if not torch.is_tensor(inputs):
            raise ValueError(
                'LANetClassifier takes one view per sample (it mirrors the '
                'input itself for a two-view head); remove the MultiView '
                'transform from the pipeline.')

    def _neck(self, feats: Feats) -> Feats:
        return self.neck(feats) if self.neck is not None else feats

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck') -> Union[Feats, torch.Tensor]:
        """Expression features (``stage``: ``'backbone'``, ``'neck'`` or
        ``'pre_logits'``); the landmark tower does not run."""
        if stage not in FEATURE_STAGES:
            raise ValueError(f'stage={stage!r} must be one of '
                             f'{FEATURE_STAGES}.')
        feats = tuple(self.backbone.forward_expression(inputs))
        if stage == 'backbone':
            return feats
        feats = self._neck(feats)
        return feats if stage == 'neck' else self.head.pre_logits(feats)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the expression tower and the head (``kwargs`` go to
        the head's ``predict``)."""
        self._check_single_view(inputs)
        return self.head.predict(
            self.extract_feat(inputs), data_samples, **kwargs)

    def forward_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """The expression tower's ``(N, num_classes)`` logits."""
        return self.head(self.extract_feat(inputs))
