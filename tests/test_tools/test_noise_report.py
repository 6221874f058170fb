# Copyright (c) OpenMMLab. All rights reserved.
"""noise_report.py and NoiseDetectionHook on data with known flipped labels.

The report is checked with a model whose predictions are known: the RAF-DB
replica draws a bright vertical bar at a class-dependent place, and
``BarClassifier`` predicts the class of the brightest bar, i.e. the clean
label. The flipped labels must then be exactly the top of the ranking. The
hook is checked against the report on the checkpoints of real tiny runs,
single-process and on two CPU ranks.
"""
import csv
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample

from fer_replicas import make_rafdb
from tool_runs import REPO, TRAIN, load_tool, run, run_dist, write_config

noise_report = load_tool('tools/analysis_tools/noise_report.py')

NUM_TRAIN = 70
BAR_CONFIG = """
_base_ = ['{repo}/configs/_base_/datasets/synthfer.py']
model = dict(type='BarClassifier')
train_dataloader = dict(dataset=dict(
    data_root='{root}', noise_rate=0.3, noise_type='symmetric',
    noise_seed=0))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{root}'))
test_dataloader = val_dataloader
"""
HOOK = "[dict(type='NoiseDetectionHook')]"
METRIC_KEYS = ('precision', 'recall', 'f1', 'auroc', 'memorisation')


@MODELS.register_module(force=True)
class BarClassifier(BaseModel):
    """Predicts the class whose bar band (1/7 of the width) is brightest."""

    def __init__(self, data_preprocessor=None):
        preprocessor = dict(data_preprocessor or {})
        preprocessor.setdefault('type', 'FERDataPreprocessor')
        super().__init__(data_preprocessor=MODELS.build(preprocessor))
        self.sharpness = nn.Parameter(torch.tensor(4.0))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        columns = inputs.mean(dim=(1, 2))
        width = columns.size(1)
        logits = self.sharpness * torch.stack([
            columns[:, c * width // 7:(c + 1) * width // 7].mean(dim=1)
            for c in range(7)
        ], dim=1)
        if mode == 'tensor':
            return logits
        samples = data_samples or [DataSample() for _ in logits]
        for sample, score in zip(samples, logits.softmax(dim=1)):
            sample.set_pred_score(score).set_pred_label(score.argmax())
        return samples


@pytest.fixture(scope='module')
def replica(tmp_path_factory):
    return make_rafdb(
        str(tmp_path_factory.mktemp('rafdb') / 'rafdb'),
        num_train=NUM_TRAIN,
        num_test=7)


@pytest.fixture
def bar_run(tmp_path, replica):
    """A config and a checkpoint of BarClassifier."""
    config = tmp_path / 'bar.py'
    config.write_text(BAR_CONFIG.format(repo=REPO, root=replica))
    checkpoint = str(tmp_path / 'bar.pth')
    torch.save({'state_dict': BarClassifier().state_dict(), 'meta': {}},
               checkpoint)
    return str(config), checkpoint


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def train_truth(config):
    """The training labels and noise flags, from the dataset itself."""
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return (np.array([i['gt_label'] for i in infos]),
            np.array([i['is_noisy'] for i in infos]))


def pairwise_auroc(scores, targets):
    pos = [s for s, t in zip(scores, targets) if t]
    neg = [s for s, t in zip(scores, targets) if not t]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos
               for n in neg)
    return wins / (len(pos) * len(neg))


