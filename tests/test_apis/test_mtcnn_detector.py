# Copyright (c) OpenMMLab. All rights reserved.
"""mmfer's MTCNN: its pieces against hand-computed geometry, its nets
against the shapes the paper gives, and the weights of the facenet-pytorch
wheel loading strictly. Its detections on real and SynthFER faces are
tested with the other detectors in test_fer_inferencer.py."""
import importlib.util

import numpy as np
import pytest
import torch

from mmfer.apis import FACE_DETECTORS, build_face_detector
from mmfer.apis.mtcnn_detector import (MTCNNFaceDetector, ONet, PNet, RNet,
                                       _nms_min, _regress, _square,
                                       mtcnn_weights_dir)


def weights_or_skip() -> str:
    # Not pytest.importorskip: importing facenet_pytorch needs requests
    # and more, which mmfer does not; only its weight files are read.
    try:
        return mtcnn_weights_dir()
    except ImportError as err:
        pytest.skip(f'the optional MTCNN weights are absent ({err})')


@pytest.mark.parametrize('net, size, outputs', [(PNet, 12, (1, 4)),
                                                (RNet, 24, (4, )),
                                                (ONet, 48, (4, 10))])
def test_nets_map_their_window_to_one_output(net, size, outputs):
    # P-Net is fully convolutional: a 12x12 window gives one cell and every
    # further 2 px one more (its one pooling halves); R-Net and O-Net give
    # one vector per crop.
    with torch.no_grad():
        prob, *rest = net()(torch.zeros(3, 3, size, size))
        if net is PNet:
            assert prob.shape == (3, 1, 1)
            assert rest[0].shape == (3, 4, 1, 1)
            prob, _ = net()(torch.zeros(1, 3, size + 20, size + 2))
            assert prob.shape == (1, 11, 2)
        else:
            assert prob.shape == (3, )
            assert [r.shape[1] for r in rest] == list(outputs)
    assert ((prob >= 0) & (prob <= 1)).all()


@pytest.mark.parametrize('net, name', [(PNet, 'pnet'), (RNet, 'rnet'),
                                       (ONet, 'onet')])
def test_wheel_weights_match_the_nets(net, name):
    folder = weights_or_skip()
    state = torch.load(f'{folder}/{name}.pt', weights_only=True)
    ours = net().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape)
        for k, v in state.items()
    }


def test_scales_follow_the_pyramid():
    weights_or_skip()
    detector = MTCNNFaceDetector(min_face_size=24, device='cpu')
    # naive: 12/24 = 0.5, then times 0.709 while 100 * scale >= 12
    expected, scale = [], 0.5
    while 100 * scale >= 12:
        expected.append(scale)
        scale *= 0.709
    assert detector.scales(100, 160) == pytest.approx(expected)
    assert len(expected) == 5  # 0.5 ... 0.5 * 0.709**4 = 0.126
    assert detector.scales(11, 500) == []


def test_regress_and_square():
    boxes = torch.tensor([[10., 20., 50., 100.]])  # 40 wide, 80 high
    moved = _regress(boxes, torch.tensor([[0.1, -0.25, 0.0, 0.5]]))
    torch.testing.assert_close(moved, torch.tensor([[14., 0., 50., 140.]]))
    # centre (32, 70), longer side 140
    torch.testing.assert_close(
        _square(moved), torch.tensor([[-38., 0., 102., 140.]]))


def test_nms_min_drops_nested_and_keeps_apart():
    boxes = torch.tensor([[0., 0., 100., 100.], [10., 10., 40., 40.],
                          [200., 0., 260., 60.], [0., 0., 90., 100.]])
    scores = torch.tensor([0.9, 0.95, 0.8, 0.7])
    # the small box (strongest) covers itself: the big one overlaps it by
    # all of the smaller area and goes, as does the 0-90 box (overlap with
    # the small one is 900/900); the far box stays.
    assert _nms_min(boxes, scores, 0.7).tolist() == [1, 2]
    assert _nms_min(boxes[:0], scores[:0], 0.7).tolist() == []


def test_registered_and_blank_image_gives_no_face():
    weights_or_skip()
    assert FACE_DETECTORS.get('mtcnn') is MTCNNFaceDetector
    detector = build_face_detector(dict(type='mtcnn', device='cpu'))
    found = detector(np.full((120, 90, 3), 127, np.uint8))
    assert len(found) == 0
    assert found.landmarks.shape == (0, 5, 2)


def test_missing_weights_say_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ImportError, match='pip install --no-deps '
                       'facenet-pytorch'):
        MTCNNFaceDetector(device='cpu')


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='three'):
        MTCNNFaceDetector(thresholds=(0.6, 0.7))
    with pytest.raises(ValueError, match='scale_factor'):
        MTCNNFaceDetector(scale_factor=1.2)


def test_gpu_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip('no CUDA device')
    weights_or_skip()
    data = pytest.importorskip(
        'skimage.data',
        reason='the optional package scikit-image (pip install '
        'scikit-image), which ships the astronaut photo, is not installed')
    img = np.ascontiguousarray(data.astronaut()[..., ::-1])
    cpu = MTCNNFaceDetector(device='cpu')(img)
    gpu = MTCNNFaceDetector(device='cuda')(img)
    assert len(gpu) == len(cpu) == 1
    np.testing.assert_allclose(gpu.bboxes, cpu.bboxes, atol=0.5)
    np.testing.assert_allclose(gpu.landmarks, cpu.landmarks, atol=0.5)
