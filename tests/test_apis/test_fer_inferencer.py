# Copyright (c) OpenMMLab. All rights reserved.
"""FERInferencer, its face detectors and the image and video demos.

A baseline trained for one epoch on a tiny SynthFER set classifies
SynthFER faces pasted into a canvas at known places: each face must be
found where it was pasted and its scores must equal those of the model
run directly on that crop; MTCNN must find them as faces, the montage
tile finder as tiles. The bundled cascade and MTCNN must find the real
face of scikit-image's astronaut photo where it was measured by eye.
"""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401
from mmfer import synthfer
from mmfer.apis import FERInferencer, FaceDetections, build_face_detector
from mmfer.apis.face_detectors import group_windows
from mmfer.apis.fer_inferencer import FRAMINGS, crop_boxes, crop_square
from mmfer.apis.mtcnn_detector import mtcnn_weights_dir
from log_capture import logged_messages
from tool_runs import REPO, TRAIN, load_tool, run, write_config

image_demo = load_tool('demo/image_demo.py')
video_demo = load_tool('demo/video_demo.py')

VIDEO_DEMO = osp.join(REPO, 'demo', 'video_demo.py')
SKIMAGE_REASON = ('the optional package scikit-image (pip install '
                  'scikit-image), whose wheel ships the LBP face cascade, is '
                  'not installed')
TILE = 64  # SynthFER's side in the demo configs
# (x1, y1, side) of each pasted face; two are scaled, one overlaps an edge
# of nothing but background.
PLACES = ((10, 12, 64), (100, 20, 80), (200, 8, 64), (40, 120, 96),
          (170, 110, 72))
BACKGROUND = (127, 127, 127)
# scikit-image's astronaut (512x512): the face measured by eye on a 4x
# enlargement, cheek to cheek and brows to chin, and the landmarks.
ASTRONAUT_FACE = (182, 85, 265, 178)
ASTRONAUT_EYES = ((203, 101), (245, 103))
ASTRONAUT_MOUTH = (226, 147)


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def synthfer_faces(num: int, size: int = TILE) -> list:
    specs = synthfer.plan_split(3, 'test', num, 0.0)
    return [
        cv2.imdecode(
            np.frombuffer(synthfer.render_face(s, 3, size).jpeg, np.uint8),
            cv2.IMREAD_COLOR) for s in specs
    ]


def composite(offset=(0, 0)):
    """A 300x230 grey canvas with the faces pasted at PLACES + offset."""
    canvas = np.full((230, 300, 3), BACKGROUND, np.uint8)
    boxes = []
    for face, (x, y, side) in zip(synthfer_faces(len(PLACES)), PLACES):
        x, y = x + offset[0], y + offset[1]
        canvas[y:y + side, x:x + side] = cv2.resize(
            face, (side, side), interpolation=cv2.INTER_CUBIC)
        boxes.append((x, y, x + side, y + side))
    return canvas, boxes


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(config, checkpoint) of a baseline trained 1 epoch on SynthFER."""
    tmp = tmp_path_factory.mktemp('fer_inferencer')
    root = str(tmp / 'synthfer')
    synthfer.generate_synthfer(
        root, seed=0, num_train=28, num_test=14, size=TILE, workers=1)
    config = write_config(tmp, root, 'baseline', epochs=1)
    run([TRAIN, config, '--work-dir', str(tmp / 'work')])
    return config, str(tmp / 'work' / 'epoch_1.pth')


@pytest.fixture(scope='module')
def inferencer(trained):
    return FERInferencer(*trained, device='cpu', detector='montage_tiles')


def mtcnn_or_skip() -> None:
    # Not pytest.importorskip: importing facenet_pytorch needs requests
    # and more, which mmfer does not; only its weight files are read.
    try:
        mtcnn_weights_dir()
    except ImportError as err:
        pytest.skip(f'the optional MTCNN weights are absent ({err})')


@pytest.fixture(scope='module')
def mtcnn_inferencer(trained):
    mtcnn_or_skip()
    return FERInferencer(*trained, device='cpu', detector='mtcnn')


def direct_scores(model, crop: np.ndarray) -> np.ndarray:
    """The model on one crop, preprocessed by hand as the config says:
    bilinear resize to 64x64, BGR -> RGB, ImageNet mean and std."""
    img = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_LINEAR)
    with torch.no_grad():
        logits = model(normalise(img), mode='tensor')
    return logits.softmax(1)[0].numpy()


def normalise(img: np.ndarray) -> torch.Tensor:
    """A BGR uint8 image as the configs' data preprocessor gives it."""
    x = torch.from_numpy(img[..., ::-1].astype(np.float32))
    x = (x - torch.tensor([123.675, 116.28, 103.53])) / torch.tensor(
        [58.395, 57.12, 57.375])
    return x.permute(2, 0, 1)[None]


