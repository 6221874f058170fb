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


# ---------------------------------------------------------------------------
# FERPlus: fer2013.csv + fer2013new.csv + FER2013*/label.csv + PNG folders
# ---------------------------------------------------------------------------

FERPLUS_VOTE_HEADER = ('neutral,happiness,surprise,sadness,anger,disgust,'
                       'fear,contempt,unknown,NF')
FERPLUS_FOLDERS = {
    'Training': 'FER2013Train',
    'PublicTest': 'FER2013Valid',
    'PrivateTest': 'FER2013Test'
}
FERPLUS_DUPLICATE = 'fer0006953.png'
# the row whose label.csv votes disagree with fer2013new.csv
FERPLUS_DISAGREE_ROW = 0


def _votes(**kw) -> list:
    columns = FERPLUS_VOTE_HEADER.split(',')
    votes = [0] * 10
    for key, value in kw.items():
        votes[columns.index(key)] = value
    return votes


def ferplus_rows() -> list:
    """The replica's rows: ``(Usage, Image name, 10 votes, note)``.

    Training (24 rows): 16 clear majorities (class ``i % 8`` 8 votes, the
    next class 2), a blank name, a name listed twice (happiness, then
    sadness), an unknown and an NF winner, a neutral/happiness tie, a
    neutral 4 + four single votes (a majority only after the single votes
    are zeroed) and happiness 6 / contempt 3 / anger 1. PublicTest and
    PrivateTest (10 rows each): 8 clear majorities, a blank name, and an
    unknown winner (PublicTest) or a tie (PrivateTest).

    Returns:
        list[tuple]: One tuple per row of the CSVs.
    """
    columns = FERPLUS_VOTE_HEADER.split(',')

    def clear(c):
        return _votes(**{columns[c]: 8, columns[(c + 1) % 8]: 2})

    rows = [('Training', None, clear(i % 8), 'clear') for i in range(16)]
    rows += [
        ('Training', '', _votes(happiness=10), 'blank'),
        ('Training', FERPLUS_DUPLICATE, _votes(happiness=10), 'dup'),
        ('Training', FERPLUS_DUPLICATE, _votes(sadness=10), 'dup'),
        ('Training', None, _votes(unknown=6, neutral=4), 'unknown'),
        ('Training', None, _votes(NF=10), 'nf'),
        ('Training', None, _votes(neutral=4, happiness=4, sadness=2), 'tie'),
        ('Training', None,
         _votes(neutral=4, surprise=1, sadness=1, anger=1, disgust=1),
         'outliers'),
        ('Training', None, _votes(happiness=6, contempt=3, anger=1),
         'contempt3'),
    ]
    for usage, last in (('PublicTest', ('unknown', _votes(unknown=10))),
                        ('PrivateTest', ('tie',
                                         _votes(neutral=5, happiness=5)))):
        rows += [(usage, None, clear(c), 'clear') for c in range(8)]
        rows += [(usage, '', _votes(neutral=10), 'blank'),
                 (usage, None, last[1], last[0])]
    named = []
    for r, (usage, name, votes, note) in enumerate(rows):
        if name is None:  # FERPlus names are not the row index
            name = f'fer{r * 37 + 11:07d}.png'
        named.append((usage, name, votes, note))
    return named


def ferplus_face(row: int) -> np.ndarray:
    """The 48x48 face of a replica row: pixel (0, 0) holds the row."""
    rng = np.random.default_rng(row)
    img = rng.integers(0, 60, (48, 48), dtype=np.uint8)
    img[:, (row % 8) * 6:(row % 8) * 6 + 6] += 150
    img[0, 0] = row
    return img


