# Copyright (c) OpenMMLab. All rights reserved.
"""Figures of mmfer's tools and hooks, drawn off-screen with matplotlib."""
import io
from typing import Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmfer.utils.atomic_io import atomic_write_bytes

CAM_COLORMAP = 'jet'
CAM_PANELS = ('image', 'CAM', 'mirrored image', 'mirror\'s CAM, mirrored back')


def new_figure(width: float, height: float) -> Figure:
    """A figure with its own Agg canvas: no pyplot, no global backend.

    Args:
        width (float): Width in inches.
        height (float): Height in inches.

    Returns:
        Figure: The figure.
    """
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str) -> None:
    """Write ``fig`` as a PNG; a reader never sees a half-written file.

    Args:
        fig (Figure): The figure.
        path (str): The file.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', bbox_inches='tight')
    atomic_write_bytes(path, buffer.getvalue())


def overlay_cam(image: np.ndarray, cam: np.ndarray,
                alpha: float = 0.5) -> np.ndarray:
    """Blend a map, coloured with the ``jet`` colour map, over an image.

    Args:
        image (np.ndarray): ``(H, W, 3)`` RGB, uint8.
        cam (np.ndarray): ``(H, W)`` in [0, 1].
        alpha (float): Weight of the map. Defaults to 0.5.

    Returns:
        np.ndarray: ``(H, W, 3)`` RGB, uint8.
    """
    if image.shape[:2] != cam.shape:
        raise ValueError(f'image {image.shape[:2]} and map {cam.shape} '
                         'differ in size; upsample the map first.')
    heat = colormaps[CAM_COLORMAP](cam)[..., :3] * 255
    blend = (1 - alpha) * image.astype(np.float64) + alpha * heat
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def cam_panels(image: np.ndarray, maps: np.ndarray,
               alpha: float = 0.5) -> list:
    """The four panels of a flip-consistency figure.

    Args:
        image (np.ndarray): ``(H, W, 3)`` RGB, uint8.
        maps (np.ndarray): ``(2, H, W)`` in [0, 1]: the image's map and the
            mirror's map, mirrored back (so aligned with the image).
        alpha (float): Weight of the maps. Defaults to 0.5.

    Returns:
        list[np.ndarray]: ``[image, its overlay, mirrored image, the
        mirror's overlay mirrored back]``: the 2nd and 4th panels are
        equal when the attention is flip-consistent.
    """
    return [
        image,
        overlay_cam(image, maps[0], alpha), image[:, ::-1],
        overlay_cam(image, maps[1], alpha)
    ]


def save_cam_figure(path: str, panels: Sequence[np.ndarray],
                    title: str) -> None:
    """Save panels side by side under a title.

    Args:
        path (str): The PNG file.
        panels (Sequence[np.ndarray]): RGB images, see :func:`cam_panels`.
        title (str): The figure title.
    """
    fig = new_figure(2.6 * len(panels) + 0.8, 3.2)
    axes = []
    for i, (panel, name) in enumerate(zip(panels, CAM_PANELS)):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(panel, interpolation='nearest')
        ax.set_title(name, fontsize=9)
        ax.axis('off')
        axes.append(ax)
    scale = ScalarMappable(norm=Normalize(0, 1), cmap=CAM_COLORMAP)
    bar = fig.colorbar(scale, ax=axes, fraction=0.02, shrink=0.7)
    bar.set_label('activation\n(each map: min to max)', fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def save_confusion_png(matrix, classes: Optional[Sequence[str]], path: str,
                       title: str = 'Confusion matrix') -> None:
    """Draw a confusion matrix with class names as a PNG.

    Cells are coloured by the share of their row (the true class), so that
    rare classes read as well as frequent ones, and show the count.

    Args:
        matrix (Tensor | np.ndarray): ``(C, C)`` counts, rows the true class.
        classes (Sequence[str], optional): Class names; indices if absent.
        path (str): The PNG file.
        title (str): The figure title. Defaults to ``'Confusion matrix'``.
    """
    counts = np.asarray(matrix.tolist(), dtype=np.int64)
    num = counts.shape[0]
    names = list(classes) if classes else [str(i) for i in range(num)]
    if counts.shape != (num, num) or len(names) != num:
        raise ValueError(f'confusion matrix of shape {counts.shape} and '
                         f'{len(names)} class names do not match.')
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = 1.6 + 0.6 * num
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(shares, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label='share of the row')
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, str(count), ha='center', va='center', fontsize=8,
                color='white' if shares[row, col] > 0.5 else 'black')
    ax.set_xticks(range(num), names, rotation=45, ha='right')
    ax.set_yticks(range(num), names)
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    ax.set_title(title, fontsize=10)
    save_png(fig, path)
