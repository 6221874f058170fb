# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn.functional as F


def class_activation_maps(feats: torch.Tensor,
                          fc_weight: torch.Tensor) -> torch.Tensor:
    """Class activation maps of every class from a linear classifier.

    ``cam[n, k, h, w] = sum_c feats[n, c, h, w] * fc_weight[k, c]``: no bias,
    no ReLU, no normalisation, as in EAC and GSMC. Averaged over ``h, w`` and
    plus the bias, the maps give back the logits of a global-average-pooling
    classifier.

    Args:
        feats (torch.Tensor): Feature maps of shape ``(N, C, H, W)``.
        fc_weight (torch.Tensor): Classifier weight of shape ``(K, C)``.
            Pass ``fc.weight.detach()`` so that losses on the maps train the
            backbone only (EAC and GSMC do).

    Returns:
        torch.Tensor: Maps of shape ``(N, K, H, W)``.
    """
    if feats.dim() != 4 or fc_weight.dim() != 2 or \
            feats.size(1) != fc_weight.size(1):
        raise ValueError(
            'class_activation_maps expects feats (N, C, H, W) and fc_weight '
            f'(K, C); got {tuple(feats.shape)} and '
            f'{tuple(fc_weight.shape)}.')
    # A 1x1 convolution computes the same sum; torch.compile cannot
    # differentiate einsum's view of flipped (negatively strided) maps.
    return F.conv2d(feats, fc_weight[:, :, None, None])
