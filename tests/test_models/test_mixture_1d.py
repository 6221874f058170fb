# Copyright (c) OpenMMLab. All rights reserved.
"""ReSup's noise model: the 1-D mixtures, the lookup and the similarity."""
import math

import numpy as np
import pytest
import torch

from mmfer.models.utils.mixture_1d import (MIXTURES, BetaMixture1D,
                                           GaussianMixture1D, build_mixture,
                                           label_similarity,
                                           lookup_clean_probability)

CLAMP = (1e-4, 1 - 1e-4)
EPS = 1e-12


def bimodal_beta(rng, n_low=3000, n_high=7000):
    return np.concatenate([rng.beta(2, 8, n_low), rng.beta(9, 2, n_high)])


def resup_like_similarities(rng):
    """A clean majority near 1 and a noisy minority, clamped as the
    official code clamps the similarities before fitting."""
    x = np.concatenate([rng.beta(2, 4, 2000), rng.beta(10, 1.2, 8000)])
    return np.clip(x, 1e-3, 1 - 1e-3)


# --------------------------------------------------------------------------
# Deliberately naive references: Python loops over samples, float64 scalars,
# written straight from the update equations.
def naive_beta_em(values, iters, start=((1.0, 2.0), (2.0, 1.0), (.5, .5))):
    xs = [min(max(float(v), CLAMP[0]), CLAMP[1]) for v in values]
    alphas, betas, weights = (list(row) for row in start)
    for _ in range(iters):
        resp = [[], []]
        for v in xs:
            lik = []
            for k in range(2):
                a, b = alphas[k], betas[k]
                log_pdf = ((a - 1) * math.log(v) + (b - 1) * math.log(1 - v) +
                           math.lgamma(a + b) - math.lgamma(a) -
                           math.lgamma(b))
                lik.append(max(weights[k] * math.exp(log_pdf), EPS))
            total = lik[0] + lik[1]
            resp[0].append(lik[0] / total)
            resp[1].append(lik[1] / total)
        for k in range(2):
            sum_r = sum(resp[k])
            mean = sum(r * v for r, v in zip(resp[k], xs)) / sum_r
            var = sum(r * (v - mean)**2 for r, v in zip(resp[k], xs)) / sum_r
            alphas[k] = mean * (mean * (1 - mean) / var - 1)
            betas[k] = alphas[k] * (1 - mean) / mean
        sums = [sum(resp[0]), sum(resp[1])]
        weights = [s / (sums[0] + sums[1]) for s in sums]
    return np.array([alphas, betas, weights])


def naive_gaussian_em(values, iters, var_floor=1e-6):
    xs = [min(max(float(v), CLAMP[0]), CLAMP[1]) for v in values]
    means, variances, weights = [1 / 3, 2 / 3], [1 / 18, 1 / 18], [.5, .5]
    for _ in range(iters):
        resp = [[], []]
        for v in xs:
            lik = []
            for k in range(2):
                dens = math.exp(-(v - means[k])**2 / (2 * variances[k])) / \
                    math.sqrt(2 * math.pi * variances[k])
                lik.append(max(weights[k] * dens, EPS))
            total = lik[0] + lik[1]
            resp[0].append(lik[0] / total)
            resp[1].append(lik[1] / total)
        for k in range(2):
            sum_r = sum(resp[k])
            means[k] = sum(r * v for r, v in zip(resp[k], xs)) / sum_r
            var = sum(r * (v - means[k])**2
                      for r, v in zip(resp[k], xs)) / sum_r
            variances[k] = max(var, var_floor)
        sums = [sum(resp[0]), sum(resp[1])]
        weights = [s / (sums[0] + sums[1]) for s in sums]
    return np.array([means, variances, weights])


