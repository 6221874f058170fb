# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ..utils import flip_width


@MODELS.register_module()
class AttentionConsistencyLoss(nn.Module):
    """Flip attention consistency: MSE between a map and a mirrored map.

    ``loss = loss_weight * mean((att - flip_width(att_flipped)) ** 2)``, the
    ``ACLoss`` of EAC (Zhang et al., ECCV 2022), which GSMC reuses. The
    second view is the horizontally flipped image, so its maps are mirrored
    back before the comparison. No stop-gradient on either side, as in the
    official code; detach the classifier weight when building the maps to
    keep this term away from the classifier.

    Args:
        loss_weight (float): Weight of the loss (EAC's ``lam``: 5, GSMC:
            0.2). Defaults to 1.0.
        reduction (str): ``'mean'`` (over every element, as EAC) or
            ``'sum'``. Defaults to ``'mean'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean') -> None:
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction={reduction!r} must be 'mean' or "
                             "'sum'.")
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, att: torch.Tensor,
                att_flipped: torch.Tensor) -> torch.Tensor:
        """Compare the maps of a view with those of its mirror image.

        Args:
            att (torch.Tensor): Maps of the original view ``(N, K, H, W)``.
            att_flipped (torch.Tensor): Maps of the flipped view, same shape.

        Returns:
            torch.Tensor: The weighted scalar loss.
        """
        if att.shape != att_flipped.shape:
            raise ValueError('The two views give maps of different shapes '
                             f'{tuple(att.shape)} and '
                             f'{tuple(att_flipped.shape)}; both views must '
                             'have the same image size.')
        loss = F.mse_loss(
            att, flip_width(att_flipped), reduction=self.reduction)
        return self.loss_weight * loss
