# Copyright (c) OpenMMLab. All rights reserved.
"""Geometric transforms that move the image and its landmarks together.

``results['landmarks']`` is a float32 ``(K, 2)`` array of ``(x, y)`` pixels
in the frame of the current image, corner convention: the image spans
``[0, W] x [0, H]`` and pixel ``(r, c)`` covers ``[c, c + 1] x [r, r + 1]``.
It may be absent or None (a sample without landmarks passes through).

Every transform here checks that ``results['landmarks_frame']`` (the
``(h, w)`` of the image the landmarks were last moved with, set by
``LoadFERImage`` and by these transforms) still equals the image shape, so
a transform that changed the image size without moving the landmarks (e.g.
mmpretrain's ``Resize`` or ``RandomResizedCrop``) is caught instead of
silently producing wrong targets. A plain mmpretrain ``RandomFlip`` keeps
the size and cannot be caught: use :class:`RandomFlipWithLandmarks`.

Random parameters come from the global NumPy RNG (which mmfer seeds per
sample) through :func:`mmcv.transforms.utils.cache_randomness`, as in
mmpretrain's transforms.
"""
import math
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes, pillow_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS

from mmfer.datasets.landmark_schemes import get_landmark_scheme

PadVal = Union[Number, Sequence[Number]]


def check_landmarks_frame(results: dict, consumer: str) -> None:
    """Check that the landmarks are in the frame of the current image.

    Args:
        results (dict): Result dict with ``img`` and optionally
            ``landmarks`` and ``landmarks_frame``.
        consumer (str): Name of the transform that checks, for the message.
    """
    frame = results.get('landmarks_frame')
    if results.get('landmarks') is None or frame is None:
        return
    frame_h, frame_w = (int(v) for v in frame)
    img_h, img_w = results['img'].shape[:2]
    if (frame_h, frame_w) != (img_h, img_w):
        raise ValueError(
            f'{consumer}: results["landmarks"] are in a {frame_w}x{frame_h} '
            f'(w x h) image frame but the image is now {img_w}x{img_h}: a '
            'transform that does not move landmarks (e.g. mmpretrain\'s '
            'Resize, RandomResizedCrop, RandomCrop or Rotate) ran after '
            'loading. Replace it with the matching *WithLandmarks transform '
            '(ResizeWithLandmarks, RandomResizedCropWithLandmarks, '
            'RandomCropWithLandmarks, RandomRotateWithLandmarks, '
            'RandomFlipWithLandmarks).')


def _input_landmarks(results: dict,
                     transform: BaseTransform) -> Optional[np.ndarray]:
    """A float32 copy of the landmarks after checking their frame."""
    check_landmarks_frame(results, type(transform).__name__)
    if results.get('landmarks') is None:
        return None
    points = np.array(results['landmarks'], dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f'{type(transform).__name__}: results["landmarks"] must have '
            f'shape (K, 2) (x, y per point), got {points.shape}.')
    return points


def _set_outputs(results: dict, img: np.ndarray,
                 points: Optional[np.ndarray]) -> dict:
    results['img'] = img
    results['img_shape'] = img.shape[:2]
    if points is not None:
        results['landmarks'] = points.astype(np.float32)
        results['landmarks_frame'] = img.shape[:2]
    return results


def _pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(value, Number):
        value = (value, value)
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f'{name}={value} must be a positive int or a pair '
                         'of positive ints.')
    return int(value[0]), int(value[1])


def _check_interpolation(interpolation: str, backend: str) -> None:
    codes = {'cv2': cv2_interp_codes, 'pillow': pillow_interp_codes}
    if backend not in codes:
        raise ValueError(f"backend={backend!r} must be 'cv2' or 'pillow'.")
    if interpolation not in codes[backend]:
        raise ValueError(
            f'interpolation={interpolation!r} is not supported by the '
            f'{backend} backend; choose one of {sorted(codes[backend])}.')


