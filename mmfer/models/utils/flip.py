# Copyright (c) OpenMMLab. All rights reserved.
import torch


def flip_width(x: torch.Tensor) -> torch.Tensor:
    """Mirror a batch of images, feature maps or attention maps left-right.

    This is mmfer's one horizontal flip for tensors: the in-batch flipped
    view of the input images, and the re-alignment of a flipped view's class
    activation maps, both go through it, so the two always agree.

    EAC builds the same mirror with ``F.grid_sample`` on a flip grid
    (``align_corners=True``), which matches this exact flip to about 1e-6 in
    float32 only, because the float32 grid coordinates are not exact.

    Args:
        x (torch.Tensor): A tensor of shape ``(N, C, H, W)``.

    Returns:
        torch.Tensor: ``x`` with its width axis (dim 3) reversed.
    """
    if x.dim() != 4:
        raise ValueError('flip_width expects an (N, C, H, W) tensor, got '
                         f'shape {tuple(x.shape)}.')
    return torch.flip(x, dims=[3])
