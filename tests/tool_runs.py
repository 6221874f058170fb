# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers for tests that run our tools as a user does, in subprocesses."""
import importlib.util
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import tempfile
from types import ModuleType

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(REPO, 'tests')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
# A method's SynthFER recipe on a tiny RAF-DB replica (28 train images,
# batch 8 -> 4 iterations per epoch), deterministic, with the test-only
# KillAtIterHook that simulates a crash when MMFER_KILL_AT_ITER is set.
# `drop_path` > 0 gives the backbone randomness of its own (stochastic
# depth), drawn in the main process.
ITERS_PER_EPOCH = 4
CONFIG = """
_base_ = ['{repo}/configs/{method}/r18_synthfer_noise30{variant}.py']
custom_imports = dict(
    imports=['mmfer', 'fer_test_hooks'], allow_failed_imports=False)
custom_hooks = [
    dict(type='FERReportHook'),
    dict(type='EpochSeedHook'),
    dict(type='KillAtIterHook'),
] + {extra_hooks}
train_dataloader = dict(
    batch_size=8, num_workers={workers}, persistent_workers={persistent},
    dataset=dict(data_root='{root}'))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs={epochs})
randomness = dict(seed=0, deterministic=True)
default_hooks = dict(logger=dict(interval=1))
{model}"""
EXTRA_HOOKS = dict(
    gsmc="[dict(type='MeanTeacherHook')]",
    lanet="[dict(type='MeanTeacherHook')]",
    resup="[dict(type='ReSupHook')]")


def config_text(data_root: str, method: str = 'baseline', epochs: int = 3,
                workers: int = 0, persistent: bool = False,
                drop_path: float = 0.0, hooks: str = None,
                variant: str = '') -> str:
    """The text of a tiny training config for ``method``; ``hooks`` (a
    list's source text) replaces the method's own hooks; ``variant`` names
    another SynthFER recipe of the method (``'_device-aug'``)."""
    return CONFIG.format(
        repo=REPO, method=method, variant=variant, root=data_root,
        epochs=epochs,
        workers=workers, persistent=persistent,
        extra_hooks=hooks or EXTRA_HOOKS.get(method, '[]'),
        model=(f'model = dict(backbone=dict(drop_path_rate={drop_path}))\n'
               if drop_path else ''))


def write_config(tmp_path, data_root: str, method: str = 'baseline',
                 name: str = None, **kwargs) -> str:
    """Write :func:`config_text` to ``tmp_path / name``; return its path."""
    path = tmp_path / (name or f'{method}.py')
    path.write_text(config_text(data_root, method, **kwargs))
    return str(path)


def load_tool(path: str) -> ModuleType:
    """Import a tool script, to test its functions.

    Args:
        path (str): The script, relative to the repo root, e.g.
            ``'tools/analysis_tools/plot_curves.py'``.

    Returns:
        module: The script as module ``tool_<file name>``, which is added to
        ``sys.modules`` (pickling its functions needs it).
    """
    name = 'tool_' + osp.splitext(osp.basename(path))[0]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name,
                                                      osp.join(REPO, path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def run(args, env=None, check=True) -> subprocess.CompletedProcess:
    """Run ``python *args`` from the repo root with tests/ importable."""
    full_env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + REPO)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable] + list(args), capture_output=True,
                          text=True, env=full_env, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def run_killed(args, env=None) -> subprocess.CompletedProcess:
    """Run ``python *args``, a training that kills itself (KillAtIterHook),
    like :func:`run`; return once its main process died.

    A data-loading worker whose batch does not fit in the pipe buffer
    (64 KiB; e.g. LA-Net's heatmaps, which mmpretrain pickles inline) waits
    for the dead main process to read it and never exits. The run gets a
    session of its own and its output goes to files, so that the orphaned
    workers neither keep the pipes of :func:`run` open nor outlive the run:
    they are killed with the session's process group, as a job scheduler
    ends a crashed job.

    Args:
        args (Sequence[str]): The arguments of ``python``.
        env (dict, optional): Extra environment variables.

    Returns:
        subprocess.CompletedProcess: The run, with its exit status
        (``-9`` for a SIGKILL) and output.
    """
    full_env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + REPO)
    full_env.update(env or {})
    with tempfile.TemporaryFile('w+') as out, \
            tempfile.TemporaryFile('w+') as err:
        proc = subprocess.Popen([sys.executable] + list(args), stdout=out,
                                stderr=err, env=full_env, cwd=REPO,
                                start_new_session=True)
        returncode = proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # no worker outlived the run
            pass
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, returncode, out.read(),
                                           err.read())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free when this returns."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _gloo_process(rank: int, fn, port: int, world_size: int,
                  out_dir: str) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world_size)
    try:
        fn(rank, world_size, out_dir)
    finally:
        dist.destroy_process_group()


def spawn_gloo(fn, world_size: int, out_dir) -> None:
    """Run ``fn(rank, world_size, out_dir)`` in ``world_size`` processes
    joined by a CPU (gloo) process group; ``fn`` must be importable (a
    module-level function of a test module).

    The processes are spawned, not forked: a child forked from a process
    whose torch/OpenMP threads are running can deadlock (seen in the full
    suite).
    """
    mp.start_processes(
        _gloo_process,
        args=(fn, free_port(), world_size, str(out_dir)),
        nprocs=world_size,
        start_method='spawn')


def run_dist(script: str, args) -> subprocess.CompletedProcess:
    """Run ``bash tools/<script> *args`` as CPU processes (gloo).

    Args:
        script (str): ``'dist_train.sh'`` or ``'dist_test.sh'``.
        args (Sequence[str]): Its arguments, the process count included
            (``CONFIG [CKPT] N [options]``).

    Returns:
        subprocess.CompletedProcess: The finished run (exit status 0).
    """
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=TESTS + os.pathsep + REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', script)] + list(args),
        capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc


def weights(path: str) -> dict:
    """The ``state_dict`` of a checkpoint written by a run, loaded with
    ``weights_only=True`` as mmfer's checkpoint loader does."""
    from mmfer.utils.compat.checkpoint_loading import checkpoint_safe_globals
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        return torch.load(path, map_location='cpu',
                          weights_only=True)['state_dict']
