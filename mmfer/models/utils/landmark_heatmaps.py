# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

# The heatmap targets of the official LA-Net code: stride-4 maps, Gaussians
# of sigma 1.5 map pixels, weight 10 where the dilated map exceeds 0.2.
OFFICIAL_HEATMAP = dict(stride=4, sigma=1.5, weight=10.0, threshold=0.2)


def gaussian_patch(sigma: float, device: torch.device) -> torch.Tensor:
    """The unnormalised Gaussian patch of the official LA-Net heatmaps.

    The patch has ``len(range(0, 2 * 3 sigma + 1))`` pixels per side (10 for
    sigma 1.5), peak 1 at index ``(2 * 3 sigma + 1) // 2``.

    Args:
        sigma (float): Standard deviation in map pixels.
        device (torch.device): Device of the result.

    Returns:
        torch.Tensor: ``(L, L)`` float32 patch, computed in float64 and
        rounded once to float32. The official numpy code computes it in
        float32 (``np.arange(..., np.float32)``), so its values may differ
        from these in the last bit of float32.
    """
    size = 2 * 3 * sigma + 1
    grid = torch.arange(
        math.ceil(size), dtype=torch.float64, device=device) - size // 2
    sq = grid**2
    return torch.exp(-(sq[:, None] + sq[None, :]) /
                     (2 * sigma**2)).to(torch.float32)


