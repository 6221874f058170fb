# Copyright (c) OpenMMLab. All rights reserved.
from .adaptive_wing_loss import AdaptiveWingLoss, adaptive_wing
from .attention_consistency_loss import AttentionConsistencyLoss
from .expression_landmark_contrastive_loss import \
    ExpressionLandmarkContrastiveLoss
from .kl_divergence_loss import KLDivergenceLoss

__all__ = [
    'AdaptiveWingLoss', 'adaptive_wing', 'AttentionConsistencyLoss',
    'ExpressionLandmarkContrastiveLoss', 'KLDivergenceLoss'
]
