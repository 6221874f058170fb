# Copyright (c) OpenMMLab. All rights reserved.
"""ResNet with the stems of face-recognition checkpoints.

mmpretrain's ``ResNet`` always ends its stem with ``ReLU`` and
``MaxPool2d(3, 2, padding=1)``. Two face-weight families were trained with
other stems, so loading their weights into a plain ``ResNet`` gives a
different network (see ``docs/pretrained.md``):

- VGGFace2 ``resnet50_ft`` (EAC's ResNet-50) is Caffe-style:
  ``MaxPool2d(3, 2, padding=0, ceil_mode=True)``, and the stride of each
  bottleneck sits in its first 1x1 conv (mmpretrain's ``style='caffe'``).
- DMUE's MS-Celeb ResNet-18 (GSMC) has no ReLU after the stem BN and uses
  ``MaxPool2d(2, 2)``.
"""
from typing import Callable, Dict

import torch.nn as nn
from mmpretrain.models.backbones.resnet import ResNet
from mmpretrain.registry import MODELS

#: ``stem_pool`` name -> factory of the stem's pooling layer.
STEM_POOLS: Dict[str, Callable[[], nn.Module]] = {
    # mmpretrain / torchvision
    'pytorch': lambda: nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    # VGGFace2 resnet50_ft (Caffe rounds pooled sizes up)
    'caffe': lambda: nn.MaxPool2d(
        kernel_size=3, stride=2, padding=0, ceil_mode=True),
    # DMUE pretrain/backbones/resnet.py
    'dmue': lambda: nn.MaxPool2d(kernel_size=2, stride=2),
}


@MODELS.register_module()
class FaceResNet(ResNet):
    """ResNet whose stem matches the face-recognition weights it loads.

    Same parameters and keys as mmpretrain's ``ResNet``, so converted face
    weights (``tools/model_converters/face_weights_to_mmpretrain.py``) load
    into either; only the parameter-free stem differs.

    Args:
        depth (int): Network depth, from {18, 34, 50, 101, 152}.
        stem_pool (str): Pooling after the stem: ``'pytorch'``
            (``MaxPool2d(3, 2, padding=1)``, as ``ResNet``), ``'caffe'``
            (``MaxPool2d(3, 2, padding=0, ceil_mode=True)``, VGGFace2) or
            ``'dmue'`` (``MaxPool2d(2, 2)``). Defaults to ``'pytorch'``.
        stem_act (bool): Whether the stem applies ReLU after its BN; False
            for DMUE's ResNet-18. Defaults to True.
        **kwargs: Other arguments of ``mmpretrain.models.ResNet``, e.g.
            ``style='caffe'`` for VGGFace2 and ``init_cfg``.

    Examples:
        >>> from mmpretrain.registry import MODELS
        >>> import mmfer.models.backbones  # noqa: F401
        >>> import torch
        >>> model = MODELS.build(dict(
        ...     type='FaceResNet', depth=50, style='caffe',
        ...     stem_pool='caffe'))
        >>> model(torch.rand(1, 3, 112, 112))[-1].shape
        torch.Size([1, 2048, 4, 4])
    """

    def __init__(self,
                 depth: int,
                 stem_pool: str = 'pytorch',
                 stem_act: bool = True,
                 **kwargs) -> None:
        if stem_pool not in STEM_POOLS:
            raise ValueError(f'stem_pool={stem_pool!r} is not one of '
                             f'{", ".join(map(repr, STEM_POOLS))}')
        super().__init__(depth, **kwargs)
        if self.deep_stem and not stem_act:
            raise ValueError('stem_act=False needs deep_stem=False: the deep '
                             "stem's ConvModules carry their own ReLUs")
        self.stem_pool = stem_pool
        self.stem_act = stem_act
        self.maxpool = STEM_POOLS[stem_pool]()
        if not stem_act:
            # ResNet.forward calls self.relu on the stem only; the blocks
            # have their own activations.
            self.relu = nn.Identity()