def test_flipped_labels_rank_first(tmp_path, bar_run):
    config, checkpoint = bar_run
    out = tmp_path / 'report'
    summary = noise_report.main(
        [config, checkpoint, '--out', str(out), '--top-k', '6'])
    labels, is_noisy = train_truth(config)
    num_noisy = int(is_noisy.sum())
    assert 10 < num_noisy < 35  # 30 % of 70, seeded

    rows = read_csv(out / 'label_issues.csv')
    assert list(rows[0]) == list(noise_report.CSV_COLUMNS +
                                 noise_report.TRUTH_COLUMNS)
    assert [int(r['rank']) for r in rows] == list(range(1, NUM_TRAIN + 1))
    assert sorted(int(r['sample_idx']) for r in rows) == list(
        range(NUM_TRAIN))
    scores = [float(r['score']) for r in rows]
    assert scores == sorted(scores, reverse=True)
    # the model predicts the clean class: the flipped labels lead
    top = {int(r['sample_idx']) for r in rows[:num_noisy]}
    assert top == set(np.flatnonzero(is_noisy))
    for r in rows:
        i = int(r['sample_idx'])
        assert int(r['given_label']) == labels[i]
        assert r['pred_class'] == r['clean_class']
        assert float(r['score']) == pytest.approx(
            1 - float(r['p_given']), abs=2e-6)
        assert float(r['confidence']) >= float(r['p_given'])
        assert (r['flagged'] == 'True') == (float(r['p_given']) < 0.5)
        assert osp.isfile(r['img_path'])

    auroc = pairwise_auroc(
        [float(r['score']) for r in rows],
        [r['is_noisy'] == 'True' for r in rows])
    assert summary['metrics']['auroc'] == pytest.approx(auroc)
    assert auroc == 1.0
    assert summary['metrics']['memorisation'] == 0.0
    assert summary['metrics']['precision'] == summary['metrics'][
        'recall'] == 1.0
    assert summary['num_noisy'] == num_noisy
    assert json.loads((out / 'summary.json').read_text()) == summary
    assert (summary['split'], summary['pipeline'],
            summary['score']) == ('train', 'test', 'self_confidence')

    per_class = read_csv(out / 'class_summary.csv')
    assert len(per_class) == 7
    for c, entry in enumerate(per_class):
        mine = labels == c
        assert int(entry['num_samples']) == mine.sum()
        assert int(entry['num_flagged']) == (mine & is_noisy).sum()
        assert int(entry['num_noisy']) == (mine & is_noisy).sum()

    png = cv2.imread(str(out / 'suspects.png'))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100


def test_margin_score(tmp_path, bar_run):
    config, checkpoint = bar_run
    summary = noise_report.main([
        config, checkpoint, '--out',
        str(tmp_path / 'margin'), '--score', 'margin', '--top-k', '0'
    ])
    rows = read_csv(tmp_path / 'margin' / 'label_issues.csv')
    assert summary['score'] == 'margin'
    assert summary['metrics']['auroc'] == 1.0
    assert not (tmp_path / 'margin' / 'suspects.png').exists()
    # a margin score above 0.5 (flagged) means another class is preferred
    for r in rows:
        assert (r['flagged'] == 'True') == (r['pred_label'] !=
                                            r['given_label'])


def test_errors(tmp_path, bar_run, replica, capsys):
    config, checkpoint = bar_run
    with pytest.raises(SystemExit) as exc:
        noise_report.parse_args(['--help'])
    assert exc.value.code == 0
    assert '--top-k' in capsys.readouterr().out

    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth not found'):
        noise_report.main([config, missing, '--out', str(tmp_path / 'o')])

    # a checkpoint of another model: the message names both
    baseline = osp.join(REPO, 'configs', 'baseline',
                        'r18_synthfer_noise30.py')
    cfg = Config.fromfile(baseline)
    other = MODELS.build(dict(cfg.model, data_preprocessor=dict(
        type='FERDataPreprocessor', **cfg.data_preprocessor)))
    wrong = str(tmp_path / 'resnet.pth')
    torch.save(
        {
            'state_dict': other.state_dict(),
            'meta': {
                'cfg': cfg.pretty_text
            }
        }, wrong)
    with pytest.raises(ValueError) as err:
        noise_report.main([config, wrong, '--out', str(tmp_path / 'o')])
    text = str(err.value)
    for part in ('resnet.pth', cfg.model.type, config, 'BarClassifier'):
        assert part in text

    # an unreadable training image
    broken = make_rafdb(str(tmp_path / 'broken'), num_train=14, num_test=7)
    path = osp.join(broken, 'Image', 'aligned', 'train_00003_aligned.jpg')
    with open(path, 'wb') as f:
        f.write(b'not an image')
    broken_cfg = tmp_path / 'broken.py'
    broken_cfg.write_text(BAR_CONFIG.format(repo=REPO, root=broken))
    with pytest.raises(OSError, match='train_00003_aligned.jpg'):
        noise_report.main(
            [str(broken_cfg), checkpoint, '--out',
             str(tmp_path / 'o')])


