# Copyright (c) OpenMMLab. All rights reserved.
from .hooks import EpochSeedHook, FERReportHook, MeanTeacherHook

__all__ = ['EpochSeedHook', 'FERReportHook', 'MeanTeacherHook']
