# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmfer.models.losses.adaptive_wing_loss import (AdaptiveWingLoss,
                                                    adaptive_wing)
from mmfer.models.losses.expression_landmark_contrastive_loss import \
    ExpressionLandmarkContrastiveLoss

# ---------------------------------------------------------------- EL loss


def naive_el_loss(q, k, queue, queue_labels, labels, t):
    """The official ``_cal`` written as a double loop over (i, j)."""
    n = q.size(0)
    per_query = []
    for i in range(n):
        terms = []
        for j in range(n):
            if labels[j] != labels[i]:
                continue
            logits = [q[i] @ k[j] / t]
            for m in range(queue.size(1)):
                if queue_labels[m] == labels[i]:
                    logits.append(q.new_tensor(-1e10))
                else:
                    logits.append(q[i] @ queue[:, m] / t)
            terms.append(-torch.log_softmax(torch.stack(logits), 0)[0])
        per_query.append(sum(terms) / len(terms))
    return sum(per_query) / n


def el_inputs(n=6, d=4, q_size=9, seed=0):
    g = torch.Generator().manual_seed(seed)

    def unit(*shape, dim):
        return F.normalize(
            torch.randn(*shape, generator=g, dtype=torch.float64), dim=dim)

    query = unit(n, d, dim=1).requires_grad_()
    key = unit(n, d, dim=1).requires_grad_()
    queue = unit(d, q_size, dim=0).requires_grad_()
    # class labels, one repeated and one "ambiguous" unique negative id
    labels = torch.tensor([0, 1, 1, 2, -7, 0])[:n]
    queue_labels = torch.tensor([0, 1, 3, -7, 2, 0, 5, 1, 4])[:q_size]
    return query, key, queue, queue_labels, labels


@pytest.mark.parametrize('temperature', [0.1, 0.5])
def test_el_loss_matches_double_loop(temperature):
    loss_fn = ExpressionLandmarkContrastiveLoss(
        temperature=temperature, loss_weight=0.3)
    query, key, queue, queue_labels, labels = el_inputs()
    got = loss_fn(query, key, queue, queue_labels, labels)
    want = 0.3 * naive_el_loss(query, key, queue, queue_labels, labels,
                               temperature)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g_got = torch.autograd.grad(got, query)[0]
    g_want = torch.autograd.grad(want, query)[0]
    torch.testing.assert_close(g_got, g_want, rtol=1e-9, atol=1e-12)


def test_el_loss_trains_only_the_query():
    loss_fn = ExpressionLandmarkContrastiveLoss()
    query, key, queue, queue_labels, labels = el_inputs()
    loss_fn(query, key, queue, queue_labels, labels).backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert key.grad is None and queue.grad is None


def test_el_loss_ignores_same_label_queue_entries():
    """Changing a queue entry that shares every query's label changes
    nothing: it is excluded from the negatives of all of them."""
    loss_fn = ExpressionLandmarkContrastiveLoss()
    query, key, queue, _, _ = el_inputs()
    labels = torch.zeros(6, dtype=torch.long)
    queue_labels = torch.tensor([0, 1, 1, 2, 0, 3, 4, 5, 6])
    before = loss_fn(query, key, queue, queue_labels, labels)
    moved = queue.detach().clone()
    moved[:, [0, 4]] = query.detach()[0].view(-1, 1)  # very hard negatives
    after = loss_fn(query, key, moved, queue_labels, labels)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    # the same change on an entry of another label does matter
    moved[:, 1] = query.detach()[0]
    assert loss_fn(query, key, moved, queue_labels, labels) > after + 1e-3


def test_el_loss_single_sample_closed_form():
    """N=1, one queue entry: l = -log(e^{a/T} / (e^{a/T} + e^{b/T}))."""
    t = 0.1
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    queue = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    a, b = 0.6, 0.0
    want = -math.log(math.exp(a / t) / (math.exp(a / t) + math.exp(b / t)))
    loss_fn = ExpressionLandmarkContrastiveLoss(temperature=t)
    got = loss_fn(q, k, queue, torch.tensor([3]), torch.tensor([1]))
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_el_loss_shape_errors():
    loss_fn = ExpressionLandmarkContrastiveLoss()
    query, key, queue, queue_labels, labels = el_inputs()
    with pytest.raises(ValueError, match='transpose'):
        loss_fn(query, key, queue.t(), queue_labels, labels)
    with pytest.raises(ValueError, match='one label per queue entry'):
        loss_fn(query, key, queue, queue_labels[:-1], labels)
    with pytest.raises(ValueError, match='one label per query'):
        loss_fn(query, key, queue, queue_labels, labels[:-1])


# ------------------------------------------------------------ AWing loss
ALPHA, OMEGA, EPS, THETA = 2.1, 14.0, 1.0, 0.5


