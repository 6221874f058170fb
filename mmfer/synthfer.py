# Copyright (c) OpenMMLab. All rights reserved.
"""SynthFER: a procedural facial-expression data set in the RAF-DB layout.

SynthFER draws cartoon faces with OpenCV. Each face shows one of the seven
basic expressions in RAF-DB order (0 Surprise, 1 Fear, 2 Disgust,
3 Happiness, 4 Sadness, 5 Anger, 6 Neutral); the expression sets the mouth
(opening, width, curvature, roundness, lips, sneer), the brows (height,
slant, arch, pull towards the centre), the eyes (opening, squint, drooping
lids) and a few wrinkles. Identity (face shape, skin tone, hair, feature
positions), pose (position, scale, in-plane rotation), background clutter,
lighting, blur, sensor noise and JPEG compression vary from face to face.
A share of the faces is genuinely ambiguous: their expression parameters are
interpolated between two neighbouring expressions and their label is the one
with the larger weight.

The output is laid out exactly like RAF-DB *basic*, so a RAF-DB reader reads
it unchanged::

    <out>/EmoLabel/list_patition_label.txt
    <out>/Image/aligned/<stem>_aligned.jpg
    <out>/Image/original/<stem>.jpg
    <out>/Annotation/manual/<stem>_manu_attri.txt
    <out>/Annotation/auto/<stem>_auto_attri.txt
    <out>/Annotation/aligned/<stem>_aligned.txt
    <out>/synthfer_meta.json

SynthFER's 37-point landmark layout (``SYNTHFER_LANDMARK_NAMES``; *left* and
*right* are the image's left and right, ``x`` points right, ``y`` down)::

    0-8    contour along the lower face ellipse, from the left ear level
           through the chin (4) to the right ear level
    9-11   left brow: outer, middle, inner
    12-14  right brow: inner, middle, outer
    15-18  left eye: outer corner, upper lid, inner corner, lower lid
    19-22  right eye: inner corner, upper lid, outer corner, lower lid
    23-26  nose: bridge, tip, left wing, right wing
    27-34  outer mouth: left corner, upper left, upper middle, upper right,
           right corner, lower right, lower middle, lower left
    35-36  inner mouth: upper middle, lower middle

Its command line is ``tools/dataset_converters/make_synthfer.py``.
Training reads SynthFER with ``RAFDBDataset`` and never renders it, so the
module sits outside ``mmfer.datasets`` (whose import registers the datasets
and so imports torch and mmpretrain): the renderer needs numpy and OpenCV
only, and generating a data set imports neither torch nor mmengine.
"""
import json
import logging
import multiprocessing
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

GENERATOR_NAME = 'SynthFER'
GENERATOR_VERSION = '1.0.0'
META_FILE = 'synthfer_meta.json'
LABEL_FILE = osp.join('EmoLabel', 'list_patition_label.txt')

SYNTHFER_CLASSES = ('Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness',
                    'Anger', 'Neutral')
# RAF-DB basic train set size of each class, in RAF-DB order.
RAFDB_TRAIN_COUNTS = (1290, 281, 717, 4772, 1982, 705, 2524)
SPLITS = ('train', 'test')
SPLIT_DIGITS = {'train': 5, 'test': 4}

SYNTHFER_LANDMARK_NAMES = (
    'contour_left_4', 'contour_left_3', 'contour_left_2', 'contour_left_1',
    'chin', 'contour_right_1', 'contour_right_2', 'contour_right_3',
    'contour_right_4', 'left_brow_outer', 'left_brow_middle',
    'left_brow_inner', 'right_brow_inner', 'right_brow_middle',
    'right_brow_outer', 'left_eye_outer', 'left_eye_upper', 'left_eye_inner',
    'left_eye_lower', 'right_eye_inner', 'right_eye_upper', 'right_eye_outer',
    'right_eye_lower', 'nose_bridge', 'nose_tip', 'nose_left_wing',
    'nose_right_wing', 'mouth_left_corner', 'mouth_upper_left',
    'mouth_upper_middle', 'mouth_upper_right', 'mouth_right_corner',
    'mouth_lower_right', 'mouth_lower_middle', 'mouth_lower_left',
    'mouth_inner_upper', 'mouth_inner_lower')
SYNTHFER_FLIP_PAIRS = ((0, 8), (1, 7), (2, 6), (3, 5), (9, 14), (10, 13),
                       (11, 12), (15, 21), (16, 20), (17, 19), (18, 22),
                       (25, 26), (27, 31), (28, 30), (32, 34))
RAFDB_MANUAL_LANDMARK_NAMES = ('left_eye', 'right_eye', 'nose_tip',
                               'left_mouth_corner', 'right_mouth_corner')
RAFDB_MANUAL_FLIP_PAIRS = ((0, 1), (3, 4))

# Expression parameters, in canonical face units (the face's half-height is
# 1) where they are lengths.
PARAM_NAMES = ('mouth_open', 'mouth_width', 'mouth_curve', 'mouth_round',
               'lip_thick', 'lip_raise', 'teeth', 'brow_raise', 'brow_tilt',
               'brow_arch', 'brow_pull', 'frown_lines', 'eye_open',
               'lower_lid', 'lid_droop', 'nose_wrinkle', 'cheek')
# One row per class, in RAF-DB order, one column per PARAM_NAMES entry.
# yapf: disable
PROTOTYPES = np.array([
    # open width curve round lip raise teeth brow tilt arch pull frown
    # eye  lower droop wrinkle cheek
    [.30, .15, .00, 1.0, .8, .0, .0, .36, .0, 1.0, .0, .0,
     1.6, .0, .0, .0, .0],  # Surprise
    [.14, .31, -.04, .0, .6, .0, .8, .30, .9, .2, .8, .3,
     1.5, .0, .0, .0, .2],  # Fear
    [.03, .21, -.06, .0, .8, 1.0, 1.0, .12, -.5, .0, .4, .4,
     .45, .6, .0, 1.0, .5],  # Disgust
    [.02, .30, .14, .0, .7, .0, 1.0, .21, .0, .3, .0, .0,
     .7, .8, .0, .2, 1.0],  # Happiness
    [.00, .19, -.12, .0, .9, .0, .0, .22, 1.0, .1, .3, .2,
     .65, .0, 1.0, .0, .0],  # Sadness
    [.00, .17, -.01, .0, .25, .0, .0, .10, -1.1, .0, 1.0, 1.0,
     .5, .5, .0, .3, .1],  # Anger
    [.00, .21, .00, .0, 1.0, .0, .0, .20, .0, .25, .0, .0,
     1.0, .0, .0, .0, .0],  # Neutral
])
JITTER_SD = np.array([.02, .02, .025, .1, .12, .12, .1, .025, .2, .15, .15,
                      .15, .12, .12, .12, .15, .15])
