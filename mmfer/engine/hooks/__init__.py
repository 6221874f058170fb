# Copyright (c) OpenMMLab. All rights reserved.
from .epoch_seed_hook import EpochSeedHook
from .fer_report_hook import FERReportHook

__all__ = ['EpochSeedHook', 'FERReportHook']
