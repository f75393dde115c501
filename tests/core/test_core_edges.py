"""Documented behaviour where R gives no interval or fails (see core.intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from r_reference import design_for_case, reference
from scipy import stats

from survey_pipeline import SurveyDesign
from survey_pipeline.core.design import CalibrationError
from survey_pipeline.core.variance import LonelyPSUError

EDGES = reference("proportions")["cases"]["panel2020_raked_edges"]


@pytest.fixture(scope="module")
def raked() -> SurveyDesign:
    return design_for_case(EDGES)


def _query(raked, i, ci):
    q = EDGES["queries"][i]["query"]
    return raked.proportion(q["variable"], success=q["success"], where=q["where"], ci=ci).iloc[0]


@pytest.mark.parametrize("ci", ["logit", "beta", "wilson", "wald"])
def test_p_zero_gives_korn_graubard_on_n(raked, ci):
    """R: se 0 and NaN intervals. Here: [0, upper] with n_eff = n, ci_method beta, a note."""
    row = _query(raked, 0, ci)
    r = EDGES["queries"][0]["domains"]["_all"]
    assert row["estimate"] == 0.0 and row["se"] == 0.0
    assert row["n"] == r["n"] and row["n_eff"] == r["n"]
    n, df = row["n"], row["df"]
    adjust = (stats.t.ppf(0.025, raked.n - 1) / stats.t.ppf(0.025, df)) ** 2
    assert row["ci_lower"] == 0.0
    assert row["ci_upper"] == pytest.approx(stats.beta.ppf(0.975, 1, n * adjust), rel=1e-12)
    assert row["ci_method"] == "beta"
    assert "estimate is 0 or 1" in row["note"]
    assert np.isnan(row["deff"]) and "deff undefined" in row["note"]


def test_p_one_mirrors_p_zero(raked):
    zero = _query(raked, 0, "beta")
    one = _query(raked, 1, "beta")
    assert one["estimate"] == 1.0
    assert one["ci_upper"] == 1.0
    assert one["ci_lower"] == pytest.approx(1 - zero["ci_upper"], rel=1e-12)


def test_one_row_domain(raked):
    """n = 1, df = 0: no df adjustment; the interval is Clopper-Pearson for 0 or 1 out of 1."""
    row = _query(raked, 2, "logit")
    assert row["n"] == 1 and row["df"] == 0
    assert row["se"] == 0.0
    if row["estimate"] == 0:
        assert (row["ci_lower"], row["ci_upper"]) == (0.0, pytest.approx(0.975))
    else:
        assert (row["ci_lower"], row["ci_upper"]) == (pytest.approx(0.025), 1.0)


def test_empty_domain_is_an_explicit_row(raked):
    row = _query(raked, 3, "logit")
    assert row["n"] == 0 and row["sum_weights"] == 0.0
    for col in ("estimate", "se", "ci_lower", "ci_upper", "df"):
        assert np.isnan(row[col])
    assert row["note"] == "empty domain"


def test_empty_by_level_of_a_categorical_is_reported():
    df = pd.DataFrame(
        {
            "w": [1.0, 2.0, 1.5, 1.0],
            "y": [1, 0, 1, 1],
            "g": pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "c"]),
        }
    )
    out = SurveyDesign(df, weights="w").proportion("y", success=[1], by="g")
    assert list(out["g"]) == ["a", "b", "c"]
    assert out.loc[2, "n"] == 0 and out.loc[2, "note"] == "empty domain"


def test_domain_in_a_single_psu_has_no_interval():
    """R: se 0, df 0, NaN interval. The design says nothing about this domain's variance."""
    df = pd.DataFrame(
        {"w": [1.0, 2.0, 1.5, 1.0, 2.0, 1.0], "y": [1, 0, 1, 1, 0, 0], "c": [1, 1, 1, 2, 2, 3], "g": [1, 1, 1, 2, 2, 2]}
    )
    out = SurveyDesign(df, weights="w", cluster="c").proportion("y", success=[1], by="g")
    first = out.iloc[0]
    assert first["df"] == 0 and first["se"] == 0 and 0 < first["estimate"] < 1
    assert np.isnan(first["ci_lower"]) and np.isnan(first["ci_upper"])
    assert first["note"] == "df < 1: no interval"


