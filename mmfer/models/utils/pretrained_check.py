# Copyright (c) OpenMMLab. All rights reserved.
"""Check that ``init_cfg=dict(type='Pretrained')`` really loaded weights.

mmengine's ``Pretrained`` initialiser loads with ``strict=False`` and only
warns about missing keys, so a checkpoint whose keys do not match the model
(another prefix, another architecture) can leave a network at its random or
ImageNet initialisation with nothing but a warning in a long log; the
official ReSup script loads nothing from its MS-Celeb file this way. After
initialisation, :func:`verify_pretrained` compares every tensor of each
pretrained submodule with the checkpoint, logs how many were loaded and
stops the run when some were not.
"""
import re
from typing import Iterator, List, Mapping, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint

# mmengine's loader strips these prefixes by default (revise_keys).
_DEFAULT_REVISE = r'^module\.'
_FIX_HINT = (
    'Convert face-recognition weights with '
    'tools/model_converters/face_weights_to_mmpretrain.py and put the result '
    "on the backbone (init_cfg=dict(type='Pretrained', checkpoint=...)), or "
    'set check_pretrained=False to accept a partial load.')


def pretrained_submodules(
        module: nn.Module) -> Iterator[Tuple[str, nn.Module, dict]]:
    """The submodules of ``module`` initialised from a checkpoint.

    Args:
        module (nn.Module): A model.

    Yields:
        tuple: ``(name, submodule, cfg)`` for every submodule whose
        ``init_cfg`` (a dict or a list of dicts) has
        ``type='Pretrained'``.
    """
    for name, sub in module.named_modules():
        cfgs = getattr(sub, 'init_cfg', None)
        if isinstance(cfgs, dict):
            cfgs = [cfgs]
        for cfg in cfgs or []:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                yield name, sub, cfg


def checkpoint_tensors(cfg: dict) -> Mapping[str, torch.Tensor]:
    """The tensors a ``Pretrained`` init config loads, keyed as in the
    submodule it initialises.

    Args:
        cfg (dict): ``dict(type='Pretrained', checkpoint=..., prefix=...)``.

    Returns:
        dict[str, Tensor]: Tensors by submodule key.
    """
    checkpoint = _load_checkpoint(cfg['checkpoint'], map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    prefix = cfg.get('prefix')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        return {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
    return {re.sub(_DEFAULT_REVISE, '', k): v for k, v in state.items()}


def count_loaded(module: nn.Module,
                 tensors: Mapping[str, torch.Tensor]) -> Tuple[int, List[str]]:
    """How many of ``module``'s state tensors equal the checkpoint's.

    Args:
        module (nn.Module): The initialised submodule.
        tensors (Mapping[str, Tensor]): The checkpoint's tensors.

    Returns:
        tuple: The number of equal tensors, and the keys that are missing
        from the checkpoint or differ from it.
    """
    loaded, not_loaded = 0, []
    for key, value in module.state_dict().items():
        source = tensors.get(key)
        if (torch.is_tensor(source) and source.shape == value.shape
                and torch.equal(source.to(value), value)):
            loaded += 1
        else:
            not_loaded.append(key)
    return loaded, not_loaded


def verify_pretrained(module: nn.Module, name: str) -> List[str]:
    """Check and log what the ``Pretrained`` init configs in ``module``
    loaded.

    Call it after ``init_weights()``. Logs one line per pretrained
    submodule, e.g. ``network 0: backbone loaded 122/122 tensors from
    checkpoints/x.pth``.

    Args:
        module (nn.Module): An initialised model.
        name (str): How to call it in the log (e.g. ``'network 0'``).

    Returns:
        list[str]: The log lines.

    Raises:
        ValueError: If a submodule has tensors that are not the
            checkpoint's (missing from it, of another shape, or overwritten
            after loading), naming the first of them.
    """
    lines = []
    for sub_name, sub, cfg in pretrained_submodules(module):
        loaded, not_loaded = count_loaded(sub, checkpoint_tensors(cfg))
        total = loaded + len(not_loaded)
        where = sub_name or type(sub).__name__
        line = (f'{name}: {where} loaded {loaded}/{total} tensors from '
                f"{cfg['checkpoint']}")
        if not_loaded:
            shown = ', '.join(not_loaded[:8])
            more = f' and {len(not_loaded) - 8} more' if len(
                not_loaded) > 8 else ''
            raise ValueError(
                f'{line}; not loaded: {shown}{more}. The checkpoint does not '
                f'match {type(sub).__name__}. {_FIX_HINT}')
        print_log(line, logger='current')
        lines.append(line)
    return lines
