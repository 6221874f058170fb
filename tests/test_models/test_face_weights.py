# Copyright (c) OpenMMLab. All rights reserved.
"""Face-recognition weights -> mmpretrain ResNet (the model converter).

Each of the four layouts is built from a randomly initialised reference
model (torchvision ResNet-18; a Caffe-style ResNet-50 written below), and
the converted mmpretrain backbone must compute the same feature maps.
"""
import argparse
import hashlib
import os
import os.path as osp
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from mmpretrain.models import ResNet
from mmpretrain.registry import MODELS

import mmfer.models.backbones  # noqa: F401  (registers FaceResNet)
import mmfer.utils.face_weights as fw
from mmfer.models.backbones import FaceResNet
from tool_runs import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'model_converters',
                'face_weights_to_mmpretrain.py')
cli = load_tool('tools/model_converters/face_weights_to_mmpretrain.py')
R18_KEYS = 120  # mmpretrain ResNet-18 state dict (torchvision: + fc.*)
R50_KEYS = 318


# ---------------------------------------------------------------------------
# Reference source models
# ---------------------------------------------------------------------------
def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN affine and running stats, so eval mode uses them."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=gen)
            m.bias.data = 0.1 * torch.randn(n, generator=gen)
            m.running_mean = 0.1 * torch.randn(n, generator=gen)
            m.running_var = 0.5 + torch.rand(n, generator=gen)
    return model.eval()


@pytest.fixture(scope='module')
def tv_r18():
    torch.manual_seed(0)
    return _randomise_bn(torchvision.models.resnet18(), 1)


