# Copyright (c) OpenMMLab. All rights reserved.
"""The mean teacher: EMA closed form, the update hook, save and resume."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.runner import Runner
from mmpretrain.registry import MODELS, OPTIM_WRAPPERS
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

import mmfer  # noqa: F401
from mmfer.engine import MeanTeacherHook
from toy_fer import ToyFER

ITERS = 3  # per epoch: 12 samples, batch 4


@MODELS.register_module(force=True)
class TinyMeanTeacherNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return (torch.relu(self.bn(self.conv(x))), )


class RecordStudent(Hook):
    """Record the teacher at the start and the student after every step."""

    priority = 'LOW'  # after MeanTeacherHook (NORMAL)

    def __init__(self):
        self.students, self.teacher_at_start = [], None

    def before_train(self, runner):
        self.teacher_at_start = params(runner.model.teacher.module)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.students.append(params(runner.model.student))


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def system_cfg():
    return dict(
        type='MeanTeacherClassifier',
        student=dict(
            type='FERClassifier',
            backbone=dict(type='TinyMeanTeacherNet'),
            head=dict(type='GSMCHead', num_classes=7, in_channels=8)))


@pytest.fixture(autouse=True)
def clean_loggers():
    yield
    MMLogger._instance_dict.clear()


def make_runner(work_dir,
                hooks,
                epochs=2,
                optim_wrapper=None,
                model=None,
                dataset=None,
                batch_size=4,
                **kwargs):
    return Runner(
        model=model or system_cfg(),
        work_dir=str(work_dir),
        # runners built within one second would share logger and scope
        experiment_name=f'mean_teacher_{id(hooks)}',
        train_dataloader=dict(
            dataset=dataset or ToyFER(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=batch_size,
            num_workers=0),
        optim_wrapper=optim_wrapper
        or dict(optimizer=dict(type='Adam', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        custom_hooks=hooks,
        default_hooks=dict(
            logger=None, checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmpretrain',
        **kwargs)


def test_ema_equals_the_closed_form():
    """alpha_k = 1 - 1/(k+1): the teacher is the running mean of its start
    and the k student states; alpha is capped at 0.999."""
    torch.manual_seed(0)
    model = MODELS.build(system_cfg())
    start = params(model.teacher.module)
    total = [p.clone() for p in start]
    for k in range(1, 6):
        with torch.no_grad():
            for p in model.student.parameters():
                p.copy_(torch.randn_like(p))
        total = [t + s for t, s in zip(total, params(model.student))]
        model.update_teacher()
        for t, expected in zip(model.teacher.module.parameters(), total):
            assert torch.allclose(t, expected / (k + 1), atol=1e-6)
    assert int(model.teacher.steps) == 6
    # late in training: alpha = min(1 - 1/(step + 1), 0.999) = 0.999
    model.teacher.steps.fill_(5000)
    before = params(model.teacher.module)
    model.update_teacher()
    for t, b, s in zip(model.teacher.module.parameters(), before,
                       model.student.parameters()):
        assert torch.allclose(t, 0.999 * b + 0.001 * s, atol=1e-6)


def assert_teacher_is_ema_of(runner, recorder, students):
    """The teacher is the EMA of ``students`` from its start, and only of
    them (its step count says how many updates it had)."""
    expected = recorder.teacher_at_start
    for k, student in enumerate(students, start=1):
        alpha = min(1 - 1 / (k + 1), 0.999)
        expected = [
            alpha * t + (1 - alpha) * s for t, s in zip(expected, student)
        ]
    teacher = params(runner.model.teacher.module)
    for t, e in zip(teacher, expected):
        assert torch.allclose(t, e, atol=1e-6)
    assert int(runner.model.teacher.steps) == 1 + len(students)
    assert not all(
        torch.equal(t, s) for t, s in zip(teacher, recorder.students[-1]))


def test_hook_updates_the_teacher_after_every_step(tmp_path):
    recorder = RecordStudent()
    runner = make_runner(tmp_path, [MeanTeacherHook(), recorder])
    runner.train()
    assert len(recorder.students) == 2 * ITERS
    assert_teacher_is_ema_of(runner, recorder, recorder.students)
    # the step watchers are removed when training ends
    assert not runner.optim_wrapper.optimizer._optimizer_step_post_hooks


def test_accumulated_iterations_do_not_update_the_teacher(tmp_path):
    """accumulative_counts=2: 6 iterations, the optimiser steps after the
    2nd, 4th and 6th only, and the teacher follows those 3 steps."""
    recorder = RecordStudent()
    runner = make_runner(
        tmp_path, [MeanTeacherHook(), recorder],
        optim_wrapper=dict(
            optimizer=dict(type='Adam', lr=0.01), accumulative_counts=2))
    runner.train()
    students = recorder.students
    assert len(students) == 2 * ITERS
    # odd iterations only accumulate: the student does not move
    for before, after in zip([recorder.teacher_at_start] + students[1::2],
                             students[0::2]):
        assert all(torch.equal(b, a) for b, a in zip(before, after))
    assert_teacher_is_ema_of(runner, recorder, students[1::2])


@OPTIM_WRAPPERS.register_module(force=True)
class CPUScaledOptimWrapper(AmpOptimWrapper):
    """mmengine's AMP loss scaling (its backward and step) with torch's CPU
    GradScaler: mmengine's AmpOptimWrapper itself requires a GPU. Mixed
    precision is left out; what matters here is the skipped step."""

    optim_context = OptimWrapper.optim_context

    def __init__(self, optimizer, **kwargs):
        OptimWrapper.__init__(self, optimizer, **kwargs)
        self.loss_scaler = torch.amp.GradScaler('cpu')
        self._scale_update_param = None
        self.cast_dtype = None


class PoisonIters(Hook):
    """Make the student's features NaN at the given iterations, so that
    the loss scaler finds non-finite gradients and skips the step."""

    def __init__(self, iters):
        self.iters = iters

    def before_train(self, runner):
        runner.model.student.backbone.register_forward_hook(
            lambda module, args, out: tuple(
                o * float('nan') if runner.iter in self.iters else o
                for o in out))


def test_skipped_amp_steps_do_not_update_the_teacher(tmp_path):
    poisoned = (1, 4)
    recorder = RecordStudent()
    runner = make_runner(
        tmp_path, [MeanTeacherHook(), recorder, PoisonIters(poisoned)],
        optim_wrapper=dict(
            type='CPUScaledOptimWrapper',
            optimizer=dict(type='Adam', lr=0.01)))
    runner.train()
    students = recorder.students
    assert runner.optim_wrapper.loss_scaler.get_scale() == 2.0**16 / 4
    for i in poisoned:  # the student did not move: the step was skipped
        assert all(torch.equal(b, a)
                   for b, a in zip(students[i - 1], students[i]))
    stepped = [s for i, s in enumerate(students) if i not in poisoned]
    assert len(stepped) == 2 * ITERS - 2
    assert_teacher_is_ema_of(runner, recorder, stepped)


@pytest.mark.parametrize('interval', [1, 2])
def test_teacher_is_checkpointed_and_resumed(tmp_path, interval):
    """With interval=2 the run stops after 3 steps (one update), so the
    resumed run must know that its first step is the 4th to update after
    the 4th and the 6th, as the uninterrupted run does."""
    full = make_runner(tmp_path / 'full', [MeanTeacherHook(interval)])
    full.train()
    saved = torch.load(
        tmp_path / 'full' / 'epoch_1.pth',
        map_location='cpu',
        weights_only=False)
    ckpt = saved['state_dict']
    assert saved['mean_teacher_optimizer_steps'] == ITERS
    assert int(ckpt['teacher.steps']) == 1 + ITERS // interval
    assert int(full.model.teacher.steps) == 1 + 2 * ITERS // interval
    assert any(k.startswith('teacher.module.backbone') for k in ckpt)

    recorder = RecordStudent()
    resumed = make_runner(
        tmp_path / 'resumed', [MeanTeacherHook(interval), recorder],
        resume=True,
        load_from=str(tmp_path / 'full' / 'epoch_1.pth'))
    resumed.train()
    saved = [
        v for k, v in ckpt.items() if k.startswith('teacher.module.')
        and 'running' not in k and 'num_batches' not in k
    ]
    assert len(saved) == len(recorder.teacher_at_start)
    for s, r in zip(saved, recorder.teacher_at_start):
        assert torch.equal(s, r)  # the resumed teacher is the saved one
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        if key.startswith('teacher.'):
            assert torch.equal(a[key], b[key]), key


def test_hook_refuses_a_model_without_teacher(tmp_path):
    runner = Runner(
        model=dict(
            type='FERClassifier',
            backbone=dict(type='TinyMeanTeacherNet'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=7, in_channels=8)),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToyFER(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        custom_hooks=[dict(type='MeanTeacherHook')],
        default_hooks=dict(logger=None),
        default_scope='mmpretrain',
        experiment_name='mean_teacher_refused')
    with pytest.raises(TypeError, match='MeanTeacherClassifier'):
        runner.train()
    with pytest.raises(ValueError, match='interval'):
        MeanTeacherHook(interval=0)


class CountUpdates(nn.Module):
    """A model that only counts its teacher updates."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        self.updates = 0

    def update_teacher(self):
        self.updates += 1


