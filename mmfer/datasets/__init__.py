# Copyright (c) OpenMMLab. All rights reserved.
from .affectnet import AFFECTNET_CLASSES, AffectNetDataset
from .base_fer import BaseFERDataset
from .class_map import CLASS_ORDERS
from .fer_folder import FERDataset
from .ferplus import FERPLUS_CLASSES, FERPlusDataset
from .rafdb import RAFDB_CLASSES, RAFDBDataset
from .synthfer_dataset import SynthFERDataset
from .samplers import ClassBalancedSampler, ProgressiveClassBalancedSampler
from .transforms import LoadFERImage, PackFERInputs

__all__ = [
    'BaseFERDataset', 'RAFDBDataset', 'RAFDB_CLASSES', 'FERPlusDataset',
    'FERPLUS_CLASSES', 'AffectNetDataset', 'AFFECTNET_CLASSES', 'FERDataset',
    'CLASS_ORDERS', 'ClassBalancedSampler',
    'ProgressiveClassBalancedSampler', 'LoadFERImage', 'PackFERInputs',
    'SynthFERDataset'
]
