# Copyright (c) OpenMMLab. All rights reserved.
"""vis_cam.py: class activation maps of every system, and their mirror."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import MODELS
from PIL import Image

import mmfer  # noqa: F401
from fer_replicas import make_rafdb
from log_capture import logged_messages
from mmfer.visualization import (ActivationMapper, flip_pair,
                                 plain_cam_problem, predicting_networks)
from mmfer.visualization import activation_maps
from tool_runs import load_tool, write_config

vis_cam = load_tool('tools/visualization/vis_cam.py')

GRAD_CAM_REASON = ('the optional package grad-cam (import name '
                   'pytorch_grad_cam; pip install grad-cam) is not installed')


@MODELS.register_module(force=True)
class TinyCamNet(nn.Module):
    """Conv features of 4 channels at the input's resolution."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel, padding=kernel // 2)
        self.relu = nn.ReLU()

    def forward(self, x):
        return (self.relu(self.conv(x)), )


def tiny_classifier(kernel=3, head=None, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='TinyCamNet', kernel=kernel),
            neck=dict(type='GlobalAveragePooling'),
            head=head or dict(
                type='LinearClsHead', num_classes=3, in_channels=4)))
    return model.eval()


def naive_cam(feat, weight, k):
    """``cam[h, w] = sum_c feat[c, h, w] * weight[k, c]`` with loops."""
    _, height, width = feat.shape
    cam = torch.zeros(height, width)
    for h in range(height):
        for w in range(width):
            cam[h, w] = sum(feat[c, h, w] * weight[k, c]
                            for c in range(feat.size(0)))
    return cam


def test_plain_cam_equals_direct_computation():
    model = tiny_classifier()
    weight = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, 1.0, -1.0],
                           [3.0, 0.0, -1.0, 2.0]])
    model.head.fc.weight.data.copy_(weight)
    x = torch.randn(2, 3, 5, 6)
    assert plain_cam_problem(model, x) is None
    mapper = ActivationMapper(model)
    maps = mapper(x, torch.tensor([0, 2]))
    assert mapper.method_used == 'cam'
    feat = torch.relu(model.backbone.conv(x)).detach()
    for i, k in enumerate([0, 2]):
        torch.testing.assert_close(maps[i], naive_cam(feat[i], weight, k))

    # the mirror panel: the mirrored image's map, mirrored back
    pair, scores, cls = flip_pair(mapper, x[:1])
    logits = model(x[:1], mode='tensor')
    assert cls == int(logits.argmax())
    torch.testing.assert_close(scores[0], logits[0].softmax(0))
    mirror_feat = torch.relu(model.backbone.conv(x[:1].flip(3)))[0].detach()
    torch.testing.assert_close(
        pair[1], naive_cam(mirror_feat, weight, cls).flip(1))
    torch.testing.assert_close(pair[0], naive_cam(feat[0], weight, cls))


def test_mirror_panel_matches_for_a_flip_equivariant_backbone():
    """A 1x1 conv commutes with the mirror: the mirror's map mirrored back
    is the image's map. A 3x3 conv does not."""
    x = torch.randn(1, 3, 6, 6)
    pair, _, _ = flip_pair(ActivationMapper(tiny_classifier(kernel=1)), x)
    torch.testing.assert_close(pair[0], pair[1])
    pair, _, _ = flip_pair(ActivationMapper(tiny_classifier(kernel=3)), x)
    assert not torch.allclose(pair[0], pair[1], atol=1e-3)


def test_predicting_network_of_each_system():
    nets = [
        dict(type='ImageClassifier', backbone=dict(type='TinyCamNet'),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=3, in_channels=4))
    ] * 2
    resup = MODELS.build(dict(type='CoTeachingClassifier', networks=nets,
                              predict_with='net1')).eval()
    assert predicting_networks(resup) == [resup.networks[1]]
    x = torch.randn(1, 3, 5, 5)
    maps = ActivationMapper(resup)(x, torch.tensor([1]))
    expected = naive_cam(
        resup.networks[1].backbone(x)[0][0].detach(),
        resup.networks[1].head.fc.weight.detach(), 1)
    torch.testing.assert_close(maps[0], expected)
    resup.predict_with = 'ensemble'
    assert list(predicting_networks(resup)) == list(resup.networks)
    assert 'softmax of 2 networks' in plain_cam_problem(resup, x)

    gsmc = MODELS.build(
        dict(type='MeanTeacherClassifier',
             student=dict(nets[0], type='FERClassifier'),
             teacher_view=0)).eval()
    assert predicting_networks(gsmc) == [gsmc.student]


