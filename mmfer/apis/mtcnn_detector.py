# Copyright (c) OpenMMLab. All rights reserved.
"""MTCNN face detector (Zhang et al., "Joint Face Detection and Alignment
using Multitask Cascaded Convolutional Networks", 2016).

Three networks in cascade: P-Net slides a 12x12 window (as a fully
convolutional net) over an image pyramid and proposes boxes; R-Net
re-scores and refines each proposal from a 24x24 crop; O-Net does the same
from a 48x48 crop and adds five landmarks. After each stage boxes are
moved by the regressed offsets and overlapping ones suppressed.

The network definitions here are mmfer's; the trained weights are those
that the ``facenet-pytorch`` wheel ships as ``facenet_pytorch/data/
{pnet,rnet,onet}.pt`` (MIT licence). They are read from the installed
package's folder without importing it, so its pins (torch < 2.3,
numpy < 2) and its own dependencies do not matter: install it with
``pip install --no-deps facenet-pytorch``.
"""
import importlib.util
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, nms

from .face_detectors import FACE_DETECTORS, FaceDetections

WEIGHTS_PACKAGE = 'facenet_pytorch'
INSTALL_HINT = ('pip install --no-deps facenet-pytorch (its wheel ships the '
                'MTCNN weights; --no-deps because it pins torch < 2.3 and '
                'numpy < 2, which it does not need for its weight files)')


def mtcnn_weights_dir() -> str:
    """The folder of the MTCNN weights inside the facenet-pytorch wheel.

    Returns:
        str: A folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt``.
    """
    # find_spec locates the package without running its __init__, which
    # imports requests and torchvision models mmfer does not need.
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f'the mtcnn face detector needs the weights of the '
            f'{WEIGHTS_PACKAGE} wheel: {INSTALL_HINT}.')
    folder = osp.join(list(spec.submodule_search_locations)[0], 'data')
    for name in ('pnet.pt', 'rnet.pt', 'onet.pt'):
        if not osp.isfile(osp.join(folder, name)):
            raise ImportError(f'{osp.join(folder, name)} is missing; '
                              f'reinstall the weights: {INSTALL_HINT}.')
    return folder


def _conv_prelu(index: int, in_channels: int, out_channels: int,
                kernel: int) -> List[Tuple[str, nn.Module]]:
    return [(f'conv{index}', nn.Conv2d(in_channels, out_channels, kernel)),
            (f'prelu{index}', nn.PReLU(out_channels))]


def _pool(index: int, kernel: int) -> List[Tuple[str, nn.Module]]:
    # ceil_mode: the original Caffe nets round pooled sizes up
    return [(f'pool{index}', nn.MaxPool2d(kernel, 2, ceil_mode=True))]


