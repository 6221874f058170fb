# Copyright (c) OpenMMLab. All rights reserved.
"""Synthetic label noise: transition matrices and seeded label flipping.

No I/O. A transition matrix ``T`` has ``T[i, j]`` = probability that a
sample of clean class ``i`` is given label ``j``; each row sums to 1.
"""
import random
from typing import Dict, Optional, Sequence

import numpy as np

NOISE_TYPES = ('symmetric', 'asymmetric', 'lanet')

# The class order LA-Net's public code draws its RAF-DB noise in: it
# renumbers RAF-DB's file labels {1:5, 2:2, 3:1, 4:3, 5:4, 6:0, 7:6}.
LANET_CLASSES = ('anger', 'disgust', 'fear', 'happiness', 'sadness',
                 'surprise', 'neutral')

# Asymmetric FER noise: each expression is mislabelled as the one annotators
# confuse it with most often (the confusions reported for RAF-DB, FERPlus and
# AffectNet: surprise/fear, disgust/anger, the low-intensity expressions with
# neutral). Keyed by canonical class name, so it applies to any class order.
ASYMMETRIC_FER_TARGETS: Dict[str, str] = {
    'surprise': 'fear',
    'fear': 'surprise',
    'disgust': 'anger',
    'happiness': 'neutral',
    'sadness': 'neutral',
    'anger': 'disgust',
    'neutral': 'sadness',
    'contempt': 'disgust',
}

_SYNONYMS = {
    'happy': 'happiness',
    'sad': 'sadness',
    'angry': 'anger',
    'surprised': 'surprise',
    'disgusted': 'disgust',
    'fearful': 'fear',
}


def canonical_class_name(name: str) -> str:
    """Map a dataset's class name to mmfer's canonical lower-case name.

    Args:
        name (str): A class name such as ``'Happy'`` or ``'Happiness'``.

    Returns:
        str: The canonical name, e.g. ``'happiness'``.
    """
    key = name.strip().lower()
    return _SYNONYMS.get(key, key)


def check_noise_rate(rate: float, key: str = 'noise_rate') -> float:
    """Validate a noise rate.

    Args:
        rate (float): The probability that a label is flipped.
        key (str): The config key the value came from, for the message.

    Returns:
        float: ``rate`` as a float.
    """
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f'{key}={rate!r} is not a number; give a float in '
                         f'[0, 1), e.g. {key}=0.3 for 30% noisy labels.')
    if not 0.0 <= rate < 1.0:
        raise ValueError(f'{key}={rate} is outside [0, 1): it is the share of '
                         'flipped labels, e.g. 0.3 for 30%.')
    return rate


def symmetric_transition(num_classes: int, rate: float) -> np.ndarray:
    """Flip with probability ``rate`` to a uniformly drawn *other* class.

    This is the protocol of the public RAF-DB noise files (EAC, SCN).

    Args:
        num_classes (int): Number of classes.
        rate (float): Flip probability.

    Returns:
        np.ndarray: ``(C, C)`` float64 transition matrix.
    """
    rate = check_noise_rate(rate)
    if num_classes < 2:
        raise ValueError(f'symmetric noise needs >= 2 classes, got '
                         f'{num_classes}')
    matrix = np.full((num_classes, num_classes), rate / (num_classes - 1))
    np.fill_diagonal(matrix, 1.0 - rate)
    return matrix


def asymmetric_transition(classes: Sequence[str],
                          rate: float,
                          targets: Optional[Dict[str, str]] = None
                          ) -> np.ndarray:
    """Flip with probability ``rate`` to each class's most confused class.

    Args:
        classes (Sequence[str]): The dataset's class names, in label order.
        rate (float): Flip probability.
        targets (dict, optional): Canonical class name -> canonical name of
            the class it is flipped to. Defaults to
            :data:`ASYMMETRIC_FER_TARGETS`.

    Returns:
        np.ndarray: ``(C, C)`` float64 transition matrix.
    """
    rate = check_noise_rate(rate)
    targets = ASYMMETRIC_FER_TARGETS if targets is None else targets
    names = [canonical_class_name(c) for c in classes]
    matrix = np.eye(len(names))
    for i, name in enumerate(names):
        target = targets.get(name)
        if target is None or target not in names:
            raise ValueError(
                f'asymmetric noise has no target class for {classes[i]!r} '
                f'among {list(classes)}; pass noise_transition= with your '
                'own matrix.')
        matrix[i, i] = 1.0 - rate
        matrix[i, names.index(target)] += rate
    return matrix


