# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .sample_bank import PerSampleBuffers, last_occurrence


@MODELS.register_module()
class LabelHistoryBank(PerSampleBuffers):
    """LA-Net's history of each training sample's label distribution.

    One row per dataset ``sample_idx``, set to the one-hot training (noisy)
    label on the sample's first visit. Called with the batch's estimates
    ``d``, it returns the targets ``t = h H[idx] + (1 - h) d`` (gradient
    into ``d``), then stores ``H[idx] <- h H[idx] + (1 - h) stopgrad(d)``.
    A sample drawn twice in one batch gets the target of its old row in
    both places and its row keeps the last update, as the official in-place
    update.

    The rows (``rows``) and first-visit flags (``seen``) are buffers, so
    checkpoints hold them and ``--resume`` restores them. The bank grows
    (by doubling) to the largest index seen, and loading a checkpoint
    resizes it to the checkpoint's size first. ``sample_idx`` must identify
    a training sample uniquely: dataset wrappers that number each part from
    0 would make parts share rows.

    Args:
        num_classes (int): Classes per row.
        momentum (float): ``h``, the weight of the stored row.
            Defaults to 0.9.
    """

    RESIZABLE_BUFFERS = ('rows', 'seen')

    def __init__(self, num_classes: int, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(
                f'history_momentum={momentum} must lie in [0, 1].')
        self.momentum = momentum
        self.register_buffer('rows', torch.zeros(0, num_classes))
        self.register_buffer('seen', torch.zeros(0, dtype=torch.bool))

    @property
    def num_classes(self) -> int:
        """int: Classes per row."""
        return self.rows.size(1)

    def forward(self, indices: torch.Tensor, labels: torch.Tensor,
                distributions: torch.Tensor) -> torch.Tensor:
        """Blend the stored rows with the estimates, then update the rows.

        Args:
            indices (torch.Tensor): ``(B,)`` dataset sample indices.
            labels (torch.Tensor): ``(B,)`` training (noisy) labels.
            distributions (torch.Tensor): ``(B, C)`` estimates ``d``.

        Returns:
            torch.Tensor: ``(B, C)`` targets ``t``.
        """
        indices = indices.to(self.rows.device)
        self.reserve(int(indices.max()) + 1)
        with torch.no_grad():
            first = ~self.seen[indices]
            self.rows[indices[first]] = F.one_hot(
                labels[first].to(indices.device),
                self.num_classes).to(self.rows.dtype)
            self.seen[indices] = True
        h = self.momentum
        targets = h * self.rows[indices].to(distributions.dtype) + (
            1 - h) * distributions
        with torch.no_grad():
            last = last_occurrence(indices)
            self.rows[indices[last]] = targets.detach()[last].to(
                self.rows.dtype)
        return targets
