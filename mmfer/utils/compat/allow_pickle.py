# Copyright (c) OpenMMLab. All rights reserved.
"""The user's opt-in to fully unpickling checkpoints: the
``MMFER_ALLOW_PICKLE`` variable and the ``--allow-pickle`` flag of mmfer's
tools.

Kept free of torch and mmengine so that a tool can build its parser (and
answer ``--help``) before importing them.
"""
import argparse
import os

#: Set to ``1`` to let checkpoints that ``torch.load(weights_only=True)``
#: refuses be fully unpickled, which can run arbitrary code.
ALLOW_PICKLE_ENV = 'MMFER_ALLOW_PICKLE'


def pickle_allowed() -> bool:
    """Whether the user opted in to fully unpickling local checkpoints.

    Returns:
        bool: True if ``MMFER_ALLOW_PICKLE`` is ``1``/``true``/``yes``/``on``.
    """
    value = os.environ.get(ALLOW_PICKLE_ENV, '').strip().lower()
    return value in ('1', 'true', 'yes', 'on')


class _AllowPickleAction(argparse.Action):
    """Sets ``MMFER_ALLOW_PICKLE=1`` when its flag is given."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[ALLOW_PICKLE_ENV] = '1'
        setattr(namespace, self.dest, True)


def add_allow_pickle_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--allow-pickle`` opt-in of mmfer's tools to ``parser``.

    Args:
        parser (argparse.ArgumentParser): A tool's parser; parsing
            ``--allow-pickle`` sets ``MMFER_ALLOW_PICKLE=1``.
    """
    parser.add_argument(
        '--allow-pickle',
        action=_AllowPickleAction,
        nargs=0,
        default=False,
        help='fully unpickle checkpoints that torch.load(weights_only=True) '
        f'refuses (same as {ALLOW_PICKLE_ENV}=1); this runs any code they '
        'hold, so only use it for files you trust')
