# Copyright (c) OpenMMLab. All rights reserved.
"""Augmentation randomness as a function of (seed, epoch, sample, draw).

Data-loading workers keep their own Python, numpy and torch RNG streams:
persistent workers never see a per-epoch reseed of the main process, and
non-persistent ones restart from the same seeds every epoch. A training set
that holds a :class:`SampleSeeder` instead seeds the three global RNGs for
each sample it loads from ``(seed, epoch, index, draw)``, so a sample's
augmentation depends neither on which process loads it nor on what that
process loaded before, and a resumed run draws what an uninterrupted one
draws.
"""
import random
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Union

import numpy as np
import torch
from torch.utils.data import get_worker_info

# Keeps these streams apart from any other use of SeedSequence on the same
# integers (e.g. a user seeding numpy with the run's seed).
_DOMAIN = 0x6d6d666572  # 'mmfer'
_MASK64 = 2**64 - 1


class SampleKey(int):
    """A dataset index that also carries which draw of it this is.

    A sampler that draws with replacement yields the same index several
    times per epoch; each repeat must get its own augmentation. The n-th
    repeat (``draw = n``, the first draw being 0) is yielded as a
    ``SampleKey``, which any dataset indexes like the plain ``int`` it is,
    and which :class:`SampleSeeder` reads ``draw`` from. It pickles with its
    draw, so it survives the trip to data-loading worker processes.

    Args:
        idx (int): The dataset index.
        draw (int): Which draw of ``idx`` in the epoch, from 0.
    """

    def __new__(cls, idx: int, draw: int) -> 'SampleKey':
        key = super().__new__(cls, idx)
        key.draw = int(draw)
        return key

    def __reduce__(self):
        return SampleKey, (int(self), self.draw)

    def __repr__(self) -> str:
        return f'SampleKey({int(self)}, draw={self.draw})'


def number_draws(indices: Sequence[int]) -> List[Union[int, SampleKey]]:
    """Mark the repeats in one epoch's draw with their draw number.

    Args:
        indices (Sequence[int]): The epoch's indices, in sampling order,
            over all ranks (so that every rank numbers them alike).

    Returns:
        list: ``indices`` with the n-th repeat (n >= 1) of an index
        replaced by ``SampleKey(index, n)``; first draws stay plain ints.
    """
    seen = {}
    keys = []
    for idx in indices:
        draw = seen.get(idx, 0)
        seen[idx] = draw + 1
        keys.append(SampleKey(idx, draw) if draw else idx)
    return keys


def sample_seed(seed: int, epoch: int, idx: int, draw: int = 0) -> int:
    """The 64-bit seed of one draw of one sample in one epoch.

    Args:
        seed (int): The run's base seed.
        epoch (int): The 0-based training epoch.
        idx (int): The dataset index.
        draw (int): Which draw of ``idx`` in the epoch, from 0.

    Returns:
        int: A well-mixed seed in ``[0, 2**64)``.
    """
    words = np.random.SeedSequence(
        [_DOMAIN, seed & _MASK64, epoch, idx, draw]).generate_state(
            2, np.uint32)
    return int(words[0]) | int(words[1]) << 32


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xffffffff)
    torch.default_generator.manual_seed(seed)


@contextmanager
def seeded_rngs(seed: int, restore: bool = True) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global CPU RNGs, then restore.

    Restoring keeps the caller's streams as they were, so that loading data
    in the main process (``num_workers=0``) does not shift the randomness
    the model draws there. Only torch's CPU generator is touched: seeding
    with ``torch.manual_seed`` would also reset the CUDA generators, which
    this context cannot restore.

    Args:
        seed (int): A seed in ``[0, 2**64)``; numpy gets its low 32 bits.
        restore (bool): Restore the streams on exit. Saving and restoring
            numpy's state costs about 70 us, which a data-loading worker,
            whose streams nothing else draws from, can skip. Defaults to
            True.
    """
    if not restore:
        _seed_all(seed)
        yield
        return
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    _seed_all(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class SampleSeeder:
    """The base seed and epoch of a training set, shared with its workers.

    The state lives in a shared-memory tensor: forked workers (persistent
    or not) map the same memory, and spawned workers receive a handle to it
    when the dataset is pickled, so :meth:`set_epoch` in the main process
    reaches workers that already exist. Call it before the epoch's
    ``iter(dataloader)``: workers start loading the epoch's first batches
    there.
    """

    def __init__(self) -> None:
        # [seed, epoch]
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Seed the samples of ``epoch`` from ``seed``.

        Args:
            seed (int): The run's base seed (a signed 64-bit integer).
            epoch (int): The 0-based epoch about to be loaded.
        """
        self._state[0] = seed
        self._state[1] = epoch

    def rngs_for(self, idx: int):
        """A context that seeds the global RNGs for one draw of ``idx``.

        Args:
            idx (int): A dataset index; a :class:`SampleKey` adds its draw.

        Returns:
            A context manager (see :func:`seeded_rngs`).
        """
        seed, epoch = self._state.tolist()
        return seeded_rngs(
            sample_seed(seed, epoch, int(idx), getattr(idx, 'draw', 0)),
            restore=get_worker_info() is None)
