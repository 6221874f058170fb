# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils import flip_width
from ..utils.backbone_channels import (featmap_backbone_cfg, fill_in_channels,
                                       infer_out_channels, takes_in_channels)
from ..utils.pretrained_check import verify_pretrained
from .fer_system import build_data_preprocessor

ViewFeats = Tuple[torch.Tensor, ...]
VIEW_BATCHING = ('joint', 'separate')


@MODELS.register_module()
class FERClassifier(ImageClassifier):
    """Image classifier that trains heads on one or two views of each image.

    A head declares how many views it trains on with a ``num_views``
    attribute (1 when absent, so every mmpretrain head works unchanged).
    For two views, the second is either the horizontal mirror of the input
    batch, made here with :func:`flip_width` (EAC's clean-label path,
    GSMC), or the second view the pipeline made (mmpretrain's
    ``MultiView``; EAC's noisy-label path with independent erasing). The
    head's ``loss`` gets the features of view 1, ``data_samples`` and
    ``view2_feats``; heads that pool themselves get the last feature map
    before pooling (use ``neck=None``).

    Prediction runs the single input view through the backbone once, at the
    cost of a plain :class:`ImageClassifier`.

    Any mmpretrain backbone fits: a backbone config gets the family defaults
    that make it return feature maps (see :func:`featmap_backbone_cfg`), and
    a neck or head config that takes ``in_channels`` and leaves it out gets
    the width of the features it receives, measured by a dry run when the
    model is built.

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config. Defaults to None.
        head (dict, optional): Head config. Defaults to None.
        pretrained (str, optional): Checkpoint of the whole model.
            Defaults to None.
        train_cfg (dict, optional): Batch augments. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='FERDataPreprocessor')``, which also normalises
            multi-view batches.
        view_batching (str): ``'separate'`` runs one backbone call per
            view, view 1 first, like the official EAC and GSMC scripts: each
            view is normalised with its own BatchNorm statistics and the
            running statistics are updated once per view, so a training step
            equals the official one. ``'joint'`` runs all views as one batch
            of ``num_views * N`` images, faster on GPU, but BatchNorm then
            normalises both views with their joint statistics, which changes
            the backbone gradients of a step by as much as the gradients
            themselves; use it only where it is shown to reach the same
            accuracy. Defaults to ``'separate'``.
        check_pretrained (bool): After initialisation, check that every
            submodule with ``init_cfg=dict(type='Pretrained')`` holds the
            checkpoint's tensors, log ``<part> loaded N/M tensors`` and raise
            if some were not loaded. Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 view_batching: str = 'separate',
                 check_pretrained: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        if view_batching not in VIEW_BATCHING:
            raise ValueError(f'view_batching={view_batching!r} must be one '
                             f'of {VIEW_BATCHING}.')
        if not isinstance(data_preprocessor, nn.Module):
            data_preprocessor = dict(data_preprocessor or {})
            data_preprocessor.setdefault('batch_augments', train_cfg)
            data_preprocessor = build_data_preprocessor(data_preprocessor)
        backbone, neck, head = build_with_inferred_channels(
            backbone, neck, head)
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            train_cfg=train_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.view_batching = view_batching
        self.check_pretrained = check_pretrained

    def init_weights(self) -> None:
        """Initialise, then check what the pretrained init configs loaded."""
        super().init_weights()
        if self.check_pretrained:
            verify_pretrained(self, type(self).__name__)

    @property
    def num_views(self) -> int:
        """int: How many views the head trains on (1 or 2)."""
        return int(getattr(self.head, 'num_views', 1))

    def make_views(
        self, inputs: Union[torch.Tensor,
                            Sequence[torch.Tensor]]) -> List[torch.Tensor]:
        """Return the training views of a batch.

        Args:
            inputs (Tensor | Sequence[Tensor]): ``(N, C, H, W)`` images, or
                one such tensor per view from a multi-view pipeline.

        Returns:
            list[Tensor]: ``num_views`` tensors of shape ``(N, C, H, W)``.
        """
        if isinstance(inputs, (list, tuple)):
            views = list(inputs)
        elif self.num_views == 2:
            views = [inputs, flip_width(inputs)]
        else:
            views = [inputs]
        if len(views) != self.num_views:
            raise ValueError(
                f'{type(self.head).__name__} trains on {self.num_views} '
                f'view(s) but the pipeline made {len(views)}. Use one '
                'MultiView transform with as many views as the head needs, '
                'or none to let the classifier mirror the input.')
        return views

    def extract_view_feats(self,
                           views: Sequence[torch.Tensor]) -> List[ViewFeats]:
        """Run every view through the backbone (and neck).

        With ``view_batching='joint'`` this is one call on the concatenated
        batch, split back per view afterwards.

        Args:
            views (Sequence[Tensor]): Views of shape ``(N, C, H, W)``.

        Returns:
            list[tuple[Tensor]]: The features of each view.
        """
        if self.view_batching == 'separate' or len(views) == 1:
            return [tuple(self.extract_feat(view)) for view in views]
        sizes = [view.size(0) for view in views]
        feats = self.extract_feat(torch.cat(list(views)))
        per_stage = [feat.split(sizes) for feat in feats]
        return [
            tuple(stage[i] for stage in per_stage) for i in range(len(views))
        ]

    def loss(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
             data_samples: List[DataSample]) -> dict:
        """Compute the head's losses on the training views.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.
            data_samples (list[DataSample]): Annotations.

        Returns:
            dict[str, Tensor]: Losses.
        """
        feats = self.extract_view_feats(self.make_views(inputs))
        if len(feats) == 1:
            return self.head.loss(feats[0], data_samples)
        return self.head.loss(feats[0], data_samples, view2_feats=feats[1])

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict from the single input view (one backbone call).

        Args:
            inputs (Tensor): ``(N, C, H, W)`` images.
            data_samples (list[DataSample], optional): Annotations.
            **kwargs: Passed to the head's ``predict``.

        Returns:
            list[DataSample]: Predictions.
        """
        if not torch.is_tensor(inputs):
            raise ValueError(
                'predict takes one view: remove the MultiView transform from '
                'the val/test pipeline.')
        return super().predict(inputs, data_samples, **kwargs)


def build_with_inferred_channels(
    backbone: Union[dict, nn.Module], neck: Optional[Union[dict, nn.Module]],
    head: Optional[Union[dict, nn.Module]]
) -> Tuple[nn.Module, Optional[nn.Module], Optional[Union[dict, nn.Module]]]:
    """Build the backbone and neck, filling in the widths they give.

    Args:
        backbone (dict | nn.Module): Backbone config (feature-map defaults
            are filled in) or module.
        neck (dict | nn.Module, optional): Neck config or module; its
            ``in_channels``, if it takes one, defaults to the backbone's
            last output width.
        head (dict | nn.Module, optional): Head config or module; its
            ``in_channels``, if it takes one, defaults to the width of the
            last output of the backbone and neck.

    Returns:
        tuple: The built backbone and neck, and the head config.
    """
    if not isinstance(backbone, nn.Module):
        backbone = MODELS.build(featmap_backbone_cfg(backbone))
    if neck is not None and not isinstance(neck, nn.Module):
        if takes_in_channels(neck):
            neck = fill_in_channels(neck, infer_out_channels(backbone)[-1])
        neck = MODELS.build(neck)
    if head is not None and takes_in_channels(head):
        modules = (backbone, ) if neck is None else (backbone, neck)
        head = fill_in_channels(head, infer_out_channels(*modules)[-1])
    return backbone, neck, head