def make_ferplus(root: str, pngs: bool = True) -> str:
    """Write FERPlus as distributed (44 rows), with label.csv and PNGs.

    ``fer2013.csv`` and ``fer2013new.csv`` hold the rows of
    :func:`ferplus_rows` in order; ``FER2013{Train,Valid,Test}/label.csv``
    hold each non-blank name once (the later row's votes for the
    duplicated name) and disagree with ``fer2013new.csv`` on row
    :data:`FERPLUS_DISAGREE_ROW` (anger 10 instead of neutral). With
    ``pngs``, the faces are exported like FERPlus's generator does (the
    later duplicate overwrites the earlier).

    Args:
        root (str): Output folder.
        pngs (bool): Write the PNG folders. Defaults to True.

    Returns:
        str: ``root``.
    """
    rows = ferplus_rows()
    for folder in FERPLUS_FOLDERS.values():
        os.makedirs(osp.join(root, folder), exist_ok=True)
    with open(osp.join(root, 'fer2013.csv'), 'w') as f:
        f.write('emotion,pixels,Usage\n')
        for r, (usage, _, _, _) in enumerate(rows):
            pixels = ' '.join(map(str, ferplus_face(r).reshape(-1)))
            f.write(f'{r % 7},{pixels},{usage}\n')
    with open(osp.join(root, 'fer2013new.csv'), 'w') as f:
        f.write(f'Usage,Image name,{FERPLUS_VOTE_HEADER}\n')
        for usage, name, votes, _ in rows:
            f.write(f'{usage},{name},{",".join(map(str, votes))}\n')
    labels = {folder: {} for folder in FERPLUS_FOLDERS.values()}
    for r, (usage, name, votes, _) in enumerate(rows):
        if not name:
            continue
        folder = FERPLUS_FOLDERS[usage]
        if r == FERPLUS_DISAGREE_ROW:
            votes = _votes(anger=10)
        labels[folder][name] = votes
        if pngs:
            cv2.imwrite(osp.join(root, folder, name), ferplus_face(r))
    for folder, table in labels.items():
        with open(osp.join(root, folder, 'label.csv'), 'w') as f:
            for name, votes in table.items():
                f.write(f'{name},"(0, 0, 48, 48)",'
                        f'{",".join(map(str, votes))}\n')
    return root


# ---------------------------------------------------------------------------
# AffectNet: the official CSV lists, and the per-image npy release
# ---------------------------------------------------------------------------

AFFECTNET_HEADER = ('subDirectory_filePath,face_x,face_y,face_width,'
                    'face_height,facial_landmarks,expression,valence,'
                    'arousal')
# face box (x, y, w, h) of every replica image, and the landmark 0 position
AFFECTNET_BOX = (8, 10, 40, 44)
AFFECTNET_MARK = (20, 25)


def affectnet_image(index: int) -> np.ndarray:
    """A dark image with a bright 5x5 block centred on landmark 0."""
    rng = np.random.default_rng(index)
    width = 64 + 8 * (index % 3)
    img = rng.integers(0, 40, (72, width, 3), dtype=np.uint8)
    x, y = AFFECTNET_MARK
    img[y - 2:y + 3, x - 2:x + 3] = 255
    return img


def affectnet_landmarks(index: int) -> np.ndarray:
    """68 points inside the face box; point 0 is :data:`AFFECTNET_MARK`."""
    rng = np.random.default_rng(1000 + index)
    x, y, w, h = AFFECTNET_BOX
    points = np.round(rng.uniform([x, y], [x + w, y + h], (68, 2)), 2)
    points[0] = AFFECTNET_MARK
    return points


