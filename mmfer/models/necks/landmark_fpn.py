# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's landmark FPN: top-down fusion to stride 4, then heatmaps."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


def upsample_factor(in_channels: Tuple[int, ...],
                    in_strides: Optional[Sequence[int]],
                    output_stride: int) -> int:
    """How much the finest map must be enlarged to reach ``output_stride``.

    Raises:
        ValueError: If the strides do not fit the maps or the output stride.
    """
    if in_strides is None:
        return 1
    in_strides = tuple(in_strides)
    if len(in_strides) != len(in_channels) or list(in_strides) != sorted(
            in_strides):
        raise ValueError(
            f'LandmarkFPN got in_strides={in_strides} for in_channels='
            f'{in_channels}: give one stride per map, finest first.')
    if in_strides[0] % output_stride:
        raise ValueError(
            f'LandmarkFPN cannot reach output_stride={output_stride} from '
            f'its finest map at stride {in_strides[0]}: set output_stride to '
            f'a divisor of it and the heatmap stride to match, or leave the '
            f'maps finer than {output_stride} out of out_indices.')
    return in_strides[0] // output_stride


@MODELS.register_module()
class LandmarkFPN(BaseModule):
    """The official LA-Net landmark FPN, for any number of scales.

    Each stage map goes through a 1x1 lateral conv without bias to
    ``out_channels``. From the coarsest lateral, the fused map is upsampled
    bilinearly (``align_corners=False``) to the next finer lateral's size and
    added to it, down to the finest map; a 1x1 conv without bias (the
    official ``lm_fc = conv1x1(...)``) turns it into one heatmap per
    landmark. The official code upsamples by a fixed x2,
    which equals resizing to the next map when sizes halve exactly (224 px
    input); resizing also handles odd sizes (112 px input: 4 -> 7 -> 14 ->
    28).

    The heatmaps are at ``output_stride`` of the input (the targets are
    rendered at input size // 4). A ResNet's finest map is there already;
    when ``in_strides`` says the finest map is coarser (a ViT's single
    stride-16 map), the fused map is upsampled bilinearly by
    ``in_strides[0] // output_stride`` before the heatmap conv.

    Args:
        in_channels (Sequence[int]): Channels of the maps, finest first,
            e.g. ``(64, 128, 256, 512)`` for ResNet-18 or ``(192, )`` for
            DeiT-tiny.
        out_channels (int): Channels of the fused map; the official code
            uses 64 x block expansion (64 for ResNet-18, 256 for ResNet-50).
            Defaults to 64.
        num_landmarks (int): Heatmaps to predict. Defaults to 19 (LA-Net's
            landmarks on RAF-DB).
        in_strides (Sequence[int], optional): Stride of each map relative
            to the input, e.g. ``ExpressionLandmarkBackbone.lm_strides``.
            Defaults to None: the finest map is at ``output_stride``.
        output_stride (int): Stride of the heatmaps relative to the input.
            Defaults to 4 (LA-Net's heatmap targets).
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (PyTorch's default conv initialisation).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 64,
                 num_landmarks: int = 19,
                 in_strides: Optional[Sequence[int]] = None,
                 output_stride: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.num_landmarks = num_landmarks
        self.upsample_factor = upsample_factor(self.in_channels, in_strides,
                                               output_stride)
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
            for channels in self.in_channels)
        self.heatmap_conv = nn.Conv2d(
            out_channels, num_landmarks, kernel_size=1, bias=False)

    def forward(
            self, feats: Sequence[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Fuse the stage maps and predict heatmaps.

        Args:
            feats (Sequence[Tensor]): One map per ``in_channels`` entry,
                finest first.

        Returns:
            tuple: ``heatmaps`` ``(N, num_landmarks, h, w)`` and ``fused``
            ``(N, out_channels, h, w)``, at the finest map's size times
            ``upsample_factor``.
        """
        if len(feats) != len(self.lateral_convs):
            raise ValueError(
                f'LandmarkFPN got {len(feats)} feature maps for '
                f'in_channels={self.in_channels}; give one map per entry.')
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        fused = laterals[-1]
        for lateral in reversed(laterals[:-1]):
            fused = lateral + F.interpolate(
                fused,
                size=lateral.shape[-2:],
                mode='bilinear',
                align_corners=False)
        if self.upsample_factor > 1:
            fused = F.interpolate(
                fused,
                size=tuple(s * self.upsample_factor for s in fused.shape[-2:]),
                mode='bilinear',
                align_corners=False)
        return self.heatmap_conv(fused), fused
