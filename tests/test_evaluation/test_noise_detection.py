# Copyright (c) OpenMMLab. All rights reserved.
"""Noise-detection metrics: AUROC with ties, precision, recall, F1, label
scores, memorisation and the registered metric."""
import math

import numpy as np
import pytest
import torch

from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mmfer.evaluation import NoiseDetectionMetric
from mmfer.evaluation.metrics.noise_detection import (
    binary_auroc, label_scores, memorisation_rate, noise_detection_metrics,
    prediction_noise_metrics)


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


PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25],
                  [0.4, 0.4, 0.2]])
LABELS = np.array([0, 0, 1, 1])


def test_label_scores_by_hand():
    assert label_scores(PROBS, LABELS).tolist() == [0.7, 0.1, 0.5, 0.4]
    # (p_given - best other + 1) / 2
    margin = label_scores(torch.from_numpy(PROBS), torch.from_numpy(LABELS),
                          'margin')
    assert margin == pytest.approx([0.75, 0.25, 0.625, 0.5])
    with pytest.raises(ValueError, match='score='):
        label_scores(PROBS, LABELS, 'entropy')
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        label_scores(PROBS, [0, 0, 3, 1])
    with pytest.raises(ValueError, match='num_classes'):
        label_scores(PROBS[0], LABELS[:1])


def test_label_scores_match_a_naive_loop():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), 50)
    labels = rng.integers(0, 7, 50)
    for i, (p, y) in enumerate(zip(probs, labels)):
        best_other = max(p[k] for k in range(7) if k != y)
        assert label_scores(probs, labels, 'margin')[i] == pytest.approx(
            (p[y] - best_other + 1) / 2)
        assert label_scores(probs, labels)[i] == p[y]


def test_memorisation_rate_by_hand():
    # noisy samples 0, 2, 3: 0 and 3 are predicted as their training label
    assert memorisation_rate([1, 2, 0, 4], [1, 1, 1, 4],
                             [1, 0, 1, 1]) == pytest.approx(2 / 3)
    assert math.isnan(memorisation_rate([1], [1], [0]))
    with pytest.raises(ValueError, match='train_labels has 1 entries'):
        memorisation_rate([1, 2], [1], [0, 1])


def test_noise_detection_metrics_memorisation_is_optional():
    out = noise_detection_metrics([0.2, 0.8], [1, 0])
    assert 'memorisation' not in out
    out = noise_detection_metrics([0.2, 0.8], [1, 0], pred_labels=[3, 1],
                                  train_labels=[3, 2])
    assert out['memorisation'] == 1.0
    with pytest.raises(ValueError, match='both'):
        noise_detection_metrics([0.2, 0.8], [1, 0], pred_labels=[3, 1])


def test_prediction_noise_metrics_by_hand():
    is_noisy = np.array([0, 1, 0, 1])
    out = prediction_noise_metrics(PROBS, LABELS, is_noisy)
    # self-confidence 0.7, 0.1, 0.5, 0.4: flagged 1 and 3, both noisy
    assert (out['precision'], out['recall'], out['f1']) == (1.0, 1.0, 1.0)
    assert out['auroc'] == 1.0
    # argmax 0, 2, 1, 0: noisy sample 1 (label 0) -> 2, 3 (label 1) -> 0
    assert out['memorisation'] == 0.0
    out = prediction_noise_metrics(PROBS, LABELS, is_noisy, 'margin', 0.6)
    # margins 0.75, 0.25, 0.625, 0.5: flagged 1 and 3
    assert out['num_flagged'] == 2 and out['precision'] == 1.0


def predicted_sample(idx, probs, label, noisy):
    sample = DataSample(metainfo=dict(sample_idx=idx)).set_gt_label(label)
    sample.set_pred_score(torch.tensor(probs))
    sample.set_field(torch.tensor([noisy]), 'is_noisy')
    return sample.to_dict()


def test_noise_detection_metric_counts_repeats_once():
    metric = METRICS.build(dict(type='NoiseDetectionMetric'))
    assert isinstance(metric, NoiseDetectionMetric)
    is_noisy = [False, True, False, True]
    samples = [
        predicted_sample(i, PROBS[i], int(LABELS[i]), is_noisy[i])
        for i in range(4)
    ]
    # a distributed sampler's padding repeats sample 1
    metric.process({}, samples[:2])
    metric.process({}, samples[2:] + samples[1:2])
    out = metric.evaluate(5)
    expected = prediction_noise_metrics(PROBS, LABELS, is_noisy)
    assert set(out) == {f'noise/{k}' for k in (
        'precision', 'recall', 'f1', 'auroc', 'memorisation')}
    for key, value in out.items():
        assert value == pytest.approx(expected[key.split('/')[1]])
    # flagged: 1, 3 (noisy) and 4 (clean); counting the repeat of 4 twice
    # would give a precision of 2 / 4
    clean_flagged = predicted_sample(4, [0.9, 0.05, 0.05], 1, False)
    metric.process({}, samples + [clean_flagged])
    metric.process({}, [clean_flagged])
    assert metric.evaluate(6)['noise/precision'] == pytest.approx(2 / 3)


def test_noise_detection_metric_needs_is_noisy():
    metric = NoiseDetectionMetric(score='margin')
    sample = DataSample(metainfo=dict(sample_idx=3)).set_gt_label(0)
    sample.set_pred_score(torch.tensor([0.5, 0.5]))
    with pytest.raises(KeyError, match='sample 3 has no is_noisy'):
        metric.process({}, [sample.to_dict()])
    with pytest.raises(ValueError, match='score='):
        NoiseDetectionMetric(score='loss')


def test_noise_detection_metric_counts_distinct_samples_on_request():
    metric = NoiseDetectionMetric(with_counts=True)
    is_noisy = [False, True, False, True]
    samples = [
        predicted_sample(i, PROBS[i], int(LABELS[i]), is_noisy[i])
        for i in range(4)
    ]
    metric.process({}, samples + samples[1:2])  # sample 1 repeated
    out = metric.evaluate(5)
    expected = prediction_noise_metrics(PROBS, LABELS, is_noisy)
    assert (out['noise/num_samples'], out['noise/num_noisy'],
            out['noise/num_flagged']) == (4, 2, expected['num_flagged'])
    assert out['noise/precision'] == pytest.approx(expected['precision'])
