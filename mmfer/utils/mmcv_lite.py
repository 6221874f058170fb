# Copyright (c) OpenMMLab. All rights reserved.
"""Quiet mmcv-lite's one import-time warning.

mmcv-lite, the mmcv build mmfer is meant to run on, has no compiled ops, so
importing ``mmcv.cnn.bricks.transformer`` (mmpretrain's models do) warns
that ``MultiScaleDeformableAttention`` cannot be imported and advises
installing full mmcv. mmfer uses no mmcv op, so that advice is noise.
"""
import warnings

# The start of the warning (``re.match``), and where mmcv 2.2.0 issues it.
OPS_WARNING = r'Fail to import ``MultiScaleDeformableAttention``'
OPS_WARNING_MODULE = r'mmcv\.cnn\.bricks\.transformer'


def silence_ops_warning() -> None:
    """Ignore exactly mmcv-lite's ``MultiScaleDeformableAttention`` warning.

    Must run before ``mmcv.cnn`` is imported; every other warning, of mmcv
    or not, is shown as before.
    """
    warnings.filterwarnings(
        'ignore',
        message=OPS_WARNING,
        category=UserWarning,
        module=OPS_WARNING_MODULE)
