# Copyright (c) OpenMMLab. All rights reserved.
"""Measure end-to-end training throughput of a config with real data.

Builds the config's training dataloader, model and optimiser wrapper the way
the runner does (``Runner.build_dataloader``, ``MODELS.build``,
``build_optim_wrapper``) and times ``model.train_step`` (data preprocessor,
forward, backward, optimiser step) on the config's real images after
``--warmup`` iterations. Prints one JSON line per run:

- ``images_per_s``: training images per second; a sample counts once however
  many views the pipeline makes of it (EAC's two views are one image);
- ``s_per_iter`` = ``data_s_per_iter`` (waiting for the dataloader) +
  ``compute_s_per_iter`` (``train_step``, synchronised on CUDA like the
  runner's logging, which reads every loss back each iteration);
- ``peak_mem_mib``: ``torch.cuda.max_memory_allocated`` after warm-up on
  CUDA; on CPU the process's maximum resident set size (``ru_maxrss``),
  which leaves out dataloader worker processes.

Each run of ``--compare`` / ``--reference`` happens in its own process, so
that peak memory and allocator state are per run, and a ratio line compares
the config with each of them. Example::

    python tools/analysis_tools/benchmark_train.py \\
        configs/eac/r18_rafdb_noise0.py --iters 50 --device cuda --reference
"""
import argparse
import json
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
REFERENCE = osp.join(HERE, 'reference_loop.py')
sys.path.insert(0, REPO)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config')
    parser.add_argument('--iters', type=int, default=50,
                        help='timed iterations (after the warm-up)')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed iterations first')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default=None,
                        help='defaults to cuda when available')
    parser.add_argument('--compare', metavar='CONFIG2',
                        help='also measure this config and print the ratio')
    parser.add_argument('--reference', action='store_true',
                        help='also run reference_loop.py (plain PyTorch EAC '
                        'loop) on the config\'s data, batch size, workers and '
                        'image size, and print the ratio')
    parser.add_argument('--data-root',
                        help='override train_dataloader.dataset.data_root')
    parser.add_argument('--batch-size', type=int,
                        help='override train_dataloader.batch_size')
    parser.add_argument('--num-workers', type=int,
                        help='override train_dataloader.num_workers')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='KEY=VALUE overrides, as in tools/train.py')
    return parser.parse_args(argv)


def default_device() -> str:
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


def load_config(args: argparse.Namespace, config: str):
    """The config with the command line's overrides merged in."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    options = {}
    for item in args.cfg_options:
        # DictAction parses values ('None', '[1,2]', numbers) as train.py
        key, value = item.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    if args.data_root:
        options['train_dataloader.dataset.data_root'] = args.data_root
    if args.batch_size:
        options['train_dataloader.batch_size'] = args.batch_size
    if args.num_workers is not None:
        options['train_dataloader.num_workers'] = args.num_workers
        if args.num_workers == 0:
            options['train_dataloader.persistent_workers'] = False
    cfg.merge_from_dict(options)
    return cfg


def measure(args: argparse.Namespace) -> Dict:
    """Time the training of ``args.config`` on its real dataloader."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS

    import mmfer  # noqa: F401  (registers mmfer's components)

    cfg = load_config(args, args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    device = args.device or default_device()
    # the runner merges the config's top-level data_preprocessor the same way
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor',
                         cfg.get('data_preprocessor', None))
    # pretrained weights change no timing and may not be downloaded
    model_cfg.backbone.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model = model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(
        cfg.train_dataloader, seed=cfg.get('randomness', {}).get('seed', 0))

    def step(batch: dict) -> int:
        model.train_step(batch, optim_wrapper)
        return len(batch['data_samples'])

    result = dict(
        name=osp.relpath(args.config), config=args.config,
        batch_size=cfg.train_dataloader.batch_size,
        num_workers=cfg.train_dataloader.get('num_workers', 0))
    result.update(
        timed_loop(cycle(lambda: iter(loader)), step, args.iters,
                   args.warmup, device))
    return result


def train_resize(cfg) -> int:
    """Side of the first square ``Resize`` of the training pipeline."""
    def find(node) -> Optional[int]:
        if isinstance(node, dict):
            if node.get('type') == 'Resize' and 'scale' in node:
                scale = node['scale']
                return scale if isinstance(scale, int) else scale[0]
            node = list(node.values())
        if isinstance(node, (list, tuple)):
            for child in node:
                side = find(child)
                if side is not None:
                    return side
        return None

    side = find(cfg.train_dataloader.dataset.get('pipeline', []))
    if side is None:
        raise ValueError(
            f'No Resize in the training pipeline of {cfg.filename}; the '
            'reference loop needs the image side: run reference_loop.py '
            'yourself with --img-size.')
    return side


def child_runs(args: argparse.Namespace) -> List[List[str]]:
    """Command lines of the runs, each measured in its own process."""
    common = ['--iters', str(args.iters), '--warmup', str(args.warmup),
              '--device', args.device or default_device()]
    overrides = []
    for flag, value in (('--data-root', args.data_root),
                        ('--batch-size', args.batch_size),
                        ('--num-workers', args.num_workers)):
        if value is not None:
            overrides += [flag, str(value)]
    if args.cfg_options:
        overrides += ['--cfg-options'] + args.cfg_options
    runs = [[sys.executable, osp.abspath(__file__), c] + common + overrides
            for c in filter(None, (args.config, args.compare))]
    if args.reference:
        cfg = load_config(args, args.config)
        loader = cfg.train_dataloader
        data_root = loader.dataset.data_root
        if not osp.isabs(data_root):  # configs' data_root is repo-relative
            data_root = osp.join(REPO, data_root)
        runs.append([
            sys.executable, REFERENCE, data_root, '--batch-size',
            str(loader.batch_size), '--num-workers',
            str(loader.get('num_workers', 0)), '--img-size',
            str(train_resize(cfg))
        ] + common)
    return runs


def run_child(command: List[str]) -> Dict:
    """Run one measurement and return its JSON line."""
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed (exit '
                           f'{proc.returncode}); its error is above.')
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if not lines:
        raise RuntimeError(f'{" ".join(command)} printed no JSON line.')
    return json.loads(lines[-1])


def ratio_line(a: Dict, b: Dict) -> str:
    """``a`` relative to ``b``: throughput, time per iteration, memory."""
    return (f'ratio {a["name"]} / {b["name"]}: images/s '
            f'{a["images_per_s"] / b["images_per_s"]:.3f}x, s/iter '
            f'{a["s_per_iter"] / b["s_per_iter"]:.3f}x, peak memory '
            f'{a["peak_mem_mib"] / b["peak_mem_mib"]:.3f}x '
            f'({a["peak_mem_kind"]})')


def report(results: Iterable[Dict]) -> None:
    results = list(results)
    for result in results:
        print(json.dumps(result), flush=True)
    for other in results[1:]:
        print(ratio_line(results[0], other), flush=True)


def main() -> None:
    args = parse_args()
    if args.compare or args.reference:
        report(run_child(command) for command in child_runs(args))
    else:
        report([measure(args)])


if __name__ == '__main__':
    main()
