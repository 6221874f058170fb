# Copyright (c) OpenMMLab. All rights reserved.
"""Landmark-aware geometric transforms, landmark targets and packing.

The geometric checks draw one Gaussian spot per landmark, each in its own
colour channel, move image and landmarks with a transform, and compare the
spot centroids of the output image with the output landmarks.
"""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import DefaultScope
from mmpretrain.registry import TRANSFORMS

import mmfer  # noqa: F401
from mmfer.datasets.landmark_schemes import get_landmark_scheme
from mmfer.datasets.transforms.landmark_geometric import (
    RandomCropWithLandmarks, RandomFlipWithLandmarks,
    RandomResizedCropWithLandmarks, RandomRotateWithLandmarks,
    ResizeWithLandmarks)
from mmfer.datasets.transforms.landmark_targets import LandmarkTargets
from mmfer.datasets.transforms.loading import LoadFERImage
from mmfer.models.utils import render_heatmaps

LANDMARK_FIXTURES = (
    Path(__file__).resolve().parents[2] / '..' / 'shared' / 'fixtures' /
    'rafdb_landmarks')
SPOT_SIGMA = 1.5
SEEDS = range(6)
# Non-square, so a swapped (w, h) shows up.
WIDTH, HEIGHT = 64, 48
POINTS = np.array([[20.3, 15.6], [44.8, 20.2], [31.5, 33.7]], np.float32)


def spot_image(points, width=WIDTH, height=HEIGHT):
    """A black image with a Gaussian spot at point k in channel k."""
    cols = np.arange(width) + 0.5  # pixel centres, corner convention
    rows = np.arange(height) + 0.5
    img = np.zeros((height, width, 3), np.uint8)
    for k, (x, y) in enumerate(points):
        spot = np.exp(-((cols[None] - x)**2 + (rows[:, None] - y)**2) /
                      (2 * SPOT_SIGMA**2))
        img[..., k] = np.round(255 * spot).astype(np.uint8)
    return img


def centroid(channel):
    weights = channel.astype(np.float64)
    rows, cols = np.indices(channel.shape)
    total = weights.sum()
    return np.array([(weights * (cols + 0.5)).sum() / total,
                     (weights * (rows + 0.5)).sum() / total])


def sample(points=POINTS, width=WIDTH, height=HEIGHT):
    return dict(
        img=spot_image(points, width, height),
        landmarks=points.copy(),
        landmarks_frame=(height, width))


def check_spots(out, margin, tol=1.0):
    """Compare spot centroids with the landmarks; return #points checked."""
    height, width = out['img'].shape[:2]
    assert out['landmarks_frame'] == (height, width)
    assert tuple(out['img_shape'][:2]) == (height, width)
    checked = 0
    for k, (x, y) in enumerate(out['landmarks']):
        if not (margin <= x <= width - margin
                and margin <= y <= height - margin):
            continue  # its spot may be cut by the border
        np.testing.assert_allclose(
            centroid(out['img'][..., k]), (x, y), atol=tol)
        checked += 1
    return checked


@pytest.mark.parametrize('scale,interpolation,backend', [
    ((96, 80), 'bilinear', 'cv2'),
    ((48, 40), 'bicubic', 'cv2'),
    ((112, 72), 'bicubic', 'pillow'),
])
def test_resize_moves_landmarks_with_image(scale, interpolation, backend):
    out = ResizeWithLandmarks(
        scale, interpolation=interpolation, backend=backend)(
            sample())
    assert out['img'].shape[:2] == (scale[1], scale[0])
    np.testing.assert_allclose(
        out['landmarks'],
        POINTS * [scale[0] / WIDTH, scale[1] / HEIGHT],
        rtol=1e-6)
    assert check_spots(out, margin=0) == len(POINTS)


def test_random_resized_crop_moves_landmarks_with_image():
    transform = RandomResizedCropWithLandmarks((HEIGHT, WIDTH),
                                               scale=(0.25, 1.0))
    checked = 0
    for seed in SEEDS:
        np.random.seed(seed)
        out = transform(sample())
        assert out['img'].shape[:2] == (HEIGHT, WIDTH)
        # the crop only enlarges here: the spot grows by <= 2x
        checked += check_spots(out, margin=4 * 2 * SPOT_SIGMA)
    assert checked >= len(SEEDS)