PARAM_LOW = np.array([0., .12, -.2, 0., .2, 0., 0., .06, -1.5, -.3, 0., 0.,
                      .3, 0., 0., 0., 0.])
PARAM_HIGH = np.array([.4, .36, .2, 1., 1.3, 1.3, 1., .45, 1.5, 1.3, 1.2,
                       1.2, 2., 1., 1.2, 1.2, 1.2])
# yapf: enable
# Share of happy faces drawn with an open smile, and its opening range.
HAPPY_OPEN_PROB = 0.4
HAPPY_OPEN_RANGE = (0.06, 0.14)

# Expressions an ambiguous face of each class may be mixed with.
NEIGHBOURS = {
    0: (1, ),  # Surprise <-> Fear
    1: (0, 4),  # Fear <-> Surprise, Sadness
    2: (5, ),  # Disgust <-> Anger
    3: (6, ),  # Happiness <-> Neutral
    4: (6, 1),  # Sadness <-> Neutral, Fear
    5: (2, ),  # Anger <-> Disgust
    6: (4, 3, 5),  # Neutral <-> Sadness, Happiness, Anger
}
# Weight of the labelled class of an ambiguous face (the other class gets
# the rest, so both weights lie in [0.35, 0.65]).
AMBIGUOUS_LABEL_WEIGHT = (0.51, 0.65)

SUPERSAMPLE = 2
_SHIFT = 4
_ONE = 1 << _SHIFT
_SKIN_TONES = {
    # race -> list of BGR base skin tones
    0: ((170, 195, 235), (150, 180, 225), (185, 205, 240), (140, 165, 205)),
    1: ((60, 85, 125), (75, 105, 150), (45, 65, 100), (95, 125, 170)),
    2: ((150, 190, 225), (130, 170, 210), (165, 200, 235), (120, 160, 200)),
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSpec:
    """What one SynthFER image shows, fixed before any drawing.

    Args:
        split (str): ``'train'`` or ``'test'``.
        index (int): 0-based index of the image within its split.
        label (int): 0-based class index in RAF-DB order.
        mix_class (int): The class mixed in for an ambiguous face, or -1.
        mix_weight (float): Weight of ``label`` in the mixture (1.0 for a
            clean face); ``mix_class`` gets ``1 - mix_weight``.
    """
    split: str
    index: int
    label: int
    mix_class: int = -1
    mix_weight: float = 1.0

    @property
    def stem(self) -> str:
        """str: The image stem, e.g. ``train_00001``."""
        digits = SPLIT_DIGITS[self.split]
        return f'{self.split}_{self.index + 1:0{digits}d}'

    @property
    def name(self) -> str:
        """str: The name used in the label file, e.g. ``train_00001.jpg``."""
        return self.stem + '.jpg'

    @property
    def ambiguous(self) -> bool:
        """bool: Whether the face mixes two expressions."""
        return self.mix_class >= 0


# ---------------------------------------------------------------------------
# Planning: labels and ambiguity, drawn up front from the seed.
# ---------------------------------------------------------------------------


def class_proportions() -> np.ndarray:
    """Class proportions: RAF-DB's train counts softened by a square root.

    Returns:
        np.ndarray: Seven proportions summing to 1, in RAF-DB order.
    """
    soft = np.sqrt(np.asarray(RAFDB_TRAIN_COUNTS, dtype=np.float64))
    return soft / soft.sum()


def class_counts(num: int) -> List[int]:
    """Split ``num`` images over the classes by largest remainders.

    Args:
        num (int): Number of images in the split.

    Returns:
        list[int]: Seven counts summing to ``num``.
    """
    exact = class_proportions() * num
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind='stable')
    counts[order[:num - int(counts.sum())]] += 1
    return counts.tolist()


