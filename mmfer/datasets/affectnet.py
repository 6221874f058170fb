# Copyright (c) OpenMMLab. All rights reserved.
import csv
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS

from .base_fer import BaseFERDataset
from .class_map import CLASS_ORDERS

AFFECTNET_CLASSES = CLASS_ORDERS['affectnet']
# Expression codes 0..10 of the AffectNet files; 8..10 are not expressions.
AFFECTNET_CODES = AFFECTNET_CLASSES + ('None', 'Uncertain', 'No-Face')
# The columns of Manually_Annotated_file_lists/{training,validation}.csv.
AFFECTNET_COLUMNS = ('subDirectory_filePath', 'face_x', 'face_y', 'face_width',
                     'face_height', 'facial_landmarks', 'expression',
                     'valence', 'arousal')
AFFECTNET_NUM_LANDMARKS = 68
_BOX_COLUMNS = ('face_x', 'face_y', 'face_width', 'face_height')
# split -> (CSV of the official lists, folder of the npy release)
_SPLIT_FILES = {
    'train': ('training.csv', 'train_set'),
    'test': ('validation.csv', 'val_set'),
}


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_code(token, source: str) -> int:
    """Parse an expression code and check it is one of 0..10."""
    try:
        code = int(float(str(token).strip()))
        valid = float(str(token).strip()) == code
    except (ValueError, OverflowError):
        valid = False
    if not valid or not 0 <= code < len(AFFECTNET_CODES):
        names = ', '.join(f'{i} {n}' for i, n in enumerate(AFFECTNET_CODES))
        raise ValueError(f'{source}: expression {str(token).strip()!r} is '
                         f'out of range; AffectNet codes are 0..10 ({names}).')
    return code


