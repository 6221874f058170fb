# Copyright (c) OpenMMLab. All rights reserved.
"""plot_curves.py: loss and test accuracy per epoch of several runs."""
import json
import os.path as osp

import pytest
from PIL import Image

from fer_replicas import make_rafdb
from tool_runs import TRAIN, load_tool, run, write_config

plot_curves = load_tool('tools/analysis_tools/plot_curves.py')


def write_log(work_dir, stamp, records):
    folder = work_dir / stamp / 'vis_data'
    folder.mkdir(parents=True)
    (folder / 'scalars.json').write_text(
        ''.join(json.dumps(r) + '\n' for r in records))


def train(epoch, step, loss):
    return dict(lr=0.1, loss=loss, epoch=epoch, iter=step, step=step)


def test_loss_is_the_mean_per_epoch_and_accuracy_comes_from_the_log(
        tmp_path):
    write_log(tmp_path, '20240101_000000', [
        train(1, 1, 3.0), train(1, 2, 2.0), dict(**{
            'accuracy/top1': 40.0, 'single-label/recall': 30.0}, step=1),
        train(2, 3, 1.5), train(2, 4, 0.5), train(2, 5, 1.0),
        dict(**{'accuracy/top1': 50.0}, step=2)
    ])
    run_ = plot_curves.read_run(str(tmp_path))
    assert run_['loss'] == {1: 2.5, 2: 1.0}
    assert run_['top1'] == {1: 40.0, 2: 50.0}
    assert run_['mean_class_acc'] == {1: 30.0}
    assert run_['unit'] == 'epoch'


def test_resumed_run_is_joined_and_a_fresh_one_is_not(tmp_path):
    resumed = tmp_path / 'resumed'
    write_log(resumed, '20240101_000000',
              [train(1, 1, 4.0), train(2, 2, 3.0), train(3, 3, 9.0)])
    # resumed from epoch_2.pth: epoch 3 is trained again
    write_log(resumed, '20240102_000000', [train(3, 3, 2.0),
                                           train(4, 4, 1.0)])
    assert plot_curves.read_run(str(resumed))['loss'] == {
        1: 4.0, 2: 3.0, 3: 2.0, 4: 1.0}

    fresh = tmp_path / 'fresh'
    write_log(fresh, '20240101_000000', [train(e, e, 5.0) for e in (1, 2)])
    write_log(fresh, '20240102_000000', [train(1, 1, 1.0)])
    assert plot_curves.read_run(str(fresh))['loss'] == {1: 1.0}


def test_fer_results_give_the_accuracy(tmp_path):
    write_log(tmp_path, '20240101_000000', [train(1, 1, 1.0)])
    (tmp_path / 'fer_results.json').write_text(json.dumps(dict(
        unit='epoch', history=[dict(epoch=1, top1=10.0, mean_class_acc=9.0),
                               dict(epoch=2, top1=20.0)])))
    run_ = plot_curves.read_run(str(tmp_path))
    assert run_['top1'] == {1: 10.0, 2: 20.0}
    assert run_['mean_class_acc'] == {1: 9.0}


def test_work_dir_without_logs_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='holds no training log'):
        plot_curves.read_run(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='not found'):
        plot_curves.read_run(str(tmp_path / 'absent'))


def test_labels(tmp_path):
    for name, config in (('a', 'eac'), ('b', 'baseline')):
        (tmp_path / name).mkdir()
        (tmp_path / name / f'{config}.py').write_text('')
    dirs = [str(tmp_path / 'a'), str(tmp_path / 'b')]
    assert plot_curves.run_labels(dirs, None) == ['eac', 'baseline']
    (tmp_path / 'b' / 'eac.py').write_text('')
    (tmp_path / 'b' / 'baseline.py').unlink()
    assert plot_curves.run_labels(dirs, None) == ['a', 'b']
    assert plot_curves.run_labels(dirs, ['x', 'y']) == ['x', 'y']
    with pytest.raises(ValueError, match='one label per work dir'):
        plot_curves.run_labels(dirs, ['x'])


def test_trained_run_beside_another_on_one_figure(tmp_path, capsys):
    """A tiny run of tools/train.py (its curves and, from FERReportHook,
    the confusion matrix PNG) beside a hand-written run."""
    data = make_rafdb(str(tmp_path / 'rafdb'))
    config = write_config(tmp_path, data, 'baseline', epochs=2)
    trained = str(tmp_path / 'work_baseline')
    run([TRAIN, config, '--work-dir', trained])
    assert Image.open(osp.join(trained, 'confusion_matrix.png')).size[0] > 100
    assert plot_curves.read_run(trained)['loss'].keys() == {1, 2}
    assert plot_curves.read_run(trained)['top1'].keys() == {1, 2}

    other = tmp_path / 'work_other'
    write_log(other, '20240101_000000', [train(1, 1, 2.0), train(2, 2, 1.0)])
    out = str(tmp_path / 'plots' / 'curves.png')
    assert plot_curves.main([trained, str(other), '--out', out]) == out
    width, height = Image.open(out).size
    assert width > 2 * height > 0
    assert plot_curves.run_labels([trained, str(other)], None) == [
        'baseline', 'work_other']
    with pytest.raises(SystemExit) as exit_info:
        plot_curves.parse_args(['--help'])
    assert exit_info.value.code == 0
    assert 'work_dirs' in capsys.readouterr().out
