# Copyright (c) OpenMMLab. All rights reserved.
"""Class activation maps of a FER model's prediction, with the mirror.

For each image, loaded with the config's test pipeline, writes
``<out>/<image name>_cam.png`` with four panels: the image, its class
activation map (CAM) of the predicted class (or ``--target-class``), the
mirrored image, and the mirror's map of the same class mirrored back. The
2nd and 4th panels match when the attention is flip-consistent, which is
what EAC trains for. Both maps share one colour scale.

The plain CAM (``sum_c F[c] * fc.weight[k, c]`` on the backbone's last
feature map) is used wherever the logits are a linear classifier of that
map's global average: ImageClassifier/FERClassifier with a linear head or
EACHead, GSMC's student, ReSup's predicting network and LA-Net's expression
tower. Elsewhere (a non-linear neck or head, ReSup's ensemble, a ViT)
Grad-CAM from the optional ``grad-cam`` package is used.

Example::

    python tools/visualization/vis_cam.py \\
        configs/eac/r18_synthfer_noise30.py work_dirs/eac/epoch_16.pth \\
        data/synthfer/Image/aligned/test_0001_aligned.jpg --out cams
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

from mmfer.utils.compat import add_allow_pickle_argument

# Kept in sync with mmfer.visualization.activation_maps.METHODS (tested);
# spelled out so that --help answers before torch is imported.
METHODS = ('auto', 'cam', 'gradcam')
METHOD_NAMES = dict(cam='CAM', gradcam='Grad-CAM')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Save class activation maps of an image and its mirror '
        'for a FER model (EAC flip consistency).')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument(
        '--out', required=True, help='folder for the PNG files')
    parser.add_argument(
        '--target-class',
        help='class to map, by name or index (default: the predicted '
        'class of each image)')
    parser.add_argument(
        '--method',
        choices=METHODS,
        default='auto',
        help='plain CAM, Grad-CAM (optional package grad-cam), or auto: '
        'the plain CAM where it is exact, else Grad-CAM (default)')
    parser.add_argument(
        '--target-layer',
        nargs='+',
        help='Grad-CAM layer(s), module names of the model, e.g. '
        'backbone.layer4 (default: the last feature-map layer)')
    parser.add_argument(
        '--alpha', type=float, default=0.5, help='opacity of the maps')
    parser.add_argument(
        '--device',
        help='device (default: cuda if available, else cpu)')
    add_allow_pickle_argument(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    return parser.parse_args(argv)


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from mmcv.transforms import Compose  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.utils import track_iter_progress  # noqa: E402
from mmpretrain.registry import DATASETS  # noqa: E402

from mmfer.apis import build_model, load_weights  # noqa: E402
from mmfer.visualization import (ActivationMapper, cam_panels,  # noqa: E402
                                 flip_pair, normalise_maps,
                                 predicting_networks, save_cam_figure)


def class_names(cfg: Config, num_classes: int) -> List[str]:
    """The test dataset's class names, or indices where they are unknown.

    The dataset is built lazily (no annotation file is read), so the data
    need not be on this machine.

    Args:
        cfg (Config): The config.
        num_classes (int): Number of logits of the model.

    Returns:
        list[str]: One name per class.
    """
    try:
        dataset = DATASETS.build(
            dict(cfg.test_dataloader.dataset, lazy_init=True))
        classes = list(dataset.metainfo.get('classes') or [])
    except Exception:  # the classes are a nicety: fall back to indices
        classes = []
    if len(classes) != num_classes:
        return [str(i) for i in range(num_classes)]
    return classes


def parse_target(text: Optional[str], classes: Sequence[str]) -> Optional[int]:
    """``--target-class`` as a class index.

    Args:
        text (str, optional): A class name (any case) or index.
        classes (Sequence[str]): The class names.

    Returns:
        int | None: The index; ``None`` without ``text``.
    """
    if text is None:
        return None
    lowered = [c.lower() for c in classes]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    raise ValueError(f'--target-class {text} is neither a class name nor an '
                     f'index below {len(classes)}; classes: {list(classes)}.')


def load_image(pipeline: Compose, model: nn.Module,
               path: str) -> Tuple[torch.Tensor, np.ndarray]:
    """Load an image as the model sees it and as it is shown.

    Args:
        pipeline (Compose): The config's test pipeline.
        model (nn.Module): The model (its data preprocessor is used).
        path (str): The image file.

    Returns:
        tuple: ``(1, C, H, W)`` model input and the ``(H, W, 3)`` RGB uint8
        image after the pipeline.
    """
    try:
        packed = pipeline(dict(img_path=path))
    except Exception as err:
        raise OSError(f'image {path} could not be read by the test '
                      f'pipeline: {err}') from err
    # the pipeline's images are BGR as decoded by OpenCV
    shown = packed['inputs'].permute(1, 2, 0).numpy()[..., ::-1].copy()
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    return data['inputs'], shown


def out_names(images: Sequence[str]) -> List[str]:
    """``<stem>_cam.png`` per image, numbered where stems repeat."""
    stems = [osp.splitext(osp.basename(p))[0] for p in images]
    return [
        f'{s}_cam.png' if stems.count(s) == 1 else f'{s}_{i}_cam.png'
        for i, s in enumerate(stems)
    ]


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Write one figure per image.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        list[str]: The written PNG files.
    """
    args = parse_args(argv)
    missing = [p for p in args.images if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'image(s) not found: {", ".join(missing)}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg, device)
    load_weights(model, args.checkpoint, args.config)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    mapper = ActivationMapper(model, args.method, args.target_layer)
    classes = class_names(cfg, predicting_networks(model)[0].head.num_classes)
    target = parse_target(args.target_class, classes)
    os.makedirs(args.out, exist_ok=True)
    written = []
    for path, name in track_iter_progress(
            list(zip(args.images, out_names(args.images)))):
        inputs, shown = load_image(pipeline, model, path)
        maps, scores, cls = flip_pair(mapper, inputs.to(device), target)
        maps = normalise_maps(maps.cpu(), shown.shape[:2])
        method = METHOD_NAMES[mapper.method_used]
        title = (f'{osp.basename(path)}: {method} of '
                 f'"{classes[cls]}", score {scores[0, cls]:.2f} '
                 f'(mirror {scores[1, cls]:.2f}); predicted '
                 f'"{classes[int(scores[0].argmax())]}"')
        out = osp.join(args.out, name)
        save_cam_figure(out, cam_panels(shown, maps, args.alpha), title)
        written.append(out)
    print_log(
        f'vis_cam: wrote {len(written)} figure(s) to '
        f'{osp.abspath(args.out)}: ' +
        ', '.join(osp.basename(p) for p in written),
        logger='current')
    return written


if __name__ == '__main__':
    main()
