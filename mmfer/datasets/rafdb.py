# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import List, Optional, Set

import numpy as np
from mmpretrain.registry import DATASETS

from .base_fer import BaseFERDataset
from .class_map import CLASS_ORDERS

RAFDB_CLASSES = CLASS_ORDERS['rafdb']

# landmark source -> (folder under Annotation/, file suffix, rows to read)
_LANDMARK_FILES = {
    'auto': ('auto', '_auto_attri.txt', 37),
    'manual': ('manual', '_manu_attri.txt', 5),
    'aligned': ('aligned', '_aligned.txt', None),
}


@DATASETS.register_module()
class RAFDBDataset(BaseFERDataset):
    """RAF-DB basic, as distributed.

    Expected layout (``data_root`` is the ``basic`` folder)::

        data_root/
          EmoLabel/list_patition_label.txt   # "<name> <label 1..7>"
          Image/aligned/<stem>_aligned.jpg   # 100x100 aligned faces
          Image/original/<stem>.jpg          # only for img_type='original'
          Annotation/auto/<stem>_auto_attri.txt     # 37 points, original
          Annotation/manual/<stem>_manu_attri.txt   # 5 points + 3 attrs
          Annotation/aligned/<stem>_aligned.txt     # optional, see below

    Classes (labels 1..7 in the file, 0..6 here): Surprise, Fear, Disgust,
    Happiness, Sadness, Anger, Neutral.

    Landmarks are float32 ``(K, 2)`` arrays of ``x y`` in the pixel frame of
    the image that is loaded. RAF-DB's own ``auto`` (37 Face++ points) and
    ``manual`` (5 points: eye centres, nose tip, mouth corners) files refer
    to the *original* photos, so they are accepted only with
    ``img_type='original'``. For the aligned crops, give per-image files
    ``Annotation/aligned/<stem>_aligned.txt`` with one ``x y`` line per
    point in the 100x100 crop's pixels (e.g. from a landmark detector run on
    the aligned images); SynthFER writes all three exactly.

    Args:
        data_root (str): The RAF-DB ``basic`` folder.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        ann_file (str): Label list relative to ``data_root``.
            Defaults to ``'EmoLabel/list_patition_label.txt'``.
        img_type (str): ``'aligned'`` or ``'original'``.
            Defaults to ``'aligned'``.
        landmarks (str, optional): ``'aligned'``, ``'auto'`` or ``'manual'``
            to load landmarks, None not to. Defaults to None.
        **kwargs: Noise options of :class:`BaseFERDataset` and options of
            :class:`mmpretrain.datasets.BaseDataset` (``pipeline``...).
    """

    METAINFO = dict(classes=RAFDB_CLASSES)
    file_label_base = 1

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 ann_file: str = 'EmoLabel/list_patition_label.txt',
                 img_type: str = 'aligned',
                 landmarks: Optional[str] = None,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split={split!r}: RAF-DB has 'train' and "
                             "'test' splits.")
        if img_type not in ('aligned', 'original'):
            raise ValueError(f"img_type={img_type!r} must be 'aligned' or "
                             "'original'.")
        if landmarks is not None and landmarks not in _LANDMARK_FILES:
            raise ValueError(f'landmarks={landmarks!r} must be None or one '
                             f'of {sorted(_LANDMARK_FILES)}.')
        if landmarks in ('auto', 'manual') and img_type == 'aligned':
            raise ValueError(
                f"landmarks='{landmarks}' are RAF-DB coordinates in the "
                'original photos and do not fit the aligned crops. Use '
                "img_type='original', or landmarks='aligned' with per-image "
                'files Annotation/aligned/<stem>_aligned.txt detected on the '
                'aligned crops.')
        if not osp.isdir(data_root):
            raise FileNotFoundError(self.missing_root_message(data_root))
        self.img_type = img_type
        self.landmarks = landmarks
        super().__init__(
            split=split, data_root=data_root, ann_file=ann_file, **kwargs)

    @staticmethod
    def missing_root_message(data_root: str) -> str:
        """What to do when ``data_root`` does not exist.

        Args:
            data_root (str): The configured folder.

        Returns:
            str: The error message.
        """
        return (f'RAF-DB data_root {data_root} does not exist. Request RAF-DB '
                'basic, extract it there (it must contain EmoLabel/ and '
                'Image/), or set data_root; see docs/datasets.md.')

    def load_annotations(self) -> List[dict]:
        """Parse the label list and, optionally, the landmark files.

        Returns:
            list[dict]: Samples of ``self.split``.
        """
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'RAF-DB label list {self.ann_file} does not exist; it ships '
                'as EmoLabel/list_patition_label.txt (sic) in RAF-DB basic.')
        data_list = []
        for name, label, _ in self.parse_label_lines(self.ann_file):
            if not name.startswith(self.split + '_'):
                continue
            info = dict(
                img_path=self._image_path(name), gt_label=label, name=name)
            if self.landmarks is not None:
                info['landmarks'] = self._read_landmarks(name)
            data_list.append(info)
        self.check_images_exist(data_list, self.ann_file)
        return data_list

    def annotation_names(self, data_list: List[dict]) -> Set[str]:
        """Every name of the label list, train and test.

        Args:
            data_list (list[dict]): The split's samples (unused: the list
                holds both splits).

        Returns:
            set[str]: The names.
        """
        return {name for name, _, _ in self.parse_label_lines(self.ann_file)}

    def _image_path(self, name: str) -> str:
        stem = osp.splitext(name)[0]
        file = (f'{stem}_aligned.jpg'
                if self.img_type == 'aligned' else f'{stem}.jpg')
        return osp.join(self.data_root, 'Image', self.img_type, file)

    def _read_landmarks(self, name: str) -> np.ndarray:
        folder, suffix, rows = _LANDMARK_FILES[self.landmarks]
        stem = osp.splitext(name)[0]
        path = osp.join(self.data_root, 'Annotation', folder, stem + suffix)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'landmark file {path} is missing (landmarks='
                f"'{self.landmarks}'); provide it or set landmarks=None.")
        with open(path) as f:
            lines = [line.split() for line in f if line.strip()]
        lines = lines[:rows] if rows else lines
        if not lines or any(len(fields) != 2 for fields in lines) or (
                rows and len(lines) != rows):
            raise ValueError(
                f'{path}: expected {rows or "one or more"} lines of "x y" '
                'landmark coordinates.')
        try:
            return np.array(lines, dtype=np.float32)
        except ValueError:
            raise ValueError(f'{path}: landmark coordinates must be numbers.')
