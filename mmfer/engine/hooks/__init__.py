# Copyright (c) OpenMMLab. All rights reserved.
from .channels_last_hook import ChannelsLastHook
from .epoch_seed_hook import EpochSeedHook
from .fer_report_hook import FERReportHook
from .mean_teacher_hook import MeanTeacherHook
from .noise_detection_hook import NoiseDetectionHook
from .resup_hook import ReSupHook

__all__ = [
    'ChannelsLastHook', 'EpochSeedHook', 'FERReportHook', 'MeanTeacherHook',
    'NoiseDetectionHook', 'ReSupHook'
]
