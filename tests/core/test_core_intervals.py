"""Interval formulas checked against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

from survey_pipeline.core import intervals


@pytest.mark.parametrize(("p", "n"), [(0.3, 50.0), (0.05, 120.5), (0.91, 17.0)])
def test_wilson_with_infinite_df_is_statsmodels_wilson(p, n):
    lo, hi = intervals.wilson_interval(np.array([p]), np.array([n]), np.inf, 0.95)
    expected = proportion_confint(p * n, n, alpha=0.05, method="wilson")
    assert (lo[0], hi[0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("p", "n"), [(0.3, 50.0), (0.05, 120.0), (0.91, 17.0)])
def test_korn_graubard_without_design_effect_is_clopper_pearson(p, n):
    """With n_eff = n and df = n_rows - 1 the df adjustment is 1: Clopper-Pearson."""
    lo, hi = intervals.korn_graubard_interval(np.array([p]), np.array([n]), n - 1, n, 0.95)
    expected = proportion_confint(p * n, n, alpha=0.05, method="beta")
    assert (lo[0], hi[0]) == pytest.approx(expected, rel=1e-10)


def test_logit_interval_is_symmetric_on_the_logit_scale():
    p, se, df = np.array([0.2]), np.array([0.03]), 40.0
    lo, hi = intervals.logit_interval(p, se, df, 0.9)
    half = stats.t.ppf(0.95, df) * se / (p * (1 - p))
    assert special.logit(hi) - special.logit(p) == pytest.approx(half)
    assert special.logit(p) - special.logit(lo) == pytest.approx(half)


def test_wald_uses_t_on_design_df():
    _lo, hi = intervals.wald_interval(np.array([0.5]), np.array([0.1]), 5.0, 0.95)
    assert hi[0] - 0.5 == pytest.approx(stats.t.ppf(0.975, 5) * 0.1)


@pytest.mark.parametrize("method", intervals.CI_METHODS)
def test_level_widens_intervals(method):
    args = (np.array([0.3]), np.array([0.04]), np.array([30.0]), np.array([200.0]), np.array([200.0]))
    narrow = intervals.proportion_intervals(method, *args, level=0.8)
    wide = intervals.proportion_intervals(method, *args, level=0.99)
    assert wide.lower[0] < narrow.lower[0] < 0.3 < narrow.upper[0] < wide.upper[0]


def test_special_function_quantiles_equal_scipy_stats():
    """The core computes t and beta quantiles with scipy.special: same values as scipy.stats."""
    rng = np.random.default_rng(7)
    df = np.concatenate([rng.uniform(0, 60, 500), 10 ** rng.uniform(-2, 8, 500), [0.0, -1.0, np.inf, np.nan, 1.0]])
    for q in (-0.5, 0.0, 0.005, 0.025, 0.5, 0.975, 1.0, 1.5):
        np.testing.assert_array_equal(intervals.t_ppf(q, df), stats.t.ppf(q, df))
    x = np.concatenate([rng.normal(0, 4, df.size - 5), [np.inf, -np.inf, np.nan, 0.0, 3.0]])
    np.testing.assert_array_equal(intervals.t_sf(x, df), stats.t.sf(x, df))
    a = np.concatenate([10 ** rng.uniform(-3, 6, 1000), [0.0, np.inf, np.nan, -1.0, 2.0]])
    b = np.concatenate([10 ** rng.uniform(-3, 6, 1000), [1.0, 1.0, 1.0, 1.0, np.inf]])
    for q in (0.025, 0.975, 0.005):
        np.testing.assert_array_equal(intervals.beta_ppf(q, a, b), stats.beta.ppf(q, a, b))
