# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmfer.models.utils.label_distribution import (LabelDistributionEstimator,
                                                   PairwiseEdgeScorer)

B, C, K = 7, 5, 3
DIMS = (16, 8)


def naive_score(scorer: PairwiseEdgeScorer, feats: torch.Tensor, i: int,
                j: int) -> torch.Tensor:
    """c_ij from the concatenated pair feature, one pair at a time."""
    half = feats.size(1) // 2
    h_i, h_j = scorer.fc_in(feats[i]), scorer.fc_in(feats[j])
    pair = torch.cat([h_i[:half], h_j[half:]])
    out = scorer.mlp(scorer.pair_fc(pair))
    return torch.softmax(out, dim=0)[0]


def naive_space(scorer, feats, probs, k, eps=1e-8):
    """d^s from the formula, one sample (row) at a time."""
    n = feats.size(0)
    rows = []
    for i in range(n):
        sims = [
            F.cosine_similarity(feats[i], feats[j], dim=0).item()
            if j != i else -1.0 for j in range(n)
        ]
        neighbours = sorted(range(n), key=lambda j: -sims[j])[:k]
        cm = [
            naive_score(scorer, feats, i, j)
            if j in neighbours else feats.new_zeros(()) for j in range(n)
        ]
        total = sum(cm)
        w = [(cm[j] + eps / n) / (total + eps) for j in range(n)]
        rows.append(sum(w[j] * probs[j] for j in range(n)))
    return torch.stack(rows)


def make_inputs(seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    kwargs = dict(
        generator=g, dtype=torch.float64, requires_grad=requires_grad)
    feats = [torch.randn(B, d, **kwargs) for d in DIMS]
    logits = torch.randn(B, C, **kwargs)
    return feats, logits


def make_estimator(seed=0):
    torch.manual_seed(seed)
    return LabelDistributionEstimator(feat_dims=DIMS, k=K).double()


def test_matches_naive_formula():
    lde = make_estimator()
    feats, logits = make_inputs()
    out = lde(feats, logits)
    probs = logits.softmax(dim=1)
    expected = sum(
        naive_space(s, f, probs, K)
        for s, f in zip(lde.scorers, feats)) / len(DIMS)
    assert out.shape == (B, C)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        out.sum(dim=1), torch.ones(B, dtype=torch.float64))


def test_gradients_match_naive_formula():
    """The naive version selects neighbours with Python floats, so its
    gradient cannot pass through the selection; the module's must agree."""
    lde = make_estimator()
    feats, logits = make_inputs(requires_grad=True)
    upstream = torch.randn(B, C, dtype=torch.float64)
    params = list(lde.parameters())
    inputs = feats + [logits] + params

    grads = torch.autograd.grad((lde(feats, logits) * upstream).sum(), inputs)
    probs = logits.softmax(dim=1)
    naive = sum(
        naive_space(s, f, probs, K) for s, f in zip(lde.scorers, feats))
    naive_grads = torch.autograd.grad((naive / len(DIMS) * upstream).sum(),
                                      inputs)
    for got, want in zip(grads, naive_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    # every scorer, feature and logit tensor is reached
    for got in grads:
        assert got.abs().sum() > 0


def test_no_gradient_through_neighbour_selection():
    """With constant edge scores (last layer zeroed) the output depends on
    the features only through the top-k selection, which must be cut."""
    lde = make_estimator()
    for scorer in lde.scorers:
        torch.nn.init.zeros_(scorer.mlp[-1].weight)
        torch.nn.init.zeros_(scorer.mlp[-1].bias)
    feats, logits = make_inputs(requires_grad=True)
    out = lde(feats, logits)
    grads = torch.autograd.grad(
        out.square().sum(), feats + [logits], allow_unused=True)
    for g in grads[:-1]:
        assert g is None or torch.count_nonzero(g) == 0
    assert grads[-1].abs().sum() > 0


def test_row_weights_sum_to_one_and_pick_k_neighbours():
    lde = make_estimator()
    feats, _ = make_inputs()
    for space, f in enumerate(feats):
        w = lde.row_weights(f, space)
        torch.testing.assert_close(
            w.sum(dim=1), torch.ones(B, dtype=torch.float64))
        # non-neighbours only carry the eps / B smoothing
        assert ((w > 1e-6).sum(dim=1) == K).all()
        assert (w.diagonal() < 1e-6).all()


def test_self_is_never_a_neighbour_even_for_duplicates():
    lde = make_estimator()
    feats, logits = make_inputs()
    # sample 1 is a copy of sample 0: each must pick the other, not itself
    for f in feats:
        f[1] = f[0]
    w = lde.row_weights(feats[0], 0)
    assert w[0, 1] > 1e-6 and w[1, 0] > 1e-6
    assert w.diagonal().max() < 1e-6


def test_k_not_below_batch_raises():
    lde = LabelDistributionEstimator(feat_dims=DIMS, k=B)
    feats, logits = make_inputs()
    with pytest.raises(ValueError, match=rf'k={B}.*B={B}'):
        lde([f.float() for f in feats], logits.float())


def test_input_errors():
    with pytest.raises(ValueError, match='divisible by 4'):
        PairwiseEdgeScorer(10)
    lde = make_estimator()
    feats, logits = make_inputs()
    with pytest.raises(ValueError, match='2 spaces'):
        lde(feats[:1], logits)
    with pytest.raises(ValueError, match='samples'):
        lde(feats, logits[:-1])