def tv_features(model: nn.Module, x: torch.Tensor):
    """torchvision ResNet up to layer4, returning each stage's output."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    outs = []
    for name in ('layer1', 'layer2', 'layer3', 'layer4'):
        x = getattr(model, name)(x)
        outs.append(x)
    return outs


class CaffeBottleneck(nn.Module):
    """VGGFace2 resnet50_ft bottleneck: the stride is in the first 1x1."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class CaffeResNet50(nn.Module):
    """The VGGFace2 resnet50_ft architecture with its module names."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=0, ceil_mode=True)
        inplanes = 64
        for i, (planes, blocks, stride) in enumerate(
                zip((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2)), 1):
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                nn.BatchNorm2d(planes * 4))
            layers = [CaffeBottleneck(inplanes, planes, stride, downsample)]
            inplanes = planes * 4
            layers += [
                CaffeBottleneck(inplanes, planes) for _ in range(1, blocks)
            ]
            setattr(self, f'layer{i}', nn.Sequential(*layers))
        # the real file has an 8631-way fc; the layout is the same
        self.fc = nn.Linear(2048, num_classes)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
            outs.append(x)
        return outs


@pytest.fixture(scope='module')
def caffe_r50():
    torch.manual_seed(2)
    return _randomise_bn(CaffeResNet50(), 3)


def _vggface2_arrays(model: nn.Module) -> 'OrderedDict[str, np.ndarray]':
    """{name: ndarray} as in resnet50_ft_weight.pkl (no num_batches)."""
    return OrderedDict((k, v.numpy().copy())
                       for k, v in model.state_dict().items()
                       if not k.endswith('num_batches_tracked'))


def _build(depth, state_dict, **kwargs):
    cls = FaceResNet if kwargs else ResNet
    model = cls(depth=depth, out_indices=(0, 1, 2, 3), **kwargs)
    model.load_state_dict(state_dict, strict=True)
    model.eval()  # mmpretrain's ResNet.train() returns None
    return model


def _assert_same(outs_a, outs_b):
    assert len(outs_a) == len(outs_b) == 4
    for a, b in zip(outs_a, outs_b):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# The four layouts give the source model's outputs
# ---------------------------------------------------------------------------
def test_torchvision_layout(tv_r18):
    ckpt = {'state_dict': tv_r18.state_dict()}  # dacl/RUL/DAN file
    assert fw.detect_layout(ckpt) == 'torchvision'
    sd, report = fw.convert_face_weights(ckpt)
    assert (report.layout, report.depth) == ('torchvision', 18)
    assert report.num_mapped == report.num_expected == R18_KEYS
    assert report.dropped == ['fc.weight', 'fc.bias'] and not report.filled
    assert report.summary().startswith(
        "mapped 120/120 backbone tensors from layout 'torchvision'")
    assert report.summary().endswith('dropped: fc.weight, fc.bias')
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_same(_build(18, sd)(x), tv_features(tv_r18, x))


def test_scn_layout_without_num_batches_tracked(tv_r18):
    # ijba_res18_naive.pth.tar: module.* keys, a 512->256 "feature" layer
    # and an 87,020-way fc (8 classes here: only the layout matters), saved
    # by a torch without num_batches_tracked.
    state = OrderedDict(('module.' + k, v)
                        for k, v in tv_r18.state_dict().items()
                        if not k.startswith('fc.')
                        and not k.endswith('num_batches_tracked'))
    state['module.feature.weight'] = torch.randn(256, 512)
    state['module.feature.bias'] = torch.randn(256)
    state['module.fc.weight'] = torch.randn(8, 256)
    state['module.fc.bias'] = torch.randn(8)
    ckpt = {'state_dict': state, 'epoch': 30}
    assert fw.detect_layout(ckpt) == 'scn'
    sd, report = fw.convert_face_weights(ckpt, depth=18)
    assert report.num_expected == R18_KEYS and len(report.filled) == 20
    assert report.num_mapped == R18_KEYS - 20
    assert sorted(report.dropped) == sorted([
        'module.feature.weight', 'module.feature.bias', 'module.fc.weight',
        'module.fc.bias'
    ])
    assert int(sd['bn1.num_batches_tracked']) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_same(_build(18, sd)(x), tv_features(tv_r18, x))


def _dmue_checkpoint(model):
    state = OrderedDict(('feat_net.' + k, v)
                        for k, v in model.state_dict().items()
                        if not k.startswith('fc.'))
    state['loss_layer.weight'] = torch.randn(512, 16)  # 512 x 86876 really
    return {'state_dict': state, 'epoch': 17, 'batch_id': 0}


def test_dmue_layout_with_gsmc_stem(tv_r18):
    ckpt = _dmue_checkpoint(tv_r18)
    assert fw.detect_layout(ckpt) == 'dmue'
    sd, report = fw.convert_face_weights(ckpt)
    assert report.dropped == ['loss_layer.weight']
    assert report.num_mapped == R18_KEYS and 'GSMC' in report.note
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # GSMC runs it in a torchvision resnet18
        _assert_same(_build(18, sd)(x), tv_features(tv_r18, x))


def test_dmue_exact_stem(tv_r18):
    sd, _ = fw.convert_face_weights(_dmue_checkpoint(tv_r18))
    dmue = _randomise_bn(torchvision.models.resnet18(), 1)
    dmue.load_state_dict(tv_r18.state_dict())
    dmue.relu, dmue.maxpool = nn.Identity(), nn.MaxPool2d(2, 2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = tv_features(dmue, x)
        _assert_same(_build(18, sd, stem_pool='dmue', stem_act=False)(x), ref)
        assert not torch.allclose(_build(18, sd)(x)[0], ref[0])
    assert isinstance(tv_r18.relu, nn.ReLU)  # the fixture is untouched


def test_vggface2_pickle_and_caffe_stem(caffe_r50, tmp_path):
    path = tmp_path / 'resnet50_ft_weight.pkl'
    with open(path, 'wb') as f:
        # protocol 2 from Python 3 is slow for 100 MB; the Python 2 format
        # is tested on a small pickle below
        pickle.dump(_vggface2_arrays(caffe_r50), f, protocol=4)
    arrays = fw.load_pickle_restricted(str(path))
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    assert fw.detect_layout(arrays) == 'vggface2'
    sd, report = fw.convert_face_weights(arrays)
    assert (report.layout, report.depth) == ('vggface2', 50)
    assert report.num_expected == R50_KEYS and len(report.filled) == 53
    assert report.dropped == ['fc.weight', 'fc.bias']
    assert report.backbone == dict(
        type='FaceResNet', depth=50, style='caffe', stem_pool='caffe')
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = caffe_r50.features(x)
        _assert_same(
            _build(50, sd, style='caffe', stem_pool='caffe')(x), ref)
        # why FaceResNet exists: mmpretrain's pool (padding=1) differs at
        # the borders (layer1 suffices to show it; it is cheaper)
        plain = ResNet(50, num_stages=1, strides=(1, ), dilations=(1, ),
                       out_indices=(0, ), style='caffe')
        plain.load_state_dict(sd, strict=False)
        plain.eval()
        assert not torch.allclose(plain(x)[0], ref[0], atol=1e-3)


def _to_caffe_name(key):
    """torchvision name -> VGGFace2 Caffe layer name (written here)."""
    module, param = key.rsplit('.', 1)
    if module in ('conv1', 'bn1'):
        name = 'conv1/7x7_s2' + ('/bn' if module == 'bn1' else '')
        return f'{name}.{param}'
    stage, block, rest = module.split('.', 2)
    base = f'conv{int(stage[5:]) + 1}_{int(block) + 1}'
    kind = {
        'conv1': '1x1_reduce', 'bn1': '1x1_reduce/bn', 'conv2': '3x3',
        'bn2': '3x3/bn', 'conv3': '1x1_increase', 'bn3': '1x1_increase/bn',
        'downsample.0': '1x1_proj', 'downsample.1': '1x1_proj/bn'
    }[rest]
    return f'{base}_{kind}.{param}'


def test_vggface2_caffe_layer_names(caffe_r50):
    arrays = _vggface2_arrays(caffe_r50)
    expected, _ = fw.convert_face_weights(arrays, logger='silent')
    caffe = OrderedDict(
        (_to_caffe_name(k) if not k.startswith('fc.') else k, v)
        for k, v in arrays.items())
    assert 'conv2_1_1x1_proj/bn.running_var' in caffe
    assert fw.detect_layout(caffe) == 'vggface2'
    sd, report = fw.convert_face_weights(caffe, logger='silent')
    assert report.caffe_names and report.num_mapped == R50_KEYS - 53
    assert list(sd) == list(expected)
    assert all(torch.equal(sd[k], expected[k]) for k in sd)


def test_load_face_checkpoint_formats(tv_r18, tmp_path):
    # a 2018-era .pth.tar: legacy (non-zip) torch serialisation
    legacy = tmp_path / 'ijba_res18_naive.pth.tar'
    state = {'module.' + k: v for k, v in tv_r18.state_dict().items()}
    torch.save({'state_dict': state, 'epoch': 30}, legacy,
               _use_new_zipfile_serialization=False)
    loaded = fw.load_face_checkpoint(str(legacy))
    assert fw.detect_layout(loaded) == 'scn'
    # a numpy pickle whatever its extension
    misnamed = tmp_path / 'resnet50_ft_weight.pth'
    misnamed.write_bytes(
        pickle.dumps({'conv1.weight': np.ones(3)}, protocol=2))
    assert list(fw.load_face_checkpoint(str(misnamed))) == ['conv1.weight']
    # not weights-only: refused unless trusted explicitly
    unsafe = tmp_path / 'with_args.pth'
    torch.save({'state_dict': {}, 'args': argparse.Namespace(lr=0.1)}, unsafe)
    with pytest.raises(fw.FaceWeightsError, match='--unsafe-load'):
        fw.load_face_checkpoint(str(unsafe))
    assert fw.load_face_checkpoint(str(unsafe), True)['args'].lr == 0.1
    with pytest.raises(FileNotFoundError):
        fw.load_face_checkpoint(str(tmp_path / 'absent.pth'))


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, like a py2 pickle."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def test_python2_pickle_needs_latin1(tmp_path):
    arrays = {b'conv1.weight': np.arange(6, dtype=np.float32).reshape(2, 3)}
    buf = tmp_path / 'py2.pkl'
    with open(buf, 'wb') as f:
        _Py2Pickler(f, protocol=2).dump(arrays)
    # py2 numpy pickles name numpy.core, not numpy._core
    data = buf.read_bytes().replace(b'numpy._core.', b'numpy.core.')
    assert b'numpy.core.multiarray' in data and b'_codecs' not in data
    buf.write_bytes(data)
    loaded = fw.load_pickle_restricted(str(buf))
    np.testing.assert_array_equal(loaded['conv1.weight'],
                                  arrays[b'conv1.weight'])


class _Evil:

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg, )


@pytest.mark.parametrize('func', [os.system, eval])
def test_restricted_unpickler_rejects_code(tmp_path, func):
    marker = tmp_path / 'pwned'
    arg = f'touch {marker}' if func is os.system else 'print("pwned")'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(
        {'conv1.weight': np.zeros(2), 'x': _Evil(func, arg)}, protocol=2))
    with pytest.raises(fw.UnsafePickleError, match=func.__name__) as err:
        fw.load_pickle_restricted(str(path))
    assert 'refusing to unpickle the global' in str(err.value)
    assert not marker.exists()
    # the generic loader takes the same path for .pkl files
    with pytest.raises(fw.UnsafePickleError):
        fw.load_face_checkpoint(str(path))


def test_restricted_unpickler_rejects_torch_tensors(tmp_path):
    path = tmp_path / 'tensor.pkl'
    path.write_bytes(pickle.dumps({'w': torch.zeros(2)}))
    with pytest.raises(fw.UnsafePickleError, match='torch'):
        fw.load_pickle_restricted(str(path))


# ---------------------------------------------------------------------------
# Loud failures
# ---------------------------------------------------------------------------
def test_missing_backbone_key_is_named(tv_r18):
    state = OrderedDict(('feat_net.' + k, v)
                        for k, v in tv_r18.state_dict().items())
    del state['feat_net.layer3.1.conv2.weight']
    with pytest.raises(fw.FaceWeightsError) as err:
        fw.convert_face_weights({'state_dict': state}, depth=18)
    msg = str(err.value)
    assert "layout 'dmue'" in msg and 'missing backbone keys (1)' in msg
    assert 'layer3.1.conv2.weight' in msg and 'unexpected' not in msg


def test_unexpected_keys_are_named(tv_r18):
    state = OrderedDict(tv_r18.state_dict())
    state['layer4.2.conv1.weight'] = torch.zeros(512, 512, 3, 3)
    with pytest.raises(fw.FaceWeightsError,
                       match=r"'torchvision'[\s\S]*unexpected keys \(1\): "
                       r'layer4\.2\.conv1\.weight'):
        fw.convert_face_weights(state, depth=18)
    # an SCN file with a key outside module. (a mixed, broken file)
    scn = OrderedDict(('module.' + k, v) for k, v in state.items()
                      if not k.startswith('layer4.2'))
    scn['bn_extra.weight'] = torch.zeros(3)
    with pytest.raises(fw.FaceWeightsError, match='bn_extra.weight'):
        fw.convert_face_weights(scn)


def test_extra_heads_and_shape_and_depth_errors(tv_r18):
    ckpt = _dmue_checkpoint(tv_r18)
    ckpt['state_dict']['feat_net.output_layer.weight'] = torch.zeros(512, 4)
    with pytest.raises(fw.FaceWeightsError, match='--drop PREFIX'):
        fw.convert_face_weights(ckpt)
    _, report = fw.convert_face_weights(
        ckpt, extra_heads=['feat_net.output_layer.'])
    assert 'feat_net.output_layer.weight' in report.dropped
    # wrong depth: named keys and a hint
    with pytest.raises(fw.FaceWeightsError, match='try depth=18'):
        fw.convert_face_weights(tv_r18.state_dict(), depth=34)
    bad = OrderedDict(tv_r18.state_dict())
    bad['conv1.weight'] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(fw.FaceWeightsError,
                       match=r'shape mismatches \(1\): conv1\.weight'):
        fw.convert_face_weights(bad)


def test_unknown_layout():
    with pytest.raises(fw.FaceWeightsError, match='unknown face-weight '
                       r'layout[\s\S]*backbone\.conv1\.weight'):
        fw.convert_face_weights({'backbone.conv1.weight': torch.zeros(1)})
    with pytest.raises(fw.FaceWeightsError, match="unknown layout 'ir50'"):
        fw.convert_face_weights({'conv1.weight': torch.zeros(1)},
                                layout='ir50')
    with pytest.raises(fw.FaceWeightsError, match='got list'):
        fw.detect_layout([1, 2])


def test_face_resnet_options():
    model = MODELS.build(
        dict(type='FaceResNet', depth=18, stem_pool='caffe'))
    assert model.maxpool.ceil_mode and model.maxpool.padding == 0
    with pytest.raises(ValueError, match="'pytorch', 'caffe', 'dmue'"):
        FaceResNet(depth=18, stem_pool='avg')
    with pytest.raises(ValueError, match='deep_stem'):
        FaceResNet(depth=18, deep_stem=True, stem_act=False)


# ---------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------
def _run_cli(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env)


def test_cli_end_to_end(tv_r18, tmp_path, monkeypatch):
    src = tmp_path / 'resnet18_msceleb.pth'
    torch.save({'state_dict': tv_r18.state_dict()}, src)
    dst = tmp_path / 'out' / 'r18_msceleb_mmpretrain.pth'
    proc = _run_cli(src, dst)
    assert proc.returncode == 0, proc.stderr
    assert ("mapped 120/120 backbone tensors from layout 'torchvision' "
            '(ResNet-18); dropped: fc.weight, fc.bias') in proc.stdout
    # only tensors and plain containers: weights-only loading works
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['layout'] == 'torchvision'
    assert ckpt['meta']['source'] == 'resnet18_msceleb.pth'
    assert ckpt['meta']['source_sha256'] == hashlib.sha256(
        src.read_bytes()).hexdigest()
    assert not [p for p in os.listdir(dst.parent) if p.endswith('.tmp')]

    # init_cfg=Pretrained through mmfer's weights-only loader
    model = MODELS.build(
        dict(
            type='ResNet',
            depth=18,
            init_cfg=dict(type='Pretrained', checkpoint=str(dst))))
    model.init_weights()
    loaded = model.state_dict()
    assert list(loaded) == list(ckpt['state_dict'])
    for key, value in tv_r18.state_dict().items():
        if not key.startswith('fc.'):
            assert torch.equal(loaded[key], value), key

    # never overwritten
    before = dst.read_bytes()
    again = _run_cli(src, dst)
    assert again.returncode != 0 and 'refusing to overwrite' in again.stderr
    assert dst.read_bytes() == before


def test_cli_fails_loudly_in_process(tv_r18, tmp_path):
    assert cli.LAYOUTS == fw.LAYOUTS
    state = OrderedDict(tv_r18.state_dict())
    del state['layer1.0.bn1.running_var']
    src, dst = tmp_path / 'broken.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': state}, src)
    with pytest.raises(SystemExit, match=r'layer1\.0\.bn1\.running_var'):
        cli.main([str(src), str(dst)])
    assert not dst.exists()
    # layout forced: every key is reported, nothing written
    torch.save({'state_dict': tv_r18.state_dict()}, src)
    with pytest.raises(SystemExit, match="layout 'scn'") as err:
        cli.main([str(src), str(dst), '--layout', 'scn'])
    assert 'unexpected keys (122)' in str(err.value)
    assert "prefix 'module.'" in str(err.value)
    assert not dst.exists()
