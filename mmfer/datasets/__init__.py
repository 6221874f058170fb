# Copyright (c) OpenMMLab. All rights reserved.
from .base_fer import BaseFERDataset
from .rafdb import RAFDB_CLASSES, RAFDBDataset
from .transforms import LoadFERImage, PackFERInputs

__all__ = [
    'BaseFERDataset', 'RAFDBDataset', 'RAFDB_CLASSES', 'LoadFERImage',
    'PackFERInputs'
]
