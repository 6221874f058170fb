# Copyright (c) OpenMMLab. All rights reserved.
"""LANetClassifier in 2 CPU processes (gloo) against 1 process on the same
global batch.

LA-Net estimates the label distributions, updates the history bank and
fills the queues on the global batch gathered from all ranks, so 2 ranks
with half a batch each must hold the state 1 process holds with the whole
batch. BatchNorm must not depend on the split: the ResNet towers are built
with ``norm_eval=True``, so ``train()`` keeps every BatchNorm in eval mode
(running statistics, a per-sample function) in the online modules and in
the momentum encoder; ``LandmarkFPN``, the projectors and the
label-distribution scorers have no normalisation layers.

The two steps call ``loss`` without an optimiser step in between: the
gathered features' backward keeps only each rank's own slice (the official
``GatherLayer``), so the online weights after an optimiser step differ
from 1 process by design, and so would everything computed from them.
"""
import copy

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer.models.backbones.expression_landmark_backbone  # noqa: F401
import mmfer.models.classifiers.lanet_classifier  # noqa: F401
import mmfer.models.losses.adaptive_wing_loss  # noqa: F401
import mmfer.models.losses.expression_landmark_contrastive_loss  # noqa: F401
import mmfer.models.necks.landmark_fpn  # noqa: F401
import mmfer.models.utils.label_distribution  # noqa: F401
from tool_runs import spawn_gloo

WORLD = 2
LOCAL = 6  # samples per rank
GLOBAL = WORLD * LOCAL
NUM_CLASSES = 7
SIZE = 32
NUM_LANDMARKS = 5
WIDTH = 8
QUEUE = 4 * GLOBAL  # after 2 steps the pointer is at 2 * GLOBAL: no wrap
K = 4  # neighbours: fewer than the global batch, more than a rank's half
# step 1 visits 12 new rows; step 2 revisits 6 of them and adds 6 new ones,
# with one sample drawn twice, in different halves of the batch
INDICES = ([0, 7, 3, 12, 20, 5, 9, 1, 15, 30, 22, 11],
           [9, 3, 40, 0, 33, 41, 12, 42, 43, 9, 44, 30])
STATE_BUFFERS = ('label_history.rows', 'label_history.seen', 'queue.u',
                 'queue.v', 'queue.labels', 'queue.ptr')
LOSSES = ('loss_cls', 'loss_landmark', 'loss_kl')


