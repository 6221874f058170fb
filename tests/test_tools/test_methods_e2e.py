# Copyright (c) OpenMMLab. All rights reserved.
"""EAC and GSMC end to end through our tools on a tiny RAF-DB replica."""
import json
import os
import os.path as osp
import statistics

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


def last_epoch(work_dir: str) -> dict:
    """The last-epoch record FERReportHook wrote for a run."""
    with open(osp.join(work_dir, 'fer_results.json')) as f:
        return json.load(f)['last_epoch']


def assert_test_equals_last_epoch(cfg, ckpt, work_dir, tmp_path):
    """tools/test.py on the last checkpoint reproduces the accuracy that
    the run measured after its last epoch (printed to 2 decimals)."""
    test = run([TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test')])
    out = test.stdout + test.stderr
    top1 = float(out.split('FER test: top-1 ')[1].split('%')[0])
    assert top1 == pytest.approx(last_epoch(work_dir)['top1'], abs=0.006)


def test_eac_trains_and_tests(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, 'eac', epochs=EPOCHS)
    work = str(tmp_path / 'work')
    log = run([TRAIN, cfg, '--work-dir', work]).stdout
    log += open(
        next(
            osp.join(root, f) for root, _, files in os.walk(work)
            for f in files if f.endswith('.log'))).read()
    assert 'loss_cls' in log and 'loss_att' in log
    assert last_epoch(work)['epoch'] == EPOCHS
    ckpt = osp.join(work, f'epoch_{EPOCHS}.pth')
    assert 'head.fc.weight' in weights(ckpt)
    assert_test_equals_last_epoch(cfg, ckpt, work, tmp_path)


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
    assert_test_equals_last_epoch(cfg, osp.join(full, f'epoch_{EPOCHS}.pth'),
                                  full, tmp_path)


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
    # the reference: tools/train.py with the training seed set by hand
    # trains the very model that the comparison's seed-1 EAC run trained
    reference = str(tmp_path / 'reference')
    run([
        TRAIN, configs[1], '--work-dir', reference, '--cfg-options',
        'randomness.seed=1'
    ])
    expected = weights(osp.join(reference, 'epoch_1.pth'))
    compared = weights(
        osp.join(summary['runs']['eac'][1]['work_dir'], 'epoch_1.pth'))
    assert expected.keys() == compared.keys()
    for key in expected:
        assert torch.equal(expected[key], compared[key]), key
    for name, runs in summary['runs'].items():
        # every run reports the test of its own last-epoch model ...
        for record in runs:
            history = last_epoch(record['work_dir'])
            assert record['top1'] == pytest.approx(history['top1'], abs=1e-9)
            assert record['mean_class'] == pytest.approx(
                history['mean_class_acc'], abs=1e-9)
        # ... each training seed trains another model ...
        first, second = (
            weights(osp.join(r['work_dir'], 'epoch_1.pth')) for r in runs)
        assert not torch.equal(first['head.fc.weight'],
                               second['head.fc.weight'])
        # ... and the summary is the mean +- sample std of those runs
        stats = summary['summary'][name]
        for key in ('top1', 'mean_class'):
            values = [r[key] for r in runs]
            assert stats[key]['n'] == 2
            assert stats[key]['mean'] == pytest.approx(
                statistics.fmean(values))
            assert stats[key]['std'] == pytest.approx(
                statistics.stdev(values))


def test_eac_device_augments_same_with_workers_and_after_resume(
        tmp_path, data_root):
    """EAC with both views made on the device: the same weights with 0 or
    2 persistent workers, and after a kill and ``--resume``."""

    def train(name, workers, env=None):
        cfg = write_config(tmp_path, data_root, 'eac', name=f'{name}.py',
                           epochs=EPOCHS, workers=workers,
                           persistent=workers > 0, variant='_device-aug')
        work = str(tmp_path / name)
        proc = run([TRAIN, cfg, '--work-dir', work], env=env,
                   check=env is None)
        return cfg, work, proc

    final = f'epoch_{EPOCHS}.pth'
    _, plain, _ = train('workers0', 0)
    _, pooled, _ = train('workers2', 2)
    cfg, crashed, proc = train(
        'crashed', 2, env=dict(MMFER_KILL_AT_ITER=str(ITERS_PER_EPOCH + 2)))
    assert proc.returncode == -9
    assert not osp.exists(osp.join(crashed, final))
    run([TRAIN, cfg, '--work-dir', crashed, '--resume'])
    a = weights(osp.join(plain, final))
    for other in (pooled, crashed):
        b = weights(osp.join(other, final))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (other, key)
