# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
import re
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS, TRANSFORMS

import mmfer  # noqa: F401
from mmfer.datasets import RAFDB_CLASSES, RAFDBDataset
from mmfer.datasets.transforms import LoadFERImage, PackFERInputs

PIPELINE = [dict(type='LoadFERImage'), dict(type='PackFERInputs')]


def build(root, **kwargs):
    return DATASETS.build(dict(type='RAFDBDataset', data_root=root, **kwargs))


def test_parses_splits_and_classes(tiny_rafdb):
    train = build(tiny_rafdb)
    test = build(tiny_rafdb, split='test')
    assert len(train) == 28 and len(test) == 14
    assert train.CLASSES == RAFDB_CLASSES == (
        'Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger',
        'Neutral')
    first = train.get_data_info(0)
    assert first['gt_label'] == first['clean_label'] == 0  # file label 1
    assert first['is_noisy'] is False
    assert first['img_path'].endswith('Image/aligned/train_00001_aligned.jpg')
    assert first['sample_idx'] == 0


def test_packed_sample_carries_fer_fields(tiny_rafdb):
    dataset = build(
        tiny_rafdb, noise_rate=0.5, noise_seed=1, pipeline=PIPELINE,
        landmarks='aligned')
    sample = dataset[3]['data_samples']
    info = dataset.get_data_info(3)
    assert sample.gt_label.tolist() == [info['gt_label']]
    assert sample.clean_label.tolist() == [info['clean_label']]
    assert sample.is_noisy.tolist() == [info['is_noisy']]
    assert sample.sample_idx == 3
    assert sample.landmarks.shape == (37, 2)
    assert sample.landmarks.dtype == torch.float32
    assert dataset[3]['inputs'].shape == (3, 32, 32)


def test_seeded_noise_is_deterministic(tiny_rafdb):
    a = build(tiny_rafdb, noise_rate=0.4, noise_seed=0)
    b = build(tiny_rafdb, noise_rate=0.4, noise_seed=0)
    c = build(tiny_rafdb, noise_rate=0.4, noise_seed=1)
    labels = [[x.get_data_info(i)['gt_label'] for i in range(len(x))]
              for x in (a, b, c)]
    assert labels[0] == labels[1] != labels[2]
    noisy = [a.get_data_info(i) for i in range(len(a))]
    assert all(d['is_noisy'] == (d['gt_label'] != d['clean_label'])
               for d in noisy)
    assert a.noise_report['num_noisy'] == sum(d['is_noisy'] for d in noisy)


def test_noise_is_logged(tiny_rafdb, tmp_path):
    from mmengine.logging import MMLogger
    log_file = str(tmp_path / 'noise.log')
    MMLogger.get_instance('mmfer_test_noise_log', log_file=log_file)
    try:
        build(tiny_rafdb, noise_rate=0.3)
    finally:
        MMLogger._instance_dict.pop('mmfer_test_noise_log')
    text = open(log_file).read()
    # seed 0 flips 10 of the replica's 28 labels (flip_labels reference)
    assert ('RAFDBDataset(train): 10/28 training labels are noisy '
            '(35.71%, symmetric noise, seed 0); per class: Surprise ') in text


def test_test_split_is_always_clean(tiny_rafdb):
    with pytest.raises(ValueError, match='always clean'):
        build(tiny_rafdb, split='test', noise_rate=0.3)


def write_noise(root, rows, newline='\n'):
    path = osp.join(root, 'EmoLabel', 'noise.txt')
    with open(path, 'w', newline='') as f:
        f.write(''.join(f'{name} {label}{newline}' for name, label in rows))
    return path


def test_noise_file(tiny_rafdb):
    # every train label moved to the next class
    write_noise(tiny_rafdb,
                [(f'train_{i:05d}.jpg', i % 7 + 1) for i in range(1, 29)])
    dataset = build(tiny_rafdb, noise_file='EmoLabel/noise.txt')
    assert dataset.noise_report['rate'] == 1.0
    info = dataset.get_data_info(0)
    assert (info['clean_label'], info['gt_label']) == (0, 1)


