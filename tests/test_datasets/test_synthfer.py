# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of the SynthFER generator (mmfer/synthfer.py) and its command line
(tools/dataset_converters/make_synthfer.py)."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

import mmfer.synthfer as sf

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'make_synthfer.py')
NUM_TRAIN, NUM_TEST, SIZE = 40, 14, 100


def _generate(out, seed=0, workers=1, **kwargs):
    params = dict(
        num_train=NUM_TRAIN, num_test=NUM_TEST, size=SIZE, ambiguous_ratio=0.1)
    params.update(kwargs)
    return sf.generate_synthfer(str(out), seed=seed, workers=workers, **params)


def _tree_bytes(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def _labels(root):
    with open(osp.join(root, sf.LABEL_FILE)) as f:
        return [line.split() for line in f]


def _points(path):
    with open(path) as f:
        return np.array([[float(v) for v in line.split()] for line in f])


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthfer') / 'synthfer'
    meta = _generate(out, seed=0, workers=1)
    assert meta == sf.read_meta(str(out))
    return str(out)


def test_layout_and_formats(dataset):
    with open(osp.join(dataset, sf.LABEL_FILE)) as f:
        text = f.read()
    assert text.endswith('\n')
    rows = _labels(dataset)
    names = [row[0] for row in rows]
    assert names == ([f'train_{i:05d}.jpg' for i in range(1, NUM_TRAIN + 1)] +
                     [f'test_{i:04d}.jpg' for i in range(1, NUM_TEST + 1)])
    assert all(len(row) == 2 and row[1] in '1234567' for row in rows)

    # the reference: the first face of each split, rendered in memory
    rendered = {
        spec.name: sf.render_face(spec, seed=0, size=SIZE)
        for split, num in (('train', NUM_TRAIN), ('test', NUM_TEST))
        for spec in sf.plan_split(0, split, num, 0.1)[:1]
    }
    for name in names:
        paths = sf.sample_paths(dataset, name[:-4])
        img = cv2.imread(paths['aligned'])
        assert img.shape == (SIZE, SIZE, 3)
        with open(paths['aligned'], 'rb') as f1, \
                open(paths['original'], 'rb') as f2:
            assert f1.read() == f2.read()
        with open(paths['manual']) as f:
            manual = f.read().splitlines()
        assert len(manual) == 8
        for line in manual[:5]:
            xy = line.split(' ')
            assert len(xy) == 2 and all(len(v.split('.')[1]) == 2 for v in xy)
        if name in rendered:  # the files hold what was rendered
            face = rendered[name]
            assert [int(v) for v in manual[5:]] == list(face.attributes)
            with open(paths['aligned'], 'rb') as f:
                assert f.read() == face.jpeg
        auto = _points(paths['auto'])
        assert auto.shape == (37, 2)
        with open(paths['auto']) as f1, open(paths['aligned_lmk']) as f2:
            assert f1.read() == f2.read()
        manual_pts = _points_from_lines(manual[:5])
        np.testing.assert_allclose(manual_pts[2:], auto[[24, 27, 31]])

    meta = sf.read_meta(dataset)
    assert meta['classes'] == list(sf.SYNTHFER_CLASSES)
    assert meta['counts']['train']['total'] == NUM_TRAIN
    train_labels = [int(row[1]) - 1 for row in rows[:NUM_TRAIN]]
    assert meta['counts']['train']['per_class'] == np.bincount(
        train_labels, minlength=7).tolist()
    assert meta['landmarks']['auto'] == list(sf.SYNTHFER_LANDMARK_NAMES)


def _points_from_lines(lines):
    return np.array([[float(v) for v in line.split()] for line in lines])


def test_landmarks_lie_in_image(dataset):
    for name, _ in _labels(dataset):
        paths = sf.sample_paths(dataset, name[:-4])
        for key in ('auto', 'aligned_lmk'):
            pts = _points(paths[key])
            assert pts.min() >= 0 and pts.max() <= SIZE - 1
        with open(paths['manual']) as f:
            pts = _points_from_lines(f.read().splitlines()[:5])
        assert pts.min() >= 0 and pts.max() <= SIZE - 1
        # image left/right: left eye and left mouth corner are on the left
        assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]


def test_determinism_and_workers(dataset, tmp_path):
    same = _generate(tmp_path / 'same', seed=0, workers=2)
    assert same == sf.read_meta(dataset)
    assert _tree_bytes(dataset) == _tree_bytes(tmp_path / 'same')
    _generate(tmp_path / 'other', seed=1, workers=2)
    ref, other = _tree_bytes(dataset), _tree_bytes(tmp_path / 'other')
    assert ref.keys() == other.keys()
    images = [k for k in ref if k.endswith('_aligned.jpg')]
    assert sum(ref[k] != other[k] for k in images) == len(images)
    assert ref[sf.LABEL_FILE] != other[sf.LABEL_FILE]


def test_no_temporary_folders_left(dataset):
    parent = osp.dirname(dataset)
    assert os.listdir(parent) == [osp.basename(dataset)]


