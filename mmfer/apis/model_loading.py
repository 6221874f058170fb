# Copyright (c) OpenMMLab. All rights reserved.
"""Build a config's model and load a trained checkpoint into it strictly.

Shared by :class:`mmfer.apis.FERInferencer` and the tools that take a
``CONFIG CHECKPOINT`` pair (ONNX export, class activation maps, the noise
report), so that they build the model as training did and refuse a
checkpoint of another model with one and the same actionable message.
"""
import ast
import copy
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Set, Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader
from mmpretrain.registry import MODELS

# How many key names a mismatch error lists per kind.
MAX_LISTED_KEYS = 10
# Checkpoints saved from a distributed wrapper prefix every key.
_WRAPPER_PREFIX = re.compile(r'^module\.')


def build_model(
        cfg: Config,
        device: Optional[Union[str, torch.device]] = None) -> BaseModel:
    """Build the config's model as mmengine's Runner does, in eval mode.

    The Runner gives the config's top-level ``data_preprocessor``
    (normalisation, channel order) to a model that names none of its own;
    without it a model would see unnormalised images.

    Args:
        cfg (Config): The config; it is not changed.
        device (str | torch.device, optional): Where to put the model.
            Defaults to None, which leaves it on the CPU.

    Returns:
        BaseModel: The model with freshly initialised weights.
    """
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    model = MODELS.build(model_cfg)
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_weights(model: torch.nn.Module,
                 checkpoint: str,
                 config_path: Optional[str] = None) -> dict:
    """Load a checkpoint into ``model``: the same keys and the same shapes.

    The file is read by mmengine's checkpoint loader, which ``import
    mmfer`` makes load local files with ``torch.load(weights_only=True)``;
    a file that needs more is refused unless ``MMFER_ALLOW_PICKLE=1`` is set
    (the tools' ``--allow-pickle``). Keys saved from a distributed wrapper
    (``module.``) are unprefixed. If the checkpoint does not fit, nothing
    tells which of its tensors were copied: discard the model.

    Args:
        model (torch.nn.Module): The config's model, e.g. from
            :func:`build_model`.
        checkpoint (str): The checkpoint path.
        config_path (str, optional): The config the model was built from,
            named in the error messages. Defaults to None.

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).

    Raises:
        FileNotFoundError: If ``checkpoint`` is no file.
        ValueError: If the checkpoint holds no state dict, or its tensors
            do not fit the model; the message names both files and the
            missing, unexpected and differently shaped keys.
        mmfer.utils.compat.checkpoint_loading.UnsafeCheckpointError: If the
            file needs full unpickling and ``MMFER_ALLOW_PICKLE`` is not
            set.
    """
    if not osp.isfile(osp.expanduser(checkpoint)):
        run = f'of {config_path} ' if config_path else ''
        raise FileNotFoundError(
            f'checkpoint {checkpoint} not found; pass the .pth file a '
            f'training run {run}wrote (e.g. <work_dir>/epoch_N.pth).')
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = loaded.get('state_dict', loaded) if isinstance(loaded,
                                                           Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError(
            f'checkpoint {checkpoint} holds a {type(loaded).__name__}, not a '
            "state dict nor a dict with 'state_dict'; pass a .pth file that "
            'mmengine (training with an mmfer config) or torch.save('
            'model.state_dict()) wrote.')
    problems = load_fitting(model, state)
    if problems:
        trained = _trained_model_type(loaded)
        trained = f' (trained model: {trained})' if trained else ''
        config = f'of config {config_path} ' if config_path else ''
        raise ValueError(
            f'checkpoint {checkpoint}{trained} does not fit the model '
            f'{config}({type(model).__name__}): ' + '; '.join(problems) +
            '. Pass the config the checkpoint was trained with (the '
            "training run's work_dir holds a copy).")
    meta = loaded.get('meta')
    return meta if isinstance(meta, dict) else {}


def load_fitting(model: torch.nn.Module,
                  state: Mapping[str, torch.Tensor]) -> List[str]:
    """Copy the tensors of ``state`` that fit into ``model``; describe the
    ones that do not.

    Tensors of another shape are left out of the copy, so that torch
    reports the missing and unexpected keys as well instead of stopping at
    the first size mismatch.

    Args:
        model (torch.nn.Module): The model.
        state (Mapping[str, torch.Tensor]): The checkpoint's state dict.

    Returns:
        list[str]: One description per kind of mismatch; empty if the
        checkpoint fits.
    """
    own = model.state_dict()
    # Module versions, which e.g. BatchNorm reads to load old checkpoints.
    metadata = getattr(state, '_metadata', None)
    state = OrderedDict(
        (_WRAPPER_PREFIX.sub('', key), value) for key, value in state.items())
    resizable = _resizable_keys(model)

    def differs(key: str, value: torch.Tensor) -> bool:
        # a per-sample bank's number of rows (dim 0) may differ
        first = 1 if key in resizable else 0
        return value.shape[first:] != own[key].shape[first:]

    resized = [
        key for key, value in state.items() if key in own
        and isinstance(value, torch.Tensor) and differs(key, value)
    ]
    fitting = OrderedDict(
        (key, value) for key, value in state.items() if key not in resized)
    if metadata is not None:
        fitting._metadata = metadata
    result = model.load_state_dict(fitting, strict=False)
    missing = [key for key in result.missing_keys if key not in resized]
    problems = []
    if missing:
        problems.append('missing keys (in the model, not in the checkpoint):'
                        f' {_listed(missing)}')
    if result.unexpected_keys:
        problems.append('unexpected keys (in the checkpoint, not in the '
                        f'model): {_listed(result.unexpected_keys)}')
    if resized:
        shapes = [
            f'{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}'
            for key in resized
        ]
        problems.append('size mismatch (checkpoint vs model shape): ' +
                        _listed(shapes))
    return problems


def _resizable_keys(model: torch.nn.Module) -> Set[str]:
    """The state keys whose number of rows follows the data (per-sample
    banks), which a module names in its ``RESIZABLE_BUFFERS`` and resizes
    to the checkpoint's when loading; only their other dimensions must
    match.

    Args:
        model (torch.nn.Module): The model.

    Returns:
        set[str]: Their keys in ``model``'s state dict.
    """
    return {
        f'{name}.{buffer}' if name else buffer
        for name, module in model.named_modules()
        for buffer in getattr(module, 'RESIZABLE_BUFFERS', ())
    }


def _listed(items: Sequence[str]) -> str:
    """The first :data:`MAX_LISTED_KEYS` items and how many more there
    are."""
    shown = ', '.join(items[:MAX_LISTED_KEYS])
    more = len(items) - MAX_LISTED_KEYS
    return f'{shown} (and {more} more)' if more > 0 else shown


def _trained_model_type(loaded: Mapping) -> Optional[str]:
    """The model type in the config text that mmengine's Runner records in
    a checkpoint's ``meta['cfg']``, if it names one.

    The text is parsed, not executed: it comes from the checkpoint, which
    was loaded without trusting it.

    Args:
        loaded (Mapping): The loaded checkpoint.

    Returns:
        str | None: e.g. ``'ImageClassifier'``; None if unknown.
    """
    meta = loaded.get('meta')
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'model'
                for t in node.targets)):
            return _dict_call_type(node.value)
    return None


def _dict_call_type(node: ast.expr) -> Optional[str]:
    """``'X'`` of a ``dict(type='X', ...)`` or ``{'type': 'X', ...}`` node.

    Args:
        node (ast.expr): The value assigned to ``model``.

    Returns:
        str | None: The type string, or None if it is not a literal.
    """
    pairs: Dict[str, ast.expr] = {}
    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'dict':
        pairs = {kw.arg: kw.value for kw in node.keywords if kw.arg}
    elif isinstance(node, ast.Dict):
        pairs = {
            key.value: value
            for key, value in zip(node.keys, node.values)
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
        }
    value = pairs.get('type')
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None
