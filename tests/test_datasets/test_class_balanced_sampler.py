# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATA_SAMPLERS

import mmfer  # noqa: F401
from mmfer.datasets import ClassBalancedSampler
from mmfer.datasets.samplers import class_balanced_sampler


class LabelOnly:
    """The part of a dataset the sampler reads."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, idx):
        return dict(gt_label=int(self.labels[idx]))


# 900 / 90 / 10 samples of classes 0 / 1 / 2
IMBALANCED = LabelOnly([0] * 900 + [1] * 90 + [2] * 10)


def test_draws_classes_equally():
    sampler = ClassBalancedSampler(IMBALANCED, num_samples=30000, seed=0)
    assert len(sampler) == 30000 and sampler.class_counts.tolist() == [
        900, 90, 10
    ]
    drawn = IMBALANCED.labels[list(sampler)]
    share = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.015)
    # default: one dataset length per epoch
    assert len(ClassBalancedSampler(IMBALANCED, seed=0)) == 1000


def test_deterministic_per_seed_and_epoch():
    a = ClassBalancedSampler(IMBALANCED, seed=5)
    b = ClassBalancedSampler(IMBALANCED, seed=5)
    assert list(a) == list(b) == list(a)
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    assert list(ClassBalancedSampler(IMBALANCED, seed=6)) != first


def test_ddp_ranks_get_disjoint_equal_shards(monkeypatch):
    world = 3
    full = ClassBalancedSampler(IMBALANCED, num_samples=1002, seed=1)
    full.set_epoch(4)
    shards = []
    for rank in range(world):
        monkeypatch.setattr(
            class_balanced_sampler,
            'get_dist_info',
            lambda rank=rank: (rank, world))
        sampler = ClassBalancedSampler(IMBALANCED, num_samples=1000, seed=1)
        sampler.set_epoch(4)
        shards.append(list(sampler))
        assert len(sampler) == 334 and sampler.total_size == 1002
    assert [len(s) for s in shards] == [334] * 3
    # the shards interleave back into the one draw of all 1002 positions
    merged = [shards[i % world][i // world] for i in range(1002)]
    assert merged == list(full)


def test_built_from_config_with_a_real_dataset(tiny_rafdb):
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
                sampler=dict(type='ClassBalancedSampler', num_samples=40),
                collate_fn=dict(type='default_collate')),
            seed=0)
    sampler = loader.sampler
    assert isinstance(sampler, ClassBalancedSampler) and len(sampler) == 40
    assert sampler.seed == 0
    noisy = sampler.dataset.get_gt_labels()  # counts are of the noisy labels
    assert sampler.class_counts.tolist() == np.bincount(noisy).tolist()
    assert DATA_SAMPLERS.get('ClassBalancedSampler') is ClassBalancedSampler


def test_bad_num_samples():
    with pytest.raises(ValueError, match='num_samples=0'):
        ClassBalancedSampler(IMBALANCED, num_samples=0, seed=0)


def test_repeats_carry_their_draw_number():
    sampler = ClassBalancedSampler(IMBALANCED, num_samples=3000, seed=2)
    keys = list(sampler)
    seen = {}
    for key in keys:
        # the n-th repeat of an index in the epoch says it is draw n
        assert getattr(key, 'draw', 0) == seen.get(int(key), 0)
        seen[int(key)] = seen.get(int(key), 0) + 1
    assert max(seen.values()) > 10  # class 2's 10 samples share ~1000 draws
