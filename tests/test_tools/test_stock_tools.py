# Copyright (c) OpenMMLab. All rights reserved.
"""mmpretrain's stock tools on one config of every method: the configs'
``custom_imports`` and ``default_scope`` are all they need."""
import json
import os.path as osp

import pytest

from fer_replicas import make_rafdb
from tool_runs import run, write_config

METHODS = ('baseline', 'eac', 'gsmc', 'resup', 'lanet')
# Runs the stock scripts one after the other in one process (one start-up
# of torch per method), each as ``python <script> <args>`` would.
DRIVER = """
import runpy, sys
import mmpretrain, os.path as osp
TOOLS = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
for script, *args in {calls!r}:
    sys.argv = [script] + args
    print(f'=== {{script}}', flush=True)
    runpy.run_path(osp.join(TOOLS, script), run_name='__main__')
"""


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_rafdb(str(tmp_path_factory.mktemp('data') / 'rafdb'))


@pytest.mark.parametrize('method', METHODS)
def test_stock_tools_run_every_method(tmp_path, data_root, method):
    cfg = write_config(tmp_path, data_root, method, epochs=1)
    if method == 'lanet':
        # its label-distribution estimator needs more than k=8 samples
        with open(cfg, 'a') as f:
            f.write("train_dataloader['batch_size'] = 12\n")
    work, test_work = str(tmp_path / 'work'), str(tmp_path / 'test')
    browse = ['--not-show', '-n', '2']
    calls = [
        ('misc/print_config.py', cfg),
        ('visualization/browse_dataset.py', cfg, '-o',
         str(tmp_path / 'browse'), *browse),
        ('visualization/browse_dataset.py', cfg, '-m', 'pipeline', '-o',
         str(tmp_path / 'pipeline'), *browse),
        ('analysis_tools/get_flops.py', cfg, '--shape', '64'),
        ('train.py', cfg, '--work-dir', work, '--no-persistent-workers'),
        ('test.py', cfg, osp.join(work, 'epoch_1.pth'), '--work-dir',
         test_work),
    ]
    out = run(['-c', DRIVER.format(calls=calls)]).stdout
    assert out.count('=== ') == len(calls)
    for folder in ('browse', 'pipeline'):
        assert len(list((tmp_path / folder).glob('*.jpg'))) == 2, folder
    # get_flops counts the predicting network (as the ONNX export runs it)
    flops = out.split('=== analysis_tools/get_flops.py')[1]
    assert 'Flops:' in flops and 'Params:' in flops
    # the stock test reproduces the last training epoch's accuracy
    top1 = float(out.split('accuracy/top1: ')[-1].split()[0])
    last = json.load(open(osp.join(work, 'fer_results.json')))['last_epoch']
    assert top1 == pytest.approx(last['top1'], abs=1e-4)
