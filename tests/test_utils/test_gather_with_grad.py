# Copyright (c) OpenMMLab. All rights reserved.
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmfer.utils.dist_utils import all_gather_with_grad

WORLD = 2
ROWS = 2


def local_input(rank: int) -> torch.Tensor:
    return torch.arange(ROWS * 3, dtype=torch.float64).view(ROWS, 3) + \
        10 * (rank + 1)


def upstream_grad(rank: int) -> torch.Tensor:
    """A different upstream gradient on each rank, so that an all-reduce
    in the backward would show up as a sum over ranks."""
    grad = torch.arange(WORLD * ROWS * 3, dtype=torch.float64)
    return grad.view(WORLD * ROWS, 3) * (rank + 2)


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=WORLD)
    try:
        x = local_input(rank).requires_grad_()
        gathered = all_gather_with_grad(x)
        (gathered * upstream_grad(rank)).sum().backward()
        torch.save(
            dict(gathered=gathered.detach(), grad=x.grad),
            f'{out_dir}/rank{rank}.pth')
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_ranks_gather_in_order_and_keep_own_gradient(tmp_path):
    # spawn, not fork: a child forked from a process whose torch/OpenMP
    # threads are running can deadlock (seen in the full suite)
    mp.start_processes(
        _worker,
        args=(free_port(), str(tmp_path)),
        nprocs=WORLD,
        start_method='spawn')
    expected = torch.cat([local_input(r) for r in range(WORLD)])
    for rank in range(WORLD):
        res = torch.load(tmp_path / f'rank{rank}.pth', weights_only=True)
        assert torch.equal(res['gathered'], expected)
        own = upstream_grad(rank)[rank * ROWS:(rank + 1) * ROWS]
        assert torch.equal(res['grad'], own)


def test_identity_without_process_group():
    assert not dist.is_initialized()
    x = torch.randn(3, 2, requires_grad=True)
    y = all_gather_with_grad(x)
    assert y is x
    (y * 2).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2))