def _split_id(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    return SPLITS.index(split)


def plan_split(seed: int, split: str, num: int,
               ambiguous_ratio: float) -> List[SampleSpec]:
    """Assign labels and ambiguity to every image of a split.

    Args:
        seed (int): The data set seed.
        split (str): ``'train'`` or ``'test'``.
        num (int): Number of images in the split.
        ambiguous_ratio (float): Share of ambiguous faces, in [0, 1].

    Returns:
        list[SampleSpec]: One spec per image, in index order.
    """
    rng = np.random.default_rng([seed, _split_id(split), 0])
    labels = np.repeat(np.arange(len(SYNTHFER_CLASSES)), class_counts(num))
    labels = rng.permutation(labels)
    num_amb = int(round(ambiguous_ratio * num))
    chosen = np.sort(rng.choice(num, size=num_amb, replace=False))
    mixes: Dict[int, Tuple[int, float]] = {}
    low, high = AMBIGUOUS_LABEL_WEIGHT
    for index in chosen.tolist():
        others = NEIGHBOURS[int(labels[index])]
        other = int(others[rng.integers(len(others))])
        mixes[index] = (other, round(float(rng.uniform(low, high)), 4))
    specs = []
    for index, label in enumerate(labels.tolist()):
        mix_class, weight = mixes.get(index, (-1, 1.0))
        specs.append(SampleSpec(split, index, label, mix_class, weight))
    return specs


# ---------------------------------------------------------------------------
# Face geometry in the canonical frame (origin at the face centre, x right,
# y down, the face's half-height is 1).
# ---------------------------------------------------------------------------


def sample_expression(spec: SampleSpec,
                      rng: np.random.Generator) -> Dict[str, float]:
    """Draw the expression parameters of a face.

    Args:
        spec (SampleSpec): The face's label and mixture.
        rng (np.random.Generator): The face's own random generator.

    Returns:
        dict[str, float]: One value per ``PARAM_NAMES`` entry.
    """
    happy_open = rng.uniform(*HAPPY_OPEN_RANGE)
    happy_open *= rng.random() < HAPPY_OPEN_PROB

    def prototype(cls: int) -> np.ndarray:
        row = PROTOTYPES[cls].copy()
        if cls == SYNTHFER_CLASSES.index('Happiness'):
            row[0] += happy_open
        return row

    params = prototype(spec.label)
    if spec.ambiguous:
        params = (
            spec.mix_weight * params +
            (1.0 - spec.mix_weight) * prototype(spec.mix_class))
    params = params + rng.normal(0.0, 1.0, len(PARAM_NAMES)) * JITTER_SD
    params = np.clip(params, PARAM_LOW, PARAM_HIGH)
    return dict(zip(PARAM_NAMES, params.tolist()))


def sample_identity(rng: np.random.Generator) -> Dict[str, object]:
    """Draw the identity of a face: shape, feature layout and colours.

    Args:
        rng (np.random.Generator): The face's own random generator.

    Returns:
        dict: Shape values (floats), colours (BGR tuples) and the RAF-DB
        placeholder attributes ``gender``, ``race`` and ``age``.
    """
    race = int(rng.choice(3, p=(0.77, 0.15, 0.08)))
    tones = _SKIN_TONES[race]
    skin = np.array(tones[rng.integers(len(tones))], dtype=np.float64)
    skin = np.clip(skin * rng.uniform(0.9, 1.1) + rng.normal(0, 6, 3), 0, 255)
    hair = rng.choice([[20, 25, 30], [30, 50, 80], [40, 80, 130],
                       [80, 140, 200], [120, 120, 125], [15, 15, 15]])
    iris = rng.choice([[30, 50, 90], [20, 30, 50], [140, 110, 60],
                       [70, 110, 70]])
    a = rng.uniform(0.68, 0.84)
    return dict(
        gender=int(rng.choice(3, p=(0.45, 0.5, 0.05))),
        race=race,
        age=int(rng.choice(5, p=(0.07, 0.3, 0.52, 0.08, 0.03))),
        face_a=a,
        eye_y=-0.10 + rng.normal(0, 0.02),
        eye_dx=a * rng.uniform(0.39, 0.44),
        eye_hw=rng.uniform(0.12, 0.145),
        iris_r=rng.uniform(0.05, 0.062),
        gaze=tuple(rng.normal(0, 0.012, 2).tolist()),
        brow_thick=rng.uniform(0.04, 0.06),
        nose_y=rng.uniform(0.16, 0.22),
        nose_hw=rng.uniform(0.075, 0.1),
        nose_side=float(rng.choice([-1.0, 1.0])),
        mouth_y=rng.uniform(0.44, 0.5),
        sneer_side=float(rng.choice([-1.0, 1.0])),
        hair_kind=int(rng.choice(3, p=(0.15, 0.45, 0.4))),
        fringe_y=rng.uniform(-0.76, -0.62),
        skin=tuple(skin.tolist()),
        hair=tuple(float(v) for v in hair * rng.uniform(0.8, 1.2)),
        iris=tuple(float(v) for v in iris),
        lip=tuple((skin * (0.62, 0.58, 0.9)).tolist()),
        line=tuple((skin * 0.32).tolist()),
        shirt=tuple(rng.uniform(20, 235, 3).tolist()),
    )


def _brow(side: float, ident: Dict, ex: Dict) -> np.ndarray:
    """Outer, middle and inner point of one brow (canonical frame)."""
    base = ident['eye_y'] - ex['brow_raise']
    outer = np.array(
        [side * (ident['eye_dx'] + 0.17), base + 0.03 * ex['brow_tilt']])
    inner_x = ident['eye_dx'] - 0.13 - 0.05 * ex['brow_pull']
    inner = np.array([side * inner_x, base - 0.09 * ex['brow_tilt']])
    middle = (outer + inner) / 2 - (0.0, 0.02 + 0.05 * ex['brow_arch'])
    return np.stack([outer, middle, inner])


def _eye_curves(side: float,
                ident: Dict,
                ex: Dict,
                num: int = 17) -> Tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid of one eye, from the inner to the outer corner."""
    t = np.linspace(-1.0, 1.0, num)
    cx, cy = side * ident['eye_dx'], ident['eye_y']
    x = cx + side * ident['eye_hw'] * t
    bulge = 1.0 - t**2
    droop = 1.0 - 0.4 * ex['lid_droop'] * (t + 1.0) / 2.0
    upper = cy - 0.075 * ex['eye_open'] * bulge * droop
    low_h = 0.05 * (1.0 - 0.65 * ex['lower_lid']) + 0.012 * (
        ex['eye_open'] - 1.0)
    lower = cy + max(low_h, 0.006) * bulge
    upper = upper + 0.025 * ex['lid_droop'] * np.clip(t, 0, 1)
    lower = lower + 0.025 * ex['lid_droop'] * np.clip(t, 0, 1)
    return np.stack([x, upper], 1), np.stack([x, lower], 1)


def _mouth_curves(ident: Dict,
                  ex: Dict,
                  num: int = 25) -> Dict[str, np.ndarray]:
    """Inner and outer lip curves of the mouth, from left to right."""
    t = np.linspace(-1.0, 1.0, num)
    w, y0 = ex['mouth_width'], ident['mouth_y']
    x = w * t
    side = ident['sneer_side']
    raise_side = ((1.0 + side * t) / 2.0)**2
    line = y0 - ex['mouth_curve'] * t**2 - 0.03 * ex['lip_raise'] * raise_side
    shape = np.clip(1.0 - t**2, 0, None)**(1.0 - 0.5 * ex['mouth_round'])
    near_corner = np.clip(1.0 - t**2, 0, None)**0.3
    sneer = 0.07 * ex['lip_raise'] * raise_side * near_corner
    taper = np.sqrt(np.clip(1.0 - t**2, 0, None))
    inner_up = line - ex['mouth_open'] / 2 * shape - sneer
    inner_lo = line + ex['mouth_open'] / 2 * shape
    outer_up = inner_up - 0.035 * ex['lip_thick'] * taper
    outer_lo = inner_lo + 0.045 * ex['lip_thick'] * taper
    teeth = np.minimum(inner_up + 0.05 * ex['teeth'] * shape, inner_lo)
    curves = dict(
        inner_up=inner_up,
        inner_lo=inner_lo,
        outer_up=outer_up,
        outer_lo=outer_lo,
        teeth=teeth)
    return {key: np.stack([x, y], 1) for key, y in curves.items()}


def _at(curve: np.ndarray, t: float) -> np.ndarray:
    """Point of a curve sampled on ``linspace(-1, 1)`` at parameter ``t``."""
    pos = (t + 1.0) / 2.0 * (len(curve) - 1)
    return curve[int(round(pos))]


def canonical_landmarks(ident: Dict, ex: Dict) -> np.ndarray:
    """The 37 SynthFER landmarks of a face in the canonical frame.

    Args:
        ident (dict): Identity from :func:`sample_identity`.
        ex (dict): Expression from :func:`sample_expression`.

    Returns:
        np.ndarray: ``(37, 2)`` points in ``SYNTHFER_LANDMARK_NAMES`` order.
    """
    phi = np.pi - np.arange(9) * np.pi / 8
    contour = np.stack([ident['face_a'] * np.cos(phi), np.sin(phi)], 1)
    brows = np.concatenate(
        [_brow(-1.0, ident, ex),
         _brow(1.0, ident, ex)[::-1]])
    lu, ll = _eye_curves(-1.0, ident, ex)
    ru, rl = _eye_curves(1.0, ident, ex)
    left_eye = [lu[-1], _at(lu, 0), lu[0], _at(ll, 0)]
    right_eye = [ru[0], _at(ru, 0), ru[-1], _at(rl, 0)]
    eyes = np.stack(left_eye + right_eye)
    nose_y, hw = ident['nose_y'], ident['nose_hw']
    wing_y = nose_y - 0.01 - 0.03 * ex['nose_wrinkle']
    nose = np.array([[0.0, ident['eye_y'] + 0.03], [0.0, nose_y],
                     [-hw, wing_y], [hw, wing_y]])
    m = _mouth_curves(ident, ex)
    up, lo = m['outer_up'], m['outer_lo']
    outer = ([up[0]] + [_at(up, t) for t in (-0.5, 0.0, 0.5)] + [up[-1]] +
             [_at(lo, t) for t in (0.5, 0.0, -0.5)])
    inner = [_at(m['inner_up'], 0.0), _at(m['inner_lo'], 0.0)]
    mouth = np.stack(outer + inner)
    return np.concatenate([contour, brows, eyes, nose, mouth])


# ---------------------------------------------------------------------------
# Drawing helpers. ``Painter`` maps canonical points to the supersampled
# canvas and draws anti-aliased, sub-pixel polygons.
# ---------------------------------------------------------------------------


class Painter:
    """Draws canonical-frame shapes on a supersampled canvas.

    Args:
        canvas (np.ndarray): ``(S, S, 3)`` uint8 BGR canvas, drawn in place.
        matrix (np.ndarray): ``(2, 3)`` affine map from the canonical frame
            to the final image's pixel frame.
        unit (float): Pixels of the canvas per canonical unit.
    """

    def __init__(self, canvas: np.ndarray, matrix: np.ndarray,
                 unit: float) -> None:
        self.canvas = canvas
        self.matrix = matrix
        self.unit = unit

    def to_canvas(self, pts: np.ndarray) -> np.ndarray:
        """Map canonical points to fixed-point canvas coordinates."""
        pix = np.asarray(pts) @ self.matrix[:, :2].T + self.matrix[:, 2]
        return np.round(
            ((pix + 0.5) * SUPERSAMPLE - 0.5) * _ONE).astype(np.int32)

    def fill(self,
             pts: np.ndarray,
             color: Sequence[float],
             canvas: Optional[np.ndarray] = None) -> None:
        """Fill a canonical polygon."""
        target = self.canvas if canvas is None else canvas
        cv2.fillPoly(target, [self.to_canvas(pts)], _color(color), cv2.LINE_AA,
                     _SHIFT)

    def stroke(self,
               pts: np.ndarray,
               width: float,
               color: Sequence[float],
               taper: float = 0.5) -> None:
        """Draw a polyline as a filled band ``width`` canonical units wide.

        The band narrows to ``taper`` times ``width`` at both ends.
        """
        pts = np.asarray(pts, dtype=np.float64)
        tangent = np.gradient(pts, axis=0)
        norm = np.linalg.norm(tangent, axis=1, keepdims=True)
        normal = tangent[:, ::-1] * (1.0, -1.0) / np.maximum(norm, 1e-9)
        s = np.linspace(-1.0, 1.0, len(pts))[:, None]
        half = width / 2 * (taper + (1.0 - taper) * (1.0 - s**2))
        min_half = 0.6 / self.unit
        half = np.maximum(half, min_half)
        band = np.concatenate(
            [pts + normal * half, (pts - normal * half)[::-1]])
        self.fill(band, color)


def _color(color: Sequence[float]) -> Tuple[int, int, int]:
    return tuple(int(round(min(max(c, 0.0), 255.0))) for c in color)


def _mix(c1: Sequence[float], c2: Sequence[float],
         weight: float) -> Tuple[float, ...]:
    """``weight`` of ``c2`` blended into ``c1``."""
    weight = min(max(weight, 0.0), 1.0)
    return tuple((1 - weight) * a + weight * b for a, b in zip(c1, c2))


def _ellipse(cx: float,
             cy: float,
             ax: float,
             ay: float,
             start: float = 0.0,
             stop: float = 2 * np.pi,
             num: int = 72) -> np.ndarray:
    closed = stop - start >= 2 * np.pi
    theta = np.linspace(start, stop, num, endpoint=not closed)
    return np.stack([cx + ax * np.cos(theta), cy + ay * np.sin(theta)], 1)


def _bezier(pts: Sequence, num: int = 15) -> np.ndarray:
    """Quadratic curve from ``pts[0]`` to ``pts[2]`` through ``pts[1]``."""
    p0, mid, p1 = np.asarray(pts, dtype=np.float64)
    ctrl = 2 * mid - (p0 + p1) / 2
    t = np.linspace(0.0, 1.0, num)[:, None]
    return (1 - t)**2 * p0 + 2 * t * (1 - t) * ctrl + t**2 * p1


# ---------------------------------------------------------------------------
# Rendering.
# ---------------------------------------------------------------------------


def draw_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered background: gradient, blotches, shapes and lines.

    Args:
        rng (np.random.Generator): The image's random generator.
        size (int): Side of the canvas in pixels.

    Returns:
        np.ndarray: ``(size, size, 3)`` uint8 BGR canvas.
    """
    c0, c1 = rng.uniform(0, 255, (2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    grid = np.linspace(-0.5, 0.5, size)
    ramp = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    img = c0 + (c1 - c0) * ramp[..., None]
    blotch = rng.normal(0, 25, (5, 5, 3)).astype(np.float32)
    img += cv2.resize(blotch, (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 13))):
        _draw_clutter(img, rng, size)
    return img


def _draw_clutter(img: np.ndarray, rng: np.random.Generator,
                  size: int) -> None:
    color = _color(rng.uniform(0, 255, 3))
    kind = int(rng.integers(4))
    cx, cy = rng.uniform(0, size, 2)
    r = rng.uniform(0.04, 0.25) * size
    if kind == 0:
        pts = _ellipse(cx, cy, r, r * rng.uniform(0.4, 1.0), num=24)
    elif kind == 1:
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        pts = corners * (r, r * rng.uniform(0.3, 1.0))
        ang = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)],
                        [np.sin(ang), np.cos(ang)]])
        pts = pts @ rot.T + (cx, cy)
    else:
        pts = np.stack([(cx, cy), rng.uniform(0, size, 2)])
        if kind == 3:
            pts = np.concatenate([pts, rng.uniform(0, size, (2, 2))])
        thick = max(1, int(rng.integers(1, 4) * size / 200))
        cv2.polylines(img, [np.round(pts * _ONE).astype(np.int32)], False,
                      color, thick, cv2.LINE_AA, _SHIFT)
        return
    cv2.fillPoly(img, [np.round(pts * _ONE).astype(np.int32)], color,
                 cv2.LINE_AA, _SHIFT)


