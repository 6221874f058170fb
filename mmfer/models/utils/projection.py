# Copyright (c) OpenMMLab. All rights reserved.
"""Pooled features and projection heads of LA-Net's contrastive loss."""
import torch
import torch.nn as nn


def spatial_mean(feat: torch.Tensor) -> torch.Tensor:
    """Global average pooling of an ``(N, C, H, W)`` map to ``(N, C)``.

    Args:
        feat (torch.Tensor): The feature map.

    Returns:
        torch.Tensor: ``(N, C)``.
    """
    if feat.dim() != 4:
        raise ValueError(f'Expected an (N, C, H, W) feature map, got shape '
                         f'{tuple(feat.shape)}; the backbone must output '
                         'its stage maps before pooling.')
    return feat.mean(dim=(2, 3))


def projector(in_dim: int, dim: int) -> nn.Sequential:
    """LA-Net's projection head ``Linear -> ReLU -> Linear``.

    Args:
        in_dim (int): Input feature dimension.
        dim (int): Projection dimension.

    Returns:
        nn.Sequential: The head, with PyTorch's default initialisation.
    """
    return nn.Sequential(
        nn.Linear(in_dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
