# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from fer_replicas import SFEW_CLASSES, make_fer_folder
from mmpretrain.registry import DATASETS

import mmfer  # noqa: F401
from mmfer.datasets import FERDataset
from mmfer.datasets.noise import flip_labels, symmetric_transition

PIPELINE = [dict(type='LoadFERImage'), dict(type='PackFERInputs')]


@pytest.fixture
def sfew(tmp_path):
    return make_fer_folder(str(tmp_path / 'sfew'))


def build(root, **kwargs):
    kwargs.setdefault('serialize_data', False)  # skip mmengine's gc.collect
    kwargs.setdefault('classes', SFEW_CLASSES)
    return DATASETS.build(dict(type='FERDataset', data_root=root, **kwargs))


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_class_folders(sfew):
    train = build(sfew, data_prefix='Train', pipeline=PIPELINE)
    assert train.CLASSES == SFEW_CLASSES
    data = infos(train)
    assert len(data) == 21
    assert [d['gt_label'] for d in data] == [i // 3 for i in range(21)]
    assert data[4]['name'] == 'Disgust/Disgust_1.png'
    assert data[4]['img_path'] == osp.join(sfew, 'Train', 'Disgust',
                                           'Disgust_1.png')
    # the packed image is the class folder's file, channels first
    np.testing.assert_array_equal(train[4]['inputs'].permute(1, 2, 0).numpy(),
                                  cv2.imread(data[4]['img_path']))
    # the class order comes from the config, not from the folder listing
    order = tuple(reversed(SFEW_CLASSES))
    val = build(sfew, data_prefix='Val', classes=order, split='val')
    assert val.CLASSES == order
    surprise = [d for d in infos(val) if d['name'].startswith('Surprise/')]
    assert {d['gt_label'] for d in surprise} == {0}


def test_unknown_and_absent_folders(sfew):
    os.rename(
        osp.join(sfew, 'Train', 'Happy'), osp.join(sfew, 'Train', 'happy'))
    with pytest.raises(
            ValueError, match=r"folders \['happy'\] that are not "
            'in classes'):
        build(sfew, data_prefix='Train')
    six = tuple(c for c in SFEW_CLASSES if c != 'Happy') + ('Contempt', )
    os.rename(osp.join(sfew, 'Train', 'happy'), osp.join(sfew, 'x'))
    assert len(build(sfew, data_prefix='Train', classes=six)) == 18


def test_annotation_file_and_landmarks(sfew):
    train = build(
        sfew,
        data_prefix='Train',
        ann_file='train.txt',
        landmark_dir='landmarks/Train',
        pipeline=PIPELINE)
    data = infos(train)
    assert [d['gt_label'] for d in data] == [i // 3 for i in range(21)]
    assert data[5]['landmarks'].shape == (5, 2)
    assert data[5]['landmarks'][0].tolist() == [2, 1]  # (i, label)
    assert train[5]['data_samples'].landmarks.shape == (5, 2)
    # 1-based labels
    path = osp.join(sfew, 'train1.txt')
    with open(path, 'w') as f:
        f.write(''.join(f'{d["name"]} {d["gt_label"] + 1}\n' for d in data))
    one = build(sfew, data_prefix='Train', ann_file=path, label_base=1)
    assert [d['gt_label'] for d in infos(one)] == [d['gt_label'] for d in data]


def test_noise_and_label_map(sfew):
    a = build(sfew, data_prefix='Train', noise_rate=0.5, noise_seed=1)
    # the reference draw: seed 1 flips 50% of the clean labels uniformly
    clean = [i // 3 for i in range(21)]
    assert [d['gt_label'] for d in infos(a)] == flip_labels(
        clean, symmetric_transition(7, 0.5), seed=1).tolist()
    assert a.noise_report['num_noisy'] == sum(d['is_noisy']
                                              for d in infos(a)) == 12
    with open(osp.join(sfew, 'noise.txt'), 'w') as f:
        f.write(''.join(f'{d["name"]} 6\n' for d in infos(a)))
    noisy = build(sfew, data_prefix='Train', noise_file='noise.txt')
    assert {d['gt_label'] for d in infos(noisy)} == {6}
    assert noisy.noise_report['num_noisy'] == 18
    mapped = infos(build(sfew, data_prefix='Train', label_map='rafdb'))
    by_folder = {d['name'].split('/')[0]: d['gt_label'] for d in mapped}
    assert by_folder == {
        'Surprise': 0,
        'Fear': 1,
        'Disgust': 2,
        'Happy': 3,
        'Sad': 4,
        'Angry': 5,
        'Neutral': 6
    }


def test_bad_input(sfew):
    with pytest.raises(ValueError, match='needs classes'):
        build(sfew, classes=())
    with pytest.raises(ValueError, match='name a class twice'):
        build(sfew, classes=('Happy', 'Happiness'))
    path = osp.join(sfew, 'train.txt')
    lines = open(path).read().split('\n')
    lines[3] = 'Angry/Angry_0.png 7'
    open(path, 'w').write('\n'.join(lines))
    with pytest.raises(
            ValueError, match=r"train.txt:4: label '7' is out of "
            r'range.*0..6'):
        build(sfew, data_prefix='Train', ann_file='train.txt')
    os.remove(osp.join(sfew, 'Train', 'Fear', 'Fear_2.png'))
    eight = SFEW_CLASSES + ('Contempt', )  # label 7 is valid here
    with pytest.raises(FileNotFoundError, match='1 of 21 images .*Fear_2'):
        build(sfew, data_prefix='Train', ann_file='train.txt', classes=eight)
    lm = osp.join(sfew, 'landmarks', 'Train', 'Angry', 'Angry_0.txt')
    open(lm, 'w').write('1 2\n3\n')
    with pytest.raises(ValueError, match='Angry_0.txt: expected one "x y"'):
        build(sfew, data_prefix='Train', landmark_dir='landmarks/Train')
    with pytest.raises(FileNotFoundError, match='image folder'):
        build(sfew, data_prefix='Test')
    assert DATASETS.get('FERDataset') is FERDataset
