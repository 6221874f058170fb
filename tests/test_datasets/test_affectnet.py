# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from fer_replicas import (AFFECTNET_BOX, AFFECTNET_MARK, affectnet_landmarks,
                          make_affectnet, make_affectnet_npy)
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS, TRANSFORMS

import mmfer  # noqa: F401
from mmfer.datasets import AFFECTNET_CLASSES, AffectNetDataset
from mmfer.datasets.noise import flip_labels, symmetric_transition

PIPELINE = [dict(type='LoadFERImage'), dict(type='PackFERInputs')]
LISTS = 'Manually_Annotated_file_lists'


@pytest.fixture
def affectnet(tmp_path):
    return make_affectnet(str(tmp_path / 'affectnet'))


def build(root, **kwargs):
    kwargs.setdefault('serialize_data', False)  # skip mmengine's gc.collect
    return DATASETS.build(
        dict(type='AffectNetDataset', data_root=root, **kwargs))


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_seven_and_eight_classes(affectnet, tmp_path):
    log_file = str(tmp_path / 'affectnet.log')
    MMLogger.get_instance('mmfer_test_affectnet', log_file=log_file)
    try:
        seven = build(affectnet)
        eight = build(affectnet, num_classes=8)
    finally:
        MMLogger._instance_dict.pop('mmfer_test_affectnet')
    assert seven.CLASSES == AFFECTNET_CLASSES[:7] == (
        'Neutral', 'Happiness', 'Sadness', 'Surprise', 'Fear', 'Disgust',
        'Anger')
    assert eight.CLASSES == AFFECTNET_CLASSES
    # codes cycle 0..10 twice: 8..10 dropped, 7 only kept for 8 classes
    assert [d['gt_label'] for d in infos(seven)] == list(range(7)) * 2
    assert [d['gt_label'] for d in infos(eight)] == list(range(8)) * 2
    log = open(log_file).read()
    assert ('dropped: Contempt 2, None 2, Uncertain 2, No-Face 2' in log)
    assert 'dropped: None 2, Uncertain 2, No-Face 2' in log
    first = seven.get_data_info(1)
    assert first['img_path'] == osp.join(affectnet,
                                         'Manually_Annotated_Images',
                                         first['name'])
    assert first['valence'] == pytest.approx(-0.5)
    assert 'landmarks' not in first and 'crop_bbox' not in first


def test_validation_csv_without_header(affectnet):
    test = build(affectnet, split='test', num_classes=8)
    first_line = open(osp.join(affectnet, LISTS, 'validation.csv')).readline()
    assert not first_line.startswith('subDirectory_filePath')
    assert [d['gt_label'] for d in infos(test)] == list(range(8))
    assert test.ann_file.endswith('validation.csv')
    # a header row is found wherever it is present
    path = osp.join(affectnet, LISTS, 'training.csv')
    lines = open(path).read().split('\n')
    open(path, 'w').write('\n'.join(lines[1:]))
    assert len(build(affectnet)) == 14


def test_face_crop_maps_landmarks(affectnet):
    full = build(affectnet, with_landmarks=True, pipeline=PIPELINE)
    np.testing.assert_allclose(
        full.get_data_info(0)['landmarks'], affectnet_landmarks(0), atol=1e-3)
    x, y, w, h = AFFECTNET_BOX
    mx, my = AFFECTNET_MARK
    load = TRANSFORMS.build(dict(type='LoadFERImage'))
    for margin, origin in ((0.0, (x, y)), (0.1, (4, 6)), (0.5, (0, 0))):
        crop = build(
            affectnet, crop_face=True, face_margin=margin, with_landmarks=True)
        info = crop.get_data_info(0)
        out = load(info)
        lx, ly = out['landmarks'][0]
        assert (lx, ly) == (mx - origin[0], my - origin[1])
        assert out['img'][int(ly), int(lx)].min() > 200  # the bright mark
        assert out['img'][int(ly) - 4, int(lx) - 4].max() < 100
        assert out['crop_bbox'][:2].tolist() == list(origin)
        assert out['img'].shape[:2] == out['img_shape'] == out['ori_shape']
    # margin 0: exactly the face box
    out = load(build(affectnet, crop_face=True).get_data_info(0))
    assert out['img'].shape[:2] == (h, w)
    sample = build(
        affectnet, crop_face=True, with_landmarks=True, pipeline=PIPELINE)[0]
    assert sample['inputs'].shape == (3, h, w)
    assert sample['data_samples'].landmarks.shape == (68, 2)


def test_npy_layout(tmp_path):
    root = make_affectnet_npy(str(tmp_path / 'npy'))
    train = build(root, layout='npy')
    test = build(root, layout='npy', split='test', num_classes=8)
    assert [d['gt_label'] for d in infos(train)] == list(range(7)) * 2
    assert [d['gt_label'] for d in infos(test)] == list(range(8))  # str codes
    assert train.get_data_info(0)['img_path'] == osp.join(
        root, 'train_set', 'images', '0.jpg')
    # sample 3 is the pixels of images/3.jpg, channels first
    packed = build(root, layout='npy', pipeline=PIPELINE)[3]['inputs']
    np.testing.assert_array_equal(
        packed.permute(1, 2, 0).numpy(),
        cv2.imread(osp.join(root, 'train_set', 'images', '3.jpg')))
    with pytest.raises(ValueError, match='supports neither crop_face'):
        build(root, layout='npy', crop_face=True)
    np.save(
        osp.join(root, 'train_set', 'annotations', '3_exp.npy'), np.array(12))
    with pytest.raises(ValueError, match=r'3_exp.npy: expression .12. is out'):
        build(root, layout='npy')


