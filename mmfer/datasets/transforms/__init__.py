# Copyright (c) OpenMMLab. All rights reserved.
from .formatting import PackFERInputs
from .loading import LoadFERImage

__all__ = ['LoadFERImage', 'PackFERInputs']
