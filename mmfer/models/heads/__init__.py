# Copyright (c) OpenMMLab. All rights reserved.
from .eac_head import EACHead
from .gsmc_head import GSMCHead

__all__ = ['EACHead', 'GSMCHead']