def test_random_resized_crop_truncation_and_fallback():
    plain = RandomResizedCropWithLandmarks(32, scale=(0.5, 1.0))
    truncated = RandomResizedCropWithLandmarks(
        32, scale=(0.5, 1.0), truncate_landmarks=True)
    for seed in SEEDS:
        np.random.seed(seed)
        exact = plain(sample())
        np.random.seed(seed)
        out = truncated(sample())
        np.testing.assert_array_equal(out['img'], exact['img'])
        np.testing.assert_array_equal(out['landmarks'],
                                      np.trunc(exact['landmarks']))
        check_spots(out, margin=8, tol=2.0)
    # No draw fits a 1:1 box of 4x the area: the centre box of the
    # 64x48 image clamped to ratio 1, i.e. 48x48 from x = 8.
    fallback = RandomResizedCropWithLandmarks(
        48, scale=(4.0, 4.0), ratio=(1.0, 1.0))
    out = fallback(sample())
    np.testing.assert_allclose(out['landmarks'], POINTS - [8, 0], atol=1e-5)
    np.testing.assert_array_equal(out['img'], spot_image(POINTS)[:, 8:56])
    # a tall 48x64 image: the 48x48 box from y = 8
    tall = POINTS[:, ::-1].copy()
    out = fallback(sample(tall, width=HEIGHT, height=WIDTH))
    np.testing.assert_allclose(out['landmarks'], tall - [0, 8], atol=1e-5)


def test_random_crop_with_padding_moves_landmarks_with_image():
    transform = RandomCropWithLandmarks((HEIGHT, WIDTH), padding=8)
    offsets = set()
    for seed in SEEDS:
        np.random.seed(seed)
        out = transform(sample())
        assert out['img'].shape[:2] == (HEIGHT, WIDTH)
        offsets.add(tuple(np.round(out['landmarks'][0] - POINTS[0])))
        assert check_spots(out, margin=4 * SPOT_SIGMA) >= 1
    assert len(offsets) > 1
    with pytest.raises(ValueError, match='larger than the padded image'):
        RandomCropWithLandmarks(80)(sample())


def test_random_rotate_moves_landmarks_with_image():
    transform = RandomRotateWithLandmarks(30)
    checked = 0
    for seed in SEEDS:
        np.random.seed(seed)
        out = transform(sample())
        checked += check_spots(out, margin=4 * SPOT_SIGMA)
    assert checked >= 2 * len(SEEDS)
    # a positive angle turns clockwise on screen (y points down): the
    # point right of the centre moves below it
    transform = RandomRotateWithLandmarks(90)
    transform._angle = lambda: 90.0
    right = np.array([[WIDTH / 2 + 10, HEIGHT / 2]], np.float32)
    out = transform(dict(img=spot_image(right), landmarks=right))
    np.testing.assert_allclose(
        out['landmarks'], [[WIDTH / 2, HEIGHT / 2 + 10]], atol=1e-4)
    check_spots(out, margin=0, tol=0.05)


def test_rotate_probability_zero_is_identity():
    out = RandomRotateWithLandmarks(30, prob=0.0)(sample())
    np.testing.assert_array_equal(out['landmarks'], POINTS)
    np.testing.assert_array_equal(out['img'], spot_image(POINTS))


@pytest.mark.parametrize('permute', [True, False])
def test_flip_moves_landmarks_with_image(permute):
    transform = RandomFlipWithLandmarks(
        prob=1.0, permute_landmarks=permute, landmark_scheme='rafdb_manual5')
    points = np.array([[20, 15], [44, 16], [32, 26], [22, 38], [43, 37]],
                      np.float32) + 0.25
    results = dict(img=spot_image(points[:3]), landmarks=points)
    out = transform(results)
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    mirrored = np.stack([WIDTH - points[:, 0], points[:, 1]], 1)
    perm = [1, 0, 2, 4, 3] if permute else [0, 1, 2, 3, 4]
    np.testing.assert_allclose(out['landmarks'], mirrored[perm])
    # the spot drawn at input point k is where the output names it
    for k in range(3):
        np.testing.assert_allclose(
            centroid(out['img'][..., k]), mirrored[k], atol=0.05)


