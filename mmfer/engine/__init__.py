# Copyright (c) OpenMMLab. All rights reserved.
from .hooks import EpochSeedHook, FERReportHook, MeanTeacherHook, ReSupHook

__all__ = ['EpochSeedHook', 'FERReportHook', 'MeanTeacherHook', 'ReSupHook']
