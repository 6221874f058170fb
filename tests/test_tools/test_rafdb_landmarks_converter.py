# Copyright (c) OpenMMLab. All rights reserved.
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmfer.datasets import RAFDBDataset
from fer_replicas import make_rafdb

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'dataset_converters' / 'rafdb_landmarks.py'
FIXTURES = REPO / '..' / 'shared' / 'fixtures'
NUM_TRAIN, NUM_TEST = 12271, 3068


def load_tool():
    spec = importlib.util.spec_from_file_location('rafdb_landmarks', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def read_points(path) -> np.ndarray:
    with open(path) as f:
        return np.array([line.split() for line in f], dtype=np.float64)


def listing(folder):
    """Every entry of ``folder`` (temporary dot files included)."""
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def run_main(*args) -> str:
    """Run the converter expecting it to stop; return its message."""
    with pytest.raises(SystemExit) as err:
        tool.main([str(a) for a in args])
    return str(err.value.code)


# ---------------------------------------------------------------------------
# LA-Net's real landmarks on the real RAF-DB label list.
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def real(tmp_path_factory):
    """Convert the real tensors once, into a tree without images."""
    landmarks = FIXTURES / 'rafdb_landmarks'
    labels = FIXTURES / 'rafdb_labels' / 'list_patition_label.txt'
    if not landmarks.is_dir() or not labels.is_file():
        pytest.skip(f'{landmarks} or {labels} is absent: LA-Net\'s RAF-DB '
                    'landmarks and the RAF-DB label list live in ../shared '
                    'beside the repo (CI has them).')
    root = tmp_path_factory.mktemp('rafdb')
    (root / 'EmoLabel').mkdir()
    shutil.copy(labels, root / 'EmoLabel' / 'list_patition_label.txt')
    command = [sys.executable, TOOL, root, '--landmarks', landmarks]
    proc = subprocess.run(
        [str(arg) for arg in command + ['--image-size', 100]],
        capture_output=True,
        text=True,
        cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in open(labels) if line.strip()]
    return dict(root=root,
                out=root / 'Annotation' / 'aligned',
                landmarks=landmarks,
                log=proc.stdout + proc.stderr,
                train=[n for n in names if n.startswith('train_')],
                test=[n for n in names if n.startswith('test_')],
                points={
                    split:
                    torch.load(landmarks / f'raf_{split}_19_landmarks.tensor',
                               weights_only=True).numpy()
                    for split in ('train', 'test')
                })


def out_file(real, name):
    return real['out'] / name.replace('.jpg', '_aligned.txt')


@pytest.mark.parametrize('split,rows', [('train', (0, 1, 4321, NUM_TRAIN - 1)),
                                        ('test', (0, 1500, NUM_TEST - 1))])
def test_real_rows_land_in_their_images_files(real, split, rows):
    for k in rows:
        name = real[split][k]
        expected = real['points'][split][k].astype(np.float64) * 100 / 224
        got = read_points(out_file(real, name))
        assert got.shape == (19, 2), name
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)


def test_real_first_face_matches_its_documented_points(real):
    # The first train row starts (22.75, 57.75), (50.75, 54.25) and ends
    # with the chin (108.5, 208.25) in the 224 frame; 100 / 224 = 25 / 56.
    got = read_points(real['out'] / 'train_00001_aligned.txt')
    np.testing.assert_allclose(got[:2],
                               [[10.15625, 25.78125], [22.65625, 24.21875]])
    np.testing.assert_allclose(got[18], [48.4375, 92.96875])


def test_real_writes_one_file_per_image_and_logs(real):
    files = listing(real['out'])
    assert len(files) == NUM_TRAIN + NUM_TEST
    assert set(files) == {
        n.replace('.jpg', '_aligned.txt')
        for n in real['train'] + real['test']
    }
    assert 'wrote 15339 landmark files (12271 train, 3068 test)' in \
        real['log']
    assert '224x224' in real['log'] and '100x100 (15339)' in real['log']


def test_real_second_run_refuses_and_changes_nothing(real):
    before = {
        name: (os.stat(real['out'] / name).st_mtime_ns,
               (real['out'] / name).read_bytes())
        for name in listing(real['out'])
    }
    message = run_main(real['root'], '--landmarks', real['landmarks'],
                       '--image-size', '100')
    assert '15339 of 15339 landmark files already exist' in message
    assert 'train_00001_aligned.txt' in message and '--out-dir' in message
    after = {
        name: (os.stat(real['out'] / name).st_mtime_ns,
               (real['out'] / name).read_bytes())
        for name in listing(real['out'])
    }
    assert after == before


def test_real_files_are_what_the_dataset_yields(real):
    # A label list of a few real names lets the dataset run on the
    # converted tree with only these images on disk.
    picks = [('train', 0), ('train', 777), ('train', NUM_TRAIN - 1)]
    (real['root'] / 'Image' / 'aligned').mkdir(parents=True, exist_ok=True)
    lines = []
    for split, k in picks:
        name = real[split][k]
        Image.new('RGB', (100, 100)).save(real['root'] / 'Image' / 'aligned' /
                                          name.replace('.jpg', '_aligned.jpg'))
        lines.append(f'{name} 1\n')
    (real['root'] / 'EmoLabel' / 'few.txt').write_text(''.join(lines))
    dataset = RAFDBDataset(data_root=str(real['root']),
                           ann_file='EmoLabel/few.txt',
                           landmarks='aligned')
    assert len(dataset) == len(picks)
    for i, (split, k) in enumerate(picks):
        got = dataset.get_data_info(i)['landmarks']
        assert got.dtype == np.float32 and got.shape == (19, 2)
        np.testing.assert_allclose(got,
                                   real['points'][split][k] * 100 / 224,
                                   atol=1e-5)


