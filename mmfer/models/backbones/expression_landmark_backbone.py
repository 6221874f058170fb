# Copyright (c) OpenMMLab. All rights reserved.
"""Two towers of one backbone that share the stem and the first stages.

LA-Net's ``Landmark_ResNet`` runs the ResNet stem and ``layer1`` once, then
an expression tower (``layer2-4``, classified) and a landmark tower (its own
``layer2-4``, fed to a landmark FPN). Its pretrained loader copies the
checkpoint's ``layer2-4`` into both towers.

:class:`ExpressionLandmarkBackbone` gets the same network from any
mmpretrain backbone that returns feature maps: it builds the config twice,
so a ``Pretrained`` ``init_cfg`` initialises both towers from one
checkpoint, and removes the shared modules from the landmark tower, so each
shared parameter exists once (one state-dict key, one optimizer entry, one
gradient). A :class:`TowerLayout` says how a family's ``forward`` splits
into a stem and stages; a backbone of no known family is used whole, twice.
"""
import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.backbones import (ConvNeXt, EfficientNet, MobileNetV3,
                                         ResNet, VisionTransformer)
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS

from ..utils.backbone_channels import featmap_backbone_cfg, registered_class

# The official layout's stages: strides 4, 8, 16 and 32.
NUM_STAGES = 4
ALL_STAGES = tuple(range(NUM_STAGES))
# Side of the zero image that measures each stage's channels and stride;
# a multiple of 32, so stride-32 maps are still 2x2 and strides are exact.
PROBE_SIZE = 64

Stage = Tuple[Tuple[str, ...], Optional[str]]


@dataclass(frozen=True)
class TowerLayout:
    """How a backbone's ``forward`` runs, as submodule paths.

    Stage ``i`` is what the backbone's ``out_indices`` calls ``i``. The
    default methods run convolutional backbones, whose state between
    stages is a feature map.

    Args:
        stem (tuple[str]): Modules run in order on the image before stage 0.
        stages (tuple): Per stage, ``(body, out_norm)``: the modules run in
            order on the previous stage's state, and the norm applied to the
            stage's output map only (the next stage continues from the
            un-normalised state), or None.
        outputs (tuple[int]): The stages whose maps ``forward`` returns.
        stem_params (tuple[str]): Parameters of the backbone itself (not of
            a submodule) that the stem uses; shared like the stem.
    """
    stem: Tuple[str, ...]
    stages: Tuple[Stage, ...]
    outputs: Tuple[int, ...]
    stem_params: Tuple[str, ...] = ()

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

    def run_stem(self, tower: nn.Module, x: torch.Tensor) -> Any:
        """The stem on images; returns the state stage 0 takes."""
        for path in self.stem:
            x = tower.get_submodule(path)(x)
        return x

    def run_stage(self, tower: nn.Module, index: int, state: Any) -> Any:
        """Stage ``index`` on the previous stage's state."""
        for path in self.stages[index][0]:
            state = tower.get_submodule(path)(state)
        return state

    def output(self, tower: nn.Module, index: int,
               state: Any) -> Tuple[torch.Tensor, ...]:
        """The maps stage ``index`` returns from its state."""
        out_norm = self.stages[index][1]
        return (tower.get_submodule(out_norm)(state) if out_norm else state, )


class VisionTransformerLayout(TowerLayout):
    """A ViT's ``forward``: the state is ``(tokens, patch_resolution)``;
    the stem embeds patches and adds the class token and the position
    embedding; stage ``i`` is ``layers.i``; the final norm (``ln1``) ends
    the last stage; maps are the patch tokens (``out_type='featmap'``)."""

    def run_stem(self, tower: VisionTransformer, x: torch.Tensor) -> Any:
        x, patch_resolution = tower.get_submodule('patch_embed')(x)
        if tower.cls_token is not None:
            x = torch.cat((tower.cls_token.expand(x.shape[0], -1, -1), x),
                          dim=1)
        x = x + resize_pos_embed(
            tower.pos_embed,
            tower.patch_resolution,
            patch_resolution,
            mode=tower.interpolate_mode,
            num_extra_tokens=tower.num_extra_tokens)
        x = tower.get_submodule('drop_after_pos')(x)
        return tower.get_submodule('pre_norm')(x), patch_resolution

    def run_stage(self, tower: VisionTransformer, index: int,
                  state: Any) -> Any:
        tokens, patch_resolution = state
        return super().run_stage(tower, index, tokens), patch_resolution

    def output(self, tower: VisionTransformer, index: int,
               state: Any) -> Tuple[torch.Tensor, ...]:
        tokens, patch_resolution = state
        tokens = super().output(tower, index, tokens)[0]
        return (tower._format_output(tokens, patch_resolution), )


