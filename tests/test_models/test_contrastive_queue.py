# Copyright (c) OpenMMLab. All rights reserved.
"""LA-Net's contrastive queue on its own."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import mmfer.models.losses.expression_landmark_contrastive_loss  # noqa: F401
from mmfer.models.utils.contrastive_queue import (EMPTY_QUEUE_LABEL,
                                                  ContrastiveQueue)

DIM, SIZE, BATCH = 4, 12, 4


def test_fresh_queue_holds_unit_keys_and_empty_labels():
    torch.manual_seed(0)
    queue = ContrastiveQueue(DIM, SIZE)
    for keys in (queue.u, queue.v):
        assert keys.shape == (DIM, SIZE)
        torch.testing.assert_close(keys.norm(dim=0), torch.ones(SIZE))
    assert not torch.equal(queue.u, queue.v)
    assert (queue.labels == EMPTY_QUEUE_LABEL).all() and int(queue.ptr) == 0
    assert set(queue.state_dict()) == {'u', 'v', 'labels', 'ptr'}


def test_enqueue_replaces_the_oldest_batch():
    queue = ContrastiveQueue(DIM, SIZE)
    keys = [F.normalize(torch.randn(BATCH, DIM), dim=1) for _ in range(4)]
    for n, k in enumerate(keys):
        queue.enqueue(k, 2 * k, torch.full((BATCH, ), n))
        assert int(queue.ptr) == (n + 1) * BATCH % SIZE
    expected = torch.cat([keys[3], keys[1], keys[2]]).t()
    torch.testing.assert_close(queue.u, expected)
    torch.testing.assert_close(queue.v, 2 * expected)
    assert queue.labels.tolist() == [3.0] * 4 + [1.0] * 4 + [2.0] * 4


def test_enqueue_refuses_batches_that_do_not_tile_the_queue():
    queue = ContrastiveQueue(DIM, SIZE)
    with pytest.raises(ValueError, match=r'queue_size=12.*batch size 5'):
        queue.enqueue(
            torch.zeros(5, DIM), torch.zeros(5, DIM), torch.zeros(5))
    queue.enqueue(torch.zeros(4, DIM), torch.zeros(4, DIM), torch.zeros(4))
    # a batch of 6 divides 12 but not the pointer 4: the last partial batch
    with pytest.raises(ValueError, match='pointer 4.*drop_last'):
        queue.enqueue(
            torch.zeros(6, DIM), torch.zeros(6, DIM), torch.zeros(6))
    assert int(queue.ptr) == 4


@pytest.mark.parametrize('mode,ids', [('official', [2, 0, -4, -11, 2]),
                                      ('unique', [2, -1, -5, -12, 2])])
def test_pseudo_labels_give_ambiguous_ids_below_the_confidence(mode, ids):
    queue = ContrastiveQueue(DIM, SIZE, confidence=0.7, ambiguous_ids=mode)
    # below 0.7 only the maxima 0.5, 0.5 and 0.6; the last row is exactly at
    # it: confident
    targets = torch.tensor([[0.05, 0.05, 0.9], [0.5, 0.3, 0.2],
                            [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]],
                           dtype=torch.float64, requires_grad=True)
    indices = torch.tensor([0, 0, 4, 11, 9])
    labels = queue.pseudo_labels(targets, indices)
    assert labels.tolist() == ids and labels.dtype == torch.long
    assert not labels.requires_grad


def test_empty_slots_are_negatives_of_every_query():
    """An empty slot's label equals no class and no ambiguous id: the loss
    is that of slots labelled with a class nobody has, and differs from
    slots labelled with the queries' class (which are masked out)."""
    torch.manual_seed(0)
    loss = MODELS.build(
        dict(type='ExpressionLandmarkContrastiveLoss', temperature=0.1))
    queue = ContrastiveQueue(DIM, SIZE)
    query = F.normalize(torch.randn(BATCH, DIM), dim=1)
    key = F.normalize(torch.randn(BATCH, DIM), dim=1)
    # class 0 and the ambiguous ids of indices 0 (official: 0) and 3
    labels = torch.tensor([0, 0, -3, 0])
    empty = loss(query, key, queue.u, queue.labels, labels)
    other = loss(query, key, queue.u, torch.full((SIZE, ), 6.0), labels)
    same = loss(query, key, queue.u, torch.zeros(SIZE), labels)
    torch.testing.assert_close(empty, other)
    assert not torch.isclose(empty, same)


def test_argument_errors():
    with pytest.raises(ValueError, match='ambiguous_ids'):
        ContrastiveQueue(DIM, SIZE, ambiguous_ids='negative')
    with pytest.raises(ValueError, match='queue_size'):
        ContrastiveQueue(DIM, 0)