def _draw_head(p: Painter, ident: Dict) -> None:
    """Shirt, neck, hair, ears and the face oval."""
    a, skin = ident['face_a'], ident['skin']
    shade = _mix(skin, (0, 0, 0), 0.25)
    p.fill(_ellipse(0, 2.05, a * 1.9, 0.85), ident['shirt'])
    neck = np.array([[-0.36, 0.3], [0.36, 0.3], [0.4, 1.4], [-0.4, 1.4]])
    p.fill(neck * (a, 1.0), shade)
    if ident['hair_kind'] > 0:
        p.fill(_ellipse(0, -0.12, a * 1.14, 1.08), ident['hair'])
    ear_y = ident['eye_y'] + 0.1
    for side in (-1.0, 1.0):
        p.fill(_ellipse(side * a * 0.98, ear_y, 0.09, 0.17, num=24), shade)
    p.fill(_ellipse(0, 0, a, 1.0), skin)
    if ident['hair_kind'] == 2:
        # the part of the face above the fringe line is hair
        theta0 = np.arcsin(-ident['fringe_y'])
        arc = (np.pi + theta0, 2 * np.pi - theta0)
        p.fill(_ellipse(0, 0, a * 1.01, 1.01, *arc, num=36), ident['hair'])


def _draw_brows(p: Painter, ident: Dict, ex: Dict) -> None:
    color = _mix(ident['hair'], (0, 0, 0), 0.35)
    for side in (-1.0, 1.0):
        outer, middle, inner = _brow(side, ident, ex)
        curve = _bezier([outer, middle, inner])
        p.stroke(curve, ident['brow_thick'], color, taper=0.55)
    if ex['frown_lines'] > 0.05:
        color = _mix(ident['skin'], ident['line'], 0.8 * ex['frown_lines'])
        y0 = ident['eye_y'] - 0.04
        for side in (-1.0, 1.0):
            pts = [(0.03, y0), (0.04, y0 - 0.07), (0.035, y0 - 0.14)]
            line = _bezier(np.array(pts) * (side, 1.0), num=7)
            p.stroke(line, 0.016, color)


