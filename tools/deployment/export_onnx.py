# Copyright (c) OpenMMLab. All rights reserved.
"""Export a trained FER model's inference graph to ONNX.

The graph takes raw images and gives class probabilities: the model's data
preprocessor (channel order, mean, std) and the softmax are inside it, and
only the predicting network runs (see
:class:`mmfer.models.utils.inference_graph.InferenceGraph`). Its input
``images`` is ``(N, 3, H, W)`` float32 with values in ``[0, 255]`` in BGR
order (``--input-order rgb`` for RGB), the batch axis ``N`` dynamic; its
output ``scores`` is ``(N, num_classes)``. The class names, when the
checkpoint records them, are in the file's metadata (``classes``).
docs/deployment.md says how to run it.

Example::

    python tools/deployment/export_onnx.py \\
        configs/eac/r18_synthfer_noise30.py work_dirs/eac/epoch_16.pth \\
        --out eac.onnx --verify
"""
import argparse
import importlib
import json
import os
import os.path as osp
from types import ModuleType
from typing import Dict, Optional, Sequence, Tuple

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

from mmfer.utils.compat import add_allow_pickle_argument

# Kept in sync with mmfer.models.utils.inference_graph.INPUT_ORDERS
# (tested); spelled out so that --help answers before torch is imported.
INPUT_ORDERS = ('bgr', 'rgb')
EXPORTERS = ('torchscript', 'dynamo')
# The torch.export-based exporter has no operators below opset 18.
DEFAULT_OPSET = dict(torchscript=17, dynamo=18)
INPUT_NAME = 'images'
OUTPUT_NAME = 'scores'
# Export with two images: torch.export specialises a batch of one to a
# constant.
EXPORT_BATCH = 2
# Transform arguments that fix the test pipeline's output size, as
# ``(w, h)`` or an int: Resize(WithLandmarks) ``scale``, CenterCrop
# ``crop_size``.
SIZE_KEYS = ('crop_size', 'scale')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Export the inference graph of a FER model (raw images '
        '-> class probabilities, dynamic batch axis) to ONNX.')
    parser.add_argument(
        'config', help='config file the model was trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='ONNX file to write (default: the checkpoint path with .onnx)')
    parser.add_argument(
        '--opset',
        type=int,
        help='ONNX opset (default: 17 for the torchscript exporter, 18 for '
        'dynamo)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input height and width (default: the size the config\'s test '
        'pipeline resizes to)')
    parser.add_argument(
        '--input-order',
        choices=INPUT_ORDERS,
        default='bgr',
        help='channel order of the images the graph takes (default: bgr, '
        'as cv2.imread and mmfer\'s pipelines give them)')
    parser.add_argument(
        '--exporter',
        choices=EXPORTERS,
        default='torchscript',
        help='torch.onnx exporter: torchscript (dynamo=False; needs only '
        'onnx) or dynamo (torch.export-based, also needs onnxscript). '
        'Default: torchscript')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='run the file in onnxruntime on random images and compare with '
        'the PyTorch model\'s predict scores')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-4,
        help='largest score difference --verify accepts (default: 1e-4)')
    add_allow_pickle_argument(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.predict_with=ensemble')
    return parser.parse_args(argv)


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import torch  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402

from mmfer.apis import build_model, load_weights  # noqa: E402
from mmfer.models.utils.inference_graph import InferenceGraph  # noqa: E402
from mmfer.utils import atomic_path  # noqa: E402


def require(package: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say how to install it.

    Args:
        package (str): Module (and PyPI package) name.
        purpose (str): What needs it, for the error message.

    Returns:
        module: The imported module.

    Raises:
        ImportError: If it is not installed.
    """
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(f'{purpose} needs the optional package {package}: '
                          f'pip install {package}') from err


def pipeline_image_size(cfg: Config) -> Tuple[int, int]:
    """The ``(H, W)`` the config's test (or val) pipeline resizes to.

    Args:
        cfg (Config): The config.

    Returns:
        tuple[int, int]: Height and width.

    Raises:
        ValueError: If no transform of the pipeline fixes the size.
    """
    size = None
    for split in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(split) or {}).get('dataset') or {}
        for transform in dataset.get('pipeline') or []:
            for key in SIZE_KEYS:
                if transform.get(key) is not None:
                    size = transform[key]
                    break
        if size is not None:
            break
    if size is None:
        raise ValueError(
            'the test pipeline of the config fixes no image size (no '
            "Resize 'scale' or CenterCrop 'crop_size'); give --img-size H W.")
    width, height = (size, size) if isinstance(size, int) else size
    return int(height), int(width)


def export(graph: InferenceGraph, out: str, img_size: Tuple[int, int],
           opset: int, exporter: str, metadata: Dict[str, str]) -> None:
    """Write ``graph`` to ``out`` as one self-contained ONNX file.

    The file is written under a temporary name and then renamed, so that
    ``out`` is either the old file or the complete new one.

    Args:
        graph (InferenceGraph): The graph, in eval mode.
        out (str): The ONNX file.
        img_size (tuple[int, int]): Input height and width.
        opset (int): ONNX opset.
        exporter (str): ``'torchscript'`` or ``'dynamo'``.
        metadata (dict[str, str]): Stored as the model's metadata.
    """
    import onnx
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    if exporter == 'dynamo':
        # external_data=False: the weights go into the file, not beside it.
        options = dict(
            dynamo=True,
            dynamic_shapes=({
                0: torch.export.Dim('batch')
            }, ),
            external_data=False,
            verbose=False)
    else:
        options = dict(
            dynamo=False,
            dynamic_axes={
                INPUT_NAME: {
                    0: 'batch'
                },
                OUTPUT_NAME: {
                    0: 'batch'
                }
            })
    with atomic_path(out) as tmp:
        with torch.no_grad():
            torch.onnx.export(
                graph, (torch.zeros(EXPORT_BATCH, 3, *img_size), ),
                tmp,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                **options)
        proto = onnx.load(tmp)
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, tmp)


def predict_scores(model: BaseModel, images: torch.Tensor) -> torch.Tensor:
    """``pred_score`` of the model's own ``predict`` path.

    Args:
        model (BaseModel): The model.
        images (torch.Tensor): ``(N, 3, H, W)`` uint8 BGR images, as the
            test pipeline gives them.

    Returns:
        torch.Tensor: ``(N, num_classes)`` scores.
    """
    with torch.no_grad():
        samples = model.test_step(dict(inputs=list(images)))
    return torch.stack([sample.pred_score for sample in samples])


def verify(model: BaseModel, out: str, img_size: Tuple[int, int],
           input_order: str, atol: float) -> float:
    """Compare onnxruntime on ``out`` with the PyTorch model's predict.

    Args:
        model (BaseModel): The model the file was exported from.
        out (str): The ONNX file.
        img_size (tuple[int, int]): Input height and width.
        input_order (str): The graph's channel order.
        atol (float): Largest score difference accepted.

    Returns:
        float: The largest score difference.

    Raises:
        RuntimeError: If a difference exceeds ``atol``.
    """
    import onnxruntime
    generator = torch.Generator().manual_seed(0)
    # One more image than the export used: the batch axis is dynamic.
    images = torch.randint(
        0, 256, (EXPORT_BATCH + 1, 3, *img_size),
        generator=generator,
        dtype=torch.uint8)
    expected = predict_scores(model, images)
    fed = images.flip(1) if input_order == 'rgb' else images
    session = onnxruntime.InferenceSession(
        out, providers=['CPUExecutionProvider'])
    got = session.run([OUTPUT_NAME],
                      {INPUT_NAME: fed.float().numpy()})[0]
    diff = float((torch.from_numpy(got) - expected).abs().max())
    if diff > atol:
        raise RuntimeError(
            f'onnxruntime and PyTorch scores of {out} differ by {diff:.3g} '
            f'(> --atol {atol:g}); try the other --exporter or --opset.')
    return diff


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Export the config's model with the checkpoint's weights.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        str: The ONNX file written.
    """
    args = parse_args(argv)
    # Fail before the export, not after it, where a package is missing.
    require('onnx', 'ONNX export')
    if args.exporter == 'dynamo':
        require('onnxscript', '--exporter dynamo')
    if args.verify:
        require('onnxruntime', '--verify')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    img_size = tuple(args.img_size or pipeline_image_size(cfg))
    out = args.out or osp.splitext(args.checkpoint)[0] + '.onnx'
    opset = args.opset or DEFAULT_OPSET[args.exporter]

    model = build_model(cfg)
    meta = load_weights(model, args.checkpoint, args.config)
    graph = InferenceGraph(model, input_order=args.input_order).eval()
    metadata = dict(
        input=f'{INPUT_NAME}: float32 (N, 3, {img_size[0]}, {img_size[1]}), '
        f'values 0-255, {args.input_order.upper()}',
        output=f'{OUTPUT_NAME}: (N, num_classes) softmax probabilities',
        config=osp.basename(args.config))
    classes = (meta.get('dataset_meta') or {}).get('classes')
    if classes:
        metadata['classes'] = json.dumps(list(classes))
    export(graph, out, img_size, opset, args.exporter, metadata)
    print_log(
        f'wrote {out}: {INPUT_NAME} (N, 3, {img_size[0]}, {img_size[1]}) '
        f'{args.input_order.upper()} 0-255 -> {OUTPUT_NAME} (N, '
        f'num_classes), opset {opset}, {args.exporter} exporter',
        logger='current')
    if args.verify:
        diff = verify(model, out, img_size, args.input_order, args.atol)
        print_log(
            f'verified: onnxruntime and PyTorch scores differ by at most '
            f'{diff:.2g}',
            logger='current')
    return out


if __name__ == '__main__':
    main()
