# Copyright (c) OpenMMLab. All rights reserved.
from .hooks import EpochSeedHook, FERReportHook

__all__ = ['EpochSeedHook', 'FERReportHook']
