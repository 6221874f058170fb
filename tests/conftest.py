# Copyright (c) OpenMMLab. All rights reserved.
"""Shared fixtures: tiny on-disk replicas of the FER datasets."""
import os
import os.path as osp

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_FIXTURES = osp.join(osp.dirname(REPO), 'shared', 'fixtures')

os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture
def tiny_rafdb(tmp_path):
    """A RAF-DB basic replica: 28 train / 14 test images of 32x32."""
    from fer_replicas import make_rafdb
    return make_rafdb(str(tmp_path / 'rafdb'), num_train=28, num_test=14)


@pytest.fixture
def shared_rafdb_labels():
    """The real RAF-DB label list and EAC noise files from ../shared."""
    path = osp.join(SHARED_FIXTURES, 'rafdb_labels')
    if not osp.isdir(path):
        pytest.skip(f'{path} is absent: the real RAF-DB annotation fixtures '
                    'live in ../shared beside the repo (CI has them).')
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
