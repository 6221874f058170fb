# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any

import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS


def is_multi_view(inputs: Any) -> bool:
    """Whether a collated ``inputs`` holds several views of each sample.

    mmpretrain's :class:`MultiView` makes ``img`` a list of views; after
    ``pseudo_collate`` the batch is a list of views, each a sequence of
    ``(C, H, W)`` tensors, and after ``default_collate`` a list of
    ``(N, C, H, W)`` tensors. A single view is a tensor or a list of
    ``(C, H, W)`` tensors.

    Args:
        inputs (Any): The ``inputs`` of a data batch.

    Returns:
        bool: True for a multi-view batch.
    """
    if not isinstance(inputs, (list, tuple)) or not inputs:
        return False
    first = inputs[0]
    return isinstance(first, (list, tuple)) or (torch.is_tensor(first)
                                                and first.dim() == 4)


@MODELS.register_module()
class FERDataPreprocessor(ClsDataPreprocessor):
    """:class:`ClsDataPreprocessor` that also takes several views per sample.

    A single-view batch is processed exactly as by ``ClsDataPreprocessor``.
    A multi-view batch (from mmpretrain's ``MultiView`` transform, e.g. EAC's
    two independently augmented views) has each view normalised the same
    way and is returned as a list of ``(N, C, H, W)`` tensors, one per view,
    which :class:`FERClassifier` runs through the backbone as one batch.

    Args:
        **kwargs: Arguments of
            :class:`mmpretrain.models.utils.ClsDataPreprocessor`.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise every view and format the labels.

        Args:
            data (dict): The data batch from the dataloader.
            training (bool): Whether training-time batch augments may run.

        Returns:
            dict: ``inputs`` (a tensor, or a list of tensors for several
            views) and ``data_samples``.
        """
        views = data['inputs']
        if not is_multi_view(views):
            return super().forward(data, training)
        if training and self.batch_augments is not None:
            raise ValueError(
                'Batch augments (Mixup/CutMix in train_cfg) would mix every '
                'view differently; they are not supported with multi-view '
                'inputs. Remove train_cfg.augments or the MultiView '
                'transform.')
        first = super().forward(dict(data, inputs=views[0]), training)
        others = [
            super(FERDataPreprocessor,
                  self).forward(dict(inputs=view), training)['inputs']
            for view in views[1:]
        ]
        return dict(
            inputs=[first['inputs']] + others,
            data_samples=first['data_samples'])
