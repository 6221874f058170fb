# Copyright (c) OpenMMLab. All rights reserved.
import math
import os.path as osp
import random
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import DataLoader

import mmfer  # noqa: F401
# the samplers' shared base reads the rank there
from mmfer.datasets.samplers import class_balanced_sampler
from mmfer.datasets.samplers.progressive_class_balanced_sampler import \
    ProgressiveClassBalancedSampler

# RAF-DB 1..7 (Su, Fe, Di, Ha, Sa, An, Ne) -> LA-Net's An, Di, Fe, Ha, Sa,
# Su, Ne
LANET_FROM_RAF = {1: 5, 2: 2, 3: 1, 4: 3, 5: 4, 6: 0, 7: 6}
# the official LA-Net sampler's counts on RAF-DB's clean train labels
# (E=80), in LA-Net's class order
OFFICIAL_COUNTS = {
    0: [705, 717, 281, 4772, 1982, 1290, 2524],
    40: [1229, 1235, 1017, 3263, 1868, 1522, 2137],
    79: [1740, 1741, 1735, 1791, 1756, 1748, 1760],
}


class LabelOnly(torch.utils.data.Dataset):
    """The part of a dataset the sampler reads; items are (index, label)."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, idx):
        return dict(gt_label=int(self.labels[idx]))

    def __getitem__(self, idx):
        return int(idx), int(self.labels[idx])


# 500 / 60 / 30 / 10 samples of classes 0 / 1 / 2 / 3
IMBALANCED = LabelOnly([0] * 500 + [1] * 60 + [2] * 30 + [3] * 10)


def naive_counts(labels, epoch, max_epoch, num_samples):
    """The spec's formula, with exact fractions; the last class takes the
    remainder."""
    sizes = Counter(int(y) for y in labels)
    classes = sorted(sizes)
    t = Fraction(min(epoch, max_epoch), max_epoch)
    counts = {}
    for c in classes[:-1]:
        share = (1 - t) * Fraction(sizes[c], len(labels)) + t / len(classes)
        counts[c] = math.ceil(share * num_samples)
    counts[classes[-1]] = num_samples - sum(counts.values())
    return [counts.get(c, 0) for c in range(max(classes) + 1)]


def drawn_counts(sampler, labels):
    keys = list(sampler)
    return np.bincount(
        np.asarray(labels)[[int(k) for k in keys]],
        minlength=len(sampler.class_sizes)).tolist()


@pytest.mark.parametrize('num_samples', [None, 333, 2000])
def test_counts_follow_the_formula(num_samples):
    sampler = ProgressiveClassBalancedSampler(
        IMBALANCED, max_epoch=10, num_samples=num_samples, seed=0)
    size = len(IMBALANCED) if num_samples is None else num_samples
    for epoch in range(13):
        expected = naive_counts(IMBALANCED.labels, epoch, 10, size)
        sampler.set_epoch(epoch)
        assert sampler.class_counts(epoch).tolist() == expected
        assert drawn_counts(sampler, IMBALANCED.labels) == expected
    # natural mix at epoch 0, uniform from max_epoch on
    if num_samples is None:
        assert sampler.class_counts(0).tolist() == [500, 60, 30, 10]
    assert sampler.class_counts(12).tolist() == sampler.class_counts(
        10).tolist()
    assert max(sampler.class_counts(10)) - min(sampler.class_counts(10)) <= 3


def test_absent_classes_get_nothing():
    labels = [0] * 50 + [2] * 10 + [5] * 5
    sampler = ProgressiveClassBalancedSampler(
        LabelOnly(labels), max_epoch=4, seed=0)
    for epoch in range(5):
        counts = sampler.class_counts(epoch).tolist()
        assert counts == naive_counts(labels, epoch, 4, 65)
        assert counts[1] == counts[3] == counts[4] == 0
    assert sampler.class_counts(4).tolist() == [22, 0, 22, 0, 0, 21]


def test_subsample_without_replacement_else_whole_class_repeats():
    sampler = ProgressiveClassBalancedSampler(IMBALANCED, max_epoch=4, seed=3)
    sampler.set_epoch(4)  # 150 draws of each class
    keys = list(sampler)
    times = Counter(int(k) for k in keys)
    labels = IMBALANCED.labels
    majority = [i for i in np.flatnonzero(labels == 0)]
    # 150 of 500: distinct samples
    assert sum(times[i] for i in majority) == 150
    assert all(times[i] <= 1 for i in majority)
    for c, size in ((1, 60), (2, 30), (3, 10)):
        members = np.flatnonzero(labels == c)
        whole, rest = divmod(150, size)
        got = Counter(times[i] for i in members)
        # every sample `whole` times, `rest` of them once more
        expected = {whole: size - rest, whole + 1: rest}
        assert got == {k: v for k, v in expected.items() if v}
    # the n-th repeat of an index in the epoch says it is draw n
    seen = Counter()
    for key in keys:
        assert getattr(key, 'draw', 0) == seen[int(key)]
        seen[int(key)] += 1


def test_deterministic_per_seed_and_epoch_without_global_rng():
    states = (random.getstate(), np.random.get_state()[1].copy(),
              torch.get_rng_state())
    a = ProgressiveClassBalancedSampler(IMBALANCED, max_epoch=4, seed=5)
    b = ProgressiveClassBalancedSampler(IMBALANCED, max_epoch=4, seed=5)
    first = list(a)
    assert first == list(b) == list(a)
    a.set_epoch(6)
    b.set_epoch(6)
    late = list(a)
    assert late == list(b)
    a.set_epoch(7)  # uniform mix in both, but a new draw, not a new order
    assert sorted(map(int, a)) != sorted(map(int, late))
    other_seed = ProgressiveClassBalancedSampler(
        IMBALANCED, max_epoch=4, seed=6)
    assert list(other_seed) != first
    assert random.getstate() == states[0]
    assert (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])


def test_ranks_get_disjoint_shards_of_one_draw(monkeypatch):
    world, size = 2, 601  # odd: the draw is padded by one
    full = ProgressiveClassBalancedSampler(
        IMBALANCED, max_epoch=4, num_samples=size, seed=1)
    full.set_epoch(2)
    draw = list(full)
    shards = []
    for rank in range(world):
        monkeypatch.setattr(
            class_balanced_sampler,
            'get_dist_info',
            lambda rank=rank: (rank, world))
        sampler = ProgressiveClassBalancedSampler(
            IMBALANCED, max_epoch=4, num_samples=size, seed=1)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(sampler) == 301 and sampler.total_size == 602
    assert [len(s) for s in shards] == [301, 301]
    merged = [shards[i % world][i // world] for i in range(602)]
    # position by position the shards make up the one draw, then the pad
    # wraps to its start as a further draw of that index
    assert merged[:size] == draw
    assert int(merged[size]) == int(draw[0])
    assert merged[size].draw == Counter(map(int, draw))[int(draw[0])]
    pairs = [(int(k), getattr(k, 'draw', 0)) for k in merged]
    assert len(set(pairs)) == 602  # no (index, draw) twice


def test_persistent_workers_follow_set_epoch():
    sampler = ProgressiveClassBalancedSampler(IMBALANCED, max_epoch=4, seed=2)
    loader = DataLoader(
        IMBALANCED,
        batch_size=50,
        sampler=sampler,
        num_workers=2,
        persistent_workers=True)
    for epoch in (0, 4, 1):
        sampler.set_epoch(epoch)
        batches = list(loader)
        loaded = torch.cat([idx for idx, _ in batches]).tolist()
        labels = torch.cat([y for _, y in batches]).numpy()
        assert loaded == [int(k) for k in sampler]
        expected = naive_counts(IMBALANCED.labels, epoch, 4, 600)
        assert np.bincount(labels, minlength=4).tolist() == expected


def rafdb_train_labels(folder):
    with open(osp.join(folder, 'list_patition_label.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    return [int(y) for name, y in rows if name.startswith('train')]


@pytest.mark.parametrize('order', ['lanet', 'rafdb'])
def test_real_rafdb_counts_match_official(shared_rafdb_labels, order):
    raf = rafdb_train_labels(shared_rafdb_labels)
    # both orders end with Neutral, so both give the official counts
    native = {y: y - 1 for y in range(1, 8)}
    to_label = LANET_FROM_RAF if order == 'lanet' else native
    labels = [to_label[y] for y in raf]
    to_lanet = [LANET_FROM_RAF[y] for y in sorted(to_label, key=to_label.get)]
    sampler = ProgressiveClassBalancedSampler(
        LabelOnly(labels), max_epoch=80, seed=0)
    for epoch, official in OFFICIAL_COUNTS.items():
        sampler.set_epoch(epoch)
        counts = drawn_counts(sampler, labels)
        assert [counts[to_lanet.index(c)] for c in range(7)] == official
    for epoch in range(81):
        assert sampler.class_counts(epoch).tolist() == naive_counts(
            labels, epoch, 80, len(labels))
    # an order ending in another class moves draws onto Neutral
    swap = {0: 6, 6: 0}  # LA-Net's order with Anger and Neutral swapped
    anger_last = [swap.get(c, c) for c in map(LANET_FROM_RAF.get, raf)]
    other = ProgressiveClassBalancedSampler(
        LabelOnly(anger_last), max_epoch=80, seed=0).class_counts(40)
    assert [other[6], other[0]] == [1227, 2139]


def test_built_from_config_with_noisy_labels(tiny_rafdb):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(
            dict(
                batch_size=4,
                num_workers=0,
                dataset=dict(
                    type='RAFDBDataset',
                    data_root=tiny_rafdb,
                    noise_rate=0.3,
                    serialize_data=False),
                sampler=dict(
                    type='ProgressiveClassBalancedSampler', max_epoch=5),
                collate_fn=dict(type='default_collate')),
            seed=0)
    sampler = loader.sampler
    assert isinstance(sampler, ProgressiveClassBalancedSampler)
    assert sampler.seed == 0 and len(sampler) == 28
    noisy = sampler.dataset.get_gt_labels()  # counts are of noisy labels
    assert sampler.class_sizes.tolist() == np.bincount(noisy).tolist()
    assert sampler.class_counts(3).tolist() == naive_counts(noisy, 3, 5, 28)
    assert DATA_SAMPLERS.get(
        'ProgressiveClassBalancedSampler') is ProgressiveClassBalancedSampler


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_samples=0'):
        ProgressiveClassBalancedSampler(IMBALANCED, num_samples=0, seed=0)
    with pytest.raises(ValueError, match='max_epoch=0'):
        ProgressiveClassBalancedSampler(IMBALANCED, max_epoch=0, seed=0)
    # six classes of 20 rounded up at every step leave a lone last sample
    # of class 6 below zero
    tiny = LabelOnly([c for c in range(6) for _ in range(20)] + [6])
    with pytest.raises(ValueError, match=r'last class \(6\).*raise num_'):
        ProgressiveClassBalancedSampler(
            tiny, max_epoch=80, num_samples=13, seed=0)
