# Copyright (c) OpenMMLab. All rights reserved.
"""Every tool answers ``--help`` without importing torch, and quietly; the
choices a tool spells out for that stay those of the library."""
import argparse
import glob
import os.path as osp
import sys
from unittest import mock

import pytest

from mmfer.datasets.noise import NOISE_TYPES
from mmfer.evaluation.metrics.noise_detection import LABEL_SCORES
from mmfer.models.utils.inference_graph import INPUT_ORDERS
from mmfer.visualization.activation_maps import METHODS
from tool_runs import REPO, load_tool, run

TOOLS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'tools', '**', '*.py'),
                          recursive=True)
    if "__name__ == '__main__'" in open(path).read())


def test_every_tool_is_found():
    assert len(TOOLS) >= 15
    assert 'tools/train.py' in TOOLS and 'tools/test.py' in TOOLS


@pytest.mark.parametrize('tool', TOOLS)
def test_help_imports_no_torch(tool):
    proc = run(['-X', 'importtime', tool, '--help'])
    imported = {
        line.rsplit('|', 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith('import time:')
    }
    assert 'usage:' in proc.stdout
    assert 'torch' not in imported
    assert 'MultiScaleDeformableAttention' not in proc.stderr


@pytest.mark.parametrize('tool,name,library', [
    ('tools/visualization/vis_cam.py', 'METHODS', METHODS),
    ('tools/deployment/export_onnx.py', 'INPUT_ORDERS', INPUT_ORDERS),
    ('tools/dataset_converters/make_noisy_labels.py', 'NOISE_TYPES',
     NOISE_TYPES),
    ('tools/analysis_tools/noise_report.py', 'LABEL_SCORES', LABEL_SCORES),
])
def test_spelled_out_choices_are_the_librarys(tool, name, library):
    assert getattr(load_tool(tool), name) == library


class _Parsed(Exception):
    """Carries the parser a tool built out of its ``parse_args``."""


def _tool_parser(tool):
    def grab(parser, *args, **kwargs):
        raise _Parsed(parser)

    module = load_tool(tool)
    with mock.patch.object(argparse.ArgumentParser, 'parse_args', grab), \
            mock.patch.object(argparse.ArgumentParser, 'parse_known_args',
                              grab), \
            mock.patch.object(sys, 'argv', [tool]):
        with pytest.raises(_Parsed) as parsed:
            module.parse_args()
    return parsed.value.args[0]


@pytest.mark.parametrize('tool', TOOLS)
def test_every_option_says_what_it_does(tool):
    parser = _tool_parser(tool)
    silent = [
        action.option_strings[0] for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert not silent, f'{tool}: options without help: {silent}'
