# Copyright (c) OpenMMLab. All rights reserved.
"""benchmark_train.py and reference_loop.py on a tiny RAF-DB replica."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmfer  # noqa: F401
from fer_replicas import make_rafdb
from tool_runs import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_train.py')
benchmark_train = load_tool('tools/analysis_tools/benchmark_train.py')
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
# The baseline at another image size: a third config for --compare.
SMALL_CONFIG = """
_base_ = ['{base}']
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(16, 16)),
    dict(type='PackFERInputs')]))
"""
FIELDS = dict(
    name=str, mode=str, batch_size=int, num_workers=int, device=str, iters=int,
    warmup=int, images=int, images_per_s=float, s_per_iter=float,
    data_s_per_iter=float, compute_s_per_iter=float, peak_mem_mib=float,
    peak_mem_kind=str)


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    root = make_rafdb(str(tmp / 'rafdb'))
    paths = []
    for name, text in (('eac.py', EAC_CONFIG), ('base.py', BASELINE_CONFIG),
                       ('small.py', SMALL_CONFIG)):
        path = tmp / name
        path.write_text(
            text.format(repo=REPO, root=root, batch=CONFIG_BATCH, img=IMG,
                        base=tmp / 'base.py'))
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


def _check_fields(run, mode):
    for key, kind in FIELDS.items():
        assert isinstance(run[key], kind), (key, run[key])
    assert run['mode'] == mode
    assert run['device'] == 'cpu' and run['peak_mem_kind'] == 'cpu_max_rss'
    assert run['iters'] == ITERS and run['warmup'] == WARMUP
    # each sample counts once, not once per view
    assert run['images'] == ITERS * BATCH
    assert run['peak_mem_mib'] > 0
    assert run['s_per_iter'] > 0
    assert run['images_per_s'] == pytest.approx(
        run['images'] / (run['s_per_iter'] * run['iters']))


def _check_ratio(line, candidate, baseline):
    """``line`` divides ``candidate`` by ``baseline``."""
    assert line.startswith(
        f'ratio {candidate["name"]} / {baseline["name"]}:'), line
    images = candidate['images_per_s'] / baseline['images_per_s']
    step = candidate['s_per_iter'] / baseline['s_per_iter']
    assert f'images/s {images:.3f}x, s/iter {step:.3f}x' in line


def test_eac_vs_baseline_and_reference(configs):
    eac, base, _ = configs
    runs, ratios = _run(
        [eac, '--compare', base, '--reference', '--batch-size', str(BATCH)])
    assert [r['name'] for r in runs] == [
        osp.relpath(eac, REPO), osp.relpath(base, REPO), 'reference_loop']
    for run in runs:
        _check_fields(run, 'train')
        assert run['batch_size'] == BATCH and run['num_workers'] == 0
    # the compared config against the first, the first against the reference
    assert len(ratios) == 2
    _check_ratio(ratios[0], runs[1], runs[0])
    _check_ratio(ratios[1], runs[0], runs[2])


def test_data_only_against_the_reference(configs):
    eac = configs[0]
    runs, ratios = _run(
        [eac, '--reference', '--data-only', '--batch-size', str(BATCH)])
    assert [r['name'] for r in runs] == [
        osp.relpath(eac, REPO), 'reference_loop']
    for run in runs:
        # the data preprocessor's time is the compute; EAC's two views and
        # the reference loop's two views still count one image per sample
        _check_fields(run, 'data')
    assert len(ratios) == 1
    _check_ratio(ratios[0], runs[0], runs[1])


def test_several_compares_each_against_the_first(configs, capsys):
    eac, base, small = configs
    args = benchmark_train.parse_args([
        base, '--compare', eac, small, '--reference', '--data-only',
        '--batch-size', str(BATCH), '--iters', '2'
    ])
    commands = benchmark_train.child_runs(args)
    # one process per config, in order, then the reference loop, each
    # with the shared options
    assert [c[2] for c in commands[:3]] == [base, eac, small]
    assert commands[3][1].endswith('reference_loop.py')
    assert commands[3][commands[3].index('--img-size') + 1] == str(IMG)
    for command in commands:
        assert '--data-only' in command
        assert command[command.index('--iters') + 1] == '2'
        assert command[command.index('--batch-size') + 1] == str(BATCH)
    # the compared configs against the first, the first against the
    # reference loop
    pairs = benchmark_train.ratio_pairs(args)
    assert pairs == [(1, 0), (2, 0), (0, 3)]
    runs = [
        dict(name=name, images_per_s=rate, s_per_iter=1.0 / rate,
             peak_mem_mib=100.0, peak_mem_kind='cpu_max_rss')
        for name, rate in (('base', 50.0), ('eac', 20.0), ('small', 80.0),
                           ('reference_loop', 25.0))
    ]
    benchmark_train.report(runs, pairs)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(ln) for ln in lines[:4]] == runs
    assert lines[4:] == [
        'ratio eac / base: images/s 0.400x, s/iter 2.500x, peak memory '
        '1.000x (cpu_max_rss)',
        'ratio small / base: images/s 1.600x, s/iter 0.625x, peak memory '
        '1.000x (cpu_max_rss)',
        'ratio base / reference_loop: images/s 2.000x, s/iter 0.500x, peak '
        'memory 1.000x (cpu_max_rss)'
    ]


def test_pretrained_weights_are_dropped_in_every_network():
    # ReSup keeps its two networks in a list, each with a checkpoint
    model = Config.fromfile(osp.join(
        REPO, 'configs', 'resup',
        'resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py')).model
    assert repr(model).count("'Pretrained'") == 2
    benchmark_train.drop_pretrained(model)
    assert 'Pretrained' not in repr(model)
    assert [net.backbone.init_cfg for net in model.networks] == [None, None]
    # other initialisers stay
    node = dict(init_cfg=[dict(type='Kaiming'),
                          dict(type='Pretrained', checkpoint='x.pth')])
    benchmark_train.drop_pretrained(node)
    assert node == dict(init_cfg=[dict(type='Kaiming')])


def test_epochs_are_seeded_as_by_the_hooks(configs):
    """Each epoch's iterator starts after the sampler's epoch and the
    dataset's per-sample seed were set, as DistSamplerSeedHook and
    EpochSeedHook do in training."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(configs[1])
    cfg.randomness = dict(seed=7)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=7)
    next_epoch = benchmark_train.epoch_iterators(cfg, loader)
    dataset = loader.dataset
    for epoch in range(2):
        first = next(next_epoch())
        assert loader.sampler.epoch == epoch
        assert dataset._sample_seeder._state.tolist() == [7, epoch]
        assert len(first['data_samples']) == CONFIG_BATCH
    # without EpochSeedHook in the config, samples are not seeded
    cfg.custom_hooks = []
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=7)
    next(benchmark_train.epoch_iterators(cfg, loader)())
    assert '_sample_seeder' not in loader.dataset.__dict__


def test_fast_path_switches_reach_the_timed_step():
    """The runner applies ChannelsLastHook and ``compile``; the tool, which
    builds no runner, must apply them itself to time what training runs."""
    import torch
    from torch import nn

    fast = Config(
        dict(default_hooks=dict(channels_last=dict(type='ChannelsLastHook'))))
    assert benchmark_train.uses_channels_last(fast)
    assert benchmark_train.uses_channels_last(
        Config(dict(custom_hooks=[dict(type='ChannelsLastHook')])))
    assert not benchmark_train.uses_channels_last(
        Config(dict(default_hooks=dict(logger=dict(type='LoggerHook')))))

    class Model(nn.Module):

        def train_step(self, x):
            return x * 2

    model = Model()
    assert benchmark_train.compiled_train_step(model, None) == \
        model.train_step
    step = benchmark_train.compiled_train_step(
        model, dict(backend='aot_eager'))
    assert step != model.train_step
    assert torch.equal(step(torch.ones(2)), torch.full((2, ), 2.))
    torch._dynamo.reset()
