# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's two-tower backbone and landmark FPN."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmfer.models.backbones.expression_landmark_backbone import (
    ExpressionLandmarkBackbone, SharedModule)
from mmfer.models.necks.landmark_fpn import LandmarkFPN
from tower_checks import assert_both_towers_loaded

TINY_CONVNEXT = dict(
    type='ConvNeXt',
    arch=dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]))
R18 = dict(type='ResNet', depth=18)
VIT_CLS_TOKEN = dict(
    type='VisionTransformer', arch='deit-tiny', out_type='cls_token')


def build(backbone=R18, num_shared_stages=1):
    return ExpressionLandmarkBackbone(
        backbone=backbone, num_shared_stages=num_shared_stages)


def num_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def assert_same_maps(actual, expected):
    assert len(actual) == len(expected) == 4
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_resnet18_shapes_and_fpn():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ExpressionLandmarkBackbone', backbone=R18))
    fpn = MODELS.build(dict(type='LandmarkFPN', in_channels=model.lm_channels))
    assert model.expr_channels == model.lm_channels == (64, 128, 256, 512)
    expr_feats, lm_feats = model(torch.rand(2, 3, 112, 112))
    # strides 4..32 of 112 px; ResNet rounds 3.5 up to 4
    sizes = [28, 14, 7, 4]
    for feats in (expr_feats, lm_feats):
        assert [tuple(f.shape) for f in feats
                ] == [(2, c, s, s) for c, s in zip((64, 128, 256, 512), sizes)]
    assert expr_feats[0] is lm_feats[0]
    assert not torch.equal(expr_feats[1], lm_feats[1])  # own random layer2
    heatmaps, fused = fpn(lm_feats)
    assert heatmaps.shape == (2, 19, 28, 28)
    assert fused.shape == (2, 64, 28, 28)
    assert (fpn.out_channels, fpn.num_landmarks) == (64, 19)


def test_resnet50_expansion():
    torch.manual_seed(0)
    model = build(dict(type='ResNet', depth=50))
    assert model.lm_channels == (256, 512, 1024, 2048)
    fpn = LandmarkFPN(model.lm_channels, out_channels=256)
    with torch.no_grad():
        heatmaps, fused = fpn(model(torch.rand(1, 3, 64, 64))[1])
    assert heatmaps.shape == (1, 19, 16, 16)
    assert fused.shape == (1, 256, 16, 16)


@pytest.mark.parametrize('backbone,num_shared_stages', [
    (R18, 1),
    (dict(type='ResNetV1c', depth=18), 1),
    (dict(type='FaceResNet', depth=18, stem_pool='dmue', stem_act=False), 2),
    (TINY_CONVNEXT, 0),
    (TINY_CONVNEXT, 1),
    (TINY_CONVNEXT, 3),
])
def test_towers_match_their_backbones(backbone, num_shared_stages):
    """Each tower, run by the backbone's own forward (the landmark tower
    through its stand-ins for the shared modules), gives the wrapper's
    maps; the shared ones are computed once and returned twice."""
    if backbone['type'] == 'FaceResNet':
        import mmfer.models.backbones  # noqa: F401 (registers it)
    torch.manual_seed(0)
    model = build(backbone, num_shared_stages).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expr_feats, lm_feats = model(x)
        assert_same_maps(expr_feats, model.expr_tower(x))
        assert_same_maps(lm_feats, model.lm_tower(x))
        assert_same_maps(model.forward_expression(x), expr_feats)
    for i in range(4):
        assert (expr_feats[i] is lm_feats[i]) == (i < num_shared_stages)
    assert [f.shape[1] for f in expr_feats] == list(model.expr_channels)
    assert [f.shape[-1] for f in expr_feats] == [16, 8, 4, 2]


def test_convnext_channels_and_output_norms():
    model = build(TINY_CONVNEXT)
    assert model.expr_channels == (16, 32, 64, 128)
    # the shared stage's output norm exists once, the others twice
    names = dict(model.named_parameters())
    assert 'expr_tower.norm0.weight' in names
    assert 'lm_tower.norm0.weight' not in names
    assert 'lm_tower.norm1.weight' in names
    assert 'lm_tower.downsample_layers.1.1.weight' in names
    assert 'lm_tower.downsample_layers.0.0.weight' not in names