def render_heatmaps(landmarks: torch.Tensor,
                    size: Tuple[int, int],
                    stride: int = 4,
                    sigma: float = 1.5,
                    weight: float = 10.0,
                    threshold: float = 0.2
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render the heatmap and weight-map targets of the official LA-Net code.

    For a point ``(x, y)`` in image pixels, its map pixel is ``mu =
    int(x / stride + 0.5)`` (per axis, ``int`` truncating towards zero). The
    Gaussian patch of :func:`gaussian_patch` is pasted with its corner at
    ``ul = int(mu - 3 sigma)`` up to ``br = int(mu + 3 sigma + 1)`` and
    clipped to the map; the truncation towards zero moves the peak by one
    pixel for a point near the top/left border, as in the official code. A
    point whose patch lies entirely outside the map gets a zero map. The
    weight map is ``weight`` where the 3x3 grey dilation (max filter) of the
    point's heatmap exceeds ``threshold``, else 1.

    All points of the batch are rendered at once on the device of
    ``landmarks``; the map positions are computed in float64, so a point
    rounds to the same map pixel as in the official float64 code.

    Args:
        landmarks (torch.Tensor): ``(N, K, 2)`` points ``(x, y)`` in the
            pixels of the input image.
        size (tuple[int, int]): ``(h, w)`` of the maps.
        stride (int): Image pixels per map pixel. Defaults to 4.
        sigma (float): Gaussian standard deviation in map pixels.
            Defaults to 1.5.
        weight (float): Weight of the pixels near a point. Defaults to 10.0.
        threshold (float): Dilated heatmap value above which a pixel is near
            a point. Defaults to 0.2.

    Returns:
        tuple[Tensor, Tensor]: ``(N, K, h, w)`` float32 heatmaps and weight
        maps.
    """
    if landmarks.dim() != 3 or landmarks.size(-1) != 2:
        raise ValueError('landmarks must have shape (N, K, 2) (x, y per '
                         f'point), got {tuple(landmarks.shape)}.')
    height, width = size
    device = landmarks.device
    patch = gaussian_patch(sigma, device)
    radius = 3 * sigma
    mu = torch.trunc(landmarks.to(torch.float64) / stride + 0.5)
    # (N, K, 2) corners, x then y, as integers
    ul = torch.trunc(mu - radius).long()
    br = torch.trunc(mu + radius + 1).long()
    rows = _patch_index(ul[..., 1], br[..., 1], height, device)
    cols = _patch_index(ul[..., 0], br[..., 0], width, device)
    inside = (rows >= 0)[..., :, None] & (cols >= 0)[..., None, :]
    values = patch[rows.clamp(min=0)[..., :, None],
                   cols.clamp(min=0)[..., None, :]]
    heatmaps = torch.where(inside, values, values.new_zeros(()))
    near = F.max_pool2d(
        heatmaps.flatten(0, 1), 3, stride=1,
        padding=1).view_as(heatmaps) > threshold
    weights = torch.where(near, heatmaps.new_tensor(weight),
                          heatmaps.new_ones(()))
    return heatmaps, weights


def _patch_index(ul: torch.Tensor, br: torch.Tensor, length: int,
                 device: torch.device) -> torch.Tensor:
    """Patch index of every map pixel along one axis, -1 off the patch.

    Args:
        ul (torch.Tensor): ``(N, K)`` first map pixel of each patch.
        br (torch.Tensor): ``(N, K)`` end (exclusive) of each patch.
        length (int): Map pixels along the axis.
        device (torch.device): Device of the result.

    Returns:
        torch.Tensor: ``(N, K, length)`` long.
    """
    pixels = torch.arange(length, device=device)
    index = pixels - ul[..., None]
    on_patch = (pixels >= ul[..., None]) & (pixels < br[..., None])
    return torch.where(on_patch, index, index.new_full((), -1))


def landmark_annotations(
        data_samples: Sequence[DataSample],
        device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack the landmarks and their validity of a batch.

    Args:
        data_samples (Sequence[DataSample]): The batch's samples.
        device (torch.device): Device of the results.

    Returns:
        tuple[Tensor, Tensor]: ``(N, K, 2)`` landmarks and ``(N,)`` bool
        ``has_landmarks``.
    """
    fields = ('landmarks', 'has_landmarks')
    for i, sample in enumerate(data_samples):
        missing = [f for f in fields if f not in sample]
        if missing:
            raise KeyError(
                f'Data sample {i} has no {missing}: LANetClassifier trains '
                'a landmark heatmap branch on targets it renders from the '
                'landmarks: add the LandmarkTargets transform before '
                'PackFERInputs in the train pipeline (samples without '
                'landmarks get zero points and has_landmarks=False).')
    landmarks = torch.stack([s.landmarks for s in data_samples]).to(device)
    valid = torch.cat([s.has_landmarks.reshape(-1)
                       for s in data_samples]).to(device).bool()
    return landmarks, valid


def heatmap_settings(heatmap: Dict[str, float]) -> Dict[str, float]:
    """Check the heatmap arguments of a model and fill in the official ones.

    Args:
        heatmap (dict): Some of ``stride``, ``sigma``, ``weight`` and
            ``threshold`` of :func:`render_heatmaps`.

    Returns:
        dict: All four, missing ones from :data:`OFFICIAL_HEATMAP`.
    """
    unknown = set(heatmap) - set(OFFICIAL_HEATMAP)
    if unknown:
        raise ValueError(f'heatmap has unknown keys {sorted(unknown)}; the '
                         f'keys are {tuple(OFFICIAL_HEATMAP)}.')
    heatmap = dict(OFFICIAL_HEATMAP, **heatmap)
    if int(heatmap['stride']) != heatmap['stride'] or heatmap['stride'] <= 0:
        raise ValueError(f"heatmap stride={heatmap['stride']} must be a "
                         'positive int.')
    return heatmap


def heatmap_targets(landmarks: torch.Tensor, image_size: Sequence[int],
                    pred_shape: Sequence[int], stride: int,
                    **render_args) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render the heatmap and weight-map targets of predicted heatmaps.

    Args:
        landmarks (torch.Tensor): ``(N, K, 2)`` points in input pixels.
        image_size (Sequence[int]): ``(H, W)`` of the input images.
        pred_shape (Sequence[int]): Shape ``(N, K, h, w)`` of the predicted
            heatmaps, which the targets must have.
        stride (int): Input pixels per heatmap pixel.
        **render_args: ``sigma``, ``weight`` and ``threshold`` of
            :func:`render_heatmaps`.

    Returns:
        tuple[Tensor, Tensor]: ``(N, K, h, w)`` float32 heatmaps and weight
        maps.
    """
    stride = int(stride)
    size = (int(image_size[0]) // stride, int(image_size[1]) // stride)
    if tuple(pred_shape[-2:]) != size:
        raise ValueError(
            f'The landmark neck predicts {tuple(pred_shape[-2:])} heatmaps '
            f'for {tuple(image_size)} inputs, but the targets are rendered '
            f'at input size // heatmap stride {stride} = {size}: set the '
            "model's heatmap stride to the neck's output stride (4 for "
            'LandmarkFPN on a ResNet).')
    if landmarks.size(1) != pred_shape[1]:
        raise ValueError(
            f'The data samples have {landmarks.size(1)} landmarks but the '
            f'landmark neck predicts {pred_shape[1]} heatmaps: set '
            'LandmarkTargets.num_landmarks and landmark_neck.num_landmarks '
            "to the number of points of the dataset's landmark layout.")
    return render_heatmaps(landmarks, size, stride=stride, **render_args)