def test_ambiguous_share(dataset):
    meta = sf.read_meta(dataset)
    expected = round(0.1 * NUM_TRAIN) + round(0.1 * NUM_TEST)
    assert meta['ambiguous_count'] == len(meta['ambiguous']) == expected
    labels = dict(_labels(dataset))
    for item in meta['ambiguous']:
        (label, other), (w1, w2) = item['classes'], item['weights']
        assert int(labels[item['name']]) - 1 == item['label'] == label
        assert other in sf.NEIGHBOURS[label]
        assert 0.35 <= w2 < 0.5 < w1 <= 0.65
        assert w1 + w2 == pytest.approx(1.0)
    for ratio in (0.0, 0.25, 1.0):
        specs = sf.plan_split(3, 'train', 1000, ratio)
        assert sum(s.ambiguous for s in specs) == round(ratio * 1000)


def test_class_counts():
    counts = sf.class_counts(3000)
    assert sum(counts) == 3000
    expected = np.sqrt(sf.RAFDB_TRAIN_COUNTS)
    expected = expected / expected.sum() * 3000
    assert np.abs(np.array(counts) - expected).max() < 1
    labels = [s.label for s in sf.plan_split(0, 'test', 700, 0.1)]
    assert np.bincount(labels, minlength=7).tolist() == sf.class_counts(700)


def test_landmark_layout():
    names = sf.SYNTHFER_LANDMARK_NAMES
    assert len(names) == len(set(names)) == 37
    assert len(sf.RAFDB_MANUAL_LANDMARK_NAMES) == 5
    assert sf.RAFDB_MANUAL_FLIP_PAIRS == ((0, 1), (3, 4))
    swapped = {
        i:
        names.index(
            n.replace('left', '#').replace('right',
                                           'left').replace('#', 'right'))
        for i, n in enumerate(names)
    }
    pairs = {(i, j) for i, j in swapped.items() if i < j}
    assert pairs == set(sf.SYNTHFER_FLIP_PAIRS)


def test_expression_cue():
    """Surprise opens the mouth, Neutral does not; Anger lowers the inner
    brow ends, Sadness raises them."""

    def measure(label, num=12):
        opening, brow_tilt = [], []
        for index in range(num):
            spec = sf.SampleSpec('train', index, label)
            pts = sf.render_face(spec, seed=5, size=SIZE).landmarks
            iod = np.linalg.norm(pts[15] - pts[21])
            opening.append(np.linalg.norm(pts[35] - pts[36]) / iod)
            # inner brow end above the outer one (rotation-invariant)
            up = pts[4] - (pts[0] + pts[8]) / 2
            up = up / np.linalg.norm(up)
            brow_tilt.append(((pts[9] - pts[11]) @ up) / iod)
        return np.mean(opening), np.mean(brow_tilt)

    surprise, neutral = measure(0)[0], measure(6)[0]
    assert surprise > neutral + 0.2
    assert measure(4)[1] > measure(5)[1] + 0.1


def test_refuses_foreign_folder(tmp_path):
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'precious.txt').write_text('keep me')
    with pytest.raises(FileExistsError):
        _generate(out, num_train=8, num_test=4)
    assert (out / 'precious.txt').read_text() == 'keep me'
    proc = subprocess.run([
        sys.executable, TOOL, '--out',
        str(out), '--num-train', '8', '--num-test', '4', '--workers', '1'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 1 and 'force' in proc.stderr
    meta = _generate(out, num_train=8, num_test=4, force=True)
    assert not (out / 'precious.txt').exists()
    assert sf.read_meta(str(out)) == meta
    assert meta['counts']['train']['total'] == 8


def test_idempotent_rerun(tmp_path):
    out = tmp_path / 'synthfer'
    args = [
        sys.executable, TOOL, '--out',
        str(out), '--num-train', '8', '--num-test', '4', '--workers', '1',
        '--seed', '3'
    ]
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'train' in proc.stdout.splitlines()[-1]
    meta_path = out / sf.META_FILE
    stamp = os.stat(meta_path).st_mtime_ns
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 0 and 'nothing to do' in proc.stdout
    assert os.stat(meta_path).st_mtime_ns == stamp
    # other parameters over a SynthFER folder: refused without --force
    with pytest.raises(FileExistsError, match='other parameters'):
        _generate(out, seed=4, num_train=8, num_test=4)
    assert json.loads(meta_path.read_text())['seed'] == 3
    meta = _generate(out, seed=4, num_train=8, num_test=4, force=True)
    assert meta['seed'] == 4
    assert json.loads(meta_path.read_text())['seed'] == 4


def test_cli_never_imports_the_training_stack(tmp_path):
    # Rendering workers unpickle their task function by module name; it must
    # resolve without importing torch or mmengine (``import mmfer`` imports
    # neither) in the parent or in any worker. ``-X importtime`` reports
    # every import of every process, forked workers included.
    out = tmp_path / 'out'
    proc = subprocess.run([
        sys.executable, '-X', 'importtime', TOOL, '--out',
        str(out), '--num-train', '8', '--num-test', '4', '--workers', '2'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.rsplit('|', 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith('import time:')
    }
    assert 'mmfer.synthfer' in imported and 'cv2' in imported
    assert not imported & {'torch', 'mmengine', 'mmcv', 'mmpretrain'}
    assert len(_labels(out)) == 12


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(spec, seed, size):
        calls.append(spec)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return render(spec, seed, size)

    render = sf.render_face
    monkeypatch.setattr(sf, 'render_face', failing)
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path / 'synthfer', num_train=8, num_test=4)
    assert os.listdir(tmp_path) == []
