# Copyright (c) OpenMMLab. All rights reserved.
from .class_balanced_sampler import ClassBalancedSampler
from .progressive_class_balanced_sampler import ProgressiveClassBalancedSampler

__all__ = ['ClassBalancedSampler', 'ProgressiveClassBalancedSampler']
