# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional

import numpy as np
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, set_random_seed
from mmpretrain.registry import HOOKS
from torch.utils.data import ConcatDataset

from mmfer.datasets import BaseFERDataset

# The two main-process streams of an epoch.
_EPOCH_START, _FIRST_ITER = 0, 1


def seedable_datasets(dataset) -> List[BaseFERDataset]:
    """The mmfer datasets that a training set draws its samples from.

    Args:
        dataset: The train dataloader's dataset.

    Returns:
        list[BaseFERDataset]: ``[dataset]`` for an mmfer dataset, its parts
        for a ``ConcatDataset`` (mmengine's or torch's) of mmfer datasets,
        and an empty list otherwise: wrappers that repeat samples within an
        epoch (mmengine's ``RepeatDataset``, ``ClassBalancedDataset``) hand
        the inner dataset the same index several times, which a per-index
        seed would give the same augmentation each time.
    """
    if isinstance(dataset, BaseFERDataset):
        return [dataset]
    if isinstance(dataset, ConcatDataset):
        parts = [seedable_datasets(d) for d in dataset.datasets]
        if all(parts):
            return [d for part in parts for d in part]
    return []


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Make the randomness of training a function of (seed, epoch, sample).

    mmengine seeds Python, numpy and torch once per process; a resumed run
    starts from that seed again instead of from where the interrupted run's
    streams were, and data-loading workers keep streams of their own (a
    persistent worker never sees a reseed of the main process, and
    non-persistent ones restart from the same seeds every epoch). This hook
    seeds two things before each epoch of an ``EpochBasedTrainLoop``:

    - The training set's augmentation. It hands the base seed and epoch to
      the mmfer dataset(s) behind the train dataloader (see
      :func:`seedable_datasets`) through
      :meth:`~mmfer.datasets.BaseFERDataset.set_sample_seed`, before the
      loop creates the epoch's dataloader iterator. The dataset then seeds
      the global RNGs for every sample it loads from ``(seed, epoch, index,
      draw)`` in whichever process loads it, so each epoch draws fresh
      augmentation, and it is the same whatever ``num_workers``,
      ``persistent_workers`` or the epoch a run was resumed at.
    - The main process's Python, numpy and torch streams, from ``(seed,
      epoch)``: at the epoch's start (augmentation of a dataset that cannot
      be seeded per sample, loaded with ``num_workers=0``) and again just
      before its first iteration, after the dataloader iterator was
      created (creating one draws from torch's RNG unless its workers
      persist), so the model's own randomness (dropout, drop path) is also
      the same in all those cases.

    Together, a run killed mid-epoch and resumed from its last epoch
    checkpoint reaches the same weights as an uninterrupted one on CPU with
    ``randomness=dict(deterministic=True)``. A training set that cannot be
    seeded per sample (not an mmfer dataset, or wrapped in a dataset that
    repeats samples; use :class:`~mmfer.datasets.ClassBalancedSampler`
    instead of ``ClassBalancedDataset``), and any training set under an
    ``IterBasedTrainLoop`` (which has no epochs to seed from), keeps
    drawing augmentation from the workers' own streams, and a warning says
    so.

    Args:
        seed (int, optional): Base seed. Defaults to the runner's seed.
        diff_rank_seed (bool): Add the rank to the main-process seeds so
            ranks draw different model randomness. Augmentation is seeded
            per sample and so differs between ranks anyway. Defaults to
            False, like mmengine.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 seed: Optional[int] = None,
                 diff_rank_seed: bool = False) -> None:
        self.seed = seed
        self.diff_rank_seed = diff_rank_seed
        self._warned = False

    def _base_seed(self, runner) -> int:
        return runner.seed if self.seed is None else self.seed

    def _seed_main_process(self, runner, stream: int) -> None:
        base = self._base_seed(runner)
        rank = get_rank() if self.diff_rank_seed else 0
        seed = np.random.SeedSequence(
            [base & (2**64 - 1), runner.epoch, stream, rank]).generate_state(1)
        set_random_seed(int(seed[0]) % 2**31)

    def before_train_epoch(self, runner) -> None:
        """Seed the training set and the main process for this epoch.

        Args:
            runner (Runner): The runner.
        """
        self._seed_main_process(runner, _EPOCH_START)
        datasets = seedable_datasets(runner.train_dataloader.dataset)
        epoch_based = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if datasets and epoch_based:
            for dataset in datasets:
                dataset.set_sample_seed(self._base_seed(runner), runner.epoch)
        elif not self._warned:
            self._warned = True
            reason = ('the loop is not epoch-based' if datasets else
                      f'{type(runner.train_dataloader.dataset).__name__} '
                      'is not an mmfer dataset or a ConcatDataset of them')
            runner.logger.warning(
                f'EpochSeedHook cannot seed augmentation per sample '
                f'({reason}): with num_workers > 0 it draws from each '
                'worker\'s own RNG, so epochs may repeat augmentations and '
                'a resumed run may differ from an uninterrupted one.')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Reseed the main process before the epoch's first iteration.

        Args:
            runner (Runner): The runner.
            batch_idx (int): The iteration within the epoch.
            data_batch: The batch. Unused.
        """
        if batch_idx == 0:
            self._seed_main_process(runner, _FIRST_ITER)
