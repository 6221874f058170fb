# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's label-history bank on its own."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_state_dict
from mmpretrain.structures import DataSample

from mmfer.models.utils.label_history_bank import LabelHistoryBank
from mmfer.models.utils.sample_bank import last_occurrence, sample_indices


def test_targets_blend_rows_and_estimates_with_gradient_into_them():
    bank = LabelHistoryBank(num_classes=3, momentum=0.25)
    d = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]],
                     requires_grad=True)
    # sample 4 twice: both places read its first-visit row, one_hot(2)
    t = bank(torch.tensor([4, 1, 4]), torch.tensor([2, 0, 2]), d)
    onehot = F.one_hot(torch.tensor([2, 0, 2]), 3).float()
    torch.testing.assert_close(t, 0.25 * onehot + 0.75 * d)
    (grad, ) = torch.autograd.grad(t.sum(), d)
    torch.testing.assert_close(grad, torch.full_like(grad, 0.75))
    # the last occurrence is stored; rows never visited stay empty
    torch.testing.assert_close(bank.rows[4], t[2].detach())
    torch.testing.assert_close(bank.rows[1], t[1].detach())
    assert bank.seen.tolist() == [False, True, False, False, True]
    assert not bank.rows[[0, 2, 3]].any()

    # a second visit blends with the stored row, not with the label
    t2 = bank(torch.tensor([4]), torch.tensor([0]), d[:1].detach())
    torch.testing.assert_close(t2[0], 0.25 * t[2].detach() + 0.75 * d[0])


def test_bank_grows_by_doubling():
    bank = LabelHistoryBank(num_classes=2)
    sizes = []
    for index in (0, 1, 2, 5, 6, 30):
        bank(torch.tensor([index]), torch.tensor([1]),
             torch.rand(1, 2).softmax(1))
        sizes.append(bank.rows.size(0))
    assert sizes == [1, 2, 4, 8, 8, 31]
    assert bank.seen.nonzero().flatten().tolist() == [0, 1, 2, 5, 6, 30]
    torch.testing.assert_close(bank.rows[bank.seen].sum(1), torch.ones(6))


@pytest.mark.parametrize('loader', ['torch', 'mmengine'])
def test_loading_resizes_to_the_checkpoint(loader):
    saved = LabelHistoryBank(num_classes=3)
    saved(torch.tensor([2, 9]), torch.tensor([1, 0]), torch.rand(2, 3))
    state = saved.state_dict()
    assert state['rows'].shape == (10, 3)
    for size in (0, 40):  # an empty and a larger bank
        bank = LabelHistoryBank(num_classes=3)
        bank.reserve(size)
        if loader == 'torch':
            bank.load_state_dict(state)
        else:
            load_state_dict(bank, state, strict=True)
        assert torch.equal(bank.rows, saved.rows)
        assert torch.equal(bank.seen, saved.seen)
        assert bank.seen.dtype == torch.bool


def test_last_occurrence():
    mask = last_occurrence(torch.tensor([3, 1, 3, 0, 1, 3]))
    assert mask.tolist() == [False, False, False, True, True, True]


def test_sample_indices_name_the_missing_field():
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in (7, 2)]
    assert sample_indices(samples, torch.device('cpu')).tolist() == [7, 2]
    with pytest.raises(KeyError, match='sample_idx'):
        sample_indices(samples + [DataSample()], torch.device('cpu'))


def test_momentum_must_be_a_weight():
    with pytest.raises(ValueError, match='history_momentum'):
        LabelHistoryBank(num_classes=3, momentum=1.5)


def test_load_weights_accepts_a_grown_bank(tmp_path):
    # a trained LA-Net's bank has rows; a freshly built model's has none
    from mmfer.apis import load_weights
    saved = torch.nn.Sequential(LabelHistoryBank(num_classes=3))
    saved[0](torch.tensor([6, 1]), torch.tensor([2, 0]), torch.rand(2, 3))
    path = str(tmp_path / 'lanet.pth')
    torch.save(dict(state_dict=saved.state_dict()), path)
    loaded = torch.nn.Sequential(LabelHistoryBank(num_classes=3))
    load_weights(loaded, path)
    assert torch.equal(loaded[0].rows, saved[0].rows)
    assert torch.equal(loaded[0].seen, saved[0].seen)
