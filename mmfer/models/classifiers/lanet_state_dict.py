# Copyright (c) OpenMMLab. All rights reserved.
"""Load checkpoints that :class:`LANetClassifier` wrote before its history
bank, queues and momentum encoder became parts of their own."""
import logging
from typing import Sequence

import torch
from mmengine.logging import print_log

# Buffers once at the classifier's top level, by their new names.
RENAMED_BUFFERS = dict(
    label_history='label_history.rows',
    history_seen='label_history.seen',
    queue_u='queue.u',
    queue_v='queue.v',
    queue_labels='queue.labels',
    queue_ptr='queue.ptr')


def upgrade_lanet_state_dict(state_dict: dict, prefix: str,
                             momentum_modules: Sequence[str]) -> None:
    """Rename an old LA-Net checkpoint's keys in place.

    The bank and queue buffers move into their modules; the momentum
    encoder, once a plain ``ModuleDict`` of ``momentum_modules``, is now an
    mmengine averaged model (``module.`` prefix, an update count, which an
    encoder that was copied from the online modules has passed once).

    Args:
        state_dict (dict): The state dict being loaded.
        prefix (str): The classifier's key prefix.
        momentum_modules (Sequence[str]): Names of the online modules the
            momentum encoder follows.
    """
    for old, new in RENAMED_BUFFERS.items():
        if prefix + old in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
    encoder = prefix + 'momentum_encoder.'
    parts = tuple(f'{encoder}{name}.' for name in momentum_modules)
    moved = [key for key in state_dict if key.startswith(parts)]
    for key in moved:
        state_dict[encoder + 'module.' + key[len(encoder):]] = \
            state_dict.pop(key)
    if moved:
        state_dict.setdefault(encoder + 'steps', torch.tensor(1))
    drop_heatmap_bias(state_dict, prefix)


def drop_heatmap_bias(state_dict: dict, prefix: str) -> None:
    """Drop the heatmap conv bias that mmfer's LandmarkFPN had before it
    followed the official bias-free ``lm_fc`` (online and momentum copy).

    The expression path, hence every prediction, does not use it; the
    landmark heatmaps of such a checkpoint shift by the dropped bias.

    Args:
        state_dict (dict): The state dict being loaded.
        prefix (str): The classifier's key prefix.
    """
    old = [
        key for key in state_dict
        if key.startswith(prefix) and key.endswith('heatmap_conv.bias')
    ]
    for key in old:
        state_dict.pop(key)
    if old:
        print_log(
            'LANetClassifier: this checkpoint was written with a heatmap '
            'conv bias, which the official LA-Net does not have; it is '
            'dropped (predictions do not use it).',
            logger='current',
            level=logging.WARNING)
