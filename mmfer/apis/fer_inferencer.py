# Copyright (c) OpenMMLab. All rights reserved.
"""In-the-wild expression recognition: detect faces, crop them as the
training data was cropped, classify all faces of an image in one batch."""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.logging import print_log
from mmpretrain.registry import DATASETS, TRANSFORMS

from ..utils.compat.allow_pickle import add_allow_pickle_argument
from .face_detectors import (DetectorType, FaceDetections,
                             LBPCascadeFaceDetector, build_face_detector,
                             face_detector_names)
from .model_loading import build_model, load_weights
from .mtcnn_detector import mtcnn_weights_dir

#: FERInferencer's default detector: mtcnn where installed, else the cascade.
AUTO_DETECTOR = 'auto'
ImageInput = Union[str, np.ndarray]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

#: Where the eye centres' midpoint and the mouth's centre lie in the
#: training crops, as fractions of the crop side (the crops are square and
#: the face is centred horizontally). ``rafdb``: means of RAF-DB's aligned
#: 100x100 images (from LA-Net's released landmarks of the train split);
#: ``synthfer``: means of SynthFER renders (its faces sit lower and smaller
#: in the frame, with hair and shoulders around them).
FRAMINGS: Dict[str, Tuple[float, float]] = {
    'rafdb': (0.348, 0.748),
    'synthfer': (0.487, 0.698),
}


def resolve_framing(framing: Union[str, Sequence[float]],
                    cfg: Config) -> Tuple[float, float]:
    """The ``(eye_y, mouth_y)`` framing of the training crops.

    Args:
        framing (str | Sequence[float]): ``'auto'`` (``'synthfer'`` when
            the test dataset's ``data_root`` names SynthFER, else
            ``'rafdb'``), a key of :data:`FRAMINGS`, or ``(eye_y, mouth_y)``.
        cfg (Config): The model's config.

    Returns:
        tuple[float, float]: Eye and mouth height, fractions of the side.
    """
    if framing == 'auto':
        root = str(cfg.get('test_dataloader', {}).get('dataset', {}).get(
            'data_root', ''))
        framing = 'synthfer' if 'synthfer' in root.lower() else 'rafdb'
    if isinstance(framing, str):
        if framing not in FRAMINGS:
            raise ValueError(f'framing={framing!r}: use "auto", one of '
                             f'{sorted(FRAMINGS)} or (eye_y, mouth_y).')
        return FRAMINGS[framing]
    eye_y, mouth_y = (float(v) for v in framing)
    if not 0 <= eye_y < mouth_y <= 1:
        raise ValueError(f'framing {framing}: need 0 <= eye_y < mouth_y <= 1 '
                         '(fractions of the crop side).')
    return eye_y, mouth_y


def crop_boxes(detections: FaceDetections,
               framing: Tuple[float, float],
               box_eye_mouth: Tuple[float, float],
               boxes_are_crops: bool = False) -> np.ndarray:
    """Square crop boxes that frame each face as the training crops did.

    The eye midpoint and the mouth centre are taken from the landmarks, or
    else estimated from the box (``box_eye_mouth``: their heights as
    fractions of the box height, on the box's vertical centre line). The
    crop's side is the eye-mouth distance over the framing's, so that the
    face has the training data's scale; it is placed so that the eye
    midpoint falls at the framing's eye height, centred horizontally on the
    eye-mouth centre line. The crop stays axis-aligned: in-plane rotation
    is kept, as in SynthFER's crops.

    Args:
        detections (FaceDetections): The faces of one image.
        framing (tuple[float, float]): ``(eye_y, mouth_y)`` of the crops.
        box_eye_mouth (tuple[float, float]): ``(eye_y, mouth_y)`` of the
            detector's boxes.
        boxes_are_crops (bool): The detector's boxes are aligned crops
            already (e.g. tiles of a montage): keep them.

    Returns:
        np.ndarray: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2``.
    """
    boxes = detections.bboxes
    if boxes_are_crops or not len(boxes):
        return boxes.copy()
    if detections.landmarks is not None:
        eyes = detections.landmarks[:, :2].mean(1)
        mouth = detections.landmarks[:, 3:].mean(1)
    else:
        height = boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        eyes = np.stack([cx, boxes[:, 1] + box_eye_mouth[0] * height], 1)
        mouth = np.stack([cx, boxes[:, 1] + box_eye_mouth[1] * height], 1)
    eye_y, mouth_y = framing
    side = np.linalg.norm(mouth - eyes, axis=1) / (mouth_y - eye_y)
    x1 = (eyes[:, 0] + mouth[:, 0]) / 2 - side / 2
    y1 = eyes[:, 1] - eye_y * side
    return np.stack([x1, y1, x1 + side, y1 + side], 1).astype(np.float32)