class WholeLayout(TowerLayout):
    """A backbone that cannot be split: one stage, the backbone's own
    ``forward``, returning all its maps."""

    def run_stage(self, tower: nn.Module, index: int, state: Any) -> Any:
        return tower(state)

    def output(self, tower: nn.Module, index: int,
               state: Any) -> Tuple[torch.Tensor, ...]:
        return tuple(state) if isinstance(state, (tuple, list)) else (state, )


def stage_outputs(tower: nn.Module, num_stages: int) -> Tuple[int, ...]:
    """The backbone's ``out_indices``, made non-negative."""
    return tuple(
        sorted(
            {int(i) % num_stages
             for i in getattr(tower, 'out_indices', ())}))


def resnet_layout(tower: ResNet) -> TowerLayout:
    """The layout of ``ResNet.forward``: stem, maxpool, ``layer1-4``."""
    if tower.deep_stem:
        stem = ('stem', 'maxpool')
    else:
        stem = ('conv1', tower.norm1_name, 'relu', 'maxpool')
    stages = tuple(((name, ), None) for name in tower.res_layers)
    return TowerLayout(stem, stages, stage_outputs(tower, len(stages)))


def convnext_layout(tower: ConvNeXt) -> TowerLayout:
    """The layout of ``ConvNeXt.forward`` with ``gap_before_final_norm``
    off: ``downsample_layers[0]`` is the stem, stage ``i`` is
    ``downsample_layers[i]`` (``i > 0``) and ``stages[i]``, and ``norm{i}``
    normalises the output map."""
    stages = []
    for i in range(tower.num_stages):
        downsample = (f'downsample_layers.{i}', ) if i > 0 else ()
        stages.append((downsample + (f'stages.{i}', ), f'norm{i}'))
    return TowerLayout(('downsample_layers.0', ), tuple(stages),
                       stage_outputs(tower, len(stages)))


def layer_list_layout(tower: nn.Module) -> TowerLayout:
    """The layout of MobileNetV3's and EfficientNet's ``forward``: no stem,
    stage ``i`` is layer ``i`` (``layer{i}`` / ``layers.{i}``)."""
    names = [
        name if isinstance(name, str) else f'layers.{i}'
        for i, name in enumerate(tower.layers)
    ]
    stages = tuple(((name, ), None) for name in names)
    return TowerLayout((), stages, stage_outputs(tower, len(stages)))


def vit_layout(tower: VisionTransformer) -> TowerLayout:
    """The layout of ``VisionTransformer.forward`` (see
    :class:`VisionTransformerLayout`)."""
    num_layers = len(tower.layers)
    final_norm = 'ln1' if tower.final_norm else None
    stages = tuple(
        ((f'layers.{i}', ), final_norm if i == num_layers - 1 else None)
        for i in range(num_layers))
    stem_params = tuple(
        name for name in ('cls_token', 'pos_embed')
        if getattr(tower, name) is not None)
    return VisionTransformerLayout(
        ('patch_embed', 'drop_after_pos', 'pre_norm'), stages,
        stage_outputs(tower, num_layers), stem_params)


def whole_layout(tower: nn.Module) -> TowerLayout:
    """One stage: the whole backbone, all its outputs."""
    return WholeLayout((), (((), None), ), (0, ))


@dataclass(frozen=True)
class BackboneFamily:
    """How to configure and lay out one family of backbones.

    Args:
        base (type): The family's class; subclasses qualify when they keep
            its ``forward``.
        layout (Callable): Built tower -> :class:`TowerLayout`.
        defaults (dict): Config values set when the config leaves them out.
        all_outputs (bool): Whether every stage's map must be returned (the
            official layout: the FPN fuses all four); otherwise only the
            last stage's, so that no parameter goes unused.
        stride_outputs (bool): Without ``out_indices`` in the config, return
            the last stage at each stride from 4 on.
    """
    base: Optional[Type[nn.Module]]
    layout: Callable[[nn.Module], TowerLayout]
    defaults: Dict[str, object]
    all_outputs: bool = False
    stride_outputs: bool = False


