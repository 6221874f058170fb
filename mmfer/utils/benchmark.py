# Copyright (c) OpenMMLab. All rights reserved.
"""Timing of training steps, shared by the benchmark tools
(``tools/analysis_tools/benchmark_train.py`` and ``reference_loop.py``).

torch is imported by the functions that need it, so that the tools answer
``--help`` before importing it.
"""
import resource
import time
from typing import Callable, Dict, Iterator


def default_device() -> str:
    """``'cuda'`` if a GPU is visible, else ``'cpu'``."""
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def peak_memory_mib(device: str) -> float:
    """Peak memory since the last reset (CUDA) or of the process (CPU)."""
    import torch
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cycle(make_iter: Callable[[], Iterator]) -> Iterator:
    """Batches without end: a new epoch starts when one runs out, as the
    runner's loop does (its cost is part of the data wait)."""
    while True:
        yield from make_iter()


def timed_loop(batches: Iterator, step: Callable[[object], int], iters: int,
               warmup: int, device: str) -> Dict[str, float]:
    """Run ``step`` on ``warmup + iters`` batches and time the last ``iters``.

    Args:
        batches (Iterator): Yields batches forever.
        step (Callable): Trains on one batch; returns its number of images.
        iters (int): Timed iterations.
        warmup (int): Untimed iterations first.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        dict: ``iters``, ``warmup``, ``images``, ``images_per_s``,
        ``s_per_iter``, ``data_s_per_iter``, ``compute_s_per_iter``,
        ``peak_mem_mib``, ``peak_mem_kind``, ``device``.
    """
    import torch
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters={iters} must be >= 1 and warmup={warmup} '
                         '>= 0.')

    def sync() -> None:
        if device == 'cuda':
            torch.cuda.synchronize()

    for _ in range(warmup):
        step(next(batches))
    sync()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    images = 0
    data_s = compute_s = 0.0
    start = time.perf_counter()
    for _ in range(iters):
        tick = time.perf_counter()
        batch = next(batches)
        tock = time.perf_counter()
        images += step(batch)
        sync()
        data_s += tock - tick
        compute_s += time.perf_counter() - tock
    total = time.perf_counter() - start
    return dict(
        device=device,
        iters=iters,
        warmup=warmup,
        images=images,
        images_per_s=images / total,
        s_per_iter=total / iters,
        data_s_per_iter=data_s / iters,
        compute_s_per_iter=compute_s / iters,
        peak_mem_mib=peak_memory_mib(device),
        peak_mem_kind='cuda_max_allocated'
        if device == 'cuda' else 'cpu_max_rss')


def run_mode(data_only: bool) -> str:
    """The ``mode`` field of a run's JSON line."""
    return 'data' if data_only else 'train'
