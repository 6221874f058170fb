# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS

from .base_fer import BaseFERDataset
from .noise import canonical_class_name

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


@DATASETS.register_module()
class FERDataset(BaseFERDataset):
    """Any FER data: an annotation list or one folder per class.

    For SFEW, ExpW, CAER-S, in-house data... ``classes`` (required) fixes
    the class order, e.g. ``('Anger', 'Disgust', 'Fear', 'Happiness',
    'Sadness', 'Surprise', 'Neutral')``.

    - **Annotation file** (``ann_file``): one ``<relative path> <label>``
      line per image, the path relative to ``data_root/data_prefix`` (it may
      contain spaces; the label is the last field). Labels count from
      ``label_base`` (0 by default).
    - **Class folders** (no ``ann_file``): ``data_root/data_prefix/<class
      name>/**/<image>``; the folder names must be exactly the names in
      ``classes`` (e.g. SFEW's and CAER-S's ``Angry``, ``Disgust``...).

    ``name`` (the key of noise files) is the relative path; noise files use
    the same ``label_base``. With ``landmark_dir``, each image has a
    landmark file at the same relative path under ``data_root/landmark_dir``
    with the suffix ``.txt``: one ``x y`` line per point, in the image's
    pixels.

    Args:
        data_root (str): The dataset folder.
        classes (Sequence[str]): Class names in label order.
        split (str): ``'train'``, ``'val'`` or ``'test'``; only ``'train'``
            may be noisy. Defaults to ``'train'``.
        ann_file (str, optional): Annotation list relative to
            ``data_root``. Defaults to None (class folders).
        data_prefix (str): Image folder relative to ``data_root``, e.g.
            ``'Train'`` for SFEW. Defaults to ``''``.
        label_base (int): The label of class 0 in ``ann_file`` and noise
            files. Defaults to 0.
        landmark_dir (str, optional): Landmark folder relative to
            ``data_root``. Defaults to None (no landmarks).
        extensions (Sequence[str]): Image suffixes searched in class
            folders. Defaults to :data:`IMG_EXTENSIONS`.
        **kwargs: Noise options of :class:`BaseFERDataset` and options of
            :class:`mmpretrain.datasets.BaseDataset` (``pipeline``...).
    """

    def __init__(self,
                 data_root: str,
                 classes: Sequence[str],
                 split: str = 'train',
                 ann_file: Optional[str] = None,
                 data_prefix: str = '',
                 label_base: int = 0,
                 landmark_dir: Optional[str] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 **kwargs) -> None:
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"FERDataset: split={split!r} must be 'train', "
                             "'val' or 'test'.")
        if isinstance(classes, str) or not classes:
            raise ValueError(
                'FERDataset needs classes=(...): the class names in label '
                'order (and the class folder names for the folder layout).')
        classes = tuple(classes)
        names = [canonical_class_name(c) for c in classes]
        if len(set(names)) != len(names):
            raise ValueError(f'classes {list(classes)} name a class twice.')
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'FERDataset data_root {data_root} does '
                                    'not exist; set data_root.')
        self._classes = classes
        self.file_label_base = int(label_base)
        self.landmark_dir = (
            osp.join(data_root, landmark_dir)
            if landmark_dir is not None else None)
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(
            split=split,
            data_root=data_root,
            ann_file=ann_file or '',
            data_prefix=data_prefix,
            **kwargs)

    def native_class_names(self) -> Sequence[str]:
        """The ``classes`` given to the constructor.

        Returns:
            Sequence[str]: Class names.
        """
        return self._classes

    def load_annotations(self) -> List[dict]:
        """Read the annotation list or scan the class folders.

        Returns:
            list[dict]: Samples with ``img_path``, ``gt_label``, ``name`` and
            ``landmarks`` when ``landmark_dir`` is set.
        """
        if self.ann_file:
            samples, source = self._read_ann_file(), self.ann_file
        else:
            samples, source = self._scan_folders(), self.img_prefix
        data_list = []
        for rel, label in samples:
            info = dict(
                img_path=osp.join(self.img_prefix, rel),
                gt_label=label,
                name=rel)
            if self.landmark_dir is not None:
                info['landmarks'] = self._read_landmarks(rel)
            data_list.append(info)
        self.check_images_exist(data_list, source)
        return data_list

    def _read_ann_file(self) -> List[Tuple[str, int]]:
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'annotation file {path} does not exist; write one '
                '"<relative image path> <label>" line per image, or leave '
                'ann_file unset to read one folder per class.')
        samples = []
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                fields = line.strip().rsplit(None, 1)
                if not fields:
                    continue
                if len(fields) != 2:
                    raise ValueError(
                        f'{path}:{line_no}: expected "<relative image path> '
                        f'<label>", got {line.strip()!r}.')
                samples.append(
                    (fields[0], self.check_label(fields[1], path, line_no)))
        return samples

    def _scan_folders(self) -> List[Tuple[str, int]]:
        root = self.img_prefix
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'image folder {root} does not exist; check data_root and '
                'data_prefix.')
        folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
        unknown = [f for f in folders if f not in self._classes]
        if unknown:
            raise ValueError(
                f'{root} has folders {unknown} that are not in classes='
                f'{list(self._classes)}; folder names must match the class '
                'names exactly (rename the folders or fix classes).')
        absent = [c for c in self._classes if c not in folders]
        if absent:
            MMLogger.get_current_instance().warning(
                f'FERDataset({self.split}): {root} has no folder for the '
                f'class(es) {absent}; they have no samples in this split.')
        samples = []
        for label, name in enumerate(self._classes):
            class_dir = osp.join(root, name)
            for dirpath, dirnames, filenames in os.walk(class_dir):
                dirnames.sort()
                for file in sorted(filenames):
                    if file.lower().endswith(self.extensions):
                        rel = osp.relpath(osp.join(dirpath, file), root)
                        samples.append((rel, label))
        if not samples:
            raise ValueError(
                f'no image with a suffix in {self.extensions} under the '
                f'class folders of {root}.')
        return samples

    def _read_landmarks(self, rel: str) -> np.ndarray:
        path = osp.join(self.landmark_dir, osp.splitext(rel)[0] + '.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'landmark file {path} is missing; give every image a '
                'landmark file or leave landmark_dir unset.')
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
        try:
            if not rows or any(len(r) != 2 for r in rows):
                raise ValueError
            return np.array(rows, dtype=np.float32)
        except ValueError:
            raise ValueError(f'{path}: expected one "x y" line of numbers '
                             'per landmark.')
