# Copyright (c) OpenMMLab. All rights reserved.
"""EAC and GSMC end to end through our tools on a tiny RAF-DB replica."""
import json
import os
import os.path as osp

import pytest
import torch

from fer_replicas import make_rafdb
from tool_runs import (ITERS_PER_EPOCH, REPO, TEST, TRAIN, run, weights,
                       write_config)

COMPARE = osp.join(REPO, 'tools', 'analysis_tools', 'compare_methods.py')
EPOCHS = 2


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_rafdb(str(tmp_path_factory.mktemp('data') / 'rafdb'))


def test_eac_trains_and_tests(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, 'eac', epochs=EPOCHS)
    work = str(tmp_path / 'work')
    log = run([TRAIN, cfg, '--work-dir', work]).stdout
    log += open(
        next(
            osp.join(root, f) for root, _, files in os.walk(work)
            for f in files if f.endswith('.log'))).read()
    assert 'loss_cls' in log and 'loss_att' in log
    result = json.load(open(osp.join(work, 'fer_results.json')))
    assert result['last_epoch']['epoch'] == EPOCHS
    ckpt = osp.join(work, f'epoch_{EPOCHS}.pth')
    assert 'head.fc.weight' in weights(ckpt)
    test = run([TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test')])
    out = test.stdout + test.stderr
    top1 = float(out.split('FER test: top-1 ')[1].split('%')[0])
    assert top1 == pytest.approx(result['last_epoch']['top1'], abs=0.006)


def test_gsmc_resume_after_kill_restores_the_teacher(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, 'gsmc', epochs=EPOCHS)
    full, crashed = str(tmp_path / 'full'), str(tmp_path / 'crashed')
    run([TRAIN, cfg, '--work-dir', full])
    proc = run([TRAIN, cfg, '--work-dir', crashed],
               env=dict(MMFER_KILL_AT_ITER=str(ITERS_PER_EPOCH + 2)),
               check=False)
    assert proc.returncode == -9
    assert not osp.exists(osp.join(crashed, f'epoch_{EPOCHS}.pth'))
    run([TRAIN, cfg, '--work-dir', crashed, '--resume'])
    a = weights(osp.join(full, f'epoch_{EPOCHS}.pth'))
    b = weights(osp.join(crashed, f'epoch_{EPOCHS}.pth'))
    teacher = [k for k in a if k.startswith('teacher.module.')]
    assert teacher and a.keys() == b.keys()
    assert int(a['teacher.steps']) == 1 + EPOCHS * ITERS_PER_EPOCH
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the teacher moved away from the student, so resuming restored it
    assert not torch.equal(a['teacher.module.head.fc.weight'],
                           a['student.head.fc.weight'])
    ckpt = osp.join(full, f'epoch_{EPOCHS}.pth')
    test = run([TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test')])
    assert 'FER test: top-1' in test.stdout + test.stderr


def test_compare_methods_over_seeds(tmp_path, data_root):
    configs = [
        write_config(tmp_path, data_root, method, epochs=1)
        for method in ('baseline', 'eac')
    ]
    work = str(tmp_path / 'compare')
    out = run([
        COMPARE, '--configs', *configs, '--seeds', '0', '1', '--work-dir', work
    ]).stdout
    assert 'LAST-epoch model, mean +- sample std' in out
    summary = json.load(open(osp.join(work, 'compare_methods.json')))
    assert len(summary['runs']) == 2
    for runs in summary['runs'].values():
        assert [r['seed'] for r in runs] == [0, 1]
    for stats in summary['summary'].values():
        assert stats['top1']['n'] == 2
        assert 0 <= stats['top1']['mean'] <= 100