def crop_square(img: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Cut ``box`` out of ``img``, replicating the border where it leaves.

    Args:
        img (np.ndarray): ``(H, W, 3)`` image.
        box (Sequence[float]): ``x1, y1, x2, y2``.

    Returns:
        np.ndarray: The crop (at least 1x1 pixels).
    """
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    width, height = max(x2 - x1, 1), max(y2 - y1, 1)
    h, w = img.shape[:2]
    top, left = max(-y1, 0), max(-x1, 0)
    pads = (top, max(y1 + height - h, 0), left, max(x1 + width - w, 0))
    if any(pads):
        img = cv2.copyMakeBorder(img, *pads, cv2.BORDER_REPLICATE)
    y1, x1 = y1 + top, x1 + left
    return img[y1:y1 + height, x1:x1 + width]


def read_image(img: ImageInput) -> np.ndarray:
    """Read an image file (or take an array) as a BGR uint8 array.

    Args:
        img (str | np.ndarray): A path, or an ``(H, W, 3)`` BGR array.

    Returns:
        np.ndarray: The BGR image.
    """
    if isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'image array has shape {img.shape}; expected '
                             '(H, W, 3) BGR.')
        return img
    if not osp.isfile(img):
        raise FileNotFoundError(f'image {img} not found.')
    try:
        array = mmcv.imread(img)
    except cv2.error:  # OpenCV refuses an empty (0-byte) file
        array = None
    if array is None:
        raise OSError(f'image {img} cannot be decoded (corrupt or not an '
                      'image); convert it to JPEG or PNG.')
    return array


class FERInferencer:
    """Facial expressions of every face in photos or video frames.

    Each image goes through: face detection (a swappable detector, see
    :mod:`mmfer.apis.face_detectors`) -> a square crop per face framed as
    the training crops were (``framing``) -> the config's test pipeline ->
    one forward pass of the model's predictor over all faces of the image
    (``model.test_step``, so FERClassifier, MeanTeacherClassifier (its
    student), CoTeachingClassifier (its ``predict_with``) and
    LANetClassifier (its expression tower) each predict as in testing).
    Like mmpretrain's ``ImageClassificationInferencer`` it is called on
    images and returns plain dicts, but it is no ``BaseInferencer``: one
    image gives a batch of any number of faces, not one sample.

    Args:
        model (str | Config): The config (path) the checkpoint was trained
            with.
        weights (str): The checkpoint (``.pth``).
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; the
            GPU if there is one when None.
        detector (str | dict | callable, optional): A registered detector
            name, its config dict, a callable image -> FaceDetections, or
            ``'auto'``: ``'mtcnn'`` where its weights are installed (it finds
            exactly the faces of photos where the cascade also fires on
            helmets and cats), else ``'lbp_cascade'``, with a logged note.
            None treats each whole image as one aligned face crop.
            Defaults to ``'auto'``.
        det_threshold (float, optional): Drop detections scored below it
            (on the detector's own scale: MTCNN's face probability, the
            cascade's count of supporting windows). Defaults to None (keep
            every detection).
        framing (str | Sequence[float]): How the training crops frame the
            face, see :func:`resolve_framing`. Defaults to ``'auto'``.
        classes (Sequence[str], optional): Class names; else the
            checkpoint's ``dataset_meta``, else the config's dataset's.
        max_batch (int): Most faces per forward pass. Defaults to 64.

    Example:
        >>> from mmfer.apis import FERInferencer
        >>> inferencer = FERInferencer(
        ...     'configs/baseline/r18_synthfer_noise30.py', 'epoch_16.pth')
        >>> result = inferencer('photo.jpg')[0]
        >>> [(f['pred_class'], f['bbox']) for f in result['faces']]
    """

    def __init__(self,
                 model: Union[str, Config],
                 weights: str,
                 device: Optional[str] = None,
                 detector: Optional[DetectorType] = AUTO_DETECTOR,
                 framing: Union[str, Sequence[float]] = 'auto',
                 classes: Optional[Sequence[str]] = None,
                 max_batch: int = 64,
                 det_threshold: Optional[float] = None) -> None:
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.config = (model if isinstance(model, Config) else
                       Config.fromfile(model))
        self.model = build_model(self.config, device)
        meta = load_weights(self.model, weights, self.config.filename)
        self.device = device
        self.pipeline = self._init_pipeline(self.config)
        self.detector = (None if detector is None else
                         build_face_detector(resolve_detector(detector)))
        self.det_threshold = det_threshold
        self.framing = resolve_framing(framing, self.config)
        self.max_batch = max_batch
        self.classes = list(classes or self._classes(self.config, meta))

    @staticmethod
    def _classes(cfg: Config, meta: dict) -> List[str]:
        classes = (meta.get('dataset_meta') or {}).get('classes')
        if classes:
            return list(classes)
        dataset = cfg.get('test_dataloader', {}).get('dataset', {})
        dataset_cls = DATASETS.get(dataset.get('type', ''))
        metainfo = getattr(dataset_cls, 'METAINFO', {}) or {}
        if metainfo.get('classes'):
            return list(metainfo['classes'])
        num = cfg.model.get('head', {}).get('num_classes', 0)
        return [f'class_{i}' for i in range(num)]

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The config's test pipeline; ``LoadFERImage`` takes the crop
        from memory."""
        return Compose([
            TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline
        ])

    def __call__(self,
                 inputs: Union[ImageInput, Sequence[ImageInput]],
                 show_dir: Optional[str] = None) -> List[dict]:
        """Find and classify the faces of each image.

        Args:
            inputs (str | np.ndarray | list): An image path, a folder of
                images or a BGR array, or a list of them.
            show_dir (str, optional): Write each annotated image there
                (``<stem>.png``; arrays are named by their index).

        Returns:
            list[dict]: Per image, as :meth:`predict_image` returns.
        """
        results = []
        for index, img in enumerate(_inputs_to_list(inputs)):
            array = read_image(img)
            result = self.predict_image(array)
            if isinstance(img, str):
                result['img_path'] = img
            if show_dir is not None:
                name = (osp.splitext(osp.basename(img))[0]
                        if isinstance(img, str) else str(index))
                mmcv.imwrite(
                    self.visualize(array, result),
                    osp.join(show_dir, f'{name}.png'))
            results.append(result)
        return results

    def predict_image(self, img: ImageInput) -> dict:
        """Find and classify the faces of one image.

        Args:
            img (str | np.ndarray): A path or a BGR array.

        Returns:
            dict: JSON-ready: ``img_path`` (None for an array),
            ``img_shape`` ``[h, w]`` and ``faces``, one dict per face,
            strongest detection first, with ``bbox`` (the detector's box
            ``[x1, y1, x2, y2]``), ``crop_bbox`` (the square that was
            classified), ``det_score``, ``landmarks`` (or None),
            ``pred_label``, ``pred_class``, ``pred_score`` and
            ``pred_scores`` (class name -> probability).
        """
        array = read_image(img)
        detections = self.detect(array)
        crops = crop_boxes(
            detections, self.framing,
            # A detector that says nothing of its boxes is taken to frame
            # faces as the bundled cascade does.
            (getattr(self.detector, 'eye_y', LBPCascadeFaceDetector.eye_y),
             getattr(self.detector, 'mouth_y',
                     LBPCascadeFaceDetector.mouth_y)),
            self.detector is None
            or getattr(self.detector, 'boxes_are_crops', False))
        scores = self.classify([crop_square(array, b) for b in crops])
        faces = [
            self._face_dict(detections, crops, scores, i)
            for i in range(len(detections))
        ]
        return dict(
            img_path=img if isinstance(img, str) else None,
            img_shape=list(array.shape[:2]),
            faces=faces)

    def detect(self, img: np.ndarray) -> FaceDetections:
        """Run the detector (or take the whole image as one face).

        Args:
            img (np.ndarray): BGR image.

        Returns:
            FaceDetections: The faces, strongest first.
        """
        if self.detector is None:
            h, w = img.shape[:2]
            return FaceDetections([[0, 0, w, h]], [1.0])
        detections = self.detector(img)
        if not isinstance(detections, FaceDetections):
            raise TypeError(
                f'the face detector returned {type(detections).__name__}; '
                'it must return mmfer.apis.FaceDetections.')
        order = np.argsort(-detections.scores, kind='stable')
        if self.det_threshold is not None:
            order = order[detections.scores[order] >= self.det_threshold]
        return FaceDetections(
            detections.bboxes[order], detections.scores[order],
            None if detections.landmarks is None else
            detections.landmarks[order])

    @torch.no_grad()
    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of face crops, batched.

        Args:
            crops (Sequence[np.ndarray]): BGR face crops of any size.

        Returns:
            np.ndarray: ``(N, num_classes)`` float32 probabilities.
        """
        if not crops:
            return np.zeros((0, len(self.classes)), np.float32)
        items = [self.pipeline(dict(img=crop)) for crop in crops]
        scores = []
        for start in range(0, len(items), self.max_batch):
            batch = default_collate(items[start:start + self.max_batch])
            for sample in self.model.test_step(batch):
                scores.append(sample.pred_score.float().cpu().numpy())
        return np.stack(scores)

    def _face_dict(self, detections: FaceDetections, crops: np.ndarray,
                   scores: np.ndarray, i: int) -> dict:
        label = int(scores[i].argmax())
        landmarks = detections.landmarks
        return dict(
            bbox=[round(float(v), 2) for v in detections.bboxes[i]],
            crop_bbox=[round(float(v), 2) for v in crops[i]],
            det_score=float(detections.scores[i]),
            landmarks=None if landmarks is None else landmarks[i].tolist(),
            pred_label=label,
            pred_class=self.classes[label],
            pred_score=float(scores[i, label]),
            pred_scores={
                name: float(s)
                for name, s in zip(self.classes, scores[i])
            })

    def visualize(self, img: np.ndarray, result: dict) -> np.ndarray:
        """Draw each face's box with its expression and score.

        Args:
            img (np.ndarray): The BGR image the result is of.
            result (dict): From :meth:`predict_image`.

        Returns:
            np.ndarray: An annotated BGR copy of ``img``.
        """
        canvas = img.copy()
        thick = max(1, round(max(img.shape[:2]) / 300))
        for face in result['faces']:
            color = _class_color(face['pred_label'])
            x1, y1, x2, y2 = (int(round(v)) for v in face['bbox'])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thick)
            text = f"{face['pred_class']} {face['pred_score']:.2f}"
            scale = 0.4 * thick
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                             scale, thick)
            top = max(y1 - th - base, 0)
            cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base),
                          color, -1)
            cv2.putText(canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, (255, 255, 255), thick, cv2.LINE_AA)
        return canvas


def resolve_detector(detector: DetectorType) -> DetectorType:
    """Turn ``'auto'`` into the best installed face detector.

    Args:
        detector (str | dict | callable): A detector, or ``'auto'``.

    Returns:
        str | dict | callable: ``'mtcnn'`` for ``'auto'`` where its weights
        are installed, else ``'lbp_cascade'`` (with a logged note); any
        other detector unchanged.
    """
    if not (isinstance(detector, str) and detector == AUTO_DETECTOR):
        return detector
    try:
        mtcnn_weights_dir()
    except ImportError as err:
        print_log(
            f'FERInferencer: detector auto falls back to lbp_cascade ({err})',
            logger='current')
        return 'lbp_cascade'
    return 'mtcnn'


def add_inferencer_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments that build a :class:`FERInferencer` to a demo.

    Args:
        parser (argparse.ArgumentParser): The demo's parser.
    """
    parser.add_argument('config', help='the config the model was trained '
                        'with')
    parser.add_argument('checkpoint', help='the checkpoint (.pth)')
    parser.add_argument(
        '--device', help='cpu, cuda, cuda:1...; the GPU if there is one')
    parser.add_argument(
        '--detector',
        default=AUTO_DETECTOR,
        choices=[AUTO_DETECTOR] + face_detector_names() + ['none'],
        help="face detector: mtcnn for photos and drawn faces, with five "
        "landmarks (weights installed by `make extras`), lbp_cascade for "
        "photos (scikit-image), montage_tiles for montages of aligned "
        "crops, none when each image is one aligned face crop; auto is "
        "mtcnn where its weights are installed, else lbp_cascade "
        "(default: %(default)s)")
    parser.add_argument(
        '--det-threshold',
        type=float,
        help="drop faces the detector scores below this (its own scale: "
        "mtcnn's face probability, lbp_cascade's supporting windows)")
    parser.add_argument(
        '--framing',
        default='auto',
        choices=['auto'] + sorted(FRAMINGS),
        help='how the training crops frame the face; auto reads the '
        "config's dataset (default: %(default)s)")
    add_allow_pickle_argument(parser)


def inferencer_from_args(args: argparse.Namespace) -> 'FERInferencer':
    """Build the inferencer that :func:`add_inferencer_arguments` asks for.

    Args:
        args (argparse.Namespace): The parsed demo arguments.

    Returns:
        FERInferencer: The inferencer.
    """
    return FERInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        detector=None if args.detector == 'none' else args.detector,
        framing=args.framing,
        det_threshold=args.det_threshold)


def _inputs_to_list(inputs) -> list:
    """A flat list of images from paths, arrays and folders (the images of
    a folder in name order)."""
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    images = []
    for item in inputs:
        if isinstance(item, str) and osp.isdir(item):
            images.extend(
                osp.join(item, name) for name in sorted(os.listdir(item))
                if name.lower().endswith(IMAGE_EXTENSIONS))
        else:
            images.append(item)
    return images


def _class_color(label: int) -> Tuple[int, int, int]:
    """A distinct, dark enough BGR colour per class (white text on it)."""
    hue = (label * 47) % 180
    hsv = np.uint8([[[hue, 200, 170]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
