# Copyright (c) OpenMMLab. All rights reserved.
"""How well per-sample clean probabilities find the noisy labels.

Noisy-label methods such as ReSup give each training sample a probability of
carrying a clean label. Where the clean labels are known (synthetic noise),
these functions score that probability as a noise detector: precision,
recall and F1 of the samples flagged noisy at a threshold, and the
threshold-free AUROC.
"""
from typing import Dict, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, list, tuple]


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """Flatten an array-like or tensor (any device) to a numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim > 1:
        raise ValueError(f'{name} must be 1-D, got shape {arr.shape}.')
    return arr.reshape(-1)


def _binary_targets(targets: ArrayLike, name: str) -> np.ndarray:
    """Check that ``targets`` holds only 0/1 (or bools) and return bools."""
    arr = _to_numpy(targets, name)
    if arr.dtype != bool:
        values = np.unique(arr)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f'{name} must hold only 0/1 or booleans, got '
                             f'values {values[:10].tolist()}.')
        arr = arr == 1
    return arr


def _check_lengths(a: np.ndarray, b: np.ndarray, name_a: str,
                   name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'{name_a} has {a.shape[0]} entries but {name_b} '
                         f'has {b.shape[0]}: pass one value per sample, in '
                         'the same order.')


def binary_auroc(scores: ArrayLike, targets: ArrayLike) -> float:
    """Area under the ROC curve, by the Mann-Whitney U statistic.

    Tied scores get their average rank, so a tied positive/negative pair
    counts one half; this equals sklearn's ``roc_auc_score``.

    Args:
        scores (np.ndarray | torch.Tensor): Finite scores, higher meaning
            more likely positive, shape ``(N,)``.
        targets (np.ndarray | torch.Tensor): 0/1 or boolean labels,
            shape ``(N,)``.

    Returns:
        float: The AUROC, or ``nan`` when one class is absent.
    """
    scores = _to_numpy(scores, 'scores').astype(np.float64)
    targets = _binary_targets(targets, 'targets')
    _check_lengths(scores, targets, 'scores', 'targets')
    if not np.isfinite(scores).all():
        raise ValueError('binary_auroc: scores contain NaN or inf; the '
                         'ranking is undefined for them.')
    num_pos = int(targets.sum())
    num_neg = targets.size - num_pos
    if num_pos == 0 or num_neg == 0:
        return float('nan')
    _, inverse, counts = np.unique(
        scores, return_inverse=True, return_counts=True)
    # A group of tied values occupies 1-based ranks end - count + 1 .. end.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse.reshape(-1)]
    u_stat = ranks[targets].sum() - num_pos * (num_pos + 1) / 2.0
    return float(u_stat / (num_pos * num_neg))


def _ratio(num: int, den: int) -> float:
    return float(num / den) if den > 0 else float('nan')


def noise_detection_metrics(clean_prob: ArrayLike,
                            is_noisy: ArrayLike,
                            threshold: float = 0.5) -> Dict[str, float]:
    """Score clean probabilities as a detector of noisy labels.

    A sample is flagged noisy when ``clean_prob < threshold``.

    Args:
        clean_prob (np.ndarray | torch.Tensor): Per-sample probability that
            the label is clean, shape ``(N,)``.
        is_noisy (np.ndarray | torch.Tensor): 1/True where the given label
            differs from the clean one, shape ``(N,)``.
        threshold (float): Flagging threshold. Defaults to 0.5.

    Returns:
        dict: ``precision`` (truly noisy among flagged), ``recall`` (flagged
        among truly noisy), their harmonic mean ``f1`` (``nan`` where a
        denominator is 0), ``auroc`` of ``1 - clean_prob`` against
        ``is_noisy`` (``nan`` when all or no labels are noisy), and the counts
        ``num_samples``, ``num_noisy``, ``num_flagged``.
    """
    clean_prob = _to_numpy(clean_prob, 'clean_prob').astype(np.float64)
    is_noisy = _binary_targets(is_noisy, 'is_noisy')
    _check_lengths(clean_prob, is_noisy, 'clean_prob', 'is_noisy')
    flagged = clean_prob < threshold
    true_pos = int((flagged & is_noisy).sum())
    num_flagged = int(flagged.sum())
    num_noisy = int(is_noisy.sum())
    precision = _ratio(true_pos, num_flagged)
    recall = _ratio(true_pos, num_noisy)
    if np.isnan(precision) or np.isnan(recall):
        f1 = float('nan')
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return dict(
        precision=precision,
        recall=recall,
        f1=float(f1),
        auroc=binary_auroc(1.0 - clean_prob, is_noisy),
        num_samples=int(clean_prob.size),
        num_noisy=num_noisy,
        num_flagged=num_flagged)