def test_every_optimiser_of_a_wrapper_dict_is_watched_once():
    model = CountUpdates()
    wrappers = OptimWrapperDict(
        a=OptimWrapper(torch.optim.SGD(model.a.parameters(), lr=0.1)),
        b=OptimWrapper(torch.optim.SGD(model.b.parameters(), lr=0.1)))
    runner = SimpleNamespace(model=model, optim_wrapper=wrappers)
    hook = MeanTeacherHook()
    hook.before_train(runner)
    hook.before_train(runner)  # e.g. a second runner.train()
    for wrapper in wrappers.values():
        assert len(wrapper.optimizer._optimizer_step_post_hooks) == 1
    hook.after_train_iter(runner, 0)  # nothing stepped
    assert model.updates == 0
    wrappers['b'].step()
    hook.after_train_iter(runner, 1)
    wrappers['a'].step()
    wrappers['b'].step()  # both in one iteration: one step of the system
    hook.after_train_iter(runner, 2)
    assert model.updates == 2 and hook.optimizer_steps == 2


class ToyLandmarkFER(Dataset):
    """16 random 32x32 images with 5 landmarks each, for LA-Net."""

    metainfo = dict(classes=tuple(str(i) for i in range(7)))

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.imgs = torch.rand(16, 3, 32, 32, generator=gen) * 255
        self.landmarks = torch.rand(16, 5, 2, generator=gen) * 32

    def __len__(self):
        return 16

    def __getitem__(self, idx):
        sample = DataSample(metainfo=dict(sample_idx=idx))
        sample.set_gt_label(idx % 7)
        sample.landmarks = self.landmarks[idx]
        sample.has_landmarks = torch.tensor([True])
        return dict(inputs=self.imgs[idx], data_samples=sample)


