# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp

import numpy as np
import pytest
import torch
from fer_replicas import (FERPLUS_DISAGREE_ROW, FERPLUS_DUPLICATE,
                          ferplus_face, ferplus_rows, make_ferplus)
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

import mmfer  # noqa: F401
from mmfer.datasets import FERPLUS_CLASSES, FERPlusDataset
from mmfer.datasets.ferplus import ferplus_labels, load_fer2013_pixels
from mmfer.datasets.noise import flip_labels, symmetric_transition

PIPELINE = [dict(type='LoadFERImage'), dict(type='PackFERInputs')]
ROWS = ferplus_rows()


@pytest.fixture
def ferplus(tmp_path):
    return make_ferplus(str(tmp_path / 'ferplus'))


def build(root, **kwargs):
    # mmengine's serialisation runs gc.collect() (~0.2 s with torch loaded);
    # test_majority_labels_and_csv_images covers the serialised path
    kwargs.setdefault('serialize_data', False)
    return DATASETS.build(
        dict(type='FERPlusDataset', data_root=root, **kwargs))


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def row_of(note, nth=0, usage='Training'):
    found = [
        r for r, row in enumerate(ROWS) if row[3] == note and row[0] == usage
    ]
    return found[nth]


def test_majority_labels_and_csv_images(ferplus):
    train = build(ferplus, pipeline=PIPELINE, serialize_data=True)
    assert train.CLASSES == FERPLUS_CLASSES == ('Neutral', 'Happiness',
                                                'Surprise', 'Sadness', 'Anger',
                                                'Disgust', 'Fear', 'Contempt')
    data = infos(train)
    # 16 clear + 2 duplicated-name rows + outlier-zeroed + contempt3 rows;
    # blank name, unknown, NF and the tie are dropped
    assert len(data) == 20
    assert [d['gt_label'] for d in data[:16]] == [i % 8 for i in range(16)]
    by_row = {d['img_index']: d for d in data}
    assert by_row[row_of('outliers')]['gt_label'] == 0  # 4 of 4 after zeroing
    assert by_row[row_of('contempt3')]['gt_label'] == 1
    for note in ('blank', 'unknown', 'nf', 'tie'):
        assert row_of(note) not in by_row
    # the image of each sample is its own row of fer2013.csv
    assert data[0]['name'] == ROWS[0][1] != 'fer0000000.png'
    assert data[0]['img_path'].endswith('fer2013.csv:2')
    for i in (0, 5, 17):
        img = train[i]['inputs']
        assert img.shape == (3, 48, 48) and img.dtype == torch.uint8
        assert (img[0] == img[1]).all() and (img[1] == img[2]).all()
        assert img[0, 0, 0] == data[i]['img_index']
        np.testing.assert_array_equal(img[0].numpy(),
                                      ferplus_face(data[i]['img_index']))
    assert 'img' not in train.get_data_info(0)  # faces are not serialised
    assert train.data_bytes.nbytes < 200 * len(train)


def test_splits_are_majority_even_in_probability_mode(ferplus):
    val = build(ferplus, split='val', label_mode='probability')
    test = build(ferplus, split='test')
    assert len(val) == len(test) == 8
    assert [d['gt_label'] for d in infos(val)] == list(range(8))
    assert 'gt_score' not in val.get_data_info(0)
    assert val.effective_label_mode == 'majority'
    assert {d['img_index']
            for d in infos(val)} == {
                r
                for r, row in enumerate(ROWS)
                if row[0] == 'PublicTest' and row[3] == 'clear'
            }


def test_duplicated_names_are_two_images(ferplus):
    data = infos(build(ferplus))
    dups = [d for d in data if d['name'].startswith(FERPLUS_DUPLICATE)]
    # lines 19 and 20 of fer2013new.csv: happiness, then sadness
    assert [(d['name'], d['gt_label'])
            for d in dups] == [(f'{FERPLUS_DUPLICATE}@19', 1),
                               (f'{FERPLUS_DUPLICATE}@20', 3)]
    assert dups[0]['img_index'] != dups[1]['img_index']


