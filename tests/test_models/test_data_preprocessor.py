# Copyright (c) OpenMMLab. All rights reserved.
"""FERDataPreprocessor normalises in place: the same values as mmpretrain's
ClsDataPreprocessor on every input form, and the caller's tensors are left
as they were."""
import pytest
import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.structures import DataSample

from mmfer.models.utils import FERDataPreprocessor

NORM = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def images(num, size=(3, 12, 10), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, size, dtype=torch.uint8, generator=gen)
        for _ in range(num)
    ]


def samples(num):
    return [DataSample().set_gt_label(i % 7) for i in range(num)]


@pytest.mark.parametrize('kwargs', [NORM, dict(NORM, to_rgb=False), {}])
@pytest.mark.parametrize('stacked', [False, True])
def test_single_view_equals_mmpretrain(kwargs, stacked):
    imgs = images(5)
    inputs = torch.stack(imgs) if stacked else imgs
    ours = FERDataPreprocessor(**kwargs)(
        dict(inputs=inputs, data_samples=samples(5)))
    ref = ClsDataPreprocessor(**kwargs)(
        dict(inputs=inputs, data_samples=samples(5)))
    assert ours['inputs'].dtype == torch.float32
    assert torch.equal(ours['inputs'], ref['inputs'])
    assert [s.gt_label.tolist() for s in ours['data_samples']] == \
        [s.gt_label.tolist() for s in ref['data_samples']]


def test_every_view_equals_mmpretrain_on_that_view():
    views = [images(4, seed=1), images(4, seed=2)]
    out = FERDataPreprocessor(**NORM)(
        dict(inputs=views, data_samples=samples(4)))
    ref = ClsDataPreprocessor(**NORM)
    for got, view in zip(out['inputs'], views):
        assert torch.equal(got, ref(dict(inputs=view))['inputs'])


def test_images_of_several_sizes_take_mmpretrain_padding_path():
    imgs = images(2) + images(1, size=(3, 14, 9))
    kwargs = dict(NORM, pad_size_divisor=4, pad_value=7)
    ours = FERDataPreprocessor(**kwargs)(dict(inputs=imgs))
    ref = ClsDataPreprocessor(**kwargs)(dict(inputs=imgs))
    assert ours['inputs'].shape == (3, 3, 16, 12)
    assert torch.equal(ours['inputs'], ref['inputs'])


def test_padding_of_one_size_batch_and_state_restored():
    imgs = images(3, size=(3, 10, 10))
    pre = FERDataPreprocessor(**NORM, pad_size_divisor=8, pad_value=1.5)
    ours = pre(dict(inputs=imgs))
    ref = ClsDataPreprocessor(**NORM, pad_size_divisor=8,
                              pad_value=1.5)(dict(inputs=imgs))
    assert ours['inputs'].shape == (3, 3, 16, 16)
    assert torch.equal(ours['inputs'], ref['inputs'])
    # the in-place path switches mmpretrain's own conversion off only for
    # its call
    assert pre.to_rgb and pre._enable_normalize


def test_float_inputs_are_not_changed_in_place():
    batch = torch.stack(images(3)).float()
    kept = batch.clone()
    out = FERDataPreprocessor(**NORM)(dict(inputs=batch))
    assert torch.equal(batch, kept)
    assert torch.equal(out['inputs'],
                       ClsDataPreprocessor(**NORM)(dict(inputs=kept))['inputs'])
