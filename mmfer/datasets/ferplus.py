# Copyright (c) OpenMMLab. All rights reserved.
import csv
import os
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS

from .base_fer import BaseFERDataset
from .class_map import CLASS_ORDERS

FERPLUS_CLASSES = CLASS_ORDERS['ferplus']
# The ten vote columns of fer2013new.csv and label.csv, in file order.
FERPLUS_VOTE_COLUMNS = ('neutral', 'happiness', 'surprise', 'sadness', 'anger',
                        'disgust', 'fear', 'contempt', 'unknown', 'NF')
# split -> (Usage value in the CSVs, image folder of the FERPlus layout)
FERPLUS_SPLITS = {
    'train': ('Training', 'FER2013Train'),
    'val': ('PublicTest', 'FER2013Valid'),
    'test': ('PrivateTest', 'FER2013Test'),
}
FER2013_SIZE = 48
_NUM_PIXELS = FER2013_SIZE * FER2013_SIZE
_UNKNOWN, _CONTEMPT = 8, 7
_CHUNK = 4096

# Decoded fer2013.csv files: (realpath, mtime_ns, size) -> (images, usages,
# line numbers). A process decodes a file once, however many datasets
# (train/val/test, repeated builds in tests) read it.
_PIXEL_CACHE: OrderedDict = OrderedDict()
_PIXEL_CACHE_SIZE = 2


def _open_csv(path: str, what: str):
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist; see '
                                'docs/datasets.md (FERPlus) for where to get '
                                'it and where to put it.')
    return open(path, newline='')


def _column_index(header: Sequence[str], names: Sequence[str],
                  path: str) -> List[int]:
    stripped = [h.strip() for h in header]
    missing = [n for n in names if n not in stripped]
    if missing:
        raise ValueError(
            f'{path}: the header {stripped} lacks the column(s) {missing}; '
            'is this the right file, unmodified?')
    return [stripped.index(n) for n in names]


def _csv_rows(path: str, what: str, columns: Sequence[str]):
    """Yield ``(line, row, indices)`` of a CSV with a header row.

    Checks that the header has ``columns`` and that every non-empty row has
    as many fields as the header, naming the line otherwise.
    """
    with _open_csv(path, what) as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        indices = _column_index(header, columns, path)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f'{path}:{reader.line_num}: expected {len(header)} '
                    f'comma-separated fields ({",".join(header)}), got '
                    f'{len(row)}.')
            yield reader.line_num, row, indices


def _count_lines(path: str) -> int:
    count = 0
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 24), b''):
            count += block.count(b'\n')
    return count + 1