class PNet(nn.Module):
    """Proposal net: a 12x12 window's face probability and box offsets,
    computed for every window at stride 2 of an image of any size."""

    def __init__(self) -> None:
        super().__init__()
        for name, module in (_conv_prelu(1, 3, 10, 3) + _pool(1, 2) +
                             _conv_prelu(2, 10, 16, 3) +
                             _conv_prelu(3, 16, 32, 3)):
            self.add_module(name, module)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` -> face probabilities ``(N, H', W')`` and
        offsets ``(N, 4, H', W')``."""
        for name in ('conv1', 'prelu1', 'pool1', 'conv2', 'prelu2', 'conv3',
                     'prelu3'):
            x = getattr(self, name)(x)
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class _CropNet(nn.Module):
    """A convolutional trunk, then a dense layer and one dense head per
    output (face logits, box offsets, and for O-Net landmarks)."""

    trunk: Sequence[str]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.trunk:
            x = getattr(self, name)(x)
        # The weights were converted from nets that saw transposed
        # (width-major) images; flattening as (W, H, C) restores the order
        # their dense layer expects.
        return x.permute(0, 3, 2, 1).flatten(1)


class RNet(_CropNet):
    """Refine net on 24x24 crops."""

    trunk = ('conv1', 'prelu1', 'pool1', 'conv2', 'prelu2', 'pool2', 'conv3',
             'prelu3')

    def __init__(self) -> None:
        super().__init__()
        for name, module in (_conv_prelu(1, 3, 28, 3) + _pool(1, 3) +
                             _conv_prelu(2, 28, 48, 3) + _pool(2, 3) +
                             _conv_prelu(3, 48, 64, 2)):
            self.add_module(name, module)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, 24, 24)`` -> face probabilities ``(N,)`` and offsets
        ``(N, 4)``."""
        x = self.prelu4(self.dense4(self.features(x)))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(_CropNet):
    """Output net on 48x48 crops, with five landmarks."""

    trunk = ('conv1', 'prelu1', 'pool1', 'conv2', 'prelu2', 'pool2', 'conv3',
             'prelu3', 'pool3', 'conv4', 'prelu4')

    def __init__(self) -> None:
        super().__init__()
        for name, module in (_conv_prelu(1, 3, 32, 3) + _pool(1, 3) +
                             _conv_prelu(2, 32, 64, 3) + _pool(2, 3) +
                             _conv_prelu(3, 64, 64, 3) + _pool(3, 2) +
                             _conv_prelu(4, 64, 128, 2)):
            self.add_module(name, module)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(
        self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(N, 3, 48, 48)`` -> face probabilities ``(N,)``, offsets
        ``(N, 4)`` and landmarks ``(N, 10)`` (five x, then five y, as
        fractions of the crop)."""
        x = self.prelu5(self.dense5(self.features(x)))
        return (self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x),
                self.dense6_3(x))


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each side by its offset times the box's width or height."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """The square of each box's longer side, on the same centre; the next
    net's input is square."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(1, keepdim=True)[0] / 2
    return torch.cat([centre - half, centre + half], 1)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor,
             threshold: float) -> torch.Tensor:
    """Greedy suppression by overlap over the *smaller* box's area, which
    also drops a box nested in a stronger one (a face within a face)."""
    order = scores.argsort(descending=True)
    keep = []
    while len(order):
        i, order = order[0], order[1:]
        keep.append(i)
        top_left = torch.maximum(boxes[i, :2], boxes[order, :2])
        bottom_right = torch.minimum(boxes[i, 2:], boxes[order, 2:])
        inter = (bottom_right - top_left).clamp(min=0).prod(1)
        areas = (boxes[:, 2:] - boxes[:, :2]).prod(1)
        smaller = torch.minimum(areas[i], areas[order])
        order = order[inter / smaller <= threshold]
    return torch.stack(keep) if keep else order


@FACE_DETECTORS.register_module(name='mtcnn')
class MTCNNFaceDetector:
    """MTCNN: three cascaded CNNs giving boxes, scores and five landmarks.

    Needs the weights of the optional ``facenet-pytorch`` wheel (install
    with ``pip install --no-deps facenet-pytorch``); only its weight files
    are read. The landmarks come in RAF-DB's manual order (left eye, right
    eye, nose tip, left and right mouth corner, image-left first), which is
    also MTCNN's own.

    Args:
        min_face_size (int): Smallest face side searched, in pixels; it
            sets the pyramid's largest scale (12 / min_face_size).
            Defaults to 20.
        scale_factor (float): Ratio of successive pyramid scales.
            Defaults to 0.709 (halving the area per level).
        thresholds (Sequence[float]): Face probability a box needs at
            P-Net, R-Net and O-Net. Defaults to (0.6, 0.7, 0.7).
        device (str, optional): Where the nets run; the GPU if there is one
            when None.
        max_batch (int): Most crops sent through R-Net or O-Net at once.
            Defaults to 512.
    """

    def __init__(self,
                 min_face_size: int = 20,
                 scale_factor: float = 0.709,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 device: Optional[str] = None,
                 max_batch: int = 512) -> None:
        if len(thresholds) != 3:
            raise ValueError(f'thresholds {thresholds}: give three, one each '
                             'for P-Net, R-Net and O-Net.')
        if not 0 < scale_factor < 1:
            raise ValueError(f'scale_factor {scale_factor} must lie in '
                             '(0, 1): each pyramid level is smaller.')
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        folder = mtcnn_weights_dir()
        self.pnet, self.rnet, self.onet = (self._load(
            net, osp.join(folder, name)) for net, name in (
                (PNet(), 'pnet.pt'), (RNet(), 'rnet.pt'), (ONet(),
                                                           'onet.pt')))
        self.min_face_size = min_face_size
        self.scale_factor = scale_factor
        self.thresholds = tuple(float(t) for t in thresholds)
        self.max_batch = max_batch

    def _load(self, net: nn.Module, path: str) -> nn.Module:
        state = torch.load(path, map_location='cpu', weights_only=True)
        net.load_state_dict(state, strict=True)
        return net.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, img: np.ndarray) -> FaceDetections:
        """Find the faces of one image.

        Args:
            img (np.ndarray): ``(H, W, 3)`` uint8 BGR image.

        Returns:
            FaceDetections: Boxes, O-Net face probabilities and landmarks,
            strongest first.
        """
        # The nets take RGB scaled to [-1, 1].
        rgb = torch.from_numpy(np.ascontiguousarray(img[..., ::-1]))
        image = (rgb.to(self.device).permute(2, 0, 1)[None].float() -
                 127.5) / 128
        boxes = self._propose(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return FaceDetections(
                np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        boxes, scores, landmarks = self._output(image, boxes)
        return FaceDetections(boxes.cpu().numpy(),
                              scores.cpu().numpy(),
                              landmarks.cpu().numpy())

    def scales(self, height: int, width: int) -> List[float]:
        """The pyramid: from the scale that maps ``min_face_size`` onto
        P-Net's 12 px window, down by ``scale_factor`` until the image's
        shorter side is under 12 px."""
        scale = 12 / self.min_face_size
        scales = []
        while min(height, width) * scale >= 12:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _propose(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1: P-Net over the pyramid -> square ``(K, 4)`` boxes."""
        height, width = image.shape[2:]
        boxes, scores, levels = [], [], []
        for level, scale in enumerate(self.scales(height, width)):
            size = (int(np.ceil(height * scale)), int(np.ceil(width * scale)))
            prob, offsets = self.pnet(F.interpolate(image, size, mode='area'))
            rows, cols = torch.nonzero(
                prob[0] >= self.thresholds[0], as_tuple=True)
            # Output cell (r, c) is the 12x12 window at stride 2.
            corner = torch.stack([cols, rows], 1).float() * 2
            windows = torch.cat([corner, corner + 12], 1) / scale
            boxes.append(_regress(windows, offsets[0, :, rows, cols].T))
            scores.append(prob[0, rows, cols])
            levels.append(torch.full_like(rows, level))
        if not boxes:
            return image.new_zeros((0, 4))
        boxes, scores, levels = (torch.cat(x) for x in (boxes, scores,
                                                        levels))
        # within a level first: neighbouring windows of one face
        keep = batched_nms(boxes, scores, levels, 0.5)
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, 0.7)
        return _square(boxes[keep])

    def _refine(self, image: torch.Tensor,
                boxes: torch.Tensor) -> torch.Tensor:
        """Stage 2: R-Net on 24x24 crops -> square boxes."""
        prob, offsets = self._run(self.rnet, self._crops(image, boxes, 24))
        keep = prob >= self.thresholds[1]
        boxes, prob, offsets = boxes[keep], prob[keep], offsets[keep]
        keep = nms(boxes, prob, 0.7)
        return _square(_regress(boxes[keep], offsets[keep]))

    def _output(
        self, image: torch.Tensor, boxes: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 3: O-Net on 48x48 crops -> boxes, scores, landmarks."""
        prob, offsets, points = self._run(self.onet,
                                          self._crops(image, boxes, 48))
        keep = prob >= self.thresholds[2]
        boxes, prob, offsets, points = (boxes[keep], prob[keep],
                                        offsets[keep], points[keep])
        size = boxes[:, 2:] - boxes[:, :2]
        landmarks = (boxes[:, None, :2] +
                     torch.stack([points[:, :5], points[:, 5:]], 2) *
                     size[:, None])
        boxes = _regress(boxes, offsets)
        keep = _nms_min(boxes, prob, 0.7)
        return boxes[keep], prob[keep], landmarks[keep]

    def _run(self, net: nn.Module,
             crops: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs = [net(chunk) for chunk in crops.split(self.max_batch)]
        return tuple(torch.cat(parts) for parts in zip(*outputs))

    @staticmethod
    def _crops(image: torch.Tensor, boxes: torch.Tensor,
               size: int) -> torch.Tensor:
        """Each box cut from the image (black outside it) and resized to
        ``size`` x ``size`` by area averaging."""
        height, width = image.shape[2:]
        crops = []
        for x1, y1, x2, y2 in boxes.round().int().tolist():
            x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
            # black outside the image, as the nets were trained
            crop = image.new_full((1, 3, y2 - y1, x2 - x1), -127.5 / 128)
            sx1, sy1 = max(x1, 0), max(y1, 0)
            sx2, sy2 = min(x2, width), min(y2, height)
            if sx2 > sx1 and sy2 > sy1:
                crop[..., sy1 - y1:sy2 - y1,
                     sx1 - x1:sx2 - x1] = image[..., sy1:sy2, sx1:sx2]
            crops.append(F.interpolate(crop, (size, size), mode='area'))
        return torch.cat(crops)
