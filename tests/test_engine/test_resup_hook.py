# Copyright (c) OpenMMLab. All rights reserved.
"""ReSupHook's parts: fitting, CSV. Sharding and merging by sample index
are in tests/test_utils/test_sample_dist_utils.py; training runs (2
processes, resume) in tests/test_tools/test_resup_runs.py."""
import csv
import io

import numpy as np
import pytest

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
    hook = ReSupHook()
    hook.samples = dict(
        img_path=np.array(['a.jpg', 'b.jpg'], dtype=object),
        train_label=np.array([3, 1]),
        clean_label=None,
        is_noisy=None)
    sims = np.array([[np.float32(0.123456789), 0.5], [np.nan, np.nan]])
    clean = np.array([[0.25, 0.75], [np.nan, np.nan]])
    rows = list(csv.reader(io.StringIO(hook.scores_csv(sims, clean))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1] == ['0', 'a.jpg', '3', '', '0.123456791', '0.250000',
                       '0.5', '0.750000']
    assert rows[2] == ['1', 'b.jpg', '1', '', '', '', '', '']
    assert np.float32(float(rows[1][4])) == np.float32(0.123456789)
