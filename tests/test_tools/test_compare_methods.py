# Copyright (c) OpenMMLab. All rights reserved.
"""compare_methods.py: the plan of runs over training and noise seeds."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import DATASETS

from fer_replicas import make_rafdb
from tool_runs import REPO, load_tool

cm = load_tool('tools/analysis_tools/compare_methods.py')

SEEDED = """
_base_ = ['{repo}/configs/_base_/datasets/rafdb.py']
train_dataloader = dict(dataset=dict(
    data_root='{root}', noise_rate=0.3, noise_type='symmetric',
    noise_seed=0))
"""
FROM_FILE = """
_base_ = ['{repo}/configs/_base_/datasets/rafdb.py']
train_dataloader = dict(dataset=dict(
    data_root='{root}', noise_file='EmoLabel/noise03.txt'))
"""
WRAPPED = """
_base_ = ['{repo}/configs/_base_/datasets/rafdb.py']
train_dataloader = dict(dataset=dict(
    _delete_=True, type='RepeatDataset', times=2,
    dataset=dict(type='RAFDBDataset', data_root='{root}', split='train',
                 noise_rate=0.3)))
"""


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_rafdb(
        str(tmp_path_factory.mktemp('rafdb') / 'rafdb'),
        num_train=70,
        num_test=7)


def write(tmp_path, name, text, root):
    path = tmp_path / name
    path.write_text(text.format(repo=REPO, root=root))
    return str(path)


def test_plan_crosses_training_and_noise_seeds(tmp_path, data_root):
    config = write(tmp_path, 'seeded.py', SEEDED, data_root)
    plan = cm.plan_runs([config], [0, 1], '/w', {'a': 1}, [5, 6])
    assert [(r['seed'], r['noise_seed']) for r in plan] == \
        [(0, 5), (0, 6), (1, 5), (1, 6)]
    assert plan[1]['options'] == {
        'a': 1,
        'randomness.seed': 0,
        'train_dataloader.dataset.noise_seed': 6
    }
    assert plan[1]['work_dir'] == osp.join('/w', 'seeded', 'seed0_noise6')
    paired = cm.plan_runs([config], [0, 1], '/w', {}, [5, 6], paired=True)
    assert [(r['seed'], r['noise_seed']) for r in paired] == [(0, 5), (1, 6)]
    # without --noise-seeds the config's noise draw is left alone
    fixed = cm.plan_runs([config], [0, 1], '/w', {})
    assert [r['options'] for r in fixed] == [{'randomness.seed': 0},
                                             {'randomness.seed': 1}]
    assert fixed[0]['work_dir'] == osp.join('/w', 'seeded', 'seed0')


def test_noise_seed_reaches_the_dataset(tmp_path, data_root):
    config = write(tmp_path, 'seeded.py', SEEDED, data_root)
    labels = {}
    for run in cm.plan_runs([config], [0, 1], '/w', {}, [0, 1]):
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(run['options'])
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        labels[run['seed'], run['noise_seed']] = [
            dataset.get_data_info(i)['gt_label'] for i in range(70)
        ]
    # the noise draw follows the noise seed, not the training seed
    assert labels[0, 0] == labels[1, 0] and labels[0, 1] == labels[1, 1]
    assert labels[0, 0] != labels[0, 1]


def test_wrapped_dataset_gets_the_noise_seed(tmp_path, data_root):
    config = write(tmp_path, 'wrapped.py', WRAPPED, data_root)
    plan = cm.plan_runs([config], [0], '/w', {}, [3])
    assert plan[0]['options'][
        'train_dataloader.dataset.dataset.noise_seed'] == 3


def test_noise_seeds_refused_where_they_change_nothing(tmp_path, data_root):
    config = write(tmp_path, 'from_file.py', FROM_FILE, data_root)
    with pytest.raises(ValueError, match='from_file.py.*noise_file'):
        cm.plan_runs([config], [0], '/w', {}, [0, 1])
    clean = write(tmp_path, 'seeded.py', SEEDED, data_root)
    with pytest.raises(ValueError, match='noise_rate=0'):
        cm.plan_runs([clean], [0], '/w',
                     {'train_dataloader.dataset.noise_rate': 0}, [0, 1])
    with pytest.raises(ValueError, match=r'as many --seeds \(\[0, 1\]\)'):
        cm.plan_runs([clean], [0, 1], '/w', {}, [0, 1, 2], paired=True)


def test_label_says_what_was_varied():
    assert cm.spread_label([0, 1, 2]) == (
        'training seeds [0, 1, 2] (3 runs per config); noise draw fixed '
        "(each config's noise_seed or noise file)")
    assert cm.spread_label([0, 1], [0, 1]) == (
        'training seeds [0, 1] x noise seeds [0, 1] (4 runs per config)')
    assert cm.spread_label([0, 1], [2, 3], paired=True) == (
        'training seeds [0, 1] paired with noise seeds [2, 3] '
        '(2 runs per config)')


def test_main_summarises_every_combination(tmp_path, data_root, monkeypatch,
                                           capsys):
    config = write(tmp_path, 'seeded.py', SEEDED, data_root)
    calls = []

    def fake_train_and_test(cfg_path, work_dir, options):
        seed = options['randomness.seed']
        noise = options['train_dataloader.dataset.noise_seed']
        calls.append((seed, noise))
        return {cm.TOP1: 50 + seed + 10 * noise, cm.MEAN_CLASS: 40 + noise}

    monkeypatch.setattr(cm, 'train_and_test', fake_train_and_test)
    work = tmp_path / 'work'
    work.mkdir()
    cm.main([
        '--configs', config, '--seeds', '0', '1', '--noise-seeds', '0', '2',
        '--work-dir',
        str(work)
    ])
    assert calls == [(0, 0), (0, 2), (1, 0), (1, 2)]
    out = capsys.readouterr().out
    assert ('mean +- sample std over training seeds [0, 1] x noise seeds '
            '[0, 2] (4 runs per config)') in out
    result = json.loads((work / 'compare_methods.json').read_text())
    # top-1: 50, 70, 51, 71 -> mean 60.5, sample std sqrt(401 / 3)
    top1 = result['summary']['seeded']['top1']
    assert top1['n'] == 4 and top1['mean'] == pytest.approx(60.5)
    assert top1['std'] == pytest.approx((401 / 3)**0.5)
    assert result['spread']['noise_seeds'] == [0, 2]
    assert [r['noise_seed'] for r in result['runs']['seeded']] == [0, 2, 0, 2]


def test_paired_without_noise_seeds_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        cm.parse_args(['--configs', 'a.py', '--paired'])


def test_real_runs_draw_their_own_noise(tmp_path):
    """Two one-epoch runs of the SynthFER baseline recipe on a replica:
    each run trains on the noisy labels of its noise seed."""
    from tool_runs import run, write_config
    root = make_rafdb(str(tmp_path / 'rafdb'))
    config = write_config(tmp_path, root, 'baseline', epochs=1)
    work = tmp_path / 'work'
    out = run([
        cm.__file__, '--configs', config, '--seeds', '0', '--noise-seeds',
        '0', '1', '--work-dir',
        str(work)
    ]).stdout
    assert ('over training seeds [0] x noise seeds [0, 1] (2 runs per '
            'config)') in out
    result = json.loads((work / 'compare_methods.json').read_text())
    runs = result['runs']['baseline']
    assert [(r['seed'], r['noise_seed']) for r in runs] == [(0, 0), (0, 1)]
    drawn = []
    for record in runs:
        # the config each runner trained with, as mmengine dumped it
        cfg = Config.fromfile(osp.join(record['work_dir'], 'baseline.py'))
        dataset_cfg = cfg.train_dataloader.dataset
        assert dataset_cfg.noise_seed == record['noise_seed']
        dataset = DATASETS.build(dataset_cfg)
        drawn.append([
            dataset.get_data_info(i)['gt_label']
            for i in range(len(dataset))
        ])
    assert drawn[0] != drawn[1]


def test_lanet_recipe_runs_with_its_noise_seed(tmp_path):
    """One one-epoch run of LA-Net's SynthFER recipe on a replica (batch 14:
    LA-Net needs more samples than its 8 neighbours, and its queue of 1,344
    keys takes whole batches): the run trains LA-Net on the labels of the
    noise seed; its history bank starts every sample at the one-hot noisy
    label, so after one visit each row peaks at that label."""
    from tool_runs import run, weights, write_config
    root = make_rafdb(str(tmp_path / 'rafdb'))
    config = write_config(tmp_path, root, 'lanet', epochs=1)
    work = tmp_path / 'work'
    run([
        cm.__file__, '--configs', config, '--seeds', '0', '--noise-seeds',
        '1', '--work-dir',
        str(work), '--cfg-options', 'train_dataloader.batch_size=14'
    ])
    result = json.loads((work / 'compare_methods.json').read_text())
    (record, ) = result['runs']['lanet']
    assert (record['seed'], record['noise_seed']) == (0, 1)
    assert 0 <= record['top1'] <= 100
    cfg = Config.fromfile(osp.join(record['work_dir'], 'lanet.py'))
    assert cfg.model.type == 'LANetClassifier'
    assert cfg.train_dataloader.dataset.noise_seed == 1
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    infos = [dataset.get_data_info(i) for i in range(28)]
    noisy = [info['gt_label'] for info in infos]
    # the bank follows the noisy labels, not the clean ones
    assert any(info['is_noisy'] for info in infos)
    state = weights(osp.join(record['work_dir'], 'epoch_1.pth'))
    assert state['label_history.seen'][:28].all()
    history = state['label_history.rows'][:28]
    assert history.argmax(dim=1).tolist() == noisy
    assert history.max(dim=1).values.min() >= 0.9


def test_a_config_listed_twice_is_refused_before_any_run(tmp_path):
    with pytest.raises(SystemExit,
                       match='compare_methods: error: --configs lists a '
                       'config twice'):
        cm.main(['--configs', 'a.py', 'a.py', '--work-dir',
                 str(tmp_path / 'work')])
