# Copyright (c) OpenMMLab. All rights reserved.
"""An in-memory dataset for runner-level tests of hooks."""
import torch
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset


class ToyFER(Dataset):
    """12 random 8x8 images, labels cycling over the 7 classes."""

    metainfo = dict(classes=tuple(str(i) for i in range(7)))

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.imgs = torch.rand(12, 3, 8, 8, generator=gen) * 255

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        return dict(
            inputs=self.imgs[idx],
            data_samples=DataSample().set_gt_label(idx % 7))
