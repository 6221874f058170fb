# Copyright (c) OpenMMLab. All rights reserved.
from .epoch_seed_hook import EpochSeedHook
from .fer_report_hook import FERReportHook
from .mean_teacher_hook import MeanTeacherHook
from .noise_detection_hook import NoiseDetectionHook
from .resup_hook import ReSupHook

__all__ = [
    'EpochSeedHook', 'FERReportHook', 'MeanTeacherHook', 'NoiseDetectionHook',
    'ReSupHook'
]