FAMILIES = (
    BackboneFamily(
        ResNet, resnet_layout, dict(out_indices=ALL_STAGES), all_outputs=True),
    BackboneFamily(
        ConvNeXt,
        convnext_layout,
        dict(out_indices=ALL_STAGES),
        all_outputs=True),
    BackboneFamily(MobileNetV3, layer_list_layout, {}, stride_outputs=True),
    BackboneFamily(EfficientNet, layer_list_layout, {}, stride_outputs=True),
    BackboneFamily(VisionTransformer, vit_layout, {}),
)
# Any other backbone that returns feature maps: two whole copies.
WHOLE = BackboneFamily(None, whole_layout, {})
SPLIT = ('ResNet (and subclasses that keep ResNet.forward, e.g. ResNetV1c, '
         'FaceResNet), ConvNeXt, MobileNetV3, EfficientNet or '
         'VisionTransformer')


def find_family(cfg: dict) -> BackboneFamily:
    """The family of a backbone config.

    Args:
        cfg (dict): A backbone config with ``type``.

    Returns:
        BackboneFamily: Its family, or :data:`WHOLE` for a backbone that
        cannot be split.
    """
    backbone_type = cfg.get('type')
    cls = MODELS.get(backbone_type) if isinstance(backbone_type,
                                                  str) else backbone_type
    for family in FAMILIES:
        if (isinstance(cls, type) and issubclass(cls, family.base)
                and cls.forward is family.base.forward):
            return family
    return WHOLE


def check_featmap_keys(cfg: dict, user_cfg: dict) -> None:
    """Refuse config values that pool the backbone's feature maps.

    Args:
        cfg (dict): The config with the feature-map defaults filled in.
        user_cfg (dict): The config as given.

    Raises:
        ValueError: Naming the key and the value it needs.
    """
    for key, value in featmap_backbone_cfg(dict(type=cfg['type'])).items():
        if key != 'type' and cfg[key] != value:
            raise ValueError(
                'ExpressionLandmarkBackbone needs feature maps, but '
                f'backbone.{key}={user_cfg[key]!r} ({cfg["type"]}) pools '
                f'them; remove the key or set it to {value!r}.')


@torch.no_grad()
def probe_shapes(tower: nn.Module,
                 layout: TowerLayout) -> List[List[torch.Size]]:
    """The shapes of every stage's maps on a zero ``PROBE_SIZE`` image.

    Runs in eval mode without gradients, so weights and buffers (e.g.
    BatchNorm statistics) stay as they were; the mode is restored.

    Returns:
        list[list[torch.Size]]: Per stage, the shapes of its maps.
    """
    mode = tower.training
    tower.eval()
    try:
        state = layout.run_stem(tower, torch.zeros(1, 3, PROBE_SIZE,
                                                   PROBE_SIZE))
        shapes = []
        for i in range(len(layout.stages)):
            state = layout.run_stage(tower, i, state)
            shapes.append([m.shape for m in layout.output(tower, i, state)])
    finally:
        tower.train(mode)
    return shapes


