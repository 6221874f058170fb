# Copyright (c) OpenMMLab. All rights reserved.
"""How the tools start and end a distributed CPU (gloo) process."""
import json
import subprocess
import textwrap

from tool_runs import free_port, run

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
    return run([str(script), str(tmp_path)],
               env=dict(OMP_NUM_THREADS='1'),
               check=False)


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


WRAPPER_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from mmengine.config import Config
    from mmfer.utils.dist_utils import setup_cpu_distributed

    os.environ.update(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                      MASTER_ADDR='127.0.0.1', MASTER_PORT='{port}')
    wrappers = []
    for extra in ({{}}, dict(find_unused_parameters=True),
                  dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                              broadcast_buffers=True))):
        cfg = Config(dict(launcher='pytorch', **extra))
        assert setup_cpu_distributed(cfg)
        wrappers.append(cfg.model_wrapper_cfg.to_dict())
    print(json.dumps(wrappers))
''')


def test_cpu_wrapper_is_the_one_mmengine_builds_on_gpus(tmp_path):
    """Without a configured wrapper, CPU (gloo) DDP gets mmengine's GPU
    defaults, so that CPU runs show what GPU runs do: no buffer broadcast
    (each rank keeps its BatchNorm statistics) and the config's
    find_unused_parameters; a configured wrapper keeps its own keys."""
    proc = run_script(tmp_path, WRAPPER_SCRIPT.format(port=free_port()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    default, unused, configured = json.loads(proc.stdout.splitlines()[-1])
    assert default == dict(type='MMDistributedDataParallel',
                           broadcast_buffers=False,
                           find_unused_parameters=False, device_ids=None)
    assert unused['find_unused_parameters'] is True
    assert configured == dict(type='MMDistributedDataParallel',
                              broadcast_buffers=True, device_ids=None)