@pytest.mark.parametrize('first,last,message', [
    (3, 29, "{path} has no label for 2 of 28 samples of the 'train' split"),
    # train_00029 and on are in no split of the 28 + 14 image list
    (1, 40, r'{path}:29: train_00029.jpg is not a sample of .* \(11 such'),
])
def test_noise_file_mismatch_names_file_line_and_count(
        tiny_rafdb, first, last, message):
    path = write_noise(tiny_rafdb,
                       [(f'train_{i:05d}.jpg', 1) for i in range(first, last)])
    with pytest.raises(ValueError) as err:
        build(tiny_rafdb, noise_file=path)
    assert re.search(message.format(path=re.escape(path)), str(err.value))
    assert 'make_noisy_labels.py' in str(err.value)


def test_noise_file_rows_of_other_splits_are_ignored_and_logged(tiny_rafdb):
    """ReSup-style files: every row of the list, CRLF, test rows flipped."""
    rows = [(f'train_{i:05d}.jpg', i % 7 + 1) for i in range(1, 29)] + \
        [(f'test_{i:04d}.jpg', 7) for i in range(1, 15)]
    path = write_noise(tiny_rafdb, rows, newline='\r\n')
    with mock.patch.object(MMLogger.get_current_instance(), 'info') as info:
        train = build(tiny_rafdb, noise_file=path)
    assert train.noise_report['num_noisy'] == 28
    logged = ' '.join(call.args[0] for call in info.call_args_list)
    assert 'ignored 14 rows of noise_file' in logged
    assert "outside the 'train' split (e.g. test_0001.jpg)" in logged
    test = build(tiny_rafdb, split='test')
    assert [test.get_data_info(i)['gt_label'] for i in range(14)] == \
        [i % 7 for i in range(14)]


def test_noise_file_row_given_twice(tiny_rafdb):
    rows = [(f'train_{i:05d}.jpg', 1) for i in range(1, 29)]
    path = write_noise(tiny_rafdb, rows + rows[4:5])
    with pytest.raises(ValueError,
                       match=f'{path}:29: train_00005.jpg is labelled again '
                       r'\(first on line 5\)'):
        build(tiny_rafdb, noise_file=path)


def test_missing_noise_file(tiny_rafdb):
    with pytest.raises(FileNotFoundError, match='make_noisy_labels'):
        build(tiny_rafdb, noise_file='EmoLabel/noise09.txt')


@pytest.mark.parametrize('rate', [1.0, -0.2])
def test_noise_rate_out_of_range(tiny_rafdb, rate):
    with pytest.raises(ValueError, match='noise_rate'):
        build(tiny_rafdb, noise_rate=rate)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root .*does not exist'):
        build(str(tmp_path / 'nowhere'))


def test_missing_annotation(tiny_rafdb):
    os.remove(osp.join(tiny_rafdb, 'EmoLabel', 'list_patition_label.txt'))
    with pytest.raises(FileNotFoundError, match='list_patition_label.txt'):
        build(tiny_rafdb)


def test_label_out_of_range_names_file_and_line(tiny_rafdb):
    ann = osp.join(tiny_rafdb, 'EmoLabel', 'list_patition_label.txt')
    lines = open(ann).read().split('\n')
    lines[4] = 'train_00005.jpg 8'
    open(ann, 'w').write('\n'.join(lines))
    with pytest.raises(ValueError, match=f'{ann}:5: label .8. is out of '
                       'range.*1..7'):
        build(tiny_rafdb)


def test_malformed_line(tiny_rafdb):
    ann = osp.join(tiny_rafdb, 'EmoLabel', 'list_patition_label.txt')
    with open(ann, 'a') as f:
        f.write('\ntrain_00099.jpg,3')
    with pytest.raises(ValueError, match=r':43: expected "<image name> '):
        build(tiny_rafdb)


def test_missing_images_are_listed(tiny_rafdb):
    os.remove(osp.join(tiny_rafdb, 'Image', 'aligned',
                       'train_00002_aligned.jpg'))
    with pytest.raises(FileNotFoundError,
                       match='1 of 28 images .*train_00002_aligned.jpg'):
        build(tiny_rafdb)


@pytest.mark.parametrize('content', [b'not a jpeg', b''],
                         ids=['garbage', 'empty'])
def test_corrupt_image_is_named(tiny_rafdb, content):
    path = osp.join(tiny_rafdb, 'Image', 'aligned', 'train_00003_aligned.jpg')
    with open(path, 'wb') as f:
        f.write(content)
    dataset = build(tiny_rafdb, pipeline=PIPELINE)
    with pytest.raises(OSError, match='train_00003_aligned.jpg cannot be '
                       'decoded'):
        dataset[2]


