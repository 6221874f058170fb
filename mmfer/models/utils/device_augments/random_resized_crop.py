# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models.utils import to_2tuple

from mmfer.registry import DEVICE_AUGMENTS
from .base import BaseDeviceAugment, box_sides, params_on


def _source_coords(start: torch.Tensor, length: torch.Tensor, out: int,
                   full: int) -> torch.Tensor:
    """Where each output pixel samples a ``length`` crop at ``start``, as a
    ``grid_sample`` coordinate (``align_corners=True``) in an axis of
    ``full`` pixels.

    Pixel centres map as in bilinear resizing without antialiasing
    (``F.interpolate(align_corners=False)``, cv2's ``INTER_LINEAR``), and
    positions past the crop's outer pixel centres are clamped to them, so
    no pixel outside the crop leaks in.
    """
    steps = torch.arange(out, device=start.device, dtype=torch.float32)
    start = start[:, None].float()
    length = length[:, None].float()
    coords = start + (steps + 0.5) * length / out - 0.5
    coords = torch.minimum(torch.maximum(coords, start), start + length - 1)
    return coords * (2 / max(full - 1, 1)) - 1


@DEVICE_AUGMENTS.register_module()
class DeviceRandomResizedCrop(BaseDeviceAugment):
    """Crop a random box of each image and resize it, on the device.

    The device counterpart of torchvision's ``RandomResizedCrop(size,
    scale, ratio)`` and mmpretrain's ``RandomResizedCrop(scale,
    crop_ratio_range, aspect_ratio_range)``. The box is drawn as
    torchvision draws it: up to 10 tries of an area share uniform in
    ``scale`` and a width/height ratio log-uniform in ``ratio``; the first
    box that fits is placed uniformly, and if none fits, the largest
    central box within ``ratio`` is taken. All boxes are then resized to
    ``size`` in one batched bilinear ``grid_sample``, without
    antialiasing: the same as torchvision's ``F.resized_crop(...,
    antialias=False)`` and mmcv's cv2 bilinear resize (up to cv2's
    fixed-point rounding), but not torchvision's default antialiased
    resize of strongly downscaled boxes.

    Args:
        size (int | Sequence[int]): Output ``(h, w)``, or one side.
        scale (tuple[float, float]): Range of the box's share of the image
            area. Defaults to ``(0.08, 1.0)``.
        ratio (tuple[float, float]): Range of the box's width / height.
            Defaults to ``(3 / 4, 4 / 3)``.
    """

    def __init__(
        self,
        size: Union[int, Sequence[int]],
        scale: Tuple[float, float] = (0.08, 1.0),
        ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    ) -> None:
        if not 0.0 < scale[0] <= scale[1]:
            raise ValueError(
                f'scale={scale} must be (min, max) with 0 < min <= max.')
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(
                f'ratio={ratio} must be (min, max) with 0 < min <= max.')
        self.size = tuple(to_2tuple(size))
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw the box: ``(top, left, h, w)``.

        See :meth:`BaseDeviceAugment.draw` for the arguments.

        Returns:
            Sequence[int]: The box to crop.
        """
        for w, h in box_sides(rng, height * width, self.scale, self.ratio):
            if 0 < w <= width and 0 < h <= height:
                return (rng.integers(0, height - h + 1),
                        rng.integers(0, width - w + 1), h, w)
        # torchvision's fallback: the central crop closest to the image's
        # own ratio within `ratio`.
        w, h = width, height
        if width / height < self.ratio[0]:
            h = int(round(width / self.ratio[0]))
        elif width / height > self.ratio[1]:
            w = int(round(height * self.ratio[1]))
        return ((height - h) // 2, (width - w) // 2, h, w)

    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Resample the drawn boxes to ``size``.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            params (np.ndarray): ``(N, 4)`` boxes ``(top, left, h, w)``.

        Returns:
            torch.Tensor: Images of shape ``(N, C, *size)``.
        """
        top, left, h, w = params_on(params, inputs).unbind(1)
        out_h, out_w = self.size
        ys = _source_coords(top, h, out_h, inputs.size(-2))
        xs = _source_coords(left, w, out_w, inputs.size(-1))
        grid = torch.stack([
            xs[:, None, :].expand(-1, out_h, -1), ys[:, :, None].expand(
                -1, -1, out_w)
        ],
                           dim=-1).to(inputs.dtype)
        return F.grid_sample(
            inputs,
            grid,
            mode='bilinear',
            padding_mode='border',
            align_corners=True)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio})')
