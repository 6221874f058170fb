# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadFERImage(LoadImageFromFile):
    """Load an image from a file or from memory, optionally crop the face.

    - **From a file** (``results['img_path']``): as
      :class:`mmcv.transforms.LoadImageFromFile`, but a file that cannot be
      decoded raises an ``OSError`` naming the file and the fix instead of
      mmcv's bare ``assert`` (``imfrombytes`` returns None for a truncated
      JPEG or a non-image) or OpenCV's ``!buf.empty()`` error (an empty,
      0-byte file).
    - **From memory** (``results['img']`` already set, e.g. FERPlus faces
      decoded from ``fer2013.csv``, or a dataset's ``cache_images``, which
      decodes every file once with :meth:`decode`): the array is used as
      is, converted to the requested ``color_type``: a greyscale ``(H, W)``
      image becomes 3-channel BGR for ``'color'`` (the default), as a
      greyscale PNG read from disk would. The input array is never
      modified (it may be shared by every sample of a dataset).
    - **Face crop** (``results['crop_bbox']`` = ``(x1, y1, x2, y2)`` in the
      pixels of the decoded image, e.g. AffectNet's face box plus a margin):
      the image is cropped to the box clipped to the image,
      ``results['crop_bbox']`` becomes the clipped box and ``landmarks``
      (``(K, 2)`` ``x y``) are shifted into the crop, so they stay in the
      pixel frame of the returned image. ``ori_shape`` and ``img_shape``
      are the shape of the returned (cropped) image.
    - **Landmarks frame**: when the sample has ``landmarks``,
      ``results['landmarks_frame']`` is set to the ``(h, w)`` of the
      returned image. The ``*WithLandmarks`` transforms update it and
      ``LandmarkTargets`` checks it against the image, which catches a
      transform that resized or cropped the image without moving the
      landmarks.

    Arguments are those of :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results``.

        Args:
            results (dict): Result dict with ``img_path`` or ``img``, and
                optionally ``crop_bbox`` and ``landmarks``.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and ``ori_shape``,
            and ``landmarks_frame`` when it has ``landmarks``.
        """
        if results.get('img') is not None:
            loaded = self._from_memory(results)
        else:
            loaded = self._from_file(results)
            if loaded is None:
                return None
        if loaded.get('crop_bbox') is not None:
            loaded = self._crop(loaded)
        if loaded.get('landmarks') is not None:
            loaded['landmarks_frame'] = loaded['img'].shape[:2]
        return loaded

    def decode(self, path: str) -> np.ndarray:
        """Decode a file as :meth:`transform` does, before any face crop.

        The pixels are those :meth:`transform` reads from the file, as
        uint8 (``to_float32`` is applied when the image is loaded from
        memory), so a dataset can cache them and load them from memory
        later with the same result.

        Args:
            path (str): The image file.

        Returns:
            np.ndarray: The decoded image.
        """
        # every image of a cache must decode: ignore_empty cannot skip one
        loader = copy.copy(self)
        loader.to_float32, loader.ignore_empty = False, False
        return loader._from_file(dict(img_path=path))['img']

    def _from_file(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            loaded = super().transform(results)
        except (AssertionError, cv2.error):
            # imfrombytes returns None for a non-image (mmcv then asserts);
            # OpenCV refuses an empty buffer (a 0-byte file) outright.
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

    def _from_memory(self, results: dict) -> dict:
        img = np.asarray(results['img'])
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if self.color_type == 'color' and img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif self.color_type == 'grayscale' and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif not self.to_float32:
            # 'unchanged' or already in the requested format: copy, because
            # later transforms may write into the array
            img = img.copy()
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    @staticmethod
    def _crop(results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        x1, y1, x2, y2 = (int(round(float(v))) for v in results['crop_bbox'])
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(x2, width), min(y2, height)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(
                f'face box {tuple(results["crop_bbox"])} of '
                f'{results.get("img_path")} lies outside its {width}x'
                f'{height} image; fix the box in the annotation file or '
                'disable crop_face.')
        img = img[y1:y2, x1:x2]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['crop_bbox'] = np.array([x1, y1, x2, y2], dtype=np.int64)
        if results.get('landmarks') is not None:
            results['landmarks'] = np.asarray(
                results['landmarks'], dtype=np.float32) - np.array(
                    [x1, y1], dtype=np.float32)
        return results
