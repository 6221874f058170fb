# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple, Union

import numpy as np
import torch

from mmfer.registry import DEVICE_AUGMENTS
from .base import BaseDeviceAugment, check_probability, box_sides, params_on

# The ImageNet mean in BGR: 0 after FERDataPreprocessor's normalisation.
IMAGENET_MEAN_BGR = (103.53, 116.28, 123.675)


@DEVICE_AUGMENTS.register_module()
class DeviceRandomErasing(BaseDeviceAugment):
    """Erase a random box of each image with a probability, on the device.

    The device counterpart of torchvision's ``RandomErasing(p, scale,
    ratio, value)``, which EAC, GSMC and ReSup run on the normalised
    tensor: with probability ``prob`` up to 10 boxes are drawn (area share
    uniform in ``scale``, height/width log-uniform in ``ratio``, sides
    rounded); the first that is smaller than the image in both sides is
    placed uniformly and filled, and if none is, the image stays as it is.
    Given the same box, the result equals ``torchvision``'s
    ``F.erase(img, top, left, h, w, v)``.

    The box is filled with ``fill`` in pixel units before normalisation:
    the default, the ImageNet mean in BGR, is exactly 0 after
    ``FERDataPreprocessor``'s ImageNet normalisation of BGR-loaded images
    (``to_rgb=True``, mmfer's configs), i.e. torchvision's ``value=0``.
    Unlike mmpretrain's ``RandomErasing`` on the uint8 image, the fill is
    not rounded to whole pixel levels, and an oversized box is redrawn
    rather than clipped.

    Args:
        prob (float): Probability of erasing an image. Defaults to 0.5.
        scale (tuple[float, float]): Range of the box's share of the image
            area. Defaults to ``(0.02, 0.33)``.
        ratio (tuple[float, float]): Range of the box's height / width.
            Defaults to ``(0.3, 3.3)``.
        fill (float | Sequence[float]): The fill, one value or one per
            channel in the loaded channel order, in pixel units. Defaults
            to the ImageNet mean in BGR.
    """

    def __init__(
            self,
            prob: float = 0.5,
            scale: Tuple[float, float] = (0.02, 0.33),
            ratio: Tuple[float, float] = (0.3, 3.3),
            fill: Union[float, Sequence[float]] = IMAGENET_MEAN_BGR) -> None:
        check_probability(prob)
        if not 0.0 <= scale[0] <= scale[1] <= 1.0:
            raise ValueError(f'scale={scale} must be (min, max) with '
                             '0 <= min <= max <= 1.')
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(
                f'ratio={ratio} must be (min, max) with 0 < min <= max.')
        self.prob = prob
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.fill = fill

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw the box: ``(top, left, h, w)``, all 0 for none.

        See :meth:`BaseDeviceAugment.draw` for the arguments.

        Returns:
            Sequence[int]: The box to erase.
        """
        if rng.random() >= self.prob:
            return (0, 0, 0, 0)
        for h, w in box_sides(rng, height * width, self.scale, self.ratio):
            if h < height and w < width:
                top = rng.integers(0, height - h + 1)
                left = rng.integers(0, width - w + 1)
                return (top, left, h, w)
        return (0, 0, 0, 0)

    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Fill the drawn boxes.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            params (np.ndarray): ``(N, 4)`` boxes ``(top, left, h, w)``.

        Returns:
            torch.Tensor: The batch with the boxes filled.
        """
        top, left, h, w = params_on(params, inputs).unbind(1)
        rows = torch.arange(inputs.size(-2), device=inputs.device)
        cols = torch.arange(inputs.size(-1), device=inputs.device)
        in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
        box = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        fill = inputs.new_tensor(self.fill).view(-1, 1, 1)
        return torch.where(box, fill, inputs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'scale={self.scale}, ratio={self.ratio}, fill={self.fill})')
