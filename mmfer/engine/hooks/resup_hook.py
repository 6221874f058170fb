# Copyright (c) OpenMMLab. All rights reserved.
import csv
import io
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model
from torch.utils.data import DataLoader

from mmfer.datasets.sample_seed import SampleKey
from mmfer.evaluation import noise_detection_metrics
from mmfer.models.utils.mixture_1d import MIXTURES, build_mixture
from mmfer.utils import atomic_write_text
from mmfer.utils.dist_utils import (average_float_buffers, merge_by_index,
                                    padded_shard, sample_info)

SIMILARITY_SOURCES = ('extra_pass', 'train_step')
# The draw number of the statistics pass in the per-sample augmentation
# seeds: no sampler draws a sample this often in one epoch, so the pass gets
# augmentation of its own, independent of the epoch's training draws.
STATS_PASS_DRAW = 2**31 - 1
# Share of samples rated noisy above which the hook warns that training
# has next to nothing left to learn from.
MOSTLY_NOISY = 0.9
CSV_COLUMNS = ('sample_idx', 'img_path', 'train_label', 'clean_label',
               'sim_net0', 'clean_prob_net0', 'sim_net1', 'clean_prob_net1')


def fit_noise_models(similarities: np.ndarray, kind: str, em_iters: int,
                     mixture_cfg: dict,
                     num_bins: int) -> Tuple[np.ndarray, np.ndarray, list]:
    """Fit one mixture per network and build its lookup table.

    Args:
        similarities (np.ndarray): ``(N, 2)``, NaN where unknown.
        kind (str): ``'beta'`` or ``'gaussian'``.
        em_iters (int): EM iterations.
        mixture_cfg (dict): Other arguments of the mixture (initial
            values, clamp).
        num_bins (int): Table length.

    Returns:
        tuple: Tables ``(2, num_bins)``, parameters ``(2, 3, 2)`` and the
        fitted mixtures.
    """
    tables, params, mixtures = [], [], []
    for a in range(similarities.shape[1]):
        values = similarities[:, a]
        mixture = build_mixture(kind, em_iters=em_iters, **mixture_cfg)
        mixture.fit(values[~np.isnan(values)])
        tables.append(mixture.lookup_table(num_bins))
        params.append(mixture.params)
        mixtures.append(mixture)
    return np.stack(tables), np.stack(params), mixtures


