# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.model import BaseAveragedModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmfer.utils.dist_utils import (all_gather_with_grad, gather_no_grad,
                                    shuffled_forward)
from ..backbones.expression_landmark_backbone import towers_cfg
from ..utils import flip_width
from ..utils.backbone_channels import fill_args, fill_in_channels
from ..utils.contrastive_queue import ContrastiveQueue
from ..utils.label_history_bank import LabelHistoryBank
from ..utils.landmark_heatmaps import (OFFICIAL_HEATMAP, heatmap_settings,
                                       heatmap_targets, landmark_annotations)
from ..utils.momentum_teacher import MomentumTeacherMixin, build_teacher
from ..utils.projection import projector, spatial_mean
from ..utils.sample_bank import sample_indices
from .expression_path import ExpressionPathMixin, Feats
from .fer_system import FERSystem, PreprocessorCfg
from .lanet_state_dict import upgrade_lanet_state_dict

OFFICIAL_LOSS_WEIGHTS = dict(landmark=1.0, kl=1.0, contrastive=0.1)
LABEL_DISTRIBUTION = dict(type='LabelDistributionEstimator', k=8)
CONTRASTIVE_LOSS = dict(
    type='ExpressionLandmarkContrastiveLoss', temperature=0.1)
# The online modules the momentum encoder follows, by attribute name.
MOMENTUM_MODULES = ('backbone', 'landmark_neck', 'expression_projector',
                    'landmark_projector')