def test_flip_permutation_names_aflw19_points():
    scheme = get_landmark_scheme('aflw19')
    rng = np.random.default_rng(0)
    points = rng.uniform(4, 44, (19, 2)).astype(np.float32)
    right_eye_outer, left_eye_outer = 11, 6
    img = spot_image(points[[right_eye_outer]])
    out = RandomFlipWithLandmarks(prob=1.0)(dict(img=img, landmarks=points))
    # the image-left eye corner of the mirrored face is the mirrored spot
    # of the image-right one
    np.testing.assert_allclose(
        centroid(out['img'][..., 0]),
        out['landmarks'][left_eye_outer],
        atol=0.05)
    raw = RandomFlipWithLandmarks(
        prob=1.0, permute_landmarks=False)(
            dict(img=img, landmarks=points))
    assert np.abs(
        centroid(raw['img'][..., 0]) -
        raw['landmarks'][left_eye_outer]).max() > 1
    np.testing.assert_array_equal(out['landmarks'],
                                  raw['landmarks'][scheme.flip_indices])


def test_flip_keeps_real_lanet_landmarks_left_to_right():
    path = LANDMARK_FIXTURES / 'raf_train_19_landmarks.tensor'
    if not path.is_file():
        pytest.skip(f'{path} is absent: LA-Net\'s RAF-DB landmarks live in '
                    '../shared beside the repo (CI has them).')
    rows = torch.load(path, weights_only=True)[:200].numpy()
    pairs = np.array(get_landmark_scheme('aflw19').flip_pairs)
    img = np.zeros((224, 224, 3), np.uint8)

    def image_left_first(points):
        # the smaller index of each pair is the image-left point
        return points[:, pairs[:, 0], 0] < points[:, pairs[:, 1], 0]

    # a few HRNet detections (profile faces) break the rule
    assert image_left_first(rows).mean() > 0.99
    for permute in (True, False):
        transform = RandomFlipWithLandmarks(
            prob=1.0, permute_landmarks=permute)
        flipped = np.stack([
            transform(dict(img=img, landmarks=points))['landmarks']
            for points in rows
        ])
        np.testing.assert_array_equal(
            image_left_first(flipped),
            image_left_first(rows) if permute else ~image_left_first(rows))


def test_flip_rejects_wrong_scheme():
    transform = RandomFlipWithLandmarks(prob=1.0, landmark_scheme='aflw19')
    with pytest.raises(ValueError, match='19 points but the sample has 3'):
        transform(sample())
    with pytest.raises(KeyError, match='no landmark scheme has 3 points'):
        RandomFlipWithLandmarks(prob=1.0)(sample())


@pytest.mark.parametrize('transform', [
    ResizeWithLandmarks(32),
    RandomFlipWithLandmarks(prob=1.0),
    RandomResizedCropWithLandmarks(32),
    RandomCropWithLandmarks(32, padding=4),
    RandomRotateWithLandmarks(10),
])
def test_sample_without_landmarks_passes(transform):
    for landmarks in ({}, dict(landmarks=None)):
        out = transform(dict(img=spot_image(POINTS), **landmarks))
        assert out.get('landmarks') is None
        assert 'landmarks_frame' not in out
        assert tuple(out['img_shape']) == out['img'].shape[:2]


def test_landmark_targets_pass_the_points():
    # the model renders the heatmap targets from these points
    # (tests/test_models/test_landmark_heatmaps.py checks the rendering)
    points = np.array([[45.3, 38.9], [5.0, 3.0], [99.0, 70.0], [-40.0, 20.0]])
    out = LandmarkTargets(num_landmarks=4)(
        dict(
            img=np.zeros((80, 96, 3), np.uint8),
            landmarks=points,
            landmarks_frame=(80, 96)))
    assert out['landmarks'].dtype == np.float32
    np.testing.assert_array_equal(out['landmarks'], points.astype(np.float32))
    assert out['has_landmarks'] is True
    assert 'heatmaps' not in out and 'heatmap_weights' not in out


def test_sample_without_landmarks_gets_zero_points_and_a_flag():
    for landmarks in ({}, dict(landmarks=None)):
        out = LandmarkTargets(num_landmarks=19)(
            dict(img=np.zeros((64, 48, 3), np.uint8), **landmarks))
        assert out['landmarks'].shape == (19, 2)
        assert out['landmarks'].dtype == np.float32
        assert not out['landmarks'].any()
        assert out['has_landmarks'] is False