def load_fer2013_pixels(
        path: str) -> Tuple[np.ndarray, Tuple[str, ...], np.ndarray]:
    """Decode every face of a FER2013 CSV, once per process.

    Reads ``fer2013.csv`` (``emotion,pixels,Usage``; the ``icml_face_data``
    variant with spaces in the header works too). Each ``pixels`` field is
    parsed by numpy's C parser, so the 35,887 rows take seconds.

    Args:
        path (str): The CSV file.

    Returns:
        tuple: ``images`` (read-only uint8 ``(N, 48, 48)``), ``usages``
        (the ``Usage`` of each row) and ``lines`` (the 1-based line number
        of each row, for messages).
    """
    _open_csv(path, 'FER2013 file').close()  # a clear error if missing
    stat = os.stat(path)
    key = (osp.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key in _PIXEL_CACHE:
        _PIXEL_CACHE.move_to_end(key)
        return _PIXEL_CACHE[key]
    # Allocate the result once (an upper bound of the row count) so the
    # peak memory is the decoded faces plus one small parsing buffer.
    images = np.empty((_count_lines(path), _NUM_PIXELS), dtype=np.uint8)
    usages, lines = [], []
    buffer = np.empty((_CHUNK, _NUM_PIXELS), dtype=np.int16)
    filled = 0

    def flush():
        block = buffer[:filled]
        bad = np.flatnonzero((block < 0).any(1) | (block > 255).any(1))
        if len(bad):
            line = lines[len(lines) - filled + bad[0]]
            raise ValueError(f'{path}:{line}: column "pixels" has values '
                             'outside 0..255.')
        images[len(lines) - filled:len(lines)] = block

    for line, row, (pix, usage) in _csv_rows(path, 'FER2013 file',
                                             ('pixels', 'Usage')):
        try:
            values = np.fromstring(row[pix], dtype=np.int16, sep=' ')
        except ValueError:
            values = None
        if values is None or values.size != _NUM_PIXELS:
            found = ('non-integer values'
                     if values is None else f'{values.size} values')
            raise ValueError(
                f'{path}:{line}: column "pixels" has {found}; expected '
                f'{_NUM_PIXELS} space-separated grey levels (a 48x48 '
                'face). The file is truncated or not the FER2013 CSV.')
        buffer[filled] = values
        filled += 1
        usages.append(row[usage].strip())
        lines.append(line)
        if filled == _CHUNK:
            flush()
            filled = 0
    if filled:
        flush()
    images = images[:len(lines)].reshape(-1, FER2013_SIZE, FER2013_SIZE)
    # shared by every dataset and worker: nobody may write into it
    images.flags.writeable = False
    entry = (images, tuple(usages), np.array(lines, dtype=np.int64))
    _PIXEL_CACHE[key] = entry
    while len(_PIXEL_CACHE) > _PIXEL_CACHE_SIZE:
        _PIXEL_CACHE.popitem(last=False)
    return entry


def _parse_votes(tokens: Sequence[str], path: str, line: int) -> List[int]:
    try:
        votes = [int(t) for t in tokens]
    except ValueError:
        votes = [-1]
    if min(votes) < 0:
        raise ValueError(
            f'{path}:{line}: the vote columns '
            f'({", ".join(FERPLUS_VOTE_COLUMNS)}) must be non-negative '
            f'integers, got {list(tokens)}.')
    return votes


def read_fer2013new(
        path: str) -> Tuple[List[str], List[str], np.ndarray, List[int]]:
    """Read FERPlus's ``fer2013new.csv``.

    Args:
        path (str): The file.

    Returns:
        tuple: ``usages``, ``names`` (``''`` where FERPlus dropped the
        image), ``votes`` (int64 ``(N, 10)``) and ``lines`` (1-based).
    """
    usages, names, votes, lines = [], [], [], []
    columns = ('Usage', 'Image name') + FERPLUS_VOTE_COLUMNS
    for line, row, cols in _csv_rows(path, 'FERPlus vote file', columns):
        usages.append(row[cols[0]].strip())
        names.append(row[cols[1]].strip())
        votes.append(_parse_votes([row[c] for c in cols[2:]], path, line))
        lines.append(line)
    return usages, names, np.array(votes, np.int64).reshape(-1, 10), lines


def read_label_csv(path: str) -> Tuple[List[str], np.ndarray, List[int]]:
    """Read a FERPlus ``FER2013*/label.csv`` (no header).

    Rows are ``ferXXXXXXX.png,"(0, 0, 48, 48)",<10 votes>``.

    Args:
        path (str): The file.

    Returns:
        tuple: ``names``, ``votes`` (int64 ``(N, 10)``) and ``lines``.
    """
    names, votes, lines = [], [], []
    with _open_csv(path, 'FERPlus label file') as f:
        reader = csv.reader(f)
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != 12:
                raise ValueError(
                    f'{path}:{line}: expected 12 fields (image name, face '
                    f'box "(0, 0, 48, 48)", 10 vote counts), got {len(row)}.'
                    ' label.csv has no header row.')
            names.append(row[0].strip())
            votes.append(_parse_votes(row[2:], path, line))
            lines.append(line)
    return names, np.array(votes, np.int64).reshape(-1, 10), lines


def ferplus_labels(
        votes: np.ndarray, mode: str, num_classes: int
) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """Turn FERPlus vote counts into labels.

    Votes of 0 or 1 are zeroed first (FERPlus's outlier removal). Then

    - ``'majority'``: the winning emotion must have more than half of the
      remaining votes; otherwise the sample is dropped (reason
      ``'no majority'``).
    - ``'probability'``: the label is the argmax (ties go to the earlier
      column) and ``scores`` is the vote distribution over the kept classes.

    In both modes samples won by ``unknown`` or ``NF`` are dropped, and with
    ``num_classes=7`` samples won by contempt are dropped too (contempt
    votes are removed from the distribution of the others).

    Args:
        votes (np.ndarray): ``(N, 10)`` vote counts in
            :data:`FERPLUS_VOTE_COLUMNS` order.
        mode (str): ``'majority'`` or ``'probability'``.
        num_classes (int): 8 (with contempt) or 7.

    Returns:
        tuple: ``labels`` (int64 ``(N,)``), ``scores`` (float32
        ``(N, num_classes)``, None in majority mode) and ``reasons`` (``''``
        for a kept sample, else why it is dropped).
    """
    votes = np.asarray(votes, dtype=np.float64).reshape(-1, 10).copy()
    votes[votes <= 1] = 0
    total = votes.sum(1)
    winner = votes.argmax(1)
    reasons = np.full(len(votes), '', dtype=object)
    if mode == 'majority':
        reasons[votes.max(1) <= 0.5 * total] = 'no majority'
    else:
        reasons[total == 0] = 'no votes left'
    reasons[(reasons == '') & (winner >= _UNKNOWN)] = 'unknown/NF'
    if num_classes == 7:
        reasons[(reasons == '') & (winner == _CONTEMPT)] = 'contempt'
    scores = None
    if mode == 'probability':
        kept = votes[:, :num_classes]
        sums = kept.sum(1, keepdims=True)
        scores = (kept / np.where(sums > 0, sums, 1)).astype(np.float32)
    return winner.astype(np.int64), scores, reasons


@DATASETS.register_module()
class FERPlusDataset(BaseFERDataset):
    """FERPlus: FER2013 faces with Microsoft's 10-annotator votes.

    Expected layout (``data_root``, e.g. ``data/ferplus``)::

        data_root/
          fer2013.csv       # Kaggle FER2013: emotion,pixels,Usage
          fer2013new.csv    # microsoft/FERPlus: Usage,Image name,10 votes
          FER2013Train/label.csv   # microsoft/FERPlus data/ (vote_source=
          FER2013Valid/label.csv   #   'label_csv' only), no header
          FER2013Test/label.csv
          FER2013Train/fer0000000.png ...  # img_source='folders' only: the
          FER2013Valid/...  FER2013Test/... # PNGs FERPlus's generator writes

    **Images.** ``img_source='csv'`` decodes the faces from ``fer2013.csv``
    (joined to ``fer2013new.csv`` by row position: the image names are not
    the row index). They are decoded once per process into one read-only
    uint8 ``(N, 48, 48)`` array shared by every dataset; the data list only
    holds each sample's row (``img_index``), and :meth:`prepare_data` hands
    the face to the pipeline as ``results['img']``, which
    :class:`LoadFERImage` turns into a 3-channel BGR image.
    ``img_source='folders'`` reads the exported PNGs of
    ``FER2013Train/Valid/Test``.

    **Votes.** ``vote_source='fer2013new'`` (default) reads
    ``fer2013new.csv``; ``'label_csv'`` reads the per-folder ``label.csv``
    files that Microsoft's own trainer uses (they disagree with
    ``fer2013new.csv`` on ~1,600 images). Rows with a blank image name are
    dropped (FERPlus dropped those faces). The 4 names that
    ``fer2013new.csv`` lists twice are different faces: from the CSV both
    rows are kept, named ``<Image name>@<line>`` (the line of
    ``fer2013new.csv``) so noise files can address them; with exported PNGs
    or ``label.csv`` only the later row exists (FERPlus's generator
    overwrote the earlier PNG, and ``label.csv`` has one row per name).

    **Labels** (:func:`ferplus_labels`): ``label_mode='majority'`` is the
    FERPlus rule; ``'probability'`` keeps the normalised vote distribution
    as ``gt_score`` (for soft-target losses, e.g.
    ``CrossEntropyLoss(use_soft=True)``) and its argmax as ``gt_label``.
    ``label_mode`` applies to the training split: validation and test
    always use majority labels (the FERPlus protocol). Classes (8):
    Neutral, Happiness, Surprise, Sadness, Anger, Disgust, Fear, Contempt;
    ``num_classes=7`` drops Contempt. Splits: ``'train'`` = Training,
    ``'val'`` = PublicTest, ``'test'`` = PrivateTest.

    Noise files have ``<name> <label>`` lines with 0-based labels in this
    class order.

    Args:
        data_root (str): The FERPlus folder.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
            Defaults to ``'train'``.
        label_mode (str): ``'majority'`` or ``'probability'``.
            Defaults to ``'majority'``.
        num_classes (int): 8 (with contempt) or 7. Defaults to 8.
        vote_source (str): ``'fer2013new'`` or ``'label_csv'``.
            Defaults to ``'fer2013new'``.
        img_source (str): ``'csv'`` or ``'folders'``. Defaults to ``'csv'``.
        pixel_file (str): FER2013 CSV relative to ``data_root``.
            Defaults to ``'fer2013.csv'``.
        vote_file (str): FERPlus vote CSV relative to ``data_root``.
            Defaults to ``'fer2013new.csv'``.
        **kwargs: Noise options of :class:`BaseFERDataset` and options of
            :class:`mmpretrain.datasets.BaseDataset` (``pipeline``...).
    """

    METAINFO = dict(classes=FERPLUS_CLASSES)

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 label_mode: str = 'majority',
                 num_classes: int = 8,
                 vote_source: str = 'fer2013new',
                 img_source: str = 'csv',
                 pixel_file: str = 'fer2013.csv',
                 vote_file: str = 'fer2013new.csv',
                 **kwargs) -> None:
        for key, value, choices in (
            ('split', split, tuple(FERPLUS_SPLITS)),
            ('label_mode', label_mode, ('majority', 'probability')),
            ('num_classes', num_classes, (7, 8)),
            ('vote_source', vote_source, ('fer2013new', 'label_csv')),
            ('img_source', img_source, ('csv', 'folders')),
        ):
            if value not in choices:
                raise ValueError(f'FERPlusDataset: {key}={value!r} must be '
                                 f'one of {choices}.')
        if not osp.isdir(data_root):
            raise FileNotFoundError(
                f'FERPlus data_root {data_root} does not exist. Put '
                'fer2013.csv and fer2013new.csv there (see docs/datasets.md)'
                ' or set data_root.')
        self.label_mode = label_mode
        self.num_classes = num_classes
        self.vote_source = vote_source
        self.img_source = img_source
        self.pixel_file = osp.join(data_root, pixel_file)
        self.vote_file = osp.join(data_root, vote_file)
        folder = FERPLUS_SPLITS[split][1]
        ann_file = (
            vote_file if vote_source == 'fer2013new' else osp.join(
                folder, 'label.csv'))
        super().__init__(
            split=split, data_root=data_root, ann_file=ann_file, **kwargs)

    def native_class_names(self) -> Sequence[str]:
        """The 8 FERPlus classes, or the first 7 for ``num_classes=7``.

        Returns:
            Sequence[str]: Class names.
        """
        return FERPLUS_CLASSES[:self.num_classes]

    @property
    def effective_label_mode(self) -> str:
        """str: The label mode used: evaluation splits use majority."""
        return self.label_mode if self.split in self.train_splits \
            else 'majority'

    def load_annotations(self) -> List[dict]:
        """Join images and votes of ``self.split`` and derive the labels.

        Returns:
            list[dict]: Samples with ``img_path``, ``gt_label``, ``name``,
            ``img_index`` (row of ``fer2013.csv``, CSV images only) and
            ``gt_score`` (probability mode only).
        """
        usage, folder = FERPLUS_SPLITS[self.split]
        folder = osp.join(self.data_root, folder)
        stats: Dict[str, int] = Counter()
        if self.vote_source == 'fer2013new':
            rows = self._rows_from_fer2013new(usage, folder, stats)
        else:
            rows = self._rows_from_label_csv(usage, folder, stats)
        mode = self.effective_label_mode
        labels, scores, reasons = ferplus_labels(
            np.array([r['votes'] for r in rows]).reshape(-1, 10), mode,
            self.num_classes)
        data_list = []
        for i, row in enumerate(rows):
            if reasons[i]:
                stats[reasons[i]] += 1
                continue
            info = dict(
                img_path=row['img_path'],
                gt_label=int(labels[i]),
                name=row['name'])
            if 'img_index' in row:
                info['img_index'] = row['img_index']
            if scores is not None:
                info['gt_score'] = scores[i]
            data_list.append(info)
        if self.img_source == 'folders':
            self.check_images_exist(data_list, self.ann_file)
        self._log_load(mode, len(data_list), stats)
        return data_list

    def annotation_names(self, data_list: List[dict]) -> Set[str]:
        """Every image name of the vote files, in every split.

        It includes the images a split drops (no majority, Contempt with
        ``num_classes=7``...), so one noise file for all of FERPlus serves
        every split and option.

        Args:
            data_list (list[dict]): The split's samples (their names cover
                the ``<Image name>@<line>`` of listed-twice images).

        Returns:
            set[str]: The names.
        """
        if self.vote_source == 'fer2013new':
            names = read_fer2013new(self.vote_file)[1]
        else:
            names = []
            for _, folder in FERPLUS_SPLITS.values():
                path = osp.join(self.data_root, folder, 'label.csv')
                if osp.isfile(path):
                    names += read_label_csv(path)[0]
        return {n for n in names if n} | super().annotation_names(data_list)

    def _rows_from_fer2013new(self, usage: str, folder: str,
                              stats: Counter) -> List[dict]:
        usages, names, votes, lines = read_fer2013new(self.vote_file)
        if self.img_source == 'csv':
            self._load_images(usages, lines)
        picked = [i for i, u in enumerate(usages) if u == usage and names[i]]
        stats['blank image name'] = sum(1 for i, u in enumerate(usages)
                                        if u == usage and not names[i])
        counts = Counter(names[i] for i in picked)
        if self.img_source == 'folders':
            # one PNG per name: FERPlus's generator kept the later row's face
            last = {names[i]: i for i in picked}
            stats['duplicate name, PNG overwritten'] = len(picked) - len(last)
            picked = sorted(last.values())
        rows = []
        for i in picked:
            name = names[i]
            if counts[name] > 1 and self.img_source == 'csv':
                name = f'{name}@{lines[i]}'
            row = dict(name=name, votes=votes[i])
            if self.img_source == 'csv':
                row.update(
                    img_index=i, img_path=f'{self.pixel_file}:{lines[i]}')
            else:
                row['img_path'] = osp.join(folder, names[i])
            rows.append(row)
        return rows

    def _rows_from_label_csv(self, usage: str, folder: str,
                             stats: Counter) -> List[dict]:
        names, votes, lines = read_label_csv(self.ann_file)
        seen: Dict[str, int] = {}
        for name, line in zip(names, lines):
            if name in seen:
                raise ValueError(
                    f'{self.ann_file}:{line}: image {name} is listed again '
                    f'(first on line {seen[name]}); label.csv has one row '
                    'per image.')
            seen[name] = line
        if self.img_source == 'folders':
            return [
                dict(name=n, votes=v, img_path=osp.join(folder, n))
                for n, v in zip(names, votes)
            ]
        # label.csv names the PNGs; their faces are rows of fer2013.csv,
        # found through the Image name column of fer2013new.csv.
        new_usages, new_names, _, new_lines = read_fer2013new(self.vote_file)
        self._load_images(new_usages, new_lines)
        row_of = {
            n: i
            for i, (u, n) in enumerate(zip(new_usages, new_names))
            if u == usage and n
        }
        rows = []
        for name, vote, line in zip(names, votes, lines):
            if name not in row_of:
                raise ValueError(
                    f'{self.ann_file}:{line}: image {name} has no {usage} '
                    f'row in {self.vote_file}, so its face cannot be found '
                    'in fer2013.csv. Use the label.csv and fer2013new.csv of '
                    "the same FERPlus release, or img_source='folders'.")
            i = row_of[name]
            rows.append(
                dict(
                    name=name,
                    votes=vote,
                    img_index=i,
                    img_path=f'{self.pixel_file}:{new_lines[i]}'))
        return rows

    def _load_images(self, usages: List[str], lines: List[int]) -> None:
        images, pixel_usages, pixel_lines = load_fer2013_pixels(
            self.pixel_file)
        if len(images) != len(usages):
            raise ValueError(
                f'{self.pixel_file} has {len(images)} rows but '
                f'{self.vote_file} has {len(usages)}. FERPlus joins them by '
                'row position, so both must be the complete, unmodified '
                'originals (35,887 rows each).')
        bad = [
            i for i, (a, b) in enumerate(zip(pixel_usages, usages)) if a != b
        ]
        if bad:
            i = bad[0]
            raise ValueError(
                f'{self.vote_file}:{lines[i]} has Usage {usages[i]!r} but '
                f'the same row of {self.pixel_file} (line '
                f'{pixel_lines[i]}) has {pixel_usages[i]!r}; {len(bad)} '
                'rows disagree. FERPlus joins the files by row position: '
                'use the unmodified originals (no sorting or filtering).')
        self.images = images

    def _log_load(self, mode: str, kept: int, stats: Counter) -> None:
        votes = ('fer2013new.csv'
                 if self.vote_source == 'fer2013new' else 'label.csv')
        images = (f'faces decoded from {self.pixel_file}'
                  if self.img_source == 'csv' else 'PNG folders')
        dropped = ', '.join(f'{reason} {n}'
                            for reason, n in sorted(stats.items()) if n)
        note = ''
        if self.label_mode != mode:
            note = (f' (label_mode={self.label_mode!r} applies to training '
                    'only; evaluation splits use majority labels)')
        MMLogger.get_current_instance().info(
            f'FERPlusDataset({self.split}): votes from {votes} '
            f'({self.ann_file}), {images}; {mode} labels{note}, '
            f'{self.num_classes} classes; {kept} samples kept, dropped: '
            f'{dropped or "none"}')

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Votes: \t{self.vote_source}', f'Images: \t{self.img_source}',
            f'Label mode: \t{self.effective_label_mode}'
        ]
