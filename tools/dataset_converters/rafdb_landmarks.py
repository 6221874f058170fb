# Copyright (c) OpenMMLab. All rights reserved.
"""Write RAF-DB's aligned-crop landmark files from LA-Net's landmarks.

LA-Net (ICCV 2023) publishes 19 facial landmarks for every RAF-DB basic
image, detected by an HRNet face-alignment model on the aligned crops
(``Image/aligned/<stem>_aligned.jpg``, 100x100) resized to 224x224::

    raf_train_19_landmarks.tensor   float32 [12271, 19, 2]
    raf_test_19_landmarks.tensor    float32 [3068, 19, 2]

(``torch.save``d tensors). Row ``i`` belongs to the ``i``-th ``train_*``
(resp. ``test_*``) line of ``EmoLabel/list_patition_label.txt``. Each row
holds ``(x, y)`` pixels of the 224x224 frame in the AFLW-19 layout
(``aflw19`` in :mod:`mmfer.datasets.landmark_schemes`): 0-5 brows, 6-11 eyes,
12-14 nose, 15-17 mouth, 18 chin.

The points are rescaled to each aligned image's own size in the corner
convention (an image spans ``[0, W] x [0, H]``), ``x' = x * W / 224`` and
``y' = y * H / 224``, and written to ``Annotation/aligned/<stem>_aligned.txt``
with one ``x y`` line per point: the files that
``RAFDBDataset(landmarks='aligned')`` reads.

Example::

    python tools/dataset_converters/rafdb_landmarks.py data/rafdb/basic \
        --landmarks data/lanet_landmarks

Existing files are never overwritten: when any target exists, nothing is
written.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from PIL import Image

#: The square frame LA-Net's landmarks are given in.
FRAME_SIZE = 224
#: Points per face in the AFLW-19 layout.
NUM_POINTS = 19
SPLITS = ('train', 'test')
LABEL_LIST = osp.join('EmoLabel', 'list_patition_label.txt')
DEFAULT_OUT_DIR = osp.join('Annotation', 'aligned')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: ``root``, ``landmarks``, ``image_size`` and
        ``out_dir``.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Rescaling: x * W / 224, y * H / 224 (corner convention).')
    parser.add_argument(
        'root',
        metavar='RAFDB_ROOT',
        help='RAF-DB basic folder (holds EmoLabel/ and Image/)')
    parser.add_argument(
        '--landmarks',
        required=True,
        metavar='DIR',
        help='folder holding raf_train_19_landmarks.tensor and '
        'raf_test_19_landmarks.tensor')
    parser.add_argument(
        '--image-size',
        type=int,
        metavar='N',
        help='take every aligned image as NxN instead of reading its size '
        '(RAF-DB\'s aligned crops are 100x100); the images need not exist')
    parser.add_argument(
        '--out-dir',
        default=DEFAULT_OUT_DIR,
        metavar='REL',
        help='output folder relative to RAFDB_ROOT (default: %(default)s, '
        "the one RAFDBDataset(landmarks='aligned') reads)")
    args = parser.parse_args(argv)
    if args.image_size is not None and args.image_size <= 0:
        parser.error(f'--image-size must be positive, got {args.image_size}')
    return args


def read_split_names(label_file: str) -> Dict[str, List[str]]:
    """Read the image names of each split, in file order.

    Args:
        label_file (str): RAF-DB's ``<name> <label>`` list.

    Returns:
        dict[str, list[str]]: ``train`` and ``test`` names.
    """
    if not osp.isfile(label_file):
        sys.exit(f'{label_file} does not exist; RAFDB_ROOT must be the RAF-DB '
                 f'basic folder, which holds {LABEL_LIST}.')
    names: Dict[str, List[str]] = {split: [] for split in SPLITS}
    with open(label_file) as f:
        for line in f:
            fields = line.split()
            for split in SPLITS:
                if fields and fields[0].startswith(split + '_'):
                    names[split].append(fields[0])
    return names


def load_landmarks(path: str, num_rows: int, label_file: str) -> np.ndarray:
    """Load and check one split's landmark tensor.

    Args:
        path (str): The ``torch.save``d tensor.
        num_rows (int): Lines of the split in ``label_file``.
        label_file (str): The label list, named in errors.

    Returns:
        np.ndarray: float32 ``(num_rows, 19, 2)`` points in the 224 frame.
    """
    if not osp.isfile(path):
        sys.exit(f'{path} does not exist; --landmarks must be the folder '
                 'holding LA-Net\'s raf_train_19_landmarks.tensor and '
                 'raf_test_19_landmarks.tensor.')
    import torch  # here, so that --help answers before torch is imported
    points = torch.load(path, weights_only=True)
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or \
            tuple(points.shape[1:]) != (NUM_POINTS, 2):
        shape = (tuple(points.shape) if isinstance(points, torch.Tensor) else
                 type(points).__name__)
        sys.exit(f'{path}: expected a tensor of shape [N, {NUM_POINTS}, 2] '
                 f'(N faces, {NUM_POINTS} (x, y) points), got {shape}.')
    if len(points) != num_rows:
        sys.exit(f'{path} has {len(points)} rows but {label_file} has '
                 f'{num_rows} lines of that split; row i must be the i-th '
                 'line, so use the tensor released for this label list.')
    points = points.numpy().astype(np.float32)
    bad = ~np.isfinite(points).all(axis=(1, 2))
    if bad.any():
        sys.exit(f'{path}: {bad.sum()} rows hold NaN or infinite values, '
                 f'the first is row {np.flatnonzero(bad)[0]}.')
    return points


def aligned_image_path(root: str, name: str) -> str:
    """Path of the aligned crop of a label-list name."""
    stem = osp.splitext(name)[0]
    return osp.join(root, 'Image', 'aligned', f'{stem}_aligned.jpg')


def image_sizes(root: str, names: Sequence[str],
                image_size: Optional[int]) -> np.ndarray:
    """The ``(W, H)`` of every aligned image.

    Args:
        root (str): The RAF-DB basic folder.
        names (Sequence[str]): Label-list names.
        image_size (int, optional): Use ``(N, N)`` for all; None reads the
            image headers.

    Returns:
        np.ndarray: int ``(len(names), 2)``.
    """
    if image_size is not None:
        return np.full((len(names), 2), image_size, dtype=np.int64)
    paths = [aligned_image_path(root, name) for name in names]
    missing = [path for path in paths if not osp.isfile(path)]
    if missing:
        sys.exit(f'{len(missing)} of {len(paths)} aligned images are '
                 f'missing, e.g. {missing[0]}; their sizes are needed to '
                 'rescale the points. Pass --image-size N to take every '
                 'image as NxN without reading it (RAF-DB: 100).')
    sizes = []
    for path in paths:
        # ``Image.open`` parses the header only; no pixels are decoded.
        with Image.open(path) as img:
            sizes.append(img.size)
    return np.array(sizes, dtype=np.int64)


def rescale(points: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Map points from the 224x224 frame to each image's ``(W, H)`` frame.

    Args:
        points (np.ndarray): ``(N, K, 2)`` ``(x, y)`` in the 224 frame.
        sizes (np.ndarray): ``(N, 2)`` ``(W, H)``.

    Returns:
        np.ndarray: float32 ``(N, K, 2)``.
    """
    scale = sizes.astype(np.float64)[:, None, :] / FRAME_SIZE
    return (points.astype(np.float64) * scale).astype(np.float32)