def test_synthfer_composite_tiles_found_and_classified(inferencer):
    check_composite(inferencer)


def test_synthfer_composite_faces_found_by_mtcnn(mtcnn_inferencer):
    faces = check_composite(mtcnn_inferencer)
    for face in faces:
        assert len(face['landmarks']) == 5


def check_composite(inferencer) -> list:
    """Each face pasted in the composite is found once, framed as the
    training tiles (its crop overlaps the pasted tile) and classified as
    the model classifies that crop directly."""
    canvas, boxes = composite()
    result = inferencer(canvas)[0]
    assert result['img_shape'] == [230, 300]
    faces = result['faces']
    assert len(faces) == len(boxes)
    assert inferencer.classes == list(synthfer.SYNTHFER_CLASSES)
    for box in boxes:
        face = max(faces, key=lambda f: iou(f['crop_bbox'], box))
        assert iou(face['crop_bbox'], box) > 0.5
        x1, y1, x2, y2 = box
        # a detector's box lies on the face, inside the pasted tile
        centre = np.reshape(face['bbox'], (2, 2)).mean(0)
        assert x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2
        crop = (canvas[y1:y2, x1:x2]
                if getattr(inferencer.detector, 'boxes_are_crops', False) else
                crop_square(canvas, face['crop_bbox']))
        expected = direct_scores(inferencer.model, crop)
        got = np.array([face['pred_scores'][c] for c in inferencer.classes])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert face['pred_label'] == int(expected.argmax())
        assert face['pred_class'] == inferencer.classes[face['pred_label']]
        assert face['pred_score'] == pytest.approx(expected.max(), abs=1e-5)
    json.dumps(result)  # structured results are JSON-ready
    return faces


def test_whole_image_as_one_aligned_crop(trained, tmp_path):
    inferencer = FERInferencer(*trained, device='cpu', detector=None)
    face = synthfer_faces(1, size=100)[0]
    folder = tmp_path / 'faces'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), face)
    from_array, from_folder = inferencer([face, str(folder)],
                                         show_dir=str(tmp_path / 'vis'))
    assert from_folder['img_path'] == str(folder / 'a.png')
    for result in (from_array, from_folder):
        assert [f['crop_bbox']
                for f in result['faces']] == [[0, 0, 100, 100]]
        got = [result['faces'][0]['pred_scores'][c]
               for c in inferencer.classes]
        np.testing.assert_allclose(
            got, direct_scores(inferencer.model, face), atol=1e-5)
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == [
        '0.png', 'a.png'
    ]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')
def test_gpu_matches_cpu(trained, inferencer):
    gpu = FERInferencer(*trained, device='cuda', detector='montage_tiles')
    canvas, _ = composite()
    cpu_faces = inferencer(canvas)[0]['faces']
    gpu_faces = gpu(canvas)[0]['faces']
    for a, b in zip(cpu_faces, gpu_faces):
        assert a['pred_label'] == b['pred_label']
        for c in inferencer.classes:
            assert a['pred_scores'][c] == pytest.approx(
                b['pred_scores'][c], abs=1e-3)


def test_crop_frames_face_like_training_data():
    # landmarks of two faces (left eye, right eye, nose, mouth corners)
    lmk = np.array([[[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]],
                    [[200, 100], [240, 110], [220, 130], [205, 150],
                     [235, 160]]], np.float32)
    det = FaceDetections([[30, 30, 70, 80], [180, 80, 260, 170]], [1, 1],
                         lmk)
    for eye_y, mouth_y in FRAMINGS.values():
        for i, box in enumerate(crop_boxes(det, (eye_y, mouth_y), (0, 1))):
            side = box[2] - box[0]
            assert box[3] - box[1] == pytest.approx(side)
            eyes, mouth = lmk[i, :2].mean(0), lmk[i, 3:].mean(0)
            # the eye-mouth distance and height as in the training crops
            assert np.hypot(*(mouth - eyes)) / side == pytest.approx(
                mouth_y - eye_y, rel=1e-5)
            assert (eyes[1] - box[1]) / side == pytest.approx(eye_y, abs=1e-5)
            assert (box[0] + box[2]) / 2 == pytest.approx(
                (eyes[0] + mouth[0]) / 2, abs=1e-4)
    # without landmarks, the detector's box geometry places eyes and mouth
    det = FaceDetections([[100, 100, 200, 200]], [3])
    (box, ) = crop_boxes(det, (0.25, 0.75), (0.4, 0.8))
    # eyes at y 140, mouth at 180: side 40 / 0.5, centred on x 150
    np.testing.assert_allclose(box, [110, 120, 190, 200])


