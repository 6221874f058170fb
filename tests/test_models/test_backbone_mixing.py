# Copyright (c) OpenMMLab. All rights reserved.
"""The EAC and GSMC heads on mmpretrain backbones, unchanged."""
import pytest
import torch
import torch.nn.functional as F
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
# the heads' default loss weights: (attention, distillation)
WEIGHTS = dict(eac=(5.0, None), gsmc=(0.2, 0.9))


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


def logits_and_cams(net, x):
    """The paper's pooled logits and class activation maps, by hand, from
    the backbone's last feature map."""
    feat = net.backbone(x)[-1]
    weight, bias = net.head.fc.weight, net.head.fc.bias
    cams = torch.einsum('nchw,kc->nkhw', feat, weight)
    return feat.mean(dim=(2, 3)) @ weight.t() + bias, cams


@torch.no_grad()
def expected_losses(model, method, data):
    """EAC's / GSMC's losses of one step, computed outside the heads."""
    net = model.student if method == 'gsmc' else model
    x = model.data_preprocessor(data, True)['inputs']
    labels = torch.tensor([int(s.gt_label) for s in data['data_samples']])
    logits, cams = logits_and_cams(net, x)
    flipped_logits, flipped_cams = logits_and_cams(net, x.flip(3))
    att_weight, distill_weight = WEIGHTS[method]
    losses = dict(
        loss_cls=F.cross_entropy(logits, labels),
        loss_att=att_weight * ((cams - flipped_cams.flip(3))**2).mean())
    if method == 'gsmc':
        # the teacher starts as a copy of the student and sees the mirror
        q = flipped_logits.softmax(1)
        kl = (q * (q.log() - logits.log_softmax(1))).sum(1).mean()
        losses['loss_distill'] = distill_weight * kl
    return losses


@pytest.mark.parametrize('method', ['eac', 'gsmc'])
@pytest.mark.parametrize('name', list(BACKBONES))
def test_train_step_and_predict(method, name):
    torch.manual_seed(0)
    backbone, channels = BACKBONES[name]
    model = build(method, backbone, channels)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train()
    data = batch()
    expected = expected_losses(model, method, data)
    log_vars = model.train_step(data, optim)
    assert set(log_vars) == {'loss', *expected}
    for key, value in expected.items():
        assert log_vars[key].item() == pytest.approx(
            value.item(), rel=1e-4, abs=1e-6), key
    assert log_vars['loss'].item() == pytest.approx(
        sum(v.item() for v in expected.values()), rel=1e-4)
    assert log_vars['loss_att'] > 0  # none of these is flip-equivariant
    if method == 'gsmc':
        model.update_teacher()
    model.eval()
    data = batch(3)
    preds = model.val_step(data)
    # the updated student predicts from one plain pass over the input
    net = model.student if method == 'gsmc' else model
    with torch.no_grad():
        logits, _ = logits_and_cams(
            net,
            model.data_preprocessor(data, False)['inputs'])
    assert [int(p.pred_label) for p in preds] == logits.argmax(1).tolist()
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]),
        logits.softmax(1),
        rtol=1e-4,
        atol=1e-6)


def test_pooled_backbone_output_gets_an_actionable_error():
    # ConvNeXt returns maps by default in mmfer; asking for pooled vectors
    # explicitly must still be refused with the fix named.
    model = build(
        'eac', dict(type='ConvNeXt', arch='atto', gap_before_final_norm=True),
        320)
    with pytest.raises(ValueError, match='gap_before_final_norm=False'):
        model.train_step(
            batch(), OptimWrapper(torch.optim.SGD(model.parameters(), 0.1)))
