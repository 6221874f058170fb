# Copyright (c) OpenMMLab. All rights reserved.
"""Landmark layouts checked against real and rendered face geometry."""
from pathlib import Path

import numpy as np
import pytest
import torch

from mmfer import synthfer
from mmfer.datasets.landmark_schemes import (LANDMARK_SCHEMES,
                                             get_landmark_scheme)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / '..' / 'shared' / 'fixtures'
FRAME = 224  # LA-Net's landmarks are pixels of a 224x224 frame


@pytest.fixture(scope='module')
def mean_shape():
    """Mean of LA-Net's 19 RAF-DB train landmarks, ``(19, 2)``."""
    path = FIXTURES / 'rafdb_landmarks' / 'raf_train_19_landmarks.tensor'
    if not path.is_file():
        pytest.skip(f'{path} is absent: LA-Net\'s RAF-DB landmarks live in '
                    '../shared beside the repo (CI has them).')
    points = torch.load(path, weights_only=True).double()
    return points.mean(0).numpy()


def mirror(points: np.ndarray, width: float) -> np.ndarray:
    out = points.copy()
    out[:, 0] = width - out[:, 0]
    return out


def test_aflw19_groups_run_from_brows_to_chin(mean_shape):
    groups = dict(brows=range(0, 6),
                  eyes=range(6, 12),
                  nose=range(12, 15),
                  mouth=range(15, 18),
                  chin=range(18, 19))
    mean_y = [mean_shape[list(idx), 1].mean() for idx in groups.values()]
    assert all(a < b for a, b in zip(mean_y, mean_y[1:])), \
        dict(zip(groups, mean_y))
    # Each group lies wholly below the one above it.
    for upper, lower in zip(list(groups.values()), list(groups.values())[1:]):
        assert mean_shape[list(upper), 1].max() < \
            mean_shape[list(lower), 1].min()


def test_aflw19_pairs_put_the_image_left_point_first(mean_shape):
    scheme = get_landmark_scheme('aflw19')
    for a, b in scheme.flip_pairs:
        left, right = min(a, b), max(a, b)
        assert mean_shape[left, 0] < FRAME / 2 < mean_shape[right, 0], (a, b)
        # Mirror partners sit at about the same height.
        assert abs(mean_shape[a, 1] - mean_shape[b, 1]) < 3, (a, b)


def test_aflw19_mirrored_mean_shape_maps_back(mean_shape):
    perm = get_landmark_scheme('aflw19').flip_indices
    mirrored = mirror(mean_shape, FRAME)
    # RAF-DB's faces are centred within ~1.5 px, so ~4 px is the floor.
    assert np.abs(mirrored[perm] - mean_shape).max() < 5
    # Each mirrored point's nearest mean point is its partner.
    dist = np.linalg.norm(mirrored[:, None, :] - mean_shape[None, :, :],
                          axis=-1)
    np.testing.assert_array_equal(dist.argmin(0), perm)
    # Without re-indexing the check fails by far: it can tell.
    assert np.abs(mirrored - mean_shape).max() > 50


def symmetric_synthfer_faces(synthfer, num_faces: int = 5):
    """Canonical 37-point faces (centred at x = 0) of every class.

    ``lip_raise`` is zeroed: it lifts one side of the upper lip (a sneer),
    the one deliberately asymmetric parameter.
    """
    rng = np.random.default_rng(0)
    for _ in range(num_faces):
        ident = synthfer.sample_identity(rng)
        for row in synthfer.PROTOTYPES:
            ex = dict(zip(synthfer.PARAM_NAMES, row.tolist()))
            ex['lip_raise'] = 0.0
            yield synthfer.canonical_landmarks(ident, ex)


def test_synthfer37_mirrored_faces_map_back():
    scheme = get_landmark_scheme('synthfer37')
    assert {tuple(sorted(p)) for p in scheme.flip_pairs} == \
        {tuple(sorted(p)) for p in synthfer.SYNTHFER_FLIP_PAIRS}
    assert len(synthfer.SYNTHFER_LANDMARK_NAMES) == scheme.num_points
    for face in symmetric_synthfer_faces(synthfer):
        mirrored = mirror(face, 0.0)
        np.testing.assert_allclose(mirrored[scheme.flip_indices],
                                   face,
                                   atol=1e-9)
        assert np.abs(mirrored - face).max() > 0.1
    # Names agree: a left_* point's partner is the right_* point.
    names = synthfer.SYNTHFER_LANDMARK_NAMES
    for a, b in scheme.flip_pairs:
        left, right = sorted((names[a], names[b]),
                             key=lambda n: 'left' in n,
                             reverse=True)
        assert left.replace('left', 'right') == right, (a, b)


# Well-known iBUG 300-W partners (0-based), independent of the table.
IBUG_PAIRS = ((0, 16), (3, 13), (7, 9), (17, 26), (21, 22), (31, 35), (36, 45),
              (39, 42), (37, 44), (41, 46), (48, 54), (50, 52), (55, 59),
              (60, 64), (65, 67))
IBUG_CENTRE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


def test_ibug68_known_partners():
    perm = get_landmark_scheme('ibug68').flip_indices
    for a, b in IBUG_PAIRS:
        assert perm[a] == b and perm[b] == a, (a, b)
    for i in IBUG_CENTRE:
        assert perm[i] == i, i


def test_rafdb_manual5_partners():
    # left eye, right eye, nose tip, left and right mouth corner
    np.testing.assert_array_equal(
        get_landmark_scheme('rafdb_manual5').flip_indices, [1, 0, 2, 4, 3])


@pytest.mark.parametrize('name', sorted(LANDMARK_SCHEMES))
def test_flip_indices_is_an_involution(name):
    scheme = LANDMARK_SCHEMES[name]
    perm = scheme.flip_indices
    flat = [i for pair in scheme.flip_pairs for i in pair]
    assert len(flat) == len(set(flat)), 'an index is in two pairs'
    assert all(0 <= i < scheme.num_points for i in flat)
    assert sorted(perm.tolist()) == list(range(scheme.num_points))
    np.testing.assert_array_equal(perm[perm], np.arange(scheme.num_points))
    assert (perm != np.arange(scheme.num_points)).sum() == len(flat)


@pytest.mark.parametrize('name,count', [('aflw19', 19), ('ibug68', 68),
                                        ('synthfer37', 37),
                                        ('rafdb_manual5', 5)])
def test_lookup_by_name_and_count(name, count):
    scheme = get_landmark_scheme(name)
    assert scheme.name == name and scheme.num_points == count
    assert get_landmark_scheme(count) is scheme
    assert get_landmark_scheme(np.int64(count)) is scheme


def test_unknown_name_and_count_raise_actionable_errors():
    with pytest.raises(KeyError,
                       match=r"unknown landmark scheme 'aflw21'"
                       r".*'aflw19'"):
        get_landmark_scheme('aflw21')
    with pytest.raises(KeyError) as err:
        get_landmark_scheme(98)
    message = str(err.value)
    assert 'no landmark scheme has 98 points' in message
    assert 'aflw19 (19)' in message and 'ibug68 (68)' in message
    assert 'LANDMARK_SCHEMES' in message
