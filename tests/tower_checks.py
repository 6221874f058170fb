# Copyright (c) OpenMMLab. All rights reserved.
"""Checks shared by the tests of LA-Net's two-tower backbone."""
import torch

from mmfer.models.utils import verify_pretrained


def assert_both_towers_loaded(model, source):
    """Every tensor of both towers equals the checkpoint source's, the
    landmark tower holds fewer (the shared stages live in the expression
    tower) and the pretrained check reports both towers.

    Args:
        model (ExpressionLandmarkBackbone): Initialised from ``source``'s
            checkpoint.
        source (nn.Module): The backbone the checkpoint was saved from.
    """
    expected = source.state_dict()
    for tower in (model.expr_tower, model.lm_tower):
        state = tower.state_dict()
        assert state
        for key, value in state.items():
            torch.testing.assert_close(
                value, expected[key], rtol=0, atol=0, msg=key)
    assert len(model.lm_tower.state_dict()) < len(expected) == len(
        model.expr_tower.state_dict())
    assert len(verify_pretrained(model, 'lanet')) == 2
