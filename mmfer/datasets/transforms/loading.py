# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadFERImage(LoadImageFromFile):
    """Load an image, failing with an actionable error on a corrupt file.

    mmcv's :class:`LoadImageFromFile` ends with a bare ``assert`` when a file
    cannot be decoded (``imfrombytes`` returns None for a truncated JPEG or a
    non-image); this raises an ``OSError`` naming the file and the fix.
    Arguments are those of :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and ``ori_shape``.
        """
        path = results['img_path']
        try:
            loaded = super().transform(results)
        except AssertionError:
            loaded = None
            if self.ignore_empty:
                return None
        except FileNotFoundError:
            raise FileNotFoundError(
                f'image {path} is missing; re-extract the dataset or remove '
                'its line from the annotation file.')
        if loaded is None and not self.ignore_empty:
            raise OSError(
                f'image {path} cannot be decoded (corrupt or not an image). '
                'Re-extract or re-download it, or remove its line from the '
                'annotation file.')
        return loaded
