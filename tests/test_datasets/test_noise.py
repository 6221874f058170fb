# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import random
from unittest import mock

import numpy as np
import pytest
from fer_replicas import make_ferplus
from mmengine.logging import MMLogger

from mmfer.datasets import FERPlusDataset
from mmfer.datasets.class_map import CLASS_ORDERS, class_index_map
from mmfer.datasets.noise import (asymmetric_transition, check_noise_rate,
                                  check_transition, flip_labels,
                                  lanet_flip_labels, noise_summary,
                                  symmetric_transition)
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


def test_lanet_flip_decisions_follow_the_seeded_sequence():
    """Which samples flip depends on the seed only: LA-Net's published
    first flips at 10 % (seed 0) hold for any labels."""
    state = random.getstate()
    for labels in (np.zeros(100, np.int64), np.arange(100) % 7):
        noisy = lanet_flip_labels(labels, RAFDB_CLASSES, 0.1, seed=0)
        assert np.flatnonzero(noisy != labels)[:5].tolist() == \
            [35, 45, 50, 63, 68]
    assert random.getstate() == state
    other_seed = lanet_flip_labels(labels, RAFDB_CLASSES, 0.1, seed=1)
    assert not np.array_equal(other_seed, noisy)
    assert np.array_equal(
        lanet_flip_labels(labels, RAFDB_CLASSES, 0.0), labels)


def test_lanet_flips_by_class_name_to_other_classes():
    labels = np.arange(14000) % 7
    noisy = lanet_flip_labels(labels, RAFDB_CLASSES, 0.3, seed=2)
    report = noise_summary(labels, noisy, RAFDB_CLASSES)
    assert report['rate'] == pytest.approx(0.3, abs=0.01)
    counts = np.bincount(noisy[noisy != labels], minlength=7)
    assert counts.min() > 0.8 * counts.mean()
    # the same faces numbered in FER2013's order, with its names ('Angry'),
    # get the same noise
    fer2013 = ('Angry', 'Disgust', 'Fear', 'Happy', 'Sad', 'Surprise',
               'Neutral')
    to_fer = class_index_map(RAFDB_CLASSES, fer2013)
    renumbered = lanet_flip_labels(to_fer[labels], fer2013, 0.3, seed=2)
    assert np.array_equal(renumbered, to_fer[noisy])


def test_lanet_needs_the_seven_basic_expressions():
    with pytest.raises(ValueError, match="label_map='rafdb'"):
        lanet_flip_labels([0, 1], CLASS_ORDERS['ferplus'], 0.1)


@pytest.mark.parametrize('vote_source', ['fer2013new', 'label_csv'])
def test_ferplus_noise_file_for_every_split(tmp_path, vote_source):
    """One noise file for all of FERPlus: rows of other splits and of
    dropped images are ignored; names FERPlus does not have are errors."""
    root = make_ferplus(str(tmp_path / 'ferplus'))
    with open(osp.join(root, 'fer2013new.csv')) as f:
        names = [line.split(',')[1] for line in f][1:]
    names = list(dict.fromkeys(n for n in names if n))
    with open(osp.join(root, 'noise.txt'), 'w') as f:
        f.write(''.join(f'{name} 0\n' for name in names))
    kwargs = dict(data_root=root, img_source='folders',
                  vote_source=vote_source, noise_file='noise.txt')
    with mock.patch.object(MMLogger.get_current_instance(), 'info') as info:
        train = FERPlusDataset(**kwargs)
    assert (len(names), len(train)) == (40, 19)
    assert {train.get_data_info(i)['gt_label'] for i in range(19)} == {0}
    logged = ' '.join(call.args[0] for call in info.call_args_list)
    assert 'ignored 21 rows of noise_file' in logged
    with open(osp.join(root, 'noise.txt'), 'a') as f:
        f.write('fer9999999.png 0\n')
    with pytest.raises(ValueError, match=r'noise.txt:41: fer9999999.png'):
        FERPlusDataset(**kwargs)