def naive_awing(y_hat: float, y: float) -> float:
    """Adaptive Wing for one element, from Wang et al. (2019)."""
    d = abs(y - y_hat)
    p = ALPHA - y
    if d < THETA:
        return OMEGA * math.log(1 + (d / EPS)**p)
    a = OMEGA * (1 / (1 + (THETA / EPS)**p)) * p * (THETA / EPS)**(p - 1) \
        / EPS
    c = THETA * a - OMEGA * math.log(1 + (THETA / EPS)**p)
    return a * d - c


def heatmaps(n=3, k=2, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, k, h, w, generator=g, dtype=torch.float64)
    noise = torch.randn(n, k, h, w, generator=g, dtype=torch.float64)
    pred = (target + 1.5 * noise).requires_grad_()
    peaks = torch.rand(n, k, h, w, generator=g, dtype=torch.float64) > 0.7
    weight = 1 + 9 * peaks.double()
    return pred, target, weight


def test_awing_elementwise_matches_naive():
    pred, target, _ = heatmaps()
    got = adaptive_wing(pred, target, ALPHA, OMEGA, EPS, THETA)
    pairs = zip(pred.flatten().tolist(), target.flatten().tolist())
    want = torch.tensor([naive_awing(p, y) for p, y in pairs],
                        dtype=torch.float64).view_as(pred)
    # both branches are exercised
    diff = (pred - target).abs()
    assert (diff < THETA).any() and (diff >= THETA).any()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('y', [0.0, 0.3, 1.0])
def test_awing_value_and_slope_continuous_at_theta(y):
    target = torch.tensor([y, y], dtype=torch.float64)
    step = 1e-7
    pred = (target + torch.tensor([THETA - step, THETA + step],
                                  dtype=torch.float64)).requires_grad_()
    loss = adaptive_wing(pred, target, ALPHA, OMEGA, EPS, THETA)
    grad = torch.autograd.grad(loss.sum(), pred)[0]
    assert abs(loss[0] - loss[1]) < 1e-5
    assert abs(grad[0] - grad[1]) < 1e-5
    assert grad[0] > 0  # and the slope is not trivially 0 on both sides


def test_awing_finite_gradient_at_zero_and_far_away():
    target = torch.tensor([0.0, 1.0, 0.5, 0.0], dtype=torch.float64)
    pred = torch.tensor([0.0, 1.0, 40.0, -40.0],
                        dtype=torch.float64).requires_grad_()
    loss = adaptive_wing(pred, target)
    grad = torch.autograd.grad(loss.sum(), pred)[0]
    assert torch.isfinite(grad).all()
    assert grad[0] == 0 and grad[1] == 0


def test_awing_module_weighted_mean_all_valid():
    pred, target, weight = heatmaps()
    loss_fn = AdaptiveWingLoss(loss_weight=2.0)
    got = loss_fn(pred, target, weight, torch.ones(3, 1, dtype=torch.bool))
    want = 2.0 * (adaptive_wing(pred, target) * weight).mean()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(loss_fn(pred, target, weight), want)
    torch.testing.assert_close(
        loss_fn(pred, target), 2.0 * adaptive_wing(pred, target).mean())


def test_awing_module_masks_invalid_samples():
    pred, target, weight = heatmaps()
    valid = torch.tensor([True, False, True])
    loss_fn = AdaptiveWingLoss()
    got = loss_fn(pred, target, weight, valid)
    keep = valid.nonzero().flatten()
    want = (adaptive_wing(pred[keep], target[keep]) * weight[keep]).mean()
    torch.testing.assert_close(got, want)
    # garbage in the invalid sample changes nothing, and gets no gradient
    pred2 = pred.detach().clone()
    target2, weight2 = target.clone(), weight.clone()
    pred2[1], target2[1], weight2[1] = 1e3, float('nan'), 1e6
    pred2.requires_grad_()
    got2 = loss_fn(pred2, target2, weight2, valid)
    torch.testing.assert_close(got2, got.detach())
    got2.backward()
    assert torch.count_nonzero(pred2.grad[1]) == 0
    assert torch.count_nonzero(pred2.grad[0]) > 0


def test_awing_module_no_valid_sample_gives_zero_with_graph():
    pred, target, weight = heatmaps()
    loss = AdaptiveWingLoss()(pred, target, weight, torch.zeros(3).bool())
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.count_nonzero(pred.grad) == 0


def test_awing_module_shape_errors():
    pred, target, weight = heatmaps()
    loss_fn = AdaptiveWingLoss()
    with pytest.raises(ValueError, match='same shape'):
        loss_fn(pred, target[:, :1], weight)
    with pytest.raises(ValueError, match='one flag per sample'):
        loss_fn(pred, target, weight, torch.ones(2, dtype=torch.bool))