@DATASETS.register_module()
class AffectNetDataset(BaseFERDataset):
    """AffectNet (manually annotated part), 7- or 8-class protocol.

    Two layouts (``data_root``, e.g. ``data/affectnet``):

    ``layout='csv'`` (the official release)::

        data_root/
          Manually_Annotated_file_lists/training.csv     # split='train'
          Manually_Annotated_file_lists/validation.csv   # split='test'
          Manually_Annotated_Images/<subDirectory_filePath>

    with columns ``subDirectory_filePath, face_x, face_y, face_width,
    face_height, facial_landmarks, expression, valence, arousal``. Whether a
    CSV starts with a header row is sniffed (the official
    ``validation.csv`` is reported to have none): without one the columns
    are taken in the order above.

    ``layout='npy'`` (the per-image release DAN and POSTER use)::

        data_root/
          train_set/images/<id>.jpg  train_set/annotations/<id>_exp.npy
          val_set/images/<id>.jpg    val_set/annotations/<id>_exp.npy

    where ``<id>_exp.npy`` holds the expression code (as a number or a
    string). Only images and expressions are read from this layout: it has
    no face boxes, and the array layout of its ``_lnd.npy`` landmark files
    is not documented, so ``crop_face`` and ``with_landmarks`` need the CSV
    layout.

    Expression codes: 0 Neutral, 1 Happiness, 2 Sadness, 3 Surprise,
    4 Fear, 5 Disgust, 6 Anger, 7 Contempt, 8 None, 9 Uncertain,
    10 No-Face. ``num_classes=7`` keeps codes 0..6, ``num_classes=8`` codes
    0..7; the others are dropped and counted in the log. There is no public
    test set: ``split='test'`` is the official validation set.

    ``crop_face=True`` crops each image to its face box enlarged by
    ``face_margin`` (a fraction of the box's width/height added on every
    side, clipped to the image). The box is recorded as ``crop_bbox`` and
    the crop is done by :class:`LoadFERImage` when the image is decoded, so
    ``landmarks`` (float32 ``(68, 2)``, ``x y``) are always in the pixel
    frame of the image the pipeline receives.

    Args:
        data_root (str): The AffectNet folder.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        num_classes (int): 7 or 8. Defaults to 7.
        layout (str): ``'csv'`` or ``'npy'``. Defaults to ``'csv'``.
        ann_file (str, optional): CSV relative to ``data_root``. Defaults
            to ``Manually_Annotated_file_lists/training.csv`` or
            ``validation.csv`` by split (``layout='csv'`` only).
        img_dir (str): Image folder relative to ``data_root``
            (``layout='csv'``). Defaults to ``'Manually_Annotated_Images'``.
        crop_face (bool): Crop to the face box. Defaults to False.
        face_margin (float): Margin around the face box, as a fraction of
            its size. Defaults to 0.
        with_landmarks (bool): Load the 68 landmarks. Off by default: they
            take ~0.5 KB per sample in the data list. Defaults to False.
        **kwargs: Noise options of :class:`BaseFERDataset` and options of
            :class:`mmpretrain.datasets.BaseDataset` (``pipeline``...).
    """

    METAINFO = dict(classes=AFFECTNET_CLASSES)

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 num_classes: int = 7,
                 layout: str = 'csv',
                 ann_file: Optional[str] = None,
                 img_dir: str = 'Manually_Annotated_Images',
                 crop_face: bool = False,
                 face_margin: float = 0.0,
                 with_landmarks: bool = False,
                 **kwargs) -> None:
        for key, value, choices in (
            ('split', split, tuple(_SPLIT_FILES)),
            ('num_classes', num_classes, (7, 8)),
            ('layout', layout, ('csv', 'npy')),
        ):
            if value not in choices:
                raise ValueError(f'AffectNetDataset: {key}={value!r} must be '
                                 f'one of {choices}.')
        if layout == 'npy' and (crop_face or with_landmarks):
            raise ValueError(
                "AffectNetDataset(layout='npy') supports neither crop_face "
                'nor with_landmarks: the npy release has no face boxes and '
                'its _lnd.npy layout is undocumented. Use the official CSV '
                "release (layout='csv') for those.")
        if face_margin < 0:
            raise ValueError(f'face_margin={face_margin} must be >= 0 (a '
                             'fraction of the face box size).')
        if not osp.isdir(data_root):
            raise FileNotFoundError(
                f'AffectNet data_root {data_root} does not exist. Extract '
                'AffectNet there (see docs/datasets.md) or set data_root.')
        self.num_classes = num_classes
        self.layout = layout
        self.img_dir = osp.join(data_root, img_dir)
        self.crop_face = crop_face
        self.face_margin = float(face_margin)
        self.with_landmarks = with_landmarks
        csv_name, npy_dir = _SPLIT_FILES[split]
        if ann_file is None:
            ann_file = (
                osp.join('Manually_Annotated_file_lists', csv_name)
                if layout == 'csv' else osp.join(npy_dir, 'annotations'))
        super().__init__(
            split=split, data_root=data_root, ann_file=ann_file, **kwargs)

    def native_class_names(self) -> Sequence[str]:
        """The first ``num_classes`` AffectNet classes.

        Returns:
            Sequence[str]: Class names.
        """
        return AFFECTNET_CLASSES[:self.num_classes]

    def load_annotations(self) -> List[dict]:
        """Parse the split's CSV or npy annotations.

        Returns:
            list[dict]: Samples with ``img_path``, ``gt_label``, ``name`` and,
            from the CSV, ``valence``/``arousal`` when present,
            ``crop_bbox`` with ``crop_face`` and ``landmarks`` with
            ``with_landmarks``.
        """
        dropped: Dict[int, int] = Counter()
        if self.layout == 'csv':
            data_list = self._load_csv(dropped)
        else:
            data_list = self._load_npy(dropped)
        self.check_images_exist(data_list, self.ann_file)
        summary = ', '.join(f'{AFFECTNET_CODES[code]} {n}'
                            for code, n in sorted(dropped.items()))
        MMLogger.get_current_instance().info(
            f'AffectNetDataset({self.split}): {len(data_list)} samples for '
            f'the {self.num_classes}-class protocol from {self.ann_file}; '
            f'dropped: {summary or "none"}')
        return data_list

    def _sniff_columns(self, first_row: List[str]) -> Optional[List[str]]:
        """The header if ``first_row`` is one, else None."""
        if len(first_row) > 1 and first_row[0].strip() != \
                AFFECTNET_COLUMNS[0] and _is_number(first_row[1]):
            return None
        return [c.strip() for c in first_row]

    def _load_csv(self, dropped: Counter) -> List[dict]:
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'AffectNet list {path} does not exist; it ships as '
                'Manually_Annotated_file_lists/{training,validation}.csv in '
                'the AffectNet release (see docs/datasets.md).')
        needed = ['subDirectory_filePath', 'expression']
        if self.crop_face:
            needed += list(_BOX_COLUMNS)
        if self.with_landmarks:
            needed.append('facial_landmarks')
        data_list = []
        with open(path, newline='') as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                return data_list
            header = self._sniff_columns(first)
            if header is None:
                header = list(AFFECTNET_COLUMNS)
                rows = [first]
                MMLogger.get_current_instance().info(
                    f'{path} has no header row; reading its columns as '
                    f'{",".join(AFFECTNET_COLUMNS)}')
            else:
                missing = [c for c in needed if c not in header]
                if missing:
                    raise ValueError(
                        f'{path}:1: the header {header} lacks the column(s) '
                        f'{missing}; AffectNet lists have the columns '
                        f'{",".join(AFFECTNET_COLUMNS)}.')
                rows = []
            col = {name: i for i, name in enumerate(header)}
            extra = [c for c in ('valence', 'arousal') if c in col]
            for row in _chain(rows, reader):
                if not row:
                    continue
                line = reader.line_num
                if len(row) != len(header):
                    raise ValueError(
                        f'{path}:{line}: expected {len(header)} '
                        f'comma-separated columns ({",".join(header)}), got '
                        f'{len(row)}.')
                source = f'{path}:{line}'
                code = _check_code(row[col['expression']], source)
                if code >= self.num_classes:
                    dropped[code] += 1
                    continue
                rel = row[col['subDirectory_filePath']].strip()
                info = dict(
                    img_path=osp.join(self.img_dir, rel),
                    gt_label=code,
                    name=rel)
                for key in extra:
                    info[key] = _float(row[col[key]], key, source)
                if self.crop_face:
                    info['crop_bbox'] = self._crop_box(
                        [_float(row[col[k]], k, source) for k in _BOX_COLUMNS],
                        source)
                if self.with_landmarks:
                    info['landmarks'] = _parse_landmarks(
                        row[col['facial_landmarks']], source)
                data_list.append(info)
        return data_list

    def _crop_box(self, box: List[float], source: str) -> tuple:
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise ValueError(f'{source}: face box {box} has no area (face_'
                             'width and face_height must be positive).')
        mx, my = self.face_margin * w, self.face_margin * h
        return tuple(
            int(round(v)) for v in (x - mx, y - my, x + w + mx, y + h + my))

    def _load_npy(self, dropped: Counter) -> List[dict]:
        ann_dir = self.ann_file
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(
                f'AffectNet annotation folder {ann_dir} does not exist; the '
                'npy release has train_set/annotations/<id>_exp.npy and '
                'val_set/annotations/<id>_exp.npy (see docs/datasets.md).')
        suffix = '_exp.npy'
        ids = [
            e.name[:-len(suffix)] for e in os.scandir(ann_dir)
            if e.name.endswith(suffix)
        ]
        ids.sort(key=lambda i: (0, int(i), '') if i.isdigit() else (1, 0, i))
        img_dir = osp.join(osp.dirname(ann_dir.rstrip('/')), 'images')
        data_list = []
        for sample_id in ids:
            path = osp.join(ann_dir, sample_id + suffix)
            try:
                value = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as err:
                raise ValueError(f'{path} is not a readable .npy file '
                                 f'({err}); re-extract the release.')
            if value.size != 1:
                raise ValueError(f'{path}: expected one expression code, '
                                 f'got an array of shape {value.shape}.')
            code = _check_code(value.reshape(-1)[0], path)
            if code >= self.num_classes:
                dropped[code] += 1
                continue
            data_list.append(
                dict(
                    img_path=osp.join(img_dir, sample_id + '.jpg'),
                    gt_label=code,
                    name=sample_id))
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Layout: \t{self.layout}', f'Crop face: \t{self.crop_face}'
        ]


def _chain(first: List[List[str]], reader):
    yield from first
    yield from reader


def _float(token: str, column: str, source: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ValueError(f'{source}: column {column!r} must be a number, got '
                         f'{token!r}.')


def _parse_landmarks(token: str, source: str) -> np.ndarray:
    parts = token.strip().strip(';').split(';')
    try:
        values = np.array(parts, dtype=np.float32)
    except ValueError:
        values = None
    if values is None or values.size != 2 * AFFECTNET_NUM_LANDMARKS:
        found = ('non-numeric values'
                 if values is None else f'{values.size} values')
        raise ValueError(
            f'{source}: column "facial_landmarks" has {found}; expected '
            f'{2 * AFFECTNET_NUM_LANDMARKS} ";"-separated numbers '
            f'(x1;y1;x2;y2;... for {AFFECTNET_NUM_LANDMARKS} points).')
    return values.reshape(AFFECTNET_NUM_LANDMARKS, 2)
