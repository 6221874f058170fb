# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

AMBIGUOUS_IDS = ('official', 'unique')
# Label of an empty queue slot: equal to no class and no ambiguous id, so an
# empty slot is always a negative, as in the official code.
EMPTY_QUEUE_LABEL = -1e10


@MODELS.register_module()
class ContrastiveQueue(nn.Module):
    """LA-Net's queues of expression and landmark keys and their labels.

    Keys ``u`` and ``v`` are stored column-wise, ``(dim, size)``, initialised
    to random unit vectors; ``labels`` holds each slot's pseudo-label (see
    :meth:`pseudo_labels`), :data:`EMPTY_QUEUE_LABEL` while the slot is
    empty; ``ptr`` is the next slot to write. All are buffers, so
    checkpoints hold them and ``--resume`` restores them.

    Args:
        dim (int): Key dimension.
        size (int): Keys per queue; a multiple of the global batch size.
        confidence (float): Pseudo-labels with a lower maximum target
            probability become ambiguous ids. Defaults to 0.7.
        ambiguous_ids (str): The id of an ambiguous sample with dataset
            index ``i``: ``'official'`` uses ``-i``, as the official code,
            so the sample of index 0 gets 0 and counts as a positive of
            class 0; ``'unique'`` uses ``-(i + 1)``, which never equals a
            class. Defaults to ``'official'``.
    """

    def __init__(self,
                 dim: int,
                 size: int,
                 confidence: float = 0.7,
                 ambiguous_ids: str = 'official') -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f'queue_size={size} must be positive.')
        if ambiguous_ids not in AMBIGUOUS_IDS:
            raise ValueError(f'ambiguous_ids={ambiguous_ids!r} must be one '
                             f'of {AMBIGUOUS_IDS}.')
        self.size = size
        self.confidence = confidence
        self.ambiguous_ids = ambiguous_ids
        self.register_buffer('u', F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer('v', F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer('labels', torch.full((size, ),
                                                  EMPTY_QUEUE_LABEL))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))

    def pseudo_labels(self, targets: torch.Tensor,
                      indices: torch.Tensor) -> torch.Tensor:
        """The labels to enqueue: the argmax of the targets, or the
        ambiguous id of a sample whose maximum target probability is below
        ``confidence``.

        Args:
            targets (torch.Tensor): ``(B, C)`` target distributions.
            indices (torch.Tensor): ``(B,)`` dataset sample indices.

        Returns:
            torch.Tensor: ``(B,)`` long pseudo-labels.
        """
        top, labels = targets.detach().max(dim=1)
        indices = indices.to(labels.device)
        ambiguous = -indices if self.ambiguous_ids == 'official' else -(
            indices + 1)
        return torch.where(top < self.confidence, ambiguous, labels)

    @torch.no_grad()
    def enqueue(self, key_u: torch.Tensor, key_v: torch.Tensor,
                labels: torch.Tensor) -> None:
        """Write a global batch's keys and labels, replacing the oldest.

        Args:
            key_u (torch.Tensor): ``(N, dim)`` expression keys.
            key_v (torch.Tensor): ``(N, dim)`` landmark keys.
            labels (torch.Tensor): ``(N,)`` labels.
        """
        num = key_u.size(0)
        ptr = int(self.ptr)
        if self.size % num or ptr % num:
            raise ValueError(
                f'queue_size={self.size} (queue pointer {ptr}) must be a '
                f'multiple of the global batch size {num} (samples per GPU '
                'x GPUs), and every batch must have that size: set '
                'queue_size to a multiple of it and drop_last=True in the '
                'train dataloader.')
        self.u[:, ptr:ptr + num] = key_u.t()
        self.v[:, ptr:ptr + num] = key_v.t()
        self.labels[ptr:ptr + num] = labels.to(self.labels.dtype)
        self.ptr.fill_((ptr + num) % self.size)
