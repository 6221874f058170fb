# Copyright (c) OpenMMLab. All rights reserved.
"""EAC: the head's numerics, its gradients and its data pipeline."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401
from mmfer.models import EACHead, class_activation_maps, flip_width

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@MODELS.register_module(force=True)
class FlipEquivariantNet(nn.Module):
    """1x1 convolutions, BatchNorm and ReLU: commutes with a width flip.

    With ``symmetric=True`` a 3x3 convolution whose kernels are mirror
    symmetric comes first (still equivariant, up to summation order).
    """

    def __init__(self, channels: int = 8, symmetric: bool = False):
        super().__init__()
        layers = []
        if symmetric:
            conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
            with torch.no_grad():
                conv.weight.copy_((conv.weight + conv.weight.flip(3)) / 2)
            layers.append(conv)
        layers += [
            nn.Conv2d(3, channels, 1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return (self.layers(x), )


def build_eac(backbone=None, **kwargs):
    head = dict(type='EACHead', num_classes=7, in_channels=8)
    head.update(kwargs)
    return MODELS.build(
        dict(
            type='FERClassifier',
            backbone=backbone or dict(type='FlipEquivariantNet'),
            head=head))


def samples(n):
    return [DataSample().set_gt_label(i % 7) for i in range(n)]


def test_attention_term_is_zero_for_a_flip_equivariant_backbone():
    torch.manual_seed(0)
    model = build_eac()
    model.train()
    losses = model.loss(torch.randn(4, 3, 6, 5), samples(4))
    assert losses['loss_att'].item() == 0.0
    assert set(losses) == {'loss_cls', 'loss_att'}


def test_attention_term_vanishes_for_mirror_symmetric_kernels():
    torch.manual_seed(0)
    model = build_eac(dict(type='FlipEquivariantNet', symmetric=True))
    losses = model.loss(torch.randn(4, 3, 6, 6), samples(4))
    assert losses['loss_att'].item() < 1e-10
    # an ordinary convolution is not equivariant: the term is positive
    plain = build_eac(
        dict(type='ResNet', depth=18, out_indices=(3, )), in_channels=512)
    losses = plain.loss(torch.randn(2, 3, 64, 64), samples(2))
    assert losses['loss_att'].item() > 0


def test_losses_equal_the_formulas():
    torch.manual_seed(0)
    head = EACHead(num_classes=7, in_channels=8)
    feat1, feat2 = torch.randn(3, 8, 2, 3), torch.randn(3, 8, 2, 3)
    labels = torch.tensor([0, 4, 6])
    data_samples = [DataSample().set_gt_label(int(y)) for y in labels]
    losses = head.loss((feat1, ), data_samples, view2_feats=(feat2, ))
    logits = head.fc(feat1.mean(dim=(2, 3)))
    assert losses['loss_cls'].item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-6)
    weight = head.fc.weight.detach()
    cam1 = torch.einsum('nchw,kc->nkhw', feat1, weight)
    cam2 = torch.einsum('nchw,kc->nkhw', feat2, weight)
    expected = 5 * ((cam1 - cam2.flip(3))**2).mean()
    assert losses['loss_att'].item() == pytest.approx(
        expected.item(), rel=1e-6)
    assert set(losses) == {'loss_cls', 'loss_att'}


def test_flipped_view_logits_are_not_trained_on():
    torch.manual_seed(0)
    head = EACHead(num_classes=7, in_channels=8)
    feat1 = torch.randn(2, 8, 2, 2)
    a = head.loss((feat1, ),
                  samples(2),
                  view2_feats=(torch.randn(2, 8, 2, 2), ))
    b = head.loss((feat1, ),
                  samples(2),
                  view2_feats=(torch.randn(2, 8, 2, 2), ))
    assert a['loss_cls'].item() == b['loss_cls'].item()
    # the bias shifts the logits, never the attention maps
    with torch.no_grad():
        head.fc.bias.add_(3.0)
    c = head.loss((feat1, ),
                  samples(2),
                  view2_feats=(torch.zeros(2, 8, 2, 2), ))
    with torch.no_grad():
        head.fc.bias.sub_(3.0)
    d = head.loss((feat1, ),
                  samples(2),
                  view2_feats=(torch.zeros(2, 8, 2, 2), ))
    assert c['loss_att'].item() == d['loss_att'].item()


def test_attention_gradient_reaches_the_backbone_not_the_classifier():
    torch.manual_seed(0)
    model = build_eac(
        dict(type='ResNet', depth=18, out_indices=(3, )), in_channels=512)
    losses = model.loss(torch.randn(2, 3, 64, 64), samples(2))
    losses['loss_att'].backward(retain_graph=True)
    assert model.head.fc.weight.grad is None
    assert model.head.fc.bias.grad is None
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    losses['loss_cls'].backward()
    assert model.head.fc.weight.grad.abs().sum() > 0


def test_undetached_cam_weight_trains_the_classifier_too():
    torch.manual_seed(0)
    head = EACHead(num_classes=7, in_channels=8, detach_cam_weight=False)
    losses = head.loss((torch.randn(2, 8, 2, 2), ),
                       samples(2),
                       view2_feats=(torch.randn(2, 8, 2, 2), ))
    losses['loss_att'].backward()
    assert head.fc.weight.grad.abs().sum() > 0


def test_head_errors_are_actionable():
    head = EACHead(num_classes=7, in_channels=8)
    with pytest.raises(ValueError, match='FERClassifier'):
        head.loss((torch.randn(2, 8, 2, 2), ), samples(2))
    with pytest.raises(ValueError, match='neck=None'):
        head.loss((torch.randn(2, 8), ),
                  samples(2),
                  view2_feats=(torch.randn(2, 8), ))
    model = MODELS.build(
        dict(
            type='FERClassifier',
            backbone=dict(type='FlipEquivariantNet'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='EACHead', num_classes=7, in_channels=8)))
    with pytest.raises(ValueError, match='neck=None'):
        model.loss(torch.randn(2, 3, 4, 4), samples(2))


def test_head_predicts_from_one_view():
    torch.manual_seed(0)
    head = EACHead(num_classes=7, in_channels=8)
    feat = torch.randn(3, 8, 2, 2)
    preds = head.predict((feat, ))
    logits = head.fc(feat.mean(dim=(2, 3)))
    assert [int(p.pred_label) for p in preds] == logits.argmax(1).tolist()
    cams = class_activation_maps(feat, head.fc.weight)
    assert torch.allclose(
        cams.mean(dim=(2, 3)) + head.fc.bias, logits, atol=1e-6)


def test_gaussian_noise_transform():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import TRANSFORMS
    img = np.full((64, 64, 3), 128, dtype=np.uint8)
    never = TRANSFORMS.build(dict(type='RandomGaussianNoise', prob=0.0))
    assert np.array_equal(never(dict(img=img.copy()))['img'], img)
    always = TRANSFORMS.build(
        dict(type='RandomGaussianNoise', prob=1.0, var=30.0))
    np.random.seed(0)
    out = always(dict(img=img.copy()))['img']
    assert out.dtype == np.uint8 and out.shape == img.shape
    # astype truncates: the mean drops by ~0.5 and the std is sqrt(30)
    assert abs(out.astype(float).std() - np.sqrt(30)) < 0.2
    assert abs(out.astype(float).mean() - 127.5) < 0.2
    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    assert always(dict(img=white))['img'].max() == 255  # clipped
    with pytest.raises(ValueError, match='prob'):
        TRANSFORMS.build(dict(type='RandomGaussianNoise', prob=2.0))


def _deterministic(item):
    """A copy of a pipeline config with erasing and Gaussian noise off."""
    if isinstance(item, (list, tuple)):
        return [_deterministic(i) for i in item]
    if not isinstance(item, dict):
        return item
    item = {k: _deterministic(v) for k, v in item.items()}
    if item.get('type') == 'RandomErasing':
        item['erase_prob'] = 0.0
    if item.get('type') == 'RandomGaussianNoise':
        item['prob'] = 0.0
    return item


def _view_pipeline(cfg):
    return Compose(
        _deterministic(
            cfg.to_dict()['train_dataloader']['dataset']['pipeline']))


def test_noisy_path_view_two_is_the_flipped_raw_image(tmp_path):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'eac',
                 'eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py'))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    import cv2
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    pipeline = _view_pipeline(cfg)
    packed = pipeline(dict(img_path=str(tmp_path / 'a.png'), gt_label=1))
    view1, view2 = packed['inputs']
    assert view1.shape == (3, 224, 224)
    assert torch.equal(view2, view1.flip(2))
    # the clean-label path packs one view: the classifier mirrors it
    clean = Config.fromfile(
        osp.join(REPO, 'configs', 'eac', 'r18_rafdb_noise0.py'))
    one = _view_pipeline(clean)(
        dict(img_path=str(tmp_path / 'a.png'), gt_label=1))
    assert torch.equal(one['inputs'], view1)
    # and the multi-view batch runs through the model
    model = MODELS.build(
        dict(
            type='FERClassifier',
            backbone=dict(type='FlipEquivariantNet'),
            head=dict(type='EACHead', num_classes=7, in_channels=8),
            data_preprocessor=cfg.data_preprocessor))
    data = model.data_preprocessor(pseudo_collate([packed, packed]), True)
    assert isinstance(data['inputs'], list) and len(data['inputs']) == 2
    assert torch.allclose(data['inputs'][1], flip_width(data['inputs'][0]))
    losses = model.loss(**data)
    assert losses['loss_att'].item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize('noise,file', [(0, None), (10, 'noise01.txt'),
                                        (20, 'noise02.txt'),
                                        (30, 'noise03.txt')])
def test_rafdb_configs_follow_the_official_recipe(noise, file):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'eac', f'r18_rafdb_noise{noise}.py'))
    dataset = cfg.train_dataloader.dataset
    assert dataset.get('noise_file') == (file and f'EmoLabel/{file}')
    views = [t['type'] for t in dataset.pipeline]
    # noisy label files: two pipeline views; clean labels: batch mirror
    assert ('MultiView' in views) == (file is not None)
    assert 'RandomFlip' not in views  # no random flip on view 1
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=2e-4, weight_decay=1e-4)
    assert cfg.param_scheduler.type == 'ExponentialLR'
    assert cfg.param_scheduler.gamma == 0.9
    assert cfg.train_cfg.max_epochs == 60 and cfg.randomness.seed == 0
    head = cfg.model.head
    assert head.type == 'EACHead' and head.att_loss.loss_weight == 5.0
    assert head.detach_cam_weight and cfg.model.neck is None
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'checkpoints/resnet18_msceleb_mmpretrain.pth'
