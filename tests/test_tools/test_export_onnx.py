# Copyright (c) OpenMMLab. All rights reserved.
"""tools/deployment/export_onnx.py: each system's inference graph in ONNX.

Tiny models of every system are built from the SynthFER configs (a
quarter-width ResNet-18 at 64 px) with random weights and random BatchNorm
statistics, so that their scores are far from uniform and the networks of
one system disagree; onnxruntime's scores are compared with the PyTorch
model's on raw uint8 images at batch 1 and 3.
"""
import importlib.util
import json
import os
import os.path as osp
import stat
from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from tool_runs import REPO

onnx = pytest.importorskip(
    'onnx', reason='optional dependency for ONNX export: pip install onnx')
onnxruntime = pytest.importorskip(
    'onnxruntime',
    reason='optional dependency for ONNX export checks: '
    'pip install onnxruntime')

TOOL = osp.join(REPO, 'tools', 'deployment', 'export_onnx.py')
CLASSES = ('Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger',
           'Neutral')
SIZE = 64  # the SynthFER configs' test pipeline size
# ImageNet statistics in RGB order, as configs/_base_/datasets/fer_common.py
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
ATOL = 1e-4


def _load_tool():
    spec = importlib.util.spec_from_file_location('export_onnx', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_onnx = _load_tool()


def config(method: str) -> str:
    return osp.join(REPO, 'configs', method, 'r18_synthfer_noise30.py')


def build(method: str, options: dict = None) -> nn.Module:
    """The method's SynthFER model with random weights and statistics."""
    cfg = Config.fromfile(config(method))
    cfg.merge_from_dict(options or {})
    torch.manual_seed(0)
    model = export_onnx.build_model(cfg)
    # A freshly initialised network gives near-uniform scores, and the
    # copies in a system (GSMC's teacher) equal ones: random BatchNorm
    # statistics and larger classifier weights make them differ.
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.3, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
        elif isinstance(module, nn.Linear):
            module.weight.data.mul_(10)
    return model.eval()


def save(model: nn.Module, path) -> str:
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=CLASSES))), str(path))
    return str(path)


