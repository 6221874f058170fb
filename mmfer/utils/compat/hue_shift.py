# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 4, hue shift: ``mmcv.adjust_hue`` overflows for negative factors
under numpy 2, so ``ColorJitter(hue=h)`` fails on about half the samples.

Probe: the original ``adjust_hue`` raises ``OverflowError`` on a 1x1 image
with factor -0.1. Fix: :func:`adjust_hue`, which wraps the shift modulo 256.
"""
import importlib
import sys
from typing import Callable, Optional

import cv2
import numpy as np
from PIL import Image

from .patching import is_patched, mark, rebind_everywhere, save_original


@mark
def adjust_hue(img: np.ndarray,
               hue_factor: float,
               backend: Optional[str] = None) -> np.ndarray:
    """Adjust the hue of an image, wrapping the hue shift modulo 256.

    Same as ``mmcv.adjust_hue`` except for the shift: mmcv 2.2.0
    ``image/photometric.py:546`` and ``:557`` add ``np.uint8(hue_factor *
    255)``, which numpy >= 2 rejects with ``OverflowError`` for a negative
    factor, so ``ColorJitter(hue=h)`` fails on about half of the samples.
    Here the hue channel is shifted with ``(h.astype(np.int16) + shift) %
    256``, the rotation numpy 1 performed implicitly.

    Args:
        img (ndarray): Image to be adjusted (BGR).
        hue_factor (float): Shift of the hue channel in ``[-0.5, 0.5]``;
            0 keeps the image, -0.5 and 0.5 give complementary colours.
        backend (str | None): ``'cv2'``, ``'pillow'`` or None for mmcv's
            image backend. Defaults to None.

    Returns:
        ndarray: Hue adjusted image.
    """
    if backend is None:
        # mmcv reads the ``imread_backend`` copied into photometric.py.
        photometric = sys.modules['mmcv.image.photometric']
        backend = getattr(photometric, 'imread_backend', 'cv2')
    if backend not in ['cv2', 'pillow']:
        raise ValueError(f'backend: {backend} is not supported.'
                         f"Supported backends are 'cv2', 'pillow'")

    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and (img.ndim in {2, 3})):
        raise TypeError('img should be ndarray with dim=[2 or 3].')

    # ``int`` truncates towards zero like ``np.uint8(float)`` does for the
    # positive factors mmcv supported, so those give identical results.
    shift = int(hue_factor * 255)

    def _rotate(hue: np.ndarray) -> np.ndarray:
        return ((hue.astype(np.int16) + shift) % 256).astype(np.uint8)

    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        # Image.fromarray defaultly supports RGB, not BGR.
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        input_mode = pil_image.mode
        if input_mode in {'L', '1', 'I', 'F'}:
            return pil_image

        h, s, v = pil_image.convert('HSV').split()
        h = Image.fromarray(_rotate(np.array(h, dtype=np.uint8)), 'L')
        pil_image = Image.merge('HSV', (h, s, v)).convert(input_mode)
        return np.array(pil_image, dtype=img.dtype)[..., ::-1]

    dtype = img.dtype
    img = img.astype(np.uint8)
    hsv_img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv_img)
    hsv_img = cv2.merge([_rotate(h), s, v])
    return cv2.cvtColor(hsv_img, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def hue_shift_overflows(func: Callable) -> bool:
    """Probe whether an ``adjust_hue`` fails for a negative hue factor.

    Args:
        func (Callable): The ``adjust_hue`` to probe.

    Returns:
        bool: Whether it raises ``OverflowError`` (numpy >= 2 with mmcv
        <= 2.2.0).
    """
    try:
        func(np.zeros((1, 1, 3), dtype=np.uint8), -0.1, backend='cv2')
    except OverflowError:
        return True
    return False


def patch_adjust_hue() -> bool:
    """Replace ``adjust_hue`` in ``mmcv``, ``mmcv.image`` and
    ``mmcv.image.photometric`` (mmpretrain's ``ColorJitter`` calls
    ``mmcv.adjust_hue``) where it overflows.

    Returns:
        bool: Whether the patch is in place.
    """
    photometric = importlib.import_module('mmcv.image.photometric')
    current = photometric.adjust_hue
    if not is_patched(current) and not hue_shift_overflows(current):
        return False
    original = save_original('mmcv.image.photometric.adjust_hue', current)
    photometric.adjust_hue = adjust_hue
    # Also covers ``mmcv.image`` and ``mmcv`` (``from .image import *``).
    rebind_everywhere(original, adjust_hue)
    return True
