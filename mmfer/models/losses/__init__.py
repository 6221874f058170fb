# Copyright (c) OpenMMLab. All rights reserved.
from .attention_consistency_loss import AttentionConsistencyLoss
from .kl_divergence_loss import KLDivergenceLoss

__all__ = ['AttentionConsistencyLoss', 'KLDivergenceLoss']
