# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from .landmark_geometric import check_landmarks_frame


@TRANSFORMS.register_module()
class LandmarkTargets(BaseTransform):
    """Check and complete the landmarks that LA-Net's heatmap targets are
    rendered from.

    The heatmap and weight-map targets are rendered in the model
    (:class:`LANetClassifier`, on its device), not here: a data worker
    sends each sample to the main process through a pipe, and at 224 px two
    float32 maps of 19 x 56 x 56 pixels are 476 KB per sample, 30 MB per
    batch of 64, where the points are 152 bytes. This step only makes the
    points ready for that:

    - it checks that ``landmarks`` are in the frame of the current image
      (run it after every geometric transform), which catches a transform
      that resized or cropped the image without moving the points;
    - it checks that there are ``num_landmarks`` points;
    - a sample without landmarks gets ``num_landmarks`` zero points and
      ``has_landmarks=False``, so that the batch stacks; the model masks
      such samples out of the landmark loss with ``has_landmarks``, it never
      learns their (meaningless) target.

    **Required Keys:** ``img``; optional ``landmarks``, ``landmarks_frame``.
    **Modified Keys:** ``landmarks`` (float32 ``(K, 2)``).
    **Added Keys:** ``has_landmarks`` (bool).

    Args:
        num_landmarks (int): Number of points K (19 for LA-Net's RAF-DB
            landmarks).
    """

    def __init__(self, num_landmarks: int) -> None:
        if num_landmarks <= 0:
            raise ValueError(f'num_landmarks={num_landmarks} must be > 0.')
        self.num_landmarks = int(num_landmarks)

    def transform(self, results: dict) -> dict:
        """Check ``results['landmarks']``, or add zero points.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict.
        """
        shape = (self.num_landmarks, 2)
        if results.get('landmarks') is None:
            results['landmarks'] = np.zeros(shape, dtype=np.float32)
            results['has_landmarks'] = False
            return results
        check_landmarks_frame(results, type(self).__name__)
        points = np.asarray(results['landmarks'], dtype=np.float32)
        if points.shape != shape:
            raise ValueError(
                f'{type(self).__name__}: results["landmarks"] has shape '
                f'{points.shape} but num_landmarks={self.num_landmarks} '
                f'expects {shape}; set num_landmarks to the number of '
                'points of the dataset\'s landmark layout.')
        results['landmarks'] = points
        results['has_landmarks'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_landmarks={self.num_landmarks})'
