# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

_SEED_HIGH = np.iinfo(np.int64).max


@TRANSFORMS.register_module()
class DrawDeviceAugmentSeed(BaseTransform):
    """Draw the seed of a sample's device-side augmentation.

    ``FERDataPreprocessor(device_augments=...)`` augments whole batches on
    the model's device but draws every sample's parameters from the
    sample's own ``aug_seed``. This transform draws that seed from numpy's
    global RNG, which an mmfer training set seeds per sample from (seed,
    epoch, index, draw) while the pipeline runs, so the device
    augmentation inherits the guarantees of the CPU one: the same with any
    number of workers, on any rank, and after a resume. Put it last before
    ``PackFERInputs`` (which packs ``aug_seed`` as a meta key), so that the
    draws of the transforms before it stay as they were.

    **Added Keys:** ``aug_seed`` (int in ``[0, 2**63 - 1)``).
    """

    def transform(self, results: dict) -> dict:
        """Add ``aug_seed`` to the results.

        Args:
            results (dict): The pipeline results.

        Returns:
            dict: The results with ``aug_seed``.
        """
        results['aug_seed'] = int(
            np.random.randint(_SEED_HIGH, dtype=np.int64))
        return results
