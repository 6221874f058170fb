# Copyright (c) OpenMMLab. All rights reserved.
import logging
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import ModuleList
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmfer.utils.dist_utils import all_gather_rows
from ..utils.mixture_1d import (SIMILARITY_RULES, bound_similarity,
                                label_similarity, lookup_clean_probability)
from ..utils.sample_bank import SampleBank, sample_indices
from .fer_classifier import FERClassifier
from .fer_system import FERSystem

PREDICTORS = ('net0', 'net1', 'ensemble')
NUM_NETWORKS = 2


def network_view_feats(network: nn.Module,
                       inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                       ) -> List[Tuple[torch.Tensor, ...]]:
    """The features of each training view of one member network.

    Args:
        network (nn.Module): A :class:`FERClassifier` (one or two views, as
            its head needs) or any mmpretrain ``ImageClassifier`` (one view).
        inputs (Tensor | Sequence[Tensor]): Images or views.

    Returns:
        list[tuple[Tensor]]: Backbone (and neck) features per view.
    """
    if isinstance(network, FERClassifier):
        return network.extract_view_feats(network.make_views(inputs))
    if not torch.is_tensor(inputs):
        raise ValueError(
            f'{type(network).__name__} trains on one view but the pipeline '
            "made several; use type='FERClassifier' for a member whose head "
            'trains on two views.')
    return [tuple(network.extract_feat(inputs))]


