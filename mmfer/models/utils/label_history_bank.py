# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


def sample_indices(data_samples: Sequence[DataSample],
                   device: torch.device) -> torch.Tensor:
    """The dataset index of every sample (``sample_idx`` in its metainfo).

    Args:
        data_samples (Sequence[DataSample]): The batch's samples.
        device (torch.device): Device of the result.

    Returns:
        torch.Tensor: ``(N,)`` long.
    """
    indices = [sample.get('sample_idx') for sample in data_samples]
    if any(index is None for index in indices):
        raise KeyError(
            'LANetClassifier keeps a label history per training sample and '
            'needs sample_idx in every data sample; the dataset must set it '
            "(mmengine's BaseDataset does) and PackFERInputs packs it.")
    return torch.tensor([int(i) for i in indices],
                        dtype=torch.long,
                        device=device)


def last_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Mask of the last position of every distinct value of ``indices``.

    Args:
        indices (torch.Tensor): ``(N,)`` non-negative integers.

    Returns:
        torch.Tensor: ``(N,)`` bool.
    """
    positions = torch.arange(indices.numel(), device=indices.device)
    last = positions.new_full((int(indices.max()) + 1, ), -1).scatter_reduce(
        0, indices, positions, reduce='amax')
    return last[indices] == positions


@MODELS.register_module()
class LabelHistoryBank(nn.Module):
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

    def reserve(self, size: int) -> None:
        """Grow the bank (by doubling) to hold at least ``size`` rows.

        Args:
            size (int): Rows needed.
        """
        current = self.rows.size(0)
        if size <= current:
            return
        size = max(size, 2 * current)
        rows = self.rows.new_zeros(size, self.num_classes)
        rows[:current] = self.rows
        seen = self.seen.new_zeros(size)
        seen[:current] = self.seen
        self.rows, self.seen = rows, seen

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        # The size depends on the indices seen; take the checkpoint's so
        # that loading restores it instead of failing on the shape.
        for name in ('rows', 'seen'):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                current = getattr(self, name)
                setattr(self, name,
                        current.new_zeros(saved.shape, dtype=current.dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
