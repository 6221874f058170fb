# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.distributed as dist

from mmfer.utils.dist_utils import all_gather_with_grad
from tool_runs import spawn_gloo

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


def _worker(rank: int, world_size: int, out_dir: str) -> None:
    x = local_input(rank).requires_grad_()
    gathered = all_gather_with_grad(x)
    (gathered * upstream_grad(rank)).sum().backward()
    torch.save(
        dict(gathered=gathered.detach(), grad=x.grad),
        f'{out_dir}/rank{rank}.pth')


def test_two_ranks_gather_in_order_and_keep_own_gradient(tmp_path):
    spawn_gloo(_worker, WORLD, tmp_path)
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
