# Copyright (c) OpenMMLab. All rights reserved.
from .formatting import PackFERInputs
from .gaussian_noise import RandomGaussianNoise
from .loading import LoadFERImage

__all__ = ['LoadFERImage', 'PackFERInputs', 'RandomGaussianNoise']
