# Copyright (c) OpenMMLab. All rights reserved.
"""Convert face-recognition ResNet weights to an mmpretrain checkpoint.

Recognises the four layouts of ``docs/pretrained.md`` (torchvision
``resnet18_msceleb.pth``, SCN ``ijba_res18_naive.pth.tar``, DMUE
``mv_epoch_17.pt``, VGGFace2 ``resnet50_ft_weight.pkl``), fails if any
backbone key is missing or unexpected, checks the result loads strictly into
``mmpretrain.models.ResNet`` and writes ``{'state_dict', 'meta'}`` atomically.

Example::

    python tools/model_converters/face_weights_to_mmpretrain.py \
        checkpoints/resnet18_msceleb.pth \
        checkpoints/resnet18_msceleb_mmpretrain.pth

The result is used as
``backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=DST))``.
"""
import argparse
import os
import os.path as osp
import sys

# Kept in sync with mmfer.utils.face_weights.LAYOUTS (tested); spelled out
# so that --help and the overwrite check answer before torch is imported.
LAYOUTS = ('torchvision', 'scn', 'dmue', 'vggface2')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='face-weight file (.pth, .pth.tar, .pt '
                        'or .pkl)')
    parser.add_argument('dst', help='mmpretrain checkpoint to write (must '
                        'not exist)')
    parser.add_argument('--depth', type=int, choices=[18, 34, 50, 101, 152],
                        default=None, help='ResNet depth (default: inferred '
                        'from the keys)')
    parser.add_argument('--layout', choices=['auto', *LAYOUTS],
                        default='auto', help='key layout of SRC (default: '
                        'detected)')
    parser.add_argument('--drop', action='append', default=[],
                        metavar='PREFIX', help='also drop keys starting with '
                        'PREFIX as a head (repeatable)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='fully unpickle a torch file that is not '
                        'weights-only; only for files you trust')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if osp.lexists(args.dst):
        sys.exit(f'{args.dst} exists; refusing to overwrite it. Remove it or '
                 'choose another DST.')
    # imported here: torch and mmpretrain take seconds.
    from mmfer.utils.atomic_io import atomic_write_bytes
    from mmfer.utils.face_weights import (FaceWeightsError, UnsafePickleError,
                                          check_loadable, checkpoint_bytes,
                                          convert_face_weights, file_sha256,
                                          load_face_checkpoint,
                                          make_checkpoint)
    try:  # these messages name the file already
        source = load_face_checkpoint(args.src, allow_unsafe=args.unsafe_load)
    except (FileNotFoundError, FaceWeightsError, UnsafePickleError) as err:
        sys.exit(str(err))
    try:
        state_dict, report = convert_face_weights(
            source,
            depth=args.depth,
            layout=args.layout,
            extra_heads=args.drop,
            logger='silent')
        check_loadable(state_dict, report.depth)
    except FaceWeightsError as err:
        sys.exit(f'{args.src}: {err}')
    checkpoint = make_checkpoint(
        state_dict,
        report,
        source=osp.basename(args.src),
        source_sha256=file_sha256(args.src))
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    if osp.lexists(args.dst):  # created while we converted
        sys.exit(f'{args.dst} appeared during the conversion; not '
                 'overwriting it.')
    atomic_write_bytes(args.dst, checkpoint_bytes(checkpoint))
    print(report.summary())
    print(f'note: {report.note}')
    print(f'wrote {args.dst}; use it as backbone=dict('
          + ', '.join(f'{k}={v!r}' for k, v in report.backbone.items())
          + f", init_cfg=dict(type='Pretrained', checkpoint={args.dst!r}))")


if __name__ == '__main__':
    main()
