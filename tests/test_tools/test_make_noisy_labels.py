# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import subprocess
import sys

import pytest

from mmfer.datasets import RAFDBDataset
from mmfer.datasets.noise import flip_labels, symmetric_transition
from fer_replicas import make_rafdb
from tool_runs import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'make_noisy_labels.py')


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                          text=True, cwd=REPO)


def test_writes_eac_format_file_read_by_the_dataset(tmp_path):
    root = make_rafdb(str(tmp_path / 'rafdb'), num_train=70, num_test=7)
    ann = osp.join(root, 'EmoLabel', 'list_patition_label.txt')
    out = osp.join(root, 'EmoLabel', 'noise_seed3.txt')
    proc = run(ann, out, '--rate', '0.3', '--seed', '3')
    assert proc.returncode == 0, proc.stderr
    # the reference draw: seed 3 flips 30% of the clean labels uniformly
    clean = [i % 7 for i in range(70)]
    reference = flip_labels(clean, symmetric_transition(7, 0.3), seed=3)
    assert ': 17/70 labels flipped (24.29%, symmetric, seed 3)' in \
        proc.stdout
    lines = open(out).read().splitlines()
    assert [line.split()[0] for line in lines] == \
        [f'train_{i:05d}.jpg' for i in range(1, 71)]
    assert [int(line.split()[1]) - 1 for line in lines] == \
        reference.tolist()
    # the same noise as the dataset's own seeded noise
    from_file = RAFDBDataset(data_root=root, noise_file=out)
    seeded = RAFDBDataset(data_root=root, noise_rate=0.3, noise_seed=3)
    assert [from_file.get_data_info(i)['gt_label'] for i in range(70)] == \
        [seeded.get_data_info(i)['gt_label'] for i in range(70)]
    # existing files are never overwritten
    before = open(out).read()
    again = run(ann, out, '--rate', '0.1')
    assert again.returncode != 0 and 'exists' in again.stderr
    assert open(out).read() == before


def make_noisy_labels():
    return load_tool('tools/dataset_converters/make_noisy_labels.py')


def test_lanet_file_is_the_datasets_lanet_draw(tmp_path, capsys):
    root = make_rafdb(str(tmp_path / 'rafdb'), num_train=70, num_test=7)
    ann = osp.join(root, 'EmoLabel', 'list_patition_label.txt')
    out = osp.join(root, 'EmoLabel', 'lanet30.txt')
    make_noisy_labels().main([ann, out, '--rate', '0.3', '--type', 'lanet'])
    assert 'lanet, seed 0' in capsys.readouterr().out
    from_file = RAFDBDataset(data_root=root, noise_file=out)
    drawn = RAFDBDataset(data_root=root, noise_rate=0.3, noise_type='lanet')
    assert [from_file.get_data_info(i)['gt_label'] for i in range(70)] == \
        [drawn.get_data_info(i)['gt_label'] for i in range(70)]
    assert drawn.noise_report['num_noisy'] > 0


def test_lanet_needs_the_seven_basic_expressions(tmp_path):
    ann = tmp_path / 'labels.txt'
    ann.write_text('a.jpg 0\nb.jpg 1\n')
    with pytest.raises(SystemExit) as err:
        make_noisy_labels().main([
            str(ann), str(tmp_path / 'out.txt'), '--rate', '0.2', '--type',
            'lanet', '--split-prefix', '', '--label-base', '0', '--classes',
            'cat', 'dog'])
    assert str(err.value.code).startswith(
        "--type lanet: noise_type='lanet' draws in LA-Net's 7-class order")
    assert not (tmp_path / 'out.txt').exists()


def test_bad_label_names_the_line(tmp_path):
    ann = tmp_path / 'labels.txt'
    ann.write_text('train_00001.jpg 1\ntrain_00002.jpg 9\n')
    proc = run(str(ann), str(tmp_path / 'out.txt'), '--rate', '0.2')
    assert proc.returncode != 0
    assert f'{ann}:2' in proc.stderr and '1..7' in proc.stderr


@pytest.mark.parametrize('noise', ['noise01.txt', 'noise03.txt'])
def test_public_noise_files_have_the_format(shared_rafdb_labels, noise):
    """Our output format is exactly that of EAC's public files."""
    names = [line.split()[0] for line in open(
        osp.join(shared_rafdb_labels, noise)) if line.strip()]
    assert len(names) == 12271 and names[0] == 'train_00001.jpg'
