# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomGaussianNoise(BaseTransform):
    """Add i.i.d. Gaussian pixel noise to a uint8 image with a probability.

    EAC's ``add_g`` (official ``src/dataset.py``): with probability ``prob``,
    ``img = clip(img + N(0, var), 0, 255).astype(uint8)`` with one draw per
    pixel and channel (``astype`` truncates, as in the official code). EAC
    applies it to the raw image of view 1 only, before resizing.

    **Required Keys:** ``img``. **Modified Keys:** ``img``.

    Args:
        prob (float): Probability of adding noise. Defaults to 0.5.
        var (float): Variance of the noise in squared pixel levels (EAC: 30,
            i.e. std ~5.48). Defaults to 30.0.
    """

    def __init__(self, prob: float = 0.5, var: float = 30.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob={prob} must be in [0, 1].')
        if var < 0:
            raise ValueError(f'var={var} must be >= 0.')
        self.prob = prob
        self.var = var

    @cache_randomness
    def _apply(self) -> bool:
        return np.random.rand() < self.prob

    def transform(self, results: dict) -> dict:
        """Add the noise to ``results['img']``.

        Args:
            results (dict): Result dict with a uint8 ``img``.

        Returns:
            dict: The result dict.
        """
        if not self._apply():
            return results
        img = results['img']
        noise = np.random.normal(0.0, np.sqrt(self.var), img.shape)
        results['img'] = np.clip(img + noise, 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, var={self.var})'