# ---------------------------------------------------------------------------
# Tiny trees with images of known sizes and synthetic tensors.
# ---------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path):
    """3 train + 2 test real images (100x100, one 120x80) and tensors."""
    root = make_rafdb(str(tmp_path / 'rafdb'),
                      num_train=3,
                      num_test=2,
                      size=100)
    # make_rafdb writes random aligned landmarks; the converter makes them.
    shutil.rmtree(osp.join(root, 'Annotation', 'aligned'))
    Image.new('RGB', (120, 80)).save(
        osp.join(root, 'Image', 'aligned', 'train_00002_aligned.jpg'))
    rng = np.random.default_rng(0)
    points = {
        'train': rng.uniform(0, 224, (3, 19, 2)).astype(np.float32),
        'test': rng.uniform(0, 224, (2, 19, 2)).astype(np.float32)
    }
    lm_dir = tmp_path / 'lanet'
    lm_dir.mkdir()
    for split, value in points.items():
        torch.save(torch.from_numpy(value),
                   lm_dir / f'raf_{split}_19_landmarks.tensor')
    return dict(root=root,
                out=osp.join(root, 'Annotation', 'aligned'),
                lm_dir=lm_dir,
                points=points,
                sizes={
                    'train': [(100, 100), (120, 80), (100, 100)],
                    'test': [(100, 100), (100, 100)]
                })


def save_tensor(tiny, split, value):
    torch.save(value, tiny['lm_dir'] / f'raf_{split}_19_landmarks.tensor')


def test_reads_each_image_size(tiny):
    tool.main([tiny['root'], '--landmarks', str(tiny['lm_dir'])])
    for split, num in (('train', 3), ('test', 2)):
        dataset = RAFDBDataset(data_root=tiny['root'],
                               split=split,
                               landmarks='aligned')
        assert len(dataset) == num
        for i in range(num):
            w, h = tiny['sizes'][split][i]
            expected = tiny['points'][split][i].astype(np.float64)
            expected = np.stack(
                [expected[:, 0] * w / 224, expected[:, 1] * h / 224], 1)
            np.testing.assert_allclose(dataset.get_data_info(i)['landmarks'],
                                       expected,
                                       rtol=1e-6)


def test_image_size_overrides_the_images(tiny):
    tool.main([
        tiny['root'], '--landmarks',
        str(tiny['lm_dir']), '--image-size', '56', '--out-dir', 'lm56'
    ])
    got = read_points(osp.join(tiny['root'], 'lm56',
                               'train_00002_aligned.txt'))
    np.testing.assert_allclose(got,
                               tiny['points']['train'][1].astype(np.float64) /
                               4,
                               rtol=1e-6)
    assert listing(tiny['out']) == []


def test_one_existing_target_stops_everything(tiny):
    os.makedirs(tiny['out'])
    existing = osp.join(tiny['out'], 'test_0002_aligned.txt')
    with open(existing, 'w') as f:
        f.write('1 2\n')
    message = run_main(tiny['root'], '--landmarks', tiny['lm_dir'])
    assert '1 of 5 landmark files already exist' in message
    assert existing in message
    assert listing(tiny['out']) == ['test_0002_aligned.txt']
    assert open(existing).read() == '1 2\n'


def test_missing_image_is_named(tiny):
    missing = osp.join(tiny['root'], 'Image', 'aligned',
                       'test_0001_aligned.jpg')
    os.remove(missing)
    message = run_main(tiny['root'], '--landmarks', tiny['lm_dir'])
    assert '1 of 5 aligned images are missing' in message
    assert missing in message and '--image-size' in message
    assert listing(tiny['out']) == []


@pytest.mark.parametrize('value,expected', [
    (torch.zeros(3, 19, 3), '[N, 19, 2]'),
    (torch.zeros(3, 68, 2), '(3, 68, 2)'),
    (torch.zeros(4, 19, 2), 'has 4 rows but'),
    (torch.zeros(2, 19, 2), 'has 2 rows but'),
])
def test_bad_train_tensor_is_named(tiny, value, expected):
    save_tensor(tiny, 'train', value)
    message = run_main(tiny['root'], '--landmarks', tiny['lm_dir'])
    assert str(tiny['lm_dir'] / 'raf_train_19_landmarks.tensor') in message
    assert expected in message
    if 'rows' in expected:
        assert 'has 3 lines' in message and 'list_patition_label.txt' in \
            message
    assert listing(tiny['out']) == []


def test_non_finite_rows_are_named(tiny):
    value = torch.from_numpy(tiny['points']['test'].copy())
    value[1, 7, 0] = float('nan')
    save_tensor(tiny, 'test', value)
    message = run_main(tiny['root'], '--landmarks', tiny['lm_dir'])
    assert 'raf_test_19_landmarks.tensor' in message
    assert '1 rows hold NaN or infinite values, the first is row 1' in \
        message
    assert listing(tiny['out']) == []


def test_missing_tensor_is_named(tiny):
    path = tiny['lm_dir'] / 'raf_test_19_landmarks.tensor'
    path.unlink()
    message = run_main(tiny['root'], '--landmarks', tiny['lm_dir'])
    assert f'{path} does not exist' in message
    assert listing(tiny['out']) == []


def test_help_describes_the_options(capsys):
    with pytest.raises(SystemExit) as err:
        tool.main(['--help'])
    assert err.value.code == 0
    text = capsys.readouterr().out
    assert '--image-size' in text and '--out-dir' in text
    assert 'x * W / 224' in text
