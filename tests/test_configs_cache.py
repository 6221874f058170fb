# Copyright (c) OpenMMLab. All rights reserved.
"""Which dataset bases hold their decoded images in memory (cache_images),
and that the cache they build holds the files' pixels."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import mmfer  # noqa: F401
from dataset_bases import LOADERS, dataset_base
from fer_replicas import make_ferplus, make_rafdb
from tool_runs import REPO, load_tool

METHODS = load_tool('tools/demo.py').METHODS

# Small images of one size: decoded once, shared by the workers.
CACHED = ('rafdb', 'rafdb_224', 'synthfer', 'ferplus', 'ferplus_224')
# ~287k images of many sizes before the face crop: never cached.
UNCACHED = ('affectnet7', 'affectnet7_224', 'affectnet8', 'affectnet8_224')


def _dataset_cfg(base: str, loader: str = 'train_dataloader'):
    return dataset_base(base)[loader].dataset


@pytest.mark.parametrize('base', CACHED + UNCACHED)
def test_which_bases_cache_their_images(base):
    cfg = dataset_base(base)
    for loader in LOADERS:
        assert cfg[loader].dataset.get('cache_images', False) is (
            base in CACHED), (base, loader)


@pytest.mark.parametrize('config', sorted(METHODS.values()))
def test_demo_configs_cache_and_load_first(config):
    """The SynthFER recipes `make demo` trains: a cached dataset needs
    LoadFERImage first (it takes the cached image), or building it fails."""
    cfg = Config.fromfile(osp.join(REPO, config))
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert dataset.cache_images is True, (config, loader)
        assert dataset.pipeline[0]['type'] == 'LoadFERImage', (config, loader)


def test_synthfer_base_caches_the_files_pixels(tmp_path):
    init_default_scope('mmpretrain')
    root = make_rafdb(str(tmp_path / 'rafdb'), num_train=7, num_test=3)
    for loader, split, num in (('train_dataloader', 'train', 7),
                               ('val_dataloader', 'test', 3)):
        cfg = _dataset_cfg('synthfer', loader)
        cfg.data_root = root
        dataset = DATASETS.build(cfg)
        assert dataset.images.shape == (num, 32, 32, 3)
        for i in range(num):
            name = dataset.get_data_info(i)['name']
            stem = osp.splitext(name)[0]
            assert name.startswith(split)
            # what the file decodes to, read independently of mmfer
            expected = cv2.imread(
                osp.join(root, 'Image', 'aligned', f'{stem}_aligned.jpg'))
            np.testing.assert_array_equal(dataset.images[i], expected)


def test_ferplus_base_caches_the_pngs_and_keeps_the_csv_faces(tmp_path):
    init_default_scope('mmpretrain')
    root = make_ferplus(str(tmp_path / 'ferplus'))
    cfg = _dataset_cfg('ferplus')
    cfg.data_root = root
    csv = DATASETS.build(cfg)
    # the faces decoded from fer2013.csv are the images already: (N, 48, 48)
    assert csv.images.ndim == 3 and csv.images.shape[1:] == (48, 48)
    cfg.img_source = 'folders'
    folders = DATASETS.build(cfg)
    assert folders.images.shape == (len(folders), 48, 48, 3)
    for i in range(len(folders)):
        expected = cv2.imread(folders.get_data_info(i)['img_path'])
        np.testing.assert_array_equal(folders.images[i], expected)
