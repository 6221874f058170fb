# Copyright (c) OpenMMLab. All rights reserved.
"""Two towers of one backbone that share the stem and the first stages.

LA-Net's ``Landmark_ResNet`` runs the ResNet stem and ``layer1`` once, then
an expression tower (``layer2-4``, classified) and a landmark tower (its own
``layer2-4``, fed to a landmark FPN). Its pretrained loader copies the
checkpoint's ``layer2-4`` into both towers.

:class:`ExpressionLandmarkBackbone` gets the same network from any supported
mmpretrain backbone config: it builds the config twice, so a ``Pretrained``
``init_cfg`` initialises both towers from one checkpoint, and removes the
shared modules from the landmark tower, so each shared parameter exists once
(one state-dict key, one optimizer entry, one gradient).
"""
import copy
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.backbones import ConvNeXt, ResNet
from mmpretrain.registry import MODELS

NUM_STAGES = 4
ALL_STAGES = tuple(range(NUM_STAGES))


@dataclass(frozen=True)
class TowerLayout:
    """Where the parts of one backbone live, as submodule paths.

    Args:
        stem (tuple[str]): Modules run in order on the image before stage 0.
        stages (tuple): Per stage, ``(body, out_norm)``: the modules run in
            order on the previous stage's map, and the norm applied to the
            stage's output map only (the next stage continues from the
            un-normalised map), or None.
        channels (tuple[int]): Channels of each stage's output map.
    """
    stem: Tuple[str, ...]
    stages: Tuple[Tuple[Tuple[str, ...], Optional[str]], ...]
    channels: Tuple[int, ...]

    def shared_paths(self, num_shared_stages: int) -> List[str]:
        """The paths of the stem and the first ``num_shared_stages`` stages.

        Args:
            num_shared_stages (int): How many stages follow the stem.

        Returns:
            list[str]: Submodule paths.
        """
        paths = list(self.stem)
        for body, out_norm in self.stages[:num_shared_stages]:
            paths.extend(body)
            if out_norm is not None:
                paths.append(out_norm)
        return paths


def resnet_layout(tower: ResNet) -> TowerLayout:
    """The layout of ``ResNet.forward``: stem, maxpool, ``layer1-4``."""
    if tower.deep_stem:
        stem = ('stem', 'maxpool')
    else:
        stem = ('conv1', tower.norm1_name, 'relu', 'maxpool')
    return TowerLayout(
        stem=stem,
        stages=tuple(((name, ), None) for name in tower.res_layers),
        channels=tuple(
            getattr(tower, name)[-1].out_channels
            for name in tower.res_layers))


def convnext_layout(tower: ConvNeXt) -> TowerLayout:
    """The layout of ``ConvNeXt.forward`` with ``gap_before_final_norm``
    off: ``downsample_layers[0]`` is the stem, stage ``i`` is
    ``downsample_layers[i]`` (``i > 0``) and ``stages[i]``, and ``norm{i}``
    normalises the output map."""
    stages = []
    for i in range(tower.num_stages):
        downsample = (f'downsample_layers.{i}', ) if i > 0 else ()
        stages.append((downsample + (f'stages.{i}', ), f'norm{i}'))
    return TowerLayout(
        stem=('downsample_layers.0', ),
        stages=tuple(stages),
        channels=tuple(tower.channels))


@dataclass(frozen=True)
class BackboneFamily:
    """How to configure and lay out one family of backbones.

    Args:
        base (type): The family's class; subclasses qualify when they keep
            its ``forward``.
        layout (Callable): Built tower -> :class:`TowerLayout`.
        defaults (dict): Config values that make the tower output all four
            stage maps, set when the config leaves them out.
    """
    base: Type[nn.Module]
    layout: Callable[[nn.Module], TowerLayout]
    defaults: Dict[str, object]


FAMILIES = (
    BackboneFamily(ResNet, resnet_layout, dict(out_indices=ALL_STAGES)),
    BackboneFamily(ConvNeXt, convnext_layout,
                   dict(out_indices=ALL_STAGES, gap_before_final_norm=False)),
)
_SUPPORTED = ('ResNet, ResNetV1c, ResNetV1d, FaceResNet and other ResNet '
              'subclasses that keep ResNet.forward, or ConvNeXt')