def _resize(img: np.ndarray, points: Optional[np.ndarray],
            size_wh: Tuple[int, int], interpolation: str,
            backend: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Resize the image to ``size_wh`` and scale the points with it."""
    height, width = img.shape[:2]
    resized = mmcv.imresize(
        img, size_wh, interpolation=interpolation, backend=backend)
    if points is not None:
        points = points * np.array([size_wh[0] / width, size_wh[1] / height],
                                   dtype=np.float32)
    return resized, points


@TRANSFORMS.register_module()
class ResizeWithLandmarks(BaseTransform):
    """Resize the image to a fixed size and scale the landmarks with it.

    The landmarks are scaled by ``(w / W, h / H)``. The official LA-Net code
    resizes with PIL's default, bicubic: ``interpolation='bicubic',
    backend='pillow'`` reproduces it (uint8 images only with pillow).

    **Required Keys:** ``img``; optional ``landmarks``.
    **Modified Keys:** ``img``, ``img_shape``, ``landmarks``.
    **Added Keys:** ``landmarks_frame`` (with landmarks).

    Args:
        scale (int | tuple[int, int]): Output size ``(w, h)``, as mmcv's
            ``Resize``; an int gives a square.
        interpolation (str): Interpolation of the backend, e.g.
            ``'bilinear'`` or ``'bicubic'``. Defaults to ``'bilinear'``.
        backend (str): ``'cv2'`` or ``'pillow'``. Defaults to ``'cv2'``.
    """

    def __init__(self,
                 scale: Union[int, Tuple[int, int]],
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        _check_interpolation(interpolation, backend)
        self.scale = _pair(scale, 'scale')
        self.interpolation = interpolation
        self.backend = backend

    def transform(self, results: dict) -> dict:
        """Resize ``img`` and scale ``landmarks``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        points = _input_landmarks(results, self)
        img, points = _resize(results['img'], points, self.scale,
                              self.interpolation, self.backend)
        return _set_outputs(results, img, points)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')


@TRANSFORMS.register_module()
class RandomFlipWithLandmarks(BaseTransform):
    """Mirror the image horizontally with a probability, and its landmarks.

    A mirrored point moves to ``x <- W - x``. With ``permute_landmarks``
    (the default) the points are then re-ordered with the layout's flip
    permutation, so index ``i`` keeps naming the same anatomical point (the
    subject's left eye stays at the left-eye index although it now lies on
    the image's other side). The official LA-Net code does NOT re-order:
    its heatmap channel of the image-left brow then holds the image-left
    brow of the mirrored face, i.e. the other brow; ``permute_landmarks=
    False`` reproduces that.

    **Required Keys:** ``img``; optional ``landmarks``.
    **Modified Keys:** ``img``, ``img_shape``, ``landmarks``.
    **Added Keys:** ``flip``, ``flip_direction``, ``landmarks_frame`` (with
    landmarks).

    Args:
        prob (float): Probability of flipping. Defaults to 0.5.
        permute_landmarks (bool): Re-order the points after mirroring.
            Defaults to True.
        landmark_scheme (str, optional): Name of the layout in
            :mod:`mmfer.datasets.landmark_schemes` whose flip permutation is
            used. Defaults to None: inferred from the number of points.
    """

    def __init__(self,
                 prob: float = 0.5,
                 permute_landmarks: bool = True,
                 landmark_scheme: Optional[str] = None) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob={prob} must be in [0, 1].')
        self.prob = prob
        self.permute_landmarks = permute_landmarks
        self.landmark_scheme = landmark_scheme
        if landmark_scheme is not None:
            # fail at build time on an unknown name
            get_landmark_scheme(landmark_scheme)

    @cache_randomness
    def _flip(self) -> bool:
        return np.random.rand() < self.prob

    def _flip_indices(self, num_points: int) -> np.ndarray:
        scheme = get_landmark_scheme(self.landmark_scheme or num_points)
        if scheme.num_points != num_points:
            raise ValueError(
                f'{type(self).__name__}: landmark_scheme={scheme.name!r} has '
                f'{scheme.num_points} points but the sample has {num_points}'
                '; name the scheme that matches the dataset\'s landmarks.')
        return scheme.flip_indices

    def transform(self, results: dict) -> dict:
        """Mirror ``img`` and ``landmarks`` with probability ``prob``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        points = _input_landmarks(results, self)
        flip = self._flip()
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return _set_outputs(results, results['img'], points)
        img = results['img']
        # a copy: cv2.flip in place would alter a shared or read-only array
        mirrored = np.ascontiguousarray(img[:, ::-1])
        if points is not None:
            points[:, 0] = img.shape[1] - points[:, 0]
            if self.permute_landmarks:
                points = points[self._flip_indices(len(points))]
        return _set_outputs(results, mirrored, points)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'permute_landmarks={self.permute_landmarks}, '
                f'landmark_scheme={self.landmark_scheme!r})')


@TRANSFORMS.register_module()
class RandomResizedCropWithLandmarks(BaseTransform):
    """torchvision's RandomResizedCrop, moving the landmarks with the crop.

    Up to ``max_attempts`` times, draw an area fraction uniformly in
    ``scale`` and a log-uniform aspect ratio in ``ratio``; the box is
    ``round(sqrt(area * ratio))`` wide and ``round(sqrt(area / ratio))``
    high, kept if it fits, at a uniform position. Otherwise the centre box
    of the whole image clamped to ``ratio`` is used. The crop is resized to
    ``size``; the landmarks are shifted by the box origin and scaled by
    ``size / box``. The official LA-Net code truncates the moved landmarks
    to int: ``truncate_landmarks=True`` reproduces it.

    **Required Keys:** ``img``; optional ``landmarks``.
    **Modified Keys:** ``img``, ``img_shape``, ``landmarks``.
    **Added Keys:** ``landmarks_frame`` (with landmarks).

    Args:
        size (int | tuple[int, int]): Output size ``(h, w)``, as mmpretrain's
            ``RandomResizedCrop``; an int gives a square.
        scale (tuple[float, float]): Range of the box area as a fraction of
            the image area. Defaults to ``(0.08, 1.0)``.
        ratio (tuple[float, float]): Range of the box aspect ratio w / h.
            Defaults to ``(3 / 4, 4 / 3)``.
        max_attempts (int): Draws before the centre fallback. Defaults to 10.
        interpolation (str): Interpolation of the resize. Defaults to
            ``'bilinear'``.
        backend (str): ``'cv2'`` or ``'pillow'``. Defaults to ``'cv2'``.
        truncate_landmarks (bool): Truncate the moved landmarks towards zero,
            as the official LA-Net code does. Defaults to False.
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]],
                 scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2',
                 truncate_landmarks: bool = False) -> None:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f'scale={scale} must satisfy 0 < min <= max.')
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio={ratio} must satisfy 0 < min <= max.')
        if max_attempts < 0:
            raise ValueError(f'max_attempts={max_attempts} must be >= 0.')
        _check_interpolation(interpolation, backend)
        self.size = _pair(size, 'size')
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.max_attempts = max_attempts
        self.interpolation = interpolation
        self.backend = backend
        self.truncate_landmarks = truncate_landmarks

    @cache_randomness
    def _crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw ``(top, left, h, w)``."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target_area = area * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = np.random.randint(0, height - h + 1)
                left = np.random.randint(0, width - w + 1)
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        """Crop a random box of ``img``, resize it, move ``landmarks``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        points = _input_landmarks(results, self)
        img = results['img']
        top, left, h, w = self._crop_box(*img.shape[:2])
        img = img[top:top + h, left:left + w]
        if points is not None:
            points = points - np.array([left, top], dtype=np.float32)
        out_h, out_w = self.size
        img, points = _resize(img, points, (out_w, out_h), self.interpolation,
                              self.backend)
        if points is not None and self.truncate_landmarks:
            points = np.trunc(points)
        return _set_outputs(results, img, points)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'max_attempts={self.max_attempts}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r}, '
                f'truncate_landmarks={self.truncate_landmarks})')


@TRANSFORMS.register_module()
class RandomCropWithLandmarks(BaseTransform):
    """Pad with a constant, crop at a uniform position, move the landmarks.

    torchvision's ``RandomCrop(size, padding)`` with zero padding, as GSMC
    and ReSup use it: the landmarks are shifted by ``(pad_left - left,
    pad_top - top)``.

    **Required Keys:** ``img``; optional ``landmarks``.
    **Modified Keys:** ``img``, ``img_shape``, ``landmarks``.
    **Added Keys:** ``landmarks_frame`` (with landmarks).

    Args:
        crop_size (int | tuple[int, int]): Output size ``(h, w)``, as
            mmpretrain's ``RandomCrop``; an int gives a square.
        padding (int | Sequence[int], optional): Border added first: an int
            for every side, ``(left/right, top/bottom)`` or ``(left, top,
            right, bottom)``. Defaults to None (no padding).
        pad_val (Number | Sequence[Number]): Fill value of the border.
            Defaults to 0.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 padding: Optional[Union[int, Sequence[int]]] = None,
                 pad_val: PadVal = 0) -> None:
        self.crop_size = _pair(crop_size, 'crop_size')
        self.padding = self._expand_padding(padding)
        self.pad_val = pad_val

    @staticmethod
    def _expand_padding(
        padding: Optional[Union[int,
                                Sequence[int]]]) -> Tuple[int, int, int, int]:
        if padding is None:
            return (0, 0, 0, 0)
        if isinstance(padding, Number):
            padding = (padding, ) * 4
        elif len(padding) == 2:
            padding = (padding[0], padding[1], padding[0], padding[1])
        if len(padding) != 4 or min(padding) < 0:
            raise ValueError(
                f'padding={padding} must be a non-negative int, (left/right, '
                'top/bottom) or (left, top, right, bottom).')
        return tuple(int(p) for p in padding)

    @cache_randomness
    def _offset(self, height: int, width: int) -> Tuple[int, int]:
        return (np.random.randint(0, height - self.crop_size[0] + 1),
                np.random.randint(0, width - self.crop_size[1] + 1))

    def transform(self, results: dict) -> dict:
        """Pad ``img``, crop it at random, move ``landmarks``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        points = _input_landmarks(results, self)
        img = results['img']
        if any(self.padding):
            img = mmcv.impad(img, padding=self.padding, pad_val=self.pad_val)
        height, width = img.shape[:2]
        crop_h, crop_w = self.crop_size
        if crop_h > height or crop_w > width:
            raise ValueError(
                f'{type(self).__name__}: crop {crop_w}x{crop_h} (w x h) is '
                f'larger than the padded image {width}x{height}; resize '
                'first or increase padding.')
        top, left = self._offset(height, width)
        img = img[top:top + crop_h, left:left + crop_w]
        if points is not None:
            points = points + np.array(
                [self.padding[0] - left, self.padding[1] - top],
                dtype=np.float32)
        return _set_outputs(results, img, points)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'padding={self.padding}, pad_val={self.pad_val})')


@TRANSFORMS.register_module()
class RandomRotateWithLandmarks(BaseTransform):
    """Rotate about the image centre by a uniform angle, with the landmarks.

    With probability ``prob`` the angle is drawn uniformly in
    ``[-max_angle, max_angle]`` degrees; as for mmcv's ``imrotate`` (and
    mmpretrain's ``Rotate``) a positive angle turns the image clockwise on
    screen. The output keeps the input size; uncovered pixels get
    ``pad_val`` and landmarks may leave the frame (the heatmap target then
    is empty). torchvision's ``RandomRotation(max_angle)`` draws the same
    distribution (its sign convention is the opposite, which a symmetric
    range does not see).

    **Required Keys:** ``img``; optional ``landmarks``.
    **Modified Keys:** ``img``, ``img_shape``, ``landmarks``.
    **Added Keys:** ``landmarks_frame`` (with landmarks).

    Args:
        max_angle (float): Largest absolute angle in degrees.
        prob (float): Probability of rotating. Defaults to 1.0.
        pad_val (Number | Sequence[Number]): Fill value. Defaults to 0.
        interpolation (str): cv2 interpolation. Defaults to ``'nearest'``.
    """

    def __init__(self,
                 max_angle: float,
                 prob: float = 1.0,
                 pad_val: PadVal = 0,
                 interpolation: str = 'nearest') -> None:
        if max_angle < 0:
            raise ValueError(f'max_angle={max_angle} must be >= 0.')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob={prob} must be in [0, 1].')
        _check_interpolation(interpolation, 'cv2')
        self.max_angle = float(max_angle)
        self.prob = prob
        self.pad_val = tuple(pad_val) if isinstance(pad_val,
                                                    Sequence) else pad_val
        self.interpolation = interpolation

    @cache_randomness
    def _angle(self) -> Optional[float]:
        if np.random.rand() >= self.prob:
            return None
        return float(np.random.uniform(-self.max_angle, self.max_angle))

    def transform(self, results: dict) -> dict:
        """Rotate ``img`` and ``landmarks`` with probability ``prob``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        points = _input_landmarks(results, self)
        angle = self._angle()
        if angle is None:
            return _set_outputs(results, results['img'], points)
        img = results['img']
        rotated = mmcv.imrotate(
            img,
            angle,
            border_value=self.pad_val,
            interpolation=self.interpolation).astype(img.dtype)
        if points is not None:
            # imrotate turns about ((w - 1) / 2, (h - 1) / 2) in pixel-centre
            # coordinates, which is (w / 2, h / 2) in the corner convention
            height, width = img.shape[:2]
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -angle,
                                             1.0)
            points = points @ matrix[:, :2].T + matrix[:, 2]
        return _set_outputs(results, rotated, points)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_angle={self.max_angle}, '
                f'prob={self.prob}, pad_val={self.pad_val}, '
                f'interpolation={self.interpolation!r})')