# ------------------------------------------------------------ Beta mixture
def test_beta_mixture_recovers_known_components():
    x = bimodal_beta(np.random.default_rng(0))
    mix = BetaMixture1D(em_iters=200).fit(x)
    assert not mix.degenerate
    # Sampling noise on 3000/7000 draws is a few percent (about 1e-3 with
    # 1e6 draws), hence 10% on the shape parameters.
    np.testing.assert_allclose(mix.alphas, [2, 9], rtol=0.1)
    np.testing.assert_allclose(mix.betas, [8, 2], rtol=0.1)
    np.testing.assert_allclose(mix.weights, [0.3, 0.7], atol=0.005)


def test_beta_mixture_default_fit_equals_naive_update():
    x = bimodal_beta(np.random.default_rng(1), 150, 350)
    # Values outside the clamp range exercise the clamping too.
    x[:3] = [0.0, 1.0, -0.2]
    mix = BetaMixture1D().fit(x)
    assert mix.em_iters == 10 and not mix.degenerate
    np.testing.assert_allclose(mix.params, naive_beta_em(x, 10), rtol=1e-10)


def test_beta_mixture_responsibility_floor_equals_naive_update():
    # Narrow components far from the values at 0 and 1: both weighted
    # densities there are far below 1e-12, so the floor gives them
    # responsibilities (0.5, 0.5).
    start = ((20.0, 60.0), (20.0, 6.0), (0.4, 0.6))
    rng = np.random.default_rng(8)
    x = np.concatenate([
        rng.beta(20, 20, 100),
        rng.beta(60, 6, 150), [0.0] * 10, [1.0] * 10
    ])
    mix = BetaMixture1D(*start, em_iters=3).fit(x)
    np.testing.assert_allclose(
        mix.params, naive_beta_em(x, 3, start), rtol=1e-10)
    mix = BetaMixture1D(*start, em_iters=0).fit(x)
    np.testing.assert_array_equal(mix.params, start)


def test_beta_mixture_one_iteration_by_hand():
    # Start: Beta(1,2) = 2(1-x), Beta(2,1) = 2x, weights 1/2, so the
    # responsibilities are (1-x, x): (0.8, 0.2) at 0.2 and (0.2, 0.8) at 0.8.
    # Component 0: mean 0.32, variance 0.0576 -> alpha 8/9, beta 17/9;
    # component 1 is the mirror image.
    mix = BetaMixture1D(em_iters=1).fit(np.array([0.2, 0.8]))
    np.testing.assert_allclose(
        mix.params, [[8 / 9, 17 / 9], [17 / 9, 8 / 9], [0.5, 0.5]],
        rtol=1e-12)


def test_beta_pdf_and_posterior_by_hand():
    mix = BetaMixture1D()
    x = np.array([0.0, 0.25, 0.5, 1.0])
    # Beta(1,2) = 2(1-x), Beta(2,1) = 2x, each weighted by 1/2.
    np.testing.assert_allclose(
        mix.component_pdfs(x), [1 - x, x], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mix.posterior(x), x / (1 + EPS), rtol=1e-12)
    mix.load_params([[2.0, 3.0], [5.0, 0.5], [0.25, 0.75]])
    v = 0.3
    b0 = v * (1 - v)**4 * math.gamma(7) / (math.gamma(2) * math.gamma(5))
    b1 = v**2 * (1 - v)**-0.5 * math.gamma(3.5) / (
        math.gamma(3) * math.gamma(0.5))
    np.testing.assert_allclose(
        mix.component_pdfs([v])[:, 0], [0.25 * b0, 0.75 * b1], rtol=1e-12)


def test_components_not_swapped_on_resup_like_data():
    x = resup_like_similarities(np.random.default_rng(2))
    mix = BetaMixture1D().fit(x)
    means = mix.alphas / (mix.alphas + mix.betas)
    assert means[1] > means[0]
    assert mix.weights[1] > mix.weights[0]
    post = mix.posterior([0.2, 0.95])
    assert post[0] < 0.01 and post[1] > 0.9


# ----------------------------------------------------------- lookup table
def test_lookup_table_of_the_initial_mixture_by_hand():
    table = BetaMixture1D().lookup_table(100)
    grid = np.linspace(EPS, 1 - EPS, 100)
    # The posterior of the initial mixture is x / (1 + eps): increasing, so
    # the monotone step changes nothing.
    np.testing.assert_allclose(table, grid / (1 + EPS), rtol=1e-12)
    assert BetaMixture1D().lookup_table(7).shape == (7, )