def make_affectnet(root: str, num_train: int = 22, num_val: int = 11) -> str:
    """Write AffectNet's manually annotated lists and images.

    Expression codes cycle over 0..10 (so codes 7..10 appear);
    ``training.csv`` has the header row, ``validation.csv`` has none (as
    reported for the real file). Valence/arousal are -2 for codes 9 and 10.

    Args:
        root (str): Output folder.
        num_train (int): Rows of training.csv.
        num_val (int): Rows of validation.csv.

    Returns:
        str: ``root``.
    """
    lists = osp.join(root, 'Manually_Annotated_file_lists')
    os.makedirs(lists, exist_ok=True)
    for name, count, offset, header in (('training.csv', num_train, 0, True),
                                        ('validation.csv', num_val, 500,
                                         False)):
        lines = [AFFECTNET_HEADER] if header else []
        for i in range(count):
            index = offset + i
            rel = f'{index % 3 + 1}/{index:06x}abc.jpg'
            path = osp.join(root, 'Manually_Annotated_Images', rel)
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, affectnet_image(index))
            code = i % 11
            va = ('-2,-2' if code in (9, 10) else
                  f'{(i % 5 - 2) / 2:.3f},{(i % 3 - 1) / 2:.3f}')
            landmarks = ';'.join(f'{v:.2f}'
                                 for v in affectnet_landmarks(index).ravel())
            lines.append(f'{rel},{",".join(map(str, AFFECTNET_BOX))},'
                         f'{landmarks},{code},{va}')
        with open(osp.join(lists, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def make_affectnet_npy(root: str, num_train: int = 22,
                       num_val: int = 11) -> str:
    """Write the per-image npy release (``train_set``, ``val_set``).

    ``<id>_exp.npy`` holds the code as an integer (train) or a string
    (val); ``_val``, ``_aro`` and ``_lnd`` files are written too.

    Args:
        root (str): Output folder.
        num_train (int): Train images (codes cycle over 0..10).
        num_val (int): Val images.

    Returns:
        str: ``root``.
    """
    for folder, count, as_str in (('train_set', num_train, False),
                                  ('val_set', num_val, True)):
        os.makedirs(osp.join(root, folder, 'images'), exist_ok=True)
        os.makedirs(osp.join(root, folder, 'annotations'), exist_ok=True)
        for i in range(count):
            code = i % 11
            ann = osp.join(root, folder, 'annotations', str(i))
            np.save(ann + '_exp.npy',
                    np.array(str(code) if as_str else code))
            np.save(ann + '_val.npy', np.array(0.5))
            np.save(ann + '_aro.npy', np.array(-0.5))
            np.save(ann + '_lnd.npy', affectnet_landmarks(i).ravel())
            cv2.imwrite(
                osp.join(root, folder, 'images', f'{i}.jpg'),
                affectnet_image(i))
    return root


# ---------------------------------------------------------------------------
# Any FER data: class folders (SFEW/CAER-S) and "<path> <label>" lists
# ---------------------------------------------------------------------------

SFEW_CLASSES = ('Angry', 'Disgust', 'Fear', 'Happy', 'Neutral', 'Sad',
                'Surprise')


def make_fer_folder(root: str, per_class: int = 3, size: int = 32) -> str:
    """Write an SFEW-like tree, an annotation list and landmark files.

    ``Train/<Class>/<Class>_<i>.png`` and ``Val/<Class>/...`` (two images
    per class), ``train.txt`` (``<Class>/<file> <label>``, 0-based in
    :data:`SFEW_CLASSES` order) and ``landmarks/Train/<Class>/<stem>.txt``
    (5 ``x y`` lines; point 0 = ``(i, label)``).

    Args:
        root (str): Output folder.
        per_class (int): Train images per class.
        size (int): Image side.

    Returns:
        str: ``root``.
    """
    rng = np.random.default_rng(0)
    lines = []
    for split, count in (('Train', per_class), ('Val', 2)):
        for label, name in enumerate(SFEW_CLASSES):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                file = f'{name}_{i}.png'
                _write_image(osp.join(folder, file), rng, size, label)
                if split != 'Train':
                    continue
                lines.append(f'{name}/{file} {label}')
                points = rng.uniform(0, size, (5, 2))
                points[0] = (i, label)
                lm_dir = osp.join(root, 'landmarks', split, name)
                os.makedirs(lm_dir, exist_ok=True)
                _write_points(osp.join(lm_dir, f'{name}_{i}.txt'), points)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return root
