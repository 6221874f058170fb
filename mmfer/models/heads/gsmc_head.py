# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .eac_head import EACHead


@MODELS.register_module()
class GSMCHead(EACHead):
    """GSMC head (Huang, Liu, Zhou, CGI 2024): EAC's flip attention
    consistency plus self-distillation from a mean teacher::

        loss = CE(z, y) + 0.9 * KL(softmax(z_t) || softmax(z))
               + 0.2 * mean((M1 - flip_width(M2)) ** 2)

    ``z`` are the student's logits on the image, ``z_t`` the teacher's logits
    on the flipped image and ``M1, M2`` the student's class activation maps
    of both views. Use it inside :class:`MeanTeacherClassifier`, which
    provides ``z_t``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the feature map.
        distill_loss (dict): Loss between student and teacher logits.
            Defaults to
            ``dict(type='KLDivergenceLoss', loss_weight=0.9, temperature=1.)``.
        att_loss (dict): Attention consistency loss. Defaults to
            ``dict(type='AttentionConsistencyLoss', loss_weight=0.2)``.
        **kwargs: Other arguments of :class:`EACHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 distill_loss: dict = dict(
                     type='KLDivergenceLoss', loss_weight=0.9,
                     temperature=1.0),
                 att_loss: dict = dict(
                     type='AttentionConsistencyLoss', loss_weight=0.2),
                 **kwargs) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            att_loss=att_loss,
            **kwargs)
        if not isinstance(distill_loss, nn.Module):
            distill_loss = MODELS.build(distill_loss)
        self.distill_loss = distill_loss

    def loss(self,
             feats: Tuple[torch.Tensor],
             data_samples: List[DataSample],
             view2_feats: Optional[Tuple[torch.Tensor]] = None,
             teacher_logits: Optional[torch.Tensor] = None,
             **kwargs) -> dict:
        """Cross-entropy, self-distillation and flip attention consistency.

        Args:
            feats (tuple[Tensor]): Student features of the image.
            data_samples (list[DataSample]): Annotations of the batch.
            view2_feats (tuple[Tensor]): Student features of the flipped
                image.
            teacher_logits (torch.Tensor): ``(N, num_classes)`` teacher
                logits on the flipped image.
            **kwargs: Passed to the classification loss.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_att`` and
            ``loss_distill``.
        """
        if teacher_logits is None:
            raise ValueError(
                'GSMCHead distils from a mean teacher; build the model as '
                "type='MeanTeacherClassifier' with this head in its student.")
        cls_score, losses = self._view_losses(feats, data_samples, view2_feats,
                                              **kwargs)
        losses['loss_distill'] = self.distill_loss(cls_score, teacher_logits)
        return losses