def format_points(points: np.ndarray) -> str:
    """One ``x y`` line per point; the shortest text that reads back as the
    same float32 values."""
    return ''.join(' '.join(
        np.format_float_positional(v, unique=True, trim='0')
        for v in point) + '\n' for point in points)


def landmark_path(out_dir: str, name: str) -> str:
    """Target file of a label-list name."""
    return osp.join(out_dir, f'{osp.splitext(name)[0]}_aligned.txt')


def check_no_targets_exist(paths: Sequence[str], out_dir: str) -> None:
    """Stop before writing anything when any target exists."""
    existing = [path for path in paths if osp.lexists(path)]
    if existing:
        sys.exit(f'{len(existing)} of {len(paths)} landmark files already '
                 f'exist, e.g. {existing[0]}; nothing was written. Choose '
                 f'another --out-dir, or delete the *_aligned.txt files in '
                 f'{out_dir} to write them again.')


def write_text(path: str, text: str) -> None:
    """Write ``path`` through a temporary file and an atomic rename.

    A killed run leaves each file complete or absent, never truncated.
    ``mmfer.utils.atomic_io`` is not used because it also fsyncs every file
    and its folder, which takes about a minute for RAF-DB's 15k files; the
    output is cheap to recreate (delete it and run again).

    Args:
        path (str): Target file; its folder must exist.
        text (str): Content.
    """
    dirname, basename = osp.split(path)
    # Dot prefix and .tmp suffix: ``*_aligned.txt`` globs never match it.
    tmp = osp.join(dirname, f'.{basename}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'x') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def size_summary(sizes: np.ndarray) -> str:
    """Describe the image sizes, most common first."""
    counts = Counter(f'{w}x{h}' for w, h in sizes.tolist())
    text = ', '.join(f'{size} ({num})' for size, num in counts.most_common(3))
    if len(counts) > 3:
        text += f' and {len(counts) - 3} other sizes'
    return text


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    label_file = osp.join(args.root, LABEL_LIST)
    split_names = read_split_names(label_file)
    names: List[str] = []
    points = []
    for split in SPLITS:
        tensor = osp.join(args.landmarks,
                          f'raf_{split}_{NUM_POINTS}_landmarks.tensor')
        points.append(
            load_landmarks(tensor, len(split_names[split]), label_file))
        names += split_names[split]
    out_dir = osp.join(args.root, args.out_dir)
    targets = [landmark_path(out_dir, name) for name in names]
    check_no_targets_exist(targets, out_dir)
    sizes = image_sizes(args.root, names, args.image_size)
    scaled = rescale(np.concatenate(points), sizes)
    os.makedirs(out_dir, exist_ok=True)
    for path, face in zip(targets, scaled):
        write_text(path, format_points(face))
    counts = ', '.join(f'{len(split_names[s])} {s}' for s in SPLITS)
    source = ('--image-size'
              if args.image_size is not None else 'read from Image/aligned')
    print_log(
        f'wrote {len(targets)} landmark files ({counts}) to {out_dir}: '
        f'{NUM_POINTS} points each, rescaled from the {FRAME_SIZE}x'
        f'{FRAME_SIZE} frame to the image size ({source}): '
        f'{size_summary(sizes)}.',
        logger='current')


if __name__ == '__main__':
    main()
