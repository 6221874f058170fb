# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sized

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import DATA_SAMPLERS

from .class_balanced_sampler import EpochDrawSampler, read_gt_labels


@DATA_SAMPLERS.register_module()
class ProgressiveClassBalancedSampler(EpochDrawSampler):
    """Move the class mix of each epoch from natural to uniform (LA-Net).

    With ``n_c`` samples of class ``c`` among ``N``, ``C`` classes and
    ``t = min(epoch, max_epoch) / max_epoch``, epoch ``epoch`` draws

        ``ceil(((1 - t) * n_c / N + t / C) * num_samples)``

    indices of every class but the last, and the last class takes the
    remainder, so the epoch has ``num_samples`` indices; at epoch 0 this is
    the dataset's own mix, from ``max_epoch`` on it is uniform. Counts are of
    ``gt_label``, the labels trained on (after ``label_map`` and label
    noise), and ``C`` counts the classes that have samples. A class drawn at
    most ``n_c`` times is subsampled without replacement; a larger count
    takes the whole class as often as it fits and a subsample for the rest.
    The indices of all classes are then shuffled together.

    This is the sampler of the official LA-Net code, with three differences:

    - The counts are computed in exact integer arithmetic. Evaluated in
      floating point, the formula can round an exact integer up: on
      RAF-DB's train labels, Anger at epoch 20 of 80 is exactly 967 draws,
      and the float expression above gives 968.
    - The draw depends only on ``(seed, epoch)`` through a private
      generator; the official code reseeds numpy's global RNG with the
      epoch, which this sampler leaves alone.
    - ``num_samples`` may differ from the dataset length; the official code
      always draws ``N``.

    "Last class" is the highest label index with samples, so the counts
    depend on the class order. RAF-DB's native order and LA-Net's (An, Di,
    Fe, Ha, Sa, Su, Ne) both end with Neutral and so give the same per-class
    counts, those of the official code; an order ending with another class
    shifts a few draws between that class and Neutral.

    Call :meth:`set_epoch` (mmengine's ``DistSamplerSeedHook`` does) before
    each epoch. An index drawn again in the same epoch is yielded as a
    :class:`~mmfer.datasets.sample_seed.SampleKey` carrying its draw number
    (an ``int`` to any dataset), so that an mmfer dataset seeded per sample
    gives every repeat its own augmentation. Under distributed training,
    as in mmengine's ``DefaultSampler``, every rank makes the same draw,
    pads it to a multiple of the world size by wrapping around, and keeps
    every ``world_size``-th index from position ``rank``.

    Args:
        dataset (Sized): The dataset; its labels are read with
            ``get_gt_labels()`` (or ``get_data_info(i)['gt_label']``).
        max_epoch (int): The epoch at which the mix becomes uniform, the
            training length in the official code. Defaults to 80.
        num_samples (int, optional): Indices drawn per epoch over all
            ranks. Defaults to None (the dataset length).
        seed (int, optional): Random seed, identical on all ranks. Defaults
            to None (a seed shared through ``sync_random_seed``).

    Examples:
        >>> train_dataloader = dict(
        ...     sampler=dict(
        ...         type='ProgressiveClassBalancedSampler', max_epoch=80),
        ...     ...)
    """

    def __init__(self,
                 dataset: Sized,
                 max_epoch: int = 80,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None) -> None:
        name = type(self).__name__
        if int(max_epoch) < 1:
            raise ValueError(f'{name}: max_epoch={max_epoch} must be >= 1; '
                             'set it to the number of training epochs.')
        self.max_epoch = int(max_epoch)
        super().__init__(dataset, num_samples, seed)
        labels = read_gt_labels(dataset, name)
        self.class_sizes = np.bincount(labels)
        self.class_indices = [
            np.flatnonzero(labels == c) for c in range(len(self.class_sizes))
        ]
        self._check_counts()
        MMLogger.get_current_instance().info(
            f'{name}: {self.epoch_size} draws per epoch, {self.num_samples} '
            f'per rank; class counts at epoch 0 '
            f'{self.class_counts(0).tolist()}, at epoch {self.max_epoch - 1} '
            f'{self.class_counts(self.max_epoch - 1).tolist()}')

    def class_counts(self, epoch: int) -> np.ndarray:
        """The number of draws of each class in one epoch.

        Args:
            epoch (int): The 0-based epoch.

        Returns:
            np.ndarray: int64 counts, one per label index (0 for a class
            without samples), summing to ``epoch_size`` (the draws of all
            ranks, before padding).
        """
        present = np.flatnonzero(self.class_sizes).tolist()
        sizes = [int(self.class_sizes[c]) for c in present]
        size, num_classes = sum(sizes), len(present)
        done, todo = min(epoch, self.max_epoch), self.max_epoch
        counts = np.zeros(len(self.class_sizes), dtype=np.int64)
        for c, n_c in zip(present[:-1], sizes):
            # ((1 - t) * n_c / N + t / C) * M over the common denominator
            numerator = self.epoch_size * (
                (todo - done) * n_c * num_classes + done * size)
            counts[c] = -(-numerator // (todo * num_classes * size))
        counts[present[-1]] = self.epoch_size - counts.sum()
        return counts

    def _check_counts(self) -> None:
        # Rounding the other classes up can leave a rare last class less
        # than nothing in a small epoch; fail now, not epochs into training.
        last = int(np.flatnonzero(self.class_sizes)[-1])
        for epoch in range(self.max_epoch + 1):
            counts = self.class_counts(epoch)
            if counts[last] < 0:
                raise ValueError(
                    f'{type(self).__name__}: with num_samples='
                    f'{self.epoch_size}, class sizes '
                    f'{self.class_sizes.tolist()} and max_epoch='
                    f'{self.max_epoch}, rounding up the other classes leaves '
                    f'the last class ({last}) {counts[last]} draws at epoch '
                    f'{epoch}; raise num_samples.')

    def _draw_class(self, c: int, count: int,
                    generator: torch.Generator) -> List[int]:
        members = self.class_indices[c]
        whole, rest = divmod(count, len(members))
        pick = torch.randperm(len(members), generator=generator)[:rest]
        return np.concatenate([np.tile(members, whole),
                               members[pick.numpy()]]).tolist()

    def draw(self, generator: torch.Generator) -> List[int]:
        """This epoch's class counts, drawn class by class, shuffled.

        Args:
            generator (torch.Generator): Seeded with ``seed + epoch``.

        Returns:
            list[int]: Dataset indices.
        """
        indices = []
        for c, count in enumerate(self.class_counts(self.epoch).tolist()):
            if count:
                indices += self._draw_class(c, count, generator)
        order = torch.randperm(len(indices), generator=generator).tolist()
        return [indices[i] for i in order]
