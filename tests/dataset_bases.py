# Copyright (c) OpenMMLab. All rights reserved.
"""The dataset bases under configs/_base_/datasets, and the test-only
variants of them at another image size."""
import os.path as osp

from mmengine.config import Config

BASES = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_',
    'datasets')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def dataset_base(name: str) -> Config:
    """A dataset base, by file name without ``.py``.

    Args:
        name (str): e.g. ``'ferplus'``, or ``'ferplus_224'``: that base with
            every ``Resize`` of its pipelines at 224 x 224 (the EAC and GSMC
            input size) and ``img_size`` 224.

    Returns:
        Config: The base.
    """
    base, _, size = name.partition('_')
    cfg = Config.fromfile(osp.join(BASES, f'{base}.py'))
    if size:
        cfg.img_size = int(size)
        for loader in LOADERS:
            for step in cfg[loader].dataset.pipeline:
                if step.type == 'Resize':
                    step.scale = (cfg.img_size, cfg.img_size)
    return cfg
