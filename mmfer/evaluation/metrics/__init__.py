# Copyright (c) OpenMMLab. All rights reserved.
from .noise_detection import binary_auroc, noise_detection_metrics

__all__ = ['binary_auroc', 'noise_detection_metrics']
