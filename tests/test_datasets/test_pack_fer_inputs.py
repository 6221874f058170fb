# Copyright (c) OpenMMLab. All rights reserved.
"""PackFERInputs packs images with numpy's transpose: the same tensors as
mmpretrain's PackInputs for every input form."""
import numpy as np
import pytest
import torch
from mmpretrain.datasets.transforms import PackInputs
from PIL import Image

from mmfer.datasets.transforms import PackFERInputs

RNG = np.random.default_rng(0)
HWC = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('img', [
    HWC,
    HWC[:, ::-1],  # a mirrored view: not C-contiguous
    HWC[..., 0],  # grey
    RNG.random((5, 4, 3)).astype(np.float32),
    Image.fromarray(HWC),
    torch.from_numpy(HWC.transpose(2, 0, 1).copy()),
    [HWC, HWC[:, ::-1]],  # two views
],
                         ids=[
                             'hwc', 'strided', 'grey', 'float', 'pil',
                             'tensor', 'views'
                         ])
def test_images_pack_as_mmpretrain_packs_them(img):
    ours = PackFERInputs.format_input(img)
    ref = PackInputs.format_input(img)
    for got, want in zip(*((ours, ref) if isinstance(img, list) else
                           ([ours], [ref]))):
        assert got.dtype == want.dtype and torch.equal(got, want)
        # what a dataloader worker ships is one dense block
        assert got.is_contiguous() or not want.is_contiguous()