def test_landmark_targets_reject_unmoved_landmarks_and_wrong_count():
    load = LoadFERImage()
    results = load(dict(img=spot_image(POINTS), landmarks=POINTS.copy()))
    assert results['landmarks_frame'] == (HEIGHT, WIDTH)
    resized = TRANSFORMS.build(dict(type='Resize', scale=(32, 32)))(results)
    with pytest.raises(ValueError, match='ResizeWithLandmarks'):
        LandmarkTargets(num_landmarks=3)(resized)
    with pytest.raises(ValueError, match='does not move landmarks'):
        RandomFlipWithLandmarks(prob=1.0)(resized)
    fresh = load(dict(img=spot_image(POINTS), landmarks=POINTS.copy()))
    with pytest.raises(ValueError, match='num_landmarks=19'):
        LandmarkTargets(num_landmarks=19)(fresh)


def test_load_sets_frame_of_cropped_image():
    out = LoadFERImage()(
        dict(
            img=spot_image(POINTS),
            crop_bbox=(10, 5, 50, 45),
            landmarks=POINTS.copy()))
    assert out['landmarks_frame'] == (40, 40)
    assert 'landmarks_frame' not in LoadFERImage()(
        dict(img=spot_image(POINTS)))


def test_pack_landmark_fields():
    pack = TRANSFORMS.build(dict(type='PackFERInputs'))
    targets = LandmarkTargets(num_landmarks=3)
    with_points = pack(targets(sample()))['data_samples']
    assert with_points.landmarks.dtype == torch.float32
    np.testing.assert_array_equal(with_points.landmarks.numpy(), POINTS)
    assert with_points.has_landmarks.dtype == torch.bool
    assert with_points.has_landmarks.tolist() == [True]
    assert 'heatmaps' not in with_points
    assert 'heatmap_weights' not in with_points
    without = pack(targets(dict(img=spot_image(POINTS),
                                landmarks=None)))['data_samples']
    assert without.has_landmarks.tolist() == [False]
    assert without.landmarks.shape == (3, 2)
    assert not without.landmarks.any()
    # without LandmarkTargets, absent landmarks stay unpacked
    bare = pack(dict(img=spot_image(POINTS), landmarks=None))['data_samples']
    assert 'landmarks' not in bare and 'has_landmarks' not in bare


def test_lanet_pipeline():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    points = rng.uniform(5, 35, (19, 2)).astype(np.float32)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose([
            dict(type='LoadFERImage'),
            dict(
                type='ResizeWithLandmarks',
                scale=224,
                interpolation='bicubic',
                backend='pillow'),
            dict(type='RandomFlipWithLandmarks', permute_landmarks=False),
            dict(
                type='RandomResizedCropWithLandmarks',
                size=224,
                scale=(0.75, 1.0),
                truncate_landmarks=True),
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.4),
            dict(
                type='RandomErasing',
                erase_prob=0.2,
                min_area_ratio=0.02,
                max_area_ratio=0.2),
            dict(type='LandmarkTargets', num_landmarks=19),
            dict(type='PackFERInputs'),
        ])
    for seed in range(3):
        np.random.seed(seed)
        packed = pipeline(dict(img=img, landmarks=points, gt_label=1))
        assert packed['inputs'].shape == (3, 224, 224)
        sample_ = packed['data_samples']
        # what a data worker sends besides the image: the points, not two
        # float32 maps of 19 x 56 x 56 (476 KB)
        assert len(pickle.dumps(sample_)) < 10_000
        assert sample_.landmarks.shape == (19, 2)
        assert sample_.has_landmarks.tolist() == [True]
        landmarks = sample_.landmarks.numpy()
        assert (landmarks == np.trunc(landmarks)).all()
        # the model's rendering of these points at 224 / 4
        heatmaps, _ = render_heatmaps(sample_.landmarks[None], (56, 56))
        assert heatmaps.shape == (1, 19, 56, 56)
        for k, (x, y) in enumerate(landmarks):
            col, row = int(x / 4 + 0.5), int(y / 4 + 0.5)
            if 5 <= col < 51 and 5 <= row < 51:
                assert heatmaps[0, k, row, col] == 1.0
