# Copyright (c) OpenMMLab. All rights reserved.
"""GSMC: the distillation loss, the head and the mean-teacher system."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401
from mmfer.models import GSMCHead, KLDivergenceLoss, flip_width

R18 = dict(type='ResNet', depth=18, out_indices=(3, ))


def samples(n):
    return [DataSample().set_gt_label(i % 7) for i in range(n)]


def build_system(**kwargs):
    return MODELS.build(
        dict(
            type='MeanTeacherClassifier',
            student=dict(
                type='FERClassifier',
                backbone=R18,
                head=dict(type='GSMCHead', num_classes=7, in_channels=512)),
            **kwargs))


def params_equal(a, b):
    return all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_kl_equals_hand_computed_value():
    student = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0], [1.0, 2.0]])
    # row 1: q = (3/4, 1/4), p = (1/2, 1/2); row 2: q = p, KL = 0
    row1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    loss = KLDivergenceLoss(loss_weight=0.9)(student, teacher)
    assert loss.item() == pytest.approx(0.9 * row1 / 2, rel=1e-6)


def test_kl_matches_gsmc_formula_and_trains_the_student_only():
    torch.manual_seed(0)
    student = torch.randn(5, 7, requires_grad=True)
    teacher = torch.randn(5, 7, requires_grad=True)
    loss = KLDivergenceLoss()(student, teacher)
    p, q = F.softmax(student, 1), F.softmax(teacher, 1)
    gsmc = F.kl_div(torch.log(p), q, reduction='batchmean')
    assert loss.item() == pytest.approx(gsmc.item(), rel=1e-5)
    loss.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
    assert KLDivergenceLoss()(student, student).item() == pytest.approx(
        0.0, abs=1e-7)
    with pytest.raises(ValueError, match='temperature'):
        KLDivergenceLoss(temperature=0)


def test_gsmc_head_losses_equal_the_formulas():
    torch.manual_seed(0)
    head = GSMCHead(num_classes=7, in_channels=8)
    feat1, feat2 = torch.randn(3, 8, 2, 2), torch.randn(3, 8, 2, 2)
    teacher = torch.randn(3, 7)
    labels = torch.tensor([1, 3, 5])
    data_samples = [DataSample().set_gt_label(int(y)) for y in labels]
    losses = head.loss((feat1, ),
                       data_samples,
                       view2_feats=(feat2, ),
                       teacher_logits=teacher)
    assert set(losses) == {'loss_cls', 'loss_att', 'loss_distill'}
    logits = head.fc(feat1.mean(dim=(2, 3)))
    log_p = F.log_softmax(logits, 1)
    # CE on one-hot labels, as GSMC writes it: -sum(y log p) / B
    one_hot = F.one_hot(labels, 7).float()
    assert losses['loss_cls'].item() == pytest.approx(
        (-(one_hot * log_p).sum() / 3).item(), rel=1e-5)
    q = F.softmax(teacher, 1)
    kl = (q * (q.log() - log_p)).sum() / 3
    assert losses['loss_distill'].item() == pytest.approx(
        0.9 * kl.item(), rel=1e-5)
    w = head.fc.weight.detach()
    cam1 = torch.einsum('nchw,kc->nkhw', feat1, w)
    cam2 = torch.einsum('nchw,kc->nkhw', feat2, w)
    assert losses['loss_att'].item() == pytest.approx(
        0.2 * ((cam1 - cam2.flip(3))**2).mean().item(), rel=1e-5)


def test_gsmc_head_needs_a_teacher():
    head = GSMCHead(num_classes=7, in_channels=8)
    with pytest.raises(ValueError, match='MeanTeacherClassifier'):
        head.loss((torch.randn(2, 8, 2, 2), ),
                  samples(2),
                  view2_feats=(torch.randn(2, 8, 2, 2), ))


def test_teacher_starts_as_a_frozen_copy_of_the_student():
    torch.manual_seed(0)
    model = build_system()
    teacher = model.teacher.module
    assert params_equal(model.student, teacher)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert int(model.teacher.steps) == 1  # the next update is step 1
    model.init_weights()  # re-initialises the student: the copy follows
    assert params_equal(model.student, teacher)


@pytest.mark.parametrize('view_batching,student_calls',
                         [('separate', [2, 2]), ('joint', [4])])
def test_teacher_sees_the_flipped_view_in_train_mode(view_batching,
                                                     student_calls):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='MeanTeacherClassifier',
            student=dict(
                type='FERClassifier',
                backbone=R18,
                view_batching=view_batching,
                head=dict(type='GSMCHead', num_classes=7,
                          in_channels=512))))
    model.train()
    seen = []
    model.teacher.module.backbone.register_forward_hook(
        lambda m, args, out: seen.append((args[0].detach(), m.training)))
    student_sizes = []
    model.student.backbone.register_forward_hook(
        lambda m, args, out: student_sizes.append(args[0].size(0)))
    x = torch.randn(2, 3, 64, 64)
    losses = model.loss(x, samples(2))
    assert set(losses) == {'loss_cls', 'loss_att', 'loss_distill'}
    assert student_sizes == student_calls
    assert len(seen) == 1
    assert torch.equal(seen[0][0], flip_width(x)) and seen[0][1]
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())


def test_eval_mode_teacher_option():
    torch.manual_seed(0)
    model = build_system(teacher_mode='eval').train()
    modes = []
    model.teacher.module.backbone.register_forward_hook(
        lambda m, args, out: modes.append(m.training))
    model.loss(torch.randn(2, 3, 64, 64), samples(2))
    assert modes == [False] and model.teacher.module.training


def test_prediction_uses_one_network_once():
    torch.manual_seed(0)
    for predict_with in ('student', 'teacher'):
        model = build_system(predict_with=predict_with).eval()
        calls = {'student': [], 'teacher': []}
        model.student.backbone.register_forward_hook(
            lambda m, a, o: calls['student'].append(a[0].size(0)))
        model.teacher.module.backbone.register_forward_hook(
            lambda m, a, o: calls['teacher'].append(a[0].size(0)))
        preds = model.predict(torch.randn(3, 3, 64, 64), samples(3))
        assert len(preds) == 3 and 'pred_score' in preds[0]
        other = 'teacher' if predict_with == 'student' else 'student'
        assert calls[predict_with] == [3] and calls[other] == []
        logits = model(torch.randn(2, 3, 64, 64), mode='tensor')
        assert logits.shape == (2, 7)


def test_system_argument_checks():
    with pytest.raises(ValueError, match='teacher_mode'):
        build_system(teacher_mode='frozen')
    with pytest.raises(ValueError, match='predict_with'):
        build_system(predict_with='both')
    with pytest.raises(ValueError, match='teacher_view'):
        build_system(teacher_view=2)


def test_rafdb_config_follows_the_official_recipe():
    import os.path as osp

    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(
        osp.join(repo, 'configs', 'gsmc', 'r18_rafdb_noise30.py'))
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=1e-3, weight_decay=0)
    assert cfg.param_scheduler.type == 'StepLR'
    assert (cfg.param_scheduler.step_size, cfg.param_scheduler.gamma) == \
        (10, 0.1)
    assert cfg.train_cfg.max_epochs == 60 and cfg.randomness.seed == 42
    assert dict(type='MeanTeacherHook', interval=1) in cfg.custom_hooks
    model = cfg.model
    assert (model.ema.momentum, model.ema.gamma) == (0.001, 1)
    assert not model.ema.update_buffers
    assert model.teacher_view == 1 and model.teacher_mode == 'train'
    head = model.student.head
    assert head.distill_loss.loss_weight == 0.9
    assert head.distill_loss.temperature == 1.0
    assert head.att_loss.loss_weight == 0.2


def test_student_takes_the_system_backbone_unless_it_names_one():
    """``backbone`` at the system's level is the one-line swap: the same
    student as when the student names it; a student's own backbone wins."""
    torch.manual_seed(0)
    nested = build_system()
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='MeanTeacherClassifier',
            student=dict(head=dict(type='GSMCHead', num_classes=7)),
            backbone=R18))
    assert type(model.student).__name__ == 'FERClassifier'
    a, b = nested.state_dict(), model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert model.data_preprocessor is model.student.data_preprocessor

    own = MODELS.build(
        dict(
            type='MeanTeacherClassifier',
            student=dict(
                backbone=dict(R18, base_channels=16),
                head=dict(type='GSMCHead', num_classes=7)),
            backbone=R18,
            data_preprocessor=dict(mean=[1, 2, 3], std=[2, 2, 2])))
    assert own.student.head.fc.in_features == 16 * 8
    assert own.data_preprocessor is not own.student.data_preprocessor
    assert own.data_preprocessor.mean.flatten().tolist() == [1, 2, 3]
    with pytest.raises(KeyError, match='model.backbone'):
        MODELS.build(
            dict(
                type='MeanTeacherClassifier',
                student=dict(head=dict(type='GSMCHead', num_classes=7))))