def _draw_eyes(p: Painter, ident: Dict, ex: Dict) -> None:
    """Sclera, iris and pupil clipped to each eye, then the lid lines."""
    size = p.canvas.shape[0]
    mask = np.zeros((size, size), np.uint8)
    layer = np.empty_like(p.canvas)
    layer[:] = _color(_mix(ident['skin'], (245, 245, 245), 0.85))
    lids = []
    for side in (-1.0, 1.0):
        upper, lower = _eye_curves(side, ident, ex)
        lids.append((upper, lower))
        p.fill(np.concatenate([upper, lower[::-1]]), (255, 255, 255), mask)
        centre = np.array([side * ident['eye_dx'], ident['eye_y']])
        centre = centre + ident['gaze']
        iris, pupil = ident['iris_r'], ident['iris_r'] * 0.45
        p.fill(_ellipse(*centre, iris, iris, num=24), ident['iris'], layer)
        p.fill(_ellipse(*centre, pupil, pupil, num=16), (10, 10, 10), layer)
    box = cv2.boundingRect(mask)
    x, y, w, h = box
    if w and h:
        alpha = mask[y:y + h, x:x + w, None].astype(np.float32) / 255
        roi = p.canvas[y:y + h, x:x + w].astype(np.float32)
        roi += alpha * (layer[y:y + h, x:x + w] - roi)
        p.canvas[y:y + h, x:x + w] = np.round(roi).astype(np.uint8)
    for upper, lower in lids:
        p.stroke(upper, 0.032, ident['line'], taper=0.4)
        p.stroke(lower, 0.012, _mix(ident['skin'], ident['line'], 0.6))