def test_parameters_exist_once():
    model = build()
    names = [name for name, _ in model.named_parameters()]
    params = list(model.parameters())
    assert len({id(p) for p in params}) == len(params)
    assert not any(
        n.startswith(('lm_tower.conv1', 'lm_tower.bn1', 'lm_tower.layer1'))
        for n in names)
    assert 'expr_tower.conv1.weight' in names
    assert 'lm_tower.layer2.0.conv1.weight' in names
    assert not any(k.startswith('lm_tower.layer1') for k in model.state_dict())
    # a plain ResNet-18 without fc, plus a second layer2-4
    plain = MODELS.build(R18)
    assert num_params(model) == num_params(plain) + num_params(
        plain.layer2, plain.layer3, plain.layer4)


def test_gradients_and_step_reach_the_shared_stem():
    torch.manual_seed(0)
    model = build().train()
    fpn = LandmarkFPN(model.lm_channels)
    optim = torch.optim.SGD(
        list(model.parameters()) + list(fpn.parameters()), lr=0.1)
    x = torch.rand(2, 3, 64, 64)
    stem = model.expr_tower.conv1.weight
    before = stem.detach().clone()

    heatmaps, _ = fpn(model(x)[1])
    heatmaps.square().mean().backward()
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert model.expr_tower.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert model.lm_tower.layer2[0].conv1.weight.grad.abs().sum() > 0
    # the landmark loss does not reach the expression tower's own stages
    assert model.expr_tower.layer2[0].conv1.weight.grad is None
    optim.step()
    assert not torch.equal(stem, before)
    # the landmark tower sees the updated shared modules
    assert model.lm_tower.conv1.module.weight is stem
    model.eval()
    with torch.no_grad():
        assert_same_maps(model(x)[1], model.lm_tower(x))

    optim.zero_grad(set_to_none=True)
    model.train()
    model.forward_expression(x)[-1].mean().backward()
    assert model.expr_tower.layer4[0].conv1.weight.grad.abs().sum() > 0
    assert model.lm_tower.layer2[0].conv1.weight.grad is None


def test_shared_part_runs_once():
    model = build()
    calls = {}

    def count(name):

        def hook(*_):
            calls[name] = calls.get(name, 0) + 1

        return hook

    model.expr_tower.conv1.register_forward_hook(count('conv1'))
    model.expr_tower.layer1.register_forward_hook(count('layer1'))
    model.expr_tower.layer2.register_forward_hook(count('expr_layer2'))
    model.lm_tower.layer2.register_forward_hook(count('lm_layer2'))
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    assert calls == dict(conv1=1, layer1=1, expr_layer2=1, lm_layer2=1)
    calls.clear()
    with torch.no_grad():
        model.forward_expression(torch.rand(1, 3, 64, 64))
    assert calls == dict(conv1=1, layer1=1, expr_layer2=1)


def naive_fpn(fpn, feats, upsample):
    """The official top-down pass with explicit 1x1 convs as einsums."""

    def conv1x1(conv, x):
        out = torch.einsum('oi,nihw->nohw', conv.weight[:, :, 0, 0], x)
        return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)

    lat = [conv1x1(c, f) for c, f in zip(fpn.lateral_convs, feats)]
    fused = upsample(
        upsample(upsample(lat[3], lat[2]) + lat[2], lat[1]) + lat[1],
        lat[0]) + lat[0]
    return conv1x1(fpn.heatmap_conv, fused), fused


@pytest.mark.parametrize('size', [128, 112])
def test_fpn_matches_naive(size):
    torch.manual_seed(0)
    channels = (8, 16, 32, 64)
    fpn = LandmarkFPN(channels, out_channels=12, num_landmarks=5)
    for p in fpn.parameters():
        nn.init.normal_(p)
    assert fpn.lateral_convs[0].bias is None
    sizes = [size // 4, size // 8, size // 16, -(-size // 32)]
    feats = [torch.randn(2, c, s, s) for c, s in zip(channels, sizes)]
    if size == 128:  # exact halving: the official nn.Upsample(x2)
        up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)

        def upsample(x, _):
            return up(x)
    else:  # 4 -> 7 -> 14 -> 28

        def upsample(x, ref):
            return F.interpolate(
                x, size=ref.shape[-2:], mode='bilinear', align_corners=False)

    heatmaps, fused = fpn(feats)
    expected_heatmaps, expected_fused = naive_fpn(fpn, feats, upsample)
    assert heatmaps.shape == (2, 5, size // 4, size // 4)
    torch.testing.assert_close(fused, expected_fused, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        heatmaps, expected_heatmaps, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='in_channels'):
        fpn(feats[1:])


def test_pretrained_loads_both_towers(tmp_path):
    torch.manual_seed(1)
    source = MODELS.build(R18)
    for m in source.modules():  # non-default BN statistics too
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.running_mean)
            nn.init.uniform_(m.running_var, 0.5, 2)
    ckpt = tmp_path / 'resnet18.pth'
    torch.save(dict(state_dict=source.state_dict()), ckpt)
    model = build(
        dict(R18, init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))))
    model.init_weights()
    assert_both_towers_loaded(model, source)


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    saved = build().eval()
    path = tmp_path / 'model.pth'
    torch.save(saved.state_dict(), path)
    torch.manual_seed(1)
    loaded = build().eval()
    loaded.load_state_dict(torch.load(path))  # strict
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(saved(x), loaded(x)):
            assert_same_maps(a, b)


