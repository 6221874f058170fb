# Copyright (c) OpenMMLab. All rights reserved.
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from .landmark_geometric import check_landmarks_frame


@TRANSFORMS.register_module()
class LandmarkHeatmaps(BaseTransform):
    """Render the HRNet-style heatmap targets of the official LA-Net code.

    The maps have ``(H // stride, W // stride)`` pixels for the CURRENT
    ``H x W`` image, so run this after every geometric transform. For each
    point ``(x, y)``:

    - its map pixel is ``mu = (int(x / stride + 0.5), int(y / stride +
      0.5))``;
    - a Gaussian patch ``exp(-d^2 / (2 sigma^2))`` (peak 1, not normalised)
      of ``len(arange(2 * 3 sigma + 1))`` pixels (10 for sigma 1.5), centred
      at patch index ``(2 * 3 sigma + 1) // 2``, is pasted with its corner at
      ``ul = int(mu - 3 sigma)`` (``int`` truncates towards zero, as in the
      official code, which moves the peak by one pixel for a point near the
      top/left border) and clipped to the map; a patch entirely outside the
      map leaves a zero map;
    - the weight map is ``weight`` where the 3x3 grey dilation of the
      heatmap exceeds ``weight_threshold``, else 1 (all ones for an empty
      map).

    A sample without landmarks gets zero heatmaps, ZERO weights and
    ``has_landmarks=False``, so the landmark loss ignores it instead of
    learning an empty target.

    **Required Keys:** ``img``; optional ``landmarks``, ``landmarks_frame``.
    **Added Keys:** ``heatmaps``, ``heatmap_weights`` (float32 ``(K, h,
    w)``), ``has_landmarks`` (bool).

    Args:
        num_landmarks (int): Number of points K (19 for LA-Net's RAF-DB
            landmarks).
        stride (int): Image pixels per map pixel. Defaults to 4.
        sigma (float): Gaussian standard deviation in map pixels.
            Defaults to 1.5.
        weight (float): Weight of the pixels near a point. Defaults to 10.0.
        weight_threshold (float): Dilated heatmap value above which a pixel
            is near a point. Defaults to 0.2.
    """

    def __init__(self,
                 num_landmarks: int,
                 stride: int = 4,
                 sigma: float = 1.5,
                 weight: float = 10.0,
                 weight_threshold: float = 0.2) -> None:
        if num_landmarks <= 0:
            raise ValueError(f'num_landmarks={num_landmarks} must be > 0.')
        if int(stride) != stride or stride <= 0:
            raise ValueError(f'stride={stride} must be a positive int.')
        if sigma <= 0:
            raise ValueError(f'sigma={sigma} must be > 0.')
        self.num_landmarks = int(num_landmarks)
        self.stride = int(stride)
        self.sigma = float(sigma)
        self.weight = float(weight)
        self.weight_threshold = float(weight_threshold)
        self.radius = 3 * self.sigma
        size = 2 * self.radius + 1
        grid = np.arange(0, size, 1, dtype=np.float64)
        centre = size // 2
        self.patch = np.exp(-((grid[None, :] - centre)**2 +
                              (grid[:, None] - centre)**2) /
                            (2 * self.sigma**2))

    def transform(self, results: dict) -> dict:
        """Add the heatmaps and weight maps of ``results['landmarks']``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        height, width = results['img'].shape[:2]
        map_shape = (height // self.stride, width // self.stride)
        shape = (self.num_landmarks, ) + map_shape
        if results.get('landmarks') is None:
            results['heatmaps'] = np.zeros(shape, dtype=np.float32)
            results['heatmap_weights'] = np.zeros(shape, dtype=np.float32)
            results['has_landmarks'] = False
            return results
        check_landmarks_frame(results, type(self).__name__)
        points = np.asarray(results['landmarks'], dtype=np.float32)
        if points.shape != (self.num_landmarks, 2):
            raise ValueError(
                f'{type(self).__name__}: results["landmarks"] has shape '
                f'{points.shape} but num_landmarks={self.num_landmarks} '
                f'expects ({self.num_landmarks}, 2); set num_landmarks to '
                'the number of points of the dataset\'s landmark layout.')
        heatmaps = np.stack(
            [self._heatmap(x, y, map_shape) for x, y in points])
        results['heatmaps'] = heatmaps
        results['heatmap_weights'] = self._weights(heatmaps)
        results['has_landmarks'] = True
        return results

    def _heatmap(self, x: float, y: float,
                 map_shape: Tuple[int, int]) -> np.ndarray:
        heatmap = np.zeros(map_shape, dtype=np.float32)
        map_h, map_w = map_shape
        mu_x = int(float(x) / self.stride + 0.5)
        mu_y = int(float(y) / self.stride + 0.5)
        ul_x, ul_y = int(mu_x - self.radius), int(mu_y - self.radius)
        br_x = int(mu_x + self.radius + 1)
        br_y = int(mu_y + self.radius + 1)
        x0, x1 = max(ul_x, 0), min(br_x, map_w)
        y0, y1 = max(ul_y, 0), min(br_y, map_h)
        if x0 >= x1 or y0 >= y1:
            return heatmap
        heatmap[y0:y1, x0:x1] = self.patch[y0 - ul_y:y1 - ul_y,
                                           x0 - ul_x:x1 - ul_x]
        return heatmap

    def _weights(self, heatmaps: np.ndarray) -> np.ndarray:
        kernel = np.ones((3, 3), dtype=np.uint8)
        near = np.stack([cv2.dilate(h, kernel)
                         for h in heatmaps]) > self.weight_threshold
        return np.where(near, self.weight, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_landmarks={self.num_landmarks}, '
                f'stride={self.stride}, sigma={self.sigma}, '
                f'weight={self.weight}, '
                f'weight_threshold={self.weight_threshold})')
