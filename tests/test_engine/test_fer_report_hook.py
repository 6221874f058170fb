# Copyright (c) OpenMMLab. All rights reserved.
import json
import shutil
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.runner import IterBasedTrainLoop, Runner
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401
from mmfer.engine.hooks import FERReportHook
from mmfer.engine.hooks.fer_report_hook import format_confusion
from toy_fer import ToyFER


class FakeRunner(SimpleNamespace):

    def __init__(self, work_dir, resume=False):
        messages = []
        super().__init__(
            work_dir=str(work_dir), rank=0, epoch=0, _resume=resume,
            logger=SimpleNamespace(info=messages.append), messages=messages)


def evaluate(hook, runner, epoch, top1):
    runner.epoch = epoch
    hook.after_val_epoch(runner, {
        'accuracy/top1': top1,
        'single-label/recall': top1 - 5
    })


def test_headline_is_last_epoch_and_best_is_labelled(tmp_path):
    hook, runner = FERReportHook(), FakeRunner(tmp_path)
    for epoch, top1 in [(1, 50.0), (2, 80.0), (3, 70.0)]:
        evaluate(hook, runner, epoch, top1)
    hook.after_train(runner)
    text = runner.messages[-1]
    assert 'headline = LAST epoch on the test split: epoch 3: top-1 70.00%' \
        in text
    assert 'Best epoch (selected on the test split, optimistic, reference ' \
        'only): epoch 2: top-1 80.00%' in text
    result = json.load(open(tmp_path / 'fer_results.json'))
    assert result['last_epoch']['top1'] == 70.0
    assert result['best_epoch']['epoch'] == 2


def test_history_survives_resume_but_not_load_from(tmp_path):
    hook, runner = FERReportHook(), FakeRunner(tmp_path)
    evaluate(hook, runner, 1, 50.0)
    checkpoint = dict(meta=dict(epoch=2))
    hook.before_save_checkpoint(runner, checkpoint)  # saved before eval 2
    evaluate(hook, runner, 2, 60.0)
    evaluate(hook, runner, 3, 65.0)  # then the run was killed

    resumed = FERReportHook()
    resumed.after_load_checkpoint(FakeRunner(tmp_path, resume=True),
                                  checkpoint)
    assert [r['epoch'] for r in resumed.history] == [1, 2]

    fine_tune = FERReportHook()
    fine_tune.after_load_checkpoint(FakeRunner(tmp_path), checkpoint)
    assert fine_tune.history == []


def test_confusion_matrix_has_class_names():
    text = format_confusion(torch.tensor([[3, 1], [0, 4]]), ('Fear', 'Anger'))
    lines = text.splitlines()
    assert lines[0].split() == ['true\\pred', 'Fear', 'Anger']
    assert lines[1].split() == ['Fear', '3', '1']


class IterLoop(IterBasedTrainLoop):
    """Only its type matters to the hook."""

    def __init__(self):
        pass


def test_iteration_based_history_is_keyed_by_iteration(tmp_path):
    hook, runner = FERReportHook(), FakeRunner(tmp_path)
    runner._train_loop = IterLoop()
    for it, top1 in [(100, 50.0), (200, 80.0), (300, 70.0)]:
        runner.iter, runner.epoch = it, 0
        hook.after_val_epoch(runner, {'accuracy/top1': top1})
    hook.after_train(runner)
    text = runner.messages[-1]
    assert 'headline = LAST iteration on the test split: iteration 300: ' \
        'top-1 70.00%' in text
    assert 'Best iteration (selected on the test split, optimistic, ' \
        'reference only): iteration 200: top-1 80.00%' in text
    result = json.load(open(tmp_path / 'fer_results.json'))
    assert result['unit'] == 'iter' and result['headline'] == 'last_iter'
    assert result['last_iter'] == dict(iter=300, top1=70.0)
    assert result['best_iter'] == dict(iter=200, top1=80.0)
    assert [r['iter'] for r in result['history']] == [100, 200, 300]


@MODELS.register_module(force=True)
class TinyReportNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return (torch.relu(self.conv(x)), )


def iter_runner(work_dir,
                name,
                val_evaluator=dict(type='Accuracy', topk=(1, )),
                logger=None,
                **kwargs):
    loader = dict(
        dataset=ToyFER(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=4,
        num_workers=0)
    return Runner(
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='TinyReportNet'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=7, in_channels=8)),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler')),
        val_evaluator=val_evaluator,
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=6,
                       val_interval=2),
        custom_hooks=[FERReportHook()],
        default_hooks=dict(
            logger=logger,
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmpretrain',
        **kwargs)


