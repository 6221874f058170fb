# Copyright (c) OpenMMLab. All rights reserved.
"""Recognise the facial expressions in every frame of a video.

Reads VIDEO with OpenCV, finds and classifies the faces of each frame and
writes OUT, the video with each face's box and expression drawn (the codec
follows the extension: mp4v for .mp4, MJPG for .avi), and ``--json-out``
(``OUT`` with ``.jsonl``), one JSON line per frame: the frame index, its
time in seconds and its faces as ``image_demo.py`` describes them.
"""
import argparse
import json
import os
import os.path as osp
from typing import Tuple

import mmfer  # noqa: F401  (stack fixes before any config is read)
import cv2
import numpy as np
from mmengine.utils import ProgressBar

from mmfer.apis.fer_inferencer import (add_inferencer_arguments,  # noqa
                                       inferencer_from_args)

CODECS = {'.mp4': 'mp4v', '.avi': 'MJPG'}


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
    parser.add_argument('video', help='the video to read')
    parser.add_argument('--out', required=True,
                        help='the annotated video to write (.mp4 or .avi)')
    parser.add_argument('--json-out',
                        help='the per-frame JSON lines (default: OUT with '
                        '.jsonl)')
    args = parser.parse_args(argv)
    ext = osp.splitext(args.out)[1].lower()
    if ext not in CODECS:
        parser.error(f'--out {args.out}: use a .mp4 or .avi file name.')
    args.json_out = args.json_out or osp.splitext(args.out)[0] + '.jsonl'
    return args


def open_video(path: str) -> Tuple[cv2.VideoCapture, np.ndarray]:
    """Open a video and read its first frame, naming the file if either
    fails (before any model is loaded).

    Args:
        path (str): The video file.

    Returns:
        tuple: The capture, positioned after the first frame, and that
        frame (BGR).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'video {path} not found.')
    capture = cv2.VideoCapture(path)
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise OSError(f'video {path} cannot be read by OpenCV (corrupt, not '
                      'a video, or a codec it lacks); convert it to MP4 '
                      '(H.264) or MJPG AVI.')
    return capture, frame


def main(argv=None) -> None:
    args = parse_args(argv)
    capture, frame = open_video(args.video)
    inferencer = inferencer_from_args(args)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    for path in (args.out, args.json_out):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    writer = _open_writer(args.out, fps, frame.shape)
    progress = ProgressBar(total) if total > 0 else None
    index = 0
    with open(args.json_out, 'w') as lines:
        while frame is not None:
            result = inferencer.predict_image(frame)
            record = dict(
                frame=index, time=round(index / fps, 4),
                img_shape=result['img_shape'], faces=result['faces'])
            lines.write(json.dumps(record) + '\n')
            writer.write(inferencer.visualize(frame, result))
            index += 1
            if progress is not None and index <= total:
                progress.update()
            ok, frame = capture.read()
            frame = frame if ok else None
    capture.release()
    writer.release()
    print(f'\nwrote {index} frames to {args.out} and {args.json_out}')


def _open_writer(path: str, fps: float, shape: tuple) -> cv2.VideoWriter:
    codec = CODECS[osp.splitext(path)[1].lower()]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps,
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise OSError(f'cannot write {path} with the {codec} codec; try the '
                      'other extension (.mp4 or .avi).')
    return writer


if __name__ == '__main__':
    main()
