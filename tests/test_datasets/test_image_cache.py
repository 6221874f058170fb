# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of ``cache_images``: decoded images held in one shared array."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS

import mmfer  # noqa: F401
from fer_replicas import SFEW_CLASSES, make_fer_folder

PACK = dict(type='PackFERInputs')


def rafdb(root, cache, **kwargs):
    kwargs.setdefault('pipeline', [dict(type='LoadFERImage'), PACK])
    return DATASETS.build(
        dict(
            type='RAFDBDataset',
            data_root=root,
            landmarks='aligned',
            cache_images=cache,
            **kwargs))


def folder(root, cache, **kwargs):
    return DATASETS.build(
        dict(
            type='FERDataset',
            data_root=root,
            classes=SFEW_CLASSES,
            data_prefix='Train',
            landmark_dir='landmarks/Train',
            cache_images=cache,
            **kwargs))


def test_rafdb_cache_gives_the_pixels_of_the_files(tiny_rafdb):
    plain, cached = rafdb(tiny_rafdb, False), rafdb(tiny_rafdb, True)
    assert cached.images.shape == (28, 32, 32, 3)
    assert cached.images.dtype == np.uint8
    assert not cached.images.flags.writeable
    # read straight from disk, independently of mmcv
    expected = [
        cv2.imread(plain.get_data_info(i)['img_path'])
        for i in range(len(plain))
    ]
    for img_path in {cached.get_data_info(i)['img_path']
                     for i in range(len(cached))}:
        os.remove(img_path)  # the cached dataset must not need the files
    for i in range(len(cached)):
        out = cached[i]
        pixels = out['inputs'].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(pixels, expected[i])
        np.testing.assert_array_equal(out['data_samples'].landmarks,
                                      plain.get_data_info(i)['landmarks'])
    with pytest.raises(FileNotFoundError, match='is missing'):
        plain[0]


def test_folder_cache_keeps_color_type_and_to_float32(tmp_path):
    root = make_fer_folder(str(tmp_path / 'sfew'))
    pipeline = [
        dict(type='LoadFERImage', color_type='grayscale', to_float32=True),
        dict(type='ResizeWithLandmarks', scale=(16, 16)), PACK
    ]
    plain = folder(root, False, pipeline=pipeline)
    cached = folder(root, True, pipeline=pipeline)
    assert cached.images.shape == (len(plain), 32, 32)
    for i in range(len(plain)):
        a, b = plain[i], cached[i]
        assert b['inputs'].dtype == a['inputs'].dtype == torch.float32
        torch.testing.assert_close(b['inputs'], a['inputs'], rtol=0, atol=0)
        torch.testing.assert_close(
            torch.as_tensor(b['data_samples'].landmarks),
            torch.as_tensor(a['data_samples'].landmarks))
        grey = cv2.imread(plain.get_data_info(i)['img_path'],
                          cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(cached.images[i], grey)


def test_subset_keeps_each_sample_on_its_image(tiny_rafdb):
    subset = rafdb(tiny_rafdb, True).get_subset([5, 2])
    for i in range(2):
        info = subset.get_data_info(i)
        pixels = subset[i]['inputs'].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(pixels, cv2.imread(info['img_path']))


def _batches(dataset):
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=4,
        num_workers=2,
        persistent_workers=True,
        collate_fn=pseudo_collate)
    batches = []
    for epoch in range(2):
        dataset.set_sample_seed(7, epoch)
        for batch in loader:
            labels = [s.gt_label.item() for s in batch['data_samples']]
            batches.append((torch.stack(batch['inputs']), labels))
    return batches


def test_two_workers_load_the_same_batches(tiny_rafdb):
    pipeline = [
        dict(type='LoadFERImage'),
        dict(type='RandomFlipWithLandmarks', prob=0.5), PACK
    ]
    plain = _batches(rafdb(tiny_rafdb, False, pipeline=pipeline))
    cached = _batches(rafdb(tiny_rafdb, True, pipeline=pipeline))
    assert len(plain) == len(cached) == 14
    for (x, y), (cx, cy) in zip(plain, cached):
        assert y == cy
        torch.testing.assert_close(cx, x, rtol=0, atol=0)


@pytest.mark.parametrize('content', [b'not a jpeg', b''],
                         ids=['garbage', 'empty'])
def test_corrupt_image_is_named_at_build_time(tiny_rafdb, content):
    bad = osp.join(tiny_rafdb, 'Image', 'aligned', 'train_00004_aligned.jpg')
    with open(bad, 'wb') as f:
        f.write(content)
    rafdb(tiny_rafdb, False)  # without the cache, nothing is decoded yet
    with pytest.raises(OSError, match=f'{bad} cannot be decoded'):
        rafdb(tiny_rafdb, True)


def test_cache_above_the_limit_is_refused(tiny_rafdb):
    # 28 images of 32x32x3 bytes: 86,016 bytes
    with pytest.raises(MemoryError,
                       match='above cache_max_gb=8e-05. Raise cache_max_gb'):
        rafdb(tiny_rafdb, True, cache_max_gb=8e-5)
    assert rafdb(tiny_rafdb, True, cache_max_gb=9e-5).images.nbytes == 86016


def test_images_of_different_sizes_are_refused(tiny_rafdb):
    path = osp.join(tiny_rafdb, 'Image', 'aligned', 'train_00003_aligned.jpg')
    cv2.imwrite(path, np.zeros((20, 32, 3), np.uint8))
    with pytest.raises(ValueError, match='train_00003_aligned.jpg decodes to '
                       r'uint8 \(20, 32, 3\).*one size'):
        rafdb(tiny_rafdb, True)


def test_cache_needs_load_fer_image_first(tiny_rafdb):
    with pytest.raises(ValueError, match='needs LoadFERImage as the first'):
        rafdb(tiny_rafdb, True, pipeline=[dict(type='LoadImageFromFile')])