def _draw_nose(p: Painter, ident: Dict, ex: Dict) -> None:
    nose_y, hw = ident['nose_y'], ident['nose_hw']
    wing_y = nose_y - 0.01 - 0.03 * ex['nose_wrinkle']
    eye_y, skin, line = ident['eye_y'], ident['skin'], ident['line']
    side = ident['nose_side']
    ridge = [(0.03, eye_y + 0.06), (0.05, (eye_y + nose_y) / 2),
             (hw * 0.8, wing_y - 0.03)]
    ridge = _bezier(np.array(ridge) * (side, 1.0), num=9)
    p.stroke(ridge, 0.014, _mix(skin, line, 0.35))
    base = _bezier([(-hw, wing_y), (0.0, nose_y + 0.03), (hw, wing_y)], 11)
    p.stroke(base, 0.018, _mix(skin, line, 0.6))
    for s in (-1.0, 1.0):
        nostril = _ellipse(s * hw * 0.45, nose_y + 0.005, 0.025, 0.012, 0.0,
                           2 * np.pi, 12)
        p.fill(nostril, _mix(skin, (0, 0, 0), 0.7))
    if ex['nose_wrinkle'] > 0.05:
        color = _mix(skin, line, 0.8 * ex['nose_wrinkle'])
        for k in range(3):
            y = eye_y + 0.06 + 0.035 * k
            arc = _bezier([(-0.05, y + 0.01), (0.0, y - 0.008),
                           (0.05, y + 0.01)], 7)
            p.stroke(arc, 0.012, color)


def _draw_cheeks(p: Painter, ident: Dict, ex: Dict) -> None:
    if ex['cheek'] <= 0.05:
        return
    color = _mix(ident['skin'], ident['line'], 0.6 * ex['cheek'])
    nose_y, mouth_y = ident['nose_y'], ident['mouth_y']
    for side in (-1.0, 1.0):
        start = np.array([side * (ident['nose_hw'] + 0.03), nose_y - 0.01])
        end = np.array([side * (ex['mouth_width'] + 0.07), mouth_y + 0.04])
        mid = (start + end) / 2 + (side * 0.04, 0.0)
        p.stroke(_bezier([start, mid, end], num=11), 0.016, color)


def _draw_mouth(p: Painter, ident: Dict, ex: Dict) -> None:
    m = _mouth_curves(ident, ex)
    lips = np.concatenate([m['outer_up'], m['outer_lo'][::-1]])
    p.fill(lips, ident['lip'])
    opening = m['inner_lo'][:, 1] - m['inner_up'][:, 1]
    if opening.max() > 0.008:
        hole = np.concatenate([m['inner_up'], m['inner_lo'][::-1]])
        p.fill(hole, (30, 25, 60))
        if ex['teeth'] > 0.05:
            teeth = np.concatenate([m['inner_up'], m['teeth'][::-1]])
            p.fill(teeth, (235, 240, 240))
    dark = _mix(ident['lip'], (0, 0, 0), 0.6)
    p.stroke(m['inner_up'], 0.016, dark, taper=0.6)
    p.stroke(m['inner_lo'], 0.012, dark, taper=0.6)


def face_matrix(rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw the pose: canonical frame to final pixel frame.

    Args:
        rng (np.random.Generator): The image's random generator.
        size (int): Side of the final image in pixels.

    Returns:
        np.ndarray: ``(2, 3)`` affine matrix.
    """
    angle = np.deg2rad(np.clip(rng.normal(0.0, 8.0), -18.0, 18.0))
    scale = rng.uniform(0.33, 0.41) * size
    centre = size * np.array(
        [0.5 + rng.uniform(-0.03, 0.03), 0.53 + rng.uniform(-0.03, 0.03)])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)],
                            [np.sin(angle), np.cos(angle)]])
    return np.concatenate([rot, (centre - 0.5)[:, None]], 1)


def _fit_inside(matrix: np.ndarray, canon: np.ndarray,
                size: int) -> np.ndarray:
    """Shrink the pose about the image centre until the landmarks fit."""
    centre = (size - 1) / 2.0
    for _ in range(20):
        pts = canon @ matrix[:, :2].T + matrix[:, 2]
        if pts.min() >= 0.5 and pts.max() <= size - 1.5:
            break
        matrix = matrix * 0.95
        matrix[:, 2] += 0.05 * centre
    return matrix


def apply_nuisances(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting, colour, blur and sensor noise on the final-size image.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        rng (np.random.Generator): The image's random generator.

    Returns:
        np.ndarray: The degraded uint8 image.
    """
    size = img.shape[0]
    out = img.astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grid = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    light = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
    out *= (1.0 + rng.uniform(0.0, 0.25) * light)[..., None]
    out = (out - 128) * rng.uniform(0.75, 1.2) + 128 + rng.uniform(-25, 25)
    out *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    if rng.random() < 0.1:
        out[:] = out.mean(axis=2, keepdims=True)
    if rng.random() < 0.7:
        sigma = rng.uniform(0.3, 1.1) * size / 100
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    noise_sd = rng.uniform(0.0, 6.0)
    out += rng.normal(0.0, 1.0, out.shape).astype(np.float32) * noise_sd
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass
class RenderedFace:
    """One rendered SynthFER face.

    Args:
        jpeg (bytes): The encoded image.
        landmarks (np.ndarray): ``(37, 2)`` SynthFER landmarks, pixel frame.
        manual (np.ndarray): ``(5, 2)`` RAF-DB manual landmarks.
        attributes (tuple): ``(gender, race, age)`` placeholders.
        params (dict): The expression parameters that were drawn.
    """
    jpeg: bytes
    landmarks: np.ndarray
    manual: np.ndarray
    attributes: Tuple[int, int, int]
    params: Dict[str, float]


def render_face(spec: SampleSpec, seed: int, size: int = 100) -> RenderedFace:
    """Render one face; the result depends on ``(seed, split, index)`` only.

    Args:
        spec (SampleSpec): What the face shows.
        seed (int): The data set seed.
        size (int): Side of the square image in pixels.

    Returns:
        RenderedFace: The JPEG bytes and the annotations.
    """
    rng = np.random.default_rng([seed, _split_id(spec.split), 1, spec.index])
    ident = sample_identity(rng)
    ex = sample_expression(spec, rng)
    canon = canonical_landmarks(ident, ex)
    matrix = _fit_inside(face_matrix(rng, size), canon, size)
    big = size * SUPERSAMPLE
    canvas = draw_background(rng, big)
    unit = float(np.linalg.norm(matrix[:, 0])) * SUPERSAMPLE
    painter = Painter(canvas, matrix, unit)
    _draw_head(painter, ident)
    _draw_cheeks(painter, ident, ex)
    _draw_nose(painter, ident, ex)
    _draw_brows(painter, ident, ex)
    _draw_eyes(painter, ident, ex)
    _draw_mouth(painter, ident, ex)
    img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    img = apply_nuisances(img, rng)
    quality = int(rng.integers(40, 96))
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f'JPEG encoding failed for {spec.name}')
    landmarks = canon @ matrix[:, :2].T + matrix[:, 2]
    manual_canon = np.array([[-ident['eye_dx'], ident['eye_y']],
                             [ident['eye_dx'], ident['eye_y']]])
    manual = np.concatenate([
        manual_canon @ matrix[:, :2].T + matrix[:, 2], landmarks[[24, 27, 31]]
    ])
    attributes = (ident['gender'], ident['race'], ident['age'])
    return RenderedFace(buf.tobytes(), landmarks, manual, attributes, ex)