def find_family(cfg: dict) -> BackboneFamily:
    """The family of a backbone config.

    Args:
        cfg (dict): A backbone config with ``type``.

    Returns:
        BackboneFamily: Its family.

    Raises:
        TypeError: If the type is not a supported backbone.
    """
    backbone_type = cfg.get('type')
    cls = MODELS.get(backbone_type) if isinstance(backbone_type,
                                                  str) else backbone_type
    for family in FAMILIES:
        if (isinstance(cls, type) and issubclass(cls, family.base)
                and cls.forward is family.base.forward):
            return family
    raise TypeError(
        f'ExpressionLandmarkBackbone cannot split backbone.type='
        f'{backbone_type!r} into a stem and stages; use {_SUPPORTED}.')


def check_all_stages(tower: nn.Module, family: BackboneFamily) -> None:
    """Check that a built tower outputs the four stage maps.

    Raises:
        ValueError: Naming the config key that asks otherwise.
    """
    name = type(tower).__name__
    if len(family.layout(tower).stages) != NUM_STAGES:
        key = 'num_stages' if family.base is ResNet else 'arch'
        raise ValueError(
            f'ExpressionLandmarkBackbone needs the {NUM_STAGES} stages '
            f'(strides 4-32) of {name}; remove backbone.{key} or give it '
            f'{NUM_STAGES} stages.')
    if not set(ALL_STAGES) <= set(tower.out_indices):
        raise ValueError(
            f'ExpressionLandmarkBackbone uses all stage maps of {name}, but '
            f'backbone.out_indices={tuple(tower.out_indices)}; remove the key '
            f'or set it to {ALL_STAGES}.')
    if getattr(tower, 'gap_before_final_norm', False):
        raise ValueError(
            'ExpressionLandmarkBackbone needs feature maps, but '
            'backbone.gap_before_final_norm=True pools them; remove the key '
            'or set it to False.')


class SharedModule(nn.Module):
    """Stands in the landmark tower for a module of the expression tower.

    The expression tower is held as a plain attribute, not a submodule, so
    the shared parameters are registered (and saved, initialised and
    optimised) once; the path is looked up on every call so that module
    replacements in the expression tower (e.g. SyncBN conversion) are
    followed. Mode changes and freezing of the landmark tower leave the
    shared module alone: the expression tower, built from the same config,
    applies the same ones.

    Args:
        source (nn.Module): The expression tower.
        path (str): The module's path in ``source``.
    """

    def __init__(self, source: nn.Module, path: str) -> None:
        super().__init__()
        object.__setattr__(self, 'source', source)
        self.path = path

    @property
    def module(self) -> nn.Module:
        """The expression tower's module."""
        return self.source.get_submodule(self.path)

    def forward(self, *args, **kwargs):
        """Run the expression tower's module."""
        return self.module(*args, **kwargs)

    def extra_repr(self) -> str:
        return f'shared with the expression tower: {self.path}'


def share_modules(source: nn.Module, target: nn.Module,
                  paths: Sequence[str]) -> None:
    """Replace ``target``'s modules at ``paths`` by ``source``'s."""
    for path in paths:
        parent, _, name = path.rpartition('.')
        setattr(target.get_submodule(parent), name, SharedModule(source, path))