def hook_scalars(work_dir, epoch):
    """The hook's figures of ``epoch`` in the run's scalars.json."""
    [stamp] = [d for d in sorted(os.listdir(work_dir))
               if osp.isdir(osp.join(work_dir, d))]
    path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
    with open(path) as f:
        records = [json.loads(line) for line in f]
    found = [r for r in records if 'noise/auroc' in r and r['step'] == epoch]
    assert len(found) == 1, records
    return found[0]


def report_metrics(config, checkpoint, out):
    return noise_report.main(
        [config, checkpoint, '--out', out, '--batch-size', '8',
         '--top-k', '0'])['metrics']


@pytest.fixture(scope='module')
def odd_replica(tmp_path_factory):
    """29 training images: two ranks need one repeat to even out."""
    return make_rafdb(
        str(tmp_path_factory.mktemp('odd') / 'rafdb'), num_train=29,
        num_test=7)


def test_hook_logs_what_the_report_computes(tmp_path, odd_replica):
    config = write_config(
        tmp_path, odd_replica, epochs=2, hooks=HOOK, name='hook.py')
    work = str(tmp_path / 'work')
    proc = run([TRAIN, config, '--work-dir', work],
               env={'OMP_NUM_THREADS': '1'})
    assert 'of 29 training samples' in proc.stdout + proc.stderr
    for epoch in (1, 2):
        logged = hook_scalars(work, epoch)
        expected = report_metrics(config, osp.join(work,
                                                   f'epoch_{epoch}.pth'),
                                  str(tmp_path / f'r{epoch}'))
        for key in METRIC_KEYS:
            value = expected[key]
            if np.isnan(value):
                assert np.isnan(logged[f'noise/{key}'])
            else:
                assert logged[f'noise/{key}'] == pytest.approx(
                    value, abs=1e-6), key


def test_hook_under_ddp_counts_each_sample_once(tmp_path, odd_replica):
    config = write_config(
        tmp_path, odd_replica, epochs=1, hooks=HOOK, name='ddp.py')
    work = str(tmp_path / 'work')
    proc = run_dist('dist_train.sh', [config, '2', '--work-dir', work])
    assert 'of 29 training samples' in proc.stdout + proc.stderr
    logged = hook_scalars(work, 1)
    expected = report_metrics(config, osp.join(work, 'epoch_1.pth'),
                              str(tmp_path / 'r'))
    for key in METRIC_KEYS:
        if not np.isnan(expected[key]):
            assert logged[f'noise/{key}'] == pytest.approx(
                expected[key], abs=1e-6), key


def test_suspect_captions_rank_and_mark_known_noise():
    row = dict(rank=3, given_class='Fear', pred_class='Happiness',
               p_given=3.14159e-5, score=1 - 3.14159e-5)
    text, color = noise_report.suspect_caption(row)
    # 1 - p(given) would print as 1.00; p(given) keeps 3 digits
    assert '#3 Fear -> Happiness' in text and 'p(given) 3.14e-05' in text
    assert color == 'black'
    noisy, color = noise_report.suspect_caption(
        dict(row, is_noisy=True, clean_class='Happiness'))
    assert 'NOISY (clean: Happiness)' in noisy and color == 'red'
    clean, color = noise_report.suspect_caption(
        dict(row, is_noisy=False, clean_class='Fear'))
    assert 'clean label' in clean and color == 'green'
