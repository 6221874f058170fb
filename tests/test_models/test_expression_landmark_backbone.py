# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's towers and landmark FPN on the other mmpretrain families."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmfer.models.backbones.expression_landmark_backbone import \
    ExpressionLandmarkBackbone
from mmfer.models.necks.landmark_fpn import LandmarkFPN
from tower_checks import assert_both_towers_loaded

SIZE = 64
DEIT = dict(type='VisionTransformer', arch='deit-tiny')
MOBILENET = dict(type='MobileNetV3', arch='small')
R50 = dict(type='ResNet', depth=50)
CONVNEXT = dict(type='ConvNeXt', arch='atto')
EFFICIENTNET = dict(type='EfficientNet', arch='b0')
PYRAMID = (4, 8, 16, 32)
# backbone, its output stages by default, their channels and strides
FAMILIES = {
    'resnet50': (R50, (0, 1, 2, 3), (256, 512, 1024, 2048), PYRAMID),
    'convnext-atto': (CONVNEXT, (0, 1, 2, 3), (40, 80, 160, 320), PYRAMID),
    'mobilenetv3-small':
    (MOBILENET, (1, 3, 8, 12), (16, 24, 48, 576), PYRAMID),
    'efficientnet-b0':
    (EFFICIENTNET, (2, 3, 4, 6), (24, 40, 112, 1280), PYRAMID),
    'deit-tiny': (DEIT, (11, ), (192, ), (16, )),
}


def build(backbone, num_shared_stages=1):
    torch.manual_seed(0)
    return ExpressionLandmarkBackbone(
        backbone=backbone, num_shared_stages=num_shared_stages)


def num_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def shared_numel(model):
    """Parameters of the expression tower's stem and shared stages."""
    return sum(
        model.expr_tower.get_parameter(name).numel()
        for name in shared_names(model))


def assert_same_maps(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize('name', list(FAMILIES))
def test_family_towers_fpn_and_gradients(name):
    backbone, outputs, channels, strides = FAMILIES[name]
    model = build(backbone).train()
    assert model.layout.outputs == outputs
    assert model.expr_channels == model.lm_channels == channels
    assert model.expr_strides == model.lm_strides == strides
    fpn = LandmarkFPN(
        model.lm_channels,
        out_channels=16,
        num_landmarks=5,
        in_strides=model.lm_strides)

    # each shared parameter once: the landmark tower lacks exactly them
    params = list(model.parameters())
    assert len({id(p) for p in params}) == len(params)
    assert shared_numel(model) > 0
    assert num_params(model.lm_tower) + shared_numel(model) == num_params(
        model.expr_tower)

    x = torch.rand(2, 3, SIZE, SIZE)
    expr_feats, lm_feats = model(x)
    assert [f.shape[1] for f in lm_feats] == list(channels)
    assert [SIZE // f.shape[-1] for f in lm_feats] == list(strides)
    heatmaps, fused = fpn(lm_feats)
    assert heatmaps.shape == (2, 5, SIZE // 4, SIZE // 4)
    assert fused.shape == (2, 16, SIZE // 4, SIZE // 4)

    # the landmark loss reaches the shared stem and the landmark tower only
    heatmaps.square().mean().backward(retain_graph=True)
    first = next(model.expr_tower.parameters())  # in the shared stem
    assert first.grad is not None and first.grad.abs().sum() > 0
    own = [p for p in model.lm_tower.parameters() if p.requires_grad]
    assert own and all(p.grad is not None for p in own)
    assert all(p.grad is None for n, p in model.expr_tower.named_parameters()
               if n not in shared_names(model))
    # the expression maps come from all of the expression tower
    sum(f.mean() for f in expr_feats).backward()
    assert all(p.grad is not None for p in model.expr_tower.parameters())


def shared_names(model):
    """Names, in the expression tower, of the shared parameters."""
    tower = model.expr_tower
    names = set(model.layout.stem_params)
    for path in model.layout.shared_paths(model.num_shared_stages):
        names.update(f'{path}.{n}'
                     for n, _ in tower.get_submodule(path).named_parameters())
    return names


@pytest.mark.parametrize('backbone,num_shared_stages', [
    (MOBILENET, 0),
    (EFFICIENTNET, 3),
    (DEIT, 0),
    (DEIT, 1),
    (dict(DEIT, out_indices=(5, 11)), 6),
])
def test_towers_match_their_backbones(backbone, num_shared_stages):
    """Each tower, run by the backbone's own forward (the landmark tower
    through its stand-ins for the shared modules and parameters), gives the
    wrapper's maps; the shared ones are computed once."""
    model = build(backbone, num_shared_stages).eval()
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expr_feats, lm_feats = model(x)
        assert_same_maps(expr_feats, model.expr_tower(x))
        assert_same_maps(lm_feats, model.lm_tower(x))
        assert_same_maps(model.forward_expression(x), expr_feats)
    for i, stage in enumerate(model.layout.outputs):
        assert (expr_feats[i] is lm_feats[i]) == (stage < num_shared_stages)


def test_vit_shares_patch_embedding_tokens_and_first_blocks():
    model = build(DEIT, num_shared_stages=2)
    keys = set(model.state_dict())
    for key in ('cls_token', 'pos_embed', 'patch_embed.projection.weight',
                'layers.1.ln1.weight'):
        assert f'expr_tower.{key}' in keys
        assert f'lm_tower.{key}' not in keys
    assert 'lm_tower.layers.2.ln1.weight' in keys
    assert 'lm_tower.ln1.weight' in keys  # the final norm is the tower's
    # the landmark tower's own methods see the expression tower's tokens
    assert model.lm_tower.pos_embed is model.expr_tower.pos_embed
    copied = copy.deepcopy(model)  # e.g. a momentum encoder
    assert copied.lm_tower.pos_embed is copied.expr_tower.pos_embed
    assert copied.lm_tower.pos_embed is not model.expr_tower.pos_embed
    assert copied.lm_tower.layers[0].module is copied.expr_tower.layers[0]
    copied.load_state_dict(model.state_dict())  # strict
    model.double()  # a dtype or device move keeps the reference
    assert model.lm_tower.pos_embed is model.expr_tower.pos_embed
    assert model.lm_tower.pos_embed.dtype == torch.float64


@pytest.mark.parametrize('backbone', [DEIT, MOBILENET])
def test_pretrained_loads_both_towers(backbone, tmp_path):
    torch.manual_seed(1)
    source = MODELS.build(
        dict(backbone, out_type='featmap') if backbone is DEIT else backbone)
    for p in source.parameters():  # not what a fresh build draws
        p.data.normal_()
    ckpt = tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=source.state_dict()), ckpt)
    model = build(
        dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))))
    model.init_weights()
    assert_both_towers_loaded(model, source)


