# Copyright (c) OpenMMLab. All rights reserved.
"""ReSupHook's parts: fitting, CSV, one epoch's fit from the model's
similarity bank. Sharding and merging by sample index are in
tests/test_utils/test_sample_dist_utils.py; training runs (2 processes,
resume) in tests/test_tools/test_resup_runs.py."""
import copy
import csv
import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader, Dataset

from mmfer.engine import ReSupHook
from mmfer.engine.hooks.resup_hook import CSV_COLUMNS, fit_noise_models
from mmfer.models.utils.mixture_1d import BetaMixture1D, GaussianMixture1D


@pytest.mark.parametrize('kind,cls', [('beta', BetaMixture1D),
                                      ('gaussian', GaussianMixture1D)])
def test_fit_is_one_fresh_mixture_per_network(kind, cls):
    rng = np.random.default_rng(0)
    sims = np.concatenate([rng.beta(2, 6, (300, 2)), rng.beta(8, 2, (700, 2))])
    sims[5, 1] = np.nan  # unknown: left out of network 1's fit only
    tables, params, _ = fit_noise_models(sims, kind, 10, {}, 100)
    for a in range(2):
        values = sims[:, a]
        mixture = cls(em_iters=10).fit(values[~np.isnan(values)])
        np.testing.assert_array_equal(tables[a], mixture.lookup_table(100))
        np.testing.assert_array_equal(params[a], mixture.params)


def test_bad_options_fail_when_the_hook_is_built():
    with pytest.raises(ValueError, match='mixture'):
        ReSupHook(mixture='gmm')
    with pytest.raises(ValueError, match='similarity_source'):
        ReSupHook(similarity_source='epoch')
    with pytest.raises(ValueError, match='warmup_epochs'):
        ReSupHook(warmup_epochs=0)
    with pytest.raises(TypeError):
        ReSupHook(mixture_cfg=dict(alpha=(1, 2)))


def test_scores_csv_columns_and_unknowns():
    samples = dict(
        img_path=np.array(['a.jpg', 'b.jpg'], dtype=object),
        train_label=np.array([3, 1]),
        clean_label=None,
        is_noisy=None)
    sims = np.array([[np.float32(0.123456789), 0.5], [np.nan, np.nan]])
    clean = np.array([[0.25, 0.75], [np.nan, np.nan]])
    rows = list(
        csv.reader(io.StringIO(ReSupHook.scores_csv(sims, clean, samples))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1] == ['0', 'a.jpg', '3', '', '0.123456791', '0.250000',
                       '0.5', '0.750000']
    assert rows[2] == ['1', 'b.jpg', '1', '', '', '', '', '']
    assert np.float32(float(rows[1][4])) == np.float32(0.123456789)


class Faces(Dataset):
    """10 random 32x32 images whose data samples carry sample_idx, and the
    infos sample_info reads."""

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.imgs = torch.randint(0, 256, (10, 3, 32, 32), generator=gen,
                                  dtype=torch.uint8)

    def __len__(self):
        return len(self.imgs)

    def get_data_info(self, idx):
        return dict(img_path=f'{idx}.jpg', gt_label=idx % 7,
                    is_noisy=idx % 3 == 0)

    def __getitem__(self, idx):
        sample = DataSample(metainfo=dict(sample_idx=int(idx)))
        return dict(inputs=self.imgs[idx],
                    data_samples=sample.set_gt_label(idx % 7))


def tiny_resup():
    torch.manual_seed(0)
    head = dict(type='LinearClsHead', num_classes=7)
    model = MODELS.build(
        dict(type='CoTeachingClassifier',
             backbone=dict(type='ResNet', depth=18, base_channels=8,
                           stem_channels=8, out_indices=(3, )),
             networks=[dict(neck=dict(type='GlobalAveragePooling'),
                            head=head)] * 2))
    model.init_weights()
    return model


def fake_runner(tmp_path, model):
    loop = object.__new__(EpochBasedTrainLoop)  # what the hook checks
    return SimpleNamespace(
        model=model, train_loop=loop, epoch=0, work_dir=str(tmp_path),
        visualizer=SimpleNamespace(add_scalars=lambda *a, **k: None),
        train_dataloader=DataLoader(Faces(), batch_size=4,
                                    collate_fn=pseudo_collate))


@pytest.mark.parametrize('source', ['extra_pass', 'train_step'])
def test_the_hook_fits_from_the_models_bank_and_keeps_nothing(
        tmp_path, source):
    model = tiny_resup()
    runner = fake_runner(tmp_path, model)
    hook = ReSupHook(similarity_source=source)
    state_at_build = copy.deepcopy(vars(hook))
    hook.before_train(runner)
    assert model.record_similarities == (source == 'train_step')
    if source == 'train_step':
        optim_wrapper = build_optim_wrapper(
            model, dict(optimizer=dict(type='SGD', lr=0.1)))
        for data in runner.train_dataloader:
            model.train_step(data, optim_wrapper)
    hook.after_train_epoch(runner)
    # the similarities of every sample are in the model, at its index
    indices, rows = model.similarity_bank.known()
    assert indices.tolist() == list(range(10))
    if source == 'extra_pass':
        model.eval()
        data = model.data_preprocessor(
            pseudo_collate([Faces()[i] for i in range(10)]), False)
        labels = torch.tensor([i % 7 for i in range(10)])
        expected = model.eval_similarities(data['inputs'], labels).T
        torch.testing.assert_close(rows, expected)
    tables, params, _ = fit_noise_models(rows.double().numpy(), 'beta', 10,
                                         {}, 100)
    np.testing.assert_array_equal(model.lookup_tables.numpy(), tables)
    np.testing.assert_array_equal(model.mixture_params.numpy(), params)
    assert int(model.num_fits) == 1
    with open(tmp_path / 'noise_scores.csv') as f:
        assert len(f.readlines()) == 11
    # the hook only schedules: it holds what it was built with, no
    # per-sample data, and no checkpoint code of its own
    assert vars(hook) == state_at_build
    for method in ('before_save_checkpoint', 'after_load_checkpoint'):
        assert getattr(ReSupHook, method) is getattr(Hook, method)
