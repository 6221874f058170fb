# Copyright (c) OpenMMLab. All rights reserved.
"""Device-side batch augments: each equals its CPU transform given the
same parameters, draws depend on each sample's aug_seed only, and a real
loader with 0 or 2 workers feeds the same augmented batches."""
import os.path as osp

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader
from torchvision.transforms import InterpolationMode

import mmfer  # noqa: F401
from mmfer.datasets import RAFDBDataset
from mmfer.datasets.transforms import RandomGaussianNoise
from mmfer.models import FERDataPreprocessor, flip_width
from mmfer.models.utils.device_augments import (DeviceGaussianNoise,
                                                DeviceRandomCrop,
                                                DeviceRandomErasing,
                                                DeviceRandomFlip,
                                                DeviceRandomResizedCrop)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NORM = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
MEAN_BGR = (103.53, 116.28, 123.675)
SEEDS = [int(s) for s in np.random.default_rng(0).integers(0, 2**63, 12)]
ERASING = dict(type='DeviceRandomErasing', prob=0.5, scale=(0.02, 0.25))
# EAC's two views from one raw image, plus the crops, so that every augment
# runs in the loader test
EAC_LIKE = dict(views=[
    [
        dict(type='DeviceGaussianNoise', prob=0.5, var=30.0), ERASING,
        dict(type='DeviceRandomCrop', size=16, padding=2, prob=0.5)
    ],
    [
        dict(type='DeviceRandomFlip', prob=1.0), ERASING,
        dict(type='DeviceRandomResizedCrop', size=16, scale=(0.5, 1.0))
    ],
])