def test_crop_square_pads_outside_the_image():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    np.testing.assert_array_equal(crop_square(img, (1, 1, 4, 4)),
                                  img[1:4, 1:4])
    out = crop_square(img, (-2, 3, 2, 7))
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 2:], img[3, :2])
    np.testing.assert_array_equal(out[:, 0], out[:, 2])  # replicated left
    np.testing.assert_array_equal(out[3], out[1])  # replicated bottom


def test_group_windows_counts_support_and_drops_inner_boxes():
    face = [[10, 10, 50, 50], [11, 10, 51, 50], [10, 12, 50, 52]]
    inner = [[20, 20, 30, 30]]
    lone = [[100, 100, 130, 130]]
    boxes, counts = group_windows(np.array(face + inner + lone), 1)
    np.testing.assert_allclose(boxes[0], np.mean(face, 0), atol=1e-5)
    assert counts.tolist() == [3, 1]
    np.testing.assert_allclose(boxes[1], lone[0])
    boxes, counts = group_windows(np.array(face + lone), 2)
    assert counts.tolist() == [3]


def test_cascade_finds_the_astronaut():
    data = pytest.importorskip('skimage.data', reason=SKIMAGE_REASON)
    img = np.ascontiguousarray(data.astronaut()[..., ::-1])
    cascade = build_face_detector('lbp_cascade')
    detections = cascade(img)
    assert len(detections) >= 1
    best = detections.bboxes[detections.scores.argmax()]
    assert iou(best, ASTRONAUT_FACE) > 0.5
    # no other box as well supported as the face
    assert (detections.scores < detections.scores.max()).sum() == len(
        detections) - 1
    # the crop puts her eyes and mouth where RAF-DB's aligned crops have
    # them, to within 6% of the crop
    (crop, ) = crop_boxes(
        FaceDetections(best[None], [1]), FRAMINGS['rafdb'],
        (cascade.eye_y, cascade.mouth_y))
    side = crop[2] - crop[0]
    eye_y = np.mean([y for _, y in ASTRONAUT_EYES])
    assert (eye_y - crop[1]) / side == pytest.approx(
        FRAMINGS['rafdb'][0], abs=0.06)
    assert (ASTRONAUT_MOUTH[1] - crop[1]) / side == pytest.approx(
        FRAMINGS['rafdb'][1], abs=0.06)
    assert (ASTRONAUT_MOUTH[0] - crop[0]) / side == pytest.approx(
        0.5, abs=0.06)


def test_mtcnn_finds_the_astronaut_and_her_landmarks():
    data = pytest.importorskip('skimage.data', reason=SKIMAGE_REASON)
    mtcnn_or_skip()
    img = np.ascontiguousarray(data.astronaut()[..., ::-1])
    detections = build_face_detector(dict(type='mtcnn', device='cpu'))(img)
    assert len(detections) == 1  # no false alarm in the rest of the photo
    assert iou(detections.bboxes[0], ASTRONAUT_FACE) > 0.6
    left_eye, right_eye, nose, left_mouth, right_mouth = (
        detections.landmarks[0])
    # RAF-DB's order, image-left first, each eye within 4 px of where it
    # was measured (her eyes are 42 px apart)
    np.testing.assert_allclose([left_eye, right_eye], ASTRONAUT_EYES, atol=4)
    np.testing.assert_allclose((left_mouth + right_mouth) / 2,
                               ASTRONAUT_MOUTH, atol=8)
    assert left_mouth[0] < ASTRONAUT_MOUTH[0] < right_mouth[0]
    assert left_eye[1] < nose[1] < ASTRONAUT_MOUTH[1]


