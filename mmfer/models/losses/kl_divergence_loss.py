# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS


@MODELS.register_module()
class KLDivergenceLoss(nn.Module):
    """Self-distillation loss ``KL(softmax(teacher) || softmax(student))``.

    ``loss = loss_weight * sum_k q_k (log q_k - log p_k) / N`` with
    ``p = softmax(student / T)`` and ``q = softmax(teacher / T)``: the
    ``F.kl_div(log p, q, reduction='batchmean')`` of GSMC. The teacher side
    is detached, so only the student is trained. GSMC takes ``log`` of the
    softmax; ``log_softmax`` is used here (equal, but finite for large
    logits).

    Args:
        loss_weight (float): Weight of the loss (GSMC: 0.9).
            Defaults to 1.0.
        temperature (float): Softmax temperature of both sides (GSMC: 1).
            The loss is not rescaled by ``T ** 2``. Defaults to 1.0.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature={temperature} must be positive.')
        self.loss_weight = loss_weight
        self.temperature = temperature

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> torch.Tensor:
        """Compute the weighted KL divergence.

        Args:
            student_logits (torch.Tensor): ``(N, K)`` logits of the student.
            teacher_logits (torch.Tensor): ``(N, K)`` logits of the teacher.

        Returns:
            torch.Tensor: The weighted scalar loss.
        """
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(
                f'student logits {tuple(student_logits.shape)} and teacher '
                f'logits {tuple(teacher_logits.shape)} differ in shape.')
        log_p = F.log_softmax(student_logits / self.temperature, dim=1)
        log_q = F.log_softmax(
            teacher_logits.detach() / self.temperature, dim=1)
        loss = F.kl_div(log_p, log_q, reduction='batchmean', log_target=True)
        return self.loss_weight * loss