@MODELS.register_module()
class LANetClassifier(ExpressionPathMixin, MomentumTeacherMixin, FERSystem):
    """LA-Net: landmark-aware label distributions and an expression-landmark
    contrastive loss (Wu and Cui, ICCV 2023), as the official code trains it.

    Parts: the :class:`ExpressionLandmarkBackbone` towers (expression maps to
    ``neck`` and ``head``, ``u`` their last map's mean; landmark maps to
    ``landmark_neck``, heatmaps and ``v``), the :class:`LabelHistoryBank`,
    the :class:`ContrastiveQueue` and a momentum teacher of the backbone,
    landmark neck and projectors (:mod:`~mmfer.models.utils.momentum_teacher`,
    source weight ``1 - momentum``, buffers copied, updated by
    ``MeanTeacherHook`` after each real optimiser step: the official update
    at the start of each step gives the same weights at every key forward).
    On the global batch (each rank keeps its slice's gradient): targets
    ``t = label_history(idx, y, label_distribution([u, v], z))``, keys from
    the momentum encoder (:func:`shuffled_forward`), ``EL =
    contrastive_loss(q_u, k_v, queue.v, ...) + (u <-> v)`` with the
    pseudo-labels of ``t``, then the keys are enqueued. Losses, times
    ``loss_weights``: the head's (``loss_cls``; EAC's ``loss_att`` on the
    mirror), ``loss_landmark``, ``loss_kl = KL(t || softmax(z))`` and
    ``loss_contrastive``. Prediction runs the expression tower, neck and
    head only (:class:`ExpressionPathMixin`).

    Args:
        backbone (dict): A plain backbone (wrapped into an
            :class:`ExpressionLandmarkBackbone` with ``towers``) or one.
        landmark_neck (dict): :class:`LandmarkFPN` config.
        head (dict): A classification head; a two-view head
            (:class:`EACHead`) gets the mirrored images' features.
        neck (dict, optional): Neck before the head (None: the head pools).
            Neck and head ``in_channels`` default to the expression width.
        towers (dict, optional): :class:`ExpressionLandmarkBackbone`
            arguments for a plain ``backbone``.
        landmark_loss (dict): ``(pred, target, weight_map, valid)`` loss.
        heatmap (dict): See :func:`heatmap_settings`.
        label_distribution (dict): Estimator of ``([u, v], z)``.
        contrastive_loss (dict): One direction of EL.
        loss_weights (dict): ``landmark``, ``kl``, ``contrastive`` weights.
        history_momentum (float): See :class:`LabelHistoryBank`.
        momentum (float): EMA momentum of the momentum encoder, in (0, 1).
        queue_size (int): Keys per queue; a multiple of the global batch.
        projection_dim (int, optional): Defaults to the dimension of ``v``.
        confidence (float): See :class:`ContrastiveQueue` (official: 0.7
            since its last commit, 0.5 before).
        ambiguous_ids (str): See :class:`ContrastiveQueue`.
        data_preprocessor (dict | nn.Module, optional): Defaults to a
            ``FERDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 landmark_neck: dict,
                 head: dict,
                 neck: Optional[dict] = None,
                 towers: Optional[dict] = None,
                 landmark_loss: dict = dict(type='AdaptiveWingLoss'),
                 heatmap: Dict[str, float] = OFFICIAL_HEATMAP,
                 label_distribution: dict = LABEL_DISTRIBUTION,
                 contrastive_loss: dict = CONTRASTIVE_LOSS,
                 loss_weights: Dict[str, float] = OFFICIAL_LOSS_WEIGHTS,
                 history_momentum: float = 0.9,
                 momentum: float = 0.999,
                 queue_size: int = 8192,
                 projection_dim: Optional[int] = None,
                 confidence: float = 0.7,
                 ambiguous_ids: str = 'official',
                 data_preprocessor: PreprocessorCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        unknown = sorted(set(loss_weights) - set(OFFICIAL_LOSS_WEIGHTS))
        if unknown:
            raise ValueError(f'loss_weights has unknown keys {unknown}; the '
                             f'keys are {tuple(OFFICIAL_LOSS_WEIGHTS)}.')
        if not 0 < momentum < 1:
            raise ValueError(f'momentum={momentum} must lie in (0, 1).')
        super().__init__(data_preprocessor, init_cfg)
        self.loss_weights = dict(OFFICIAL_LOSS_WEIGHTS, **loss_weights)
        self.heatmap = heatmap_settings(heatmap)
        self.backbone = MODELS.build(towers_cfg(backbone, towers))
        width = self.backbone.expr_channels[-1]
        self.neck = MODELS.build(fill_in_channels(neck, width)) \
            if neck is not None else None
        self.head = MODELS.build(fill_in_channels(head, width))
        # The FPN decodes at the heatmap stride from whatever scales the
        # landmark tower returns (one stride-16 map for a ViT).
        self.landmark_neck = MODELS.build(
            fill_args(
                landmark_neck,
                in_channels=tuple(self.backbone.lm_channels),
                in_strides=tuple(self.backbone.lm_strides)))
        self.landmark_loss = MODELS.build(landmark_loss)
        self.contrastive_loss = MODELS.build(contrastive_loss)
        dim_v = self.landmark_neck.out_channels
        self.label_distribution = MODELS.build(
            dict(dict(feat_dims=(width, dim_v)), **label_distribution))
        dim = projection_dim or dim_v
        self.expression_projector = projector(width, dim)
        self.landmark_projector = projector(dim_v, dim)
        if self.num_views not in (1, 2):
            raise ValueError(
                f'{type(self.head).__name__} trains on {self.num_views} '
                'views; LANetClassifier gives a head the image and, for two '
                'views, its mirror.')
        self.momentum_encoder = build_teacher(
            dict(type='ExponentialMovingAverage', momentum=1 - momentum),
            self.online_modules())
        if not hasattr(self.head, 'num_classes'):
            raise ValueError(f'{type(self.head).__name__} has no num_classes'
                             '; LANetClassifier needs a classification head.')
        self.label_history = LabelHistoryBank(self.head.num_classes,
                                              history_momentum)
        self.queue = ContrastiveQueue(dim, queue_size, confidence,
                                      ambiguous_ids)
        self.reset_teacher()

    def online_modules(self) -> nn.ModuleDict:
        """The online modules the momentum encoder follows, by name."""
        return nn.ModuleDict((n, getattr(self, n)) for n in MOMENTUM_MODULES)

    def teacher_pair(self) -> Tuple[BaseAveragedModel, nn.Module]:
        """The momentum encoder and the online modules it follows."""
        return self.momentum_encoder, self.online_modules()

    def encode(self, inputs: torch.Tensor, momentum: bool = False) -> tuple:
        """The expression maps, ``u``, ``v`` and the heatmaps of the online
        modules or (``momentum``) of the momentum encoder."""
        modules = self.momentum_encoder.module if momentum else self
        expr_feats, lm_feats = modules.backbone(inputs)
        heatmaps, fused = modules.landmark_neck(lm_feats)
        return (tuple(expr_feats), spatial_mean(expr_feats[-1]),
                spatial_mean(fused), heatmaps)

    def _keys(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        _, u, v, _ = self.encode(inputs, momentum=True)
        heads = self.momentum_encoder.module
        return (F.normalize(heads.expression_projector(u), dim=1),
                F.normalize(heads.landmark_projector(v), dim=1))

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """One LA-Net training step (see the class docstring) on images
        whose data samples have ``gt_label``, ``sample_idx``, ``landmarks``
        and ``has_landmarks``."""
        self._check_single_view(inputs)
        self.warn_if_teacher_is_frozen()
        # Read the annotations first: a bad batch fails before it changes
        # the history bank or the queues.
        landmarks, has_landmarks = landmark_annotations(
            data_samples, inputs.device)
        indices = gather_no_grad(sample_indices(data_samples, inputs.device))
        labels = gather_no_grad(
            torch.cat([s.gt_label for s in data_samples]).to(inputs.device))

        expr_feats, u, v, heatmaps = self.encode(inputs)
        target_maps, weight_maps = heatmap_targets(
            landmarks, inputs.shape[-2:], heatmaps.shape, **self.heatmap)
        head_feats = self._neck(expr_feats)
        losses = self._head_losses(inputs, head_feats, data_samples)
        logits = self.head(head_feats)
        distributions = self.label_distribution(
            [all_gather_with_grad(u),
             all_gather_with_grad(v)], all_gather_with_grad(logits))
        targets = self.label_history(indices, labels, distributions)
        pseudo = self.queue.pseudo_labels(targets, indices)

        key_u, key_v = shuffled_forward(self._keys, inputs)
        rank = get_rank()
        local = slice(rank * inputs.size(0), (rank + 1) * inputs.size(0))
        query_u = F.normalize(self.expression_projector(u), dim=1)
        query_v = F.normalize(self.landmark_projector(v), dim=1)
        # Clones: the queues are updated in place below, before backward.
        queue_labels = self.queue.labels.clone()
        contrastive = self.contrastive_loss(
            query_u, key_v[local], self.queue.v.clone(), queue_labels,
            pseudo[local]) + self.contrastive_loss(
                query_v, key_u[local], self.queue.u.clone(), queue_labels,
                pseudo[local])
        self.queue.enqueue(key_u, key_v, pseudo)

        weights = self.loss_weights
        losses['loss_landmark'] = weights['landmark'] * self.landmark_loss(
            heatmaps, target_maps, weight_maps, has_landmarks)
        losses['loss_kl'] = weights['kl'] * F.kl_div(
            F.log_softmax(logits, dim=1), targets[local],
            reduction='batchmean')
        losses['loss_contrastive'] = weights['contrastive'] * contrastive
        return losses

    def _head_losses(self, inputs: torch.Tensor, head_feats: Feats,
                     data_samples: List[DataSample]) -> dict:
        """The head's losses, ``loss`` renamed ``loss_cls``."""
        kwargs = dict()
        if self.num_views == 2:
            kwargs['view2_feats'] = self.extract_feat(flip_width(inputs))
        losses = self.head.loss(head_feats, data_samples, **kwargs)
        if 'loss' in losses:
            losses['loss_cls'] = losses.pop('loss')
        return losses

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        upgrade_lanet_state_dict(state_dict, prefix, MOMENTUM_MODULES)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