class TwoScaleBackbone(nn.Module):
    """A backbone of no known family: stride-4 and stride-8 maps, or, when
    ``pooled``, vectors."""

    def __init__(self, pooled=False):
        super().__init__()
        self.pooled = pooled
        self.conv1 = nn.Conv2d(3, 8, 4, stride=4)
        self.conv2 = nn.Conv2d(8, 16, 2, stride=2)

    def forward(self, x):
        x = self.conv1(x)
        outs = (x, self.conv2(x))
        return tuple(o.mean(dim=(2, 3)) for o in outs) if self.pooled else outs


MODELS.register_module(
    'TwoScaleTestBackbone', module=TwoScaleBackbone, force=True)


def test_unsplittable_backbone_is_two_whole_copies():
    model = build(dict(type='TwoScaleTestBackbone'), 0)
    assert num_params(model.lm_tower) == num_params(model.expr_tower) > 0
    assert num_params(model) == 2 * num_params(model.expr_tower)
    assert (model.lm_channels, model.lm_strides) == ((8, 16), (4, 8))
    x = torch.rand(1, 3, SIZE, SIZE)
    expr_feats, lm_feats = model(x)
    assert_same_maps(expr_feats, model.expr_tower(x))
    assert_same_maps(lm_feats, model.lm_tower(x))
    assert not torch.equal(expr_feats[0], lm_feats[0])
    heatmaps, _ = LandmarkFPN(model.lm_channels)(lm_feats)
    assert heatmaps.shape[-2:] == (SIZE // 4, SIZE // 4)
    with pytest.raises(ValueError, match='num_shared_stages=0'):
        build(dict(type='TwoScaleTestBackbone'), 1)


def test_backbone_without_feature_maps_is_refused():
    with pytest.raises(ValueError, match=r'feature maps.*shape \(1, 8\)'):
        build(dict(type='TwoScaleTestBackbone', pooled=True), 0)


def test_fpn_single_stride16_map():
    """A ViT's map: lateral conv, x4 bilinear upsampling, heatmap conv."""
    torch.manual_seed(0)
    fpn = LandmarkFPN((8, ),
                      out_channels=6,
                      num_landmarks=3,
                      in_strides=(16, ))
    assert fpn.upsample_factor == 4
    feat = torch.randn(2, 8, 4, 5)
    heatmaps, fused = fpn([feat])
    lateral = F.conv2d(feat, fpn.lateral_convs[0].weight)
    expected = F.interpolate(
        lateral, size=(16, 20), mode='bilinear', align_corners=False)
    torch.testing.assert_close(fused, expected)
    torch.testing.assert_close(heatmaps, fpn.heatmap_conv(expected))


def test_fpn_strides_of_a_resnet_change_nothing():
    torch.manual_seed(0)
    channels = (8, 16, 32, 64)
    fpn = LandmarkFPN(channels, out_channels=12, num_landmarks=5)
    with_strides = LandmarkFPN(
        channels, out_channels=12, num_landmarks=5, in_strides=(4, 8, 16, 32))
    with_strides.load_state_dict(fpn.state_dict())
    assert with_strides.upsample_factor == 1
    feats = [
        torch.randn(2, c, 28 // 2**i, 28 // 2**i)
        for i, c in enumerate(channels)
    ]
    for a, b in zip(fpn(feats), with_strides(feats)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fpn_two_scales_reach_stride_4():
    fpn = LandmarkFPN((8, 16), in_strides=(8, 16))
    heatmaps, _ = fpn([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)])
    assert heatmaps.shape == (1, 19, 16, 16)


@pytest.mark.parametrize('in_strides,match', [
    ((16, 8), 'finest first'),
    ((4, ), 'one stride per map'),
    ((2, 4), 'output_stride=4'),
    ((6, 12), 'output_stride=4'),
])
def test_fpn_stride_errors(in_strides, match):
    with pytest.raises(ValueError, match=match):
        LandmarkFPN((8, 16), in_strides=in_strides)
