# Copyright (c) OpenMMLab. All rights reserved.
"""SampleBank: per-sample rows indexed by sample_idx, grown on write and
resized to a checkpoint's on load."""
import math

import pytest
import torch
import torch.nn as nn

from mmfer.apis import load_weights
from mmfer.models.utils.sample_bank import SampleBank, first_occurrence


def test_first_occurrence():
    mask = first_occurrence(torch.tensor([3, 1, 3, 0, 1, 5]))
    assert mask.tolist() == [True, True, False, True, False, True]


def test_grows_by_doubling_to_the_largest_index_and_keeps_rows():
    bank = SampleBank(row_shape=(2, ), fill_value=-1.)
    assert bank.values.shape == (0, 2)
    bank.update(torch.tensor([2]), torch.tensor([[1., 2.]]))
    assert bank.capacity == 3  # straight to the index when doubling is less
    bank.update(torch.tensor([4]), torch.tensor([[3., 4.]]))
    assert bank.capacity == 6  # doubled
    bank.update(torch.tensor([20]), torch.tensor([[5., 6.]]))
    assert bank.capacity == 21
    indices, rows = bank.known()
    assert indices.tolist() == [2, 4, 20]
    assert rows.tolist() == [[1., 2.], [3., 4.], [5., 6.]]
    assert (bank.values[[0, 1, 3, 5]] == -1).all()
    # a row that is only partly the fill value is known
    bank.update(torch.tensor([0]), torch.tensor([[-1., 0.]]))
    assert bank.known()[0].tolist() == [0, 2, 4, 20]


def test_a_repeated_index_keeps_its_first_row_and_rows_are_cast():
    bank = SampleBank(dtype=torch.float64)
    values = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float32)
    bank.update(torch.tensor([1, 0, 1]), values)
    assert bank.values.dtype == torch.float64
    assert bank.values.tolist() == [0.5, 0.25]
    # a later write replaces the row
    bank.update(torch.tensor([1]), torch.tensor([0.125]))
    assert bank.values.tolist() == [0.5, 0.125]
    bank.update(torch.tensor([], dtype=torch.long), torch.tensor([]))
    assert bank.capacity == 2


def test_errors_say_what_to_fix():
    with pytest.raises(ValueError, match='fill_value=nan'):
        SampleBank(fill_value=math.nan)
    with pytest.raises(IndexError, match='sample_idx -1'):
        SampleBank().update(torch.tensor([-1]), torch.tensor([0.]))


class Owner(nn.Module):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.bank = SampleBank(row_shape=(2, ), fill_value=-1.)


@pytest.mark.parametrize('fresh_rows', [0, 3, 40])
def test_loading_takes_the_checkpoints_number_of_rows(fresh_rows):
    saved = Owner()
    saved.bank.update(torch.tensor([7, 1]), torch.tensor([[1., 2.], [3.,
                                                                     4.]]))
    state = saved.state_dict()
    assert state['bank.values'].shape == (8, 2)
    loaded = Owner()
    if fresh_rows:
        loaded.bank.update(
            torch.tensor([fresh_rows - 1]), torch.tensor([[9., 9.]]))
    loaded.load_state_dict(state)  # strict
    assert torch.equal(loaded.bank.values, saved.bank.values)
    # the loaded bank grows on from there
    loaded.bank.update(torch.tensor([8]), torch.tensor([[5., 6.]]))
    assert loaded.bank.capacity == 16
    assert loaded.bank.known()[0].tolist() == [1, 7, 8]


def test_load_weights_accepts_a_grown_bank_and_refuses_other_rows(tmp_path):
    saved = Owner()
    saved.bank.update(torch.tensor([5]), torch.tensor([[1., 2.]]))
    path = str(tmp_path / 'owner.pth')
    torch.save(dict(state_dict=saved.state_dict()), path)
    loaded = Owner()
    load_weights(loaded, path)
    assert torch.equal(loaded.bank.values, saved.bank.values)
    # the row shape is the model's: another one is a mismatch
    state = saved.state_dict()
    state['bank.values'] = torch.full((6, 3), -1.)
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError, match=r'bank.values \(6, 3\) vs \(0, 2\)'):
        load_weights(Owner(), path)