@MODELS.register_module()
class ExpressionLandmarkBackbone(BaseModule):
    """LA-Net's two-tower backbone with a shared stem and first stages.

    The expression tower and the landmark tower are two builds of
    ``backbone``; the landmark tower's stem and first ``num_shared_stages``
    stages are the expression tower's modules (:class:`SharedModule`) and
    run once per forward. With ResNet-18 and ``num_shared_stages=1`` this is
    the official LA-Net backbone: shared ``conv1``/``bn1``/``layer1``, two
    ``layer2-4``.

    The wrapped backbone's ``frozen_stages`` and ``norm_eval`` keep their
    meaning: ``train()`` reaches both towers' own ``train()``. A
    ``Pretrained`` ``init_cfg`` on ``backbone`` loads into both towers; the
    landmark tower's load reports the shared keys as unexpected (the
    expression tower loads them).

    Args:
        backbone (dict): An mmpretrain ResNet-family or ConvNeXt config.
            ``out_indices`` (and ConvNeXt's ``gap_before_final_norm``)
            default to the four stage maps and may not ask for fewer.
        num_shared_stages (int): Stages after the stem shared by the towers,
            0-3. Defaults to 1 (LA-Net).
        init_cfg (dict, optional): Initialisation config of the wrapper.
            Defaults to None.

    Examples:
        >>> import torch
        >>> from mmpretrain.registry import MODELS
        >>> import mmfer.models.backbones.expression_landmark_backbone  # noqa
        >>> model = MODELS.build(dict(
        ...     type='ExpressionLandmarkBackbone',
        ...     backbone=dict(type='ResNet', depth=18)))
        >>> expr_feats, lm_feats = model(torch.rand(1, 3, 112, 112))
        >>> [f.shape[1] for f in expr_feats]
        [64, 128, 256, 512]
        >>> expr_feats[0] is lm_feats[0]
        True
    """

    def __init__(self,
                 backbone: dict,
                 num_shared_stages: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 <= num_shared_stages < NUM_STAGES:
            raise ValueError(
                f'num_shared_stages={num_shared_stages} must be in '
                f'[0, {NUM_STAGES - 1}]: with {NUM_STAGES} the towers would '
                'be one network.')
        family = find_family(backbone)
        cfg = {**copy.deepcopy(family.defaults), **backbone}
        self.expr_tower = MODELS.build(copy.deepcopy(cfg))
        check_all_stages(self.expr_tower, family)
        self.lm_tower = MODELS.build(copy.deepcopy(cfg))
        self.layout = family.layout(self.expr_tower)
        self.num_shared_stages = num_shared_stages
        share_modules(self.expr_tower, self.lm_tower,
                      self.layout.shared_paths(num_shared_stages))
        # one config builds both towers, so their stages match
        self.expr_channels = self.lm_channels = self.layout.channels

    def _run_stages(self, tower: nn.Module, x: torch.Tensor, start: int,
                    stop: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Run stages ``start..stop-1`` of ``tower`` on ``x``.

        Returns:
            tuple: The last stage's un-normalised map (the next stage's
            input) and the stage output maps.
        """
        outs = []
        for body, out_norm in self.layout.stages[start:stop]:
            for path in body:
                x = tower.get_submodule(path)(x)
            outs.append(tower.get_submodule(out_norm)(x) if out_norm else x)
        return x, outs

    def _run_shared(
            self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Run the stem and the shared stages once."""
        for path in self.layout.stem:
            x = self.expr_tower.get_submodule(path)(x)
        return self._run_stages(self.expr_tower, x, 0, self.num_shared_stages)

    def forward(
        self, x: torch.Tensor
    ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Both towers' stage maps.

        Args:
            x (Tensor): Images, ``(N, C, H, W)``.

        Returns:
            tuple: ``(expr_feats, lm_feats)``, each the four stage maps
            (strides 4, 8, 16, 32); the shared stages' maps are the same
            tensors in both.
        """
        x, shared = self._run_shared(x)
        _, expr = self._run_stages(self.expr_tower, x, self.num_shared_stages,
                                   NUM_STAGES)
        _, lm = self._run_stages(self.lm_tower, x, self.num_shared_stages,
                                 NUM_STAGES)
        return tuple(shared + expr), tuple(shared + lm)

    def forward_expression(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The expression tower's stage maps; the landmark tower is not run.

        Args:
            x (Tensor): Images, ``(N, C, H, W)``.

        Returns:
            tuple[Tensor]: The four stage maps (strides 4, 8, 16, 32).
        """
        x, shared = self._run_shared(x)
        _, expr = self._run_stages(self.expr_tower, x, self.num_shared_stages,
                                   NUM_STAGES)
        return tuple(shared + expr)
