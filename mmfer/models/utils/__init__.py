# Copyright (c) OpenMMLab. All rights reserved.
from .cam import class_activation_maps
from .data_preprocessor import FERDataPreprocessor, is_multi_view
from .flip import flip_width

__all__ = [
    'class_activation_maps', 'flip_width', 'FERDataPreprocessor',
    'is_multi_view'
]
