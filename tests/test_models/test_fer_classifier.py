# Copyright (c) OpenMMLab. All rights reserved.
"""FERClassifier: one backbone call per view (or one for all), plain-cost
prediction."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401
from mmfer.models import FERDataPreprocessor, flip_width, is_multi_view

R18 = dict(type='ResNet', depth=18, out_indices=(3, ))
NORM = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


def build(head='EACHead', **kwargs):
    cfg = dict(type='FERClassifier', backbone=R18, **kwargs)
    if head == 'EACHead':
        cfg['head'] = dict(type='EACHead', num_classes=7, in_channels=512)
    else:
        cfg['neck'] = dict(type='GlobalAveragePooling')
        cfg['head'] = dict(
            type='LinearClsHead', num_classes=7, in_channels=512)
    return MODELS.build(cfg)


def samples(n):
    return [DataSample().set_gt_label(i % 7) for i in range(n)]


class BackboneCalls:
    """Record the input of every backbone call."""

    def __init__(self, model):
        self.inputs = []
        model.backbone.register_forward_hook(
            lambda module, args, out: self.inputs.append(args[0].detach()))

    @property
    def sizes(self):
        return [x.size(0) for x in self.inputs]


def test_defaults_and_argument_checks():
    model = build()
    assert isinstance(model.data_preprocessor, FERDataPreprocessor)
    # the official scripts' one pass per view unless asked otherwise
    assert model.num_views == 2 and model.view_batching == 'separate'
    assert build('LinearClsHead').num_views == 1
    with pytest.raises(ValueError, match='view_batching'):
        build(view_batching='both')


def test_predict_costs_one_backbone_call_on_one_view():
    torch.manual_seed(0)
    model = build().eval()
    calls = BackboneCalls(model)
    x = torch.randn(3, 3, 64, 64)
    preds = model.predict(x, samples(3))
    assert calls.sizes == [3]
    # the head's scores of that one pass over x (not of its mirror)
    with torch.no_grad():
        logits = model.head.fc(model.backbone(x)[-1].mean(dim=(2, 3)))
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), logits.softmax(1))
    assert [int(p.pred_label) for p in preds] == logits.argmax(1).tolist()
    with pytest.raises(ValueError, match='MultiView'):
        model.predict([x, x])


def test_joint_training_views_are_one_batch_with_the_mirror():
    torch.manual_seed(0)
    model = build(view_batching='joint')
    calls = BackboneCalls(model)
    x = torch.randn(4, 3, 64, 64)
    model.loss(x, samples(4))
    assert calls.sizes == [8]
    batch = calls.inputs[0]
    assert torch.equal(batch[:4], x)
    assert torch.equal(batch[4:], torch.flip(x, dims=[3]))


def test_separate_batching_runs_one_call_per_view():
    torch.manual_seed(0)
    model = build()
    calls = BackboneCalls(model)
    x = torch.randn(4, 3, 64, 64)
    model.loss(x, samples(4))
    assert calls.sizes == [4, 4]
    assert torch.equal(calls.inputs[1], flip_width(x))


def test_joint_and_separate_differ_only_by_batch_statistics():
    # Without batch-dependent layers the two ways give the same losses; in
    # train mode BatchNorm normalises the joint batch with statistics of
    # both views, the official two passes each view with its own.
    torch.manual_seed(0)
    joint = build(view_batching='joint')
    separate = build(view_batching='separate')
    separate.load_state_dict(joint.state_dict())
    x = torch.randn(4, 3, 64, 64)
    joint.eval(), separate.eval()
    a, b = joint.loss(x, samples(4)), separate.loss(x, samples(4))
    for key in ('loss_cls', 'loss_att'):
        assert a[key].item() == pytest.approx(b[key].item(), rel=1e-4)
    joint.train(), separate.train()
    a, b = joint.loss(x, samples(4)), separate.loss(x, samples(4))
    assert a['loss_cls'].item() != b['loss_cls'].item()


def test_pipeline_views_are_used_as_given():
    torch.manual_seed(0)
    model = build(view_batching='joint')
    calls = BackboneCalls(model)
    v1, v2 = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    model.loss([v1, v2], samples(2))
    assert calls.sizes == [4]
    assert torch.equal(calls.inputs[0][2:], v2)
    with pytest.raises(ValueError, match='view'):
        model.loss([v1, v2, v1], samples(2))


def test_plain_head_trains_on_one_view_like_image_classifier():
    torch.manual_seed(0)
    model = build('LinearClsHead')
    plain = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=R18,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=7, in_channels=512)))
    plain.load_state_dict(model.state_dict())
    calls = BackboneCalls(model)
    x = torch.randn(3, 3, 64, 64)
    ours, theirs = model.loss(x, samples(3)), plain.loss(x, samples(3))
    assert calls.sizes == [3]
    assert ours['loss'].item() == pytest.approx(theirs['loss'].item())
    with pytest.raises(ValueError, match='MultiView'):
        model.loss([x, x], samples(3))


def _packed(n, views):
    imgs = torch.randint(0, 256, (n, views, 3, 8, 8), dtype=torch.uint8)
    return [
        dict(
            inputs=[imgs[i, v]
                    for v in range(views)] if views > 1 else imgs[i, 0],
            data_samples=DataSample().set_gt_label(i)) for i in range(n)
    ], imgs


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_preprocessor_normalises_every_view(collate):
    ours, theirs = FERDataPreprocessor(**NORM), ClsDataPreprocessor(**NORM)
    batch, imgs = _packed(3, 2)
    data = collate(batch)
    assert is_multi_view(data['inputs'])
    out = ours(data, training=True)
    assert isinstance(out['inputs'], list) and len(out['inputs']) == 2
    for v in range(2):
        ref = theirs(dict(inputs=imgs[:, v]))['inputs']
        assert torch.allclose(out['inputs'][v], ref)
    assert [int(s.gt_label) for s in out['data_samples']] == [0, 1, 2]


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_preprocessor_single_view_is_unchanged(collate):
    ours, theirs = FERDataPreprocessor(**NORM), ClsDataPreprocessor(**NORM)
    batch, _ = _packed(3, 1)
    assert not is_multi_view(collate(batch)['inputs'])
    assert torch.equal(
        ours(collate(batch))['inputs'],
        theirs(collate(batch))['inputs'])


def test_preprocessor_refuses_batch_augments_on_views():
    ours = FERDataPreprocessor(
        **NORM, batch_augments=dict(augments=dict(type='Mixup', alpha=0.8)))
    batch, _ = _packed(2, 2)
    with pytest.raises(ValueError, match='Mixup'):
        ours(pseudo_collate(batch), training=True)
