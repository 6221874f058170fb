# Copyright (c) OpenMMLab. All rights reserved.
"""Per-sample helpers of dist_utils: sharding as a DefaultSampler deals,
merging and gathering by sample index, the dataset's per-sample info."""
import numpy as np
import pytest
import torch

from mmfer.utils.dist_utils import (all_gather_rows, merge_by_index,
                                    padded_shard, sample_info)
from tool_runs import spawn_gloo


def test_padded_shard_deals_like_an_unshuffled_distributed_sampler():
    assert padded_shard(7, 0, 2) == [0, 2, 4, 6]
    assert padded_shard(7, 1, 2) == [1, 3, 5, 0]  # padded with sample 0
    assert padded_shard(5, 2, 3) == [2, 0]
    assert padded_shard(4, 0, 1) == [0, 1, 2, 3]


def test_merge_counts_a_padded_sample_once_and_keeps_the_first():
    parts = [
        (np.array([0, 2, 4, 6]), np.array([[0.], [2.], [4.], [6.]])),
        (np.array([1, 3, 5, 0]), np.array([[1.], [3.], [5.], [99.]])),
    ]
    merged = merge_by_index(parts, 7)
    np.testing.assert_array_equal(merged[:, 0], [0, 1, 2, 3, 4, 5, 6])
    # a sample no rank saw stays unknown
    merged = merge_by_index(parts[:1], 7)
    assert np.isnan(merged[[1, 3, 5], 0]).all()


def test_merge_rejects_indices_outside_the_dataset():
    with pytest.raises(IndexError, match='sample_idx 9 out of range'):
        merge_by_index([(np.array([9]), np.array([[0.5]]))], 7)


class InfoDataset:
    """What sample_info reads: get_data_info of each index."""

    def __init__(self, infos):
        self.infos = infos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, idx):
        return self.infos[idx]


def test_sample_info_reads_the_columns_every_sample_has():
    info = sample_info(
        InfoDataset([
            dict(img_path='a.jpg', gt_label=3, is_noisy=True, clean_label=1),
            dict(img_path='b.jpg', gt_label=1, is_noisy=False),
        ]))
    np.testing.assert_array_equal(info['img_path'], ['a.jpg', 'b.jpg'])
    np.testing.assert_array_equal(info['train_label'], [3, 1])
    assert info['train_label'].dtype == np.int64
    np.testing.assert_array_equal(info['is_noisy'], [True, False])
    assert info['clean_label'] is None  # sample 1 does not know it
    assert sample_info(object()) == {}


def _gather_rows(rank: int, world_size: int, out_dir: str) -> None:
    # ranks with different numbers of rows, as in an epoch's last batch
    rows = 3 - rank
    idx = torch.arange(rows) + 10 * rank
    values = torch.full((rows, 2), float(rank), dtype=torch.float64)
    gathered = all_gather_rows(idx, values)
    torch.save(dict(idx=gathered[0], values=gathered[1]),
               f'{out_dir}/rank{rank}.pth')


def test_all_gather_rows_concatenates_in_rank_order(tmp_path):
    spawn_gloo(_gather_rows, 2, tmp_path)
    for rank in range(2):
        out = torch.load(tmp_path / f'rank{rank}.pth', weights_only=True)
        assert out['idx'].tolist() == [0, 1, 2, 10, 11]
        assert out['values'][:, 0].tolist() == [0, 0, 0, 1, 1]
        assert out['values'].dtype == torch.float64


def test_all_gather_rows_without_process_group_and_bad_input():
    idx, values = torch.arange(3), torch.rand(3, 2)
    assert all_gather_rows(idx, values) == (idx, values)
    with pytest.raises(ValueError, match='one number of rows'):
        all_gather_rows(idx, values[:2])
