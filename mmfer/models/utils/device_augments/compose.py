# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence, Union

import torch
from mmpretrain.structures import DataSample

from mmfer.registry import DEVICE_AUGMENTS
from .base import BaseDeviceAugment

AugmentList = Sequence[Union[dict, BaseDeviceAugment]]


def read_aug_seeds(data_samples: Optional[Sequence[DataSample]],
                   num: int) -> List[int]:
    """The ``aug_seed`` of every sample of a batch.

    Args:
        data_samples (Sequence[DataSample], optional): The batch's samples.
        num (int): The batch size.

    Returns:
        list[int]: One seed per sample.
    """
    seeds = [sample.get('aug_seed') for sample in data_samples or []]
    if len(seeds) != num or None in seeds:
        missing = num - sum(seed is not None for seed in seeds)
        raise ValueError(
            f'Device augments draw each sample\'s augmentation from its '
            f'aug_seed, which {missing} of the {num} samples of this batch '
            'lack: add dict(type=\'DrawDeviceAugmentSeed\') to the train '
            'pipeline before dict(type=\'PackFERInputs\').')
    return [int(seed) for seed in seeds]


def _build_augments(augments: AugmentList) -> List[BaseDeviceAugment]:
    built = [
        DEVICE_AUGMENTS.build(aug) if isinstance(aug, dict) else aug
        for aug in augments
    ]
    for aug in built:
        if not isinstance(aug, BaseDeviceAugment):
            raise TypeError(
                f'{aug!r} is not a device augment (DeviceRandomFlip, '
                'DeviceRandomErasing, DeviceRandomCrop, '
                'DeviceRandomResizedCrop, DeviceGaussianNoise); Mixup and '
                'CutMix belong in data_preprocessor.batch_augments.')
    return built


class ComposeDeviceAugments:
    """The device augments of each training view.

    Two forms:

    - A list of augments: applied, in order, to every view the batch has
      (one, or each view of a ``MultiView`` pipeline, with its own draw).
    - ``dict(views=[list_1, list_2, ...])``: one list per view. A batch
      with one image per sample is fanned out into ``len(views)`` views,
      each the raw batch through its own list, so the loader ships one
      image per sample; a ``MultiView`` batch must have as many views.

    Augment ``k`` of view ``v`` draws a sample's parameters from
    ``(aug_seed, k, v)`` only.

    Args:
        augments (list | dict): Augment configs or built augments, in one
            of the two forms.
    """

    def __init__(self, augments: Union[AugmentList, dict]) -> None:
        self.per_view = isinstance(augments, dict)
        if self.per_view:
            if set(augments) != {'views'} or not augments['views']:
                raise ValueError(
                    f'device_augments={augments!r}: a dict must be '
                    'dict(views=[[...], [...]]), one non-empty list of '
                    'augments per view; give a plain list to augment every '
                    'view alike.')
            self.views = [_build_augments(v) for v in augments['views']]
        else:
            self.views = [_build_augments(augments)]

    def __call__(self, batches: Sequence[torch.Tensor],
                 aug_seeds: Sequence[int]) -> List[torch.Tensor]:
        """Augment the views of a batch.

        Args:
            batches (Sequence[Tensor]): One float ``(N, C, H, W)`` batch in
                pixel units per view the loader made.
            aug_seeds (Sequence[int]): One seed per sample.

        Returns:
            list[Tensor]: The augmented views.
        """
        if not self.per_view:
            plans = self.views * len(batches)
        elif len(batches) == 1:
            batches, plans = list(batches) * len(self.views), self.views
        elif len(batches) == len(self.views):
            plans = self.views
        else:
            raise ValueError(
                f'device_augments lists {len(self.views)} views but the '
                f'pipeline made {len(batches)}: remove the MultiView '
                'transform to let the device make the views, or list one '
                'augment list per pipeline view.')
        return [
            self._augment(batch, augs, aug_seeds, view)
            for view, (batch, augs) in enumerate(zip(batches, plans))
        ]

    @staticmethod
    def _augment(batch: torch.Tensor, augments: List[BaseDeviceAugment],
                 aug_seeds: Sequence[int], view: int) -> torch.Tensor:
        for position, aug in enumerate(augments):
            batch = aug(batch, aug_seeds, position, view)
        return batch

    def __repr__(self) -> str:
        return f'{type(self).__name__}(views={self.views})'
