# Copyright (c) OpenMMLab. All rights reserved.
"""benchmark_train.py and reference_loop.py on a tiny RAF-DB replica."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from fer_replicas import make_rafdb
from tool_runs import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_train.py')
# The configs say batch 8; the command line's --batch-size 4 must reach
# every run, the reference loop included.
CONFIG_BATCH, BATCH, ITERS, WARMUP, IMG = 8, 4, 3, 1, 32
# 28 train images / batch 4 = 7 batches per epoch: warm-up + timed
# iterations cross no epoch end, so every timed batch is full.
# EAC's noisy-label recipe (two views per image from the pipeline) and the
# baseline (one view), shrunk to 32 px, from random weights.
EAC_CONFIG = """
_base_ = [
    '{repo}/configs/eac/eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py'
]
resize = dict(type='Resize', scale=({img}, {img}))
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', noise_file=None, pipeline=[
        dict(type='LoadFERImage'),
        dict(type='MultiView', num_views=[1, 1], transforms=[
            [{{{{_base_.eac_gaussian_noise}}}}, resize,
             {{{{_base_.eac_random_erasing}}}}],
            [dict(type='RandomFlip', prob=1.0, direction='horizontal'),
             resize, {{{{_base_.eac_random_erasing}}}}]]),
        dict(type='PackFERInputs')]))
"""
BASELINE_CONFIG = """
_base_ = ['{repo}/configs/baseline/r18_synthfer_noise30.py']
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='RAFDBDataset', data_root='{root}',
                 split='train', pipeline=[
                     dict(type='LoadFERImage'),
                     dict(type='Resize', scale=({img}, {img})),
                     dict(type='PackFERInputs')]))
"""
FIELDS = dict(
    name=str, batch_size=int, num_workers=int, device=str, iters=int,
    warmup=int, images=int, images_per_s=float, s_per_iter=float,
    data_s_per_iter=float, compute_s_per_iter=float, peak_mem_mib=float,
    peak_mem_kind=str)


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    root = make_rafdb(str(tmp / 'rafdb'))
    paths = []
    for name, text in (('eac.py', EAC_CONFIG), ('base.py', BASELINE_CONFIG)):
        path = tmp / name
        path.write_text(
            text.format(repo=REPO, root=root, batch=CONFIG_BATCH, img=IMG))
        paths.append(str(path))
    return paths


def _run(args):
    proc = subprocess.run(
        [sys.executable, TOOL] + args + ['--iters', str(ITERS), '--warmup',
                                         str(WARMUP), '--device', 'cpu'],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    runs = [json.loads(ln) for ln in lines if ln.startswith('{')]
    ratios = [ln for ln in lines if ln.startswith('ratio ')]
    return runs, ratios


def _check_fields(run):
    for key, kind in FIELDS.items():
        assert isinstance(run[key], kind), (key, run[key])
    assert run['device'] == 'cpu' and run['peak_mem_kind'] == 'cpu_max_rss'
    assert run['iters'] == ITERS and run['warmup'] == WARMUP
    # each sample counts once, not once per view
    assert run['images'] == ITERS * BATCH
    assert run['peak_mem_mib'] > 0
    assert run['s_per_iter'] > 0
    assert run['images_per_s'] == pytest.approx(
        run['images'] / (run['s_per_iter'] * run['iters']))


def test_eac_vs_baseline_and_reference(configs):
    eac, base = configs
    runs, ratios = _run(
        [eac, '--compare', base, '--reference', '--batch-size', str(BATCH)])
    assert [r['name'] for r in runs] == [
        osp.relpath(eac, REPO), osp.relpath(base, REPO), 'reference_loop']
    for run in runs:
        _check_fields(run)
        assert run['batch_size'] == BATCH and run['num_workers'] == 0
    assert len(ratios) == 2
    for ratio, other in zip(ratios, runs[1:]):
        assert ratio.startswith(f'ratio {runs[0]["name"]} / {other["name"]}:')
        expected = runs[0]['images_per_s'] / other['images_per_s']
        assert f'images/s {expected:.3f}x' in ratio
