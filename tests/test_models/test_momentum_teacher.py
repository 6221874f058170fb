# Copyright (c) OpenMMLab. All rights reserved.
"""The momentum teacher shared by GSMC and LA-Net: the copy, its
initialisation after the pretrained load, buffers and the missing-hook
warning."""
import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401
import mmfer.models.utils.momentum_teacher as momentum_teacher
from mmfer.models.utils.momentum_teacher import build_teacher
from mmfer.models.utils.pretrained_check import (pretrained_submodules,
                                                 verify_pretrained)

TINY_R18 = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8)


@pytest.fixture
def checkpoint(tmp_path):
    """A ResNet-18 of width 8 with non-default weights and statistics."""
    torch.manual_seed(3)
    source = MODELS.build(dict(TINY_R18, out_indices=(0, 1, 2, 3)))
    for m in source.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.running_mean)
            nn.init.uniform_(m.running_var, 0.5, 2)
    path = tmp_path / 'tiny_r18.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    return str(path), source.state_dict()


def pretrained(path):
    return dict(TINY_R18, init_cfg=dict(type='Pretrained', checkpoint=path))


def gsmc(backbone):
    return MODELS.build(
        dict(
            type='MeanTeacherClassifier',
            student=dict(head=dict(type='GSMCHead', num_classes=7)),
            backbone=backbone))


def lanet(backbone, **kwargs):
    return MODELS.build(
        dict(
            type='LANetClassifier',
            backbone=backbone,
            towers=dict(num_shared_stages=1),
            landmark_neck=dict(
                type='LandmarkFPN', out_channels=16, num_landmarks=5),
            head=dict(type='LinearClsHead', num_classes=7),
            neck=dict(type='GlobalAveragePooling'),
            queue_size=16,
            **kwargs))


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and sa
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_build_teacher_copies_without_the_checkpoint(checkpoint):
    online = MODELS.build(pretrained(checkpoint[0]))
    teacher = build_teacher(
        dict(type='ExponentialMovingAverage', momentum=0.1), online)
    assert_same_state(teacher.module, online)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert [name for name, _, _ in pretrained_submodules(online)] == ['']
    assert not list(pretrained_submodules(teacher))
    assert online.init_cfg['type'] == 'Pretrained'  # the online one keeps it


def test_gsmc_checks_the_student_and_copies_it_after_loading(checkpoint):
    path, weights = checkpoint
    model = gsmc(pretrained(path))
    model.init_weights()  # raises if a Pretrained submodule missed tensors
    lines = verify_pretrained(model, 'gsmc')
    assert len(lines) == 1 and 'student.backbone loaded' in lines[0]
    for key, value in model.student.backbone.state_dict().items():
        assert torch.equal(value, weights[key]), key
    assert_same_state(model.teacher.module, model.student)
    assert int(model.teacher.steps) == 1


def test_lanet_checks_both_towers_and_copies_them_after_loading(checkpoint):
    model = lanet(pretrained(checkpoint[0]))
    model.init_weights()
    lines = verify_pretrained(model, 'lanet')
    assert [line.split(' loaded')[0] for line in lines] == [
        'lanet: backbone.expr_tower', 'lanet: backbone.lm_tower'
    ]
    assert_same_state(model.momentum_encoder.module,
                      model.online_modules())
    assert int(model.momentum_encoder.steps) == 1


@pytest.mark.parametrize('system', ['gsmc', 'lanet'])
def test_update_averages_parameters_and_copies_buffers(system):
    torch.manual_seed(0)
    model = gsmc(TINY_R18) if system == 'gsmc' else lanet(
        TINY_R18, momentum=0.75)
    teacher, online = model.teacher_pair()
    before = {k: v.clone() for k, v in teacher.module.state_dict().items()}
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
        for m in online.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.num_batches_tracked.fill_(5)
    model.update_teacher()
    # GSMC at step 1: source weight max(0.001, 1 / (1 + 1))
    weight = 0.5 if system == 'gsmc' else 0.25
    params = {n for n, _ in online.named_parameters(remove_duplicate=False)}
    copied = 0
    for key, value in online.state_dict().items():
        after = teacher.module.state_dict()[key]
        if key in params:
            expected = (1 - weight) * before[key] + weight * value
            torch.testing.assert_close(after, expected, msg=key)
        else:
            assert torch.equal(after, value), key
            copied += not torch.equal(before[key], value)
    assert copied > 0
    assert int(teacher.steps) == 2


def test_a_frozen_teacher_is_reported_once(monkeypatch):
    logged = []
    monkeypatch.setattr(momentum_teacher, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    model = lanet(TINY_R18)
    for _ in range(2):
        model.warn_if_teacher_is_frozen()
    model.update_teacher()  # an update restarts the count
    for _ in range(2):
        model.warn_if_teacher_is_frozen()
    assert logged == []
    for _ in range(3):
        model.warn_if_teacher_is_frozen()
    assert len(logged) == 1
    assert 'LANetClassifier' in logged[0] and 'MeanTeacherHook' in logged[0]
    # with the hook, steps without an update are accumulation steps
    model.teacher_updated_by_hook = True
    for _ in range(5):
        model.warn_if_teacher_is_frozen()
    assert len(logged) == 1
