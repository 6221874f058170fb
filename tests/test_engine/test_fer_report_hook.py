# Copyright (c) OpenMMLab. All rights reserved.
import json
from types import SimpleNamespace

import torch

from mmfer.engine.hooks import FERReportHook
from mmfer.engine.hooks.fer_report_hook import format_confusion


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
