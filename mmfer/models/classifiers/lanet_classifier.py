# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, broadcast, get_rank, is_distributed
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmfer.utils.dist_utils import all_gather_with_grad
from ..utils import flip_width, render_heatmaps
from .fer_system import FERSystem

AMBIGUOUS_IDS = ('official', 'unique')
OFFICIAL_LOSS_WEIGHTS = dict(landmark=1.0, kl=1.0, contrastive=0.1)
# The heatmap targets of the official code: stride-4 maps, Gaussians of
# sigma 1.5 map pixels, weight 10 where the dilated map exceeds 0.2.
OFFICIAL_HEATMAP = dict(stride=4, sigma=1.5, weight=10.0, threshold=0.2)
FEATURE_STAGES = ('backbone', 'neck', 'pre_logits')
# The online modules the momentum encoder mirrors, by attribute name.
MOMENTUM_MODULES = ('backbone', 'landmark_neck', 'expression_projector',
                    'landmark_projector')
HISTORY_BUFFERS = ('label_history', 'history_seen')
# Label of an empty queue slot: equal to no class and no ambiguous id, so an
# empty slot is always a negative, as in the official code.
EMPTY_QUEUE_LABEL = -1e10

Feats = Tuple[torch.Tensor, ...]


def projector(in_dim: int, dim: int) -> nn.Sequential:
    """LA-Net's projection head ``Linear -> ReLU -> Linear``.

    Args:
        in_dim (int): Input feature dimension.
        dim (int): Projection dimension.

    Returns:
        nn.Sequential: The head, with PyTorch's default initialisation.
    """
    return nn.Sequential(
        nn.Linear(in_dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))


def spatial_mean(feat: torch.Tensor) -> torch.Tensor:
    """Global average pooling of an ``(N, C, H, W)`` map to ``(N, C)``."""
    if feat.dim() != 4:
        raise ValueError(f'Expected an (N, C, H, W) feature map, got shape '
                         f'{tuple(feat.shape)}; the backbone must output '
                         'its stage maps before pooling.')
    return feat.mean(dim=(2, 3))


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of all ranks along dim 0, without gradient."""
    return torch.cat(all_gather(x.detach().contiguous()))


def last_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Mask of the last position of every distinct value of ``indices``.

    Args:
        indices (torch.Tensor): ``(N,)`` non-negative integers.

    Returns:
        torch.Tensor: ``(N,)`` bool.
    """
    positions = torch.arange(indices.numel(), device=indices.device)
    last = positions.new_full((int(indices.max()) + 1, ), -1).scatter_reduce(
        0, indices, positions, reduce='amax')
    return last[indices] == positions


