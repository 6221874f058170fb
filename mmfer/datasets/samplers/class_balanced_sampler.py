# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Iterator, List, Optional, Sized, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import MMLogger
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..sample_seed import SampleKey, number_draws


def read_gt_labels(dataset: Sized, owner: str) -> np.ndarray:
    """The ``gt_label`` of every sample, the labels a sampler balances.

    Args:
        dataset (Sized): The dataset; its labels are read with
            ``get_gt_labels()`` (or ``get_data_info(i)['gt_label']``).
        owner (str): The sampler's name, for the error message.

    Returns:
        np.ndarray: int64 labels, one per sample.
    """
    if hasattr(dataset, 'get_gt_labels'):
        labels = dataset.get_gt_labels()
    else:
        labels = [
            dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))
        ]
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(labels) != len(dataset) or (labels < 0).any():
        raise ValueError(f'{owner} needs one non-negative gt_label per '
                         'sample (single-label data).')
    return labels


def shard_draw(indices: List[int], rank: int,
               world_size: int) -> List[Union[int, SampleKey]]:
    """This rank's share of one epoch's draw, made on every rank alike.

    As mmengine's ``DefaultSampler`` does, the draw is padded to a multiple
    of ``world_size`` by wrapping around to its start, and every
    ``world_size``-th index from position ``rank`` is kept, so the ranks get
    disjoint shards of the same length. Repeats are numbered (see
    :func:`~mmfer.datasets.sample_seed.number_draws`) over the whole padded
    draw, so that every rank numbers them alike.

    Args:
        indices (list[int]): The epoch's draw over all ranks.
        rank (int): This process's rank.
        world_size (int): The number of ranks.

    Returns:
        list: The shard of this rank.
    """
    total_size = math.ceil(len(indices) / world_size) * world_size
    padded = (indices * math.ceil(total_size / len(indices)))[:total_size]
    return number_draws(padded)[rank::world_size]


class EpochDrawSampler(Sampler):
    """A sampler whose epoch is one draw from ``(seed, epoch)``, sharded.

    The base of mmfer's label-balancing samplers: every rank makes the same
    draw of the epoch (:meth:`draw`, with a generator seeded with ``seed +
    epoch``) and keeps its shard of it (:func:`shard_draw`). Call
    :meth:`set_epoch` (mmengine's ``DistSamplerSeedHook`` does) before each
    epoch.

    Args:
        dataset (Sized): The dataset.
        num_samples (int, optional): Indices drawn per epoch over all
            ranks. Defaults to None (the dataset length).
        seed (int, optional): Random seed, identical on all ranks. Defaults
            to None (a seed shared through ``sync_random_seed``).
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None) -> None:
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        self.epoch_size = (
            len(dataset) if num_samples is None else int(num_samples))
        if self.epoch_size <= 0:
            raise ValueError(
                f'{type(self).__name__}: num_samples={self.epoch_size} must '
                'be positive (and the dataset non-empty).')
        self.num_samples = math.ceil(self.epoch_size / self.world_size)
        self.total_size = self.num_samples * self.world_size

    def draw(self, generator: torch.Generator) -> List[int]:
        """The epoch's indices over all ranks.

        Args:
            generator (torch.Generator): Seeded with ``seed + epoch``.

        Returns:
            list[int]: Dataset indices.
        """
        raise NotImplementedError

    def __iter__(self) -> Iterator[Union[int, SampleKey]]:
        """Iterate this rank's share of the epoch's draw."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(
            shard_draw(self.draw(generator), self.rank, self.world_size))

    def __len__(self) -> int:
        """The number of samples of this rank."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, which selects the draw.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch


@DATA_SAMPLERS.register_module()
class ClassBalancedSampler(EpochDrawSampler):
    """Oversample rare classes: draw indices with probability 1/class count.

    Each epoch draws ``num_samples`` indices with replacement, sample ``i``
    with probability proportional to ``1 / count(gt_label_i)``, so every
    class is drawn equally often in expectation (the AffectNet recipe of
    POSTER, EAC and DMUE). The counts are of ``gt_label``, the labels
    trained on (after ``label_map`` and label noise).

    The draw depends only on ``(seed, epoch)``; call :meth:`set_epoch`
    (mmengine's ``DistSamplerSeedHook`` does) for a new draw each epoch.
    An index drawn again in the same epoch is yielded as a
    :class:`~mmfer.datasets.sample_seed.SampleKey` carrying its draw number
    (an ``int`` to any dataset), so that an mmfer dataset seeded per sample
    gives every repeat its own augmentation.
    Under distributed training, as in mmengine's ``DefaultSampler``, every
    rank makes the same draw of ``total_size`` indices (``num_samples``
    rounded up to a multiple of the world size) and keeps every
    ``world_size``-th one from position ``rank``: the ranks get disjoint
    shards of the epoch's draw, of the same length.

    Args:
        dataset (Sized): The dataset; its labels are read with
            ``get_gt_labels()`` (or ``get_data_info(i)['gt_label']``).
        num_samples (int, optional): Indices drawn per epoch over all
            ranks. Defaults to None (the dataset length).
        seed (int, optional): Random seed, identical on all ranks. Defaults
            to None (a seed shared through ``sync_random_seed``).

    Examples:
        >>> train_dataloader = dict(
        ...     sampler=dict(type='ClassBalancedSampler'), ...)
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None) -> None:
        super().__init__(dataset, num_samples, seed)
        labels = read_gt_labels(dataset, 'ClassBalancedSampler')
        counts = np.bincount(labels)
        self.class_counts = counts
        self.weights = torch.as_tensor(
            1.0 / counts[labels], dtype=torch.float64)
        present = int((counts > 0).sum())
        MMLogger.get_current_instance().info(
            f'ClassBalancedSampler: {self.total_size} draws per epoch over '
            f'{present} classes (class counts {counts.tolist()}), '
            f'{self.num_samples} per rank')

    def draw(self, generator: torch.Generator) -> List[int]:
        """``total_size`` indices drawn with probability 1/class count.

        Args:
            generator (torch.Generator): Seeded with ``seed + epoch``.

        Returns:
            list[int]: Dataset indices.
        """
        return torch.multinomial(
            self.weights,
            self.total_size,
            replacement=True,
            generator=generator).tolist()
