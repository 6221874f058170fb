# Copyright (c) OpenMMLab. All rights reserved.
"""How well per-sample clean probabilities find the noisy labels.

Noisy-label methods such as ReSup give each training sample a probability of
carrying a clean label; any classifier gives one through its predicted
probability of the training label (:func:`label_scores`). Where the clean
labels are known (synthetic noise), these functions score that probability
as a noise detector: precision, recall and F1 of the samples flagged noisy
at a threshold, and the threshold-free AUROC; and they measure how much of
the noise the model has memorised (:func:`memorisation_rate`).
"""
from typing import Dict, Optional, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, list, tuple]
LABEL_SCORES = ('self_confidence', 'margin')


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


def _class_probs(probs: ArrayLike, labels: ArrayLike):
    """Check ``(N, C)`` probabilities and ``(N,)`` labels in ``[0, C)``."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f'probs must be (N, num_classes), got shape '
                         f'{probs.shape}.')
    labels = _to_numpy(labels, 'labels').astype(np.int64)
    _check_lengths(probs, labels, 'probs', 'labels')
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(
            f'labels must lie in [0, {probs.shape[1]}) for {probs.shape[1]} '
            f'classes, got values from {labels.min()} to {labels.max()}.')
    return probs, labels


def label_scores(probs: ArrayLike,
                 labels: ArrayLike,
                 score: str = 'self_confidence') -> np.ndarray:
    """How much a model's predicted probabilities support each label.

    ``'self_confidence'`` is ``p(given label)``, the label-quality score of
    confident learning: a flipped label gets little probability once the
    model has learned the true class. ``'margin'`` is ``(p(given label) -
    max over other classes p + 1) / 2``: it also asks how strongly another
    class is preferred, and falls below 0.5 exactly when another class is
    more probable than the given one.

    Args:
        probs (np.ndarray | torch.Tensor): ``(N, C)`` predicted class
            probabilities.
        labels (np.ndarray | torch.Tensor): ``(N,)`` given (training)
            labels.
        score (str): ``'self_confidence'`` or ``'margin'``. Defaults to
            ``'self_confidence'``.

    Returns:
        np.ndarray: ``(N,)`` scores in ``[0, 1]``, high where the label is
        likely right; use them as ``clean_prob`` of
        :func:`noise_detection_metrics`.
    """
    if score not in LABEL_SCORES:
        raise ValueError(f'score={score!r} must be one of {LABEL_SCORES}.')
    probs, labels = _class_probs(probs, labels)
    rows = np.arange(labels.size)
    given = probs[rows, labels]
    if score == 'self_confidence':
        return given
    others = probs.copy()
    others[rows, labels] = -np.inf
    return (given - others.max(axis=1) + 1.0) / 2.0


def memorisation_rate(pred_labels: ArrayLike, train_labels: ArrayLike,
                      is_noisy: ArrayLike) -> float:
    """Share of the noisy samples predicted as their (wrong) training label.

    Args:
        pred_labels (np.ndarray | torch.Tensor): ``(N,)`` predicted classes.
        train_labels (np.ndarray | torch.Tensor): ``(N,)`` training labels.
        is_noisy (np.ndarray | torch.Tensor): ``(N,)`` 1/True where the
            training label is wrong.

    Returns:
        float: The rate, ``nan`` when no label is noisy.
    """
    pred_labels = _to_numpy(pred_labels, 'pred_labels')
    train_labels = _to_numpy(train_labels, 'train_labels')
    is_noisy = _binary_targets(is_noisy, 'is_noisy')
    _check_lengths(pred_labels, is_noisy, 'pred_labels', 'is_noisy')
    _check_lengths(train_labels, is_noisy, 'train_labels', 'is_noisy')
    memorised = int((pred_labels[is_noisy] == train_labels[is_noisy]).sum())
    return _ratio(memorised, int(is_noisy.sum()))


def noise_detection_metrics(clean_prob: ArrayLike,
                            is_noisy: ArrayLike,
                            threshold: float = 0.5,
                            pred_labels: Optional[ArrayLike] = None,
                            train_labels: Optional[ArrayLike] = None
                            ) -> Dict[str, float]:
    """Score clean probabilities as a detector of noisy labels.

    A sample is flagged noisy when ``clean_prob < threshold``.

    Args:
        clean_prob (np.ndarray | torch.Tensor): Per-sample probability that
            the label is clean, shape ``(N,)``.
        is_noisy (np.ndarray | torch.Tensor): 1/True where the given label
            differs from the clean one, shape ``(N,)``.
        threshold (float): Flagging threshold. Defaults to 0.5.
        pred_labels (np.ndarray | torch.Tensor, optional): ``(N,)``
            predicted classes; with ``train_labels`` adds ``memorisation``.
        train_labels (np.ndarray | torch.Tensor, optional): ``(N,)``
            training labels.

    Returns:
        dict: ``precision`` (truly noisy among flagged), ``recall`` (flagged
        among truly noisy), their harmonic mean ``f1`` (``nan`` where a
        denominator is 0), ``auroc`` of ``1 - clean_prob`` against
        ``is_noisy`` (``nan`` when all or no labels are noisy), the counts
        ``num_samples``, ``num_noisy``, ``num_flagged`` and, when the
        predictions are given, ``memorisation``
        (:func:`memorisation_rate`).
    """
    if (pred_labels is None) != (train_labels is None):
        raise ValueError('pass both pred_labels and train_labels to get the '
                         'memorisation rate, or neither.')
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
    metrics = dict(
        precision=precision,
        recall=recall,
        f1=float(f1),
        auroc=binary_auroc(1.0 - clean_prob, is_noisy),
        num_samples=int(clean_prob.size),
        num_noisy=num_noisy,
        num_flagged=num_flagged)
    if pred_labels is not None:
        metrics['memorisation'] = memorisation_rate(pred_labels,
                                                    train_labels, is_noisy)
    return metrics


def prediction_noise_metrics(probs: ArrayLike,
                             train_labels: ArrayLike,
                             is_noisy: ArrayLike,
                             score: str = 'self_confidence',
                             threshold: float = 0.5) -> Dict[str, float]:
    """Noise detection and memorisation from a classifier's predictions.

    Args:
        probs (np.ndarray | torch.Tensor): ``(N, C)`` predicted class
            probabilities of the training samples.
        train_labels (np.ndarray | torch.Tensor): ``(N,)`` training labels.
        is_noisy (np.ndarray | torch.Tensor): ``(N,)`` 1/True where the
            training label is wrong.
        score (str): Clean score of :func:`label_scores`. Defaults to
            ``'self_confidence'``.
        threshold (float): A sample whose score is below it is flagged
            noisy. Defaults to 0.5.

    Returns:
        dict: :func:`noise_detection_metrics` of the scores, with
        ``memorisation`` of the argmax predictions.
    """
    probs, train_labels = _class_probs(probs, train_labels)
    return noise_detection_metrics(
        label_scores(probs, train_labels, score),
        is_noisy,
        threshold,
        pred_labels=probs.argmax(axis=1),
        train_labels=train_labels)
