# Copyright (c) OpenMMLab. All rights reserved.
"""The published RAF-DB noise, on the real label list.

EAC's noise01/02/03.txt (train rows only), ReSup's six files (all 15,339
rows, corrupted test rows, CRLF in one of them) and LA-Net's in-code draw.
The replica has the real list and one tiny placeholder image per name.
"""
import os
import os.path as osp
import random
import shutil
from unittest import mock

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger

from mmfer.datasets import RAFDB_CLASSES, RAFDBDataset

LIST = 'list_patition_label.txt'
EAC_FILES = ('noise01.txt', 'noise02.txt', 'noise03.txt')
RESUP_FILES = tuple(f'{r}noise_train1.txt'
                    for r in ('0.1', '0.2', '0.3', '0.4', '0.5', 'us'))
# RAF-DB file label -> LA-Net's class index, as LA-Net's loader writes it
LANET_REMAP = {1: 5, 2: 2, 3: 1, 4: 3, 5: 4, 6: 0, 7: 6}


@pytest.fixture(scope='module')
def replica_root(tmp_path_factory):
    return tmp_path_factory.mktemp('rafdb')


@pytest.fixture
def rafdb(shared_rafdb_labels, replica_root):
    """RAF-DB basic with the real label files, built once per module."""
    emolabel = replica_root / 'EmoLabel'
    if emolabel.is_dir():
        return str(replica_root)
    images = replica_root / 'Image' / 'aligned'
    images.mkdir(parents=True)
    jpeg = cv2.imencode('.jpg', np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    with open(osp.join(shared_rafdb_labels, LIST)) as f:
        for line in f:
            stem = osp.splitext(line.split()[0])[0]
            (images / f'{stem}_aligned.jpg').write_bytes(jpeg)
    emolabel.mkdir()
    for name in (LIST, ) + EAC_FILES:
        os.symlink(osp.join(shared_rafdb_labels, name), emolabel / name)
    for name in RESUP_FILES:
        os.symlink(
            osp.join(shared_rafdb_labels, 'resup', name), emolabel / name)
    return str(replica_root)


def build(root, noise_file=None, **kwargs):
    if noise_file is not None:
        noise_file = osp.join('EmoLabel', noise_file)
    return RAFDBDataset(data_root=root, noise_file=noise_file, **kwargs)


def labels(dataset, key='gt_label'):
    return np.array([
        dataset.get_data_info(i)[key] for i in range(len(dataset))
    ])


def read_rows(path):
    with open(path) as f:
        return dict(line.split() for line in f if line.strip())


def test_label_list_splits_and_class_counts(rafdb):
    train = build(rafdb)
    assert len(train) == 12271 and len(build(rafdb, split='test')) == 3068
    assert np.bincount(labels(train)).tolist() == \
        [1290, 281, 717, 4772, 1982, 705, 2524]


@pytest.mark.parametrize('name,flipped', [('noise01.txt', 1241),
                                          ('noise02.txt', 2498),
                                          ('noise03.txt', 3722)])
def test_eac_files(rafdb, name, flipped):
    """10.11 / 20.36 / 30.33 % flipped."""
    noisy = build(rafdb, noise_file=name)
    assert noisy.noise_report['num_noisy'] == flipped
    assert noisy.noise_report['num_samples'] == 12271


@pytest.mark.parametrize('name,flipped,test_flipped', [
    ('0.1noise_train1.txt', 1227, 286),
    ('0.2noise_train1.txt', 2491, 581),
    ('0.3noise_train1.txt', 3613, 940),
    ('0.4noise_train1.txt', 4907, 1235),
    ('0.5noise_train1.txt', 6099, 1515),
])
def test_resup_files_use_train_rows_only(rafdb, name, flipped,
                                         test_flipped):
    """9.999 / 20.30 / 29.44 / 39.99 / 49.70 % on the train rows; the
    corrupted test rows are ignored and counted in the log."""
    with mock.patch.object(MMLogger.get_current_instance(), 'info') as info:
        noisy = build(rafdb, noise_file=name)
    assert noisy.noise_report['num_noisy'] == flipped
    assert len(noisy) == 12271
    logged = ' '.join(call.args[0] for call in info.call_args_list)
    assert 'ignored 3068 rows of noise_file' in logged
    # the file's test rows are corrupted, yet the test split stays clean
    rows = read_rows(osp.join(rafdb, 'EmoLabel', name))
    clean = read_rows(osp.join(rafdb, 'EmoLabel', LIST))
    tests = [n for n in clean if n.startswith('test_')]
    assert sum(rows[n] != clean[n] for n in tests) == test_flipped
    test = build(rafdb, split='test')
    assert (labels(test) + 1).tolist() == [int(clean[n]) for n in tests]


def test_resup_class_dependent_file(rafdb):
    """usnoise: CRLF lines, 11.55 % with per-class rates 10/50/30/0/40/20/0
    (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral)."""
    path = osp.join(rafdb, 'EmoLabel', RESUP_FILES[-1])
    assert b'\r\n' in open(path, 'rb').read(100)
    noisy = build(rafdb, noise_file=RESUP_FILES[-1])
    assert noisy.noise_report['num_noisy'] == 1417
    clean, flipped = labels(noisy, 'clean_label'), labels(noisy, 'is_noisy')
    assert np.bincount(clean[flipped], minlength=7).tolist() == \
        [129, 140, 215, 0, 792, 141, 0]


def lanet_reference(file_labels, rate, seed=0):
    """LA-Net's loop, verbatim: labels in LA-Net's class order."""
    random.seed(seed)
    out = []
    for label in file_labels:
        y = LANET_REMAP[label]
        if random.random() < rate:
            y = (y + random.randint(1, 6)) % 7
        out.append(y)
    return out


@pytest.mark.parametrize('rate,flipped', [(0.1, 1219), (0.2, 2481),
                                          (0.3, 3703)])
def test_lanet_draw_is_reproduced_exactly(rafdb, rate, flipped):
    state = random.getstate()
    noisy = build(rafdb, noise_rate=rate, noise_type='lanet')
    assert random.getstate() == state  # the global RNG is left alone
    clean = labels(noisy, 'clean_label')
    reference = lanet_reference(clean + 1, rate)
    to_lanet = [LANET_REMAP[y + 1] for y in range(7)]
    assert [to_lanet[y] for y in labels(noisy)] == reference
    assert noisy.noise_report['num_noisy'] == flipped
    if rate == 0.1:
        assert np.flatnonzero(labels(noisy, 'is_noisy'))[:5].tolist() == \
            [35, 45, 50, 63, 68]


def test_lanet_draw_in_another_class_order(rafdb):
    """Drawn by class name: the same faces flip to the same expressions
    whatever the order the labels are numbered in."""
    native = build(rafdb, noise_rate=0.2, noise_type='lanet')
    mapped = build(
        rafdb, noise_rate=0.2, noise_type='lanet', label_map='fer2013')
    order = [mapped.CLASSES.index(c) for c in RAFDB_CLASSES]
    assert [order[y] for y in labels(native)] == labels(mapped).tolist()


def test_name_in_no_split_names_file_and_line(rafdb, tmp_path):
    path = tmp_path / 'noise.txt'
    shutil.copy(osp.join(rafdb, 'EmoLabel', RESUP_FILES[0]), path)
    with open(path, 'a') as f:
        f.write('train_99999.jpg 1\n')
    with pytest.raises(ValueError,
                       match=f'{path}:15340: train_99999.jpg is not a '
                       'sample of'):
        build(rafdb, noise_file=str(path))
