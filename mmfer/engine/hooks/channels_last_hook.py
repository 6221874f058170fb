# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any, Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model
from torch.utils.hooks import RemovableHandle


def channels_last_inputs(inputs: Any) -> Any:
    """Image batches in the channels-last layout; anything else unchanged.

    Args:
        inputs (Any): A ``(N, C, H, W)`` tensor, a list or tuple of them (one
            per view), or any other model input.

    Returns:
        Any: ``inputs`` with every 4-D tensor made channels-last.
    """
    if torch.is_tensor(inputs) and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(channels_last_inputs(x) for x in inputs)
    return inputs


def _inputs_pre_hook(module: nn.Module, args: tuple, kwargs: dict):
    # mmengine's train/val/test steps call model(inputs=..., ...); direct
    # calls pass the images first.
    if 'inputs' in kwargs:
        kwargs['inputs'] = channels_last_inputs(kwargs['inputs'])
    elif args:
        args = (channels_last_inputs(args[0]), ) + tuple(args[1:])
    return args, kwargs


def convert_to_channels_last(model: nn.Module) -> RemovableHandle:
    """Put a model's weights and its input images in channels-last layout.

    Every 4-D parameter and buffer (convolution kernels) of ``model`` is
    converted in place, so that optimisers keep their references, and a
    forward pre-hook converts the images ``model`` is called with. The
    hook sits on the model's own ``forward``, the single entry of every
    mmengine step, not on its backbones: every network of a system (both
    ReSup networks, the mean teacher, LA-Net's towers and momentum
    encoder) and every view (the mirrored one included) starts from those
    images, whatever the submodules are named. A convolution with
    channels-last weights also returns channels-last maps, so tensors a
    system makes contiguous internally (LA-Net's all-gathered batch) stay
    on the fast path from the first convolution on.

    Args:
        model (nn.Module): The unwrapped model.

    Returns:
        RemovableHandle: ``handle.remove()`` stops converting the inputs.
    """
    model.to(memory_format=torch.channels_last)
    return model.register_forward_pre_hook(_inputs_pre_hook, with_kwargs=True)


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Train and evaluate in the channels-last (NHWC) memory format.

    Converts the model with :func:`convert_to_channels_last` once, before
    the first training, validation or test loop; by then the runner has
    initialised or loaded the weights (conversion keeps the values, so
    checkpoints load either way). cuDNN and oneDNN convolutions are faster
    on channels-last tensors, most of all under mixed precision on GPUs
    with tensor cores. The result equals the plain path's up to float
    rounding: only the memory layout changes.

    Use it in ``default_hooks`` (a dict, so configs and ``--cfg-options``
    add it without restating ``custom_hooks``)::

        default_hooks = dict(channels_last=dict(type='ChannelsLastHook'))
    """

    # Before the other hooks of the same stage, so that a hook that copies
    # or inspects the model sees the layout it will train in.
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._handle: Optional[RemovableHandle] = None

    def _convert(self, runner) -> None:
        if self._handle is None:
            self._handle = convert_to_channels_last(get_ori_model(
                runner.model))

    def before_train(self, runner) -> None:
        """Convert the model before training."""
        self._convert(runner)

    def before_val(self, runner) -> None:
        """Convert the model before validation (a no-op after training
        converted it)."""
        self._convert(runner)

    def before_test(self, runner) -> None:
        """Convert the model before testing."""
        self._convert(runner)