def test_frozen_stages_and_norm_eval():
    model = build(dict(R18, frozen_stages=2, norm_eval=True))
    model.train()
    assert not model.expr_tower.conv1.weight.requires_grad
    for tower in (model.expr_tower, model.lm_tower):
        assert not any(p.requires_grad for p in tower.layer2.parameters())
        assert all(p.requires_grad for p in tower.layer3.parameters())
    norms = [
        m for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    assert norms and not any(m.training for m in norms)
    assert model.lm_tower.layer3.training


def test_official_resnet18_parameter_count():
    """Backbone + FPN(64) equal the official LA-Net ResNet-18 (22.74 M
    trainable, of which the two LDE scorers are 0.434 M) without its
    heads."""
    model = build()
    fpn = LandmarkFPN(model.lm_channels, out_channels=64)
    total = num_params(model, fpn)
    plain = MODELS.build(R18)
    stem_layer1 = num_params(plain.conv1, plain.bn1, plain.layer1)
    towers = num_params(plain.layer2, plain.layer3, plain.layer4)
    laterals = 64 * (64 + 128 + 256 + 512)
    # the heatmap conv has no bias, as the official lm_fc = conv1x1(...)
    assert total == stem_layer1 + 2 * towers + laterals + 64 * 19
    assert fpn.heatmap_conv.bias is None

    def linear(i, o):
        return i * o + o

    def scorer(d):  # fc_in, then the pair MLP D -> D/2 -> D/4 -> 2
        return (linear(d, d) + linear(d, d // 2) + linear(d // 2, d // 4) +
                linear(d // 4, 2))

    fc = linear(512, 7)
    projections = (linear(512, 64) + linear(64, 64) + 2 * linear(64, 64))
    scorers = scorer(512) + scorer(64)
    assert round(scorers / 1e6, 3) == 0.434
    assert round((total + fc + projections + scorers) / 1e6, 2) == 22.74
    assert total == 22_258_176


# A ViT returning class tokens, not feature maps; RegNet, which cannot be
# split (two whole copies share no stage); MobileNetV3 layers after the last
# output, which would go unused.
@pytest.mark.parametrize('backbone,match', [
    (VIT_CLS_TOKEN, "out_type='cls_token'.*VisionTransformer"),
    (dict(type='RegNet', arch='regnetx_400mf'), 'RegNet.*num_shared_stages=0'),
    (dict(type='MobileNetV3', out_indices=(3, )), 'out_indices'),
    (dict(R18, out_indices=(3, )), 'out_indices'),
    (dict(TINY_CONVNEXT, gap_before_final_norm=True), 'gap_before_final_norm'),
    (dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1], channels=[8, 16, 32
                                                                 ])), 'arch'),
])
def test_config_errors(backbone, match):
    with pytest.raises((TypeError, ValueError), match=match):
        build(backbone)


def test_num_shared_stages_error():
    with pytest.raises(ValueError, match='num_shared_stages'):
        build(num_shared_stages=4)


def test_shared_module_repr():
    model = build()
    assert isinstance(model.lm_tower.layer1, SharedModule)
    assert 'layer1' in repr(model.lm_tower.layer1)
    assert model.lm_tower.layer1.module is model.expr_tower.layer1


def test_deepcopy_shares_within_the_copy():
    """A momentum copy (deepcopy) shares its own stem, not the original's,
    and lists its parameters in the original's order."""
    torch.manual_seed(0)
    model = build().eval()
    copied = copy.deepcopy(model)
    assert copied.lm_tower.layer1.module is copied.expr_tower.layer1
    assert [n for n, _ in copied.named_parameters()
            ] == [n for n, _ in model.named_parameters()]
    with torch.no_grad():
        copied.expr_tower.conv1.weight.mul_(0.5)
        x = torch.rand(1, 3, 64, 64)
        assert_same_maps(copied(x)[1], copied.lm_tower(x))
        assert not torch.equal(copied(x)[1][0], model(x)[1][0])