def build_model() -> torch.nn.Module:
    """The same float64 model in every process, with a momentum encoder
    away from the online modules."""
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='LANetClassifier',
            backbone=dict(
                type='ExpressionLandmarkBackbone',
                backbone=dict(
                    type='ResNet',
                    depth=18,
                    base_channels=WIDTH,
                    stem_channels=WIDTH,
                    out_indices=(0, 1, 2, 3),
                    norm_eval=True)),
            landmark_neck=dict(
                type='LandmarkFPN', out_channels=16,
                num_landmarks=NUM_LANDMARKS),
            head=dict(
                type='LinearClsHead',
                num_classes=NUM_CLASSES,
                in_channels=WIDTH * 8),
            neck=dict(type='GlobalAveragePooling'),
            label_distribution=dict(type='LabelDistributionEstimator', k=K),
            # lower than the official values, so that two steps move the
            # momentum encoder and the bank visibly
            momentum=0.9,
            history_momentum=0.5,
            # the first visit gives max(t) >= 0.5: a threshold between
            # makes some pseudo-labels classes and others ambiguous ids
            confidence=0.6,
            queue_size=QUEUE))
    model.init_weights()
    model = model.double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # confident, varied predictions: the estimated distributions then
        # depend on which neighbours a sample has
        model.head.fc.weight.normal_(0, 2, generator=gen)
        for p in model.momentum_encoder.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen,
                                      dtype=p.dtype))
        # BN statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2, generator=gen)
    model.train()
    assert not any(m.training for m in model.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    return model


def global_batch(step: int):
    """Images and data samples of the whole batch of ``step``."""
    gen = torch.Generator().manual_seed(100 + step)
    inputs = torch.randn(
        GLOBAL, 3, SIZE, SIZE, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, NUM_CLASSES, (GLOBAL, ), generator=gen)
    # float32 points, as PackFERInputs packs them; the model renders the
    # heatmap targets
    landmarks = torch.rand(
        GLOBAL, NUM_LANDMARKS, 2, generator=gen) * (SIZE + 8) - 4
    samples = []
    for i in range(GLOBAL):
        sample = DataSample(metainfo=dict(sample_idx=INDICES[step][i]))
        sample.set_gt_label(int(labels[i]))
        sample.landmarks = landmarks[i]
        # one sample without landmarks in each half: equal counts keep the
        # mean of the ranks' landmark losses the global mean
        sample.has_landmarks = torch.tensor([i % LOCAL != 2])
        samples.append(sample)
    return inputs, samples


def run_steps(model, rank: int = 0, world: int = 1) -> dict:
    """Two ``loss`` calls on this rank's part of the global batches, each
    after a momentum update (MeanTeacherHook's, after the previous step);
    the label-distribution targets are recorded through a spy on the
    history bank, the contrastive loss's arguments through a spy on
    ``contrastive_loss``."""
    label_targets = model.label_history.forward
    contrastive_forward = model.contrastive_loss.forward
    targets, el_args = [], []

    def spy_targets(*args):
        out = label_targets(*args)
        targets.append(out.detach().clone())
        return out

    def spy_el(*args):
        el_args.append(tuple(a.detach().clone() for a in args))
        return contrastive_forward(*args)

    model.label_history.forward = spy_targets
    model.contrastive_loss.forward = spy_el
    num = GLOBAL // world
    losses = []
    for step in range(2):
        inputs, samples = global_batch(step)
        part = slice(rank * num, (rank + 1) * num)
        model.update_teacher()
        out = model.loss(inputs[part], samples[part])
        losses.append({k: v.detach() for k, v in out.items()})
    del model.label_history.forward
    del model.contrastive_loss.forward
    return dict(
        losses=losses,
        targets=targets,
        el_args=el_args,
        buffers={name: model.get_buffer(name).clone()
                 for name in STATE_BUFFERS},
        momentum={
            k: v.clone()
            for k, v in model.momentum_encoder.named_parameters()
        })


def _worker(rank: int, world_size: int, out_dir: str) -> None:
    torch.save(run_steps(build_model(), rank, world_size),
               f'{out_dir}/rank{rank}.pth')


def test_two_ranks_hold_the_state_of_one_process(tmp_path):
    spawn_gloo(_worker, WORLD, tmp_path)
    ranks = [
        torch.load(tmp_path / f'rank{r}.pth', weights_only=True)
        for r in range(WORLD)
    ]
    model = build_model()
    initial = copy.deepcopy(model)
    single = run_steps(model)

    # every rank holds exactly the same bank, queues and momentum encoder
    for name in STATE_BUFFERS:
        assert torch.equal(ranks[0]['buffers'][name],
                           ranks[1]['buffers'][name]), name
    for name in ranks[0]['momentum']:
        assert torch.equal(ranks[0]['momentum'][name],
                           ranks[1]['momentum'][name]), name
    # ... which is the state of one process on the whole batch (float64:
    # a convolution of a half batch may sum in another order)
    for rank in ranks:
        for name in STATE_BUFFERS:
            torch.testing.assert_close(
                rank['buffers'][name], single['buffers'][name], msg=name)
        for name, value in single['momentum'].items():
            torch.testing.assert_close(
                rank['momentum'][name], value, msg=name)

    # the state is not trivial: the bank holds every row once, with rows
    # blended twice; the queue got both steps' keys and class labels; the
    # momentum encoder moved
    bank = single['buffers']
    seen = sorted(set(INDICES[0]) | set(INDICES[1]))
    assert bank['label_history.seen'].nonzero().flatten().tolist() == seen
    assert int(bank['queue.ptr']) == 2 * GLOBAL
    labels = bank['queue.labels'][:2 * GLOBAL]
    assert ((labels > 0) & (labels < NUM_CLASSES)).any()
    assert (labels < 0).any()  # ambiguous ids
    assert (bank['queue.labels'][2 * GLOBAL:] == -1e10).all()
    torch.testing.assert_close(bank['queue.u'].norm(dim=0),
                               torch.ones(QUEUE, dtype=torch.float64))
    moved = dict(initial.momentum_encoder.named_parameters())
    assert all(not torch.allclose(moved[k], v)
               for k, v in single['momentum'].items()
               if k.endswith('conv1.weight'))

    # each rank's targets are its slice of the global targets
    for step in range(2):
        full = single['targets'][step]
        assert full.shape == (GLOBAL, NUM_CLASSES)
        for r, rank in enumerate(ranks):
            assert rank['targets'][step].shape == full.shape
            torch.testing.assert_close(
                rank['targets'][step][r * LOCAL:(r + 1) * LOCAL],
                full[r * LOCAL:(r + 1) * LOCAL])

    # the losses averaged over the ranks are the one-process losses
    for step in range(2):
        for name in LOSSES:
            mean = sum(rank['losses'][step][name] for rank in ranks) / WORLD
            torch.testing.assert_close(
                mean, single['losses'][step][name], msg=f'{name} {step}')

    # EL: the in-batch positives of a rank's queries are that rank's own
    # samples (the official code), so the rank's loss is the one-process
    # loss restricted to its slice, with the same keys, queues and labels
    for step in range(2):
        directions = single['el_args'][2 * step:2 * step + 2]
        mean = 0
        for r, rank in enumerate(ranks):
            part = slice(r * LOCAL, (r + 1) * LOCAL)
            own = sum(
                model.contrastive_loss(query[part], key[part], queue,
                                       queue_labels, pseudo[part])
                for query, key, queue, queue_labels, pseudo in directions)
            expected = model.loss_weights['contrastive'] * own
            torch.testing.assert_close(
                rank['losses'][step]['loss_contrastive'], expected)
            mean = mean + rank['losses'][step]['loss_contrastive'] / WORLD
        # close to one process, not equal: fewer positives per query
        torch.testing.assert_close(
            mean,
            single['losses'][step]['loss_contrastive'],
            rtol=0.1,
            atol=0)


def test_a_rank_alone_would_estimate_other_targets():
    """The check above can fail: the label distribution of a half batch
    (the neighbours of a rank's own samples only) is not the slice of the
    global one."""
    full = run_steps(build_model())['targets'][0]
    # not distributed: rank 0's half of the batch alone
    half = run_steps(build_model(), rank=0, world=WORLD)['targets'][0]
    assert half.shape == (LOCAL, NUM_CLASSES)
    assert (half - full[:LOCAL]).abs().max() > 0.01
