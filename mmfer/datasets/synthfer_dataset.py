# Copyright (c) OpenMMLab. All rights reserved.
from mmpretrain.registry import DATASETS

from .rafdb import RAFDBDataset


@DATASETS.register_module()
class SynthFERDataset(RAFDBDataset):
    """SynthFER, mmfer's procedural data set, in RAF-DB basic's layout.

    The files are those of :class:`RAFDBDataset` (``EmoLabel/`` and
    ``Image/aligned/``), written by
    ``tools/dataset_converters/make_synthfer.py``; only the advice for a
    missing ``data_root`` differs: the data set is made, not downloaded.

    Args:
        data_root (str): The folder ``make_synthfer.py --out`` wrote.
        **kwargs: Arguments of :class:`RAFDBDataset`.
    """

    @staticmethod
    def missing_root_message(data_root: str) -> str:
        """What to do when ``data_root`` does not exist.

        Args:
            data_root (str): The configured folder.

        Returns:
            str: The error message, with the command that makes SynthFER.
        """
        return (f'SynthFER data_root {data_root} does not exist. Make it '
                'with `python tools/dataset_converters/make_synthfer.py '
                f'--out {data_root} --num-train 2000 --num-test 700 --size '
                '64` (the `make demo` recipe), or set data_root.')
