# Copyright (c) OpenMMLab. All rights reserved.
from .base import BaseDeviceAugment, sample_rng
from .compose import ComposeDeviceAugments, read_aug_seeds
from .gaussian_noise import DeviceGaussianNoise
from .random_crop import DeviceRandomCrop
from .random_erasing import DeviceRandomErasing
from .random_flip import DeviceRandomFlip
from .random_resized_crop import DeviceRandomResizedCrop

__all__ = [
    'BaseDeviceAugment', 'sample_rng', 'ComposeDeviceAugments',
    'read_aug_seeds', 'DeviceGaussianNoise', 'DeviceRandomCrop',
    'DeviceRandomErasing', 'DeviceRandomFlip', 'DeviceRandomResizedCrop'
]
