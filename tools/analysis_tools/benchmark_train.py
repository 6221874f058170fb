# Copyright (c) OpenMMLab. All rights reserved.
"""Measure end-to-end training throughput of a config with real data.

Builds the config's training dataloader, model and optimiser wrapper the way
the runner does (``Runner.build_dataloader``, ``MODELS.build``,
``build_optim_wrapper``) and times ``model.train_step`` (data preprocessor,
forward, backward, optimiser step) on the config's real images after
``--warmup`` iterations. ``--data-only`` times the input pipeline alone: the
same dataloader and the model's data preprocessor
(``model.data_preprocessor(batch, training=True)``: every view moved to the
device and normalised), no forward. Prints one JSON line per run:

- ``mode``: ``'train'`` or ``'data'`` (``--data-only``);
- ``images_per_s``: training images per second; a sample counts once however
  many views the pipeline makes of it (EAC's two views are one image);
- ``s_per_iter`` = ``data_s_per_iter`` (waiting for the dataloader) +
  ``compute_s_per_iter`` (``train_step``, or the data preprocessor with
  ``--data-only``; synchronised on CUDA like the runner's logging, which
  reads every loss back each iteration);
- ``peak_mem_mib``: ``torch.cuda.max_memory_allocated`` after warm-up on
  CUDA; on CPU the process's maximum resident set size (``ru_maxrss``),
  which leaves out dataloader worker processes (``--data-only`` builds the
  model for its data preprocessor, so its weights count too).

The data pipeline runs as in training: the config's ``env_cfg`` (OpenCV
threads, start method, cuDNN benchmark) is applied, and each epoch's
iterator starts after the sampler's epoch and, with the config's
``EpochSeedHook``, the per-sample augmentation seed are set.

Each run of ``--compare`` / ``--reference`` happens in its own process, so
that peak memory and allocator state are per run, and one ratio line per
extra run divides the candidate by its baseline: each ``--compare`` config
by the first config (``benchmark_train.py BASELINE --compare M1 M2`` gives
every method's step-time ratio to the baseline), and the first config by
the reference loop. Example::

    python tools/analysis_tools/benchmark_train.py \\
        configs/eac/r18_rafdb_noise0.py --iters 50 --device cuda --reference
"""
import argparse
import copy
import itertools
import json
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from mmfer.utils.benchmark import cycle, default_device, run_mode, timed_loop

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
REFERENCE = osp.join(HERE, 'reference_loop.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config')
    parser.add_argument('--iters', type=int, default=50,
                        help='timed iterations (after the warm-up)')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed iterations first')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default=None,
                        help='defaults to cuda when available')
    parser.add_argument('--compare', nargs='+', default=[],
                        metavar='CONFIG',
                        help='also measure these configs, each in its own '
                        'process, and print each one\'s ratio to the first '
                        'config')
    parser.add_argument('--reference', action='store_true',
                        help='also run reference_loop.py (plain PyTorch EAC '
                        'loop) on the config\'s data, batch size, workers and '
                        'image size, and print the ratio')
    parser.add_argument('--data-only', action='store_true',
                        help='time the dataloader and the data preprocessor '
                        'only, without the model (the reference loop too)')
    parser.add_argument('--data-root',
                        help='override train_dataloader.dataset.data_root')
    parser.add_argument('--batch-size', type=int,
                        help='override train_dataloader.batch_size')
    parser.add_argument('--num-workers', type=int,
                        help='override train_dataloader.num_workers')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='KEY=VALUE overrides, as in tools/train.py')
    return parser.parse_args(argv)


def epoch_iterators(cfg, loader) -> Callable[[], Iterator]:
    """A function that starts the next epoch of ``loader`` as the runner's
    hooks do before it: ``DistSamplerSeedHook`` sets the sampler's epoch,
    and ``EpochSeedHook``, when the config has it, seeds every sample's
    augmentation from ``(seed, epoch, index)``, which costs time in every
    worker."""
    from mmfer.engine.hooks.epoch_seed_hook import seedable_datasets
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') in ('EpochSeedHook', 'mmfer.EpochSeedHook')]
    seeded = seedable_datasets(loader.dataset) if hooks else []
    seed = hooks[0].get('seed') if hooks else None
    if seed is None:
        seed = cfg.get('randomness', {}).get('seed') or 0
    epochs = itertools.count()

    def next_epoch() -> Iterator:
        epoch = next(epochs)
        if hasattr(loader.sampler, 'set_epoch'):
            loader.sampler.set_epoch(epoch)
        for dataset in seeded:
            dataset.set_sample_seed(seed, epoch)
        return iter(loader)

    return next_epoch


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


