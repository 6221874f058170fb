# Copyright (c) OpenMMLab. All rights reserved.
from .cam import class_activation_maps
from .contrastive_queue import EMPTY_QUEUE_LABEL, ContrastiveQueue
from .data_preprocessor import FERDataPreprocessor, is_multi_view
from .device_augments import (DeviceGaussianNoise, DeviceRandomCrop,
                              DeviceRandomErasing, DeviceRandomFlip,
                              DeviceRandomResizedCrop)
from .flip import flip_width
from .label_distribution import (LabelDistributionEstimator,
                                 PairwiseEdgeScorer)
from .label_history_bank import LabelHistoryBank
from .landmark_heatmaps import render_heatmaps
from .mixture_1d import (MIXTURES, BetaMixture1D, GaussianMixture1D,
                         build_mixture, label_similarity,
                         lookup_clean_probability)
from .momentum_teacher import MomentumTeacherMixin, build_teacher
from .pretrained_check import verify_pretrained

__all__ = [
    'class_activation_maps', 'ContrastiveQueue', 'EMPTY_QUEUE_LABEL',
    'flip_width', 'FERDataPreprocessor',
    'DeviceGaussianNoise', 'DeviceRandomCrop', 'DeviceRandomErasing',
    'DeviceRandomFlip', 'DeviceRandomResizedCrop',
    'is_multi_view', 'LabelDistributionEstimator', 'PairwiseEdgeScorer',
    'LabelHistoryBank', 'render_heatmaps', 'MomentumTeacherMixin',
    'build_teacher',
    'MIXTURES', 'BetaMixture1D', 'GaussianMixture1D',
    'build_mixture', 'label_similarity', 'lookup_clean_probability',
    'verify_pretrained'
]