# ---------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------


def _points_text(points: np.ndarray) -> str:
    return ''.join(f'{x:.2f} {y:.2f}\n' for x, y in points.tolist())


def sample_paths(root: str, stem: str) -> Dict[str, str]:
    """Paths of every file of one sample in the RAF-DB basic layout.

    Args:
        root (str): The data set root.
        stem (str): The image stem, e.g. ``train_00001``.

    Returns:
        dict[str, str]: Keys ``aligned``, ``original``, ``manual``, ``auto``
        and ``aligned_lmk``.
    """
    return dict(
        aligned=osp.join(root, 'Image', 'aligned', f'{stem}_aligned.jpg'),
        original=osp.join(root, 'Image', 'original', f'{stem}.jpg'),
        manual=osp.join(root, 'Annotation', 'manual',
                        f'{stem}_manu_attri.txt'),
        auto=osp.join(root, 'Annotation', 'auto', f'{stem}_auto_attri.txt'),
        aligned_lmk=osp.join(root, 'Annotation', 'aligned',
                             f'{stem}_aligned.txt'))


def write_sample(root: str, spec: SampleSpec, face: RenderedFace) -> None:
    """Write the image and the annotation files of one sample.

    Args:
        root (str): The data set root (its sub-folders must exist).
        spec (SampleSpec): The sample.
        face (RenderedFace): Its rendering.
    """
    paths = sample_paths(root, spec.stem)
    with open(paths['aligned'], 'wb') as f:
        f.write(face.jpeg)
    try:
        os.link(paths['aligned'], paths['original'])
    except OSError:
        shutil.copyfile(paths['aligned'], paths['original'])
    attrs = ''.join(f'{v}\n' for v in face.attributes)
    with open(paths['manual'], 'w') as f:
        f.write(_points_text(face.manual) + attrs)
    points = _points_text(face.landmarks)
    for key in ('auto', 'aligned_lmk'):
        with open(paths[key], 'w') as f:
            f.write(points)


def _generate_one(task: Tuple[str, int, int, SampleSpec]) -> str:
    root, seed, size, spec = task
    write_sample(root, spec, render_face(spec, seed, size))
    return spec.name


def _init_worker() -> None:
    cv2.setNumThreads(1)


# ---------------------------------------------------------------------------
# The whole data set.
# ---------------------------------------------------------------------------


def generation_params(seed: int, num_train: int, num_test: int, size: int,
                      ambiguous_ratio: float) -> Dict[str, object]:
    """The parameters that fully determine a SynthFER data set.

    Args:
        seed (int): The data set seed.
        num_train (int): Number of training images.
        num_test (int): Number of test images.
        size (int): Side of the images in pixels.
        ambiguous_ratio (float): Share of ambiguous faces.

    Returns:
        dict: The parameters, as stored in the meta file.
    """
    return dict(
        seed=int(seed),
        num_train=int(num_train),
        num_test=int(num_test),
        size=int(size),
        ambiguous_ratio=float(ambiguous_ratio),
        version=GENERATOR_VERSION)


def read_meta(root: str) -> Optional[Dict]:
    """The SynthFER meta data of ``root``, or ``None`` if there is none.

    Args:
        root (str): A folder.

    Returns:
        dict | None: The parsed meta file if ``root`` holds SynthFER output.
    """
    path = osp.join(root, META_FILE)
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get('generator') != GENERATOR_NAME:
        return None
    return meta


def build_meta(params: Dict, specs: Dict[str, List[SampleSpec]]) -> Dict:
    """Assemble the meta data of a data set.

    Args:
        params (dict): From :func:`generation_params`.
        specs (dict[str, list[SampleSpec]]): The specs of each split.

    Returns:
        dict: JSON-serialisable meta data (no timestamps, so it is
        deterministic).
    """
    counts, ambiguous = {}, []
    for split, split_specs in specs.items():
        per_class = [0] * len(SYNTHFER_CLASSES)
        for spec in split_specs:
            per_class[spec.label] += 1
            if spec.ambiguous:
                ambiguous.append(
                    dict(
                        name=spec.name,
                        label=spec.label,
                        classes=[spec.label, spec.mix_class],
                        weights=[
                            spec.mix_weight,
                            round(1.0 - spec.mix_weight, 4)
                        ]))
        counts[split] = dict(total=len(split_specs), per_class=per_class)
    return dict(
        generator=GENERATOR_NAME,
        generator_version=GENERATOR_VERSION,
        params=params,
        seed=params['seed'],
        image_size=params['size'],
        classes=list(SYNTHFER_CLASSES),
        label_base=1,
        counts=counts,
        ambiguous_count=len(ambiguous),
        ambiguous=ambiguous,
        landmarks=dict(
            auto=list(SYNTHFER_LANDMARK_NAMES),
            auto_flip_pairs=[list(p) for p in SYNTHFER_FLIP_PAIRS],
            manual=list(RAFDB_MANUAL_LANDMARK_NAMES),
            manual_flip_pairs=[list(p) for p in RAFDB_MANUAL_FLIP_PAIRS],
            frame='pixel, x right, y down; aligned = original = image'),
    )


