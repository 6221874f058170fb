# Copyright (c) OpenMMLab. All rights reserved.
"""``exit_distributed``: how the tools end a distributed process."""
import subprocess
import sys
import textwrap

from tool_runs import REPO, free_port

SCRIPT = textwrap.dedent('''
    import atexit, os, sys
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from mmfer.utils.dist_utils import exit_distributed

    out = sys.argv[1]
    atexit.register(lambda: open(out + '/atexit', 'w').close())
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:{port}',
                            rank=0, world_size=1)
    # a DDP wrapper keeps the process group alive past its destruction,
    # as the runner's does
    model = DistributedDataParallel(torch.nn.Linear(2, 2))
    dist.broadcast(torch.ones(3), src=0)
    print('trained', flush=False)  # exit_distributed flushes
    exit_distributed()
    open(out + '/after', 'w').close()
''')


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / 'script.py'
    script.write_text(body)
    return subprocess.run([sys.executable, str(script), str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO,
                          env=dict(PYTHONPATH=REPO, OMP_NUM_THREADS='1',
                                   PATH='/usr/bin:/bin'))


def test_exit_distributed_runs_exit_handlers_and_leaves_with_0(tmp_path):
    proc = run_script(tmp_path, SCRIPT.format(port=free_port()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == 'trained'
    assert (tmp_path / 'atexit').exists()  # log files flushed, workers ended
    assert not (tmp_path / 'after').exists()  # nothing runs after it


def test_exit_distributed_without_process_group_returns(tmp_path):
    proc = run_script(
        tmp_path, 'from mmfer.utils.dist_utils import exit_distributed\n'
        'exit_distributed()\nprint("returned")\n')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == 'returned'
