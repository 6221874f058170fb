# Copyright (c) OpenMMLab. All rights reserved.
"""End-to-end runs of our tools, mmpretrain's stock tools and torchrun."""
import json
import os.path as osp

import pytest
import torch

from fer_replicas import make_rafdb
from tool_runs import (ITERS_PER_EPOCH, REPO, TEST, TRAIN, config_text, run,
                       run_dist, weights, write_config)

EPOCHS = 3


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_rafdb(str(tmp_path_factory.mktemp('data') / 'rafdb'))


def test_train_then_test_with_our_tools(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, epochs=EPOCHS)
    work = str(tmp_path / 'work')
    out = run([TRAIN, cfg, '--work-dir', work])
    log = out.stdout + out.stderr
    assert 'headline = LAST epoch on the test split' in log
    assert 'Best epoch (selected on the test split' in log
    # no deprecation noise from mmengine's unused FileClient
    assert 'FileClient' not in log and 'HardDiskBackend' not in log
    # the config's draw (30%, seed 0) flips 10 of the replica's 28 labels
    assert ('SynthFERDataset(train): 10/28 training labels are noisy '
            '(35.71%, symmetric noise, seed 0)') in log
    result = json.load(open(osp.join(work, 'fer_results.json')))
    assert result['headline'] == 'last_epoch'
    assert result['last_epoch']['epoch'] == EPOCHS
    assert [r['epoch'] for r in result['history']] == [1, 2, 3]
    assert open(osp.join(work, 'last_checkpoint')).read().strip().endswith(
        f'epoch_{EPOCHS}.pth')

    ckpt = osp.join(work, f'epoch_{EPOCHS}.pth')
    test = run([TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test')])
    log = test.stdout + test.stderr
    assert 'FER test: top-1' in log and 'mean per-class accuracy' in log
    assert 'confusion matrix (rows: true class)' in log and 'Surprise' in log
    top1 = float(log.split('FER test: top-1 ')[1].split('%')[0])
    assert top1 == pytest.approx(result['last_epoch']['top1'], abs=0.006)

    # a second run into the same work dir is refused, nothing overwritten
    before = open(ckpt, 'rb').read()
    again = run([TRAIN, cfg, '--work-dir', work], check=False)
    assert again.returncode != 0
    assert 'already holds checkpoints' in again.stderr
    assert open(ckpt, 'rb').read() == before


# Model-side randomness (stochastic depth, drawn in the main process) on
# top of the pipeline's random flip, so that both streams are checked.
DROP_PATH = 0.1
# (num_workers, persistent_workers)
LOADERS = [(0, False), (2, False), (2, True)]


def _train(tmp_path, data_root, name, workers, persistent, env=None):
    cfg = write_config(tmp_path, data_root, name=f'{name}.py',
                       epochs=EPOCHS, workers=workers,
                       persistent=persistent, drop_path=DROP_PATH)
    work = str(tmp_path / name)
    proc = run([TRAIN, cfg, '--work-dir', work], env=env, check=env is None)
    return cfg, work, proc


def _final(work):
    return (weights(osp.join(work, f'epoch_{EPOCHS}.pth')),
            json.load(open(osp.join(work, 'fer_results.json')))['history'])


def _assert_same_run(a, b):
    (wa, ha), (wb, hb) = a, b
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert ha == hb


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_root):
    """Final weights and history of an uninterrupted run, no workers."""
    tmp_path = tmp_path_factory.mktemp('reference')
    _, work, _ = _train(tmp_path, data_root, 'full', 0, False)
    return _final(work)


@pytest.mark.parametrize('workers,persistent', LOADERS[1:])
def test_result_does_not_depend_on_workers(tmp_path, data_root, reference,
                                           workers, persistent):
    _, work, _ = _train(tmp_path, data_root, 'full', workers, persistent)
    _assert_same_run(_final(work), reference)


@pytest.mark.parametrize('workers,persistent', LOADERS)
def test_resume_after_kill_matches_uninterrupted(tmp_path, data_root,
                                                 reference, workers,
                                                 persistent):
    kill_at = 2 * ITERS_PER_EPOCH + 2  # mid-way through epoch 3
    cfg, crashed, proc = _train(
        tmp_path, data_root, 'crashed', workers, persistent,
        env=dict(MMFER_KILL_AT_ITER=str(kill_at)))
    assert proc.returncode == -9
    assert not osp.exists(osp.join(crashed, f'epoch_{EPOCHS}.pth'))
    assert osp.exists(osp.join(crashed, 'epoch_2.pth'))
    run([TRAIN, cfg, '--work-dir', crashed, '--resume'])
    # `reference` equals an uninterrupted run with these very workers
    # (test_result_does_not_depend_on_workers)
    _assert_same_run(_final(crashed), reference)


def _stock_tool(name):
    import mmpretrain
    path = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', name)
    assert osp.isfile(path), f'mmpretrain wheel ships no {path}'
    return path


def test_stock_mmpretrain_tools_run_our_config(tmp_path, data_root):
    """mmpretrain's own train.py/test.py (it forces persistent workers)."""
    cfg = write_config(tmp_path, data_root, epochs=1)
    work = str(tmp_path / 'stock')
    run([_stock_tool('train.py'), cfg, '--work-dir', work])
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    test = run([_stock_tool('test.py'), cfg, ckpt, '--work-dir',
                str(tmp_path / 'stock_test')])
    # the stock test reproduces the accuracy of the last training epoch
    out = test.stdout + test.stderr
    top1 = float(out.split('accuracy/top1: ')[1].split()[0])
    last = json.load(open(osp.join(work, 'fer_results.json')))['last_epoch']
    assert top1 == pytest.approx(last['top1'], abs=1e-4)


def test_mmpretrain_base_through_our_tools(tmp_path, data_root):
    """``_base_ = 'mmpretrain::...'`` works with setuptools >= 82."""
    bases = ['mmpretrain::_base_/models/resnet18.py'] + [
        f'{REPO}/configs/_base_/{name}.py'
        for name in ('datasets/synthfer', 'schedules/adam_60e',
                     'default_runtime')
    ]
    body = config_text(data_root, epochs=1).split('\n', 2)[2]  # no _base_
    cfg = tmp_path / 'inherit.py'
    cfg.write_text(
        f'_base_ = {bases!r}\nmodel = dict(head=dict(num_classes=7, '
        'topk=(1, )))\n' + body)
    run([TRAIN, str(cfg), '--work-dir', str(tmp_path / 'inherit')])
    trained = weights(str(tmp_path / 'inherit' / 'epoch_1.pth'))
    # mmpretrain's full-width ResNet-18 (512 features), not the recipe's
    # quarter-width one (128)
    assert trained['head.fc.weight'].shape == (7, 512)


def test_two_process_cpu_training(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, epochs=2)
    work = str(tmp_path / 'dist')
    proc = run_dist('dist_train.sh', [cfg, '2', '--work-dir', work])
    log = proc.stdout + proc.stderr
    assert 'runs distributed on CPU with the gloo backend' in log
    assert 'rank 0/2' in log and 'Distributed training: True' in log
    ckpt = osp.join(work, 'epoch_2.pth')
    assert osp.isfile(ckpt)
    result = json.load(open(osp.join(work, 'fer_results.json')))
    assert result['last_epoch']['epoch'] == 2

    proc = run_dist('dist_test.sh', [
        cfg, ckpt, '2', '--work-dir',
        str(tmp_path / 'dist_test')
    ])
    log = proc.stdout + proc.stderr
    # both ranks' predictions, gathered: the accuracy of the last epoch
    top1 = float(log.split('FER test: top-1 ')[1].split('%')[0])
    assert top1 == pytest.approx(result['last_epoch']['top1'], abs=0.006)


def _checkpoint_of(cfg_path, path):
    """Save the freshly built model of a config as a checkpoint."""
    from mmengine.config import Config

    from mmfer.apis import build_model
    model = build_model(Config.fromfile(cfg_path), 'cpu')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


def test_a_checkpoint_of_another_model_is_refused(tmp_path, data_root):
    eac = write_config(tmp_path, data_root, 'eac', epochs=1)
    resup = _checkpoint_of(
        write_config(tmp_path, data_root, 'resup'), tmp_path / 'resup.pth')
    refused = run([TEST, eac, resup, '--work-dir', str(tmp_path / 't1')],
                  check=False)
    assert refused.returncode != 0
    err = refused.stderr
    assert f'checkpoint {resup} does not fit the model' in err
    assert 'missing keys (in the model, not in the checkpoint): ' \
        'backbone.conv1.weight' in err
    assert 'unexpected keys (in the checkpoint, not in the model): ' \
        'lookup_tables' in err and 'networks.0.backbone.conv1.weight' in err
    assert '--allow-partial-load' in err and 'FER test: top-1' not in err
    # the message comes last, without a traceback burying it
    assert 'Traceback' not in err
    last = err.strip().splitlines()
    assert last[-2].startswith('error (ValueError): checkpoint ')
    assert last[-1] == '(set MMFER_DEBUG=1 for the traceback)'
    # the explicit opt-in loads what fits (here: nothing) and tests
    partial = run([TEST, eac, resup, '--work-dir', str(tmp_path / 't2'),
                   '--allow-partial-load'])
    log = partial.stdout + partial.stderr
    assert 'Loading the tensors that fit' in log and 'FER test: top-1' in log
    # load_from in training is checked the same way
    trained = run([TRAIN, eac, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'load_from={resup}'], check=False)
    assert trained.returncode != 0
    assert f'checkpoint {resup} does not fit the model' in trained.stderr
    assert not osp.exists(osp.join(tmp_path, 'w', 'epoch_1.pth'))


def test_resume_with_nothing_to_resume_is_refused(tmp_path, data_root):
    cfg = write_config(tmp_path, data_root, epochs=1)
    empty = tmp_path / 'mistyped'
    refused = run([TRAIN, cfg, '--work-dir', str(empty), '--resume'],
                  check=False)
    assert refused.returncode != 0
    assert f'--resume: {empty} holds no checkpoint to resume' in \
        refused.stderr
    assert not osp.exists(osp.join(empty, 'epoch_1.pth'))
    # `--resume auto` starts afresh when there is nothing to resume ...
    run([TRAIN, cfg, '--work-dir', str(empty), '--resume', 'auto'])
    assert osp.exists(osp.join(empty, 'epoch_1.pth'))
    # ... and resumes when there is (the run is over: nothing to train)
    again = run([TRAIN, cfg, '--work-dir', str(empty), '--resume', 'auto'])
    assert 'Auto resumed from the latest checkpoint' in \
        again.stdout + again.stderr
