# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.pretrained_check import verify_pretrained

PreprocessorCfg = Optional[Union[dict, nn.Module]]


def build_data_preprocessor(cfg: PreprocessorCfg = None,
                            default: Optional[nn.Module] = None) -> nn.Module:
    """Build the data preprocessor of an mmfer model.

    Args:
        cfg (dict | nn.Module, optional): A config (``type`` defaults to
            ``'FERDataPreprocessor'``, which also normalises multi-view
            batches) or a built module.
        default (nn.Module, optional): Used when ``cfg`` is None, e.g. the
            preprocessor of a system's member network. Defaults to None, a
            default ``FERDataPreprocessor``.

    Returns:
        nn.Module: The data preprocessor.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if cfg is None and default is not None:
        return default
    cfg = dict(cfg or {})
    cfg.setdefault('type', 'FERDataPreprocessor')
    return MODELS.build(cfg)


def member_backbone(own: Optional[dict], system: Optional[dict],
                    member: str) -> dict:
    """The backbone config of a system's member network.

    Args:
        own (dict, optional): The member's ``backbone``: a whole config (with
            ``type``), keys to change in the system's (without), or None.
        system (dict, optional): The system's ``model.backbone``.
        member (str): The member's type, named in the error.

    Returns:
        dict: A config the member owns (never the system's object).
    """
    if own is not None and 'type' in own:
        return copy.deepcopy(own)
    if system is None:
        raise KeyError(
            f'A member network ({member}) has no backbone type and the '
            'system no backbone to give it: set model.backbone.')
    return dict(copy.deepcopy(system), **copy.deepcopy(own or {}))


class FERSystem(BaseModel):
    """Base of mmfer's systems that train several networks or branches.

    :class:`MeanTeacherClassifier`, :class:`CoTeachingClassifier` and
    :class:`LANetClassifier` compose plain modules; this base builds their
    data preprocessor and member networks, checks after initialisation that
    every ``Pretrained`` init config loaded its whole checkpoint, and gives
    them mmengine's ``forward`` modes. A subclass implements ``loss``,
    ``predict`` and :meth:`forward_tensor`.

    Args:
        data_preprocessor (dict | nn.Module, optional): See
            :func:`build_data_preprocessor`. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        default_preprocessor (nn.Module, optional): The preprocessor used
            when ``data_preprocessor`` is None (e.g. a member network's).
            Defaults to None.
        check_pretrained (bool): After initialisation, check that every
            submodule with ``init_cfg=dict(type='Pretrained')`` holds the
            checkpoint's tensors, log ``<part> loaded N/M tensors`` and raise
            if some were not loaded. Defaults to True.
    """

    def __init__(self,
                 data_preprocessor: PreprocessorCfg = None,
                 init_cfg: Optional[dict] = None,
                 default_preprocessor: Optional[nn.Module] = None,
                 check_pretrained: bool = True) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(
                data_preprocessor, default_preprocessor),
            init_cfg=init_cfg)
        self.check_pretrained = check_pretrained

    @staticmethod
    def build_network(cfg: Union[dict, nn.Module],
                      backbone: Optional[dict] = None) -> nn.Module:
        """Build a member network.

        Args:
            cfg (dict | nn.Module): A classifier config (``type`` defaults to
                ``'FERClassifier'``) or a built module (returned unchanged).
                Its ``backbone`` replaces the system's when it names a
                ``type``; without one, its keys update a copy of the
                system's (e.g. a network's own pretrained weights).
            backbone (dict, optional): The system's backbone, used (copied)
                when ``cfg`` names none. Defaults to None.

        Returns:
            nn.Module: The network. The system checks its pretrained
            weights, so a member's own check is turned off.
        """
        if isinstance(cfg, nn.Module):
            return cfg
        cfg = dict(cfg)
        cfg.setdefault('type', 'FERClassifier')
        cfg['backbone'] = member_backbone(cfg.get('backbone'), backbone,
                                         cfg['type'])
        network = MODELS.build(cfg)
        if hasattr(network, 'check_pretrained'):
            network.check_pretrained = False
        return network

    def init_weights(self) -> None:
        """Initialise, then check what the pretrained init configs loaded."""
        super().init_weights()
        if self.check_pretrained:
            verify_pretrained(self, type(self).__name__)

    def forward_tensor(
            self, inputs: Union[torch.Tensor,
                                Sequence[torch.Tensor]]) -> torch.Tensor:
        """The predicting network's class scores before the softmax.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images (or views).

        Returns:
            torch.Tensor: ``(N, num_classes)``.
        """
        raise NotImplementedError

    def forward(self,
                inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """The unified entry of mmengine models.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.
            data_samples (list[DataSample], optional): Annotations.
            mode (str): ``'tensor'`` (:meth:`forward_tensor`), ``'loss'`` or
                ``'predict'``.

        Returns:
            Tensor | dict | list[DataSample]: Depends on ``mode``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.forward_tensor(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')
