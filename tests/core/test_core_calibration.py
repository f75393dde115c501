"""Raking, post-stratification and trimming (core.calibration) on small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from survey_pipeline.core import calibration as cal


def _sample(n: int = 400, seed: int = 3):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 3.0, n)
    a = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    b = rng.choice(2, n, p=[0.3, 0.7])
    margins = [(a, np.array([300.0, 400.0, 300.0])), (b, np.array([480.0, 520.0]))]
    return base, margins


def test_rake_hits_every_margin():
    base, margins = _sample()
    result = cal.rake_weights(base, margins)
    assert result.converged
    for codes, totals in margins:
        np.testing.assert_allclose(np.bincount(codes, weights=result.weights), totals, rtol=1e-9)
    assert result.max_abs_error < 1e-6


def test_rake_factor_depends_only_on_the_joint_cell():
    base, margins = _sample()
    result = cal.rake_weights(base, margins)
    factor = result.weights / base
    cell = margins[0][0] * 2 + margins[1][0]
    for c in np.unique(cell):
        assert np.ptp(factor[cell == c]) < 1e-12


def test_rake_single_margin_is_poststratification():
    base, margins = _sample()
    raked = cal.rake_weights(base, margins[:1])
    post = cal.poststratify_weights(base, *margins[0])
    np.testing.assert_allclose(raked.weights, post, rtol=1e-12)


def test_rake_is_invariant_to_the_scale_of_the_base_weights():
    base, margins = _sample()
    np.testing.assert_allclose(
        cal.rake_weights(base, margins).weights, cal.rake_weights(7.5 * base, margins).weights, rtol=1e-9
    )


def test_rake_reports_non_convergence():
    base, margins = _sample()
    result = cal.rake_weights(base, margins, max_iter=1, tol=1e-14)
    assert not result.converged
    assert result.iterations == 1
    assert result.max_abs_error > 1e-6


def test_largest_margin_deviation_is_the_relatively_worst_category():
    codes = [np.array([0, 0, 1]), np.array([0, 1, 1])]
    totals = [np.array([4.0, 1.0]), np.array([1.0, 2.5])]
    # weighted totals: margin 0 -> (2, 1), margin 1 -> (1, 2): 2 of 4 off beats 2 of 2.5 off
    worst = cal.largest_margin_deviation(np.ones(3), codes, totals)
    assert (worst.margin, worst.category, worst.target, worst.achieved) == (0, 0, 4.0, 2.0)
    assert worst.relative == 0.5
    assert cal.MarginDeviation(0, 0, 0.0, 0.0).relative == 0.0
    assert cal.MarginDeviation(0, 0, 0.0, 1.0).relative == np.inf


# Three respondents in the joint cells (a, b) = (0, 0), (1, 0), (1, 1); cell (0, 1) is empty.
_A, _B = np.array([0, 1, 1]), np.array([0, 0, 1])


@pytest.mark.parametrize(
    ("totals_a", "totals_b", "cause", "smallest_factor"),
    [
        # a=0 lives only in b=0, but a=0 has 70 and b=0 only 40: no weights meet both.
        ((70.0, 30.0), (40.0, 60.0), cal.INFEASIBLE, None),
        # only x = (40, 0, 60) meets both: the respondent in (1, 0) would need weight 0.
        ((40.0, 60.0), (40.0, 60.0), cal.ZERO_WEIGHTS, 0.0),
        # x = (30, 10, 60) is the solution; the smallest factor is 10 / (100 / 3) = 0.3.
        ((30.0, 70.0), (40.0, 60.0), cal.NOT_CONVERGED, 0.3),
    ],
)
def test_raking_shortfall_tells_infeasible_from_not_converged(totals_a, totals_b, cause, smallest_factor):
    margins = [(_A, np.array(totals_a)), (_B, np.array(totals_b))]
    factor = cal.smallest_attainable_factor(np.ones(3), [_A, _B], [t for _, t in margins])
    if smallest_factor is None:
        assert factor is None
    else:
        assert factor == pytest.approx(smallest_factor, abs=1e-9)
    result = cal.rake_weights(np.ones(3), margins, max_iter=2)
    assert result.deviation.relative > 1e-6
    assert cal.raking_shortfall(np.ones(3), margins, converged=result.converged) == cause


def test_raking_reports_success_on_infeasible_margins_but_the_deviation_shows_the_miss():
    margins = [(_A, np.array([70.0, 30.0])), (_B, np.array([40.0, 60.0]))]
    result = cal.rake_weights(np.ones(3), margins, max_iter=100)
    assert result.converged  # the sweeps stopped changing the weights ...
    assert (result.deviation.margin, result.deviation.category) == (0, 1)
    assert result.deviation.achieved == pytest.approx(60.0)  # ... at twice a=1's population


def test_a_loose_tol_stops_raking_before_the_margins_are_met():
    base, margins = _sample()
    result = cal.rake_weights(base, margins, tol=1e-2)
    assert result.converged and result.deviation.relative > 1e-5
    assert cal.raking_shortfall(base, margins, converged=True) == cal.STOPPED_EARLY


def test_population_category_without_sample_names_margin_and_category():
    base, margins = _sample()
    codes, _ = margins[1]
    totals = np.array([480.0, 500.0, 20.0])
    with pytest.raises(ValueError, match="margin 1: category 2 has population total > 0"):
        cal.rake_weights(base, [margins[0], (codes, totals)])


def test_sample_category_without_population_is_an_error():
    base, margins = _sample()
    codes, _ = margins[0]
    with pytest.raises(ValueError, match="margin 0: category 2 has sample respondents but population total 0"):
        cal.rake_weights(base, [(codes, np.array([500.0, 500.0, 0.0])), margins[1]])
    with pytest.raises(ValueError, match="margin 0: category 2 has no population total"):
        cal.rake_weights(base, [(codes, np.array([500.0, 500.0])), margins[1]])


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_invalid_weights_are_rejected(bad):
    base, margins = _sample()
    base[5] = bad
    with pytest.raises(ValueError, match="weights"):
        cal.rake_weights(base, margins)


def test_joint_cells_sort_fallback_matches_dense_index(monkeypatch):
    _base, margins = _sample()
    codes = [c for c, _ in margins]
    dense = cal.joint_cells(codes, [3, 2])
    monkeypatch.setattr(cal, "_use_dense_index", lambda n_full, n: False)
    by_sorting = cal.joint_cells(codes, [3, 2])
    np.testing.assert_array_equal(dense.index, by_sorting.index)
    for d, s in zip(dense.codes, by_sorting.codes):
        np.testing.assert_array_equal(d, s)


def test_trim_then_rerake_keeps_bounds_and_margins():
    base, margins = _sample()
    raked = cal.rake_weights(base, margins).weights
    ratio = raked / raked.mean()
    upper = 0.9 * ratio.max()
    lower = 1.1 * ratio.min()
    result = cal.trim_weights(raked, lower, upper, margins)
    assert result.converged
    assert result.n_trimmed > 0
    w = result.weights / result.weights.mean()
    assert w.max() <= upper * (1 + 1e-6) and w.min() >= lower * (1 - 1e-6)
    assert result.max_abs_error < 1e-3


def test_trim_fails_cleanly_when_bounds_cannot_hold():
    base, margins = _sample()
    raked = cal.rake_weights(base, margins).weights
    result = cal.trim_weights(raked, 0.99, 1.01, margins, max_rounds=10)
    assert not result.converged
    assert result.rounds == 10


def test_trim_rejects_inverted_bounds():
    base, margins = _sample()
    with pytest.raises(ValueError, match="bounds"):
        cal.trim_weights(base, 2.0, 1.0, margins)
