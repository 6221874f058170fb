# Copyright (c) OpenMMLab. All rights reserved.
"""``import mmfer`` silences mmcv-lite's ops warning, and nothing else."""
import pytest

from tool_runs import run

OPS_WARNING = 'Fail to import ``MultiScaleDeformableAttention``'
# Importing mmpretrain's models imports mmcv.cnn.bricks.transformer, which
# issues the warning; then an unrelated warning from the same module.
IMPORT_MODELS = """
import warnings
import mmpretrain.models
warnings.warn_explicit('another mmcv warning', UserWarning, 'transformer.py',
                       1, module='mmcv.cnn.bricks.transformer')
"""


@pytest.mark.parametrize('with_mmfer', [False, True])
def test_only_the_ops_warning_is_silenced(with_mmfer):
    code = ('import mmfer\n' if with_mmfer else '') + IMPORT_MODELS
    stderr = run(['-c', code]).stderr
    assert (OPS_WARNING in stderr) is not with_mmfer
    assert 'another mmcv warning' in stderr
