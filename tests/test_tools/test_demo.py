# Copyright (c) OpenMMLab. All rights reserved.
"""`make demo` (tools/demo.py) on a tiny SynthFER, run twice."""
import json
import os.path as osp
import re

from tool_runs import REPO, run

DEMO = osp.join(REPO, 'tools', 'demo.py')
# The methods' demo configs, shrunk: 28 train images in batches of 8 for
# one epoch, no worker processes.
TINY = [
    'train_cfg.max_epochs=1', 'param_scheduler.T_max=1',
    'train_dataloader.batch_size=8'
] + [
    f'{split}_dataloader.{key}'
    for split in ('train', 'val', 'test')
    for key in ('num_workers=0', 'persistent_workers=False')
]
# A headline row: method, last-epoch top-1, mean per-class, seconds, folder.
ROW = re.compile(
    r'^(baseline \(CE\)|EAC|ReSup)\s+([\d.]+)\s+([\d.]+)\s+\d+\s+(\S+)$',
    re.MULTILINE)


def _demo(tmp_path, name: str, jobs: int) -> list:
    out = run([
        DEMO, '--data-root',
        str(tmp_path / 'synthfer'), '--work-dir',
        str(tmp_path / name), '--num-train', '28', '--num-test', '14',
        '--threads', '1', '--jobs', str(jobs), '--cfg-options'
    ] + TINY).stdout
    assert 'Reference only, NOT a result' in out
    assert re.search(r'total \d+ s\.', out), out
    return ROW.findall(out)


def test_demo_prints_the_last_epoch_and_repeats_exactly(tmp_path):
    """Runs one after another, then at once in worker processes: the
    same numbers."""
    first = _demo(tmp_path, 'first', jobs=1)
    assert [row[0] for row in first] == ['baseline (CE)', 'EAC', 'ReSup']
    for method, top1, mean_class, work_dir in first:
        last = json.load(open(osp.join(work_dir,
                                       'fer_results.json')))['last_epoch']
        assert (top1, mean_class) == (f'{last["top1"]:.2f}',
                                      f'{last["mean_class_acc"]:.2f}'), method
    second = _demo(tmp_path, 'second', jobs=2)
    assert [row[:3] for row in second] == [row[:3] for row in first]
