# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Sequence

import numpy as np
import torch

from mmfer.registry import DEVICE_AUGMENTS
from .base import BaseDeviceAugment, check_probability

_SEED_HIGH = 2**63


@DEVICE_AUGMENTS.register_module()
class DeviceGaussianNoise(BaseDeviceAugment):
    """Add i.i.d. Gaussian pixel noise to each image with a probability, on
    the device.

    The device counterpart of :class:`mmfer.datasets.transforms.
    RandomGaussianNoise` (EAC's ``add_g``) with the same parameters and
    value range: with probability ``prob`` an image becomes
    ``floor(clip(img + N(0, var), 0, 255))``, one draw per pixel and channel
    in pixel units, so it stays on whole pixel levels as the uint8 CPU
    result does. Unlike EAC, which adds the noise to the raw image before
    resizing, it acts on the batch the loader resized.

    Each noisy image's noise comes from a torch generator on the batch's
    device seeded from the image's own draw, so it does not depend on the
    rest of the batch; torch's CPU and CUDA generators give different
    numbers for one seed, so the noise is reproducible per device type.

    Args:
        prob (float): Probability of adding noise. Defaults to 0.5.
        var (float): Variance of the noise in squared pixel levels (EAC:
            30, i.e. std ~5.48). Defaults to 30.0.
    """

    def __init__(self, prob: float = 0.5, var: float = 30.0) -> None:
        check_probability(prob)
        if var < 0:
            raise ValueError(f'var={var} must be >= 0.')
        self.prob = prob
        self.var = var

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw whether to add noise, and its seed: ``(noisy, seed)``.

        See :meth:`BaseDeviceAugment.draw` for the arguments.

        Returns:
            Sequence[int]: ``(1, seed)`` for a noisy image, else ``(0, 0)``.
        """
        if rng.random() >= self.prob:
            return (0, 0)
        return (1, rng.integers(0, _SEED_HIGH))

    def noise(self, seed: int, like: torch.Tensor) -> torch.Tensor:
        """The noise of one image.

        Args:
            seed (int): The image's drawn noise seed.
            like (torch.Tensor): One image; gives the shape, dtype and
                device.

        Returns:
            torch.Tensor: Noise with standard deviation ``sqrt(var)``.
        """
        gen = torch.Generator(device=like.device).manual_seed(seed)
        return torch.randn(
            like.shape, generator=gen, device=like.device,
            dtype=like.dtype) * math.sqrt(self.var)

    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Add the noise to the drawn images.

        Args:
            inputs (torch.Tensor): Float images in pixel units of shape
                ``(N, C, H, W)``.
            params (np.ndarray): ``(N, 2)`` rows ``(noisy, seed)``.

        Returns:
            torch.Tensor: The batch with the drawn images made noisy.
        """
        noisy = np.flatnonzero(params[:, 0])
        if not len(noisy):
            return inputs
        noise = torch.stack(
            [self.noise(int(params[i, 1]), inputs[i]) for i in noisy])
        index = torch.from_numpy(noisy).to(inputs.device)
        out = inputs.clone()
        out[index] = (inputs[index] + noise).clamp_(0, 255).floor_()
        return out

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, var={self.var})'
