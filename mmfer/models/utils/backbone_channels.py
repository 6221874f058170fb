# Copyright (c) OpenMMLab. All rights reserved.
"""Make any mmpretrain backbone usable by mmfer's heads from its config alone.

A user swaps the backbone of any method with one line,
``model = dict(backbone=dict(_delete_=True, type=...))``. Two things then
have to follow from the backbone instead of being restated: that it returns
feature maps (EAC's attention maps and LA-Net's towers need them, and a
pooling neck pools them), and the width of what it returns (the head's and
neck's ``in_channels``). The width is measured by a dry run when the model
is built, so a checkpoint of the built model still loads strictly.
"""
import inspect
from typing import Any, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones import ConvNeXt, VisionTransformer
from mmpretrain.registry import MODELS

# Per family: config values that make a backbone return its feature maps
# before pooling. Subclasses (e.g. DeiT of VisionTransformer) qualify.
FEATMAP_DEFAULTS = (
    (ConvNeXt, dict(gap_before_final_norm=False)),
    (VisionTransformer, dict(out_type='featmap')),
)


def registered_class(cfg: dict) -> Type:
    """The class a model config names.

    Args:
        cfg (dict): A config with ``type`` (a registered name or a class).

    Returns:
        type: The class.
    """
    kind = cfg.get('type')
    if isinstance(kind, type):
        return kind
    cls = MODELS.get(kind) if kind is not None else None
    if cls is None:
        raise KeyError(f'{kind!r} is not a registered model type; check the '
                       "spelling of the config's type, or add its package to "
                       'custom_imports.')
    return cls


def featmap_backbone_cfg(cfg: dict) -> dict:
    """Fill the family defaults that make a backbone return feature maps.

    Keys the config already sets are kept.

    Args:
        cfg (dict): A backbone config.

    Returns:
        dict: A copy with the defaults filled in.
    """
    cfg = dict(cfg)
    cls = registered_class(cfg)
    for family, defaults in FEATMAP_DEFAULTS:
        if issubclass(cls, family):
            for key, value in defaults.items():
                cfg.setdefault(key, value)
    return cfg


@torch.no_grad()
def infer_out_channels(*modules: nn.Module,
                       in_channels: int = 3,
                       size: int = 64) -> Tuple[int, ...]:
    """The channels of each output of a backbone (or backbone, then neck).

    A dry run in eval mode without gradients: the modules' modes, weights
    and buffers stay as they were.

    Args:
        *modules (nn.Module): Applied in order to a batch of zero images;
            each returns a tensor or a sequence of tensors of shape
            ``(N, C, ...)``, which the next one takes.
        in_channels (int): Image channels. Defaults to 3.
        size (int): Height and width of the dry-run image. Defaults to 64.

    Returns:
        tuple[int]: ``C`` of every output of the last module, in order.
    """
    param = next(modules[0].parameters(), None)
    kwargs = dict() if param is None else dict(
        device=param.device, dtype=param.dtype)
    modes = [module.training for module in modules]
    outs = torch.zeros(2, in_channels, size, size, **kwargs)
    try:
        for module in modules:
            module.eval()
            outs = module(outs)
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
    if torch.is_tensor(outs):
        outs = (outs, )
    return tuple(int(out.shape[1]) for out in outs)


def missing_args(cfg: Union[dict, nn.Module], names: Sequence[str]) -> list:
    """The arguments among ``names`` that a config's class takes and the
    config leaves unset.

    Args:
        cfg (dict | nn.Module): A module config (a built module never needs
            filling).
        names (Sequence[str]): Argument names.

    Returns:
        list[str]: The names to fill, in order.
    """
    if not isinstance(cfg, dict):
        return []
    params = inspect.signature(registered_class(cfg).__init__).parameters
    return [name for name in names if name in params and name not in cfg]


def fill_args(cfg: Union[dict, nn.Module],
              **values: Any) -> Union[dict, nn.Module]:
    """Set the arguments a config's class takes and the config leaves unset.

    Args:
        cfg (dict | nn.Module): A module config, or a built module
            (returned unchanged).
        **values: Values by argument name, e.g. the widths and strides of
            the features a neck receives.

    Returns:
        dict | nn.Module: The config, with those arguments filled in.
    """
    missing = missing_args(cfg, list(values))
    if missing:
        cfg = dict(cfg, **{name: values[name] for name in missing})
    return cfg


def takes_in_channels(cfg: Union[dict, nn.Module]) -> bool:
    """Whether a config builds a module whose ``__init__`` takes
    ``in_channels`` and leaves it unset.

    Args:
        cfg (dict | nn.Module): A head or neck config.

    Returns:
        bool: True where :func:`fill_in_channels` would set it.
    """
    return bool(missing_args(cfg, ['in_channels']))


def fill_in_channels(cfg: Union[dict, nn.Module],
                     channels: int) -> Union[dict, nn.Module]:
    """Set ``in_channels`` of a head or neck config that takes it and
    leaves it unset.

    Args:
        cfg (dict | nn.Module): A head or neck config, or a built module
            (returned unchanged).
        channels (int): The width of the features it receives.

    Returns:
        dict | nn.Module: The config, with ``in_channels`` filled in.
    """
    return fill_args(cfg, in_channels=channels)