def test_lookup_table_is_flat_after_an_interior_peak():
    mix = BetaMixture1D()
    # A broad component 0 and a narrow component 1 around 0.8: near 1 the
    # broad one wins again, so the raw posterior peaks inside (at bin 81).
    mix.load_params([[1.5, 40.0], [1.5, 10.0], [0.5, 0.5]])
    table = mix.lookup_table(100)
    raw = mix.posterior(np.linspace(EPS, 1 - EPS, 100))
    peak = int(np.argmax(raw))
    assert table.shape == (100, ) and peak < 90
    assert raw[-1] < raw[peak] - 0.1  # the step has something to do
    np.testing.assert_array_equal(table[:peak], raw[:peak])
    np.testing.assert_array_equal(table[peak:], np.full(100 - peak, raw[peak]))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_lookup_clean_probability_indexes_by_truncation(dtype):
    table = torch.arange(100, dtype=torch.float64) / 100
    s = torch.tensor([0.0, 0.00999, 0.01, 0.5, 0.999, 1.0, -0.3, 7.0],
                     dtype=dtype)
    out = lookup_clean_probability(table, s)
    # int(100 s) -> 0, 0, 1, 50, 99, 100 -> 99, negative -> 0, 700 -> 99; the
    # table values are index / 100, clamped to [1e-4, 1 - 1e-4].
    expected = torch.tensor([1e-4, 1e-4, 0.01, 0.5, 0.99, 0.99, 1e-4, 0.99],
                            dtype=torch.float64)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_lookup_clean_probability_matches_python_int_and_clamps():
    rng = np.random.default_rng(3)
    values = rng.random(500)
    table = torch.from_numpy(rng.random(100)).float()
    table[[0, 99]] = torch.tensor([0.0, 1.0])
    similarity = torch.from_numpy(values).view(20, 25)
    out = lookup_clean_probability(table, similarity)
    expected = [
        min(max(float(table[min(int(100 * v), 99)]), 1e-4), 1 - 1e-4)
        for v in values
    ]
    assert out.shape == (20, 25) and out.dtype == torch.float32
    np.testing.assert_allclose(
        out.reshape(-1).numpy(), np.float32(expected), rtol=0, atol=0)
    edge = lookup_clean_probability(table, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(edge, torch.tensor([1e-4, 1 - 1e-4]))


# -------------------------------------------------------------- degenerate
@pytest.mark.parametrize('values', [
    np.full(100, 0.7),
    np.full(10, 1.0),
    np.array([0.3]),
    np.array([0.2] * 50 + [0.9] * 50),
])
def test_beta_mixture_degenerate_data_gives_no_nan(values):
    mix = BetaMixture1D().fit(values)
    assert mix.degenerate
    assert np.isfinite(mix.params).all() and (mix.params > 0).all()
    assert np.isfinite(mix.lookup_table()).all()


def test_beta_mixture_all_equal_keeps_initial_parameters():
    # The first M-step divides by a zero variance: nothing valid after the
    # start, so the initial parameters stay.
    mix = BetaMixture1D().fit(np.full(100, 0.5))
    assert mix.degenerate
    np.testing.assert_array_equal(mix.params,
                                  [[1, 2], [2, 1], [0.5, 0.5]])
    assert not mix.fit(bimodal_beta(np.random.default_rng(4))).degenerate


def test_fit_rejects_non_finite_and_empty_input():
    with pytest.raises(ValueError, match='non-finite'):
        BetaMixture1D().fit(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match='no values'):
        GaussianMixture1D().fit(np.array([]))


# ------------------------------------------------------- Gaussian mixture
def test_gaussian_mixture_recovers_known_components():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0.3, 0.05, 4000),
                        rng.normal(0.7, 0.08, 6000)])
    mix = GaussianMixture1D(em_iters=200).fit(x)
    np.testing.assert_allclose(mix.means, [0.3, 0.7], atol=0.005)
    np.testing.assert_allclose(
        np.sqrt(mix.variances), [0.05, 0.08], rtol=0.05)
    np.testing.assert_allclose(mix.weights, [0.4, 0.6], atol=0.01)