@HOOKS.register_module()
class ReSupHook(Hook):
    """Fit ReSup's clean/noisy similarity model after every epoch.

    For a :class:`mmfer.models.CoTeachingClassifier`. After each training
    epoch from the end of the warm-up on, the hook

    1. gets, for every training sample and each network, the similarity
       ``s = cos(softmax(z), onehot(y))`` of its prediction to its training
       label, clamped as the model clamps it. By default
       (``similarity_source='extra_pass'``, the official procedure) from a
       pass over the whole training set in eval mode (BatchNorm running
       statistics) with the training augmentation, without gradients; each
       sample's augmentation in that pass is a draw of its own, seeded from
       (seed, epoch, sample) when ``EpochSeedHook`` seeds the training set.
       With ``'train_step'`` it reuses the similarities the training steps
       of the epoch computed (train mode, each from the weights of its own
       step), which saves that pass: one forward pass of both networks over
       the training set per epoch, about a quarter of an epoch's compute;
    2. keeps them in the model's ``similarity_bank`` (a buffer indexed by
       ``sample_idx``, see :meth:`CoTeachingClassifier.store_similarities`),
       written with the rows of all ranks, counting the padding a
       distributed sampler adds once, so every rank fits the same mixtures;
    3. fits, per network, a fresh 2-component mixture to that network's
       similarities: a Beta mixture (``mixture='beta'``, ReSup's), initial
       components Beta(1, 2) and Beta(2, 1) with weights 0.5, 10 EM
       iterations of weighted moment matching; or a Gaussian mixture
       (``'gaussian'``), which starts at the same means and variances;
    4. installs in the model the monotone lookup table of the posterior of
       the high-similarity ("clean") component;
    5. logs, where the dataset knows which labels it flipped
       (``is_noisy``), the precision, recall and AUROC of each network's
       noisy-sample decision (clean probability < ``noise_threshold``), and
       writes ``<work_dir>/<scores_file>`` (rank 0).

    The hook only schedules: everything a resumed run needs (similarities,
    tables, mixtures, number of fits) is model state, saved and restored
    with the weights.

    Args:
        mixture (str): ``'beta'`` or ``'gaussian'``. Defaults to ``'beta'``.
        em_iters (int): EM iterations (ReSup: 10). Defaults to 10.
        mixture_cfg (dict, optional): Other arguments of the mixture
            (initial values, clamp of the data); defaults are ReSup's.
        warmup_epochs (int): Epochs trained with plain cross-entropy before
            the first fit, at the end of epoch ``warmup_epochs`` (ReSup: 1).
        similarity_source (str): ``'extra_pass'`` or ``'train_step'``.
            Defaults to ``'extra_pass'``.
        noise_threshold (float): Clean probability below which a sample
            counts as detected noisy in the logged metrics. Defaults to 0.5.
        scores_file (str, optional): CSV of per-sample scores in the work
            dir, rewritten after every fit; None writes none. Defaults to
            ``'noise_scores.csv'``.
    """

    priority = 'NORMAL'  # before the CheckpointHook saves the epoch

    def __init__(self,
                 mixture: str = 'beta',
                 em_iters: int = 10,
                 mixture_cfg: Optional[dict] = None,
                 warmup_epochs: int = 1,
                 similarity_source: str = 'extra_pass',
                 noise_threshold: float = 0.5,
                 scores_file: Optional[str] = 'noise_scores.csv') -> None:
        if mixture not in MIXTURES:
            raise ValueError(f'mixture={mixture!r} must be one of '
                             f'{tuple(MIXTURES)}.')
        if similarity_source not in SIMILARITY_SOURCES:
            raise ValueError(f'similarity_source={similarity_source!r} must '
                             f'be one of {SIMILARITY_SOURCES}.')
        if warmup_epochs < 1:
            raise ValueError(
                f'warmup_epochs={warmup_epochs}: the first fit needs the '
                'similarities of at least one trained epoch (>= 1).')
        self.mixture = mixture
        self.em_iters = em_iters
        self.mixture_cfg = dict(mixture_cfg or {})
        # fail at build time on a wrong key, not after the first epoch
        build_mixture(mixture, em_iters=em_iters, **self.mixture_cfg)
        self.warmup_epochs = warmup_epochs
        self.similarity_source = similarity_source
        self.noise_threshold = noise_threshold
        self.scores_file = scores_file

    def before_train(self, runner) -> None:
        """Check the set-up; have the training steps store their
        similarities (``'train_step'`` source).

        Args:
            runner (Runner): The runner.
        """
        model = get_ori_model(runner.model)
        if not callable(getattr(model, 'set_noise_model', None)):
            raise TypeError(
                f'ReSupHook fits the noise models of a two-network system, '
                f'but {type(model).__name__} has no set_noise_model(); use '
                "model=dict(type='CoTeachingClassifier', ...) or remove the "
                'hook.')
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError(
                'ReSupHook refits after every epoch and needs '
                "train_cfg=dict(by_epoch=True, ...); got "
                f'{type(runner.train_loop).__name__}.')
        model.record_similarities = self.similarity_source == 'train_step'

    def after_train_epoch(self, runner) -> None:
        """Refit both noise models from the similarities in the model.

        Args:
            runner (Runner): The runner.
        """
        if runner.epoch + 1 < self.warmup_epochs:
            return
        model = get_ori_model(runner.model)
        if self.similarity_source == 'extra_pass':
            self.similarity_pass(runner)
        known = [t.cpu().numpy() for t in model.similarity_bank.known()]
        sims = merge_by_index([known], len(runner.train_dataloader.dataset))
        tables, params, mixtures = fit_noise_models(
            sims, self.mixture, self.em_iters, self.mixture_cfg,
            model.lookup_bins)
        model.set_noise_model(
            torch.from_numpy(tables).to(model.lookup_tables),
            torch.from_numpy(params).to(model.mixture_params))
        clean = model.clean_probabilities(
            torch.from_numpy(np.nan_to_num(sims.T, nan=0.5)).to(
                model.lookup_tables)).cpu().numpy().T
        clean[np.isnan(sims)] = np.nan
        self._report(runner, sims, clean, mixtures)

    def similarity_pass(self, runner) -> None:
        """Store both networks' similarities of every training sample, from
        an eval-mode pass with the training augmentation, in the model's
        ``similarity_bank`` (every rank passes its share).

        Args:
            runner (Runner): The runner.
        """
        model = get_ori_model(runner.model)
        train_loader = runner.train_dataloader
        rank, world_size = get_dist_info()
        shard = padded_shard(len(train_loader.dataset), rank, world_size)
        loader = DataLoader(
            train_loader.dataset,
            batch_size=train_loader.batch_size,
            sampler=[SampleKey(i, STATS_PASS_DRAW) for i in shard],
            num_workers=train_loader.num_workers,
            collate_fn=train_loader.collate_fn,
            worker_init_fn=train_loader.worker_init_fn,
            pin_memory=train_loader.pin_memory,
            # seeds the workers without drawing from the main process's
            # torch stream, which resumed runs must find as it was
            generator=torch.Generator().manual_seed(runner.epoch))
        if world_size > 1:
            # every rank evaluates its shard with the same networks
            average_float_buffers(model.networks)
        was_training = model.training
        model.eval()
        sims = []
        with torch.no_grad():
            for data_batch in loader:
                data = model.data_preprocessor(data_batch, False)
                inputs = data['inputs']
                if not torch.is_tensor(inputs):
                    inputs = inputs[0]  # a multi-view pipeline's first view
                labels = torch.cat(
                    [s.gt_label for s in data['data_samples']])
                sims.append(model.eval_similarities(inputs, labels))
        model.train(was_training)
        model.store_similarities(torch.tensor(shard), torch.cat(sims, dim=1))

    def _report(self, runner, sims: np.ndarray, clean: np.ndarray,
                mixtures: list) -> None:
        logger = MMLogger.get_current_instance()
        samples = sample_info(runner.train_dataloader.dataset)
        epoch = runner.epoch + 1
        for a, mixture in enumerate(mixtures):
            params = np.round(mixture.params, 4).tolist()
            note = (' (degenerate data: last valid parameters kept)'
                    if mixture.degenerate else '')
            logger.info(f'ReSupHook: epoch {epoch}, network {a}: '
                        f'{self.mixture} mixture {params}{note}, mean clean '
                        f'probability {np.nanmean(clean[:, a]):.4f}')
            known = clean[~np.isnan(clean[:, a]), a]
            flagged = float(np.mean(known < self.noise_threshold))
            if flagged > MOSTLY_NOISY:
                logger.warning(
                    f'ReSupHook: epoch {epoch}: network {a} rates '
                    f'{flagged:.0%} of the training samples noisy, so the '
                    'other network learns from almost none of them. This '
                    'happens when the networks are still near chance after '
                    'the warm-up (e.g. trained from scratch): raise '
                    'warmup_epochs.')
        is_noisy = samples.get('is_noisy')
        if is_noisy is not None and is_noisy.any():
            scalars = {}
            for a in range(clean.shape[1]):
                known = ~np.isnan(clean[:, a])
                metrics = noise_detection_metrics(
                    clean[known, a], is_noisy[known], self.noise_threshold)
                for key in ('precision', 'recall', 'auroc'):
                    scalars[f'resup/net{a}_noise_{key}'] = float(metrics[key])
                logger.info(
                    f'ReSupHook: epoch {epoch}, network {a} noise detection '
                    f'(clean probability < {self.noise_threshold}): '
                    f'precision {metrics["precision"]:.4f}, recall '
                    f'{metrics["recall"]:.4f}, AUROC {metrics["auroc"]:.4f} '
                    f'({metrics["num_flagged"]} flagged, '
                    f'{metrics["num_noisy"]} noisy)')
            runner.visualizer.add_scalars(scalars, step=epoch)
        if self.scores_file and is_main_process():
            path = osp.join(runner.work_dir, self.scores_file)
            atomic_write_text(path, self.scores_csv(sims, clean, samples))

    @staticmethod
    def scores_csv(sims: np.ndarray, clean: np.ndarray,
                   samples: Dict[str, Optional[np.ndarray]]) -> str:
        """The text of the per-sample scores file.

        Args:
            sims (np.ndarray): ``(N, 2)`` similarities.
            clean (np.ndarray): ``(N, 2)`` clean probabilities.
            samples (dict): What :func:`sample_info` knows of the samples.

        Returns:
            str: CSV with a header row (:data:`CSV_COLUMNS`); unknown values
            are empty. Similarities have 9 significant digits, which give
            back the float32 values the networks computed exactly.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(CSV_COLUMNS)

        def cell(key, i):
            values = samples.get(key)
            return '' if values is None else values[i]

        def num(x, fmt):
            return '' if np.isnan(x) else format(x, fmt)

        for i in range(len(sims)):
            writer.writerow([
                i,
                cell('img_path', i),
                cell('train_label', i),
                cell('clean_label', i),
                num(sims[i, 0], '.9g'),
                num(clean[i, 0], '.6f'),
                num(sims[i, 1], '.9g'),
                num(clean[i, 1], '.6f')
            ])
        return out.getvalue()
