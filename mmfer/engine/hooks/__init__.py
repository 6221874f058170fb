# Copyright (c) OpenMMLab. All rights reserved.
from .channels_last_hook import ChannelsLastHook
from .checkpoint_fit_hook import CheckpointFitHook
from .epoch_seed_hook import EpochSeedHook
from .fer_report_hook import FERReportHook
from .mean_teacher_hook import MeanTeacherHook
from .noise_detection_hook import NoiseDetectionHook
from .resup_hook import ReSupHook

__all__ = [
    'ChannelsLastHook', 'CheckpointFitHook', 'EpochSeedHook', 'FERReportHook', 'MeanTeacherHook',
    'NoiseDetectionHook', 'ReSupHook'
]
