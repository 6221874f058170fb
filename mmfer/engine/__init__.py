# Copyright (c) OpenMMLab. All rights reserved.
from .hooks import (ChannelsLastHook, EpochSeedHook, FERReportHook,
                    MeanTeacherHook, ReSupHook)
from .optimizers import FERAmpOptimWrapper

__all__ = [
    'ChannelsLastHook', 'EpochSeedHook', 'FERAmpOptimWrapper', 'FERReportHook',
    'MeanTeacherHook', 'ReSupHook'
]