def test_gaussian_mixture_starts_like_the_beta_mixture():
    # Beta(1,2) has mean 1/3 and variance 1/18, Beta(2,1) mean 2/3.
    np.testing.assert_allclose(GaussianMixture1D().params,
                               [[1 / 3, 2 / 3], [1 / 18, 1 / 18], [.5, .5]])


def test_gaussian_mixture_default_fit_equals_naive_update():
    x = bimodal_beta(np.random.default_rng(6), 200, 300)
    mix = GaussianMixture1D().fit(x)
    np.testing.assert_allclose(
        mix.params, naive_gaussian_em(x, 10), rtol=1e-10)
    one = GaussianMixture1D(em_iters=1, var_floor=0.5).fit(x)
    np.testing.assert_allclose(
        one.params, naive_gaussian_em(x, 1, var_floor=0.5), rtol=1e-10)
    assert (one.variances == 0.5).all()


def test_gaussian_mixture_all_equal_is_finite():
    mix = GaussianMixture1D().fit(np.full(50, 0.4))
    np.testing.assert_allclose(mix.variances, [1e-6, 1e-6])
    assert np.isfinite(mix.lookup_table()).all()


# ------------------------------------------------------ params and builder
@pytest.mark.parametrize('kind', ['beta', 'gaussian'])
def test_params_round_trip_and_validation(kind):
    mix = build_mixture(kind, em_iters=3)
    assert isinstance(mix, MIXTURES[kind]) and mix.em_iters == 3
    mix.fit(bimodal_beta(np.random.default_rng(7), 100, 200))
    other = build_mixture(kind)
    other.load_params(torch.from_numpy(mix.params))
    np.testing.assert_array_equal(other.params, mix.params)
    np.testing.assert_array_equal(other.lookup_table(), mix.lookup_table())
    with pytest.raises(ValueError, match='shape'):
        other.load_params(np.ones((2, 2)))
    bad = mix.params
    bad[1, 0] = -1.0
    with pytest.raises(ValueError, match='must be > 0'):
        other.load_params(bad)


def test_build_mixture_names_valid_kinds():
    with pytest.raises(ValueError, match=r"\['beta', 'gaussian'\]"):
        build_mixture('gmm')


# ------------------------------------------------------------- similarity
def test_label_similarity_by_hand():
    # softmax([0, ln 2, ln 3]) = (1, 2, 3) / 6, whose norm is sqrt(14) / 6.
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
                                    dtype=torch.float64))
    out = label_similarity(logits, torch.tensor([2, 0]))
    torch.testing.assert_close(
        out,
        torch.tensor([3 / math.sqrt(14), 1 / math.sqrt(14)],
                     dtype=torch.float64))


def test_label_similarity_matches_a_loop():
    torch.manual_seed(0)
    logits = torch.randn(16, 7, dtype=torch.float64) * 3
    labels = torch.randint(0, 7, (16, ))
    out = label_similarity(logits, labels)
    for i in range(16):
        exps = [math.exp(v) for v in logits[i].tolist()]
        probs = [e / sum(exps) for e in exps]
        expected = probs[labels[i]] / math.sqrt(sum(p * p for p in probs))
        assert out[i].item() == pytest.approx(expected, rel=1e-12)


def test_label_similarity_one_hot_limit():
    logits = torch.zeros(2, 7, dtype=torch.float64)
    logits[:, 4] = 100.0
    out = label_similarity(logits, torch.tensor([4, 1]))
    assert out[0].item() == pytest.approx(1.0, abs=1e-15)
    assert out[1].item() == pytest.approx(math.exp(-100), rel=1e-9)
    with pytest.raises(ValueError, match='labels'):
        label_similarity(logits, torch.tensor([1, 2, 3]))
