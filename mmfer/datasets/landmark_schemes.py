# Copyright (c) OpenMMLab. All rights reserved.
"""Facial landmark layouts and how a horizontal flip re-indexes them.

A horizontal flip maps the image's left half onto its right half, so the
point that was the left eye corner becomes a right eye corner: after
``x <- W - x`` the points must also be re-ordered with the layout's flip
permutation for index ``i`` to keep meaning the same anatomical point.
Every layout mmfer reads declares that permutation here.
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple, Union

import numpy as np


@dataclass(frozen=True)
class LandmarkScheme:
    """A landmark layout.

    Args:
        name (str): Registry name.
        num_points (int): Number of points.
        flip_pairs (tuple[tuple[int, int]]): Index pairs that swap under a
            horizontal flip; unlisted points map to themselves.
        description (str): The layout, point by point.
    """

    name: str
    num_points: int
    flip_pairs: Tuple[Tuple[int, int], ...]
    description: str

    @property
    def flip_indices(self) -> np.ndarray:
        """np.ndarray: ``perm`` such that ``flipped[i] = mirrored[perm[i]]``.
        """
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


def _pairs(*ranges: Tuple[Sequence[int], Sequence[int]]
           ) -> Tuple[Tuple[int, int], ...]:
    return tuple((a, b) for left, right in ranges
                 for a, b in zip(left, right))


AFLW19 = LandmarkScheme(
    name='aflw19',
    num_points=19,
    # Image-left member first; LA-Net's HRNet points for RAF-DB.
    flip_pairs=_pairs(((0, 1, 2), (5, 4, 3)), ((6, 7, 8), (11, 10, 9)),
                      ((12, ), (14, )), ((15, ), (17, ))),
    description=('AFLW-19: 0-2 left brow (outer to inner), 3-5 right brow '
                 '(inner to outer), 6-8 left eye (outer, centre, inner), '
                 '9-11 right eye (inner, centre, outer), 12-14 nose (left, '
                 'tip, right), 15-17 mouth (left corner, centre, right '
                 'corner), 18 chin.'))

IBUG68 = LandmarkScheme(
    name='ibug68',
    num_points=68,
    flip_pairs=_pairs(
        (range(0, 8), range(16, 8, -1)),  # jaw
        (range(17, 22), range(26, 21, -1)),  # brows
        ((31, 32), (35, 34)),  # nostrils
        ((36, 37, 38, 39, 40, 41), (45, 44, 43, 42, 47, 46)),  # eyes
        ((48, 49, 50, 55, 56, 60, 61, 65), (54, 53, 52, 59, 58, 64, 63,
                                            67)),  # mouth
    ),
    description=('iBUG 300-W 68 points (AffectNet): 0-16 jaw, 17-21 / 22-26 '
                 'brows, 27-35 nose, 36-41 / 42-47 eyes, 48-59 outer and '
                 '60-67 inner mouth.'))

SYNTHFER37 = LandmarkScheme(
    name='synthfer37',
    num_points=37,
    flip_pairs=((0, 8), (1, 7), (2, 6), (3, 5), (9, 14), (10, 13), (11, 12),
                (15, 21), (16, 20), (17, 19), (18, 22), (25, 26), (27, 31),
                (28, 30), (32, 34)),
    description=('SynthFER: 0-8 contour (4 chin), 9-11 / 12-14 brows, '
                 '15-18 / 19-22 eyes, 23-26 nose, 27-34 outer and 35-36 '
                 'inner mouth (mmfer/synthfer.py).'))

RAFDB_MANUAL5 = LandmarkScheme(
    name='rafdb_manual5',
    num_points=5,
    flip_pairs=((0, 1), (3, 4)),
    description=('RAF-DB manual: left eye, right eye, nose tip, left and '
                 'right mouth corner.'))

LANDMARK_SCHEMES: Dict[str, LandmarkScheme] = {
    scheme.name: scheme
    for scheme in (AFLW19, IBUG68, SYNTHFER37, RAFDB_MANUAL5)
}


def get_landmark_scheme(key: Union[str, int]) -> LandmarkScheme:
    """Look a layout up by name, or by number of points.

    Args:
        key (str | int): A name in :data:`LANDMARK_SCHEMES` or a number of
            points (each known layout has a distinct one).

    Returns:
        LandmarkScheme: The layout.
    """
    if isinstance(key, str):
        if key not in LANDMARK_SCHEMES:
            raise KeyError(f'unknown landmark scheme {key!r}; known: '
                           f'{sorted(LANDMARK_SCHEMES)}.')
        return LANDMARK_SCHEMES[key]
    for scheme in LANDMARK_SCHEMES.values():
        if scheme.num_points == int(key):
            return scheme
    known = ', '.join(f'{s.name} ({s.num_points})'
                      for s in LANDMARK_SCHEMES.values())
    raise KeyError(
        f'no landmark scheme has {key} points (known: {known}); name the '
        'scheme in the transform, or add a LandmarkScheme with its flip '
        'pairs to mmfer.datasets.landmark_schemes.LANDMARK_SCHEMES.')
