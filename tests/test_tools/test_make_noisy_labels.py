# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import subprocess
import sys

import pytest

from mmfer.datasets import RAFDBDataset
from fer_replicas import make_rafdb

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
    assert 'labels flipped' in proc.stdout
    lines = open(out).read().splitlines()
    assert len(lines) == 70 and lines[0].split()[0] == 'train_00001.jpg'
    assert all(1 <= int(line.split()[1]) <= 7 for line in lines)
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