def test_landmarks(tiny_rafdb):
    aligned = build(tiny_rafdb, landmarks='aligned')
    manual = build(tiny_rafdb, landmarks='manual', img_type='original')
    auto = build(tiny_rafdb, landmarks='auto', img_type='original')
    a = aligned.get_data_info(0)['landmarks']
    assert a.shape == (37, 2) and a.dtype == np.float32
    assert manual.get_data_info(0)['landmarks'].shape == (5, 2)
    # the replica's original photos are twice the aligned size
    np.testing.assert_allclose(auto.get_data_info(0)['landmarks'], 2 * a,
                               atol=0.02)
    assert manual.get_data_info(0)['img_path'].endswith(
        'Image/original/train_00001.jpg')


def test_original_landmarks_refuse_aligned_images(tiny_rafdb):
    with pytest.raises(ValueError, match='original photos'):
        build(tiny_rafdb, landmarks='auto')


def test_bad_landmark_file(tiny_rafdb):
    path = osp.join(tiny_rafdb, 'Annotation', 'aligned',
                    'train_00001_aligned.txt')
    open(path, 'w').write('1.0 2.0\nthree 4\n')
    with pytest.raises(ValueError, match='train_00001_aligned.txt'):
        build(tiny_rafdb, landmarks='aligned')


def test_registered_transforms():
    assert TRANSFORMS.get('PackFERInputs') is PackFERInputs
    assert TRANSFORMS.get('LoadFERImage') is LoadFERImage
    assert DATASETS.get('RAFDBDataset') is RAFDBDataset


def test_label_map_to_another_order(tiny_rafdb):
    native = build(tiny_rafdb)
    mapped = build(tiny_rafdb, label_map='fer2013', noise_file=None)
    assert mapped.CLASSES == ('Anger', 'Disgust', 'Fear', 'Happiness',
                              'Sadness', 'Surprise', 'Neutral')
    for i in range(len(native)):
        a, b = native.get_data_info(i), mapped.get_data_info(i)
        assert native.CLASSES[a['gt_label']] == mapped.CLASSES[b['gt_label']]
    # an 8-class order keeps RAF-DB's 7 classes (no Contempt samples)
    assert len(build(tiny_rafdb, label_map='ferplus').CLASSES) == 7


def test_label_map_subset_drops_samples_and_noise_file_uses_native(
        tiny_rafdb):
    path = osp.join(tiny_rafdb, 'EmoLabel', 'noise.txt')
    with open(path, 'w') as f:  # native file labels: all Neutral (7)
        f.write('\n'.join(f'train_{i:05d}.jpg 7' for i in range(1, 29)))
    subset = build(tiny_rafdb, label_map=['Neutral', 'Happy', 'Sad'],
                   noise_file='EmoLabel/noise.txt')
    assert len(subset) == 12  # 4 each of Happiness, Sadness, Neutral
    labels = {subset.get_data_info(i)['gt_label'] for i in range(12)}
    assert labels == {0}  # every noisy label is Neutral, target index 0
    with pytest.raises(ValueError, match="'contempt'"):
        build(tiny_rafdb, label_map=['Neutral', 'Contempt'])


@pytest.mark.parametrize('kind, advice', [
    ('RAFDBDataset', 'Request RAF-DB basic'),
    ('SynthFERDataset',
     'make_synthfer.py --out {root} --num-train 2000 --num-test 700'),
])
def test_missing_data_root_says_how_to_get_the_data(tmp_path, kind, advice):
    root = str(tmp_path / 'absent')
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build(dict(type=kind, data_root=root))
    assert f'data_root {root} does not exist' in str(err.value)
    assert advice.format(root=root) in str(err.value)


def test_synthfer_reads_the_rafdb_layout(tiny_rafdb):
    synth = DATASETS.build(dict(type='SynthFERDataset', data_root=tiny_rafdb))
    rafdb = DATASETS.build(dict(type='RAFDBDataset', data_root=tiny_rafdb))
    assert len(synth) == len(rafdb) == 28
    assert synth.get_data_info(3) == rafdb.get_data_info(3)
