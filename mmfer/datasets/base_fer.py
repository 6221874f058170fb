# Copyright (c) OpenMMLab. All rights reserved.
"""The base of every mmfer dataset: noisy labels and bad-input errors."""
import os.path as osp
from typing import List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from mmengine.logging import MMLogger
from mmpretrain.datasets import BaseDataset

from .class_map import class_index_map, remap_scores, resolve_label_map
from .image_cache import decode_images, find_image_loader
from .noise import (NOISE_TYPES, asymmetric_transition, check_noise_rate,
                    check_transition, flip_labels, lanet_flip_labels,
                    noise_summary, symmetric_transition)
from .sample_seed import SampleSeeder

_NOISE_FILE_FIX = ('Use a noise file made for this annotation list, or '
                   'write one with tools/dataset_converters/'
                   'make_noisy_labels.py.')


class BaseFERDataset(BaseDataset):
    """Base class of FER datasets with optional synthetic or file label noise.

    A subclass only parses its files: it implements :meth:`load_annotations`
    returning one dict per sample with ``img_path``, ``gt_label`` (the clean
    label, 0-based) and ``name`` (the key noise files use, unique within a
    split), plus anything else (e.g. ``landmarks``, or ``gt_score``, a
    float32 label distribution in native class order for soft-target
    losses). This class then validates the labels, injects the noise on
    training splits, and adds ``clean_label`` and ``is_noisy`` to every
    sample; ``gt_label`` becomes the label trained on, and a flipped
    sample's ``gt_score`` becomes the one-hot of its noisy label. A subclass
    whose classes depend on its options overrides
    :meth:`native_class_names`.

    Args:
        split (str): The split to read. Noise is allowed only on
            ``train_splits``; evaluation splits are always clean.
        noise_file (str, optional): A label file ``<name> <label>`` that
            replaces the training labels (the EAC format: RAF-DB's
            ``noise01/02/03.txt``). Labels use the dataset's own file
            convention (``file_label_base``); LF or CRLF line ends.
            Relative paths are joined to ``data_root``. It must label every
            sample of the split; rows of samples the annotation files list
            outside the split (e.g. the test rows of ReSup's RAF-DB files,
            which hold all 15,339 rows) are ignored and counted in the log,
            and names the annotation files do not list at all are an error
            (see :meth:`annotation_names`). Defaults to None.
        noise_rate (float): Share of training labels flipped at random.
            Defaults to 0.
        noise_type (str): ``'symmetric'`` (to a uniform other class),
            ``'asymmetric'`` (to the most confused class, see
            :data:`mmfer.datasets.noise.ASYMMETRIC_FER_TARGETS`) or
            ``'lanet'`` (symmetric, drawn exactly as LA-Net's code draws it,
            see :func:`mmfer.datasets.noise.lanet_flip_labels`; needs the 7
            basic expressions). Defaults to ``'symmetric'``.
        noise_transition (array-like, optional): A user ``(C, C)``
            transition matrix; replaces ``noise_rate``/``noise_type``.
        noise_seed (int): Seed of the label flipping. Defaults to 0, which
            with ``noise_type='lanet'`` is LA-Net's seed.
        label_map (str | Sequence[str], optional): Remap the dataset's native
            classes to another class order, matched by expression name
            (``'Happy'`` = ``'Happiness'``...): a sequence of class names, or
            the name of a dataset whose order to use (``'rafdb'``,
            ``'ferplus'``, ``'affectnet'``, ``'fer2013'``). Samples of native
            classes absent from the target (e.g. Contempt for a 7-class
            order) are dropped and counted in the log. Noise files use
            native labels; seeded noise is drawn in the target order.
            Defaults to None (native order).
        cache_images (bool): Decode every image of the split once when the
            dataset is built and hold them in one read-only uint8 array
            ``(N, H, W, 3)``, which :class:`LoadFERImage` (it must be the
            first transform) then takes instead of reading the file, with
            the same pixels. For small images of one size (RAF-DB aligned
            crops, SynthFER, 48x48 folders). Data-loading workers forked
            after the build share the array without copying it; with the
            ``spawn`` start method each worker gets a copy. Every DDP rank
            builds its own cache. Defaults to False.
        cache_max_gb (float): ``cache_images`` refuses a cache larger than
            this many GiB. Defaults to 2.
        **kwargs: Passed to :class:`mmpretrain.datasets.BaseDataset`.
    """

    train_splits: Tuple[str, ...] = ('train', )
    # The integer a label file uses for class 0 (RAF-DB files are 1-based).
    file_label_base: int = 0

    def __init__(self,
                 split: str = 'train',
                 noise_file: Optional[str] = None,
                 noise_rate: float = 0.0,
                 noise_type: str = 'symmetric',
                 noise_transition: Optional[Sequence[Sequence[float]]] = None,
                 noise_seed: int = 0,
                 label_map: Optional[Union[str, Sequence[str]]] = None,
                 cache_images: bool = False,
                 cache_max_gb: float = 2.0,
                 **kwargs) -> None:
        self.split = split
        self.cache_images = cache_images
        self.cache_max_gb = float(cache_max_gb)
        # Decoded images in memory; a sample's row is its ``img_index``.
        self.images: Optional[np.ndarray] = None
        self.noise_file = noise_file
        self.noise_rate = check_noise_rate(noise_rate)
        if noise_type not in NOISE_TYPES:
            raise ValueError(f'noise_type={noise_type!r} is not one of '
                             f'{NOISE_TYPES}.')
        self.noise_type = noise_type
        self.noise_transition = noise_transition
        self.noise_seed = int(noise_seed)
        self.noise_report: Optional[dict] = None
        if self.has_noise and split not in self.train_splits:
            raise ValueError(
                f'{type(self).__name__}: label noise was requested for split '
                f'{split!r}, but evaluation splits are always clean. Remove '
                'noise_file/noise_rate/noise_transition from the val/test '
                'dataset config.')
        if noise_file is not None and (self.noise_rate > 0
                                       or noise_transition is not None):
            raise ValueError('Give either noise_file or noise_rate/'
                             'noise_transition, not both.')
        self.native_classes = tuple(self.native_class_names())
        self.target_classes = resolve_label_map(label_map,
                                                self.native_classes)
        if label_map is not None:
            if kwargs.get('metainfo') or kwargs.get('classes'):
                raise ValueError('Give label_map or metainfo/classes, not '
                                 'both: label_map already sets the classes.')
            kwargs['metainfo'] = dict(classes=self.target_classes)
        elif not kwargs.get('metainfo') and not kwargs.get('classes'):
            # A dataset whose classes depend on its options (FERPlus and
            # AffectNet with 7 or 8 classes, FERDataset's `classes`)
            # declares them through native_class_names().
            kwargs['metainfo'] = dict(classes=self.native_classes)
        super().__init__(**kwargs)

    def native_class_names(self) -> Sequence[str]:
        """The classes in the order the dataset's files use.

        Returns:
            Sequence[str]: Class names; ``METAINFO['classes']`` by default.
        """
        return type(self).METAINFO['classes']

    @property
    def has_noise(self) -> bool:
        """bool: Whether this dataset injects label noise."""
        return (self.noise_file is not None or self.noise_rate > 0
                or self.noise_transition is not None)

    def load_annotations(self) -> List[dict]:
        """Parse the dataset's files.

        Returns:
            list[dict]: One dict per sample with ``img_path``, ``gt_label``
            (clean, 0-based) and ``name``.
        """
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Load annotations, remap classes, then attach clean/noisy labels.

        Returns:
            list[dict]: The data list.
        """
        data_list = self.load_annotations()
        if not data_list:
            raise ValueError(
                f'{type(self).__name__}: no sample found for split '
                f'{self.split!r} in {self.ann_file}; check `split` and the '
                'annotation file.')
        file_noisy = (
            self._read_noise_file(data_list)
            if self.noise_file is not None else None)
        data_list, file_noisy = self._remap(data_list, file_noisy)
        clean = np.array([info['gt_label'] for info in data_list])
        noisy = file_noisy if file_noisy is not None else self._draw_noise(
            clean)
        num_classes = len(self.target_classes)
        for info, label in zip(data_list, noisy):
            info['clean_label'] = info['gt_label']
            info['gt_label'] = int(label)
            info['is_noisy'] = bool(label != info['clean_label'])
            if info['is_noisy'] and 'gt_score' in info:
                # Soft-target losses train on gt_score, not gt_label: a
                # flipped sample's distribution must carry its noisy label.
                info['gt_score'] = np.eye(
                    num_classes, dtype=np.float32)[info['gt_label']]
        if self.has_noise:
            self.noise_report = noise_summary(clean, noisy,
                                              self.target_classes)
            self._log_noise(self.noise_report)
        if self.cache_images:
            self._cache_images(data_list)
        return data_list

    def _cache_images(self, data_list: List[dict]) -> None:
        owner = f'{type(self).__name__}({self.split})'
        if self.images is not None:
            MMLogger.get_current_instance().info(
                f'{owner}: cache_images=True ignored, the images are '
                'already decoded in memory.')
            return
        # Built here, before filtering, subsets and serialization, so that
        # each sample carries its row wherever these move it.
        loader = find_image_loader(self.pipeline, owner)
        self.images = decode_images([d['img_path'] for d in data_list],
                                    loader.decode, self.cache_max_gb, owner)
        for row, info in enumerate(data_list):
            info['img_index'] = row

    def _remap(self, data_list: List[dict], file_noisy: Optional[np.ndarray]
               ) -> Tuple[List[dict], Optional[np.ndarray]]:
        if self.target_classes == self.native_classes:
            return data_list, file_noisy
        index = class_index_map(self.native_classes, self.target_classes)
        keep = [index[d['gt_label']] >= 0 for d in data_list]
        if file_noisy is not None:
            keep = [k and index[y] >= 0 for k, y in zip(keep, file_noisy)]
            file_noisy = np.array(
                [index[y] for k, y in zip(keep, file_noisy) if k],
                dtype=np.int64)
        kept = []
        for info, k in zip(data_list, keep):
            if not k:
                continue
            info['gt_label'] = int(index[info['gt_label']])
            if 'gt_score' in info:
                info['gt_score'] = remap_scores(info['gt_score'], index,
                                                len(self.target_classes))
            kept.append(info)
        dropped = len(data_list) - len(kept)
        if dropped:
            MMLogger.get_current_instance().info(
                f'{type(self).__name__}({self.split}): label_map dropped '
                f'{dropped} of {len(data_list)} samples whose class is not '
                f'in {list(self.target_classes)}')
        return kept, file_noisy

    def _draw_noise(self, clean: np.ndarray) -> np.ndarray:
        num_classes = len(self.target_classes)
        if self.noise_transition is not None:
            matrix = check_transition(self.noise_transition, num_classes)
        elif self.noise_rate == 0:
            return clean
        elif self.noise_type == 'lanet':
            return lanet_flip_labels(clean, self.target_classes,
                                     self.noise_rate, self.noise_seed)
        elif self.noise_type == 'symmetric':
            matrix = symmetric_transition(num_classes, self.noise_rate)
        else:
            matrix = asymmetric_transition(self.target_classes,
                                           self.noise_rate)
        return flip_labels(clean, matrix, self.noise_seed)

    def _read_noise_file(self, data_list: List[dict]) -> np.ndarray:
        path = self.noise_file
        if not osp.isabs(path) and self.data_root:
            path = osp.join(self.data_root, path)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'noise_file {path} does not exist. Put the public noise '
                'files (e.g. EAC\'s noise03.txt for RAF-DB) there, or write '
                'one with `python tools/dataset_converters/'
                'make_noisy_labels.py`.')
        labels, lines = {}, {}
        for name, label, line_no in self.parse_label_lines(path):
            if name in lines:
                raise ValueError(
                    f'{path}:{line_no}: {name} is labelled again (first on '
                    f'line {lines[name]}); a noise file has one row per '
                    'sample. Remove one of the two rows.')
            labels[name], lines[name] = label, line_no
        names = [info['name'] for info in data_list]
        if len(set(names)) != len(names):
            raise ValueError(
                f'{type(self).__name__}: sample names of the {self.split!r} '
                'split are not unique, so a noise file cannot address them; '
                'give each sample a unique name in load_annotations().')
        in_split = set(names)
        outside = [n for n in labels if n not in in_split]
        if outside:
            listed = self.annotation_names(data_list)
            unknown = [n for n in outside if n not in listed]
            if unknown:
                raise ValueError(
                    f'{path}:{lines[unknown[0]]}: {unknown[0]} is not a '
                    f'sample of {self.ann_file} ({len(unknown)} such rows, '
                    f'e.g. {unknown[:3]}). {_NOISE_FILE_FIX}')
        missing = [n for n in names if n not in labels]
        if missing:
            raise ValueError(
                f'noise_file {path} has no label for {len(missing)} of '
                f'{len(names)} samples of the {self.split!r} split of '
                f'{self.ann_file} (e.g. {missing[:3]}). {_NOISE_FILE_FIX}')
        if outside:
            # e.g. ReSup's RAF-DB files: their test rows are corrupted too,
            # and evaluation must keep the clean labels.
            MMLogger.get_current_instance().info(
                f'{type(self).__name__}({self.split}): ignored '
                f'{len(outside)} rows of noise_file {path} that label '
                f'samples outside the {self.split!r} split (e.g. '
                f'{outside[0]}); evaluation reads its labels from the '
                'annotation list, never from the noise file.')
        return np.array([labels[n] for n in names], dtype=np.int64)

    def annotation_names(self, data_list: List[dict]) -> Set[str]:
        """The sample names the annotation files list, in every split.

        A noise file may label any of them: rows of names outside this
        split's ``data_list`` are ignored, and other names are an error.
        Datasets whose one annotation list holds all splits (RAF-DB,
        FERPlus) override this; the default, for datasets with one list per
        split, is the split's own names.

        Args:
            data_list (list[dict]): The split's samples, with ``name``.

        Returns:
            set[str]: The names.
        """
        return {info['name'] for info in data_list}

    def parse_label_lines(self, path: str):
        """Yield ``(name, label, line_no)`` from a ``<name> <label>`` file.

        The label is converted to 0-based with ``file_label_base`` and
        checked against the number of classes.

        Args:
            path (str): The label file.

        Yields:
            tuple: ``(name, label, line_no)``.
        """
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise ValueError(
                        f'{path}:{line_no}: expected "<image name> <label>", '
                        f'got {line.strip()!r}. Fix or remove this line.')
                yield fields[0], self.check_label(fields[1], path,
                                                  line_no), line_no

    def check_label(self, token: str, path: str, line_no: int) -> int:
        """Convert a file label to a 0-based class index, or raise.

        Args:
            token (str): The label as written in the file.
            path (str): The file, for the message.
            line_no (int): The line, for the message.

        Returns:
            int: The 0-based label.
        """
        base, num = self.file_label_base, len(self.native_classes)
        try:
            label = int(token) - base
        except ValueError:
            label = -1
        if not 0 <= label < num:
            raise ValueError(
                f'{path}:{line_no}: label {token!r} is out of range; '
                f'{type(self).__name__} expects an integer in '
                f'{base}..{base + num - 1} '
                f'({", ".join(self.native_classes)}).')
        return label

    def check_images_exist(self, data_list: List[dict], source: str) -> None:
        """Raise one error listing the images that are not on disk.

        Args:
            data_list (list[dict]): Samples with ``img_path``.
            source (str): The annotation file they came from.
        """
        missing = [d['img_path'] for d in data_list
                   if not osp.isfile(d['img_path'])]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(data_list)} images listed in '
                f'{source} are missing, e.g. {missing[:3]}. Check '
                '`data_root` and that the dataset was fully extracted '
                '(see docs/datasets.md).')

    def _log_noise(self, report: dict) -> None:
        source = (f'noise file {self.noise_file}' if self.noise_file else
                  f'{self.noise_type} noise, seed {self.noise_seed}')
        per_class = ', '.join(f'{name} {rate:.1%}'
                              for name, rate in report['per_class'].items())
        MMLogger.get_current_instance().info(
            f'{type(self).__name__}({self.split}): {report["num_noisy"]}/'
            f'{report["num_samples"]} training labels are noisy '
            f'({report["rate"]:.2%}, {source}); per class: {per_class}')

    def prepare_data(self, idx: int):
        """Run the pipeline, handing in-memory images over as
        ``results['img']``.

        Args:
            idx (int): Sample index.

        Returns:
            Any: The pipeline output.
        """
        data_info = self.get_data_info(idx)
        if 'img_index' in data_info and self.images is not None:
            data_info['img'] = self.images[data_info['img_index']]
        return self.pipeline(data_info)

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        body = super().extra_repr() + [f'Split: \t{self.split}']
        if self.noise_report is not None:
            body.append(f'Noisy labels: \t{self.noise_report["rate"]:.2%}')
        return body

    def set_sample_seed(self, seed: int, epoch: int) -> None:
        """Draw each sample's augmentation from ``(seed, epoch, index)``.

        From the first call on, :meth:`__getitem__` seeds Python's, numpy's
        and torch's global RNGs for every sample it loads and restores them
        afterwards, in the main process and in data-loading workers alike,
        so augmentation no longer depends on the number of workers, on
        whether they persist, or on where a run was resumed. ``EpochSeedHook``
        calls this on the training set before every epoch; evaluation sets
        are never seeded so.

        Args:
            seed (int): The run's base seed.
            epoch (int): The 0-based epoch about to be loaded.
        """
        if '_sample_seeder' not in self.__dict__:
            self._sample_seeder = SampleSeeder()
        self._sample_seeder.set_epoch(seed, epoch)

    def __getitem__(self, idx: int) -> dict:
        """Load sample ``idx``, seeded per sample if :meth:`set_sample_seed`
        was called.

        The seeding also covers mmengine's retry with a random other index
        when the pipeline returns None, so the retry is reproducible too.

        Args:
            idx (int): The index; a
                :class:`mmfer.datasets.sample_seed.SampleKey` (a repeated
                draw from a sampler that draws with replacement) gets its own
                augmentation.

        Returns:
            dict: The sample after the pipeline.
        """
        seeder = self.__dict__.get('_sample_seeder')
        if seeder is None:
            return super().__getitem__(idx)
        with seeder.rngs_for(idx):
            return super().__getitem__(int(idx))
