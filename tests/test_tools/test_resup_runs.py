# Copyright (c) OpenMMLab. All rights reserved.
"""ReSup as users run it: 2 CPU processes (gloo) with data-loading workers,
and a kill after an epoch followed by ``--resume``."""
import csv
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS, MODELS

from fer_replicas import make_rafdb
from mmfer.engine.hooks.resup_hook import fit_noise_models
from tool_runs import (ITERS_PER_EPOCH, REPO, TRAIN, run, run_dist, weights,
                       write_config)

NUM_TRAIN = 27  # odd: a 2-rank sampler pads one sample
DDP_CONFIG = """
_base_ = ['{repo}/configs/resup/r18_synthfer_noise30.py']
custom_imports = dict(
    imports=['mmfer', 'mean_teacher_test_hooks'], allow_failed_imports=False)
custom_hooks = [
    dict(type='EpochSeedHook'),
    dict(type='ReSupHook'),
    dict(type='SaveRankStateHook'),
]
# no random augmentation: a sample's similarity is then a function of the
# weights alone, which this test recomputes
train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackFERInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    dataset=dict(data_root='{root}', pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(max_epochs=2, val_interval=2)
randomness = dict(seed=0, deterministic=True)
default_hooks = dict(logger=dict(interval=1))
"""


def read_scores(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def similarities(rows):
    # 9 significant digits give back the float32 values exactly
    return np.array([[float(r['sim_net0']), float(r['sim_net1'])]
                     for r in rows]).astype(np.float32).astype(np.float64)


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resup_ddp')
    root = make_rafdb(str(tmp / 'rafdb'), num_train=NUM_TRAIN)
    cfg = tmp / 'resup_ddp.py'
    cfg.write_text(DDP_CONFIG.format(repo=REPO, root=root))
    work = str(tmp / 'work')
    run_dist('dist_train.sh', [str(cfg), '2', '--work-dir', work])
    states = [
        torch.load(osp.join(work, f'rank{r}_state.pth'), weights_only=True)
        for r in range(2)
    ]
    return str(cfg), work, states


def test_ranks_fit_the_same_tables_as_one_process_on_the_statistics(
        ddp_run):
    cfg, work, states = ddp_run
    # every rank holds the same networks (BatchNorm statistics averaged
    # before the pass) and the same noise model
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert int(states[0]['num_fits']) == 2
    rows = read_scores(osp.join(work, 'noise_scores.csv'))
    # each sample once: the sample rank 1 got twice as padding is not
    # counted twice
    assert [int(r['sample_idx']) for r in rows] == list(range(NUM_TRAIN))
    tables, params, _ = fit_noise_models(similarities(rows), 'beta', 10, {},
                                         100)
    np.testing.assert_array_equal(tables,
                                  states[0]['lookup_tables'].numpy())
    np.testing.assert_array_equal(params,
                                  states[0]['mixture_params'].numpy())


def test_gathered_similarity_is_each_samples_own(ddp_run):
    """Recompute every sample's similarity in this process from the final
    weights: the gathered rows sit at the right sample index."""
    cfg_path, work, states = ddp_run
    cfg = Config.fromfile(cfg_path)
    # as the runner builds it: with the config's data preprocessor
    model = MODELS.build(
        dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.load_state_dict(states[0])
    model.eval()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(len(dataset))]), False)
    labels = torch.cat([s.gt_label for s in data['data_samples']])
    expected = model.eval_similarities(data['inputs'], labels).T.double()
    rows = read_scores(osp.join(work, 'noise_scores.csv'))
    np.testing.assert_allclose(
        similarities(rows), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert [int(r['train_label']) for r in rows] == labels.tolist()
    clean = [int(dataset.get_data_info(i)['clean_label'])
             for i in range(len(dataset))]
    assert [int(r['clean_label']) for r in rows] == clean


EPOCHS = 3
SOURCES = ['extra_pass', 'train_step']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_rafdb(str(tmp_path_factory.mktemp('data') / 'rafdb'))


def _train(tmp_path, data_root, name, source, env=None):
    cfg = write_config(
        tmp_path, data_root, method='resup', name=f'{name}.py',
        epochs=EPOCHS, workers=2, persistent=True,
        hooks=f"[dict(type='ReSupHook', similarity_source='{source}')]")
    work = str(tmp_path / name)
    proc = run([TRAIN, cfg, '--work-dir', work], env=env, check=env is None)
    return cfg, work, proc


def _outcome(work):
    return (weights(osp.join(work, f'epoch_{EPOCHS}.pth')),
            json.load(open(osp.join(work, 'fer_results.json')))['history'],
            open(osp.join(work, 'noise_scores.csv')).read())


@pytest.mark.parametrize('source', SOURCES)
def test_resume_after_kill_continues_with_the_same_tables(
        tmp_path, data_root, source):
    _, reference, _ = _train(tmp_path, data_root, 'full', source)
    kill_at = 2 * ITERS_PER_EPOCH + 2  # after epoch 2's fit, in epoch 3
    cfg, crashed, proc = _train(
        tmp_path, data_root, 'crashed', source,
        env=dict(MMFER_KILL_AT_ITER=str(kill_at)))
    assert proc.returncode == -9
    # the checkpoint the run resumes from holds epoch 2's tables
    saved = weights(osp.join(crashed, 'epoch_2.pth'))
    expected = weights(osp.join(reference, 'epoch_2.pth'))
    assert int(saved['num_fits']) == 2
    for key in ('lookup_tables', 'mixture_params'):
        assert torch.equal(saved[key], expected[key]), key
    run([TRAIN, cfg, '--work-dir', crashed, '--resume'])
    (w_ref, h_ref, csv_ref), (w_res, h_res, csv_res) = (_outcome(reference),
                                                        _outcome(crashed))
    assert w_ref.keys() == w_res.keys()
    for key in w_ref:
        assert torch.equal(w_ref[key], w_res[key]), key
    assert h_ref == h_res
    assert csv_ref == csv_res