def setup_env(cfg) -> None:
    """Apply the config's ``env_cfg`` speed settings as the runner's
    ``setup_env`` does: worker start method, OpenCV threads (0 by default:
    OpenCV's own thread pool in every dataloader worker oversubscribes the
    cores) and cuDNN benchmark."""
    import torch
    from mmengine.utils.dl_utils import set_multi_processing
    env_cfg = cfg.get('env_cfg', {})
    set_multi_processing(**env_cfg.get('mp_cfg', {}), distributed=False)
    if env_cfg.get('cudnn_benchmark'):
        torch.backends.cudnn.benchmark = True


def drop_pretrained(node) -> None:
    """Remove every ``init_cfg`` of ``type='Pretrained'`` from a model
    config, in place, wherever the method keeps its networks (``backbone``,
    ``networks``, ``student``...): weights change no timing and may not be
    on this machine."""
    if isinstance(node, dict):
        inits = node.get('init_cfg')
        inits = inits if isinstance(inits, list) else [inits]
        kept = [i for i in inits
                if not (isinstance(i, dict) and i.get('type') == 'Pretrained')]
        if len(kept) < len(inits):
            node['init_cfg'] = kept or None
        children = list(node.values())
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return
    for child in children:
        drop_pretrained(child)


def uses_channels_last(cfg) -> bool:
    """Whether the config turns on ``ChannelsLastHook`` (which the runner,
    not this tool, would call)."""
    hooks = list(cfg.get('default_hooks', {}).values()) + list(
        cfg.get('custom_hooks', []))
    return any(
        isinstance(hook, dict) and hook.get('type') == 'ChannelsLastHook'
        for hook in hooks)


def compiled_train_step(model, compile_cfg) -> Callable:
    """``model.train_step``, compiled as the runner's ``compile`` key says.

    Args:
        model: The model.
        compile_cfg (bool | dict | None): The config's ``compile``.

    Returns:
        Callable: The train step to time.
    """
    import torch

    if not compile_cfg:
        return model.train_step
    kwargs = dict(compile_cfg) if isinstance(compile_cfg, dict) else {}
    return torch.compile(model.train_step, **kwargs)


def measure(args: argparse.Namespace) -> Dict:
    """Time the training (or, with ``--data-only``, the input pipeline) of
    ``args.config`` on its real dataloader."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS

    import mmfer  # noqa: F401  (registers mmfer's components)
    from mmfer.engine.hooks.channels_last_hook import convert_to_channels_last

    cfg = load_config(args, args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    setup_env(cfg)
    device = args.device or default_device()
    # the runner merges the config's top-level data_preprocessor the same way
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor',
                         cfg.get('data_preprocessor', None))
    drop_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    loader = Runner.build_dataloader(
        cfg.train_dataloader, seed=cfg.get('randomness', {}).get('seed', 0))
    if args.data_only:
        # the model's own preprocessor: the classifier may set its type
        preprocessor = model.data_preprocessor.to(device).train()
        del model

        def step(batch: dict) -> int:
            preprocessor(batch, training=True)
            return len(batch['data_samples'])
    else:
        model.init_weights()
        model = model.to(device).train()
        if uses_channels_last(cfg):
            convert_to_channels_last(model)
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        train_step = compiled_train_step(model, cfg.get('compile'))

        def step(batch: dict) -> int:
            train_step(batch, optim_wrapper)
            return len(batch['data_samples'])

    result = dict(
        name=osp.relpath(args.config), config=args.config,
        mode=run_mode(args.data_only),
        batch_size=cfg.train_dataloader.batch_size,
        num_workers=cfg.train_dataloader.get('num_workers', 0))
    result.update(
        timed_loop(cycle(epoch_iterators(cfg, loader)), step, args.iters,
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
    if args.data_only:
        common.append('--data-only')
    overrides = []
    for flag, value in (('--data-root', args.data_root),
                        ('--batch-size', args.batch_size),
                        ('--num-workers', args.num_workers)):
        if value is not None:
            overrides += [flag, str(value)]
    if args.cfg_options:
        overrides += ['--cfg-options'] + args.cfg_options
    runs = [[sys.executable, osp.abspath(__file__), c] + common + overrides
            for c in [args.config] + args.compare]
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


def ratio_pairs(args: argparse.Namespace) -> List[Tuple[int, int]]:
    """``(candidate, baseline)`` indices, in the order of
    :func:`child_runs`, of the ratio lines: each ``--compare`` config
    against the first config, and the first config against the reference
    loop."""
    pairs = [(i, 0) for i in range(1, len(args.compare) + 1)]
    if args.reference:
        pairs.append((0, len(args.compare) + 1))
    return pairs


def report(results: List[Dict], pairs: List[Tuple[int, int]]) -> None:
    """Print every run's JSON line, then the ratio lines of ``pairs``."""
    for result in results:
        print(json.dumps(result), flush=True)
    for candidate, baseline in pairs:
        print(ratio_line(results[candidate], results[baseline]), flush=True)


def main() -> None:
    args = parse_args()
    if args.compare or args.reference:
        report([run_child(command) for command in child_runs(args)],
               ratio_pairs(args))
    else:
        report([measure(args)], [])


if __name__ == '__main__':
    main()
