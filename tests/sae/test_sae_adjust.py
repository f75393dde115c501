"""Sampling-variance smoothing (GVF) and benchmarking around the Fay-Herriot fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from survey_pipeline.sae_adjust import benchmark, smooth_design_effects


def _areas(deff, n, p):
    return deff * p * (1 - p) / n


def test_a_constant_design_effect_is_recovered_exactly():
    n = np.array([3.0, 8, 15, 40, 90, 200, 400])
    p = np.array([0.2, 0.35, 0.5, 0.6, 0.3, 0.45, 0.7])
    fit = smooth_design_effects(_areas(1.7, n, p), p, n)
    assert fit.slope == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(fit.design_effect, 1.7, rtol=1e-12)
    np.testing.assert_allclose(fit.effective_sample_size, n / 1.7, rtol=1e-12)
    np.testing.assert_allclose(fit.sampling_variance(p), _areas(1.7, n, p), rtol=1e-12)


def test_a_log_linear_design_effect_is_recovered():
    n = np.array([5.0, 10, 20, 50, 100, 300])
    p = np.full(n.size, 0.4)
    deff = np.exp(0.2 + 0.1 * np.log(n))
    fit = smooth_design_effects(_areas(deff, n, p), p, n)
    assert (fit.intercept, fit.slope) == (pytest.approx(0.2, abs=1e-10), pytest.approx(0.1, abs=1e-10))
    np.testing.assert_allclose(fit.design_effect, deff, rtol=1e-10)


def test_a_tiny_area_with_a_zero_variance_gets_a_proper_one():
    """A wijk of 2 respondents who both said yes: direct variance 0, smoothed variance not near 0."""
    n = np.array([2.0, 12, 30, 60, 120, 250])
    p = np.array([1.0, 0.4, 0.55, 0.35, 0.5, 0.45])
    psi = _areas(1.5, n, p)
    assert psi[0] == 0
    fit = smooth_design_effects(psi, p, n)
    assert not fit.fitted_areas[0] and fit.fitted_areas[1:].all()
    assert fit.design_effect[0] == pytest.approx(1.5)
    # with a stable proportion (e.g. the city's) the tiny wijk's variance is that of n_eff = 2 / 1.5
    assert fit.sampling_variance(np.full(n.size, 0.45))[0] == pytest.approx(0.45 * 0.55 / (2 / 1.5))


def test_the_line_is_not_extrapolated_beyond_the_fitted_sample_sizes():
    n = np.array([1.0, 10, 20, 40, 80])
    p = np.array([0.5, 0.3, 0.4, 0.5, 0.6])
    deff = np.exp(-1.0 + 0.5 * np.log(np.maximum(n, 10)))  # grows with n: extrapolating to n=1 would shrink it
    fit = smooth_design_effects(_areas(deff, n, p), p, n)
    assert not fit.fitted_areas[0]
    assert fit.design_effect[0] == pytest.approx(fit.design_effect[1])


def test_too_few_areas_with_a_design_effect_is_an_error():
    with pytest.raises(ValueError, match="defined in 2 area"):
        smooth_design_effects(np.array([0.01, 0.02, 0.0]), np.array([0.5, 0.4, 0.0]), np.array([20.0, 10, 5]))
    with pytest.raises(ValueError, match="proportion in"):
        smooth_design_effects(np.array([0.01, 0.02, 0.01]), np.array([0.5, 1.4, 0.2]), np.array([20.0, 10, 5]))


@pytest.mark.parametrize("method", ["ratio", "difference"])
def test_benchmarked_estimates_add_up_to_the_target(method):
    estimate = np.array([0.2, 0.35, 0.5, 0.8])
    mse = np.array([0.001, 0.002, 0.001, 0.004])
    population = np.array([1000.0, 3000, 500, 1500])
    result = benchmark(estimate, mse, population, 0.45, method)
    assert population @ result.estimate / population.sum() == pytest.approx(0.45, abs=1e-15)
    np.testing.assert_allclose(result.mse, mse + (result.estimate - estimate) ** 2, rtol=1e-15)
    if method == "ratio":
        np.testing.assert_allclose(result.estimate / estimate, result.estimate[0] / estimate[0])
    else:
        np.testing.assert_allclose(result.adjustment, result.adjustment[0])


def test_estimates_that_already_add_up_are_unchanged():
    estimate = np.array([0.1, 0.3, 0.6])
    population = np.array([2.0, 1, 1])
    target = population @ estimate / population.sum()
    for method in ("ratio", "difference"):
        result = benchmark(estimate, np.full(3, 0.01), population, target, method)
        np.testing.assert_allclose(result.estimate, estimate, rtol=1e-14)


def test_benchmark_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        benchmark(np.ones(2), np.ones(2), np.ones(2), 0.5, "raking")
    with pytest.raises(ValueError, match="positive total"):
        benchmark(np.ones(2), np.ones(2), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="one length"):
        benchmark(np.ones(2), np.ones(3), np.ones(2), 0.5)


def _exact_arcsine_variance(m: int, p: float) -> float:
    """var(asin(sqrt(K/m))), K ~ Binomial(m, p), by enumeration (math.comb)."""
    weights = [math.comb(m, k) * p**k * (1 - p) ** (m - k) for k in range(m + 1)]
    values = [math.asin(math.sqrt(k / m)) for k in range(m + 1)]
    mean = sum(w * v for w, v in zip(weights, values))
    return sum(w * (v - mean) ** 2 for w, v in zip(weights, values))


def test_arcsine_sample_size_uses_the_exact_binomial_variance():
    n = np.array([9.0, 9.0, 20.0, 60.0, 400.0])
    p = np.array([0.3, 0.5, 0.4, 0.6, 0.5])
    fit = smooth_design_effects(_areas(1.0, n, p), p, n)  # deff 1: n_eff = n
    adjusted = fit.arcsine_sample_size(0.8)
    assert adjusted[0] == pytest.approx(1 / (4 * _exact_arcsine_variance(9, 0.8)), rel=1e-12)
    assert adjusted[0] < 0.7 * 9  # the delta method's 1/(4n) would overstate the information by > 40%
    assert adjusted[-1] == pytest.approx(400, rel=0.02)  # large samples: the delta method holds


def test_arcsine_sample_size_interpolates_between_whole_sizes():
    n = np.array([9.5, 20.0, 60.0, 100.0])
    p = np.array([0.3, 0.4, 0.6, 0.5])
    fit = smooth_design_effects(_areas(1.0, n, p), p, n)
    expected = 0.5 * _exact_arcsine_variance(9, 0.7) + 0.5 * _exact_arcsine_variance(10, 0.7)
    assert fit.arcsine_sample_size(0.7)[0] == pytest.approx(1 / (4 * expected), rel=1e-12)


@pytest.mark.parametrize(
    ("m", "p"), [(3000, 0.5), (3000, 0.999), (20000, 0.8), (20000, 0.002), (50000, 0.3), (700, 0.06)]
)
def test_arcsine_variance_of_large_areas_leaves_out_only_negligible_tails(m, p):
    """Large areas sum over a window of k around m p (Bernstein bound): the same variance as
    the sum over every k = 0..m, to double precision (beside a small area, in one call)."""
    from scipy.stats import binom

    from survey_pipeline.sae_adjust import _arcsine_variances

    k = np.arange(m + 1)
    weight = binom.pmf(k, m, p)
    theta = np.arcsin(np.sqrt(k / m))
    full = float(weight @ (theta - weight @ theta) ** 2)
    assert _arcsine_variances(np.array([9.0, m]), p)[1] == pytest.approx(full, rel=1e-12)