def test_noise_and_label_map(affectnet):
    a = infos(build(affectnet, noise_rate=0.4, noise_seed=2))
    # the reference draw: seed 2 flips 40% of the clean labels uniformly
    clean = [d['clean_label'] for d in a]
    assert [d['gt_label'] for d in a] == flip_labels(
        clean, symmetric_transition(7, 0.4), seed=2).tolist()
    assert [d['is_noisy'] for d in a] == [
        d['gt_label'] != d['clean_label'] for d in a
    ]
    assert sum(d['is_noisy'] for d in a) == 4  # of 14
    clean = infos(build(affectnet, num_classes=8))
    with open(osp.join(affectnet, 'noise.txt'), 'w') as f:
        f.write(''.join(f'{d["name"]} 7\n' for d in clean))
    noisy = build(affectnet, num_classes=8, noise_file='noise.txt')
    assert {d['gt_label'] for d in infos(noisy)} == {7}
    with pytest.raises(ValueError, match='always clean'):
        build(affectnet, split='test', noise_rate=0.2)
    mapped = build(affectnet, num_classes=8, label_map='rafdb')
    data = infos(mapped)
    assert len(mapped.CLASSES) == 7 and len(data) == 14  # contempt dropped
    assert data[1]['gt_label'] == 3  # AffectNet Happy -> RAF Happiness
    assert data[6]['gt_label'] == 5  # AffectNet Anger -> RAF Anger


# --------------------------------------------------------------- bad input


def rewrite(path, line_no, edit):
    lines = open(path).read().split('\n')
    lines[line_no - 1] = edit(lines[line_no - 1])
    open(path, 'w').write('\n'.join(lines))


def set_field(line, index, value):
    fields = line.split(',')
    fields[index] = value
    return ','.join(fields)


def test_expression_out_of_range_names_the_line(affectnet):
    path = osp.join(affectnet, LISTS, 'validation.csv')
    rewrite(path, 3, lambda line: set_field(line, 6, '11'))
    with pytest.raises(
            ValueError,
            match=r"validation.csv:3: expression '11' "
            r'is out of range.*10 No-Face'):
        build(affectnet, split='test')


def test_bad_landmark_string_names_the_line(affectnet):
    path = osp.join(affectnet, LISTS, 'training.csv')
    rewrite(path, 4, lambda line: line.replace(';', ';x', 1))
    build(affectnet)  # landmarks are only parsed when they are used
    with pytest.raises(
            ValueError,
            match=r'training.csv:4: column '
            '"facial_landmarks" has non-numeric values'):
        build(affectnet, with_landmarks=True)
    rewrite(path, 4, lambda line: set_field(line, 5, ';'.join(['1'] * 135)))
    with pytest.raises(ValueError, match=r'training.csv:4: .* has 135 values'):
        build(affectnet, with_landmarks=True)


def test_missing_columns(affectnet):
    path = osp.join(affectnet, LISTS, 'training.csv')
    rewrite(path, 1, lambda line: line.replace('expression', 'label'))
    with pytest.raises(
            ValueError,
            match=r"training.csv:1: the header .* "
            r"lacks the column\(s\) \['expression'\]"):
        build(affectnet)
    path = osp.join(affectnet, LISTS, 'validation.csv')
    rewrite(path, 2, lambda line: line.rsplit(',', 1)[0])
    with pytest.raises(
            ValueError,
            match=r'validation.csv:2: expected 9 '
            'comma-separated columns'):
        build(affectnet, split='test')


def test_bad_box_and_missing_image(affectnet):
    path = osp.join(affectnet, LISTS, 'validation.csv')
    rewrite(path, 1, lambda line: set_field(line, 2, 'ten'))
    with pytest.raises(ValueError, match="validation.csv:1: column 'face_y'"):
        build(affectnet, split='test', crop_face=True)
    first = build(affectnet).get_data_info(0)['img_path']
    os.remove(first)
    with pytest.raises(
            FileNotFoundError,
            match=r'1 of 14 images listed in '
            f'.*training.csv are missing.*{osp.basename(first)}'):
        build(affectnet)
    os.remove(osp.join(affectnet, LISTS, 'training.csv'))
    with pytest.raises(FileNotFoundError, match='training.csv does not'):
        build(affectnet)


def test_bad_options(affectnet):
    for key, value in (('split', 'val'), ('num_classes', 11),
                       ('layout', 'lmdb'), ('face_margin', -1)):
        with pytest.raises(ValueError, match=f'{key}='):
            build(affectnet, **{key: value})
    assert DATASETS.get('AffectNetDataset') is AffectNetDataset
