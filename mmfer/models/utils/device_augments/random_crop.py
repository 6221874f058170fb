# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models.utils import to_2tuple

from mmfer.registry import DEVICE_AUGMENTS
from .base import BaseDeviceAugment, check_probability, params_on


@DEVICE_AUGMENTS.register_module()
class DeviceRandomCrop(BaseDeviceAugment):
    """Crop each image at a random place of its padded copy, on the device.

    The device counterpart of torchvision's ``RandomCrop(size, padding,
    fill=fill)`` on a PIL image (ReSup's and GSMC's crop) and of
    mmpretrain's ``RandomCrop(crop_size, padding, pad_val=fill)``: the
    image is padded by ``padding`` pixels on every side with ``fill``, then
    a ``size`` window is cut at a uniform position. ``fill`` is in pixel
    units, so the default 0 is a black border, as in both CPU transforms
    (not the mean colour that 0 would be after normalisation). Given the
    same position, the result equals ``F.crop(F.pad(img, padding, fill),
    top, left, *size)``.

    With ``prob < 1`` an image is cropped with that probability, like the
    crop inside ``RandomApply``; an image left alone keeps its size, so
    ``size`` must then equal the image size.

    Args:
        size (int | Sequence[int]): Output ``(h, w)``, or one side.
        padding (int): Border added on every side first. Defaults to 0.
        prob (float): Probability of cropping an image. Defaults to 1.0.
        fill (float): The border's pixel value. Defaults to 0.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]],
                 padding: int = 0,
                 prob: float = 1.0,
                 fill: float = 0.0) -> None:
        if padding < 0:
            raise ValueError(f'padding={padding} must be >= 0.')
        check_probability(prob)
        self.size = tuple(to_2tuple(size))
        self.padding = int(padding)
        self.prob = prob
        self.fill = fill

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw the window's corner in the padded image: ``(top, left)``.

        See :meth:`BaseDeviceAugment.draw` for the arguments.

        Returns:
            Sequence[int]: The corner; ``(padding, padding)`` (the image
            itself) for an image left alone.
        """
        out_h, out_w = self.size
        pad = self.padding
        if out_h > height + 2 * pad or out_w > width + 2 * pad:
            raise ValueError(
                f'{self!r} cannot cut {self.size} from {height}x{width} '
                f'images padded by {pad}: lower size or raise padding.')
        if self.prob < 1.0 and self.size != (height, width):
            raise ValueError(
                f'{self!r} leaves some {height}x{width} images uncropped, '
                f'so size must be ({height}, {width}); set prob=1.0 to crop '
                'every image to another size.')
        if rng.random() >= self.prob:
            return (pad, pad)
        return (rng.integers(0, height + 2 * pad - out_h + 1),
                rng.integers(0, width + 2 * pad - out_w + 1))

    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Cut the drawn windows out of the padded batch.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            params (np.ndarray): ``(N, 2)`` corners ``(top, left)``.

        Returns:
            torch.Tensor: Images of shape ``(N, C, *size)``.
        """
        padded = F.pad(inputs, [self.padding] * 4, value=self.fill)
        top, left = params_on(params, inputs).unbind(1)
        n, c, height, width = padded.shape
        out_h, out_w = self.size
        rows = top[:, None] + torch.arange(out_h, device=inputs.device)
        cols = left[:, None] + torch.arange(out_w, device=inputs.device)
        padded = padded.gather(
            2,
            rows.view(n, 1, out_h, 1).expand(n, c, out_h, width))
        return padded.gather(
            3,
            cols.view(n, 1, 1, out_w).expand(n, c, out_h, out_w))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f'padding={self.padding}, prob={self.prob}, '
                f'fill={self.fill})')
