# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils import class_activation_maps

_FEATMAP_HINT = (
    'Give the head the last feature map before pooling: neck=None, and for '
    "VisionTransformer out_type='featmap', for ConvNeXt "
    'gap_before_final_norm=False.')


@MODELS.register_module()
class EACHead(LinearClsHead):
    """Erasing Attention Consistency head (Zhang et al., ECCV 2022).

    Global average pooling and a linear classifier on the backbone's last
    feature map. Training uses two views, the image and its mirror
    (:class:`FERClassifier` provides both)::

        loss = CE(fc(gap(F1)), y) + lam * mean((M1 - flip_width(M2)) ** 2)

    where ``M = class_activation_maps(F, fc.weight.detach())`` holds the maps
    of **all** classes of a view. The logits of the flipped view are not
    trained on (EAC's "imbalanced framework"), and the attention term never
    reaches the classifier. Prediction uses one view, like
    :class:`LinearClsHead`.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the feature map.
        loss (dict): Classification loss. Defaults to
            ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        att_loss (dict): Attention consistency loss; its ``loss_weight`` is
            EAC's ``lam``. Defaults to
            ``dict(type='AttentionConsistencyLoss', loss_weight=5.0)``.
        detach_cam_weight (bool): Build the maps from the detached classifier
            weight, as EAC and GSMC do. Defaults to True.
        init_cfg (dict, optional): Initialisation of the classifier. None
            keeps PyTorch's default ``nn.Linear`` initialisation, as the
            official code. Defaults to None.
        **kwargs: Other arguments of :class:`LinearClsHead` (``topk``,
            ``cal_acc``).
    """

    #: :class:`FERClassifier` feeds this head the image and a second view.
    num_views = 2

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 att_loss: dict = dict(
                     type='AttentionConsistencyLoss', loss_weight=5.0),
                 detach_cam_weight: bool = True,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss=loss,
            init_cfg=init_cfg,
            **kwargs)
        if not isinstance(att_loss, nn.Module):
            att_loss = MODELS.build(att_loss)
        self.att_loss = att_loss
        self.detach_cam_weight = detach_cam_weight

    def feature_map(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Return the last-stage feature map, checking its shape.

        Args:
            feats (tuple[Tensor]): Backbone (or neck) outputs.

        Returns:
            torch.Tensor: ``(N, C, H, W)``.
        """
        feat = feats[-1]
        if feat.dim() != 4:
            raise ValueError(
                f'{type(self).__name__} needs an (N, C, H, W) feature map, '
                f'got shape {tuple(feat.shape)}. {_FEATMAP_HINT}')
        return feat

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Global average pooling of the last feature map.

        Args:
            feats (tuple[Tensor]): Backbone (or neck) outputs.

        Returns:
            torch.Tensor: ``(N, C)``.
        """
        return self.feature_map(feats).mean(dim=(2, 3))

    def cams(self, feat: torch.Tensor) -> torch.Tensor:
        """Class activation maps of every class for a feature map.

        Args:
            feat (torch.Tensor): ``(N, C, H, W)``.

        Returns:
            torch.Tensor: ``(N, num_classes, H, W)``.
        """
        weight = self.fc.weight
        if self.detach_cam_weight:
            weight = weight.detach()
        return class_activation_maps(feat, weight)

    def loss(self,
             feats: Tuple[torch.Tensor],
             data_samples: List[DataSample],
             view2_feats: Optional[Tuple[torch.Tensor]] = None,
             **kwargs) -> dict:
        """Cross-entropy on view 1 plus flip attention consistency.

        Args:
            feats (tuple[Tensor]): Features of the original view.
            data_samples (list[DataSample]): Annotations of the batch.
            view2_feats (tuple[Tensor]): Features of the flipped view.
            **kwargs: Passed to the classification loss.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_att``.
        """
        _, losses = self._view_losses(feats, data_samples, view2_feats,
                                      **kwargs)
        return losses

    def _view_losses(self, feats: Tuple[torch.Tensor],
                     data_samples: List[DataSample],
                     view2_feats: Optional[Tuple[torch.Tensor]],
                     **kwargs) -> Tuple[torch.Tensor, dict]:
        if view2_feats is None:
            raise ValueError(
                f'{type(self).__name__} trains on an image and its flipped '
                "view; use it in type='FERClassifier' (or a system built on "
                'it), which runs the backbone on both views (one pass per '
                "view with view_batching='separate', the default).")
        feat = self.feature_map(feats)
        cls_score = self.fc(feat.mean(dim=(2, 3)))
        losses = self._get_loss(cls_score, data_samples, **kwargs)
        losses['loss_cls'] = losses.pop('loss')
        losses['loss_att'] = self.att_loss(
            self.cams(feat), self.cams(self.feature_map(view2_feats)))
        return cls_score, losses
