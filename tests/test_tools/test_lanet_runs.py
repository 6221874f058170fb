# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net as users run it: ``tools/dist_train.sh`` with 2 CPU processes
(gloo) and persistent data-loading workers, and a run killed mid-epoch then
continued with ``--resume``, on a tiny RAF-DB replica with its 37 aligned
landmarks (the SynthFER layout)."""
import json
import os.path as osp

import pytest
import torch

from fer_replicas import make_rafdb
from tool_runs import REPO, TRAIN, run, run_dist, run_killed, weights

NUM_TRAIN = 28
SIZE = 32
# the history bank, the queues and the momentum encoder: LA-Net's state
# besides the online weights
BANK = ('label_history.rows', 'label_history.seen')
QUEUES = ('queue.u', 'queue.v', 'queue.labels', 'queue.ptr')
CONFIG = """
_base_ = ['{repo}/configs/lanet/r18_synthfer_noise30.py']
custom_imports = dict(
    imports=['mmfer', 'fer_test_hooks', 'mean_teacher_test_hooks'],
    allow_failed_imports=False)
custom_hooks = [
    dict(type='EpochSeedHook'),
    dict(type='MeanTeacherHook'),
    dict(type='KillAtIterHook'),
    dict(type='SaveRankStateHook'),
    dict(type='SaveRankSampleIdxHook'),
]
# the recipe's augmentation at 32 px
train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='ResizeWithLandmarks', scale=({size}, {size})),
    dict(type='RandomFlipWithLandmarks', prob=0.5, permute_landmarks=False),
    dict(
        type='RandomResizedCropWithLandmarks',
        size={size},
        scale=(0.75, 1.0),
        truncate_landmarks=True),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='RandomErasing',
        erase_prob=0.2,
        min_area_ratio=0.02,
        max_area_ratio=0.2,
        aspect_range=(0.3, 3.3),
        mode='const',
        fill_color=(103.53, 116.28, 123.675)),
    dict(type='LandmarkTargets', num_landmarks=37),
    dict(type='PackFERInputs'),
]
train_dataloader = dict(
    batch_size={batch}, num_workers=2, persistent_workers=True,
    dataset=dict(data_root='{root}', pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
randomness = dict(seed=0, deterministic=True)
default_hooks = dict(logger=dict(interval=1))
# global batch 8: the queue holds 4 batches and wraps within the run;
# 4 neighbours of 7 other samples
model = dict(
    queue_size=32,
    label_distribution=dict(type='LabelDistributionEstimator', k=4))
{extra}"""


def write_config(tmp_path, root, name, batch, epochs, extra=''):
    path = tmp_path / f'{name}.py'
    path.write_text(
        CONFIG.format(
            repo=REPO, root=root, size=SIZE, batch=batch, epochs=epochs,
            extra=extra))
    return str(path)


def lanet_state(state):
    """The bank, the queues and the momentum encoder's parameters
    (``momentum_encoder.*`` without BatchNorm buffers)."""
    keys = BANK + QUEUES
    return {
        k: v
        for k, v in state.items()
        if k in keys or (k.startswith('momentum_encoder.') and not k.endswith(
            ('running_mean', 'running_var', 'num_batches_tracked')))
    }


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = make_rafdb(
        str(tmp_path_factory.mktemp('data') / 'rafdb'),
        num_train=NUM_TRAIN,
        size=SIZE)
    # LA-Net's SynthFER recipe reads 37 aligned points per image
    with open(osp.join(root, 'Annotation', 'aligned',
                       'train_00001_aligned.txt')) as f:
        assert len(f.read().split('\n')) - 1 == 37
    return root


def test_ddp_ranks_end_with_the_same_bank_queues_and_momentum_encoder(
        tmp_path, data_root):
    epochs = 2
    # 4 per rank: 14 samples per rank, 3 full steps per epoch
    cfg = write_config(
        tmp_path, data_root, 'ddp', batch=4, epochs=epochs,
        extra="sync_bn = 'torch'\n")
    work = str(tmp_path / 'work')
    proc = run_dist('dist_train.sh', [cfg, '2', '--work-dir', work])
    # SyncBatchNorm needs GPUs: the CPU launcher drops it with a warning
    assert "sync_bn='torch' is ignored on CPU" in proc.stdout + proc.stderr
    states = [
        torch.load(osp.join(work, f'rank{r}_state.pth'), weights_only=True)
        for r in range(2)
    ]
    loaded = [
        json.load(open(osp.join(work, f'rank{r}_sample_idx.json')))
        for r in range(2)
    ]
    assert [len(x) for x in loaded] == [epochs * 3 * 4] * 2
    assert set(loaded[0]) != set(loaded[1])

    ours = [lanet_state(s) for s in states]
    assert set(ours[0]) >= set(BANK + QUEUES)
    assert any(
        k.startswith('momentum_encoder.module.backbone.') for k in ours[0])
    for key in ours[0]:
        assert torch.equal(ours[0][key], ours[1][key]), key
    # the bank has a row for every sample either rank loaded: both ranks
    # update it with the gathered batch
    seen = states[0]['label_history.seen'].nonzero().flatten().tolist()
    assert seen == sorted(set(loaded[0]) | set(loaded[1]))
    # 6 global batches of 8 through a queue of 32
    assert int(states[0]['queue.ptr']) == 48 % 32
    assert (states[0]['queue.labels'] > -1e9).all()
    # BatchNorm statistics are each rank's own: mmengine's DDP wrapper
    # does not broadcast buffers, and sync_bn is off on CPU
    stats = [k for k in states[0] if k.endswith('running_mean')]
    assert any(not torch.equal(states[0][k], states[1][k]) for k in stats)

    # the checkpoint (rank 0's) holds the same state
    saved = weights(osp.join(work, f'epoch_{epochs}.pth'))
    for key, value in ours[0].items():
        assert torch.equal(saved[key], value), key


def test_resume_after_kill_reaches_the_uninterrupted_state(
        tmp_path, data_root):
    epochs, steps = 3, NUM_TRAIN // 8
    cfg = write_config(tmp_path, data_root, 'lanet', batch=8, epochs=epochs)
    reference, crashed = str(tmp_path / 'full'), str(tmp_path / 'crashed')
    run([TRAIN, cfg, '--work-dir', reference])
    # in epoch 3, after its first step
    kill_at = 2 * steps + 1
    proc = run_killed([TRAIN, cfg, '--work-dir', crashed],
                      env=dict(MMFER_KILL_AT_ITER=str(kill_at)))
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not osp.exists(osp.join(crashed, f'epoch_{epochs}.pth'))
    # the checkpoint the run resumes from holds epoch 2's bank and queues
    saved = weights(osp.join(crashed, 'epoch_2.pth'))
    expected = weights(osp.join(reference, 'epoch_2.pth'))
    for key in BANK + QUEUES:
        assert torch.equal(saved[key], expected[key]), key
    assert int(saved['label_history.seen'].sum()) > 0

    run([TRAIN, cfg, '--work-dir', crashed, '--resume',
         osp.join(crashed, 'epoch_2.pth')])
    final = [
        weights(osp.join(work, f'epoch_{epochs}.pth'))
        for work in (reference, crashed)
    ]
    assert final[0].keys() == final[1].keys()
    assert set(lanet_state(final[0])) < set(final[0])
    for key in final[0]:
        assert torch.equal(final[0][key], final[1][key]), key
    # the last epoch did change the state the resumed run restored
    assert not torch.equal(final[0]['label_history.rows'],
                           expected['label_history.rows'])
    assert not torch.equal(final[0]['queue.u'], expected['queue.u'])