NONLINEAR_HEAD = dict(
    type='StackedLinearClsHead', num_classes=3, in_channels=4,
    mid_channels=[5])


def test_grad_cam_absent_names_the_package(monkeypatch):
    monkeypatch.setattr(activation_maps, 'GRAD_CAM_MODULE',
                        'pytorch_grad_cam_not_installed')
    model = tiny_classifier(head=NONLINEAR_HEAD)
    x = torch.randn(1, 3, 5, 5)
    assert 'no linear classifier' in plain_cam_problem(model, x)
    with pytest.raises(ImportError, match='pip install grad-cam'):
        ActivationMapper(model)(x, torch.tensor([0]))


def test_grad_cam_of_a_linear_head_is_the_normalised_cam():
    """For a linear classifier of the pooled map, the Grad-CAM weights are
    ``fc.weight[k] / (H * W)``: Grad-CAM is the ReLU of the plain CAM,
    scaled to [0, 1] and resized to the input."""
    pytest.importorskip('pytorch_grad_cam', reason=GRAD_CAM_REASON)
    model = tiny_classifier()
    x = torch.randn(2, 3, 6, 6)
    targets = torch.tensor([1, 2])
    grad = ActivationMapper(model, method='gradcam')(x, targets)
    plain = ActivationMapper(model, method='cam')(x, targets).clamp(min=0)
    plain = plain - plain.amin(dim=(1, 2), keepdim=True)
    plain = plain / plain.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(grad, plain, atol=1e-4, rtol=0)


def test_grad_cam_where_plain_cam_does_not_apply():
    pytest.importorskip('pytorch_grad_cam', reason=GRAD_CAM_REASON)
    model = tiny_classifier(head=NONLINEAR_HEAD)
    mapper = ActivationMapper(model)
    maps = mapper(torch.randn(2, 3, 6, 6), torch.tensor([0, 1]))
    assert mapper.method_used == 'gradcam'
    assert mapper.target_layers == ['backbone.relu']
    assert maps.shape == (2, 6, 6) and torch.isfinite(maps).all()
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1
    with pytest.raises(ValueError, match='does not apply'):
        ActivationMapper(model, method='cam')(torch.randn(1, 3, 6, 6),
                                              torch.tensor([0]))


# ---------------------------------------------------------------- the tool
METHODS = ('baseline', 'eac', 'gsmc', 'resup', 'lanet')


@pytest.fixture(scope='module')
def replica(tmp_path_factory):
    root = tmp_path_factory.mktemp('vis_cam')
    data = make_rafdb(str(root / 'rafdb'), num_train=7, num_test=2)
    return root, data


def save_random_checkpoint(config, path, seed=0):
    cfg = Config.fromfile(config)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.parametrize('method', METHODS)
def test_plain_cam_is_exact_for_every_system(replica, method):
    cfg = Config.fromfile(write_config(replica[0], replica[1], method))
    model = MODELS.build(cfg.model).eval()
    assert plain_cam_problem(model, torch.randn(2, 3, 64, 64)) is None


def test_resup_ensemble_uses_grad_cam_on_both_networks(replica):
    pytest.importorskip('pytorch_grad_cam', reason=GRAD_CAM_REASON)
    cfg = Config.fromfile(write_config(replica[0], replica[1], 'resup'))
    cfg.model.predict_with = 'ensemble'
    mapper = ActivationMapper(MODELS.build(cfg.model).eval())
    maps = mapper(torch.randn(2, 3, 64, 64), torch.tensor([0, 3]))
    assert mapper.method_used == 'gradcam'
    assert mapper.target_layers == [
        'networks.0.backbone.layer4', 'networks.1.backbone.layer4']
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all()