def test_wald_is_truncated_and_says_so():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"w": rng.uniform(1, 3, 30), "y": [1] * 29 + [0]})
    row = SurveyDesign(df, weights="w").proportion("y", success=[1], ci="wald").iloc[0]
    assert row["ci_upper"] == 1.0
    assert "truncated" in row["note"]


def test_deff_when_weights_sum_to_less_than_n():
    """R's deff = TRUE is NA there; we use R's deff = "replace" and flag it."""
    df = pd.DataFrame({"w": np.full(20, 0.5), "y": [1, 0] * 10})
    row = SurveyDesign(df, weights="w").proportion("y", success=[1]).iloc[0]
    assert np.isfinite(row["deff"])
    assert "with-replacement" in row["note"]


def test_lonely_psu_fail_raises():
    df = pd.DataFrame({"w": [1.0] * 5, "y": [1, 0, 1, 1, 0], "s": [1, 1, 1, 2, 2], "c": [1, 2, 3, 4, 4]})
    design = SurveyDesign(df, weights="w", strata="s", cluster="c", lonely_psu="fail")
    with pytest.raises(LonelyPSUError):
        design.proportion("y", success=[1])


def test_calibration_errors_name_variable_and_category():
    df = pd.DataFrame({"w": [1.0] * 4, "sex": [1, 1, 2, 2], "wijk": [1, 1, 2, 2]})
    design = SurveyDesign(df, weights="w")
    with pytest.raises(CalibrationError, match="category 3 of 'wijk' has a population total but no sample"):
        design.rake({"sex": {1: 5, 2: 5}, "wijk": {1: 4, 2: 3, 3: 3}})
    with pytest.raises(CalibrationError, match="category 2 of 'wijk' occurs in the sample but not"):
        design.rake({"wijk": {1: 10}})
    # sex and wijk coincide in this sample: 5 and 3 cannot both be met.
    with pytest.raises(
        CalibrationError,
        match=r"margin 'sex' category 1 not met: population total 5, "
        r"weighted total 3 after \d+ sweeps; the margins are infeasible",
    ):
        design.rake({"sex": {1: 5, 2: 5}, "wijk": {1: 3, 2: 7}})
    with pytest.raises(CalibrationError, match="not met.*raking not converged"):
        SurveyDesign(df.assign(w=[1.0, 2.0, 3.0, 4.0], wijk=[1, 2, 1, 2]), weights="w").rake(
            {"sex": {1: 5, 2: 5}, "wijk": {1: 3, 2: 7}}, max_iter=1, tol=1e-15
        )
    raked = design.rake({"sex": {1: 5, 2: 5}})
    with pytest.raises(CalibrationError, match="already calibrated"):
        raked.poststratify("wijk", {1: 5, 2: 5})


def test_unknown_ci_method_is_rejected():
    df = pd.DataFrame({"w": [1.0, 1.0], "y": [1, 0]})
    with pytest.raises(ValueError, match="ci must be one of"):
        SurveyDesign(df, weights="w").proportion("y", success=[1], ci="exact")


def test_mean_and_total_by_a_breakdown_are_indexed_by_its_levels():
    """`design.mean(variable, by=...)`: one row per level, the index is the level (and the column stays)."""
    df = pd.DataFrame(
        {"w": [1.0, 2.0, 1.0, 3.0, 2.0, 1.0], "x": [3.0, 4.0, 5.0, 6.0, 7.0, 8.0], "g": [5, 5, 7, 7, 9, 9]}
    )
    design = SurveyDesign(df, weights="w")
    for result in (design.mean("x", by="g"), design.total("x", by="g")):
        assert list(result.index) == [5, 7, 9] and list(result["g"]) == [5, 7, 9]
    assert design.mean("x", by="g").loc[7, "estimate"] == pytest.approx((5 * 1 + 6 * 3) / 4)
