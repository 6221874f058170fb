# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import TRANSFORMS

FER_ALGORITHM_KEYS = ('clean_label', 'is_noisy', 'landmarks', 'has_landmarks')
FER_META_KEYS = PackInputs.DEFAULT_META_KEYS + ('aug_seed', )


@TRANSFORMS.register_module()
class PackFERInputs(PackInputs):
    """Pack inputs plus the FER per-sample fields.

    Besides what :class:`mmpretrain.datasets.transforms.PackInputs` packs,
    each data sample gets, when present, ``clean_label`` (LongTensor of
    shape ``(1,)``, like ``gt_label``), ``is_noisy`` (BoolTensor ``(1,)``),
    ``landmarks`` (float32 tensor ``(K, 2)``) and ``has_landmarks``
    (BoolTensor ``(1,)``, set by :class:`LandmarkTargets`), so heads, hooks
    and metrics can use them. LA-Net's heatmap targets are not packed: the
    model renders them from ``landmarks``, which keeps the samples that
    data workers send small. A key whose value is None (e.g. ``landmarks``
    of a sample without them when no :class:`LandmarkTargets` ran) is not
    packed. ``sample_idx`` is packed as a meta key, and so is ``aug_seed``
    (from :class:`DrawDeviceAugmentSeed`) when present.

    Args:
        algorithm_keys (Sequence[str]): Extra keys to pack. Defaults to
            ``('clean_label', 'is_noisy', 'landmarks', 'has_landmarks')``.
        meta_keys (Sequence[str]): Meta keys to pack. Defaults to
            ``PackInputs``' defaults plus ``'aug_seed'``.
        **kwargs: Other arguments of ``PackInputs``.
    """

    def __init__(self,
                 algorithm_keys: Sequence[str] = FER_ALGORITHM_KEYS,
                 meta_keys: Sequence[str] = FER_META_KEYS,
                 **kwargs) -> None:
        super().__init__(
            algorithm_keys=algorithm_keys, meta_keys=meta_keys, **kwargs)

    def transform(self, results: dict) -> dict:
        """Convert FER fields to tensors, then pack.

        Args:
            results (dict): The pipeline results.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        results = {
            key: value
            for key, value in results.items()
            if value is not None or key not in self.algorithm_keys
        }
        if 'clean_label' in results:
            results['clean_label'] = torch.tensor([results['clean_label']],
                                                  dtype=torch.long)
        if 'is_noisy' in results:
            results['is_noisy'] = torch.tensor([results['is_noisy']],
                                               dtype=torch.bool)
        if 'has_landmarks' in results:
            results['has_landmarks'] = torch.tensor(
                [bool(results['has_landmarks'])], dtype=torch.bool)
        if 'landmarks' in results:
            results['landmarks'] = torch.from_numpy(
                np.ascontiguousarray(results['landmarks'], dtype=np.float32))
        return super().transform(results)

    @staticmethod
    def format_input(input_):
        """An image (or a list of views) as a ``(C, H, W)`` tensor.

        For ``(H, W, C)`` arrays numpy's transposing copy is used: on
        face-sized images it takes two thirds of the time of
        ``PackInputs``' ``permute().contiguous()`` in torch, with the same
        result. Anything else is packed by ``PackInputs``.

        Args:
            input_: An image array, a PIL image, a tensor, or a list of
                them (one per view).

        Returns:
            torch.Tensor | list: The packed input(s).
        """
        if isinstance(input_, list):
            return [PackFERInputs.format_input(item) for item in input_]
        if isinstance(input_, np.ndarray) and input_.ndim == 3:
            return torch.from_numpy(
                np.ascontiguousarray(input_.transpose(2, 0, 1)))
        return PackInputs.format_input(input_)
