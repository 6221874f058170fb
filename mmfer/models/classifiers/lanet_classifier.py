# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.model import BaseAveragedModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmfer.utils.dist_utils import (all_gather_with_grad, gather_no_grad,
                                    shuffled_forward)
from ..backbones.expression_landmark_backbone import \
    ExpressionLandmarkBackbone
from ..utils import flip_width, render_heatmaps
from ..utils.backbone_channels import fill_in_channels, registered_class
from ..utils.contrastive_queue import ContrastiveQueue
from ..utils.label_history_bank import LabelHistoryBank, sample_indices
from ..utils.landmark_heatmaps import landmark_annotations
from ..utils.momentum_teacher import MomentumTeacherMixin, build_teacher
from ..utils.projection import projector, spatial_mean
from .fer_system import FERSystem, PreprocessorCfg

OFFICIAL_LOSS_WEIGHTS = dict(landmark=1.0, kl=1.0, contrastive=0.1)
# The heatmap targets of the official code: stride-4 maps, Gaussians of
# sigma 1.5 map pixels, weight 10 where the dilated map exceeds 0.2.
OFFICIAL_HEATMAP = dict(stride=4, sigma=1.5, weight=10.0, threshold=0.2)
FEATURE_STAGES = ('backbone', 'neck', 'pre_logits')
# The online modules the momentum encoder follows, by attribute name.
MOMENTUM_MODULES = ('backbone', 'landmark_neck', 'expression_projector',
                    'landmark_projector')
# Checkpoints saved before the bank and the queues were modules of their own.
RENAMED_BUFFERS = dict(
    label_history='label_history.rows', history_seen='label_history.seen',
    queue_u='queue.u', queue_v='queue.v', queue_labels='queue.labels',
    queue_ptr='queue.ptr')

Feats = Tuple[torch.Tensor, ...]