@pytest.mark.parametrize('method', METHODS)
def test_tool_writes_the_four_panels_for_every_system(replica, method):
    root, data = replica
    config = write_config(root, data, method)
    ckpt = save_random_checkpoint(config, str(root / f'{method}.pth'))
    images = [osp.join(data, 'Image', 'aligned', f'test_000{i}_aligned.jpg')
              for i in (1, 2)]
    out = str(root / f'out_{method}')
    written = vis_cam.main([config, ckpt] + images +
                           ['--out', out, '--target-class', 'happiness'])
    assert [osp.basename(p) for p in written] == [
        'test_0001_aligned_cam.png', 'test_0002_aligned_cam.png']
    width, height = Image.open(written[0]).size
    assert width > 3 * height > 0  # four panels side by side


def test_tool_says_where_it_wrote(replica):
    root, data = replica
    config = write_config(root, data, 'eac')
    ckpt = save_random_checkpoint(config, str(root / 'where.pth'))
    image = osp.join(data, 'Image', 'aligned', 'test_0001_aligned.jpg')
    out = str(root / 'out_where')
    with logged_messages() as messages:
        vis_cam.main([config, ckpt, image, '--out', out])
    said = f'wrote 1 figure(s) to {out}: test_0001_aligned_cam.png'
    assert any(said in m for m in messages)


def test_each_map_is_scaled_to_its_own_range():
    from mmfer.visualization import normalise_maps

    # the second map spans 1% of the first's range: scaled together it
    # would be one flat colour
    maps = torch.stack([torch.arange(16.).view(4, 4),
                        0.01 * torch.arange(16.).view(4, 4).t() + 5])
    out = normalise_maps(maps, (8, 8))
    for m in out:
        assert m.min() == pytest.approx(0) and m.max() == pytest.approx(1)
    assert not out[2:].size  # two maps in, two out
    assert (normalise_maps(torch.ones(1, 4, 4), (8, 8)) == 0).all()


def test_tool_errors(replica, tmp_path):
    root, data = replica
    config = write_config(root, data, 'baseline')
    image = osp.join(data, 'Image', 'aligned', 'test_0001_aligned.jpg')
    args = ['--out', str(tmp_path / 'out')]
    with pytest.raises(FileNotFoundError, match='checkpoint .*nowhere.pth'):
        vis_cam.main([config, str(tmp_path / 'nowhere.pth'), image] + args)

    gsmc = save_random_checkpoint(
        write_config(root, data, 'gsmc'), str(tmp_path / 'gsmc.pth'))
    with pytest.raises(ValueError) as err:
        vis_cam.main([config, gsmc, image] + args)
    text = str(err.value)
    assert gsmc in text and config in text
    assert ('missing keys (in the model, not in the checkpoint): '
            'backbone.') in text
    assert ('unexpected keys (in the checkpoint, not in the model): '
            'student.') in text

    ckpt = save_random_checkpoint(config, str(tmp_path / 'base.pth'))
    state = torch.load(ckpt)
    state['state_dict']['head.fc.weight'] = torch.zeros(5, 128)
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match='size mismatch.*head.fc.weight'):
        vis_cam.main([config, ckpt, image] + args)

    ckpt = save_random_checkpoint(config, str(tmp_path / 'base.pth'))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not an image')
    with pytest.raises(OSError, match='broken.jpg'):
        vis_cam.main([config, ckpt, str(broken)] + args)
    with pytest.raises(FileNotFoundError, match='absent.jpg'):
        vis_cam.main([config, ckpt, str(tmp_path / 'absent.jpg')] + args)
    with pytest.raises(ValueError, match='--target-class Joy'):
        vis_cam.main([config, ckpt, image, '--target-class', 'Joy'] + args)


def test_help_runs():
    with pytest.raises(SystemExit) as exit_info:
        vis_cam.parse_args(['--help'])
    assert exit_info.value.code == 0


def test_overlay_is_a_blend():
    from mmfer.visualization import overlay_cam
    image = np.full((2, 2, 3), 100, np.uint8)
    cam = np.zeros((2, 2))
    np.testing.assert_array_equal(overlay_cam(image, cam, alpha=0.0), image)
    # jet(0) is dark blue (0, 0, 0.5): half of it over grey 100
    blended = overlay_cam(image, cam, alpha=0.5)
    np.testing.assert_allclose(blended[0, 0], [50, 50, 114], atol=1)
    with pytest.raises(ValueError, match='upsample'):
        overlay_cam(image, np.zeros((3, 3)))
