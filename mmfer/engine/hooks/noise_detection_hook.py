# Copyright (c) OpenMMLab. All rights reserved.
"""Score every training sample with the model, as the test split is scored.

:class:`NoiseDetectionHook` logs the noise-detection figures during
training; ``tools/analysis_tools/noise_report.py`` uses the same pass on a
checkpoint, so the figures the hook logs for an epoch are those the report
computes from that epoch's checkpoint.
"""
import copy
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import broadcast, get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import EpochBasedTrainLoop
from mmengine.utils import track_iter_progress
from mmpretrain.registry import DATASETS, HOOKS
from mmpretrain.utils import get_ori_model
from torch import nn
from torch.utils.data import DataLoader

from mmfer.evaluation import (LABEL_SCORES, NOISE_METRIC_KEYS,
                              NoiseDetectionMetric)
from mmfer.utils.dist_utils import padded_shard, sample_info


def scoring_dataset_cfg(cfg) -> dict:
    """The training set's config with the test split's pipeline.

    Scoring without augmentation makes a sample's score a property of the
    model, not of one random crop. Wrappers such as ``RepeatDataset`` or
    ``ClassBalancedDataset`` are unwrapped so that every training image is
    scored once; the seeded label noise (``noise_rate``, ``noise_seed``)
    or ``noise_file`` stays, so the labels are those training used.

    Args:
        cfg (Config): A full training config.

    Returns:
        dict: A dataset config for ``DATASETS.build``.
    """
    dataset = cfg.get('train_dataloader', {}).get('dataset')
    if dataset is None:
        raise KeyError('the config has no train_dataloader.dataset: the '
                       'noise report scores the training split.')
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    pipeline = loader.get('dataset', {}).get('pipeline')
    if pipeline is None:
        raise KeyError('the config has no test_dataloader.dataset.pipeline '
                       '(nor val_dataloader...): the training split is '
                       'scored with the test pipeline, without augmentation.')
    dataset = copy.deepcopy(dataset)
    while 'pipeline' not in dataset and isinstance(
            dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    if 'pipeline' not in dataset:
        raise ValueError(
            f"train_dataloader.dataset of type {dataset.get('type')!r} has "
            'no pipeline nor one inner dataset with one; score one dataset '
            'at a time (e.g. each part of a ConcatDataset).')
    dataset['pipeline'] = copy.deepcopy(pipeline)
    return dataset


@contextmanager
def rank0_buffers(model: nn.Module) -> Iterator[None]:
    """Use rank 0's buffers (BatchNorm statistics) within the block.

    Ranks keep BatchNorm running statistics of their own; rank 0's are
    the ones its checkpoint saves. Each rank's own are restored afterwards,
    so training goes on as without the pass.

    Args:
        model (nn.Module): The model (not its DDP wrapper).
    """
    if get_dist_info()[1] == 1:
        yield
        return
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]
    for b in buffers:
        broadcast(b, src=0)
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)


@torch.no_grad()
def predict_probabilities(model: nn.Module,
                          loader: DataLoader,
                          progress: bool = False,
                          metric: Optional[BaseMetric] = None) -> np.ndarray:
    """Every sample's predicted class probabilities, in the loader's order.

    Uses the model's own ``test_step`` (its predictor: ``.student`` of
    GSMC, ``predict_with`` of ReSup, LA-Net's expression tower) in eval
    mode.

    Args:
        model (nn.Module): The model (not its DDP wrapper).
        loader (DataLoader): Batches of the scoring dataset.
        progress (bool): Show a progress bar. Defaults to False.
        metric (BaseMetric, optional): Also ``process`` each batch's
            predicted data samples. Defaults to None.

    Returns:
        np.ndarray: ``(n, C)`` float64 ``pred_score``.
    """
    was_training = model.training
    model.eval()
    scores = []
    try:
        batches = track_iter_progress(
            (loader, len(loader))) if progress else loader
        for batch in batches:
            predicted = model.test_step(batch)
            scores += [s.pred_score.cpu() for s in predicted]
            if metric is not None:
                metric.process(batch, [s.to_dict() for s in predicted])
    finally:
        model.train(was_training)
    return torch.stack(scores).double().numpy()


