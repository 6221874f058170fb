# Copyright (c) OpenMMLab. All rights reserved.
"""Distributed set-up that also works on CPU-only hosts, and helpers that
shard, gather and merge per-sample values over the ranks."""
import atexit
import logging
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.dist import (all_gather, all_reduce_params, broadcast,
                           get_rank, is_distributed)
from mmengine.logging import print_log


def setup_cpu_distributed(cfg: Config) -> bool:
    """Start a gloo process group when launched by torchrun without GPUs.

    mmengine's pytorch launcher (``_init_dist_pytorch`` in
    ``mmengine/dist/utils.py``) calls ``torch.cuda.set_device`` and so fails
    on a CPU-only host. When the process group already exists, mmengine
    skips its own ``init_dist``; and CPU DDP rejects the
    ``device_ids=[LOCAL_RANK]`` mmengine passes, so the model wrapper gets
    ``device_ids=None``. Without a configured ``model_wrapper_cfg`` the
    wrapper is the one mmengine builds on GPUs: ``broadcast_buffers=False``
    (each rank keeps its own BatchNorm statistics) and the config's
    ``find_unused_parameters``.

    Args:
        cfg (Config): The config; ``model_wrapper_cfg`` is updated in place.

    Returns:
        bool: True if a CPU (gloo) process group was started. A
        ``sync_bn`` setting is then dropped with a warning.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if 'RANK' not in os.environ:
        raise RuntimeError(
            '--launcher pytorch needs the environment torchrun sets (RANK, '
            'WORLD_SIZE, MASTER_ADDR...); start it with tools/dist_train.sh '
            'or torchrun, or use --launcher none.')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if cfg.get('sync_bn') is not None:
        # torch's SyncBatchNorm refuses CPU tensors.
        print_log(
            f"sync_bn={cfg.sync_bn!r} is ignored on CPU: SyncBatchNorm needs "
            'GPUs, so each rank normalises with its own batch statistics.',
            logger='current',
            level=logging.WARNING)
        cfg.sync_bn = None
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if not wrapper:
        # What mmengine builds on GPUs when no wrapper is configured; a
        # configured wrapper would get torch's broadcast_buffers=True.
        wrapper = dict(
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    print_log(
        f'No GPU found: rank {dist.get_rank()}/{dist.get_world_size()} runs '
        'distributed on CPU with the gloo backend.',
        logger='current')
    return True


def exit_distributed() -> None:
    """End a distributed tool's process once its work is done.

    Call it last, on success only: it destroys the default process group,
    runs the exit handlers (log files flushed, data-loading workers
    stopped) and leaves the process with status 0 without the
    interpreter's finalisation. A no-op when no process group exists.

    Why not a plain exit: the DDP wrapper keeps the gloo process group
    alive past ``destroy_process_group``, and a gloo worker thread releases
    a finished collective's tensors (which needs the GIL) after the
    collective has returned. If that happens while the interpreter is
    finalising, Python ends the thread and the C++ runtime aborts
    ("terminate called without an active exception"), so torchrun reports
    a finished run as failed. Seen on a loaded CPU after the evaluator's
    last broadcast; the exit handlers run while the interpreter is whole,
    so a late release only waits for the GIL.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.destroy_process_group()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def average_float_buffers(module: torch.nn.Module) -> None:
    """Average ``module``'s floating-point buffers over the ranks.

    mmengine's DDP wrapper does not broadcast buffers, so each rank keeps
    BatchNorm running statistics of its own; after this, every rank holds
    the same ones. Call it in distributed training only.

    Args:
        module (nn.Module): The module whose buffers to average.
    """
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        all_reduce_params(buffers, op='mean')


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward keeps only this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        chunks = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(chunks, x.contiguous())
        ctx.rank = dist.get_rank()
        ctx.size = x.size(0)
        return torch.cat(chunks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        start = ctx.rank * ctx.size
        return grad[start:start + ctx.size]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank along dim 0, keeping the gradient.

    The backward hands each rank the gradient of its own slice only, with
    no all-reduce: the semantics of the official LA-Net ``GatherLayer``.
    A loss computed on rank ``r`` from the gathered batch therefore trains
    the other ranks' samples not at all; DDP averages only the parameter
    gradients, so these cross-rank terms are never propagated. Reproducing
    the official training needs exactly this (an all-reduce in the backward
    would add the missing terms and change the gradients).

    Args:
        x (torch.Tensor): This rank's tensor ``(N, ...)``; every rank must
            pass the same shape (``drop_last`` batches).

    Returns:
        torch.Tensor: ``(world_size * N, ...)`` in rank order; ``x`` itself
        when torch.distributed is not initialised or has one process.
    """
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def padded_shard(num_samples: int, rank: int, world_size: int) -> List[int]:
    """The indices rank ``rank`` evaluates, as a ``DefaultSampler`` without
    shuffling deals them: padded by repeating the first indices so that all
    ranks get as many.

    Args:
        num_samples (int): Dataset length.
        rank (int): This rank.
        world_size (int): Number of ranks.

    Returns:
        list[int]: This rank's indices.
    """
    per_rank = -(-num_samples // world_size)
    indices = list(range(num_samples))
    indices += indices[:per_rank * world_size - num_samples]
    return indices[rank::world_size]


def merge_by_index(parts: Sequence[Tuple[np.ndarray, np.ndarray]],
                   num_samples: int) -> np.ndarray:
    """Put every rank's per-sample values at their sample index.

    A sample that several ranks evaluated (the padding a distributed sampler
    adds) is counted once: the value of the first rank that has it.

    Args:
        parts (Sequence[tuple]): Per rank, ``(indices (n,), values (n, k))``.
        num_samples (int): Dataset length.

    Returns:
        np.ndarray: ``(num_samples, k)``; NaN rows for samples no rank saw.
    """
    indices = np.concatenate([np.asarray(p[0], dtype=np.int64)
                              for p in parts])
    values = np.concatenate([np.asarray(p[1], dtype=np.float64)
                             for p in parts])
    if indices.size and (indices.min() < 0 or indices.max() >= num_samples):
        raise IndexError(
            f'sample_idx {int(indices.max())} out of range for a dataset of '
            f'{num_samples} samples: each sample needs its dataset index as '
            'sample_idx (dataset wrappers that renumber samples, e.g. '
            'RepeatDataset, are not supported here).')
    merged = np.full((num_samples, values.shape[1]), np.nan)
    unique, first = np.unique(indices, return_index=True)
    merged[unique] = values[first]
    return merged


def sample_info(dataset) -> Dict[str, Optional[np.ndarray]]:
    """Per-sample path, training label, clean label and noise flag, as far
    as the dataset knows them.

    Args:
        dataset (Dataset): A dataset; its ``get_data_info(i)`` is read.

    Returns:
        dict: ``img_path`` (object), ``train_label`` (the ``gt_label``
        training uses), ``clean_label`` (int64) and ``is_noisy`` (bool)
        arrays of one entry per sample, each None where some sample's info
        lacks the key; empty if the dataset has no ``get_data_info``.
    """
    if not callable(getattr(dataset, 'get_data_info', None)):
        return dict()
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]

    def column(key, dtype=object):
        if not all(key in info for info in infos):
            return None
        return np.array([info[key] for info in infos], dtype=dtype)

    return dict(
        img_path=column('img_path'),
        train_label=column('gt_label', np.int64),
        clean_label=column('clean_label', np.int64),
        is_noisy=column('is_noisy', bool))


def all_gather_rows(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Concatenate each tensor of every rank along dim 0, in rank order.

    Unlike ``all_gather``, ranks may hold different numbers of rows (e.g.
    the last batch of an epoch); no gradient flows back.

    Args:
        *tensors (torch.Tensor): This rank's tensors, all with the same
            number of rows.

    Returns:
        tuple[torch.Tensor]: One concatenation per input; the inputs
        themselves without a process group or with one process.
    """
    rows = {t.size(0) for t in tensors}
    if len(rows) != 1:
        raise ValueError('all_gather_rows needs tensors with one number of '
                         f'rows, got {sorted(rows)}.')
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return tensors
    count = torch.tensor([rows.pop()], device=tensors[0].device)
    counts = [int(c) for c in all_gather(count)]
    gathered = []
    for t in tensors:
        padded = t.detach().new_zeros((max(counts), ) + t.shape[1:])
        padded[:t.size(0)] = t.detach()
        parts = all_gather(padded)
        gathered.append(
            torch.cat([part[:n] for part, n in zip(parts, counts)]))
    return tuple(gathered)


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank along dim 0, without gradient.

    Args:
        x (torch.Tensor): This rank's tensor ``(N, ...)``; every rank must
            pass the same shape.

    Returns:
        torch.Tensor: ``(world_size * N, ...)`` in rank order; a detached
        ``x`` when not distributed.
    """
    return torch.cat(all_gather(x.detach().contiguous()))


@torch.no_grad()
def shuffled_forward(forward: Callable[[torch.Tensor], Sequence[torch.Tensor]],
                     inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Run ``forward`` on the global batch shuffled across the ranks.

    MoCo's ShuffleBN: the global batch is gathered, permuted (one
    permutation drawn on rank 0 and broadcast) and each rank runs
    ``forward`` on its slice of the permuted batch, so that no rank
    normalises its samples with the BatchNorm statistics of its own batch;
    the outputs are gathered and put back in the order of the gathered
    batch. In a single process BatchNorm sees the whole batch either way,
    so ``forward`` runs on ``inputs`` unshuffled.

    Args:
        forward (Callable): Maps ``(N, ...)`` inputs to a sequence of
            ``(N, ...)`` tensors.
        inputs (torch.Tensor): This rank's ``(N, ...)`` inputs; every rank
            must pass the same shape.

    Returns:
        tuple[Tensor]: Each output of ``forward`` for the global batch,
        ``(world_size * N, ...)`` in the order of :func:`gather_no_grad`.
    """
    if not is_distributed():
        return tuple(forward(inputs))
    global_inputs = gather_no_grad(inputs)
    num = inputs.size(0)
    order = torch.randperm(global_inputs.size(0), device=inputs.device)
    broadcast(order, src=0)
    rank = get_rank()
    outputs = forward(global_inputs[order[rank * num:(rank + 1) * num]])
    restore = order.argsort()
    return tuple(gather_no_grad(out)[restore] for out in outputs)
