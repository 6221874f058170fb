# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest

from mmfer.datasets.noise import (asymmetric_transition, check_noise_rate,
                                  check_transition, flip_labels,
                                  noise_summary, symmetric_transition)
from mmfer.datasets.rafdb import RAFDB_CLASSES


def test_symmetric_transition():
    matrix = symmetric_transition(7, 0.3)
    assert np.allclose(matrix.sum(1), 1)
    assert np.allclose(np.diag(matrix), 0.7)
    assert np.allclose(matrix[0, 1:], 0.05)


def test_asymmetric_transition_follows_class_names():
    matrix = asymmetric_transition(RAFDB_CLASSES, 0.2)
    fear, surprise = RAFDB_CLASSES.index('Fear'), RAFDB_CLASSES.index(
        'Surprise')
    assert matrix[surprise, fear] == pytest.approx(0.2)
    assert matrix[fear, surprise] == pytest.approx(0.2)
    assert np.allclose(np.diag(matrix), 0.8)
    # the same noise for another class order (FER2013 style names)
    other = ('Angry', 'Disgust', 'Fear', 'Happy', 'Sad', 'Surprise',
             'Neutral')
    matrix = asymmetric_transition(other, 0.2)
    assert matrix[3, 6] == pytest.approx(0.2)  # happy -> neutral


def test_asymmetric_needs_known_classes():
    with pytest.raises(ValueError, match='noise_transition'):
        asymmetric_transition(('cat', 'dog'), 0.2)


@pytest.mark.parametrize('rate', [-0.1, 1.0, 1.5, 'a lot'])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match='noise_rate'):
        check_noise_rate(rate)


def test_bad_transition():
    with pytest.raises(ValueError, match='3x3'):
        check_transition(np.eye(2), 3)
    with pytest.raises(ValueError, match='sum to'):
        check_transition(np.full((3, 3), 0.5), 3)


def test_flip_is_seeded_and_realises_the_rate():
    labels = np.arange(20000) % 7
    matrix = symmetric_transition(7, 0.3)
    a = flip_labels(labels, matrix, seed=3)
    assert np.array_equal(a, flip_labels(labels, matrix, seed=3))
    assert not np.array_equal(a, flip_labels(labels, matrix, seed=4))
    report = noise_summary(labels, a, RAFDB_CLASSES)
    assert report['rate'] == pytest.approx(0.3, abs=0.01)
    for rate in report['per_class'].values():
        assert rate == pytest.approx(0.3, abs=0.03)
    flipped = a[a != labels]
    # flips go uniformly to the six other classes
    counts = np.bincount(flipped, minlength=7)
    assert counts.min() > 0.8 * counts.mean()


def test_flip_with_zero_rate_keeps_labels():
    labels = np.arange(100) % 7
    assert np.array_equal(
        flip_labels(labels, symmetric_transition(7, 0.0), 0), labels)


def test_user_transition_is_followed():
    matrix = np.eye(3)[[1, 2, 0]]  # always shift by one
    assert flip_labels([0, 1, 2], matrix, 0).tolist() == [1, 2, 0]