def last_at_each_stride(shapes: Sequence[Sequence[torch.Size]]) -> List[int]:
    """The last stage at each stride from 4 on (e.g. MobileNetV3-small:
    layers 1, 3, 8, 12 at strides 4, 8, 16, 32)."""
    strides = [PROBE_SIZE // maps[0][-1] for maps in shapes]
    return [
        i for i, stride in enumerate(strides)
        if stride >= 4 and (i + 1 == len(strides) or strides[i + 1] != stride)
    ]


def check_layout(tower: nn.Module, family: BackboneFamily, layout: TowerLayout,
                 shapes: Sequence[Sequence[torch.Size]]) -> None:
    """Check that a built tower returns feature maps that use all of it.

    Raises:
        ValueError: Naming the config key that asks otherwise.
    """
    name = type(tower).__name__
    num_stages = len(layout.stages)
    if family.all_outputs and num_stages != NUM_STAGES:
        key = 'num_stages' if family.base is ResNet else 'arch'
        raise ValueError(
            f'ExpressionLandmarkBackbone needs the {NUM_STAGES} stages '
            f'(strides 4-32) of {name}; remove backbone.{key} or give it '
            f'{NUM_STAGES} stages.')
    needed = range(num_stages) if family.all_outputs else [num_stages - 1]
    if not set(needed) <= set(layout.outputs):
        what = 'all stage maps' if family.all_outputs else (
            'the last stage (the later ones would go unused)')
        raise ValueError(
            f'ExpressionLandmarkBackbone uses {what} of {name}, but '
            f'backbone.out_indices={tuple(tower.out_indices)}; remove the key '
            f'or include {tuple(needed)}.')
    for i in layout.outputs:
        for shape in shapes[i]:
            if len(shape) != 4:
                raise ValueError(
                    f'ExpressionLandmarkBackbone needs feature maps '
                    f'(N, C, H, W), but {name} returns shape '
                    f'{tuple(shape)}; configure it to return feature maps or '
                    f'use {SPLIT}.')


def check_num_shared_stages(num_shared_stages: int, num_stages: int,
                            name: str) -> None:
    """Check that the towers keep at least one stage of their own.

    Raises:
        ValueError: With the valid range, or the hint for whole copies.
    """
    if 0 <= num_shared_stages < num_stages:
        return
    hint = (f' ExpressionLandmarkBackbone cannot split {name} into a stem '
            'and stages and uses two whole copies: set num_shared_stages=0, '
            f'or use {SPLIT}.' if num_stages == 1 else '')
    raise ValueError(
        f'num_shared_stages={num_shared_stages} must be in '
        f'[0, {num_stages - 1}]: with {num_stages} the towers would be one '
        f'network.{hint}')


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


def share_parameters(source: nn.Module, target: nn.Module,
                     names: Sequence[str]) -> None:
    """Make ``target``'s own parameters ``names`` plain references to
    ``source``'s: unregistered in ``target``, so they exist once, but still
    there for ``target``'s own methods (its ``forward``, freezing, its
    checkpoint-loading hooks)."""
    for name in names:
        delattr(target, name)
        object.__setattr__(target, name, getattr(source, name))


@MODELS.register_module()
class ExpressionLandmarkBackbone(BaseModule):
    """LA-Net's two-tower backbone with a shared stem and first stages.

    The expression tower and the landmark tower are two builds of
    ``backbone``; the landmark tower's stem and first ``num_shared_stages``
    stages are the expression tower's modules (:class:`SharedModule`) and
    run once per forward. Stage ``i`` is what the backbone's
    ``out_indices`` calls ``i``. With ResNet-18 and ``num_shared_stages=1``
    this is the official LA-Net backbone: shared ``conv1``/``bn1``/
    ``layer1``, two ``layer2-4``.

    What is shared per family, and why (LA-Net shares the low-level
    features, so that the landmark loss shapes what the expression tower
    builds on, and splits where the features become task-specific):

    - ResNet: the stem (``conv1``, norm, maxpool) and ``layer1..k``;
      ``out_indices`` default to the four stages, all required.
    - ConvNeXt: the stem (``downsample_layers.0``) and stages ``0..k-1``
      with their downsampling layers and output norms; four stages, all
      returned, as for ResNet.
    - MobileNetV3, EfficientNet: no separate stem; layers ``0..k-1`` (the
      first is the stride-2 stem conv). ``out_indices`` default to the last
      layer at each stride 4, 8, 16 and 32 (MobileNetV3-small: layers 1, 3,
      8, 12; EfficientNet-b0: 2, 3, 4, 6), so the expression tower ends
      with the family's usual final conv; ``num_shared_stages`` 2 and 3
      share up to the stride-4 map as LA-Net does.
    - VisionTransformer (e.g. DeiT, ``out_type='featmap'``, the default
      here): the patch embedding, the class token, the position embedding
      and ``layers.0..k-1``: a ViT has one scale, so the split is by depth,
      the first blocks being the low-level ones. ``out_indices`` default to
      the last block (one stride-16 map); the landmark neck upsamples it.
    - Any other backbone whose ``forward`` returns feature maps: two whole
      copies, nothing shared (``num_shared_stages=0``), since its
      ``forward`` cannot be split without knowing its structure.

    The wrapped backbone's ``frozen_stages`` and ``norm_eval`` keep their
    meaning: ``train()`` reaches both towers' own ``train()``. A
    ``Pretrained`` ``init_cfg`` on ``backbone`` loads into both towers; the
    landmark tower's load reports the shared keys as unexpected (the
    expression tower loads them).

    Args:
        backbone (dict): An mmpretrain backbone config. Feature-map
            defaults (ConvNeXt's ``gap_before_final_norm=False``, a ViT's
            ``out_type='featmap'``) are filled in; values that pool the maps
            are refused.
        num_shared_stages (int): Stages after the stem shared by the towers,
            from 0 to the number of stages - 1. Defaults to 1 (LA-Net).
        init_cfg (dict, optional): Initialisation config of the wrapper.
            Defaults to None.

    Attributes:
        expr_channels (tuple[int]): Channels of the expression maps.
        lm_channels (tuple[int]): Channels of the landmark maps.
        expr_strides (tuple[int]): Stride of each expression map relative
            to the input image.
        lm_strides (tuple[int]): Stride of each landmark map.

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
        >>> model.lm_strides
        (4, 8, 16, 32)
        >>> expr_feats[0] is lm_feats[0]
        True
    """

    def __init__(self,
                 backbone: dict,
                 num_shared_stages: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        family = find_family(backbone)
        cfg = featmap_backbone_cfg(
            dict(copy.deepcopy(family.defaults), **backbone))
        check_featmap_keys(cfg, backbone)
        self.expr_tower = MODELS.build(copy.deepcopy(cfg))
        self.lm_tower = MODELS.build(copy.deepcopy(cfg))
        self.layout = family.layout(self.expr_tower)
        shapes = probe_shapes(self.expr_tower, self.layout)
        if family.stride_outputs and 'out_indices' not in backbone:
            for tower in (self.expr_tower, self.lm_tower):
                tower.out_indices = last_at_each_stride(shapes)
            self.layout = family.layout(self.expr_tower)
        check_layout(self.expr_tower, family, self.layout, shapes)
        check_num_shared_stages(num_shared_stages, len(self.layout.stages),
                                type(self.expr_tower).__name__)
        self.num_shared_stages = num_shared_stages
        # a whole copy's layout has no stem: nothing is shared
        share_modules(self.expr_tower, self.lm_tower,
                      self.layout.shared_paths(num_shared_stages))
        share_parameters(self.expr_tower, self.lm_tower,
                         self.layout.stem_params)
        maps = [shape for i in self.layout.outputs for shape in shapes[i]]
        # one config builds both towers, so their maps match
        self.expr_channels = self.lm_channels = tuple(
            int(shape[1]) for shape in maps)
        self.expr_strides = self.lm_strides = tuple(
            PROBE_SIZE // int(shape[-1]) for shape in maps)

    def _run_stages(self, tower: nn.Module, state: Any, start: int,
                    stop: int) -> Tuple[Any, List[torch.Tensor]]:
        """Run stages ``start..stop-1`` of ``tower`` on ``state``.

        Returns:
            tuple: The last stage's state (the next stage's input) and the
            maps of the stages in ``layout.outputs``.
        """
        outs = []
        for i in range(start, stop):
            state = self.layout.run_stage(tower, i, state)
            if i in self.layout.outputs:
                outs.extend(self.layout.output(tower, i, state))
        return state, outs

    def _run_shared(self, x: torch.Tensor) -> Tuple[Any, List[torch.Tensor]]:
        """Run the stem and the shared stages once."""
        state = self.layout.run_stem(self.expr_tower, x)
        return self._run_stages(self.expr_tower, state, 0,
                                self.num_shared_stages)

    def _run_tower(self, tower: nn.Module, state: Any) -> List[torch.Tensor]:
        """The maps of ``tower``'s own stages, from the shared ``state``."""
        return self._run_stages(tower, state, self.num_shared_stages,
                                len(self.layout.stages))[1]

    def forward(
        self, x: torch.Tensor
    ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Both towers' maps.

        Args:
            x (Tensor): Images, ``(N, C, H, W)``.

        Returns:
            tuple: ``(expr_feats, lm_feats)``, each the maps of the output
            stages, finest first (ResNet: strides 4, 8, 16, 32); the shared
            stages' maps are the same tensors in both.
        """
        state, shared = self._run_shared(x)
        expr = self._run_tower(self.expr_tower, state)
        lm = self._run_tower(self.lm_tower, state)
        return tuple(shared + expr), tuple(shared + lm)

    def forward_expression(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The expression tower's maps; the landmark tower is not run.

        Args:
            x (Tensor): Images, ``(N, C, H, W)``.

        Returns:
            tuple[Tensor]: The maps of the output stages, finest first.
        """
        state, shared = self._run_shared(x)
        return tuple(shared + self._run_tower(self.expr_tower, state))


def towers_cfg(backbone: dict, towers: Optional[dict] = None) -> dict:
    """The :class:`ExpressionLandmarkBackbone` config of a system's
    ``backbone`` (a plain one, or already the towers) and ``towers``.

    Args:
        backbone (dict): ``model.backbone``.
        towers (dict, optional): :class:`ExpressionLandmarkBackbone`
            arguments for a plain ``backbone``. Defaults to None.

    Returns:
        dict: The towers' config.
    """
    if issubclass(registered_class(backbone), ExpressionLandmarkBackbone):
        if towers:
            raise ValueError(
                'towers configures the ExpressionLandmarkBackbone built '
                'around a plain backbone; with backbone=dict(type='
                "'ExpressionLandmarkBackbone', ...) set its arguments there.")
        return backbone
    return dict(
        type='ExpressionLandmarkBackbone', backbone=backbone,
        **(towers or {}))