def check_transition(matrix, num_classes: int,
                     key: str = 'noise_transition') -> np.ndarray:
    """Validate a user transition matrix.

    Args:
        matrix (array-like): ``(C, C)`` row-stochastic matrix.
        num_classes (int): Expected ``C``.
        key (str): The config key, for the message.

    Returns:
        np.ndarray: The matrix as float64.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (num_classes, num_classes):
        raise ValueError(f'{key} must be a {num_classes}x{num_classes} '
                         f'matrix (one row per class), got shape '
                         f'{matrix.shape}.')
    if (matrix < 0).any() or not np.allclose(matrix.sum(1), 1.0, atol=1e-6):
        raise ValueError(f'{key} must have non-negative rows that each sum to '
                         f'1; row sums are {np.round(matrix.sum(1), 6)}.')
    return matrix


def flip_labels(labels: Sequence[int], transition: np.ndarray,
                seed: int) -> np.ndarray:
    """Draw noisy labels from clean ones, deterministically from ``seed``.

    One uniform number per sample, in sample order, so the result depends
    only on the labels, the matrix and the seed (not on worker count).

    Args:
        labels (Sequence[int]): Clean labels.
        transition (np.ndarray): ``(C, C)`` transition matrix.
        seed (int): Random seed.

    Returns:
        np.ndarray: int64 noisy labels.
    """
    labels = np.asarray(labels, dtype=np.int64)
    cumulative = np.cumsum(transition, axis=1)[labels]
    cumulative[:, -1] = 1.0  # guard the last bin against rounding
    u = np.random.default_rng(seed).random(len(labels))
    return (u[:, None] >= cumulative).sum(1).astype(np.int64)


def lanet_flip_labels(labels: Sequence[int], classes: Sequence[str],
                      rate: float, seed: int = 0) -> np.ndarray:
    """Draw noisy labels exactly as LA-Net's RAF-DB loader does.

    Python's ``random`` is seeded once with ``seed``; then, for each sample
    in order, ``random.random() < rate`` flips the label ``y`` (in LA-Net's
    class order, :data:`LANET_CLASSES`) to ``(y + random.randint(1, 6)) %
    7``, a uniform other class. ``randint`` is drawn only for flipped
    samples, so the draw is tied to the sample order and to that class
    order: with RAF-DB's train rows in file order and ``seed=0`` (LA-Net's
    ``set_seed(0)``) it flips 1,219 / 2,481 / 3,703 labels at rates
    0.1 / 0.2 / 0.3, the labels LA-Net trained on. A private
    ``random.Random`` is used, so the global RNG is left alone.

    Args:
        labels (Sequence[int]): Clean labels, indices into ``classes``.
        classes (Sequence[str]): The dataset's class names in label order;
            they must be LA-Net's 7 expressions, in any order.
        rate (float): Flip probability.
        seed (int): Seed of Python's RNG. Defaults to 0 (LA-Net's).

    Returns:
        np.ndarray: int64 noisy labels, indices into ``classes``.
    """
    rate = check_noise_rate(rate)
    names = [canonical_class_name(c) for c in classes]
    if sorted(names) != sorted(LANET_CLASSES):
        raise ValueError(
            f"noise_type='lanet' draws in LA-Net's 7-class order "
            f'({", ".join(LANET_CLASSES)}), but the classes are '
            f'{list(classes)}. Pick those 7 classes with label_map (e.g. '
            "label_map='rafdb'), or use noise_type='symmetric'.")
    to_lanet = [LANET_CLASSES.index(n) for n in names]
    from_lanet = [names.index(n) for n in LANET_CLASSES]
    rng = random.Random(seed)
    noisy = []
    for label in labels:
        y = to_lanet[label]
        if rng.random() < rate:
            y = (y + rng.randint(1, 6)) % 7
        noisy.append(from_lanet[y])
    return np.array(noisy, dtype=np.int64)


def noise_summary(clean: Sequence[int], noisy: Sequence[int],
                  classes: Sequence[str]) -> dict:
    """Realised noise rate overall and per clean class.

    Args:
        clean (Sequence[int]): Clean labels.
        noisy (Sequence[int]): Labels trained on.
        classes (Sequence[str]): Class names.

    Returns:
        dict: ``num_noisy``, ``num_samples``, ``rate`` and ``per_class``
        (class name -> rate, ``nan`` for an absent class).
    """
    clean = np.asarray(clean)
    flipped = clean != np.asarray(noisy)
    per_class = {}
    for idx, name in enumerate(classes):
        mask = clean == idx
        per_class[name] = float(flipped[mask].mean()) if mask.any() else float(
            'nan')
    return dict(
        num_noisy=int(flipped.sum()),
        num_samples=int(len(clean)),
        rate=float(flipped.mean()) if len(clean) else 0.0,
        per_class=per_class)