def pixels(n=len(SEEDS), h=12, w=10, seed=0):
    """Float images of whole pixel levels, as the loader's uint8 ones."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=gen).float()


def packed(imgs, seeds=SEEDS):
    """A pseudo-collated batch of uint8 images with their aug_seeds."""
    return dict(
        inputs=[img.to(torch.uint8) for img in imgs],
        data_samples=[
            DataSample(metainfo=dict(aug_seed=s)).set_gt_label(i % 7)
            for i, s in enumerate(seeds)
        ])


def test_flip_equals_torchvision_hflip():
    flip, x = DeviceRandomFlip(prob=0.5), pixels()
    params = flip.draw_params(SEEDS, 0, 0, 12, 10)
    assert 0 < params.sum() < len(SEEDS)  # both outcomes occur
    out = flip(x, SEEDS)
    for i, (flipped, ) in enumerate(params):
        assert torch.equal(out[i], TF.hflip(x[i]) if flipped else x[i])


def test_erasing_equals_torchvision_erase_after_normalisation():
    erasing, x = DeviceRandomErasing(prob=0.7, fill=MEAN_BGR), pixels()
    params = erasing.draw_params(SEEDS, 0, 0, 12, 10)
    assert 0 < (params[:, 2] > 0).sum() < len(SEEDS)
    norm = ClsDataPreprocessor(**NORM)
    ours = norm(dict(inputs=erasing(x, SEEDS)))['inputs']
    plain = norm(dict(inputs=x))['inputs']
    for i, (top, left, h, w) in enumerate(params.tolist()):
        # torchvision RandomErasing(value=0) on the normalised tensor
        expected = TF.erase(plain[i], top, left, h, w,
                            torch.tensor(0.)) if h else plain[i]
        assert torch.equal(ours[i], expected)


def test_erasing_draws_boxes_like_torchvision():
    erasing = DeviceRandomErasing(prob=0.5, scale=(0.02, 0.25))
    params = erasing.draw_params(range(400), 0, 0, 200, 150)
    top, left, h, w = params.T
    erased = h > 0
    assert 0.42 < erased.mean() < 0.58
    # inside the image, smaller than it, with the drawn area share
    assert (top + h <= 200).all() and (left + w <= 150).all()
    assert (h[erased] < 200).all() and (w[erased] < 150).all()
    share = h[erased] * w[erased] / (200 * 150)
    assert share.min() > 0.019 and share.max() < 0.26
    ratio = h[erased] / w[erased]
    assert ratio.min() > 0.29 and ratio.max() < 3.4
    # no box smaller than the image after 10 tries: no erasing at all
    whole = DeviceRandomErasing(prob=1.0, scale=(1.0, 1.0), ratio=(1., 1.))
    assert not whole.draw_params(SEEDS, 0, 0, 12, 12).any()


def test_padded_crop_equals_torchvision_pad_then_crop():
    crop, x = DeviceRandomCrop(size=(8, 9), padding=3), pixels()
    params = crop.draw_params(SEEDS, 0, 0, 12, 10)
    out = crop(x, SEEDS)
    assert out.shape == (len(SEEDS), 3, 8, 9)
    for i, (top, left) in enumerate(params.tolist()):
        padded = TF.pad(x[i], 3, fill=0)  # black border, as on the CPU
        assert torch.equal(out[i], TF.crop(padded, top, left, 8, 9))
    assert (out == 0).any()  # some windows reach into the border


def test_crop_with_probability_leaves_other_images_alone():
    crop, x = DeviceRandomCrop(size=(12, 10), padding=3, prob=0.5), pixels()
    params = crop.draw_params(SEEDS, 0, 0, 12, 10)
    out = crop(x, SEEDS)
    kept = [i for i, corner in enumerate(params.tolist()) if corner == [3, 3]]
    assert 0 < len(kept) < len(SEEDS)
    assert torch.equal(out[kept], x[kept])
    with pytest.raises(ValueError, match='size must be'):
        DeviceRandomCrop(size=8, padding=3, prob=0.5)(x, SEEDS)
    with pytest.raises(ValueError, match='raise padding'):
        DeviceRandomCrop(size=20, padding=3)(x, SEEDS)


@pytest.mark.parametrize('size', [(7, 9), (20, 18)])
def test_resized_crop_equals_torchvision_without_antialias(size):
    rrc, x = DeviceRandomResizedCrop(size=size, scale=(0.2, 1.0)), pixels()
    params = rrc.draw_params(SEEDS, 0, 0, 12, 10)
    out = rrc(x, SEEDS)
    assert out.shape == (len(SEEDS), 3) + size
    for i, (top, left, h, w) in enumerate(params.tolist()):
        assert 0 <= top and top + h <= 12 and 0 <= left and left + w <= 10
        expected = TF.resized_crop(
            x[i],
            top,
            left,
            h,
            w,
            list(size),
            InterpolationMode.BILINEAR,
            antialias=False)
        torch.testing.assert_close(out[i], expected, atol=2e-3, rtol=0)


def test_resized_crop_falls_back_to_the_central_box():
    # an area share above 1 never fits: torchvision's central crop
    full = DeviceRandomResizedCrop(size=4, scale=(2.0, 2.0))
    assert full.draw_params([1], 0, 0, 12, 10).tolist() == [[0, 0, 12, 10]]
    wide = DeviceRandomResizedCrop(size=4, scale=(2.0, 2.0), ratio=(2., 3.))
    # w = 10, h = round(10 / 2), centred vertically
    assert wide.draw_params([1], 0, 0, 12, 10).tolist() == [[3, 0, 5, 10]]


def test_gaussian_noise_equals_the_cpu_transform(monkeypatch):
    noise, x = DeviceGaussianNoise(prob=0.5, var=30.0), pixels()
    params = noise.draw_params(SEEDS, 0, 0, 12, 10)
    assert 0 < params[:, 0].sum() < len(SEEDS)
    out = noise(x, SEEDS)
    cpu = RandomGaussianNoise(prob=0.5, var=30.0)
    for i, (noisy, seed) in enumerate(params.tolist()):
        if not noisy:
            assert torch.equal(out[i], x[i])
            continue
        # the CPU transform on the HWC uint8 image, given the same noise
        field = noise.noise(seed, x[i]).permute(1, 2, 0).double().numpy()
        monkeypatch.setattr(np.random, 'rand', lambda: 0.0)
        monkeypatch.setattr(np.random, 'normal',
                            lambda loc, scale, size: field)
        img = x[i].permute(1, 2, 0).numpy().astype(np.uint8)
        expected = cpu(dict(img=img))['img']
        assert torch.equal(out[i].permute(1, 2, 0),
                           torch.from_numpy(expected).float())


def test_gaussian_noise_has_the_variance_in_pixel_levels():
    noise = DeviceGaussianNoise(prob=1.0, var=30.0)
    grey = torch.full((16, 3, 16, 16), 128.)
    delta = noise(grey, range(16)) - 128
    # floor() adds a uniform rounding error: mean -1/2, variance 1/12
    assert abs(delta.std().item() - (30 + 1 / 12)**0.5) < 0.15
    assert abs(delta.mean().item() + 0.5) < 0.15
    bright = noise(torch.full((4, 3, 16, 16), 253.), range(4))
    assert bright.max() == 255 and torch.equal(bright, bright.floor())


def test_draws_follow_the_sample_not_the_batch():
    pre = FERDataPreprocessor(device_augments=EAC_LIKE, **NORM)
    x = pixels(h=16, w=16)
    full = pre(packed(x), training=True)['inputs']
    assert len(full) == 2
    # a permuted batch gives the permuted outputs
    perm = torch.randperm(
        len(SEEDS), generator=torch.Generator().manual_seed(1))
    shuffled = pre(packed(x[perm], [SEEDS[i] for i in perm]), True)
    for view in range(2):
        assert torch.equal(shuffled['inputs'][view], full[view][perm])
    # two halves (two ranks, or two batches) give the same samples
    halves = [
        pre(packed(x[part], SEEDS[part]), True)['inputs']
        for part in (slice(0, 5), slice(5, None))
    ]
    for view in range(2):
        assert torch.equal(
            torch.cat([half[view] for half in halves]), full[view])


def test_second_view_mirrors_the_raw_image_with_its_own_draws():
    x = pixels()
    mirror = FERDataPreprocessor(
        device_augments=dict(
            views=[[], [dict(type='DeviceRandomFlip', prob=1.0)]]),
        **NORM)(packed(x), True)['inputs']
    assert torch.equal(mirror[1], flip_width(mirror[0]))
    erased = FERDataPreprocessor(
        device_augments=dict(views=[[dict(ERASING, prob=1.0)]] * 2),
        **NORM)(packed(x), True)['inputs']
    same = [torch.equal(a, b) for a, b in zip(*erased)]
    assert sum(same) < 2  # each view draws its own boxes


def test_training_only():
    pre = FERDataPreprocessor(device_augments=EAC_LIKE, **NORM)
    plain = ClsDataPreprocessor(**NORM)
    x = pixels(h=16, w=16)
    assert torch.equal(
        pre(packed(x), training=False)['inputs'],
        plain(packed(x))['inputs'])
    assert not torch.equal(
        pre(packed(x), training=True)['inputs'][0],
        plain(packed(x))['inputs'])


def test_single_view_then_mixup():
    pre = FERDataPreprocessor(
        device_augments=[dict(type='DeviceRandomFlip')],
        batch_augments=dict(augments=dict(type='Mixup', alpha=0.8)),
        **NORM)
    out = pre(packed(pixels()), training=True)
    assert out['inputs'].shape == (len(SEEDS), 3, 12, 10)
    assert out['data_samples'][0].gt_score.shape == (7, )


def test_errors_say_what_to_do():
    pre = FERDataPreprocessor(device_augments=[ERASING], **NORM)
    batch = packed(pixels(n=2), seeds=[5, 6])
    del batch['data_samples'][1].aug_seed
    with pytest.raises(ValueError, match="type='DrawDeviceAugmentSeed'"):
        pre(batch, training=True)
    with pytest.raises(ValueError, match='one size'):
        pre(dict(
            packed(pixels(n=1)),
            inputs=[
                torch.zeros(3, 4, 4, dtype=torch.uint8),
                torch.zeros(3, 5, 4, dtype=torch.uint8)
            ]),
            training=True)
    with pytest.raises(TypeError, match='batch_augments'):
        FERDataPreprocessor(device_augments=[dict(type='Mixup', alpha=1.)])
    with pytest.raises(TypeError, match='not in batch_augments'):
        DeviceRandomFlip()(pixels(n=2), torch.eye(2))  # as Mixup is called
    with pytest.raises(ValueError, match='views='):
        FERDataPreprocessor(device_augments=dict(augments=[ERASING]))
    three = FERDataPreprocessor(device_augments=dict(views=[[]] * 3), **NORM)
    two_views = dict(packed(pixels(n=2), seeds=[5, 6]))
    two_views['inputs'] = [pixels(n=2).byte(), pixels(n=2, seed=1).byte()]
    with pytest.raises(ValueError, match='lists 3 views'):
        three(two_views, training=True)


def test_seed_transform_draws_from_numpy_and_is_packed():
    draw = TRANSFORMS.build(dict(type='DrawDeviceAugmentSeed'))
    pack = TRANSFORMS.build(dict(type='PackFERInputs'))
    np.random.seed(3)
    first = draw(dict(img=np.zeros((4, 4, 3), np.uint8), gt_label=1))
    np.random.seed(3)
    again = draw(dict(img=np.zeros((4, 4, 3), np.uint8), gt_label=1))
    assert first['aug_seed'] == again['aug_seed'] > 0
    assert pack(first)['data_samples'].aug_seed == first['aug_seed']
    assert 'aug_seed' not in pack(
        dict(img=np.zeros((4, 4, 3), np.uint8), gt_label=1))['data_samples']


def _augmented_epochs(root, **loader_kwargs):
    """Two epochs of EAC-like device-augmented training batches."""
    dataset = RAFDBDataset(
        data_root=root,
        serialize_data=False,
        pipeline=[
            dict(type='LoadFERImage'),
            dict(type='Resize', scale=(16, 16)),
            dict(type='DrawDeviceAugmentSeed'),
            dict(type='PackFERInputs'),
        ])
    sampler = DefaultSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(
        dataset,
        batch_size=6,
        sampler=sampler,
        collate_fn=pseudo_collate,
        **loader_kwargs)
    pre = FERDataPreprocessor(device_augments=EAC_LIKE, **NORM)
    batches = []
    for epoch in range(2):
        # what EpochSeedHook and mmengine's hooks do before iter(loader)
        dataset.set_sample_seed(0, epoch)
        sampler.set_epoch(epoch)
        batches += [pre(batch, training=True)['inputs'] for batch in loader]
    return batches


def test_loader_workers_feed_the_same_augmented_batches(tiny_rafdb):
    alone = _augmented_epochs(tiny_rafdb, num_workers=0)
    workers = _augmented_epochs(
        tiny_rafdb,
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context='spawn')
    assert len(alone) == len(workers) == 10
    for ours, theirs in zip(alone, workers):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    # each epoch draws anew
    assert not torch.equal(alone[0][0], alone[5][0])


@pytest.mark.parametrize('method', ['baseline', 'eac'])
def test_device_aug_configs_train(method, tiny_rafdb):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', method,
                 'r18_synthfer_noise30_device-aug.py'))
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=tiny_rafdb))
    dataset.set_sample_seed(0, 0)
    model = MODELS.build(
        dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.train()
    loader = DataLoader(dataset, batch_size=4, collate_fn=pseudo_collate)
    for _, batch in zip(range(2), loader):
        data = model.data_preprocessor(batch, training=True)
        views = data['inputs']
        if method == 'eac':
            assert len(views) == 2
            assert views[1].shape == views[0].shape == (4, 3, 64, 64)
        else:
            assert views.shape == (4, 3, 64, 64)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(loss) and loss.requires_grad