class RecordOnline(Hook):
    """Record LA-Net's momentum encoder at the start and its online
    modules after every step."""

    priority = 'LOW'  # after MeanTeacherHook (NORMAL)

    def __init__(self):
        self.online, self.teacher_at_start = [], None

    def before_train(self, runner):
        self.teacher_at_start = params(runner.model.momentum_encoder.module)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.online.append(params(runner.model.online_modules()))


def test_lanet_momentum_encoder_follows_real_steps_only(tmp_path):
    """LA-Net's momentum encoder through the same hook: accumulative_counts=2
    over 6 iterations, 3 optimiser steps, 3 updates of source weight
    1 - momentum."""
    momentum = 0.5
    recorder = RecordOnline()
    runner = make_runner(
        tmp_path, [MeanTeacherHook(), recorder],
        epochs=3,
        model=dict(
            type='LANetClassifier',
            backbone=dict(
                type='ResNet', depth=18, base_channels=8, stem_channels=8),
            landmark_neck=dict(
                type='LandmarkFPN', out_channels=16, num_landmarks=5),
            head=dict(type='LinearClsHead', num_classes=7),
            neck=dict(type='GlobalAveragePooling'),
            label_distribution=dict(type='LabelDistributionEstimator', k=3),
            queue_size=16,
            momentum=momentum),
        dataset=ToyLandmarkFER(),
        batch_size=8,
        optim_wrapper=dict(
            optimizer=dict(type='Adam', lr=0.01), accumulative_counts=2))
    runner.train()
    online = recorder.online
    assert len(online) == 6
    for before, after in zip([None] + online[1::2], online[0::2]):
        if before is not None:  # odd iterations only accumulate
            assert all(torch.equal(b, a) for b, a in zip(before, after))

    def ema(states):
        expected = recorder.teacher_at_start
        for state in states:
            expected = [
                momentum * t + (1 - momentum) * s
                for t, s in zip(expected, state)
            ]
        return expected

    teacher = params(runner.model.momentum_encoder.module)
    for t, e in zip(teacher, ema(online[1::2])):
        torch.testing.assert_close(t, e)
    assert int(runner.model.momentum_encoder.steps) == 1 + 3
    # an update per iteration would have given another encoder
    assert not all(
        torch.allclose(t, e) for t, e in zip(teacher, ema(online)))