@pytest.fixture
def clean_loggers():
    yield
    MMLogger._instance_dict.clear()


def test_iteration_based_training_and_resume(tmp_path, clean_loggers):
    """Evaluations at iterations 2, 4 and 6 are recorded under ``iter``; a
    run killed after evaluating iteration 6 and resumed from
    ``iter_4.pth`` rebuilds the same history, evaluating iteration 6 anew.
    """
    full = iter_runner(tmp_path / 'full', 'report_full')
    full.train()
    result = json.load(open(tmp_path / 'full' / 'fer_results.json'))
    assert result['unit'] == 'iter'
    assert [r['iter'] for r in result['history']] == [2, 4, 6]
    assert result['last_iter'] == result['history'][-1]
    assert all('epoch' not in r for r in result['history'])

    # the killed run: its results file already holds iteration 6
    killed = tmp_path / 'killed'
    killed.mkdir()
    shutil.copy(tmp_path / 'full' / 'iter_4.pth', killed)
    stale = dict(result, history=result['history'][:2] +
                 [dict(iter=6, top1=999.0)])
    (killed / 'fer_results.json').write_text(json.dumps(stale))
    resumed = iter_runner(killed, 'report_resumed', resume=True,
                          load_from=str(killed / 'iter_4.pth'))
    resumed.train()
    again = json.load(open(killed / 'fer_results.json'))
    assert again['history'] == result['history']
    assert again['last_iter'] == result['last_iter']


def test_confusion_matrix_stays_out_of_the_evaluation_log(
        tmp_path, clean_loggers):
    runner = iter_runner(
        tmp_path,
        'report_log',
        val_evaluator=[
            dict(type='Accuracy', topk=(1, )),
            dict(type='ConfusionMatrix')
        ],
        logger=dict(type='LoggerHook', interval=1))
    runner.train()
    log = open(runner.logger.log_file).read()
    assert 'accuracy/top1' in log and 'tensor(' not in log
    assert 'confusion_matrix/result' not in log
    assert (tmp_path / 'confusion_matrix.png').is_file()


def test_confusion_png_of_the_last_evaluation_with_class_names(
        tmp_path, monkeypatch):
    # The hook imports the drawing function when it draws.
    import mmfer.visualization.drawing as drawing
    drawn = []
    monkeypatch.setattr(drawing, 'save_confusion_png',
                        lambda *args: drawn.append(args))
    hook, runner = FERReportHook(), FakeRunner(tmp_path)
    runner.val_dataloader = SimpleNamespace(dataset=SimpleNamespace(
        metainfo=dict(classes=('Fear', 'Anger'))))
    for epoch, matrix in [(1, [[1, 1], [1, 1]]), (2, [[2, 0], [1, 1]])]:
        runner.epoch = epoch
        hook.after_val_epoch(runner, {
            'accuracy/top1': 75.0,
            'confusion_matrix/result': torch.tensor(matrix)
        })
    assert not drawn  # drawn once, at the end of training
    hook.after_train(runner)
    (matrix, classes, path, title), = drawn
    assert matrix.tolist() == [[2, 0], [1, 1]]
    assert classes == ('Fear', 'Anger')
    assert path == str(tmp_path / 'confusion_matrix.png')
    assert 'last epoch (epoch 2: top-1 75.00%)' in title


def test_confusion_png_is_written(tmp_path):
    hook, runner = FERReportHook(), FakeRunner(tmp_path)
    runner.val_dataloader = SimpleNamespace(dataset=ToyFER())
    hook.after_val_epoch(runner, {
        'accuracy/top1': 50.0,
        'confusion_matrix/result': torch.eye(7, dtype=torch.long) * 3
    })
    hook.after_train(runner)
    png = tmp_path / 'confusion_matrix.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'Confusion matrix of the last evaluation saved' in \
        runner.messages[-1]
    # without a ConfusionMatrix metric nothing is drawn
    other = tmp_path / 'other'
    other.mkdir()
    hook, runner = FERReportHook(), FakeRunner(other)
    evaluate(hook, runner, 1, 50.0)
    hook.after_train(runner)
    assert not (other / 'confusion_matrix.png').exists()