def images(n: int, seed: int = 1) -> torch.Tensor:
    """Random ``(n, 3, SIZE, SIZE)`` uint8 BGR images."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, 256, (n, 3, SIZE, SIZE), generator=generator, dtype=torch.uint8)


def normalised(bgr: torch.Tensor) -> torch.Tensor:
    """The configs' preprocessing, written out: BGR -> RGB, then ImageNet
    mean and std."""
    return (bgr.flip(1).float() - MEAN) / STD


@torch.no_grad()
def predict(network: nn.Module, bgr: torch.Tensor) -> torch.Tensor:
    """``pred_score`` of ``network.predict`` on preprocessed images."""
    samples = network.predict(normalised(bgr))
    return torch.stack([sample.pred_score for sample in samples])


def onnx_scores(path: str, fed: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images']
    assert isinstance(session.get_inputs()[0].shape[0], str)  # dynamic
    return torch.from_numpy(
        session.run(['scores'], {'images': fed.float().numpy()})[0])


def initializer_elements(path: str) -> int:
    graph = onnx.load(path).graph
    return int(sum(np.prod(t.dims) for t in graph.initializer))


@lru_cache(maxsize=None)
def plain_parameters() -> int:
    """Parameters of the baseline's network, which every system here is
    built on."""
    return sum(p.numel() for p in build('baseline').parameters())


def expected_scores(method, model, options, bgr):
    """The scores each system's predict is specified to give, computed
    here from its member networks."""
    if method == 'gsmc':
        network = (model.teacher.module if options.get('model.predict_with')
                   == 'teacher' else model.student)
        return predict(network, bgr)
    if method == 'resup':
        which = options.get('model.predict_with', 'net0')
        if which == 'ensemble':
            return (predict(model.networks[0], bgr) +
                    predict(model.networks[1], bgr)) / 2
        return predict(model.networks[int(which[-1])], bgr)
    return predict(model, bgr)


# (method, config options, networks the graph runs)
CASES = [
    ('baseline', {}, 1),
    ('eac', {}, 1),
    ('gsmc', {}, 1),
    ('gsmc', {'model.predict_with': 'teacher'}, 1),
    ('resup', {}, 1),
    ('resup', {'model.predict_with': 'net1'}, 1),
    ('resup', {'model.predict_with': 'ensemble'}, 2),
    ('lanet', {}, 1),
]


@pytest.mark.parametrize('method,options,networks', CASES)
def test_onnx_scores_equal_each_systems_predict(tmp_path, method, options,
                                                networks):
    model = build(method, options)
    ckpt = save(model, tmp_path / 'model.pth')
    out = str(tmp_path / 'model.onnx')
    argv = [config(method), ckpt, '--out', out]
    if options:
        argv += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    assert export_onnx.main(argv) == out

    for n in (1, 3):
        bgr = images(n)
        expected = expected_scores(method, model, options, bgr)
        # far from uniform: a wrong network or preprocessing shows
        assert (expected.max(dim=1).values > 0.3).all(), expected
        assert torch.allclose(expected.sum(dim=1), torch.ones(n))
        # and input-dependent: a graph that ignores its input fails
        assert n == 1 or (expected - expected[0]).abs().max() > 10 * ATOL
        torch.testing.assert_close(
            onnx_scores(out, bgr), expected, atol=ATOL, rtol=0)
        # the model's own predict path agrees as well
        torch.testing.assert_close(
            export_onnx.predict_scores(model, bgr), expected, atol=ATOL,
            rtol=0)

    # One predicting network (two for the ensemble), never the teacher,
    # the other ReSup network or LA-Net's landmark tower besides (BatchNorm
    # folded into the convolutions makes the file a little smaller).
    plain = networks * plain_parameters()
    assert 0.98 * plain <= initializer_elements(out) <= plain


def test_the_networks_of_a_system_disagree():
    """Else the cases above could not tell a wrong network from the right
    one."""
    bgr = images(3)
    gsmc = build('gsmc')
    resup = build('resup')
    pairs = [(gsmc.student, gsmc.teacher.module),
             (resup.networks[0], resup.networks[1])]
    for first, second in pairs:
        diff = (predict(first, bgr) - predict(second, bgr)).abs().max()
        assert diff > 0.05


def test_rgb_input_and_metadata(tmp_path):
    model = build('baseline')
    ckpt = save(model, tmp_path / 'epoch_1.pth')
    out = export_onnx.main(
        [config('baseline'), ckpt, '--input-order', 'rgb'])
    assert out == str(tmp_path / 'epoch_1.onnx')  # default: beside ckpt
    # permissions as the umask allows, like the checkpoint (not 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    bgr = images(3)
    expected = predict(model, bgr)
    torch.testing.assert_close(
        onnx_scores(out, bgr.flip(1)), expected, atol=ATOL, rtol=0)
    # fed in the wrong order, the graph answers differently
    assert (onnx_scores(out, bgr) - expected).abs().max() > 0.05

    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(props['classes']) == list(CLASSES)
    assert props['input'] == 'images: float32 (N, 3, 64, 64), values ' \
        '0-255, RGB'


def test_img_size_and_opset_options(tmp_path):
    model = build('eac')
    ckpt = save(model, tmp_path / 'eac.pth')
    out = export_onnx.main([
        config('eac'), ckpt, '--img-size', '48', '40', '--opset', '16',
        '--out',
        str(tmp_path / 'eac.onnx')
    ])
    proto = onnx.load(out)
    assert [o.version for o in proto.opset_import if o.domain == ''] == [16]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 48, 40]
    bgr = torch.randint(0, 256, (2, 3, 48, 40), dtype=torch.uint8)
    session = onnxruntime.InferenceSession(
        out, providers=['CPUExecutionProvider'])
    got = session.run(['scores'], {'images': bgr.float().numpy()})[0]
    torch.testing.assert_close(
        torch.from_numpy(got), predict(model, bgr), atol=ATOL, rtol=0)


def test_dynamo_exporter(tmp_path):
    pytest.importorskip(
        'onnxscript',
        reason='the dynamo exporter (--exporter dynamo) needs onnxscript')
    model = build('lanet')
    ckpt = save(model, tmp_path / 'lanet.pth')
    out = export_onnx.main(
        [config('lanet'), ckpt, '--exporter', 'dynamo'])
    proto = onnx.load(out)
    assert [o.version for o in proto.opset_import if o.domain == ''] == [18]
    assert not list(tmp_path.glob('*.data'))  # one self-contained file
    for n in (1, 3):
        bgr = images(n)
        torch.testing.assert_close(
            onnx_scores(out, bgr), predict(model, bgr), atol=ATOL, rtol=0)


def test_verify(tmp_path, monkeypatch):
    ckpt = save(build('baseline'), tmp_path / 'baseline.pth')
    argv = [config('baseline'), ckpt, '--verify']
    assert osp.isfile(export_onnx.main(argv))
    # a PyTorch reference off by 1e-3 fails the default tolerance
    reference = export_onnx.predict_scores
    monkeypatch.setattr(export_onnx, 'predict_scores',
                        lambda *args: reference(*args) + 1e-3)
    with pytest.raises(RuntimeError, match='differ by 0.001'):
        export_onnx.main(argv)
    assert export_onnx.main(argv + ['--atol', '2e-3'])


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        export_onnx.parse_args(['--help'])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ('--out', '--opset', '--img-size', '--verify',
                   '--input-order', '--exporter'):
        assert option in text


def test_missing_checkpoint(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth not found'):
        export_onnx.main([config('baseline'), missing])
    assert not list(tmp_path.iterdir())


def test_checkpoint_of_another_model_names_the_keys(tmp_path):
    ckpt = save(build('gsmc'), tmp_path / 'gsmc.pth')
    with pytest.raises(ValueError) as exc:
        export_onnx.main([config('baseline'), ckpt])
    message = str(exc.value)
    assert 'does not fit the model of' in message
    assert 'missing keys' in message and 'backbone.conv1.weight' in message
    assert 'unexpected keys' in message
    assert 'student.backbone.conv1.weight' in message
    assert not list(tmp_path.glob('*.onnx'))


def test_checkpoint_with_other_shapes_names_the_tensor(tmp_path):
    ckpt = save(build('baseline'), tmp_path / 'baseline.pth')
    with pytest.raises(ValueError, match=r'head\.fc\.weight'):
        export_onnx.main([
            config('baseline'), ckpt, '--cfg-options',
            'model.head.num_classes=8'
        ])


def test_image_size_from_the_test_pipeline():
    def cfg(*pipeline):
        return Config(dict(test_dataloader=dict(
            dataset=dict(pipeline=list(pipeline)))))

    assert export_onnx.pipeline_image_size(
        Config.fromfile(config('baseline'))) == (SIZE, SIZE)
    # mmcv sizes are (w, h); the last fixed size wins
    assert export_onnx.pipeline_image_size(
        cfg(dict(type='Resize', scale=(80, 60)),
            dict(type='CenterCrop', crop_size=(50, 40)))) == (40, 50)
    assert export_onnx.pipeline_image_size(
        cfg(dict(type='Resize', scale=96))) == (96, 96)
    with pytest.raises(ValueError, match='--img-size'):
        export_onnx.pipeline_image_size(cfg(dict(type='LoadFERImage')))


def test_a_missing_optional_package_says_how_to_install_it():
    with pytest.raises(ImportError, match='pip install no_such_package_x'):
        export_onnx.require('no_such_package_x', '--verify')
