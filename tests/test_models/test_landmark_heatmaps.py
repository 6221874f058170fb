# Copyright (c) OpenMMLab. All rights reserved.
"""render_heatmaps against a naive per-pixel loop of the official LA-Net
rule and against the numpy transform it replaced (rendering in the data
workers), value for value."""
import math

import cv2
import numpy as np
import pytest
import torch

from mmfer.models.utils import render_heatmaps

STRIDE = 4
SIGMA = 1.5
WEIGHT = 10.0
THRESHOLD = 0.2


def naive_heatmap(x, y, map_h, map_w, stride=STRIDE, sigma=SIGMA):
    """One point's map, pixel by pixel, from the official rule."""
    tmp = 3 * sigma
    mu_x, mu_y = int(x / stride + 0.5), int(y / stride + 0.5)
    ul_x, ul_y = int(mu_x - tmp), int(mu_y - tmp)
    br_x, br_y = int(mu_x + tmp + 1), int(mu_y + tmp + 1)
    size = 2 * tmp + 1
    length = len(range(math.ceil(size)))
    centre = size // 2
    out = np.zeros((map_h, map_w), np.float32)
    for r in range(map_h):
        for c in range(map_w):
            i, j = r - ul_y, c - ul_x
            if ul_y <= r < br_y and ul_x <= c < br_x and \
                    0 <= i < length and 0 <= j < length:
                out[r, c] = math.exp(-((j - centre)**2 + (i - centre)**2) /
                                     (2 * sigma**2))
    return out


