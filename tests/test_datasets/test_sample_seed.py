# Copyright (c) OpenMMLab. All rights reserved.
"""Augmentation seeded per sample, checked with real worker processes."""
import os
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader, default_collate

import mmfer  # noqa: F401
from mmfer.datasets import ClassBalancedSampler, RAFDBDataset
from mmfer.datasets.sample_seed import (SampleKey, number_draws, sample_seed,
                                        seeded_rngs)

RNGS = ('py', 'np', 'torch')


class DrawRandom:
    """A transform that reports one draw of each global RNG, and where."""

    def __call__(self, results):
        return dict(
            idx=results['sample_idx'],
            pid=os.getpid(),
            py=random.random(),
            np=np.random.rand(),
            torch=torch.rand(()).item())


class DropFirst:
    """A transform that rejects sample 0, as a broken image would."""

    def __call__(self, results):
        return None if results['sample_idx'] == 0 else results


def draw_dataset(root, pipeline=(DrawRandom(), )):
    return RAFDBDataset(
        data_root=root, pipeline=list(pipeline), serialize_data=False)


def expected(seed, epoch, idx, draw=0):
    """What DrawRandom must report for one draw of a sample."""
    with seeded_rngs(sample_seed(seed, epoch, idx, draw)):
        return random.random(), np.random.rand(), torch.rand(()).item()


def rows(batch):
    """``(idx, (py, np, torch))`` for every sample of a batch."""
    values = zip(*(batch[k].tolist() for k in RNGS))
    return list(zip(batch['idx'].tolist(), values))


def load_epochs(dataset, epochs, **loader_kwargs):
    """Per epoch ``{idx: draws}``, and the pids of the loading processes."""
    sampler = DefaultSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(
        dataset,
        batch_size=4,
        sampler=sampler,
        collate_fn=default_collate,
        **loader_kwargs)
    draws, pids = [], set()
    for epoch in range(epochs):
        # what EpochSeedHook and mmengine's hooks do before iter(loader)
        dataset.set_sample_seed(0, epoch)
        sampler.set_epoch(epoch)
        seen = {}
        for batch in loader:
            pids.update(batch['pid'].tolist())
            seen.update(rows(batch))
        draws.append(seen)
    return draws, pids


@pytest.mark.parametrize('persistent', [False, True])
def test_fresh_augmentation_every_epoch_in_workers(tiny_rafdb, persistent):
    dataset = draw_dataset(tiny_rafdb)
    draws, pids = load_epochs(
        dataset, 3, num_workers=2, persistent_workers=persistent)
    # real workers: 2 for the whole run, or 2 new ones per epoch
    assert os.getpid() not in pids
    assert len(pids) == (2 if persistent else 6)
    assert [sorted(d) for d in draws] == [list(range(len(dataset)))] * 3
    for epoch, seen in enumerate(draws):
        for idx, values in seen.items():
            assert values == expected(0, epoch, idx), (epoch, idx)
    # every RNG draws anew for every sample in every epoch
    for idx in range(len(dataset)):
        for k in range(len(RNGS)):
            assert len({d[idx][k] for d in draws}) == 3, (idx, RNGS[k])
    # the main process draws exactly what the workers draw
    assert load_epochs(dataset, 3, num_workers=0)[0] == draws


def test_loading_leaves_the_main_process_streams_alone(tiny_rafdb):
    dataset = draw_dataset(tiny_rafdb)
    dataset.set_sample_seed(0, 0)

    def streams():
        return random.random(), np.random.rand(), torch.rand(()).item()

    for load in (False, True):
        random.seed(1)
        np.random.seed(1)
        torch.manual_seed(1)
        if load:
            dataset[3]
            dataset[SampleKey(3, 1)]
        else:
            reference = streams()
    assert streams() == reference


def test_unseeded_dataset_draws_from_the_global_streams(tiny_rafdb):
    """Without set_sample_seed (evaluation sets): mmengine's behaviour."""
    dataset = draw_dataset(tiny_rafdb)
    random.seed(1)
    first = dataset[3]['py']
    random.seed(1)
    assert random.random() == first and dataset[3]['py'] != first


def test_repeated_draws_get_their_own_augmentation(tiny_rafdb):
    dataset = draw_dataset(tiny_rafdb)
    # 84 draws over 28 samples: most samples are drawn several times
    sampler = ClassBalancedSampler(dataset, num_samples=84, seed=0)
    sampler.set_epoch(2)
    dataset.set_sample_seed(5, 2)
    keys = list(sampler)
    assert len(keys) == 84
    loader = DataLoader(
        dataset,
        batch_size=4,
        sampler=sampler,
        num_workers=2,
        collate_fn=default_collate)
    got = [row for batch in loader for row in rows(batch)]
    assert [idx for idx, _ in got] == [int(k) for k in keys]
    draws = {}
    for key, (idx, values) in zip(keys, got):
        draw = getattr(key, 'draw', 0)
        assert values == expected(5, 2, idx, draw), (idx, draw)
        draws.setdefault(idx, []).append(values)
    repeated = [v for v in draws.values() if len(v) > 1]
    assert len(repeated) >= 10
    for values in repeated:
        assert len(set(values)) == len(values)


def test_number_draws_and_sample_key():
    keys = number_draws([4, 2, 4, 4, 2])
    assert keys == [4, 2, 4, 4, 2]
    assert [getattr(k, 'draw', 0) for k in keys] == [0, 0, 1, 2, 1]
    assert type(keys[0]) is int and repr(keys[3]) == 'SampleKey(4, draw=2)'
    again = pickle.loads(pickle.dumps(keys[3]))
    assert isinstance(again, SampleKey) and (again, again.draw) == (4, 2)
    assert np.arange(10)[keys].tolist() == [4, 2, 4, 4, 2]


def test_sample_seed_separates_every_coordinate():
    base = sample_seed(0, 0, 0, 0)
    others = [sample_seed(1, 0, 0, 0), sample_seed(0, 1, 0, 0),
              sample_seed(0, 0, 1, 0), sample_seed(0, 0, 0, 1)]
    assert len({base, *others}) == 5
    assert base == sample_seed(0, 0, 0) and 0 <= base < 2**64


def test_retry_after_a_rejected_sample_is_seeded(tiny_rafdb):
    """mmengine replaces a None sample by a random other index."""
    dataset = draw_dataset(tiny_rafdb, [DropFirst(), DrawRandom()])
    picks = []
    for epoch in (0, 0, 1, 1):
        dataset.set_sample_seed(0, epoch)
        picks.append(dataset[0])
    assert picks[0] == picks[1] and picks[2] == picks[3]
    assert picks[0] != picks[2] and picks[0]['idx'] != 0
