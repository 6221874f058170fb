# Copyright (c) OpenMMLab. All rights reserved.
"""The EAC and GSMC heads on mmpretrain backbones, unchanged."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401

SIZE = 64
# (backbone config, channels of its last feature map); smallest variants
BACKBONES = {
    'resnet18': (dict(type='ResNet', depth=18), 512),
    'resnet50': (dict(type='ResNet', depth=50), 2048),
    'convnext-atto':
    (dict(type='ConvNeXt', arch='atto', gap_before_final_norm=False), 320),
    'mobilenetv3-small': (dict(type='MobileNetV3', arch='small'), 576),
    'efficientnet-b0': (dict(type='EfficientNet', arch='b0'), 1280),
    'deit-tiny': (dict(
        type='VisionTransformer',
        arch='deit-tiny',
        img_size=SIZE,
        patch_size=16,
        out_type='featmap'), 192),
}
NORM = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


def build(method, backbone, channels):
    head = dict(
        type='EACHead' if method == 'eac' else 'GSMCHead',
        num_classes=7,
        in_channels=channels)
    model = dict(type='FERClassifier', backbone=backbone, head=head)
    if method == 'gsmc':
        model = dict(type='MeanTeacherClassifier', student=model)
    return MODELS.build(dict(model, data_preprocessor=NORM))


def batch(n=2):
    return dict(
        inputs=[
            torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
            for _ in range(n)
        ],
        data_samples=[DataSample().set_gt_label(i) for i in range(n)])


@pytest.mark.parametrize('method', ['eac', 'gsmc'])
@pytest.mark.parametrize('name', list(BACKBONES))
def test_train_step_and_predict(method, name):
    torch.manual_seed(0)
    backbone, channels = BACKBONES[name]
    model = build(method, backbone, channels)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train()
    log_vars = model.train_step(batch(), optim)
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['loss_att'] > 0  # none of these is flip-equivariant
    if method == 'gsmc':
        model.update_teacher()
        assert 'loss_distill' in log_vars
    model.eval()
    preds = model.val_step(batch(3))
    assert len(preds) == 3
    assert all(0 <= int(p.pred_label) < 7 for p in preds)


def test_pooled_backbone_output_gets_an_actionable_error():
    model = build('eac', dict(type='ConvNeXt', arch='atto'), 320)
    with pytest.raises(ValueError, match='gap_before_final_norm=False'):
        model.train_step(
            batch(), OptimWrapper(torch.optim.SGD(model.parameters(), 0.1)))
