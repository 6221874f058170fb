# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

# Logit of a queue entry that shares the query's label: exp() of it is 0, so
# the entry drops out of the softmax without changing the tensor's shape.
_EXCLUDED_LOGIT = -1e10


@MODELS.register_module()
class ExpressionLandmarkContrastiveLoss(nn.Module):
    """Supervised contrastive loss between queries, keys and a MoCo queue.

    One direction of LA-Net's expression-landmark (EL) loss, the official
    ``_cal``. For every ordered pair ``(i, j)`` of the local batch the
    logits are ``[q_i . k_j, q_i . queue[:, m] for every m] / T``; queue
    entries whose label equals ``labels[i]`` get the logit ``-1e10`` (set
    after the division by ``T``), so they are no negatives. With
    ``l_ij = -log softmax(...)[0]``:

    ``loss = loss_weight * mean_i [sum_j P_ij l_ij / sum_j P_ij]``,
    ``P_ij = 1[labels_j == labels_i]``.

    The positives include ``j = i``; the other in-batch keys are never
    negatives, only the queue is. The keys and the queue come from the
    momentum encoder and are detached here; only the query is trained.
    Inputs are used as given (LA-Net L2-normalises them beforehand).

    Args:
        temperature (float): Softmax temperature ``T``. Defaults to 0.1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature={temperature} must be positive.')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, query: torch.Tensor, key: torch.Tensor,
                queue: torch.Tensor, queue_labels: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss of the queries against the keys and the queue.

        Args:
            query (torch.Tensor): Queries ``(N, D)`` (with gradient).
            key (torch.Tensor): Keys ``(N, D)`` of the same samples.
            queue (torch.Tensor): Queued keys ``(D, Q)``.
            queue_labels (torch.Tensor): Label of each queue entry ``(Q,)``.
            labels (torch.Tensor): (Pseudo-)labels ``(N,)`` of the batch.

        Returns:
            torch.Tensor: The weighted scalar loss.
        """
        self._check_shapes(query, key, queue, queue_labels, labels)
        key = key.detach()
        queue = queue.detach()
        pos = query @ key.t() / self.temperature
        neg = query @ queue / self.temperature
        same_label = queue_labels.view(1, -1) == labels.view(-1, 1)
        # Adding the exclusion logit gives masked_fill's values and
        # gradients (|neg| is far below the float spacing at 1e10, and the
        # softmax weight of an excluded entry is exactly 0). Unlike
        # masked_fill, the sum's backward keeps no mask, so torch.compile
        # cannot save the queue labels for it: LA-Net overwrites them in
        # place before the backward pass.
        neg = neg + same_label.to(neg.dtype) * _EXCLUDED_LOGIT
        # The negatives of pair (i, j) are those of row i, so their
        # log-sum-exp is shared by the row: l_ij = log(e^pos_ij + e^lse_i)
        # - pos_ij.
        neg_lse = neg.logsumexp(dim=1, keepdim=True)
        pair_loss = torch.logaddexp(pos, neg_lse) - pos
        positives = (labels.view(-1, 1) == labels.view(1, -1)).to(pos.dtype)
        per_query = (positives * pair_loss).sum(dim=1) / positives.sum(dim=1)
        return self.loss_weight * per_query.mean()

    @staticmethod
    def _check_shapes(query: torch.Tensor, key: torch.Tensor,
                      queue: torch.Tensor, queue_labels: torch.Tensor,
                      labels: torch.Tensor) -> None:
        """Raise a ValueError naming the first inconsistent input."""
        if query.dim() != 2 or query.shape != key.shape:
            raise ValueError(
                f'query {tuple(query.shape)} and key {tuple(key.shape)} '
                'must both be (N, D).')
        num, dim = query.shape
        if queue.dim() != 2 or queue.size(0) != dim:
            raise ValueError(
                f'queue {tuple(queue.shape)} must be (D, Q) with D={dim}, '
                'the feature dimension of query; transpose it if it is '
                '(Q, D).')
        if queue_labels.shape != (queue.size(1), ):
            raise ValueError(
                f'queue_labels {tuple(queue_labels.shape)} must be '
                f'({queue.size(1)},), one label per queue entry.')
        if labels.shape != (num, ):
            raise ValueError(f'labels {tuple(labels.shape)} must be '
                             f'({num},), one label per query.')