def check_output(out: str, params: Dict, force: bool = False) -> bool:
    """Decide whether ``out`` may be (re)written.

    Args:
        out (str): The output folder.
        params (dict): From :func:`generation_params`.
        force (bool): Overwrite whatever ``out`` holds, and regenerate even
            if it already holds this very data set.

    Returns:
        bool: ``False`` if ``out`` already holds a SynthFER data set made
        with ``params`` (nothing to do), ``True`` if it should be written.

    Raises:
        FileExistsError: If ``force`` is off and ``out`` is a non-empty
            folder that is not SynthFER output or SynthFER output made with
            other parameters, or if ``out`` is not a folder.
        ValueError: If ``out`` is a folder that must never be replaced (the
            file system root, or a folder holding the working directory).
    """
    if not osp.lexists(out):
        return True
    real = osp.realpath(out)
    cwd = osp.realpath(os.getcwd())
    if real == osp.dirname(real) or cwd == real or cwd.startswith(real +
                                                                  os.sep):
        raise ValueError(f'refusing to replace {out!r}: it is the root or '
                         'holds the working directory')
    if not osp.isdir(out):
        raise FileExistsError(f'{out!r} exists and is not a folder')
    meta = read_meta(out)
    if meta is not None and meta.get('params') == params and not force:
        return False
    if meta is None and os.listdir(out) and not force:
        raise FileExistsError(
            f'{out!r} is not empty and holds no SynthFER data set; pass '
            '--force to replace it')
    if meta is not None and not force:
        # Runs and noise files may refer to the existing data set.
        raise FileExistsError(
            f'{out!r} holds a SynthFER data set made with other parameters '
            f'({meta.get("params")}); choose another --out, or pass --force '
            'to replace it')
    return True


def _make_tree(root: str) -> None:
    for sub in (('EmoLabel', ), ('Image', 'aligned'), ('Image', 'original'),
                ('Annotation', 'manual'), ('Annotation',
                                           'auto'), ('Annotation', 'aligned')):
        os.makedirs(osp.join(root, *sub), exist_ok=True)


def _write_label_file(root: str, specs: Dict[str, List[SampleSpec]]) -> None:
    lines = [
        f'{spec.name} {spec.label + 1}\n' for split in SPLITS
        for spec in specs[split]
    ]
    with open(osp.join(root, LABEL_FILE), 'w', newline='\n') as f:
        f.write(''.join(lines))


def _render_all(root: str, seed: int, size: int, specs: List[SampleSpec],
                workers: int) -> None:
    tasks = [(root, seed, size, spec) for spec in specs]
    step = max(len(tasks) // 10, 1)
    if workers <= 1:
        results = map(_generate_one, tasks)
        pool = None
    else:
        pool = multiprocessing.Pool(workers, initializer=_init_worker)
        results = pool.imap_unordered(_generate_one, tasks, chunksize=16)
    try:
        for done, _ in enumerate(results, 1):
            if done % step == 0 or done == len(tasks):
                logger.info('rendered %d/%d images', done, len(tasks))
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    if pool is not None:
        pool.close()
        pool.join()


def _move_into_place(tmp: str, out: str) -> None:
    """Replace ``out`` with ``tmp`` by renames, removing the old folder."""
    old = None
    if osp.lexists(out):
        parent = osp.dirname(osp.abspath(out))
        old = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.old-', dir=parent)
        os.rmdir(old)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def generate_synthfer(out: str,
                      seed: int = 0,
                      num_train: int = 3000,
                      num_test: int = 700,
                      size: int = 100,
                      ambiguous_ratio: float = 0.1,
                      workers: int = 2,
                      force: bool = False) -> Optional[Dict]:
    """Generate a SynthFER data set in the RAF-DB basic layout.

    The data set is written into a temporary sibling of ``out`` that is
    renamed into place at the end, so an interrupted run never leaves a
    half-written data set at ``out``. The output depends on ``seed``,
    ``num_train``, ``num_test``, ``size`` and ``ambiguous_ratio`` only, not on
    ``workers``.

    Args:
        out (str): The output folder.
        seed (int): The data set seed (non-negative).
        num_train (int): Number of training images (at most 99999).
        num_test (int): Number of test images (at most 9999).
        size (int): Side of the square images in pixels.
        ambiguous_ratio (float): Share of ambiguous faces in each split.
        workers (int): Number of processes that render images.
        force (bool): Replace ``out`` whatever it holds.

    Returns:
        dict | None: The meta data written, or ``None`` if ``out`` already
        held this data set and nothing was written.
    """
    _check_args(seed, num_train, num_test, size, ambiguous_ratio)
    out = osp.realpath(out)  # replace a symlink's target, not the link
    params = generation_params(seed, num_train, num_test, size,
                               ambiguous_ratio)
    if not check_output(out, params, force):
        return None
    specs = {
        'train': plan_split(seed, 'train', num_train, ambiguous_ratio),
        'test': plan_split(seed, 'test', num_test, ambiguous_ratio)
    }
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=f'.{osp.basename(osp.abspath(out))}.tmp-', dir=parent)
    try:
        _make_tree(tmp)
        _render_all(tmp, seed, size, specs['train'] + specs['test'], workers)
        _write_label_file(tmp, specs)
        meta = build_meta(params, specs)
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        os.chmod(tmp, 0o755)
        _move_into_place(tmp, out)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _check_args(seed: int, num_train: int, num_test: int, size: int,
                ambiguous_ratio: float) -> None:
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    if not 1 <= num_train <= 99999 or not 1 <= num_test <= 9999:
        raise ValueError('need 1 <= num_train <= 99999 and '
                         f'1 <= num_test <= 9999, got {num_train}, '
                         f'{num_test}')
    if size < 32:
        raise ValueError(f'size must be at least 32, got {size}')
    if not 0.0 <= ambiguous_ratio <= 1.0:
        raise ValueError('ambiguous_ratio must lie in [0, 1], got '
                         f'{ambiguous_ratio}')
