# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np
import torch

from mmfer.registry import DEVICE_AUGMENTS
from ..flip import flip_width
from .base import BaseDeviceAugment, check_probability, params_on


@DEVICE_AUGMENTS.register_module()
class DeviceRandomFlip(BaseDeviceAugment):
    """Mirror each image left-right with a probability, on the device.

    The device counterpart of mmpretrain's ``RandomFlip(prob,
    direction='horizontal')`` and torchvision's ``RandomHorizontalFlip(p)``:
    a flipped image is exactly ``torch.flip(img, [-1])``. With ``prob=1.0``
    as the first augment of a view it makes that view the mirror of the raw
    image (EAC's second view).

    Args:
        prob (float): Probability of flipping an image. Defaults to 0.5.

    Examples:
        >>> flip = DeviceRandomFlip(prob=1.0)
        >>> imgs = torch.arange(4.).view(1, 1, 1, 4)
        >>> flip(imgs, aug_seeds=[7]).flatten().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """

    def __init__(self, prob: float = 0.5) -> None:
        check_probability(prob)
        self.prob = prob

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw whether to flip: ``(flip, )``.

        See :meth:`BaseDeviceAugment.draw` for the arguments.

        Returns:
            Sequence[int]: ``(1, )`` to flip, else ``(0, )``.
        """
        return (int(rng.random() < self.prob), )

    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Flip the drawn images.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            params (np.ndarray): ``(N, 1)`` flip flags.

        Returns:
            torch.Tensor: The batch with the drawn images mirrored.
        """
        flip = params_on(params, inputs).bool().view(-1, 1, 1, 1)
        return torch.where(flip, flip_width(inputs), inputs)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
