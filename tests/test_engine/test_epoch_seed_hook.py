# Copyright (c) OpenMMLab. All rights reserved.
import random
from types import SimpleNamespace

import torch
from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmfer.datasets import RAFDBDataset
from mmfer.datasets.sample_seed import sample_seed, seeded_rngs
from mmfer.engine import EpochSeedHook
from mmfer.engine.hooks.epoch_seed_hook import seedable_datasets


def python_draw(results):
    """A pipeline whose output is one draw of Python's RNG."""
    return random.random()


def dataset(root):
    return RAFDBDataset(
        data_root=root, pipeline=[python_draw], serialize_data=False)


class FakeRunner(SimpleNamespace):

    def __init__(self, train_set, loop=EpochBasedTrainLoop, seed=7):
        warnings = []
        super().__init__(
            seed=seed,
            epoch=0,
            train_dataloader=SimpleNamespace(dataset=train_set),
            # the hook only asks which kind of loop it is
            train_loop=loop.__new__(loop),
            logger=SimpleNamespace(warning=warnings.append),
            warnings=warnings)


def seeded_draw(seed, epoch, idx):
    with seeded_rngs(sample_seed(seed, epoch, idx)):
        return random.random()


def test_seeds_the_training_set_per_sample_and_epoch(tiny_rafdb):
    train_set = dataset(tiny_rafdb)
    hook, runner = EpochSeedHook(), FakeRunner(train_set)
    unseeded = train_set[3]
    for epoch in (0, 1):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        assert train_set[3] == train_set[3] == seeded_draw(7, epoch, 3)
    assert seeded_draw(7, 0, 3) != seeded_draw(7, 1, 3) != unseeded
    # a seed given to the hook wins over the runner's
    EpochSeedHook(seed=11).before_train_epoch(runner)
    assert train_set[3] == seeded_draw(11, 1, 3)
    assert runner.warnings == []


def test_finds_the_parts_of_a_concat_dataset(tiny_rafdb):
    parts = [dataset(tiny_rafdb), dataset(tiny_rafdb)]
    concat = ConcatDataset(parts)
    assert seedable_datasets(concat) == parts
    runner = FakeRunner(concat)
    runner.epoch = 2
    EpochSeedHook().before_train_epoch(runner)
    assert parts[1][5] == concat[len(parts[0]) + 5] == seeded_draw(7, 2, 5)


def test_warns_once_where_it_cannot_seed_per_sample(tiny_rafdb):
    repeated = RepeatDataset(dataset(tiny_rafdb), times=2)
    assert seedable_datasets(repeated) == []
    hook, runner = EpochSeedHook(), FakeRunner(repeated)
    hook.before_train_epoch(runner)
    hook.before_train_epoch(runner)
    assert len(runner.warnings) == 1
    assert 'RepeatDataset is not an mmfer dataset' in runner.warnings[0]
    random.seed(0)
    value = repeated[0]
    random.seed(0)
    assert value == random.random()  # still the global stream

    runner = FakeRunner(dataset(tiny_rafdb), loop=IterBasedTrainLoop)
    EpochSeedHook().before_train_epoch(runner)
    assert 'the loop is not epoch-based' in runner.warnings[0]


def test_reseeds_the_main_process_before_the_first_iteration(tiny_rafdb):
    hook, runner = EpochSeedHook(), FakeRunner(dataset(tiny_rafdb))

    def after(event, epoch, **kwargs):
        runner.epoch = epoch
        getattr(hook, event)(runner, **kwargs)
        return torch.rand(3)

    first = after('before_train_iter', 0, batch_idx=0)
    assert torch.equal(after('before_train_iter', 0, batch_idx=0), first)
    assert not torch.equal(after('before_train_iter', 1, batch_idx=0), first)
    assert not torch.equal(after('before_train_epoch', 0), first)
    # later iterations leave the stream alone
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after('before_train_iter', 0, batch_idx=1), expected)
