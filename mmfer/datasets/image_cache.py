# Copyright (c) OpenMMLab. All rights reserved.
"""Decode a split's images once, into one read-only array."""
import time
from typing import Callable, Sequence

import numpy as np
from mmengine.dataset import Compose
from mmengine.logging import MMLogger

from .transforms.loading import LoadFERImage

# Log progress about every this many images.
_LOG_EVERY = 2000


def find_image_loader(pipeline: Compose, owner: str) -> LoadFERImage:
    """Return the pipeline's first transform, which must be LoadFERImage.

    The cached image replaces the file read of that transform, so it must
    be the one that loads the image, and its options (``color_type``,
    ``imdecode_backend``, ``backend_args``) decide how the cache decodes.

    Args:
        pipeline (Compose): The dataset's pipeline.
        owner (str): The dataset, for messages.

    Returns:
        LoadFERImage: The loading transform.
    """
    transforms = getattr(pipeline, 'transforms', [])
    if not transforms or not isinstance(transforms[0], LoadFERImage):
        first = type(transforms[0]).__name__ if transforms else 'nothing'
        raise ValueError(
            f'{owner}: cache_images=True needs LoadFERImage as the first '
            f'transform of the pipeline (found {first}), because only it '
            "takes the cached image instead of reading the file. Use "
            "dict(type='LoadFERImage', ...) or set cache_images=False.")
    return transforms[0]


def decode_images(paths: Sequence[str], decode: Callable[[str], np.ndarray],
                  max_gb: float, owner: str) -> np.ndarray:
    """Decode every image into one contiguous read-only uint8 array.

    Every image must have the shape of the first one: one ``(N, H, W[, C])``
    array keeps its pixels in a single buffer, which data-loading workers
    forked after it was built read without copying (reference counting
    writes only to the array's header, never to that buffer).

    Args:
        paths (Sequence[str]): The image files, in sample order.
        decode (Callable[[str], np.ndarray]): Decodes one file to uint8;
            raises naming the file when it cannot.
        max_gb (float): Refuse a cache larger than this many GiB.
        owner (str): The dataset, for messages.

    Returns:
        np.ndarray: ``(N, *shape)`` uint8, not writeable.
    """
    logger = MMLogger.get_current_instance()
    start = time.perf_counter()
    first = decode(paths[0])
    if first.dtype != np.uint8:
        raise ValueError(
            f'{owner}: {paths[0]} decodes to {first.dtype}, but the image '
            'cache holds uint8 only. Set cache_images=False (e.g. for '
            "16-bit PNGs read with color_type='unchanged').")
    size = len(paths) * first.nbytes
    if size > max_gb * 2**30:
        raise MemoryError(
            f'{owner}: caching {len(paths)} images of shape {first.shape} '
            f'would take {size / 2**30:.2f} GiB, above cache_max_gb='
            f'{max_gb}. Raise cache_max_gb in the dataset config if the '
            'machine has the memory (every DDP rank holds its own cache), or '
            'set cache_images=False.')
    logger.info(f'{owner}: decoding {len(paths)} images into a '
                f'{size / 2**20:.1f} MiB cache')
    images = np.empty((len(paths), ) + first.shape, dtype=np.uint8)
    images[0] = first
    for i in range(1, len(paths)):
        img = decode(paths[i])
        if img.shape != first.shape or img.dtype != np.uint8:
            raise ValueError(
                f'{owner}: {paths[i]} decodes to {img.dtype} {img.shape} but '
                f'{paths[0]} to uint8 {first.shape}; the image cache needs '
                'images of one size. Resize the images offline to one size '
                'or set cache_images=False.')
        images[i] = img
        if (i + 1) % _LOG_EVERY == 0:
            logger.info(f'{owner}: decoded {i + 1}/{len(paths)} images')
    # shared by every sample and every forked worker: nobody may write in it
    images.flags.writeable = False
    logger.info(f'{owner}: cached {len(paths)} images ({images.shape[1:]} '
                f'uint8, {size / 2**20:.1f} MiB) in '
                f'{time.perf_counter() - start:.1f} s')
    return images
