# Copyright (c) OpenMMLab. All rights reserved.
"""Find the faces of photos and recognise their expressions.

For each IMAGE, writes ``<out-dir>/<stem>.json`` (image size and, per face,
the detector's box and score, the square crop that was classified, the
predicted expression and the score of every class) and
``<out-dir>/<stem>.png`` (the photo with each face's box and expression).
"""
import argparse
import json
import os
import os.path as osp

import mmfer  # noqa: F401  (stack fixes before any config is read)
import mmcv
from mmengine.utils import ProgressBar

from mmfer.apis.fer_inferencer import (add_inferencer_arguments,  # noqa
                                       inferencer_from_args, read_image)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog=__doc__.split('\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inferencer_arguments(parser)
    parser.add_argument('images', nargs='+', metavar='IMAGE',
                        help='photos to read')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the JSON and annotated images')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    for path in args.images:
        if not osp.isfile(path):
            raise FileNotFoundError(f'image {path} not found.')
    inferencer = inferencer_from_args(args)
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(args.images))
    for path in args.images:
        img = read_image(path)
        result = inferencer.predict_image(img)
        result['img_path'] = path
        stem = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0])
        with open(stem + '.json', 'w') as f:
            json.dump(result, f, indent=2)
        mmcv.imwrite(inferencer.visualize(img, result), stem + '.png')
        progress.update()
    print(f'\nwrote {len(args.images)} JSON and annotated images to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