def test_mtcnn_sees_no_face_in_a_cat_or_a_coffee():
    # where the LBP cascade fires on chelsea()'s cat
    data = pytest.importorskip('skimage.data', reason=SKIMAGE_REASON)
    mtcnn_or_skip()
    find = build_face_detector(dict(type='mtcnn', device='cpu'))
    for photo in (data.chelsea(), data.coffee()):
        assert len(find(np.ascontiguousarray(photo[..., ::-1]))) == 0


@pytest.mark.parametrize('detector, least_found', [('mtcnn', 36),
                                                   ('lbp_cascade', 26)])
def test_synthfer_faces_found_alone(detector, least_found):
    """Detection rate on 40 SynthFER faces at 100 px, each on a grey
    canvas twice its size: MTCNN finds 38, the cascade 30 (over 100
    faces: 92 and 73); neither raises false alarms."""
    if detector == 'mtcnn':
        mtcnn_or_skip()
    else:
        pytest.importorskip('skimage.feature', reason=SKIMAGE_REASON)
    find = build_face_detector(detector)
    found = 0
    for face in synthfer_faces(40, size=100):
        canvas = np.full((200, 200, 3), BACKGROUND, np.uint8)
        canvas[50:150, 50:150] = face
        boxes = find(canvas).bboxes
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        on_face = ((centres >= 50) & (centres <= 150)).all(1)
        assert on_face.all(), f'{detector} false alarm at {boxes[~on_face]}'
        found += on_face.any()
    assert found >= least_found


