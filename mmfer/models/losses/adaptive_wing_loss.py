# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS


def adaptive_wing(pred: torch.Tensor,
                  target: torch.Tensor,
                  alpha: float = 2.1,
                  omega: float = 14.0,
                  epsilon: float = 1.0,
                  theta: float = 0.5) -> torch.Tensor:
    """Elementwise Adaptive Wing loss (Wang et al., ICCV 2019).

    With ``y = target``, ``d = |y - pred|`` and ``p = alpha - y``::

        AWing = omega * ln(1 + (d / epsilon) ** p)   if d < theta
                A * d - C                            otherwise
        A = omega * (1 / (1 + (theta / epsilon) ** p)) * p
            * (theta / epsilon) ** (p - 1) / epsilon
        C = theta * A - omega * ln(1 + (theta / epsilon) ** p)

    ``A`` and ``C`` make the loss and its slope continuous at ``theta``.
    The exponent depends on the target, so the loss is sharper near the
    heatmap peaks (y -> 1) than on the background (y -> 0).

    Args:
        pred (torch.Tensor): Predicted heatmaps.
        target (torch.Tensor): Target heatmaps in [0, 1], same shape.
        alpha (float): Exponent offset. Defaults to 2.1.
        omega (float): Scale of the non-linear part. Defaults to 14.0.
        epsilon (float): Scale of the difference. Defaults to 1.0.
        theta (float): Switch point between the two parts. Defaults to 0.5.

    Returns:
        torch.Tensor: The loss of every element, shape of ``pred``.
    """
    diff = (target - pred).abs()
    power = alpha - target
    ratio = theta / epsilon
    slope = omega / (1 + ratio**power) * power * ratio**(power - 1) / epsilon
    offset = theta * slope - omega * torch.log1p(ratio**power)
    # Both branches are evaluated everywhere; clamping keeps the unused
    # log branch of large differences finite, so its zero gradient stays 0.
    small = omega * torch.log1p((diff.clamp(max=theta) / epsilon)**power)
    large = slope * diff - offset
    return torch.where(diff < theta, small, large)


@MODELS.register_module()
class AdaptiveWingLoss(nn.Module):
    """Adaptive Wing heatmap loss, weighted and masked per sample.

    ``loss = loss_weight * mean over valid samples n of
    mean_(K, h, w) [AWing(pred_n, target_n) * weight_map_n]``; with every
    sample valid this is the official LA-Net ``mean(AWing * W)``. Samples
    without landmarks are left out entirely (their targets are
    placeholders, not zero heatmaps to learn). See :func:`adaptive_wing`
    for the elementwise formula.

    Args:
        alpha (float): Exponent offset. Defaults to 2.1.
        omega (float): Scale of the non-linear part. Defaults to 14.0.
        epsilon (float): Scale of the difference. Defaults to 1.0.
        theta (float): Switch point between the two parts. Defaults to 0.5.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 alpha: float = 2.1,
                 omega: float = 14.0,
                 epsilon: float = 1.0,
                 theta: float = 0.5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if epsilon <= 0 or theta <= 0 or omega <= 0:
            raise ValueError(
                f'epsilon={epsilon}, theta={theta} and omega={omega} must '
                'all be positive.')
        self.alpha = alpha
        self.omega = omega
        self.epsilon = epsilon
        self.theta = theta
        self.loss_weight = loss_weight

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight_map: Optional[torch.Tensor] = None,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss of predicted against target heatmaps.

        Args:
            pred (torch.Tensor): Predicted heatmaps ``(N, K, h, w)``.
            target (torch.Tensor): Target heatmaps, same shape.
            weight_map (torch.Tensor, optional): Per-pixel weights, same
                shape. Defaults to None (all 1).
            valid (torch.Tensor, optional): Bool ``(N,)`` or ``(N, 1)``:
                which samples have landmarks. Defaults to None (all).

        Returns:
            torch.Tensor: The weighted scalar loss; ``pred.sum() * 0`` (0,
            still attached to the graph so that every rank's DDP backward
            sees the same parameters) when no sample is valid.
        """
        if target.shape != pred.shape or (weight_map is not None
                                          and weight_map.shape != pred.shape):
            raise ValueError(
                f'pred {tuple(pred.shape)}, target {tuple(target.shape)} '
                'and weight_map '
                f'{None if weight_map is None else tuple(weight_map.shape)}'
                ' must have the same shape; check the heatmap stride of the '
                'pipeline against the landmark neck.')
        if valid is not None:
            valid = valid.reshape(-1).bool()
            if valid.numel() != pred.size(0):
                raise ValueError(
                    f'valid has {valid.numel()} entries for {pred.size(0)} '
                    'samples; pass one flag per sample.')
            if not valid.any():
                return pred.sum() * 0
            pred, target = pred[valid], target[valid]
            if weight_map is not None:
                weight_map = weight_map[valid]
        loss = adaptive_wing(pred, target, self.alpha, self.omega,
                             self.epsilon, self.theta)
        if weight_map is not None:
            loss = loss * weight_map
        return self.loss_weight * loss.mean()