@MODELS.register_module()
class LANetClassifier(FERSystem):
    """LA-Net: landmark-aware label distributions and an expression-landmark
    contrastive loss (Wu and Cui, ICCV 2023), as the official code trains it.

    The backbone (:class:`ExpressionLandmarkBackbone`) has an expression
    tower and a landmark tower that share the stem and the first stage(s).
    The expression tower feeds the classification ``head`` (through
    ``neck``) and gives ``u``, the global average of its last map; the
    landmark tower feeds ``landmark_neck`` (:class:`LandmarkFPN`), which
    predicts landmark heatmaps and gives ``v``, the global average of its
    fused stride-4 map. A momentum copy of the backbone, the landmark neck
    and the two projection heads (an EMA of the online weights with momentum
    ``momentum``; buffers, e.g. BatchNorm statistics, are copied) gives the
    contrastive keys; it is never trained by gradients. ``u`` does not go
    through ``neck``, so the copy needs none.

    One training step, on the global batch of all ranks where stated:

    1. Online forward: ``u``, ``v``, logits ``z`` (the head on the
       expression features) and heatmaps.
    2. ``u``, ``v``, ``z`` are gathered from all ranks with gradient (each
       rank's backward keeps the gradient of its own slice, the official
       ``GatherLayer``); sample indices and labels without gradient.
    3. ``d = label_distribution([u, v], z)`` on the global batch. The
       history bank ``H`` (one row per dataset ``sample_idx``, set to the
       one-hot training label, i.e. the noisy label, on a sample's first
       visit) gives the target ``t = h H[idx] + (1 - h) d``, with gradient
       into ``d``; then ``H[idx] <- h H[idx] + (1 - h) stopgrad(d)``, with
       ``h = history_momentum``. Every rank computes the same global
       ``t`` and updates the same rows, so the banks stay identical. A
       sample drawn twice in one batch gets the target of its old row in
       both places and its row keeps the last update, as the official
       in-place update.
    4. Momentum update, then the keys ``k_u``, ``k_v`` (L2-normalised
       projections) of the same augmented images from the momentum encoder
       in train mode. Under distributed training the global batch is
       shuffled across ranks before the key forward and unshuffled after
       (ShuffleBN, one permutation drawn on rank 0 and broadcast), so that
       no rank normalises its keys with the BatchNorm statistics of its own
       queries; in a single process the shuffle changes nothing, BatchNorm
       seeing the whole batch either way, and is skipped.
    5. Pseudo-labels: the argmax of ``t``, or an ambiguous id when
       ``max(t) < confidence`` (see ``ambiguous_ids``).
    6. ``EL = contrastive_loss(q_u, k_v, queue_v, queue_labels, y) +
       contrastive_loss(q_v, k_u, queue_u, queue_labels, y)`` with the
       normalised projections ``q_u``, ``q_v`` of this rank's samples
       (their in-batch positives are this rank's samples, as in the
       official code); then the global keys and pseudo-labels are
       enqueued.

    Losses: ``loss_cls`` (the head's losses on the noisy labels, e.g. also
    ``loss_att`` of :class:`EACHead`, which gets the mirrored view through
    the expression tower), ``loss_landmark = w_landmark * landmark_loss``
    (samples with ``has_landmarks`` False are masked out), ``loss_kl = w_kl *
    KL(t || softmax(z))`` (batch mean, with gradient into ``t``: the only
    signal that trains the label-distribution scorers) and
    ``loss_contrastive = w_contrastive * EL``.

    The landmark targets are rendered here, on the model's device, from
    the data samples' ``landmarks`` (``(K, 2)`` points in the pixels of the
    input image, checked by the :class:`LandmarkTargets` transform) with
    :func:`render_heatmaps` (the official rule, see ``heatmap``), for the
    whole batch at once. Rendering them in the data workers instead would
    send two float32 maps per sample through the worker pipe, 476 KB per
    sample at 224 px with 19 points (30 MB per batch of 64) against 152
    bytes of points: slow, and a worker can block for ever on a full pipe
    when the main process dies.

    Prediction (``predict``, ``extract_feat``, ``mode='tensor'``) runs the
    expression tower, the neck and the head only: the cost of a plain
    classifier.

    The history bank (``label_history``, ``history_seen``) and the queues
    (``queue_u``, ``queue_v``, ``queue_labels``, ``queue_ptr``) are buffers,
    so checkpoints hold them and ``--resume`` restores them. The bank grows
    (by doubling) to the largest ``sample_idx`` seen, and loading a
    checkpoint resizes it to the checkpoint's size first. ``sample_idx``
    must identify a training sample uniquely: dataset wrappers that number
    each part from 0 would make parts share rows.

    The momentum update runs once per ``loss`` call, before the key
    forward, as in the official code; with gradient accumulation it
    therefore runs once per accumulated batch.

    Args:
        backbone (dict): Config of an :class:`ExpressionLandmarkBackbone`.
        landmark_neck (dict): Config of a :class:`LandmarkFPN`;
            ``in_channels`` defaults to the landmark tower's channels.
        head (dict): Config of any mmpretrain classification head on the
            expression features. A head with ``num_views = 2``
            (:class:`EACHead`) also gets the mirrored images' features as
            ``view2_feats``.
        neck (dict, optional): Neck between the expression tower and the
            head, e.g. ``GlobalAveragePooling`` for ``LinearClsHead``; None
            for heads that pool themselves. Defaults to None.
        landmark_loss (dict): Heatmap loss, called as ``(pred, target,
            weight_map, valid)``. Defaults to
            ``dict(type='AdaptiveWingLoss')``.
        heatmap (dict): Arguments of :func:`render_heatmaps` for the
            targets: ``stride`` (input pixels per map pixel; the input size
            divided by it must be the landmark neck's output size),
            ``sigma``, ``weight`` and ``threshold`` (missing keys keep the
            official values). Defaults to ``dict(stride=4, sigma=1.5,
            weight=10.0, threshold=0.2)``.
        label_distribution (dict): Label-distribution estimator, called as
            ``([u, v], z)``; ``feat_dims`` defaults to the dimensions of
            ``u`` and ``v``. Defaults to
            ``dict(type='LabelDistributionEstimator', k=8)``.
        contrastive_loss (dict): One direction of the EL loss. Defaults to
            ``dict(type='ExpressionLandmarkContrastiveLoss',
            temperature=0.1)``.
        loss_weights (dict): Weights of the ``landmark``, ``kl`` and
            ``contrastive`` losses (missing keys keep the official 1, 1,
            0.1). Defaults to ``dict(landmark=1.0, kl=1.0,
            contrastive=0.1)``.
        history_momentum (float): ``h`` of the history bank. Defaults to 0.9.
        momentum (float): EMA momentum of the momentum encoder.
            Defaults to 0.999.
        queue_size (int): Keys per queue; a multiple of the global batch
            size. Defaults to 8192.
        projection_dim (int, optional): Output dimension of the projection
            heads. Defaults to None, the dimension of ``v`` (64 times the
            block expansion, as the official code).
        confidence (float): Pseudo-labels with a lower maximum target
            probability become ambiguous ids. Defaults to 0.7 (the official
            default since its last commit; 0.5 before).
        ambiguous_ids (str): The id of an ambiguous sample with dataset index
            ``i``: ``'official'`` uses ``-i``, as the official code, so the
            sample of index 0 gets 0 and counts as a positive of class 0;
            ``'unique'`` uses ``-(i + 1)``, which never equals a class.
            Defaults to ``'official'``.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``dict(type='FERDataPreprocessor')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 landmark_neck: dict,
                 head: dict,
                 neck: Optional[dict] = None,
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
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self._check_arguments(loss_weights, heatmap, history_momentum,
                              momentum, queue_size, ambiguous_ids)
        if data_preprocessor is None:
            data_preprocessor = dict()
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'FERDataPreprocessor')
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.landmark_neck = MODELS.build(
            dict(
                dict(in_channels=tuple(self.backbone.lm_channels)),
                **landmark_neck))
        self.landmark_loss = MODELS.build(landmark_loss)
        self.contrastive_loss = MODELS.build(contrastive_loss)
        dim_u = self.backbone.expr_channels[-1]
        dim_v = self.landmark_neck.out_channels
        self.label_distribution = MODELS.build(
            dict(dict(feat_dims=(dim_u, dim_v)), **label_distribution))
        dim = projection_dim or dim_v
        self.expression_projector = projector(dim_u, dim)
        self.landmark_projector = projector(dim_v, dim)
        if self.num_views not in (1, 2):
            raise ValueError(
                f'{type(self.head).__name__} trains on {self.num_views} '
                'views; LANetClassifier gives a head the image and, for two '
                'views, its mirror.')

        self.loss_weights = dict(OFFICIAL_LOSS_WEIGHTS, **loss_weights)
        self.heatmap = dict(OFFICIAL_HEATMAP, **heatmap)
        self.history_momentum = history_momentum
        self.momentum = momentum
        self.queue_size = queue_size
        self.confidence = confidence
        self.ambiguous_ids = ambiguous_ids

        # A plain nn.ModuleDict: mmengine's init_weights does not descend
        # into it (no pretrained weights loaded twice); init_weights copies
        # the initialised online modules into it instead.
        self.momentum_encoder = nn.ModuleDict(
            (name, copy.deepcopy(getattr(self, name)))
            for name in MOMENTUM_MODULES)
        self.momentum_encoder.requires_grad_(False)

        num_classes = getattr(self.head, 'num_classes', None)
        if num_classes is None:
            raise ValueError(f'{type(self.head).__name__} has no '
                             'num_classes; LANetClassifier needs a '
                             'classification head.')
        self.register_buffer('label_history', torch.zeros(0, num_classes))
        self.register_buffer('history_seen', torch.zeros(0, dtype=torch.bool))
        self.register_buffer('queue_u',
                             F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer('queue_v',
                             F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer('queue_labels',
                             torch.full((queue_size, ), EMPTY_QUEUE_LABEL))
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))

    @staticmethod
    def _check_arguments(loss_weights: Dict[str, float],
                         heatmap: Dict[str, float], history_momentum: float,
                         momentum: float, queue_size: int,
                         ambiguous_ids: str) -> None:
        for name, arg, official in (('loss_weights', loss_weights,
                                     OFFICIAL_LOSS_WEIGHTS),
                                    ('heatmap', heatmap, OFFICIAL_HEATMAP)):
            unknown = set(arg) - set(official)
            if unknown:
                raise ValueError(f'{name} has unknown keys {sorted(unknown)}'
                                 f'; the keys are {tuple(official)}.')
        stride = heatmap.get('stride', OFFICIAL_HEATMAP['stride'])
        if int(stride) != stride or stride <= 0:
            raise ValueError(f'heatmap stride={stride} must be a positive '
                             'int.')
        if not 0 <= history_momentum <= 1 or not 0 <= momentum <= 1:
            raise ValueError(
                f'history_momentum={history_momentum} and momentum='
                f'{momentum} must lie in [0, 1].')
        if queue_size < 1:
            raise ValueError(f'queue_size={queue_size} must be positive.')
        if ambiguous_ids not in AMBIGUOUS_IDS:
            raise ValueError(f'ambiguous_ids={ambiguous_ids!r} must be one '
                             f'of {AMBIGUOUS_IDS}.')

    @property
    def with_neck(self) -> bool:
        """bool: Whether a neck sits between the expression tower and the
        head."""
        return self.neck is not None

    @property
    def num_views(self) -> int:
        """int: How many views the head trains on (1 or 2)."""
        return int(getattr(self.head, 'num_views', 1))

    @property
    def num_classes(self) -> int:
        """int: Number of classes of the head."""
        return self.label_history.size(1)

    def init_weights(self) -> None:
        """Initialise the online modules, then copy them into the momentum
        encoder."""
        super().init_weights()
        self.reset_momentum_encoder()

    @torch.no_grad()
    def reset_momentum_encoder(self) -> None:
        """Make the momentum encoder an exact copy of the online modules."""
        for online, key in self._momentum_pairs():
            key.load_state_dict(online.state_dict())

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q``; buffers are copied."""
        for online, key in self._momentum_pairs():
            for p_k, p_q in zip(key.parameters(), online.parameters()):
                p_k.mul_(self.momentum).add_(p_q, alpha=1 - self.momentum)
            for b_k, b_q in zip(key.buffers(), online.buffers()):
                b_k.copy_(b_q)

    def _momentum_pairs(self) -> List[Tuple[nn.Module, nn.Module]]:
        return [(getattr(self, name), self.momentum_encoder[name])
                for name in MOMENTUM_MODULES]

    def encode(
        self,
        inputs: torch.Tensor,
        momentum: bool = False
    ) -> Tuple[Feats, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run both towers and the landmark neck.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            momentum (bool): Use the momentum encoder instead of the online
                modules. Defaults to False.

        Returns:
            tuple: The expression stage maps, ``u`` ``(N, D_u)``, ``v``
            ``(N, D_v)`` and the heatmaps ``(N, K, H / 4, W / 4)``.
        """
        modules = self.momentum_encoder if momentum else self
        expr_feats, lm_feats = modules.backbone(inputs)
        heatmaps, fused = modules.landmark_neck(lm_feats)
        return (tuple(expr_feats), spatial_mean(expr_feats[-1]),
                spatial_mean(fused), heatmaps)

    @torch.no_grad()
    def momentum_keys(
            self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised keys of the global batch from the momentum encoder.

        Args:
            inputs (torch.Tensor): This rank's ``(N, C, H, W)`` images.

        Returns:
            tuple[Tensor, Tensor]: ``k_u`` and ``k_v``, each
            ``(world_size * N, P)`` in the order of the gathered batch.
        """
        if not is_distributed():
            return self._keys(inputs)
        global_inputs = gather_no_grad(inputs)
        num = inputs.size(0)
        order = torch.randperm(global_inputs.size(0), device=inputs.device)
        broadcast(order, src=0)
        rank = get_rank()
        keys = self._keys(global_inputs[order[rank * num:(rank + 1) * num]])
        restore = order.argsort()
        return tuple(gather_no_grad(k)[restore] for k in keys)

    def _keys(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _, u, v, _ = self.encode(inputs, momentum=True)
        heads = self.momentum_encoder
        return (F.normalize(heads.expression_projector(u), dim=1),
                F.normalize(heads.landmark_projector(v), dim=1))

    def label_targets(self, indices: torch.Tensor, labels: torch.Tensor,
                      distributions: torch.Tensor) -> torch.Tensor:
        """Blend the history bank with the estimates, then update the bank.

        ``t = h H[idx] + (1 - h) d`` (gradient into ``d``), then
        ``H[idx] <- h H[idx] + (1 - h) stopgrad(d)``. A row seen for the
        first time starts as ``one_hot(label)``.

        Args:
            indices (torch.Tensor): ``(B,)`` dataset sample indices.
            labels (torch.Tensor): ``(B,)`` training (noisy) labels.
            distributions (torch.Tensor): ``(B, C)`` estimates ``d``.

        Returns:
            torch.Tensor: ``(B, C)`` targets ``t``.
        """
        indices = indices.to(self.label_history.device)
        self._reserve_history(int(indices.max()) + 1)
        with torch.no_grad():
            first = ~self.history_seen[indices]
            self.label_history[indices[first]] = F.one_hot(
                labels[first].to(indices.device),
                self.num_classes).to(self.label_history.dtype)
            self.history_seen[indices] = True
        history = self.label_history[indices].to(distributions.dtype)
        h = self.history_momentum
        targets = h * history + (1 - h) * distributions
        with torch.no_grad():
            last = last_occurrence(indices)
            self.label_history[indices[last]] = targets.detach()[last].to(
                self.label_history.dtype)
        return targets

    def _reserve_history(self, size: int) -> None:
        """Grow the bank (by doubling) to hold at least ``size`` rows."""
        current = self.label_history.size(0)
        if size <= current:
            return
        size = max(size, 2 * current)
        history = self.label_history.new_zeros(size, self.num_classes)
        history[:current] = self.label_history
        seen = self.history_seen.new_zeros(size)
        seen[:current] = self.history_seen
        self.label_history = history
        self.history_seen = seen

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        # The bank's size depends on the indices seen; take the checkpoint's
        # so that loading restores it instead of failing on the shape.
        for name in HISTORY_BUFFERS:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                current = getattr(self, name)
                setattr(self, name,
                        current.new_zeros(saved.shape, dtype=current.dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def pseudo_labels(self, targets: torch.Tensor,
                      indices: torch.Tensor) -> torch.Tensor:
        """Argmax of the targets, or the ambiguous id of unsure samples.

        Args:
            targets (torch.Tensor): ``(B, C)`` target distributions.
            indices (torch.Tensor): ``(B,)`` dataset sample indices.

        Returns:
            torch.Tensor: ``(B,)`` long pseudo-labels.
        """
        confidence, labels = targets.detach().max(dim=1)
        indices = indices.to(labels.device)
        ambiguous = -indices if self.ambiguous_ids == 'official' else -(
            indices + 1)
        return torch.where(confidence < self.confidence, ambiguous, labels)

    @torch.no_grad()
    def enqueue(self, key_u: torch.Tensor, key_v: torch.Tensor,
                labels: torch.Tensor) -> None:
        """Write the global batch's keys and pseudo-labels into the queues.

        Args:
            key_u (torch.Tensor): ``(N, P)`` expression keys.
            key_v (torch.Tensor): ``(N, P)`` landmark keys.
            labels (torch.Tensor): ``(N,)`` pseudo-labels.
        """
        num = key_u.size(0)
        ptr = int(self.queue_ptr)
        if self.queue_size % num or ptr % num:
            raise ValueError(
                f'queue_size={self.queue_size} (queue pointer {ptr}) must be '
                f'a multiple of the global batch size {num} (samples per '
                'GPU x GPUs), and every batch must have that size: set '
                'queue_size to a multiple of it and drop_last=True in the '
                'train dataloader.')
        self.queue_u[:, ptr:ptr + num] = key_u.t()
        self.queue_v[:, ptr:ptr + num] = key_v.t()
        self.queue_labels[ptr:ptr + num] = labels.to(self.queue_labels.dtype)
        self.queue_ptr.fill_((ptr + num) % self.queue_size)

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
        # Read the annotations first: a bad batch fails before it changes
        # the history bank, the queues or the momentum encoder.
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
        targets = self.label_targets(indices, labels, distributions)
        pseudo = self.pseudo_labels(targets, indices)

        self.momentum_update()
        key_u, key_v = self.momentum_keys(inputs)
        rank = get_rank()
        local = slice(rank * inputs.size(0), (rank + 1) * inputs.size(0))
        query_u = F.normalize(self.expression_projector(u), dim=1)
        query_v = F.normalize(self.landmark_projector(v), dim=1)
        # Clones: the queues are updated in place below, before backward.
        queue_labels = self.queue_labels.clone()
        contrastive = self.contrastive_loss(
            query_u, key_v[local], self.queue_v.clone(),
            queue_labels, pseudo[local]) + self.contrastive_loss(
                query_v, key_u[local], self.queue_u.clone(), queue_labels,
                pseudo[local])
        self.enqueue(key_u, key_v, pseudo)

        weights = self.loss_weights
        losses['loss_landmark'] = weights['landmark'] * self.landmark_loss(
            heatmaps, target_maps, weight_maps, has_landmarks)
        losses['loss_kl'] = weights['kl'] * F.kl_div(
            F.log_softmax(logits, dim=1),
            targets[local],
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
        return self.neck(feats) if self.with_neck else feats

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
        """Expression features; the landmark tower does not run.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            stage (str): ``'backbone'`` (the expression stage maps),
                ``'neck'`` or ``'pre_logits'`` (the head's). Defaults to
                ``'neck'``.

        Returns:
            tuple[Tensor] | Tensor: The features of ``stage``.
        """
        if stage not in FEATURE_STAGES:
            raise ValueError(f'stage={stage!r} must be one of '
                             f'{FEATURE_STAGES}.')
        feats = tuple(self.backbone.forward_expression(inputs))
        if stage == 'backbone':
            return feats
        feats = self._neck(feats)
        if stage == 'neck':
            return feats
        return self.head.pre_logits(feats)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the expression tower and the head.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            data_samples (list[DataSample], optional): Annotations.
            **kwargs: Passed to the head's ``predict``.

        Returns:
            list[DataSample]: Predictions.
        """
        self._check_single_view(inputs)
        return self.head.predict(
            self.extract_feat(inputs), data_samples, **kwargs)

    def forward_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """The expression tower's logits (the cost of a plain classifier).

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.

        Returns:
            torch.Tensor: ``(N, num_classes)``.
        """
        return self.head(self.extract_feat(inputs))


def sample_indices(data_samples: Sequence[DataSample],
                   device: torch.device) -> torch.Tensor:
    """The dataset index of every sample (``sample_idx`` in its metainfo).

    Args:
        data_samples (Sequence[DataSample]): The batch's samples.
        device (torch.device): Device of the result.

    Returns:
        torch.Tensor: ``(N,)`` long.
    """
    indices = [sample.get('sample_idx') for sample in data_samples]
    if any(index is None for index in indices):
        raise KeyError(
            'LANetClassifier keeps a label history per training sample and '
            'needs sample_idx in every data sample; the dataset must set it '
            "(mmengine's BaseDataset does) and PackFERInputs packs it.")
    return torch.tensor([int(i) for i in indices],
                        dtype=torch.long,
                        device=device)


def landmark_annotations(
        data_samples: Sequence[DataSample],
        device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack the landmarks and their validity of a batch.

    Args:
        data_samples (Sequence[DataSample]): The batch's samples.
        device (torch.device): Device of the results.

    Returns:
        tuple[Tensor, Tensor]: ``(N, K, 2)`` landmarks and ``(N,)`` bool
        ``has_landmarks``.
    """
    fields = ('landmarks', 'has_landmarks')
    for i, sample in enumerate(data_samples):
        missing = [f for f in fields if f not in sample]
        if missing:
            raise KeyError(
                f'Data sample {i} has no {missing}: LANetClassifier trains '
                'a landmark heatmap branch on targets it renders from the '
                'landmarks: add the LandmarkTargets transform before '
                'PackFERInputs in the train pipeline (samples without '
                'landmarks get zero points and has_landmarks=False).')
    landmarks = torch.stack([s.landmarks for s in data_samples]).to(device)
    valid = torch.cat([s.has_landmarks.reshape(-1)
                       for s in data_samples]).to(device).bool()
    return landmarks, valid
