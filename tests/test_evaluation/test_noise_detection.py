# Copyright (c) OpenMMLab. All rights reserved.
"""Noise-detection metrics: AUROC with ties, precision, recall and F1."""
import math

import numpy as np
import pytest
import torch

from mmfer.evaluation.metrics.noise_detection import (binary_auroc,
                                                      noise_detection_metrics)


def pairwise_auroc(scores, targets):
    """Brute force: the share of (positive, negative) pairs ranked right,
    ties counting one half."""
    pos = [s for s, t in zip(scores, targets) if t]
    neg = [s for s, t in zip(scores, targets) if not t]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos
               for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize('scores,targets,expected', [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
    # The tied pair (0.5, 0.5) counts one half: (0.5 + 1 + 2) / 4.
    ([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1], 0.875),
    ([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0], 0.5),
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
    ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.0),
])
def test_binary_auroc_by_hand(scores, targets, expected):
    assert binary_auroc(np.array(scores), np.array(targets)) == expected


def test_binary_auroc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 6, 200) / 5.0  # many ties
        targets = rng.random(200) < 0.3
        assert binary_auroc(scores, targets) == pytest.approx(
            pairwise_auroc(scores, targets), abs=1e-12)
    scores = rng.random(300)
    targets = rng.integers(0, 2, 300)
    assert binary_auroc(torch.from_numpy(scores),
                        torch.from_numpy(targets)) == pytest.approx(
                            pairwise_auroc(scores, targets), abs=1e-12)


def test_binary_auroc_nan_and_errors():
    assert math.isnan(binary_auroc([0.1, 0.2], [1, 1]))
    assert math.isnan(binary_auroc([0.1, 0.2], [False, False]))
    with pytest.raises(ValueError, match='3 entries'):
        binary_auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match='0/1'):
        binary_auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match='NaN'):
        binary_auroc([0.1, np.nan], [0, 1])


def test_noise_detection_metrics_by_hand():
    clean_prob = torch.tensor([0.1, 0.4, 0.6, 0.9, 0.2, 0.7])
    is_noisy = torch.tensor([1, 0, 1, 0, 1, 0])
    out = noise_detection_metrics(clean_prob, is_noisy)
    # Flagged (< 0.5): samples 0, 1, 4; truly noisy: 0, 2, 4.
    assert (out['num_samples'], out['num_noisy'],
            out['num_flagged']) == (6, 3, 3)
    assert out['precision'] == pytest.approx(2 / 3)
    assert out['recall'] == pytest.approx(2 / 3)
    assert out['f1'] == pytest.approx(2 / 3)
    # 1 - p: noisy (0.9, 0.4, 0.8) vs clean (0.6, 0.1, 0.3): 8 of 9 pairs.
    assert out['auroc'] == pytest.approx(8 / 9)


def test_noise_detection_metrics_thresholds_and_empty_cases():
    clean_prob = np.array([0.1, 0.4, 0.6, 0.9, 0.2, 0.7])
    is_noisy = np.array([True, False, True, False, True, False])
    everything = noise_detection_metrics(clean_prob, is_noisy, threshold=1.0)
    assert everything['precision'] == 0.5 and everything['recall'] == 1.0
    assert everything['f1'] == pytest.approx(2 / 3)
    # A value equal to the threshold is not flagged.
    nothing = noise_detection_metrics(clean_prob, is_noisy, threshold=0.1)
    assert nothing['num_flagged'] == 0 and math.isnan(nothing['precision'])
    assert nothing['recall'] == 0.0 and math.isnan(nothing['f1'])
    wrong = noise_detection_metrics([0.9, 0.1], [1, 0])
    assert (wrong['precision'], wrong['recall'], wrong['f1'],
            wrong['auroc']) == (0.0, 0.0, 0.0, 0.0)
    clean = noise_detection_metrics([0.9, 0.1], [0, 0])
    assert math.isnan(clean['recall']) and math.isnan(clean['auroc'])
    assert clean['precision'] == 0.0


def test_noise_detection_metrics_length_mismatch():
    with pytest.raises(ValueError, match='clean_prob has 3 entries'):
        noise_detection_metrics([0.1, 0.2, 0.3], [0, 1])
