# Copyright (c) OpenMMLab. All rights reserved.
"""Time training steps and measure peak memory of configs' models.

Builds each config's model (no pretrained weights, no dataset), feeds random
images of the config's size through ``model.train_step`` (forward, backward,
optimizer step, exactly as the runner does) and prints milliseconds per
step, images per second and peak memory. Example::

    python tools/analysis_tools/benchmark_train_step.py \\
        configs/baseline/r18_rafdb_noise30.py \\
        configs/eac/r18_rafdb_noise30.py \\
        --batch-size 64 --img-size 224 \\
        --variant eac-joint:model.view_batching=joint
"""
import argparse
import os.path as osp
import resource
import time
from typing import Dict, List, Tuple

import mmfer  # noqa: F401
from mmengine.config import Config, DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--variant', action='append', default=[],
                        help='NAME:KEY=VALUE[,KEY=VALUE] an extra run of the '
                        'last config with these overrides')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per training step')
    parser.add_argument('--img-size', type=int, default=112,
                        help='side of the random input images in pixels')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed steps before the timed ones')
    parser.add_argument('--steps', type=int, default=20,
                        help='timed training steps')
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast on the model\'s device '
                        '(FERAmpOptimWrapper)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config')
    return parser.parse_args()


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import torch  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402


def runs(args: argparse.Namespace) -> List[Tuple[str, str, Dict]]:
    """(name, config, overrides) for each measurement."""
    items = [(osp.relpath(c), c, {}) for c in args.configs]
    for spec in args.variant:
        name, _, pairs = spec.partition(':')
        options = {}
        for pair in filter(None, pairs.split(',')):
            key, _, value = pair.partition('=')
            options[key] = eval(value) if value[:1] in '0123456789[(' \
                else value
        items.append((name, args.configs[-1], options))
    return items


def make_batch(num_classes: int, args: argparse.Namespace) -> dict:
    inputs = torch.randint(0, 256, (args.batch_size, 3, args.img_size,
                                    args.img_size), dtype=torch.uint8)
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(
            i % num_classes) for i in range(args.batch_size)
    ]
    return dict(inputs=list(inputs), data_samples=samples)


def measure(config: str, options: Dict,
            args: argparse.Namespace) -> Dict[str, float]:
    """Time ``train_step`` of one config's model."""
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.merge_from_dict(options)
    model_cfg = cfg.model
    model_cfg.backbone.pop('init_cfg', None)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = MODELS.build(model_cfg).to(device)
    model.train()
    optim_cfg = dict(cfg.optim_wrapper)
    if args.amp:
        optim_cfg['type'] = 'FERAmpOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    batch = make_batch(model_cfg.head.get('num_classes', 7), args)

    def step() -> None:
        model.train_step(batch, optim_wrapper)

    for _ in range(args.warmup):
        step()
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    if device == 'cuda':
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:  # process peak RSS (KiB on Linux), an upper bound
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(ms=seconds * 1000, ips=args.batch_size / seconds,
                peak_mb=peak_mb, device=device)


def main() -> None:
    args = parse_args()
    results = [(name, measure(config, options, args))
               for name, config, options in runs(args)]
    device = results[0][1]['device']
    name = torch.cuda.get_device_name() if device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'\ntrain step, batch {args.batch_size}, {args.img_size}px, '
          f'{"AMP" if args.amp else "fp32"}, {name}, torch '
          f'{torch.__version__}; mean of {args.steps} steps after '
          f'{args.warmup} warm-up')
    peak = 'peak GPU MiB' if device == 'cuda' else 'max RSS MiB*'
    print(f'{"run":<56}{"ms/step":>10}{"img/s":>10}{peak:>14}')
    for name, r in results:
        print(f'{name:<56}{r["ms"]:>10.1f}{r["ips"]:>10.1f}'
              f'{r["peak_mb"]:>14.0f}')
    if device != 'cuda':
        print('* process-wide maximum so far (runs are in order), not a '
              'per-run figure')


if __name__ == '__main__':
    main()
