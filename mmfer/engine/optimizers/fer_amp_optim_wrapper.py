# Copyright (c) OpenMMLab. All rights reserved.
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS

DTYPES = ('bfloat16', 'float16')


def parameter_device(optimizer: torch.optim.Optimizer) -> torch.device:
    """The device of the first parameter an optimiser updates.

    Args:
        optimizer (torch.optim.Optimizer): The optimiser.

    Returns:
        torch.device: Where the model's parameters live.
    """
    for group in optimizer.param_groups:
        for param in group['params']:
            return param.device
    raise ValueError(
        f'{type(optimizer).__name__} has no parameters: FERAmpOptimWrapper '
        'autocasts on the device of the parameters it updates; build it '
        'for a model with trainable parameters.')


def build_grad_scaler(loss_scale: Union[str, float, dict], device_type: str,
                      enabled: bool) -> torch.amp.GradScaler:
    """A gradient scaler configured like mmengine's ``AmpOptimWrapper``.

    Args:
        loss_scale (str | float | dict): ``'dynamic'``, a static scale, or
            ``GradScaler`` keyword arguments.
        device_type (str): Device type of the gradients, e.g. ``'cuda'``.
        enabled (bool): False gives a scaler that leaves the loss and the
            optimiser step as they are and holds no state.

    Returns:
        torch.amp.GradScaler: The scaler.
    """
    if loss_scale == 'dynamic':
        kwargs = dict()
    elif isinstance(loss_scale, (int, float)):
        kwargs = dict(init_scale=float(loss_scale))
    elif isinstance(loss_scale, dict):
        kwargs = dict(loss_scale)
    else:
        raise TypeError(f"loss_scale={loss_scale!r} must be 'dynamic', a "
                        'number (static scale) or a dict of GradScaler '
                        'arguments.')
    return torch.amp.GradScaler(device_type, enabled=enabled, **kwargs)


@OPTIM_WRAPPERS.register_module()
class FERAmpOptimWrapper(AmpOptimWrapper):
    """Mixed precision on the device the model is on, CPU included.

    mmengine's :class:`AmpOptimWrapper` refuses to be built without a GPU
    (or NPU/MLU/MUSA) and autocasts on the default device. This wrapper
    autocasts on the device of the parameters it updates, so that the same
    config trains in bfloat16 on a CPU and on a GPU. Everything that runs
    in ``optim_context`` is autocast: for mmfer's systems that is the data
    preprocessor and the whole ``loss``, extra forwards included (the mean
    teacher, ReSup's second network, LA-Net's momentum encoder), because
    ``train_step`` runs both inside it.

    - ``dtype='bfloat16'``: no loss scaling. bfloat16 has float32's
      exponent range, so gradients do not underflow; the optimiser state
      and the checkpoints are those of a plain :class:`OptimWrapper`, and a
      run can resume across the switch in either direction.
    - ``dtype='float16'``: autocast with dynamic (or ``loss_scale``) loss
      scaling, as ``AmpOptimWrapper`` on CUDA; the scaler's state is saved
      in checkpoints. Refused on a CPU, as by mmengine's own autocast:
      CPU autocast is made for bfloat16.

    Args:
        dtype (str): ``'bfloat16'`` or ``'float16'``. Defaults to
            ``'bfloat16'``.
        loss_scale (str | float | dict): Loss scaling of ``float16``:
            ``'dynamic'``, a static scale, or ``torch.amp.GradScaler``
            arguments; ``bfloat16`` needs none and ignores it. Defaults to
            ``'dynamic'``.
        **kwargs: Arguments of :class:`mmengine.optim.OptimWrapper`
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).

    Examples:
        >>> optim_wrapper = dict(
        ...     type='FERAmpOptimWrapper', dtype='bfloat16',
        ...     optimizer=dict(type='Adam', lr=1e-3))
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 **kwargs) -> None:
        if dtype not in DTYPES:
            raise ValueError(f'optim_wrapper.dtype={dtype!r} must be one of '
                             f'{DTYPES}.')
        # AmpOptimWrapper.__init__ asserts an accelerator; its scaled
        # backward, step and scaler checkpointing are reused as they are.
        OptimWrapper.__init__(self, **kwargs)
        self.device_type = parameter_device(self.optimizer).type
        self.cast_dtype = getattr(torch, dtype)
        self._check_device_supports(dtype)
        use_scaler = dtype == 'float16'
        self._scale_update_param = (float(loss_scale) if use_scaler
                                    and isinstance(loss_scale,
                                                   (int, float)) else None)
        self.loss_scaler = build_grad_scaler(loss_scale, self.device_type,
                                             use_scaler)

    def _check_device_supports(self, dtype: str) -> None:
        if dtype == 'float16' and self.device_type == 'cpu':
            raise ValueError(
                "optim_wrapper.dtype='float16' needs a GPU, but the model is "
                "on the CPU: use dtype='bfloat16' (CPU autocast runs "
                'bfloat16, which needs no loss scaling).')
        if (dtype == 'bfloat16' and self.device_type == 'cuda'
                and not torch.cuda.is_bf16_supported()):
            raise ValueError(
                "optim_wrapper.dtype='bfloat16' is not supported by this GPU "
                "(before Ampere): use dtype='float16'.")

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast to ``dtype`` on the parameters' device, inside
        :class:`OptimWrapper`'s gradient-accumulation context.

        Args:
            model (nn.Module): The training model.
        """
        with OptimWrapper.optim_context(self, model), torch.autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield

    def state_dict(self) -> dict:
        """The optimiser state, and the loss scaler's for ``float16``.

        Returns:
            dict: The optimiser's state dict, with a ``loss_scaler`` entry
            when the scaler is in use.
        """
        state = super().state_dict()
        if not self.loss_scaler.is_enabled():
            # bfloat16 checkpoints stay plain OptimWrapper checkpoints.
            state.pop('loss_scaler')
        return state