def naive_weights(heatmap, weight=WEIGHT, threshold=THRESHOLD):
    map_h, map_w = heatmap.shape
    out = np.ones_like(heatmap)
    for r in range(map_h):
        for c in range(map_w):
            window = heatmap[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
            if window.max() > threshold:
                out[r, c] = weight
    return out


def old_numpy_targets(points, map_h, map_w, stride=STRIDE, sigma=SIGMA,
                      weight=WEIGHT, threshold=THRESHOLD):
    """The numpy rendering of the former LandmarkHeatmaps transform."""
    radius = 3 * sigma
    size = 2 * radius + 1
    grid = np.arange(0, size, 1, dtype=np.float64)
    centre = size // 2
    patch = np.exp(-((grid[None, :] - centre)**2 +
                     (grid[:, None] - centre)**2) / (2 * sigma**2))
    maps = []
    for x, y in np.asarray(points, np.float32):
        heatmap = np.zeros((map_h, map_w), np.float32)
        mu_x = int(float(x) / stride + 0.5)
        mu_y = int(float(y) / stride + 0.5)
        ul_x, ul_y = int(mu_x - radius), int(mu_y - radius)
        br_x, br_y = int(mu_x + radius + 1), int(mu_y + radius + 1)
        x0, x1 = max(ul_x, 0), min(br_x, map_w)
        y0, y1 = max(ul_y, 0), min(br_y, map_h)
        if x0 < x1 and y0 < y1:
            heatmap[y0:y1, x0:x1] = patch[y0 - ul_y:y1 - ul_y,
                                          x0 - ul_x:x1 - ul_x]
        maps.append(heatmap)
    heatmaps = np.stack(maps)
    kernel = np.ones((3, 3), np.uint8)
    near = np.stack([cv2.dilate(h, kernel) for h in heatmaps]) > threshold
    return heatmaps, np.where(near, weight, 1.0).astype(np.float32)


def render(points, map_h, map_w, **kwargs):
    heatmaps, weights = render_heatmaps(
        torch.as_tensor(np.asarray(points, np.float32)),
        (map_h, map_w), **kwargs)
    assert heatmaps.dtype == weights.dtype == torch.float32
    return heatmaps.numpy(), weights.numpy()


def test_matches_naive_loop_at_border_partly_and_fully_outside():
    # 96x80 image -> 24x20 maps: interior, near the top-left border (int()
    # truncates ul towards zero there), a map pixel exactly between two
    # rounding cases (x / 4 + 0.5 = 3.0), partly outside on the right and
    # below, and entirely outside on each side
    points = np.array(
        [[[45.3, 38.9], [5.0, 3.0], [10.0, 0.4], [99.0, 70.0],
          [60.0, 93.0], [-40.0, 20.0], [30.0, -30.0], [140.0, 10.0],
          [30.0, 120.0], [-1.9, -1.9]]], np.float32)
    heatmaps, weights = render(points, 20, 24)
    assert heatmaps.shape == weights.shape == (1, 10, 20, 24)
    for k, (x, y) in enumerate(points[0]):
        expected = naive_heatmap(float(x), float(y), 20, 24)
        np.testing.assert_allclose(heatmaps[0, k], expected, rtol=0,
                                   atol=1e-7, err_msg=f'point {k}')
        np.testing.assert_array_equal(weights[0, k], naive_weights(expected),
                                      err_msg=f'point {k}')
    # peak 1 at int(x / 4 + 0.5) for the interior point
    assert heatmaps[0, 0, 10, 11] == 1.0
    # the truncation moves the near-border peak from (1, 1) to (2, 2)
    assert heatmaps[0, 1, 2, 2] == 1.0 and heatmaps[0, 1, 1, 1] < 1
    assert heatmaps[0, 3].max() > 0 and heatmaps[0, 4].max() > 0
    for k in range(5, 9):
        assert not heatmaps[0, k].any(), k
        assert (weights[0, k] == 1).all(), k
    assert (weights[0, 0] == WEIGHT).sum() > 9


def test_matches_the_old_numpy_transform_exactly():
    # batch x points spread over the image and beyond its border, at
    # several map sizes (non-square, odd)
    rng = np.random.default_rng(0)
    for map_h, map_w in ((56, 56), (16, 12), (9, 13)):
        points = rng.uniform(-30, 4 * max(map_h, map_w) + 30,
                             (6, 19, 2)).astype(np.float32)
        # integer coordinates, as after the official crop's truncation,
        # and points exactly on the rounding boundary
        points[0] = np.trunc(points[0])
        points[1, :, 0] = 4 * np.arange(19) % (4 * map_w) + 2
        heatmaps, weights = render(points, map_h, map_w)
        for n in range(points.shape[0]):
            old_h, old_w = old_numpy_targets(points[n], map_h, map_w)
            np.testing.assert_array_equal(heatmaps[n], old_h)
            np.testing.assert_array_equal(weights[n], old_w)


@pytest.mark.parametrize('stride, sigma, weight, threshold',
                         [(2, 1.0, 5.0, 0.5), (8, 2.0, 3.0, 0.1)])
def test_other_constants(stride, sigma, weight, threshold):
    rng = np.random.default_rng(1)
    points = rng.uniform(-10, 90, (2, 5, 2)).astype(np.float32)
    heatmaps, weights = render(
        points, 11, 10, stride=stride, sigma=sigma, weight=weight,
        threshold=threshold)
    for n in range(2):
        old_h, old_w = old_numpy_targets(points[n], 11, 10, stride, sigma,
                                         weight, threshold)
        np.testing.assert_array_equal(heatmaps[n], old_h)
        np.testing.assert_array_equal(weights[n], old_w)
        for k, (x, y) in enumerate(points[n]):
            expected = naive_heatmap(float(x), float(y), 11, 10, stride,
                                     sigma)
            np.testing.assert_allclose(heatmaps[n, k], expected, rtol=0,
                                       atol=1e-7)
            np.testing.assert_array_equal(
                weights[n, k], naive_weights(expected, weight, threshold))


def test_float64_landmarks_and_bad_shape():
    points = np.array([[[17.5, 9.0], [3.0, 30.0]]])
    heatmaps, weights = render_heatmaps(
        torch.as_tensor(points, dtype=torch.float64), (10, 8))
    old_h, old_w = old_numpy_targets(points[0], 10, 8)
    np.testing.assert_array_equal(heatmaps[0].numpy(), old_h)
    np.testing.assert_array_equal(weights[0].numpy(), old_w)
    with pytest.raises(ValueError, match=r'\(N, K, 2\)'):
        render_heatmaps(torch.zeros(19, 2), (10, 8))
