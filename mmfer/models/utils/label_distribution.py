# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's label-distribution estimation from mini-batch neighbours.

For every feature space (the expression feature ``u`` and the landmark
feature ``v``), each sample takes its ``k`` nearest cosine neighbours in the
batch, weights them with a learned pairwise score and averages their
softmax predictions. The estimate of LA-Net (Wu and Cui, ICCV 2023) is the
mean of the per-space estimates.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS


class PairwiseEdgeScorer(nn.Module):
    """Learned score ``c_ij`` in (0, 1) of the edge from sample i to j.

    ``h = fc_in(f)``; the pair feature ``[h_i[:D/2], h_j[D/2:]]`` goes
    through ``Linear(D, D/2) -> ReLU -> Linear(D/2, D/4) -> ReLU ->
    Linear(D/4, 2) -> softmax`` and output 0 is kept, as the official
    LA-Net ``score`` module.

    Args:
        dim (int): Feature dimension ``D``; a multiple of 4.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim <= 0 or dim % 4:
            raise ValueError(
                f'PairwiseEdgeScorer needs a feature dimension divisible by '
                f'4 (it halves and quarters it), got dim={dim}; project the '
                'feature to such a size first.')
        self.dim = dim
        self.fc_in = nn.Linear(dim, dim)
        self.pair_fc = nn.Linear(dim, dim // 2)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(dim // 2, dim // 4),
                                 nn.ReLU(), nn.Linear(dim // 4, 2))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Score every ordered pair of the batch.

        Args:
            feats (torch.Tensor): Features ``(B, D)``.

        Returns:
            torch.Tensor: Scores ``(B, B)``; entry ``(i, j)`` scores j as a
            neighbour of i.
        """
        if feats.dim() != 2 or feats.size(1) != self.dim:
            raise ValueError(f'PairwiseEdgeScorer(dim={self.dim}) expects '
                             f'features (B, {self.dim}), got '
                             f'{tuple(feats.shape)}.')
        half = self.dim // 2
        h = self.fc_in(feats)
        # pair_fc on the concatenation [h_i[:D/2], h_j[D/2:]] is the sum of
        # its two weight halves applied separately; this gives the same
        # result as building the (B, B, D) pair tensor with B times less
        # memory.
        w_left, w_right = self.pair_fc.weight.split(half, dim=1)
        left = h[:, :half] @ w_left.t() + self.pair_fc.bias
        right = h[:, half:] @ w_right.t()
        pair = left.unsqueeze(1) + right.unsqueeze(0)
        return self.mlp(pair).softmax(dim=-1)[..., 0]


@MODELS.register_module()
class LabelDistributionEstimator(nn.Module):
    """Label distribution from the learned-weighted top-k neighbours.

    For each space ``s`` with features ``f`` (``B`` samples): the cosine
    similarity of ``f`` (without gradient, diagonal set to -1) selects the
    ``k`` neighbours of each sample as a binary mask ``M``; the edge scores
    ``c = scorer_s(f)`` give the row weights

    ``w_ij = (c_ij M_ij + eps / B) / (sum_j c_ij M_ij + eps)``

    (each row sums to 1) and ``d^s = w @ softmax(logits)``. The output is
    the mean of ``d^s`` over the spaces. Gradient reaches the scorers, the
    features (through the scores) and the neighbours' logits, not the
    neighbour selection; in LA-Net the KL loss to this estimate is the only
    signal that trains the scorers.

    Args:
        feat_dims (Sequence[int]): Feature dimension of each space, in the
            order of ``feats`` in :meth:`forward` (LA-Net ResNet-18: 512 for
            the expression and 64 for the landmark feature).
            Defaults to (512, 64).
        k (int): Number of neighbours per sample. Defaults to 8.
        eps (float): Smoothing constant of the row weights.
            Defaults to 1e-8.
    """

    def __init__(self,
                 feat_dims: Sequence[int] = (512, 64),
                 k: int = 8,
                 eps: float = 1e-8) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f'k={k} must be a positive neighbour count.')
        if not feat_dims:
            raise ValueError('feat_dims is empty; give one dimension per '
                             'feature space, e.g. (512, 64).')
        self.k = k
        self.eps = eps
        self.scorers = nn.ModuleList(
            PairwiseEdgeScorer(dim) for dim in feat_dims)

    def row_weights(self, feats: torch.Tensor, space: int) -> torch.Tensor:
        """Neighbour weights ``w`` of one feature space.

        Args:
            feats (torch.Tensor): Features ``(B, D_s)`` of space ``space``.
            space (int): Index of the space (and of its scorer).

        Returns:
            torch.Tensor: ``(B, B)`` weights; each row sums to 1.
        """
        batch = feats.size(0)
        if self.k >= batch:
            raise ValueError(
                f'LabelDistributionEstimator needs more samples than '
                f'neighbours, but k={self.k} and the batch has B={batch} '
                f'samples; raise the (global) batch size above {self.k} or '
                'lower k.')
        with torch.no_grad():
            unit = F.normalize(feats, dim=1)
            sim = unit @ unit.t()
            sim.fill_diagonal_(-1)
            neighbours = sim.topk(self.k, dim=1).indices
            mask = torch.zeros_like(sim).scatter_(1, neighbours, 1)
        scores = self.scorers[space](feats) * mask
        return (scores + self.eps / batch) / (
            scores.sum(dim=1, keepdim=True) + self.eps)

    def forward(self, feats: Sequence[torch.Tensor],
                logits: torch.Tensor) -> torch.Tensor:
        """Estimate each sample's label distribution.

        Args:
            feats (Sequence[torch.Tensor]): One ``(B, D_s)`` tensor per
                space, in the order of ``feat_dims``.
            logits (torch.Tensor): Class logits ``(B, C)`` of the same
                samples.

        Returns:
            torch.Tensor: Distributions ``(B, C)``; rows sum to 1.
        """
        if len(feats) != len(self.scorers):
            raise ValueError(
                f'Got {len(feats)} feature tensors but the estimator has '
                f'{len(self.scorers)} spaces (feat_dims); pass one tensor '
                'per space.')
        for space, f in enumerate(feats):
            if f.size(0) != logits.size(0):
                raise ValueError(
                    f'feats[{space}] has {f.size(0)} samples but logits '
                    f'has {logits.size(0)}; both must cover the same batch.')
        probs = logits.softmax(dim=1)
        dists = [
            self.row_weights(f, space) @ probs for space, f in enumerate(feats)
        ]
        return torch.stack(dists).mean(dim=0)
