# Copyright (c) OpenMMLab. All rights reserved.
from .noise_detection import (LABEL_SCORES, binary_auroc, label_scores,
                              memorisation_rate, noise_detection_metrics,
                              prediction_noise_metrics)
from .noise_detection_metric import NOISE_METRIC_KEYS, NoiseDetectionMetric

__all__ = [
    'LABEL_SCORES', 'NOISE_METRIC_KEYS', 'NoiseDetectionMetric',
    'binary_auroc', 'label_scores', 'memorisation_rate',
    'noise_detection_metrics', 'prediction_noise_metrics'
]