def build_loader(dataset, indices: Sequence[int], batch_size: int,
                 num_workers: int) -> DataLoader:
    """A loader over ``dataset[indices]`` in that order.

    Args:
        dataset (Dataset): The scoring dataset.
        indices (Sequence[int]): Sample indices.
        batch_size (int): Batch size.
        num_workers (int): Loading processes.

    Returns:
        DataLoader: The loader.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(indices),
        num_workers=num_workers,
        collate_fn=pseudo_collate)


@HOOKS.register_module()
class NoiseDetectionHook(Hook):
    """Log how well the model's predictions find the flipped labels.

    After every ``interval`` training epochs (and the last), every training
    sample is predicted with the test pipeline in eval mode; its clean score
    is :func:`mmfer.evaluation.label_scores` of its training label. The hook
    logs, and adds to the visualizer's scalars (``scalars.json``) as
    ``noise/<name>``, the precision, recall, F1 and AUROC of flagging the
    samples whose score is below ``threshold`` as noisy, and the
    memorisation rate (noisy samples predicted as their wrong training
    label), where the dataset knows which labels it flipped
    (``is_noisy``); elsewhere it warns once and does nothing.

    Why an extra pass rather than the training steps' own predictions: the
    systems compute their logits inside ``loss`` in ways of their own (two
    views, two networks, a student and a teacher), and those predictions
    are of augmented images under the weights of each step. One forward
    pass over the training set without gradient costs about a third of a
    training epoch of a one-view model (less for two views or two
    networks); ``interval`` spaces it out.

    The figures are :class:`mmfer.evaluation.NoiseDetectionMetric`'s: the
    hook feeds it the predicted data samples and evaluates it. Under
    distributed training each rank scores its share of the samples (as a
    ``DefaultSampler`` without shuffling deals them) with rank 0's
    BatchNorm statistics, the ones rank 0's checkpoint holds; the metric
    collects the ranks' samples and counts the repeats the sharding adds
    once, and every rank gets the same figures.

    Args:
        interval (int): Score every ``interval`` epochs. Defaults to 1.
        score (str): ``'self_confidence'`` (the predicted probability of the
            training label) or ``'margin'``. Defaults to
            ``'self_confidence'``.
        threshold (float): Flagging threshold of the score. Defaults to 0.5.
        batch_size (int, optional): Batch size of the pass. Defaults to the
            training batch size.
        num_workers (int): Loading processes of the pass. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 1,
                 score: str = 'self_confidence',
                 threshold: float = 0.5,
                 batch_size: Optional[int] = None,
                 num_workers: int = 0) -> None:
        if interval < 1:
            raise ValueError(f'interval={interval} must be >= 1.')
        if score not in LABEL_SCORES:
            raise ValueError(
                f'score={score!r} must be one of {LABEL_SCORES}.')
        self.interval = interval
        self.score = score
        self.threshold = threshold
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.metric = NoiseDetectionMetric(
            score=score, threshold=threshold, with_counts=True)
        self.loader: Optional[DataLoader] = None

    def before_train(self, runner) -> None:
        """Build the scoring set and check that its noise is known.

        Args:
            runner (Runner): The runner.
        """
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError(
                'NoiseDetectionHook scores after training epochs and needs '
                "train_cfg=dict(by_epoch=True, ...); got "
                f'{type(runner.train_loop).__name__}.')
        dataset = DATASETS.build(scoring_dataset_cfg(runner.cfg))
        info = sample_info(dataset)
        if info.get('is_noisy') is None or not info['is_noisy'].any():
            MMLogger.get_current_instance().warning(
                'NoiseDetectionHook: the training set flags no label as '
                'noisy (is_noisy), so there is nothing to detect and the '
                'hook logs nothing; set noise_rate or noise_file on the '
                'training set, or remove the hook.')
            return
        rank, world_size = get_dist_info()
        self.loader = build_loader(
            dataset, padded_shard(len(dataset), rank, world_size),
            self.batch_size or runner.train_dataloader.batch_size,
            self.num_workers)

    def after_train_epoch(self, runner) -> None:
        """Score the training set and log the figures.

        Args:
            runner (Runner): The runner.
        """
        if self.loader is None or not (
                self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            return
        model = get_ori_model(runner.model)
        with rank0_buffers(model):
            predict_probabilities(model, self.loader, metric=self.metric)
        metrics = self.metric.evaluate(len(self.loader.dataset))
        metrics = {k.split('/', 1)[1]: v for k, v in metrics.items()}
        epoch = runner.epoch + 1
        runner.visualizer.add_scalars(
            {f'noise/{k}': float(metrics[k])
             for k in NOISE_METRIC_KEYS},
            step=epoch)
        MMLogger.get_current_instance().info(
            f'NoiseDetectionHook: epoch {epoch}, {self.score} < '
            f'{self.threshold} flags {metrics["num_flagged"]} of '
            f'{metrics["num_samples"]} training samples '
            f'({metrics["num_noisy"]} noisy): ' + ', '.join(
                f'{k} {metrics[k]:.4f}' for k in NOISE_METRIC_KEYS))