def test_png_folders_give_the_same_faces(ferplus):
    csv = build(ferplus, pipeline=PIPELINE)
    folders = build(ferplus, img_source='folders', pipeline=PIPELINE)
    assert folders.get_data_info(0)['img_path'] == osp.join(
        ferplus, 'FER2013Train', ROWS[0][1])
    # one PNG per name: the later duplicate overwrote the earlier
    names = [d['name'] for d in infos(folders)]
    assert len(folders) == 19 and names.count(FERPLUS_DUPLICATE) == 1
    dup = infos(folders)[names.index(FERPLUS_DUPLICATE)]
    assert dup['gt_label'] == 3
    for i in (0, 7):
        np.testing.assert_array_equal(csv[i]['inputs'].numpy(),
                                      folders[i]['inputs'].numpy())


@pytest.mark.parametrize('img_source', ['csv', 'folders'])
def test_label_csv_vote_source(ferplus, tmp_path, img_source):
    log_file = str(tmp_path / 'votes.log')
    MMLogger.get_instance('mmfer_test_ferplus_votes', log_file=log_file)
    try:
        new = build(ferplus, img_source=img_source)
        old = build(
            ferplus,
            vote_source='label_csv',
            img_source=img_source,
            pipeline=PIPELINE)
    finally:
        MMLogger._instance_dict.pop('mmfer_test_ferplus_votes')
    log = open(log_file).read()
    assert 'votes from label.csv' in log and 'votes from fer2013new.csv' \
        in log
    assert old.ann_file == osp.join(ferplus, 'FER2013Train', 'label.csv')
    first = FERPLUS_DISAGREE_ROW
    assert new.get_data_info(first)['gt_label'] == 0  # neutral 8
    assert old.get_data_info(first)['gt_label'] == 4  # anger 10
    assert len(old) == 19
    sample = old[first]
    assert sample['inputs'][0, 0, 0] == first
    if img_source == 'csv':
        assert old.get_data_info(first)['img_index'] == first


