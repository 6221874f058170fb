# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's landmark FPN: top-down fusion to stride 4, then heatmaps."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class LandmarkFPN(BaseModule):
    """The official LA-Net landmark FPN.

    Each stage map goes through a 1x1 lateral conv without bias to
    ``out_channels``. From the coarsest lateral, the fused map is upsampled
    bilinearly (``align_corners=False``) to the next finer lateral's size and
    added to it, down to the finest (stride-4) map; a 1x1 conv with bias
    turns it into one heatmap per landmark. The official code upsamples by
    a fixed x2, which equals resizing to the next map when sizes halve
    exactly (224 px input); resizing also handles odd sizes (112 px input:
    4 -> 7 -> 14 -> 28).

    Args:
        in_channels (Sequence[int]): Channels of the stage maps, finest
            first, e.g. ``(64, 128, 256, 512)`` for ResNet-18.
        out_channels (int): Channels of the fused map; the official code
            uses 64 x block expansion (64 for ResNet-18, 256 for ResNet-50).
            Defaults to 64.
        num_landmarks (int): Heatmaps to predict. Defaults to 19 (LA-Net's
            landmarks on RAF-DB).
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (PyTorch's default conv initialisation).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 64,
                 num_landmarks: int = 19,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.num_landmarks = num_landmarks
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
            for channels in self.in_channels)
        self.heatmap_conv = nn.Conv2d(
            out_channels, num_landmarks, kernel_size=1)

    def forward(
            self, feats: Sequence[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Fuse the stage maps and predict heatmaps.

        Args:
            feats (Sequence[Tensor]): One map per ``in_channels`` entry,
                finest first.

        Returns:
            tuple: ``heatmaps`` ``(N, num_landmarks, h, w)`` and ``fused``
            ``(N, out_channels, h, w)``, at the finest map's size.
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
        return self.heatmap_conv(fused), fused