@MODELS.register_module()
class CoTeachingClassifier(FERSystem):
    """Two classifiers that weight each other's samples (ReSup).

    A *system* of two classifiers (any mmpretrain classifier config,
    different backbones and heads allowed, e.g. :class:`EACHead`) trained by
    one optimiser. Each network ``a`` keeps a lookup table that maps the
    cosine similarity ``s = cos(softmax(z), onehot(y))`` of a sample to the
    probability that its label is clean; :class:`mmfer.engine.ReSupHook`
    fits the tables after each epoch. Before the first fit (the warm-up),
    the loss is the plain sum of both networks' head losses. After it, each
    network's classification loss is weighted per sample by the **other**
    network's clean probability, looked up from that network's similarity in
    the current (train-mode) forward pass, and the two are tied by an
    agreement term::

        L = mean_i[w1_i * CE(z0_i, y_i) + w0_i * CE(z1_i, y_i)]
            + agreement_weight * mean_{i,c}(softmax(z0)_ic - softmax(z1)_ic)^2

    with ``w_a = clamp(table_a[int(bins * bound(s_a))])`` constant (no
    gradient through it). The weight reaches each head through its loss's
    per-sample ``weight`` argument (mmpretrain's losses take one), so every
    head computes its own losses unchanged: an :class:`EACHead` member keeps
    its attention-consistency term unweighted, as EAC computes it.

    The state is buffers, so checkpoints hold it and ``--resume`` restores
    it: the tables (``lookup_tables``), the mixtures they come from
    (``mixture_params``), the number of fits (``num_fits``) and the
    similarities the tables are fitted to (``similarity_bank.values``, one
    row of both networks' similarities per ``sample_idx``, -1 where
    unknown; see :class:`SampleBank`). :meth:`store_similarities` writes
    that bank with the rows of every rank; :class:`ReSupHook` has it do so
    from its statistics pass, or sets :attr:`record_similarities` to have
    each training step do so.

    Args:
        networks (Sequence[dict | nn.Module]): The two member classifiers.
            A dict's ``type`` defaults to ``'FERClassifier'`` and its
            ``backbone`` to a copy of ``backbone``, so
            ``[dict(head=...), dict(head=...)]`` builds two networks of the
            system's backbone (a head without ``in_channels`` gets the
            backbone's width).
        backbone (dict, optional): The backbone of every network that names
            none of its own. Defaults to None.
        agreement_weight (float): Weight of the mean squared difference of
            the two softmax outputs (ReSup: 5). Defaults to 5.0.
        similarity_bounds (tuple[float, float]): What a similarity ``<= 0``
            and ``>= 1`` becomes before the lookup and the fit (ReSup:
            ``(1e-3, 1 - 1e-3)``).
        similarity_rule (str): ``'official'``: only similarities outside
            (0, 1) are replaced, as ReSup's code does; ``'clamp'``: every
            similarity is clamped into ``similarity_bounds`` (mmfer's rule
            before it followed the code; a documented switch). See
            :func:`bound_similarity`. Defaults to ``'official'``.
        similarity_clamp (tuple[float, float], optional): Deprecated alias
            of ``similarity_bounds`` with ``similarity_rule='clamp'``, which
            it meant; warns. Defaults to None.
        weight_clamp (tuple[float, float]): Clamp of the looked-up clean
            probability (ReSup: ``(1e-4, 1 - 1e-4)``).
        lookup_bins (int): Length of each lookup table (ReSup: 100).
        predict_with (str): ``'net0'`` (ReSup evaluates and saves network
            0), ``'net1'``, or ``'ensemble'``, the mean of both softmax
            outputs (two backbone passes). Defaults to ``'net0'``.
        check_pretrained (bool): See :class:`FERSystem`. Defaults to True.
        data_preprocessor (dict | nn.Module, optional): Defaults to network
            0's.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 networks: Sequence[Union[dict, nn.Module]],
                 backbone: Optional[dict] = None,
                 agreement_weight: float = 5.0,
                 similarity_bounds: Tuple[float, float] = (1e-3, 1 - 1e-3),
                 similarity_rule: str = 'official',
                 similarity_clamp: Optional[Tuple[float, float]] = None,
                 weight_clamp: Tuple[float, float] = (1e-4, 1 - 1e-4),
                 lookup_bins: int = 100,
                 predict_with: str = 'net0',
                 check_pretrained: bool = True,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if len(networks) != NUM_NETWORKS:
            raise ValueError(f'networks has {len(networks)} entries; '
                             'CoTeachingClassifier trains exactly two.')
        if predict_with not in PREDICTORS:
            raise ValueError(f'predict_with={predict_with!r} must be one of '
                             f'{PREDICTORS}.')
        if lookup_bins < 2:
            raise ValueError(f'lookup_bins={lookup_bins} must be >= 2.')
        if similarity_clamp is not None:
            print_log(
                'CoTeachingClassifier: similarity_clamp is deprecated; it '
                'clamps every similarity (similarity_rule=\'clamp\'). ReSup'
                "'s code replaces only values outside (0, 1): set "
                "similarity_bounds and similarity_rule='official'.",
                logger='current',
                level=logging.WARNING)
            similarity_bounds, similarity_rule = similarity_clamp, 'clamp'
        if similarity_rule not in SIMILARITY_RULES:
            raise ValueError(f'similarity_rule={similarity_rule!r} must be '
                             f'one of {SIMILARITY_RULES}.')
        members = [self.build_network(net, backbone) for net in networks]
        super().__init__(
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            default_preprocessor=members[0].data_preprocessor,
            check_pretrained=check_pretrained)
        self.networks = ModuleList(members)
        self.agreement_weight = agreement_weight
        self.similarity_bounds = tuple(similarity_bounds)
        self.similarity_rule = similarity_rule
        self.weight_clamp = tuple(weight_clamp)
        self.predict_with = predict_with
        self.register_buffer(
            'lookup_tables',
            torch.zeros(NUM_NETWORKS, lookup_bins, dtype=torch.float64))
        # Per network: two parameters and the weight of each component.
        self.register_buffer(
            'mixture_params',
            torch.zeros(NUM_NETWORKS, 3, 2, dtype=torch.float64))
        # How many times the tables were fitted; 0 during the warm-up.
        self.register_buffer('num_fits', torch.zeros((), dtype=torch.long))
        # -1: no similarity of a softmax to a one-hot label is negative
        self.similarity_bank = SampleBank(
            row_shape=(NUM_NETWORKS, ), fill_value=-1.)
        # Set by ReSupHook(similarity_source='train_step'): each training
        # step then stores its similarities in the bank.
        self.record_similarities = False

    @property
    def lookup_bins(self) -> int:
        """int: Length of each lookup table."""
        return self.lookup_tables.size(1)

    @property
    def fitted(self) -> bool:
        """bool: Whether the tables were fitted (warm-up is over)."""
        return bool(self.num_fits.item() > 0)

    @torch.no_grad()
    def set_noise_model(self, tables: torch.Tensor,
                        params: torch.Tensor) -> None:
        """Install freshly fitted lookup tables and mixture parameters.

        Args:
            tables (Tensor): ``(2, lookup_bins)`` clean probabilities.
            params (Tensor): ``(2, 3, 2)``: per network, the mixture's
                parameters (two rows) and component weights (last row).
        """
        if tables.shape != self.lookup_tables.shape:
            raise ValueError(f'tables of shape {tuple(tables.shape)}, '
                             f'expected {tuple(self.lookup_tables.shape)}.')
        if params.shape != self.mixture_params.shape:
            raise ValueError(f'mixture parameters of shape '
                             f'{tuple(params.shape)}, expected '
                             f'{tuple(self.mixture_params.shape)}.')
        self.lookup_tables.copy_(tables)
        self.mixture_params.copy_(params)
        self.num_fits += 1

    def similarities(self, logits: Sequence[torch.Tensor],
                     labels: torch.Tensor) -> torch.Tensor:
        """Bounded label similarity of each network, without gradient.

        Args:
            logits (Sequence[Tensor]): ``(N, C)`` logits of each network.
            labels (Tensor): ``(N,)`` training labels.

        Returns:
            torch.Tensor: ``(2, N)``.
        """
        return torch.stack([
            bound_similarity(
                label_similarity(z.detach(), labels), self.similarity_bounds,
                self.similarity_rule) for z in logits
        ])

    def clean_probabilities(self, similarities: torch.Tensor) -> torch.Tensor:
        """Look up each network's clean probability of each sample.

        Args:
            similarities (Tensor): ``(2, N)`` bounded similarities.

        Returns:
            torch.Tensor: ``(2, N)``, row ``a`` from network ``a``'s table.
        """
        return torch.stack([
            lookup_clean_probability(
                self.lookup_tables[a], similarities[a],
                self.weight_clamp).to(similarities.dtype)
            for a in range(NUM_NETWORKS)
        ])

    def loss(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
             data_samples: List[DataSample]) -> dict:
        """Both networks' head losses, swapped-weighted after the warm-up.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.
            data_samples (list[DataSample]): Annotations.

        Returns:
            dict[str, Tensor]: ``net0.<head losses>``, ``net1.<head
            losses>`` and, after the warm-up, ``loss_agree``.
        """
        feats = [network_view_feats(net, inputs) for net in self.networks]
        logits = [
            net.head(view_feats[0])
            for net, view_feats in zip(self.networks, feats)
        ]
        labels = torch.cat([s.gt_label for s in data_samples])
        sims = self.similarities(logits, labels.to(logits[0].device))
        if self.record_similarities:
            self.store_similarities(sample_indices(data_samples), sims)
        weights = self.clean_probabilities(sims) if self.fitted else None
        losses = dict()
        for a, (net, view_feats) in enumerate(zip(self.networks, feats)):
            kwargs = dict()
            if weights is not None:
                # the swap: network a learns from network (1 - a)'s decision
                kwargs['weight'] = weights[1 - a]
            if len(view_feats) > 1:
                kwargs['view2_feats'] = view_feats[1]
            head_losses = net.head.loss(view_feats[0], data_samples, **kwargs)
            losses.update(
                {f'net{a}.{k}': v
                 for k, v in head_losses.items()})
        if weights is not None and self.agreement_weight:
            losses['loss_agree'] = self.agreement_weight * F.mse_loss(
                logits[0].softmax(dim=1), logits[1].softmax(dim=1))
        return losses

    @torch.compiler.disable
    @torch.no_grad()
    def store_similarities(self, indices: torch.Tensor,
                           similarities: torch.Tensor) -> None:
        """Write both networks' similarities of some samples, those of every
        rank, into ``similarity_bank``.

        Call it on every rank with the same number of batches (a collective
        under distributed training). Where ranks hold the same sample (the
        padding a distributed sampler adds), the lowest rank's row counts.

        Args:
            indices (Tensor): ``(N,)`` sample indices.
            similarities (Tensor): ``(2, N)``, as :meth:`similarities`.
        """
        indices, rows = all_gather_rows(
            indices.to(similarities.device), similarities.T)
        self.similarity_bank.update(indices, rows)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        key = prefix + 'similarity_bank.values'
        if key not in state_dict:
            # A checkpoint of mmfer before the similarities were model
            # state: start with an empty bank rather than refuse it.
            state_dict[key] = self.similarity_bank.values[:0]
            print_log(
                f'The checkpoint has no {key} (written before ReSup kept its '
                'similarities in the model): the bank starts empty. Nothing '
                "to do for testing; a resumed similarity_source='train_step' "
                'run refills it in its next epoch.',
                logger='current',
                level=logging.WARNING)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def eval_similarities(self, inputs: torch.Tensor,
                          labels: torch.Tensor) -> torch.Tensor:
        """Clamped similarities of both networks in their current mode.

        Args:
            inputs (Tensor): ``(N, C, H, W)`` preprocessed images.
            labels (Tensor): ``(N,)`` training labels.

        Returns:
            torch.Tensor: ``(2, N)``.
        """
        logits = [net(inputs, mode='tensor') for net in self.networks]
        return self.similarities(logits, labels.to(logits[0].device))

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with network 0, network 1 or their ensemble.

        Args:
            inputs (Tensor): ``(N, C, H, W)`` images.
            data_samples (list[DataSample], optional): Annotations.
            **kwargs: Passed to the head's ``predict`` (one network only).

        Returns:
            list[DataSample]: Predictions.
        """
        if self.predict_with != 'ensemble':
            network = self.networks[int(self.predict_with[-1])]
            return network.predict(inputs, data_samples, **kwargs)
        scores = self.forward_tensor(inputs).softmax(dim=1)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(scores.size(0))]
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax())
        return data_samples

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck') -> Tuple[torch.Tensor, ...]:
        """Features of the predicting network, those of both networks in
        order for ``'ensemble'``: the cost of a prediction, as mmpretrain's
        FLOPs counter (``get_flops.py``) and ONNX export measure it.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.
            stage (str): See :meth:`ImageClassifier.extract_feat`.
                Defaults to ``'neck'``.

        Returns:
            tuple[Tensor]: The features.
        """
        if self.predict_with != 'ensemble':
            network = self.networks[int(self.predict_with[-1])]
            return network.extract_feat(inputs, stage=stage)
        return tuple(feat for net in self.networks
                     for feat in net.extract_feat(inputs, stage=stage))

    def forward_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """The predicting network's logits; for ``'ensemble'`` the log of
        the mean softmax, whose softmax is the ensemble's score.

        Args:
            inputs (torch.Tensor): ``(N, C, H, W)`` images.

        Returns:
            torch.Tensor: ``(N, num_classes)``.
        """
        if self.predict_with != 'ensemble':
            network = self.networks[int(self.predict_with[-1])]
            return network(inputs, mode='tensor')
        probs = [net(inputs, mode='tensor').softmax(dim=1)
                 for net in self.networks]
        return torch.stack(probs).mean(dim=0).log()