def test_probability_mode(ferplus):
    data = {
        d['img_index']: d
        for d in infos(build(ferplus, label_mode='probability'))
    }
    assert len(data) == 21  # the tie is kept, unknown/NF/blank dropped
    np.testing.assert_allclose(data[0]['gt_score'], [.8, .2, 0, 0, 0, 0, 0, 0])
    tie = data[row_of('tie')]
    assert tie['gt_label'] == 0  # ties go to the earlier column
    np.testing.assert_allclose(tie['gt_score'], [.4, .4, 0, .2, 0, 0, 0, 0])
    np.testing.assert_allclose(
        data[row_of('contempt3')]['gt_score'],
        [0, 6 / 9, 0, 0, 0, 0, 0, 3 / 9],
        rtol=1e-6)
    np.testing.assert_allclose(data[row_of('outliers')]['gt_score'],
                               [1, 0, 0, 0, 0, 0, 0, 0])
    seven = {
        d['img_index']: d
        for d in infos(
            build(ferplus, label_mode='probability', num_classes=7))
    }
    assert len(seven) == 19  # the two contempt winners are dropped
    np.testing.assert_allclose(seven[row_of('contempt3')]['gt_score'],
                               [0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(
        seven[6]['gt_score'],  # fear 8 + contempt 2
        [0, 0, 0, 0, 0, 0, 1])


def test_soft_targets_reach_the_loss(ferplus):
    dataset = build(ferplus, label_mode='probability', pipeline=PIPELINE)
    samples = [dataset[i]['data_samples'] for i in (0, 17)]
    torch.testing.assert_close(samples[0].gt_score,
                               torch.tensor([.8, .2, 0, 0, 0, 0, 0, 0]))
    head = MODELS.build(
        dict(
            type='LinearClsHead',
            num_classes=8,
            in_channels=4,
            loss=dict(type='CrossEntropyLoss', use_soft=True)))
    feats = (torch.randn(2, 4), )
    loss = head.loss(feats, samples)['loss']
    # ClsHead trains on gt_score when the samples carry it
    target = torch.stack([s.gt_score for s in samples])
    expected = -(target * head(feats).log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(loss, expected)


def test_seven_classes(ferplus):
    train = build(ferplus, num_classes=7)
    assert train.CLASSES == FERPLUS_CLASSES[:7]
    assert len(train) == 18
    assert max(d['gt_label'] for d in infos(train)) == 6
    assert len(build(ferplus, split='test', num_classes=7)) == 7


def test_ferplus_labels_rule():
    votes = np.array([[4, 1, 1, 1, 1, 0, 0, 0, 0, 0],
                      [5, 4, 0, 0, 0, 0, 0, 0, 0, 0],
                      [4, 4, 0, 0, 0, 0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],
                      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    labels, scores, reasons = ferplus_labels(votes, 'majority', 8)
    assert scores is None and labels[0] == 0
    assert list(reasons) == [
        '', '', 'no majority', 'unknown/NF', 'no majority'
    ]
    _, scores, reasons = ferplus_labels(votes, 'probability', 8)
    assert list(reasons) == ['', '', '', 'unknown/NF', 'no votes left']
    np.testing.assert_allclose(scores[1][:2], [5 / 9, 4 / 9], rtol=1e-6)


def test_seeded_noise_and_soft_scores(ferplus):
    a = build(ferplus, noise_rate=0.5, noise_seed=3, label_mode='probability')
    # the reference draw: seed 3 flips 50% of the clean labels uniformly
    clean = [d['clean_label'] for d in infos(a)]
    assert [d['gt_label'] for d in infos(a)] == flip_labels(
        clean, symmetric_transition(8, 0.5), seed=3).tolist()
    noisy = [d for d in infos(a) if d['is_noisy']]
    assert a.noise_report['num_noisy'] == len(noisy) == 6  # of 21
    for d in noisy:  # the soft target follows the noisy label
        assert d['gt_score'][d['gt_label']] == 1 and d['gt_score'].sum() == 1
    with pytest.raises(ValueError, match='always clean'):
        build(ferplus, split='val', noise_rate=0.3)


def test_noise_file_addresses_duplicates(ferplus):
    clean = infos(build(ferplus))
    with open(osp.join(ferplus, 'noise.txt'), 'w') as f:
        f.write(''.join(f'{d["name"]} {(d["gt_label"] + 1) % 8}\n'
                        for d in clean))
    noisy = build(ferplus, noise_file='noise.txt')
    assert noisy.noise_report['rate'] == 1.0
    assert [d['gt_label'] for d in infos(noisy)] == \
        [(d['gt_label'] + 1) % 8 for d in clean]


def test_label_map_to_rafdb(ferplus):
    mapped = build(ferplus, label_map='rafdb')
    assert mapped.CLASSES == ('Surprise', 'Fear', 'Disgust', 'Happiness',
                              'Sadness', 'Anger', 'Neutral')
    data = infos(mapped)
    assert len(data) == 18  # contempt samples dropped
    assert data[1]['gt_label'] == 3  # FERPlus happiness -> RAF Happiness
    assert data[0]['gt_label'] == 6  # neutral -> Neutral


def test_faces_are_decoded_once(ferplus):
    path = osp.join(ferplus, 'fer2013.csv')
    first = load_fer2013_pixels(path)[0]
    assert load_fer2013_pixels(path)[0] is first
    assert build(ferplus).images is build(ferplus, split='val').images
    assert not first.flags.writeable
    os.utime(path, ns=(1, 1))  # a changed file is decoded again
    assert load_fer2013_pixels(path)[0] is not first


# --------------------------------------------------------------- bad input


def rewrite(path, line_no, new_line):
    lines = open(path).read().split('\n')
    lines[line_no - 1] = new_line
    open(path, 'w').write('\n'.join(lines))


def test_wrong_pixel_count_names_the_line(ferplus):
    path = osp.join(ferplus, 'fer2013.csv')
    rewrite(path, 5, '0,1 2 3,Training')
    with pytest.raises(
            ValueError, match=r'fer2013.csv:5: column "pixels" has 3 values'):
        build(ferplus)


def test_bad_pixel_values(ferplus):
    path = osp.join(ferplus, 'fer2013.csv')
    rewrite(path, 3, '0,' + ' '.join(['300'] * 2304) + ',Training')
    with pytest.raises(ValueError, match=r'fer2013.csv:3: .*0\.\.255'):
        build(ferplus)


def test_usage_mismatch_names_the_line(ferplus):
    path = osp.join(ferplus, 'fer2013new.csv')
    line = open(path).read().split('\n')[6]
    rewrite(path, 7, line.replace('Training', 'PublicTest'))
    with pytest.raises(
            ValueError,
            match=r'fer2013new.csv:7 has Usage '
            r"'PublicTest' but .*fer2013.csv \(line 7\) has "
            "'Training'; 1 rows disagree"):
        build(ferplus)


def test_row_count_mismatch(ferplus):
    path = osp.join(ferplus, 'fer2013new.csv')
    lines = open(path).read().rstrip('\n').split('\n')
    open(path, 'w').write('\n'.join(lines[:-1]) + '\n')
    with pytest.raises(ValueError, match='has 44 rows but .* has 43'):
        build(ferplus)


def test_missing_vote_column(ferplus):
    path = osp.join(ferplus, 'fer2013new.csv')
    rewrite(path, 1, open(path).readline().strip().replace('NF', 'nf'))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['NF'\]"):
        build(ferplus)


def test_bad_votes_and_label_csv_fields(ferplus):
    path = osp.join(ferplus, 'FER2013Valid', 'label.csv')
    rewrite(path, 2, 'fer0000001.png,"(0, 0, 48, 48)",1,2')
    with pytest.raises(ValueError, match=r'label.csv:2: expected 12 fields'):
        build(ferplus, split='val', vote_source='label_csv')
    new = osp.join(ferplus, 'fer2013new.csv')
    line = open(new).read().split('\n')[3]
    rewrite(new, 4, line[:line.rindex(',')] + ',x')
    with pytest.raises(ValueError, match=r'fer2013new.csv:4: the vote col'):
        build(ferplus)


def test_missing_png_and_files(ferplus, tmp_path):
    os.remove(osp.join(ferplus, 'FER2013Train', ROWS[3][1]))
    with pytest.raises(
            FileNotFoundError, match=f'1 of 19 images .*'
            f'{ROWS[3][1]}'):
        build(ferplus, img_source='folders')
    os.remove(osp.join(ferplus, 'fer2013.csv'))
    with pytest.raises(FileNotFoundError, match='fer2013.csv does not exist'):
        build(ferplus)
    with pytest.raises(FileNotFoundError, match='data_root'):
        build(str(tmp_path / 'nowhere'))


def test_bad_options(ferplus):
    for key, value in (('split', 'valid'), ('label_mode', 'soft'),
                       ('num_classes', 10), ('vote_source',
                                             'label'), ('img_source', 'png')):
        with pytest.raises(ValueError, match=f'{key}='):
            build(ferplus, **{key: value})
    assert DATASETS.get('FERPlusDataset') is FERPlusDataset


def test_load_fer_image_from_memory():
    face = ferplus_face(7)
    face.flags.writeable = False  # like the shared decoded array
    load = TRANSFORMS.build(dict(type='LoadFERImage'))
    out = load(dict(img=face, img_path='fer2013.csv:9'))
    assert out['img'].shape == (48, 48, 3) and out['img'].dtype == np.uint8
    assert out['img_shape'] == out['ori_shape'] == (48, 48)
    for c in range(3):
        np.testing.assert_array_equal(out['img'][..., c], face)
    grey = TRANSFORMS.build(
        dict(type='LoadFERImage', color_type='grayscale',
             to_float32=True))(dict(img=face))['img']
    assert grey.shape == (48, 48) and grey.dtype == np.float32
    same = TRANSFORMS.build(dict(type='LoadFERImage', color_type='unchanged'))
    copy = same(dict(img=face))['img']
    assert copy.flags.writeable and not np.shares_memory(copy, face)
    # a crop box shifts landmarks into the crop, clipped to the image
    out = load(
        dict(
            img=face,
            crop_bbox=(-5, 10, 30, 60),
            landmarks=np.array([[12., 20.]])))
    assert out['img'].shape == (38, 30, 3)
    assert out['crop_bbox'].tolist() == [0, 10, 30, 48]
    assert out['landmarks'].tolist() == [[12., 10.]]
    assert out['img'][10, 12, 0] == face[20, 12]
    with pytest.raises(ValueError, match='lies outside its 48x48 image'):
        load(dict(img=face, crop_bbox=(50, 0, 60, 10)))
