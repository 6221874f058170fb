# Copyright (c) OpenMMLab. All rights reserved.
"""The flip helper, the class activation maps and the attention loss."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401
from mmfer.models import (AttentionConsistencyLoss, class_activation_maps,
                          flip_width)


def eac_flip_grid(att: torch.Tensor) -> torch.Tensor:
    """EAC's grid_sample mirror (official ``src/utils.py`` flip grid).

    ``x = -(2j / (w - 1) - 1)``, ``y = 2i / (h - 1) - 1``, bilinear,
    border padding, ``align_corners=True``.
    """
    n, _, h, w = att.shape
    xs = -(2 * torch.arange(w, dtype=torch.float32) / (w - 1) - 1)
    ys = 2 * torch.arange(h, dtype=torch.float32) / (h - 1) - 1
    grid = torch.stack(
        [xs.view(1, w).expand(h, w),
         ys.view(h, 1).expand(h, w)], dim=-1)
    return F.grid_sample(
        att,
        grid.expand(n, h, w, 2),
        mode='bilinear',
        padding_mode='border',
        align_corners=True)


def test_flip_width_mirrors_the_width_axis():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).view(2, 3, 2, 4)
    flipped = flip_width(x)
    assert torch.equal(flipped[..., 0], x[..., 3])
    assert torch.equal(flipped[:, :, 1, 2], x[:, :, 1, 1])
    assert torch.equal(flip_width(flipped), x)


def test_flip_width_matches_eac_grid_sample():
    att = torch.randn(2, 7, 7, 7)
    assert torch.allclose(flip_width(att), eac_flip_grid(att), atol=1e-5)


def test_flip_width_rejects_other_shapes():
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        flip_width(torch.zeros(3, 4))


def test_cams_average_back_to_the_logits():
    torch.manual_seed(0)
    feats = torch.randn(3, 16, 4, 5)
    fc = torch.nn.Linear(16, 7).requires_grad_(False)
    cams = class_activation_maps(feats, fc.weight)
    assert cams.shape == (3, 7, 4, 5)
    logits = fc(feats.mean(dim=(2, 3)))
    assert torch.allclose(cams.mean(dim=(2, 3)) + fc.bias, logits, atol=1e-5)
    # one map entry by hand
    by_hand = float((feats[1, :, 3, 4] * fc.weight[2]).sum())
    assert float(cams[1, 2, 3, 4]) == pytest.approx(by_hand, rel=1e-5)


def test_cams_reject_mismatched_channels():
    with pytest.raises(ValueError, match='fc_weight'):
        class_activation_maps(torch.zeros(1, 8, 2, 2), torch.zeros(7, 4))


def test_loss_equals_hand_computed_value():
    # one sample, one channel, two classes, a 1x2 map
    feat1 = torch.tensor([[[[1., 2.]]]])
    feat2 = torch.tensor([[[[3., 5.]]]])
    weight = torch.tensor([[1.], [2.]])
    cam1 = class_activation_maps(feat1, weight)  # [[1, 2]], [[2, 4]]
    cam2 = class_activation_maps(feat2, weight)  # [[3, 5]], [[6, 10]]
    # mirrored cam2: [[5, 3]], [[10, 6]]; differences -4, -1, -8, -2
    expected = (16 + 1 + 64 + 4) / 4  # mean over the 4 entries = 21.25
    loss = AttentionConsistencyLoss(loss_weight=1.0)(cam1, cam2)
    assert loss.item() == pytest.approx(expected)
    eac = MODELS.build(dict(type='AttentionConsistencyLoss', loss_weight=5.))
    assert eac(cam1, cam2).item() == pytest.approx(5 * expected)  # 106.25
    total = AttentionConsistencyLoss(reduction='sum')(cam1, cam2)
    assert total.item() == pytest.approx(85.0)


def test_loss_is_zero_for_mirrored_maps_and_grads_reach_both():
    att = torch.randn(2, 7, 3, 3, requires_grad=True)
    loss_fn = AttentionConsistencyLoss(loss_weight=5.0)
    assert loss_fn(att, flip_width(att)).item() == 0.0
    other = torch.randn(2, 7, 3, 3, requires_grad=True)
    loss_fn(att, other).backward()
    assert att.grad.abs().sum() > 0 and other.grad.abs().sum() > 0


def test_loss_checks_its_arguments():
    with pytest.raises(ValueError, match='reduction'):
        AttentionConsistencyLoss(reduction='none')
    with pytest.raises(ValueError, match='same image size'):
        AttentionConsistencyLoss()(torch.zeros(1, 7, 2, 2),
                                   torch.zeros(1, 7, 3, 3))
