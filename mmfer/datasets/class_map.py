# Copyright (c) OpenMMLab. All rights reserved.
"""Class orders of the FER datasets and remapping between them."""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .noise import canonical_class_name

# Native class orders, as each dataset's files number them (0-based).
CLASS_ORDERS: Dict[str, Tuple[str, ...]] = {
    'rafdb': ('Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness',
              'Anger', 'Neutral'),
    'ferplus': ('Neutral', 'Happiness', 'Surprise', 'Sadness', 'Anger',
                'Disgust', 'Fear', 'Contempt'),
    'affectnet': ('Neutral', 'Happiness', 'Sadness', 'Surprise', 'Fear',
                  'Disgust', 'Anger', 'Contempt'),
    'fer2013': ('Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness',
                'Surprise', 'Neutral'),
}


def resolve_label_map(label_map: Optional[Union[str, Sequence[str]]],
                      native: Sequence[str]) -> Tuple[str, ...]:
    """Turn a ``label_map`` option into the target class names.

    Args:
        label_map (str | Sequence[str], optional): A dataset name of
            :data:`CLASS_ORDERS`, a sequence of class names, or None.
        native (Sequence[str]): The dataset's native classes.

    Returns:
        tuple[str]: The target classes (``native`` when ``label_map`` is
        None).
    """
    if label_map is None:
        return tuple(native)
    if isinstance(label_map, str):
        if label_map not in CLASS_ORDERS:
            raise ValueError(
                f'label_map={label_map!r} is not a known class order; use '
                f'one of {sorted(CLASS_ORDERS)} or a list of class names.')
        target = CLASS_ORDERS[label_map]
        # a 7-class dataset mapped to an 8-class order keeps 7 classes
        known = {canonical_class_name(c) for c in native}
        return tuple(c for c in target if canonical_class_name(c) in known)
    target = tuple(label_map)
    names = [canonical_class_name(c) for c in target]
    if len(set(names)) != len(names):
        raise ValueError(f'label_map {list(target)} names a class twice.')
    unknown = set(names) - {canonical_class_name(c) for c in native}
    if unknown:
        raise ValueError(
            f'label_map names {sorted(unknown)}, which are not classes of '
            f'this dataset ({list(native)}).')
    return target


def class_index_map(native: Sequence[str],
                    target: Sequence[str]) -> np.ndarray:
    """Native index -> target index (-1 where the class is not kept).

    Args:
        native (Sequence[str]): Native class names.
        target (Sequence[str]): Target class names.

    Returns:
        np.ndarray: int64 array of length ``len(native)``.
    """
    position = {canonical_class_name(c): i for i, c in enumerate(target)}
    return np.array(
        [position.get(canonical_class_name(c), -1) for c in native],
        dtype=np.int64)


def remap_scores(scores, index: np.ndarray, num_target: int) -> np.ndarray:
    """Reorder a label distribution; mass on dropped classes is removed.

    Args:
        scores (array-like): Native-order distribution.
        index (np.ndarray): From :func:`class_index_map`.
        num_target (int): Number of target classes.

    Returns:
        np.ndarray: float32 target-order distribution summing to 1.
    """
    scores = np.asarray(scores, dtype=np.float32)
    out = np.zeros(num_target, dtype=np.float32)
    kept = index >= 0
    out[index[kept]] = scores[kept]
    total = out.sum()
    return out / total if total > 0 else out