def test_image_demo_writes_json_and_annotated_image(trained, tmp_path):
    pytest.importorskip('skimage.data', reason=SKIMAGE_REASON)
    from skimage.data import astronaut
    photo = str(tmp_path / 'astronaut.png')
    cv2.imwrite(photo, astronaut()[..., ::-1])
    montage = str(tmp_path / 'montage.png')
    cv2.imwrite(montage, composite()[0])
    out = tmp_path / 'out'
    config, ckpt = trained
    image_demo.main([config, ckpt, photo, '--out-dir', str(out),
                     '--device', 'cpu', '--framing', 'rafdb'])
    result = json.loads((out / 'astronaut.json').read_text())
    assert result['img_path'] == photo and result['img_shape'] == [512, 512]
    best = max(result['faces'], key=lambda f: f['det_score'])
    assert iou(best['bbox'], ASTRONAUT_FACE) > 0.5
    assert sum(best['pred_scores'].values()) == pytest.approx(1, abs=1e-4)
    drawn = cv2.imread(str(out / 'astronaut.png'))
    assert drawn.shape == (512, 512, 3)
    x1, y1, x2, y2 = (int(round(v)) for v in best['bbox'])
    original = astronaut()[..., ::-1]
    # the box is drawn on its edge, the face inside is untouched
    assert np.abs(drawn[(y1 + y2) // 2, x1].astype(int) -
                  original[(y1 + y2) // 2, x1]).sum() > 60
    assert np.abs(drawn[(y1 + y2) // 2, (x1 + x2) // 2].astype(int) -
                  original[(y1 + y2) // 2, (x1 + x2) // 2]).sum() < 10

    image_demo.main([config, ckpt, montage, '--out-dir', str(out),
                     '--device', 'cpu', '--detector', 'montage_tiles'])
    faces = json.loads((out / 'montage.json').read_text())['faces']
    assert len(faces) == len(PLACES)


def test_video_demo(trained, tmp_path):
    video = str(tmp_path / 'clip.avi')
    shifts = [(4 * i, 2 * i) for i in range(6)]
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (300, 230))
    for shift in shifts:
        writer.write(composite(shift)[0])
    writer.release()
    out = str(tmp_path / 'out' / 'clip.mp4')
    config, ckpt = trained
    proc = run([VIDEO_DEMO, config, ckpt, video, '--out', out,
                '--device', 'cpu', '--detector', 'montage_tiles'])
    assert 'wrote 6 frames' in proc.stdout
    records = [json.loads(line) for line in
               open(osp.join(tmp_path, 'out', 'clip.jsonl'))]
    assert [r['frame'] for r in records] == list(range(6))
    assert records[2]['time'] == pytest.approx(0.4)
    for record, shift in zip(records, shifts):
        boxes = composite(shift)[1]
        assert len(record['faces']) == len(boxes)
        for box in boxes:
            assert max(iou(f['bbox'], box) for f in record['faces']) > 0.5
    capture = cv2.VideoCapture(out)
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 6
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH),
            capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (300, 230)


def test_errors_name_the_file(trained, tmp_path):
    config, ckpt = trained
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        FERInferencer(config, missing, device='cpu')

    cfg = Config.fromfile(config)
    cfg.model.head.num_classes = 5
    with pytest.raises(ValueError, match='does not fit the model') as err:
        FERInferencer(cfg, ckpt, device='cpu')
    assert 'head.fc.weight' in str(err.value)

    inferencer = FERInferencer(config, ckpt, device='cpu',
                               detector='montage_tiles')
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(OSError, match='broken.jpg'):
        inferencer(str(broken))
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(OSError, match='empty.jpg cannot be decoded'):
        inferencer(str(empty))
    with pytest.raises(OSError, match='empty.jpg'):
        image_demo.main([config, ckpt, str(empty), '--out-dir',
                         str(tmp_path / 'e'), '--detector', 'montage_tiles'])
    with pytest.raises(FileNotFoundError, match='absent.png'):
        inferencer(str(tmp_path / 'absent.png'))
    with pytest.raises(KeyError, match='haar'):
        build_face_detector('haar')

    out = str(tmp_path / 'o')
    with pytest.raises(OSError, match='broken.jpg'):
        image_demo.main([config, ckpt, str(broken), '--out-dir', out,
                         '--detector', 'montage_tiles'])
    with pytest.raises(OSError, match='video .*broken.jpg'):
        video_demo.main([config, ckpt, str(broken), '--out', out + '.mp4'])
    with pytest.raises(FileNotFoundError, match='video .*absent.mp4'):
        video_demo.main([config, ckpt, out + 'absent.mp4', '--out',
                         out + '.mp4'])
    good = str(tmp_path / 'good.png')
    cv2.imwrite(good, composite()[0])
    with pytest.raises(FileNotFoundError, match='checkpoint .*nope.pth'):
        image_demo.main([config, missing, good, '--out-dir', out])


@pytest.mark.parametrize('method', ['eac', 'gsmc', 'resup', 'lanet'])
def test_every_system_predicts_as_in_testing(method, tmp_path):
    """Each system's own predictor (GSMC's student, ReSup's predict_with,
    LA-Net's expression tower) scores the crops, as in testing."""
    config = osp.join(REPO, 'configs', method, 'r18_synthfer_noise30.py')
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(
        dict(cfg.model, data_preprocessor=cfg.data_preprocessor)).eval()
    ckpt = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    inferencer = FERInferencer(config, ckpt, device='cpu',
                               detector='montage_tiles')
    canvas, boxes = composite()
    faces = inferencer(canvas)[0]['faces']
    assert len(faces) == len(boxes)
    for face in faces:
        x1, y1, x2, y2 = (int(v) for v in face['crop_bbox'])
        img = cv2.resize(canvas[y1:y2, x1:x2], (TILE, TILE),
                         interpolation=cv2.INTER_LINEAR)
        x = normalise(img)
        with torch.no_grad():
            expected = model.predict(x)[0].pred_score.numpy()
        got = [face['pred_scores'][c] for c in inferencer.classes]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_auto_detector_is_mtcnn_where_installed(trained, monkeypatch):
    from mmfer.apis import fer_inferencer
    mtcnn_or_skip()
    inferencer = FERInferencer(*trained, device='cpu')
    assert type(inferencer.detector).__name__ == 'MTCNNFaceDetector'

    def absent():
        raise ImportError('the mtcnn face detector needs the weights')

    monkeypatch.setattr(fer_inferencer, 'mtcnn_weights_dir', absent)
    with logged_messages() as messages:
        fallback = FERInferencer(*trained, device='cpu')
    assert type(fallback.detector).__name__ == 'LBPCascadeFaceDetector'
    assert any('falls back to lbp_cascade' in m for m in messages)


def test_det_threshold_drops_weak_faces(trained):
    def two_faces(img):
        return FaceDetections([[0, 0, 32, 32], [32, 32, 64, 64]], [0.3, 0.9])

    img = np.zeros((64, 64, 3), np.uint8)
    kept = FERInferencer(*trained, device='cpu', detector=two_faces,
                         det_threshold=0.5).detect(img)
    assert kept.scores.tolist() == pytest.approx([0.9])
    every = FERInferencer(*trained, device='cpu', detector=two_faces)
    assert every.detect(img).scores.tolist() == pytest.approx([0.9, 0.3])
