# Copyright (c) OpenMMLab. All rights reserved.
"""Write tiny replicas of FER datasets in their exact on-disk formats."""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np

RAF_NUM_AUTO, RAF_NUM_MANUAL = 37, 5


def _write_image(path: str, rng: np.random.Generator, size: int,
                 label: int) -> None:
    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    # a class-dependent bright bar so tiny models can learn something
    img[:, label * size // 7:(label + 1) * size // 7] += 150
    cv2.imwrite(path, img)


def make_rafdb(root: str,
               num_train: int = 28,
               num_test: int = 14,
               size: int = 32,
               seed: int = 0,
               names: Optional[Sequence[str]] = None,
               labels: Optional[Sequence[int]] = None) -> str:
    """Write RAF-DB basic: EmoLabel, aligned/original images, annotations.

    Args:
        root (str): Output folder (the ``basic`` folder).
        num_train (int): Train images (labels cycle over the 7 classes).
        num_test (int): Test images.
        size (int): Image side.
        seed (int): Pixel seed.
        names (Sequence[str], optional): Use these names instead.
        labels (Sequence[int], optional): 1-based labels for ``names``.

    Returns:
        str: ``root``.
    """
    rng = np.random.default_rng(seed)
    if names is None:
        names = [f'train_{i:05d}.jpg' for i in range(1, num_train + 1)] + \
            [f'test_{i:04d}.jpg' for i in range(1, num_test + 1)]
        labels = [i % 7 + 1 for i in range(num_train)] + \
            [i % 7 + 1 for i in range(num_test)]
    for sub in ('EmoLabel', 'Image/aligned', 'Image/original',
                'Annotation/auto', 'Annotation/manual',
                'Annotation/aligned'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    with open(osp.join(root, 'EmoLabel', 'list_patition_label.txt'),
              'w') as f:
        f.write('\n'.join(f'{n} {y}' for n, y in zip(names, labels)))
    for name, label in zip(names, labels):
        stem = osp.splitext(name)[0]
        aligned = osp.join(root, 'Image', 'aligned', f'{stem}_aligned.jpg')
        _write_image(aligned, rng, size, label - 1)
        _write_image(
            osp.join(root, 'Image', 'original', f'{stem}.jpg'), rng,
            size * 2, label - 1)
        points = rng.uniform(0, size, (RAF_NUM_AUTO, 2))
        _write_points(
            osp.join(root, 'Annotation', 'auto', f'{stem}_auto_attri.txt'),
            points * 2, sep='\t')
        _write_points(
            osp.join(root, 'Annotation', 'manual', f'{stem}_manu_attri.txt'),
            points[:RAF_NUM_MANUAL] * 2, extra=('1', '0', '2'))
        _write_points(
            osp.join(root, 'Annotation', 'aligned', f'{stem}_aligned.txt'),
            points)
    return root


def _write_points(path: str, points: np.ndarray, sep: str = ' ',
                  extra: Sequence[str] = ()) -> None:
    lines = [f'{x:.2f}{sep}{y:.2f}' for x, y in points] + list(extra)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
