# Copyright (c) OpenMMLab. All rights reserved.
"""Plain PyTorch EAC training loop: the throughput baseline for mmfer.

The official EAC recipe written out with torch and torchvision only, no
mmfer or OpenMMLab code, so that ``benchmark_train.py --reference`` can say
what mmfer's machinery costs or saves on the same images and model:

- data: a RAF-DB basic folder (``EmoLabel/list_patition_label.txt``, the
  ``train_`` lines, ``Image/aligned/<stem>_aligned.jpg``), decoded with PIL;
- views (EAC's noisy-label path, official src/dataset.py): view 1 =
  T(Gaussian noise of variance 30 with p 0.5 on the raw image), view 2 =
  T(horizontal flip of the raw image) with its own erasing draw, T = resize
  to a square, ToTensor, ImageNet Normalize, RandomErasing(scale=(0.02,
  0.25)), each image transformed on its own;
- model: torchvision ResNet-18 with a 7-way fc, fp32, one call per view;
- loss: CE on view 1 + ``lam`` x MSE between the class activation maps of
  view 1 and the mirrored maps of view 2, the maps built with the detached
  fc weight; Adam lr 2e-4, weight decay 1e-4.

Prints the JSON line of ``benchmark_train.py`` (a sample's two views count
as one image). ``--data-only`` times the input pipeline alone: the loader
above (JPEG to both normalised views) and the move of the batch to the
device, no model. Example::

    python tools/analysis_tools/reference_loop.py data/rafdb \\
        --batch-size 32 --num-workers 4 --iters 50 --device cuda
"""
import argparse
import json
import os.path as osp
from typing import List, Tuple


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='RAF-DB basic folder')
    parser.add_argument(
        '--batch-size', type=int, default=32, help='images per step')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=4,
        help='data-loading worker processes')
    parser.add_argument('--img-size', type=int, default=224,
                        help='input side in pixels (EAC: 224)')
    parser.add_argument('--lam', type=float, default=5.0,
                        help='weight of the attention loss (EAC: 5)')
    parser.add_argument('--iters', type=int, default=50,
                        help='timed iterations')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed iterations before the timed ones')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default=None,
                        help='default: cuda if available, else cpu')
    parser.add_argument('--data-only', action='store_true',
                        help='time the loader and the move to the device '
                        'only, without the model')
    return parser.parse_args()


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms  # noqa: E402

from mmfer.utils.benchmark import (cycle, default_device,  # noqa: E402
                                   run_mode, timed_loop)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rafdb_train_list(data_root: str) -> List[Tuple[str, int]]:
    """``(aligned image path, 0-based label)`` of RAF-DB's train split."""
    label_file = osp.join(data_root, 'EmoLabel', 'list_patition_label.txt')
    if not osp.isfile(label_file):
        raise FileNotFoundError(
            f'{label_file} does not exist; pass the RAF-DB basic folder '
            '(the one holding EmoLabel/ and Image/).')
    samples = []
    with open(label_file) as f:
        for line in f:
            if not line.startswith('train_'):
                continue
            name, label = line.split()
            stem = osp.splitext(name)[0]
            samples.append((osp.join(data_root, 'Image', 'aligned',
                                     f'{stem}_aligned.jpg'), int(label) - 1))
    if not samples:
        raise ValueError(f'{label_file} lists no train_ images.')
    return samples


class EACViews(Dataset):
    """RAF-DB train images as EAC's two views and the label."""

    def __init__(self, data_root: str, img_size: int,
                 noise_var: float = 30.0) -> None:
        self.samples = rafdb_train_list(data_root)
        self.noise_std = noise_var**0.5
        self.transform = transforms.Compose([
            transforms.Resize((img_size, img_size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            transforms.RandomErasing(scale=(0.02, 0.25)),
        ])

    def __len__(self) -> int:
        return len(self.samples)

    def add_noise(self, img: Image.Image) -> Image.Image:
        """EAC's add_g: Gaussian pixel noise, clipped, truncated to uint8."""
        pixels = np.asarray(img, dtype=np.float64)
        pixels = pixels + np.random.normal(0.0, self.noise_std, pixels.shape)
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        raw = Image.open(path).convert('RGB')
        view1 = self.add_noise(raw) if np.random.rand() < 0.5 else raw
        view2 = raw.transpose(Image.FLIP_LEFT_RIGHT)
        return self.transform(view1), self.transform(view2), label


class CAMResNet18(nn.Module):
    """torchvision ResNet-18 returning the logits and the class activation
    maps of every class (built with the detached fc weight, as EAC)."""

    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18(weights=None)
        self.features = nn.Sequential(*list(resnet.children())[:-2])
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor):
        feats = self.features(x)
        logits = self.fc(feats.mean(dim=(2, 3)))
        cams = torch.einsum('nchw,kc->nkhw', feats, self.fc.weight.detach())
        return logits, cams


def eac_loss(model: nn.Module, view1: torch.Tensor, view2: torch.Tensor,
             labels: torch.Tensor, lam: float) -> torch.Tensor:
    """CE on view 1 + lam x MSE(maps of view 1, mirrored maps of view 2)."""
    logits, cams1 = model(view1)
    _, cams2 = model(view2)
    return F.cross_entropy(logits, labels) + lam * F.mse_loss(
        cams1, torch.flip(cams2, dims=[3]))


def train_step(device: str, lam: float):
    """One fp32 EAC step on a ``(view1, view2, labels)`` batch, as a
    function of the batch returning its number of images."""
    model = CAMResNet18().to(device).train()
    optimizer = torch.optim.Adam(
        model.parameters(), lr=2e-4, weight_decay=1e-4)

    def step(batch) -> int:
        view1, view2, labels = (t.to(device, non_blocking=True)
                                for t in batch)
        loss = eac_loss(model, view1, view2, labels, lam)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # the runner's logging reads the loss back every iteration too
        loss.item()
        return labels.size(0)

    return step


def transfer_step(device: str):
    """The batch moved to ``device`` only (the views are normalised in the
    loader already), as a function of the batch returning its number of
    images."""

    def step(batch) -> int:
        for tensor in batch:
            tensor.to(device, non_blocking=True)
        return batch[-1].size(0)

    return step


def main() -> None:
    args = parse_args()
    device = args.device or default_device()
    workers = args.num_workers
    loader = DataLoader(
        EACViews(args.data_root, args.img_size),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=workers,
        # as mmfer's configs, so that epoch restarts cost the same
        persistent_workers=workers > 0,
        pin_memory=device == 'cuda')
    step = (transfer_step(device)
            if args.data_only else train_step(device, args.lam))
    result = dict(
        name='reference_loop', config=None, mode=run_mode(args.data_only),
        batch_size=args.batch_size, num_workers=workers)
    result.update(
        timed_loop(cycle(lambda: iter(loader)), step, args.iters,
                   args.warmup, device))
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
