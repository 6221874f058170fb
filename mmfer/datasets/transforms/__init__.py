# Copyright (c) OpenMMLab. All rights reserved.
from .device_augment_seed import DrawDeviceAugmentSeed
from .formatting import PackFERInputs
from .gaussian_noise import RandomGaussianNoise
from .landmark_geometric import (RandomCropWithLandmarks,
                                 RandomFlipWithLandmarks,
                                 RandomResizedCropWithLandmarks,
                                 RandomRotateWithLandmarks,
                                 ResizeWithLandmarks)
from .landmark_targets import LandmarkTargets
from .loading import LoadFERImage

__all__ = [
    'DrawDeviceAugmentSeed', 'LoadFERImage', 'PackFERInputs',
    'RandomGaussianNoise',
    'ResizeWithLandmarks', 'RandomFlipWithLandmarks',
    'RandomResizedCropWithLandmarks', 'RandomCropWithLandmarks',
    'RandomRotateWithLandmarks', 'LandmarkTargets'
]
