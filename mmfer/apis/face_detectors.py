# Copyright (c) OpenMMLab. All rights reserved.
"""Face detectors for :class:`mmfer.apis.FERInferencer`, swappable by name.

A face detector is any callable that takes one ``(H, W, 3)`` uint8 BGR image
(as :func:`mmcv.imread` and ``cv2.VideoCapture`` give) and returns
:class:`FaceDetections`. Build one by name, config dict or instance with
:func:`build_face_detector`; register a new class with
``@FACE_DETECTORS.register_module()``.

:class:`FERInferencer`'s default, ``'auto'``, is ``'mtcnn'`` where its
weights are installed and otherwise ``'lbp_cascade'``, the LBP frontal-face
cascade that scikit-image ships inside its wheel (OpenCV's
``lbpcascade_frontalface`` model, run by ``skimage.feature.Cascade``), so
nothing is downloaded at run time. The alternatives were weighed so:

- opencv-python 5 (which mmfer uses) has no ``CascadeClassifier`` and ships
  no cascade files; its ``FaceDetectorYN`` needs a YuNet model downloaded
  separately. opencv-python 4.x ships Haar cascades but cannot be installed
  beside opencv-python 5.
- facenet-pytorch ships MTCNN weights in its wheel but pins torch < 2.3 and
  numpy < 2, which mmfer's stack does not meet; its code is not needed,
  though: ``'mtcnn'`` (:mod:`mmfer.apis.mtcnn_detector`) is mmfer's own
  MTCNN reading only those weight files, installed with
  ``pip install --no-deps facenet-pytorch``.

The cascade is a classic frontal detector: fast on a CPU, good on upright,
roughly frontal faces of at least ~24 px, weak on profiles, strong rotation
and occlusion. It gives no landmarks; its ``score`` is the number of
overlapping raw windows that support a box, a count, not a probability.
On SynthFER's drawn cartoon faces it finds only about 70 % of the faces
(the cartoons' proportions and in-plane rotations of up to 18
degrees are outside what it was trained on), so montages of aligned crops
(SynthFER composites, RAF-DB aligned images on a canvas) have their own
``'montage_tiles'`` detector, which finds the pasted tiles, not faces.
``'mtcnn'`` finds about 92 % of them, with five landmarks; use it where
these limits matter.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np

from mmfer.registry import FACE_DETECTORS

DetectorType = Union[str, dict, Callable[[np.ndarray], 'FaceDetections']]


@dataclass
class FaceDetections:
    """The faces found in one image.

    Args:
        bboxes (np.ndarray): ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in
            the pixels of the image.
        scores (np.ndarray): ``(N,)`` float32 detector scores (their scale is
            the detector's own; higher is more confident).
        landmarks (np.ndarray, optional): ``(N, 5, 2)`` float32 points
            ``x, y`` in RAF-DB's manual order: left eye, right eye, nose
            tip, left and right mouth corner (image left/right). Detectors
            without landmarks leave it None.
    """
    bboxes: np.ndarray
    scores: np.ndarray
    landmarks: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.bboxes = np.asarray(self.bboxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(self.scores) != len(self.bboxes):
            raise ValueError(f'{len(self.bboxes)} boxes but '
                             f'{len(self.scores)} scores; give one score '
                             'per box.')
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, np.float32)
            if self.landmarks.shape != (len(self.bboxes), 5, 2):
                raise ValueError(
                    f'landmarks have shape {self.landmarks.shape}, expected '
                    f'({len(self.bboxes)}, 5, 2): five points per box.')

    def __len__(self) -> int:
        return len(self.bboxes)


def group_windows(windows: np.ndarray,
                  min_neighbors: int,
                  eps: float = 0.2) -> Tuple[np.ndarray, np.ndarray]:
    """Merge overlapping raw detection windows into boxes with a support.

    Two windows belong together when each of their four sides differs by
    at most ``eps`` times their mean size (the rule of OpenCV's
    ``groupRectangles``); a group's box is its members' mean and its score
    the number of members. A group inside a stronger group (a face part
    the cascade also fired on) is dropped.

    Args:
        windows (np.ndarray): ``(M, 4)`` boxes ``x1, y1, x2, y2``.
        min_neighbors (int): Smallest group kept.
        eps (float): Side tolerance, relative to the window size.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(K, 4)`` boxes and ``(K,)`` member
        counts, strongest first.
    """
    windows = np.asarray(windows, np.float32).reshape(-1, 4)
    if not len(windows):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    size = (windows[:, 2] - windows[:, 0] + windows[:, 3] - windows[:, 1]) / 2
    tol = eps * (np.minimum(size[:, None], size[None]) + np.maximum(
        size[:, None], size[None])) / 2
    close = (np.abs(windows[:, None] - windows[None]).max(-1) <= tol)
    labels = _connected_components(close)
    groups = [windows[labels == k] for k in range(labels.max() + 1)]
    boxes = np.stack([g.mean(0) for g in groups])
    counts = np.array([len(g) for g in groups], np.float32)
    order = np.argsort(-counts, kind='stable')
    boxes, counts = boxes[order], counts[order]
    keep = [
        i for i in range(len(boxes)) if counts[i] >= min_neighbors and
        not any(_inside(boxes[i], boxes[j]) for j in range(i))
    ]
    return boxes[keep], counts[keep]


def _connected_components(adjacency: np.ndarray) -> np.ndarray:
    labels = np.full(len(adjacency), -1)
    for seed in range(len(adjacency)):
        if labels[seed] >= 0:
            continue
        members = np.zeros(len(adjacency), bool)
        members[seed] = True
        while True:
            grown = adjacency[members].any(0) | members
            if (grown == members).all():
                break
            members = grown
        labels[members] = labels.max() + 1
    return labels


def _inside(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether ``inner`` lies (mostly) within ``outer``."""
    x1, y1 = np.maximum(inner[:2], outer[:2])
    x2, y2 = np.minimum(inner[2:], outer[2:])
    overlap = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return overlap > 0.5 * area


@FACE_DETECTORS.register_module(name='lbp_cascade')
class LBPCascadeFaceDetector:
    """Scikit-image's bundled LBP frontal-face cascade.

    Needs the optional ``scikit-image`` package, whose wheel holds the
    model file (``skimage.data.lbp_frontal_face_cascade_filename()``).

    The cascade's box is a square from about the brows to below the mouth;
    :attr:`eye_y` and :attr:`mouth_y` say where in it the eyes and the
    mouth of a real face lie (fractions of the box height, measured on
    scikit-image's astronaut photo: 0.34 and 0.81), which the inferencer
    uses to frame the crop like the training data. On SynthFER's cartoons
    the box sits differently (0.40 and 0.69 on average), another reason
    to use ``'montage_tiles'`` there.

    Args:
        min_size (int): Smallest face side searched, in pixels (the
            cascade's window is 24 px). The default, 40, skips faces too
            small to show an expression at the models' 64-112 px input,
            where most false alarms are. Defaults to 40.
        max_size (int, optional): Largest face side searched; the image's
            shorter side if None.
        scale_factor (float): Ratio of successive window sizes; smaller
            finds more but is slower. Defaults to 1.1.
        step_ratio (float): Window stride relative to the scale; 1 is an
            exhaustive search. Defaults to 1.0.
        min_neighbors (int): Raw windows a face needs to be reported; the
            main guard against false alarms. Real faces of 80 px and more
            gather 15-20; textures that fool the cascade, about 5-10.
            Defaults to 5.
    """

    eye_y = 0.35
    mouth_y = 0.80

    def __init__(self,
                 min_size: int = 40,
                 max_size: Optional[int] = None,
                 scale_factor: float = 1.1,
                 step_ratio: float = 1.0,
                 min_neighbors: int = 5) -> None:
        try:
            from skimage.data import lbp_frontal_face_cascade_filename
            from skimage.feature import Cascade
        except ImportError as err:
            raise ImportError(
                'the lbp_cascade face detector needs scikit-image (its wheel '
                'ships the cascade): pip install "scikit-image>=0.22", or '
                'pass another detector to FERInferencer(detector=...).'
            ) from err
        self.cascade = Cascade(lbp_frontal_face_cascade_filename())
        self.min_size = min_size
        self.max_size = max_size
        self.scale_factor = scale_factor
        self.step_ratio = step_ratio
        self.min_neighbors = min_neighbors

    def __call__(self, img: np.ndarray) -> FaceDetections:
        """Find the faces of one image.

        Args:
            img (np.ndarray): ``(H, W, 3)`` uint8 BGR image.

        Returns:
            FaceDetections: Boxes and support counts, no landmarks.
        """
        max_size = self.max_size or min(img.shape[:2])
        if max_size < self.min_size:
            return FaceDetections(np.zeros((0, 4)), np.zeros(0))
        # An intersection threshold above 1 merges nothing, so the cascade
        # returns its raw windows and the support of each face can be
        # counted here (scikit-image's own grouping drops the count).
        raw = self.cascade.detect_multi_scale(
            img=np.ascontiguousarray(img[..., ::-1]),
            scale_factor=self.scale_factor,
            step_ratio=self.step_ratio,
            min_size=(self.min_size, self.min_size),
            max_size=(max_size, max_size),
            min_neighbor_number=1,
            intersection_score_threshold=1.01)
        windows = np.array([[d['c'], d['r'], d['c'] + d['width'],
                             d['r'] + d['height']] for d in raw], np.float32)
        boxes, counts = group_windows(windows, self.min_neighbors)
        return FaceDetections(boxes, counts)


@FACE_DETECTORS.register_module(name='montage_tiles')
class MontageTileDetector:
    """Finds the tiles of a montage: images pasted on a plain background.

    Not a face detector: it is meant for montages of *already aligned*
    face crops, such as SynthFER or RAF-DB aligned images laid out on a
    canvas, where the cascade misses many drawn faces (it finds about 70 %
    of SynthFER faces, without false alarms). The background colour is the
    median of the image border; a tile is a connected region that differs
    from it, is roughly square and fills its bounding box. Its boxes are
    the crops themselves (:attr:`boxes_are_crops`), and its score is the
    share of the box inside the tile's outline. It reads no annotation.

    Args:
        min_size (int): Smallest tile side, in pixels. Defaults to 16.
        tolerance (int): Largest channel difference from the background
            colour that still counts as background. Defaults to 12.
        min_fill (float): Smallest share of the box that the tile's outline
            must enclose. Defaults to 0.8.
    """

    boxes_are_crops = True

    def __init__(self,
                 min_size: int = 16,
                 tolerance: int = 12,
                 min_fill: float = 0.8) -> None:
        self.min_size = min_size
        self.tolerance = tolerance
        self.min_fill = min_fill

    def __call__(self, img: np.ndarray) -> FaceDetections:
        """Find the tiles of one montage.

        Args:
            img (np.ndarray): ``(H, W, 3)`` uint8 BGR image.

        Returns:
            FaceDetections: One box per tile, no landmarks.
        """
        import cv2
        border = np.concatenate(
            [img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.int16)
        background = np.median(border, axis=0)
        mask = (np.abs(img.astype(np.int16) - background).max(-1) >
                self.tolerance).astype(np.uint8)
        # Opening removes compression ringing, which would otherwise bridge
        # neighbouring tiles of a video frame.
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5),
                                                              np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        boxes, scores = [], []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            # the outer contour's area counts tile pixels that happen to
            # match the background as tile
            fill = cv2.contourArea(contour) / float(w * h)
            if (min(w, h) >= self.min_size and max(w, h) <= 1.25 * min(w, h)
                    and fill >= self.min_fill):
                boxes.append([x, y, x + w, y + h])
                scores.append(fill)
        return FaceDetections(np.array(boxes).reshape(-1, 4), scores)


def face_detector_names() -> List[str]:
    """The names of the registered face detectors.

    Returns:
        list[str]: Sorted names, those of every module in the registry's
        ``locations`` (e.g. ``'mtcnn'``) included.
    """
    FACE_DETECTORS.import_from_location()
    return sorted(FACE_DETECTORS.module_dict)


def build_face_detector(detector: Union[DetectorType, Any]) -> Callable:
    """Build a face detector from a name, a config dict or a callable.

    Args:
        detector (str | dict | callable): A registered name (e.g.
            ``'lbp_cascade'``), a config dict ``dict(type=name, **args)``,
            or a callable mapping a BGR image to :class:`FaceDetections`,
            returned as is.

    Returns:
        callable: The detector.
    """
    if isinstance(detector, str):
        detector = dict(type=detector)
    if isinstance(detector, dict):
        # Not ``in FACE_DETECTORS``, which also finds the models of its
        # parent, mmpretrain's MODELS.
        names = face_detector_names()
        if detector.get('type') not in names:
            raise KeyError(
                f"face detector {detector.get('type')!r} is not registered; "
                f'choose one of {names} or pass '
                'a callable that returns FaceDetections.')
        args = dict(detector)
        # get() rather than build(): mmpretrain's default scope, set when
        # a model is built, would search mmpretrain's MODELS instead.
        return FACE_DETECTORS.get(args.pop('type'))(**args)
    if not callable(detector):
        raise TypeError('detector must be a registered name, a config dict '
                        f'or a callable, got {type(detector).__name__}.')
    return detector