@MODELS.register_module()
class LANetClassifier(MomentumTeacherMixin, FERSystem):
    """LA-Net: landmark-aware label distributions and an expression-landmark
    contrastive loss (Wu and Cui, ICCV 2023), as the official code trains it.

    An :class:`ExpressionLandmarkBackbone` (built around ``backbone``) has an
    expression tower, which feeds the classification ``head`` (through
    ``neck``) and gives ``u``, the global average of its last map, and a
    landmark tower, which feeds ``landmark_neck`` (:class:`LandmarkFPN`):
    heatmaps and ``v``, the global average of its fused map. One training
    step, on the global batch of all ranks where stated:

    1. Online forward: ``u``, ``v``, logits ``z`` and heatmaps; ``u``, ``v``,
       ``z`` are gathered with gradient (each rank keeps the gradient of its
       own slice, the official ``GatherLayer``).
    2. ``t = label_history(idx, y, label_distribution([u, v], z))`` on the
       global batch (:class:`LabelHistoryBank`; every rank updates the same
       rows with the same values).
    3. The keys ``k_u``, ``k_v`` (normalised projections) of the same images
       from the momentum encoder in train mode, shuffled across ranks
       (:func:`shuffled_forward`).
    4. ``EL = contrastive_loss(q_u, k_v, queue.v, queue.labels, y^) +
       contrastive_loss(q_v, k_u, queue.u, queue.labels, y^)`` with this
       rank's queries and the pseudo-labels ``y^`` of ``t``
       (:class:`ContrastiveQueue`); then the global keys are enqueued.

    Losses: the head's (``loss_cls``, e.g. also EAC's ``loss_att`` on the
    mirrored view), ``loss_landmark`` (samples without landmarks masked),
    ``loss_kl = KL(t || softmax(z))`` (the only signal that trains the
    label-distribution scorers) and ``loss_contrastive = EL``, weighted by
    ``loss_weights``. Prediction runs the expression tower, neck and head
    only: the cost of a plain classifier.

    The momentum encoder (a copy of the backbone, the landmark neck and the
    two projectors, see :mod:`mmfer.models.utils.momentum_teacher`) is an
    EMA with source weight ``1 - momentum`` whose buffers are copied, updated
    by ``MeanTeacherHook`` (which must be in ``custom_hooks``) after each
    real optimiser step. The official code updates it at the start of each
    loss call instead, before the key forward; with one optimiser step per
    iteration both give the same weights at every key forward (its first
    update is a no-op: the copy equals the online weights). Only the copy's
    BatchNorm running statistics, which its train-mode forward never uses,
    are those of the previous step's online forward. Under gradient
    accumulation it follows real optimiser steps only.

    Args:
        backbone (dict): A plain mmpretrain backbone, wrapped into an
            :class:`ExpressionLandmarkBackbone` with ``towers``, or the
            config of an :class:`ExpressionLandmarkBackbone`.
        landmark_neck (dict): Config of a :class:`LandmarkFPN`;
            ``in_channels`` defaults to the landmark tower's channels.
        head (dict): Any mmpretrain classification head; ``in_channels``
            defaults to the expression tower's last width. A head with
            ``num_views = 2`` (:class:`EACHead`) also gets the mirrored
            images' features as ``view2_feats``.
        neck (dict, optional): Neck between the expression tower and the
            head (``in_channels`` as the head's), e.g.
            ``GlobalAveragePooling``; None for heads that pool themselves.
            Defaults to None.
        towers (dict, optional): Arguments of the
            :class:`ExpressionLandmarkBackbone` around a plain ``backbone``,
            e.g. ``dict(num_shared_stages=1)``. Defaults to None (its
            defaults).
        landmark_loss (dict): Heatmap loss, called as ``(pred, target,
            weight_map, valid)``. Defaults to
            ``dict(type='AdaptiveWingLoss')``.
        heatmap (dict): Arguments of :func:`render_heatmaps`: ``stride``
            (input pixels per heatmap pixel), ``sigma``, ``weight`` and
            ``threshold`` (missing keys keep the official values).
            Defaults to ``dict(stride=4, sigma=1.5, weight=10.0,
            threshold=0.2)``.
        label_distribution (dict): Estimator called as ``([u, v], z)``;
            ``feat_dims`` defaults to the dimensions of ``u`` and ``v``.
            Defaults to ``dict(type='LabelDistributionEstimator', k=8)``.
        contrastive_loss (dict): One direction of EL. Defaults to
            ``dict(type='ExpressionLandmarkContrastiveLoss',
            temperature=0.1)``.
        loss_weights (dict): Weights of the ``landmark``, ``kl`` and
            ``contrastive`` losses (missing keys keep the official 1, 1,
            0.1). Defaults to ``dict(landmark=1.0, kl=1.0,
            contrastive=0.1)``.
        history_momentum (float): ``h`` of the history bank. Defaults to 0.9.
        momentum (float): EMA momentum of the momentum encoder, in (0, 1).
            Defaults to 0.999.
        queue_size (int): Keys per queue; a multiple of the global batch
            size. Defaults to 8192.
        projection_dim (int, optional): Output dimension of the projection
            heads. Defaults to None, the dimension of ``v``.
        confidence (float): See :class:`ContrastiveQueue`. Defaults to 0.7
            (the official default since its last commit; 0.5 before).
        ambiguous_ids (str): See :class:`ContrastiveQueue`. Defaults to
            ``'official'``.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``dict(type='FERDataPreprocessor')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 landmark_neck: dict,
                 head: dict,
                 neck: Optional[dict] = None,
                 towers: Optional[dict] = None,
                 landmark_loss: dict = dict(type='AdaptiveWingLoss'),
                 heatmap: Dict[str, float] = OFFICIAL_HEATMAP,
                 label_distribution: dict = dict(
                     type='LabelDistributionEstimator', k=8),
                 contrastive_loss: dict = dict(
                     type='ExpressionLandmarkContrastiveLoss',
                     temperature=0.1),
                 loss_weights: Dict[str, float] = OFFICIAL_LOSS_WEIGHTS,
                 history_momentum: float = 0.9,
                 momentum: float = 0.999,
                 queue_size: int = 8192,
                 projection_dim: Optional[int] = None,
                 confidence: float = 0.7,
                 ambiguous_ids: str = 'official',
                 data_preprocessor: PreprocessorCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        loss_weights = official_merge('loss_weights', loss_weights,
                                      OFFICIAL_LOSS_WEIGHTS)
        heatmap = official_merge('heatmap', heatmap, OFFICIAL_HEATMAP)
        if int(heatmap['stride']) != heatmap['stride'] or \
                heatmap['stride'] <= 0:
            raise ValueError(f"heatmap stride={heatmap['stride']} must be a "
                             'positive int.')
        if not 0 < momentum < 1:
            raise ValueError(f'momentum={momentum} must lie in (0, 1).')
        super().__init__(data_preprocessor, init_cfg)
        self.loss_weights, self.heatmap = loss_weights, heatmap
        self.backbone = MODELS.build(towers_cfg(backbone, towers))
        width = self.backbone.expr_channels[-1]
        self.neck = MODELS.build(fill_in_channels(neck, width)) \
            if neck is not None else None
        self.head = MODELS.build(fill_in_channels(head, width))
        self.landmark_neck = MODELS.build(
            dict(dict(in_channels=tuple(self.backbone.lm_channels)),
                 **landmark_neck))
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
        num_classes = getattr(self.head, 'num_classes', None)
        if num_classes is None:
            raise ValueError(f'{type(self.head).__name__} has no '
                             'num_classes; LANetClassifier needs a '
                             'classification head.')
        self.label_history = LabelHistoryBank(num_classes, history_momentum)
        self.queue = ContrastiveQueue(dim, queue_size, confidence,
                                      ambiguous_ids)
        self.reset_teacher()

    @property
    def num_views(self) -> int:
        """int: How many views the head trains on (1 or 2)."""
        return int(getattr(self.head, 'num_views', 1))

    def online_modules(self) -> nn.ModuleDict:
        """The online modules the momentum encoder follows, by name."""
        return nn.ModuleDict((n, getattr(self, n)) for n in MOMENTUM_MODULES)

    def teacher_pair(self) -> Tuple[BaseAveragedModel, nn.Module]:
        """The momentum encoder and the online modules it follows."""
        return self.momentum_encoder, self.online_modules()

    def encode(self, inputs: torch.Tensor, momentum: bool = False) -> tuple:
        """Run both towers and the landmark neck.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            momentum (bool): Use the momentum encoder instead of the online
                modules. Defaults to False.

        Returns:
            tuple: The expression stage maps, ``u`` ``(N, D_u)``, ``v``
            ``(N, D_v)`` and the heatmaps.
        """
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
        """One LA-Net training step (see the class docstring).

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            data_samples (list[DataSample]): Annotations with
                ``gt_label``, ``sample_idx``, ``landmarks`` and
                ``has_landmarks``.

        Returns:
            dict[str, Tensor]: ``loss_cls`` (and the head's other losses),
            ``loss_landmark``, ``loss_kl`` and ``loss_contrastive``.
        """
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
        target_maps, weight_maps = self.heatmap_targets(
            landmarks, inputs.shape[-2:], heatmaps.shape)
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

    def heatmap_targets(
            self, landmarks: torch.Tensor, image_size: Sequence[int],
            pred_shape: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Render the heatmap and weight-map targets of a batch.

        Args:
            landmarks (torch.Tensor): ``(N, K, 2)`` points in input pixels.
            image_size (Sequence[int]): ``(H, W)`` of the input images.
            pred_shape (Sequence[int]): Shape ``(N, K, h, w)`` of the
                predicted heatmaps, which the targets must have.

        Returns:
            tuple[Tensor, Tensor]: ``(N, K, h, w)`` float32 heatmaps and
            weight maps.
        """
        stride = int(self.heatmap['stride'])
        size = (int(image_size[0]) // stride, int(image_size[1]) // stride)
        if tuple(pred_shape[-2:]) != size:
            raise ValueError(
                f'The landmark neck predicts {tuple(pred_shape[-2:])} '
                f'heatmaps for {tuple(image_size)} inputs, but the targets '
                f'are rendered at input size // heatmap stride {stride} = '
                f'{size}: set the model\'s heatmap stride to the neck\'s '
                'output stride (4 for LandmarkFPN on a ResNet).')
        if landmarks.size(1) != pred_shape[1]:
            raise ValueError(
                f'The data samples have {landmarks.size(1)} landmarks but '
                f'the landmark neck predicts {pred_shape[1]} heatmaps: set '
                'LandmarkTargets.num_landmarks and '
                'landmark_neck.num_landmarks to the number of points of the '
                'dataset\'s landmark layout.')
        return render_heatmaps(landmarks, size, **self.heatmap)

    def _check_single_view(self, inputs) -> None:
        if not torch.is_tensor(inputs):
            raise ValueError(
                'LANetClassifier takes one view per sample (it mirrors the '
                'input itself for a two-view head); remove the MultiView '
                'transform from the pipeline.')

    def _neck(self, feats: Feats) -> Feats:
        return self.neck(feats) if self.neck is not None else feats

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

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck') -> Union[Feats, torch.Tensor]:
        """Expression features (``stage``: ``'backbone'``, ``'neck'`` or
        ``'pre_logits'``); the landmark tower does not run."""
        if stage not in FEATURE_STAGES:
            raise ValueError(f'stage={stage!r} must be one of '
                             f'{FEATURE_STAGES}.')
        feats = tuple(self.backbone.forward_expression(inputs))
        if stage == 'backbone':
            return feats
        feats = self._neck(feats)
        return feats if stage == 'neck' else self.head.pre_logits(feats)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the expression tower and the head (``kwargs`` go to
        the head's ``predict``)."""
        self._check_single_view(inputs)
        return self.head.predict(
            self.extract_feat(inputs), data_samples, **kwargs)

    def forward_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """The expression tower's ``(N, num_classes)`` logits."""
        return self.head(self.extract_feat(inputs))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        # Checkpoints of the single-class LA-Net: the bank and queue buffers
        # at the top, the momentum encoder a plain ModuleDict.
        for old, new in RENAMED_BUFFERS.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        old = prefix + 'momentum_encoder.'
        parts = tuple(f'{old}{name}.' for name in MOMENTUM_MODULES)
        moved = [k for k in state_dict if k.startswith(parts)]
        for key in moved:
            state_dict[old + 'module.' + key[len(old):]] = state_dict.pop(key)
        if moved:
            state_dict.setdefault(old + 'steps', torch.tensor(1))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def official_merge(name: str, arg: Dict[str, float],
                   official: Dict[str, float]) -> Dict[str, float]:
    """``arg`` over the official values, refusing unknown keys."""
    unknown = set(arg) - set(official)
    if unknown:
        raise ValueError(f'{name} has unknown keys {sorted(unknown)}; the '
                         f'keys are {tuple(official)}.')
    return dict(official, **arg)


def towers_cfg(backbone: dict, towers: Optional[dict]) -> dict:
    """The :class:`ExpressionLandmarkBackbone` config of LA-Net's backbone.

    Args:
        backbone (dict): A plain backbone, or an ExpressionLandmarkBackbone.
        towers (dict, optional): The towers' arguments for a plain one.

    Returns:
        dict: The config.
    """
    if issubclass(registered_class(backbone), ExpressionLandmarkBackbone):
        if towers:
            raise ValueError(
                'towers configures the ExpressionLandmarkBackbone built '
                'around a plain backbone; with backbone=dict(type='
                "'ExpressionLandmarkBackbone', ...) set its arguments there.")
        return backbone
    return dict(type='ExpressionLandmarkBackbone', backbone=backbone,
                **(towers or {}))
