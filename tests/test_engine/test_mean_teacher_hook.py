# Copyright (c) OpenMMLab. All rights reserved.
"""The mean teacher: EMA closed form, the update hook, save and resume."""
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

import mmfer  # noqa: F401
from mmfer.engine import MeanTeacherHook

ITERS = 3  # per epoch: 12 samples, batch 4


@MODELS.register_module(force=True)
class TinyMeanTeacherNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return (torch.relu(self.bn(self.conv(x))), )


class ToyFER(Dataset):

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.imgs = torch.rand(12, 3, 8, 8, generator=gen) * 255
        self.metainfo = dict(classes=tuple(str(i) for i in range(7)))

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        return dict(
            inputs=self.imgs[idx],
            data_samples=DataSample().set_gt_label(idx % 7))


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


def make_runner(work_dir, hooks, epochs=2, **kwargs):
    return Runner(
        model=system_cfg(),
        work_dir=str(work_dir),
        # runners built within one second would share logger and scope
        experiment_name=f'mean_teacher_{id(hooks)}',
        train_dataloader=dict(
            dataset=ToyFER(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
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


def test_hook_updates_the_teacher_after_every_step(tmp_path):
    recorder = RecordStudent()
    runner = make_runner(tmp_path, [MeanTeacherHook(), recorder])
    runner.train()
    assert len(recorder.students) == 2 * ITERS
    expected = recorder.teacher_at_start
    for k, student in enumerate(recorder.students, start=1):
        alpha = min(1 - 1 / (k + 1), 0.999)
        expected = [
            alpha * t + (1 - alpha) * s for t, s in zip(expected, student)
        ]
    teacher = params(runner.model.teacher.module)
    for t, e in zip(teacher, expected):
        assert torch.allclose(t, e, atol=1e-6)
    assert int(runner.model.teacher.steps) == 1 + 2 * ITERS
    assert not all(
        torch.equal(t, s) for t, s in zip(teacher, recorder.students[-1]))


def test_teacher_is_checkpointed_and_resumed(tmp_path):
    full = make_runner(tmp_path / 'full', [MeanTeacherHook()])
    full.train()
    ckpt = torch.load(
        tmp_path / 'full' / 'epoch_1.pth',
        map_location='cpu',
        weights_only=False)['state_dict']
    assert int(ckpt['teacher.steps']) == 1 + ITERS
    assert any(k.startswith('teacher.module.backbone') for k in ckpt)

    recorder = RecordStudent()
    resumed = make_runner(
        tmp_path / 'resumed', [MeanTeacherHook(), recorder],
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
