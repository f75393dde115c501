"""SurveyDesign.mean, .total and .chisq against R survey 4.1-1
(values from tests/reference/r/make_analyses_reference.R).

Tolerances (relative): estimates and weight sums 1e-9; SEs, intervals, deff and test
statistics 1e-7; df and n exact. Domains R cannot compute (no row with a value) must
come back empty, with a note.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_reference import RTOL_ESTIMATE, RTOL_SE, assert_close, design_for_case, level_key, r_value, reference

from survey_pipeline.core import variance

CASES = reference("analyses")["cases"]
VALUE_QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-{q['query']['statistic']}{i}-{q['query']['variable']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["values"])
]
LOGIT_QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-logit{i}")
    for case_id, case in CASES.items()
    for i in range(len(case["logit"]))
]
CHISQ_QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-chisq{i}-{q['query']['row']}-{q['query']['col']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["chisq"])
]


@pytest.mark.parametrize(("case_id", "index"), VALUE_QUERIES)
def test_mean_and_total_match_r(case_id: str, index: int) -> None:
    case = CASES[case_id]
    query, domains = case["values"][index]["query"], case["values"][index]["domains"]
    design = design_for_case(case)
    method = design.mean if query["statistic"] == "mean" else design.total
    result = method(query["variable"], where=query["where"] or None, by=query["by"])
    if query["by"] is None:
        assert len(result) == 1
        rows = {"_all": result.iloc[0]}
    else:
        assert list(result.columns[:2]) == [query["by"], "estimate"]
        rows = {level_key(v): row for v, (_, row) in zip(result[query["by"]], result.iterrows())}
    assert set(rows) == set(domains)
    for level, r in domains.items():
        row, what = rows[level], f"{case_id} {query['statistic']}({query['variable']}) {level}"
        assert row["n"] == r["n"], f"{what}: n"
        if "r_error" in r:
            assert np.isnan(row["estimate"]) and np.isnan(row["se"]) and np.isnan(row["ci_lower"])
            assert "empty domain" in row["note"], what
            continue
        assert_close(row["estimate"], r_value(r["estimate"]), RTOL_ESTIMATE, f"{what} estimate ({r['r_call']})")
        assert_close(row["sum_weights"], r_value(r["sum_weights"]), RTOL_ESTIMATE, f"{what} sum_weights")
        assert_close(row["se"], r_value(r["se"]), RTOL_SE, f"{what} se")
        assert_close(row["deff"], r_value(r["deff"]), RTOL_SE, f"{what} deff")
        assert row["df"] == r_value(r["df"]), f"{what}: df ({r['r_df_call']})"
        assert_close(row["ci_lower"], r_value(r["ci_lower"]), RTOL_SE, f"{what} ci_lower ({r['r_ci_call']})")
        assert_close(row["ci_upper"], r_value(r["ci_upper"]), RTOL_SE, f"{what} ci_upper ({r['r_ci_call']})")
        assert row["note"] == "", what


@pytest.mark.parametrize("statistic", ["F", "Chisq"])
@pytest.mark.parametrize(("case_id", "index"), CHISQ_QUERIES)
def test_chisq_matches_r(case_id: str, index: int, statistic: str) -> None:
    case = CASES[case_id]
    query, r = case["chisq"][index]["query"], case["chisq"][index][statistic]
    design = design_for_case(case)
    result = design.chisq(query["row"], query["col"], where=query["where"] or None, statistic=statistic)
    keys = ("statistic", "ndf", "ddf", "p_value") if statistic == "F" else ("statistic", "df", "p_value", "pearson")
    for key in keys:
        assert_close(result[key], r_value(r[key]), RTOL_SE, f"{case_id} {key} ({r['r_call']})")


@pytest.mark.parametrize(("case_id", "index"), LOGIT_QUERIES)
def test_logit_matches_r(case_id: str, index: int) -> None:
    case = CASES[case_id]
    r = case["logit"][index]
    query = r["query"]
    design = design_for_case(case)
    result = design.logit(query["formula"], success=query["success"], where=query["where"] or None)
    assert list(result.index) == list(r["terms"]), f"{case_id}: R's term names"
    assert (result["df"] == r_value(r["df"])).all(), f"{case_id}: df ({r['r_df_call']})"
    for term, values in r["terms"].items():
        what = f"{case_id} {query['formula']} {term}"
        assert_close(result.loc[term, "estimate"], r_value(values["estimate"]), RTOL_ESTIMATE, f"{what} estimate")
        for key in ("se", "ci_lower", "ci_upper", "p_value"):
            assert_close(result.loc[term, key], r_value(values[key]), RTOL_SE, f"{what} {key} ({r['r_call']})")


def test_reference_covers_the_issue() -> None:
    """Stratified (fpc), clustered, raked and post-stratified designs; by, where and missing values."""
    assert {"apistrat", "apiclus1", "apiclus1_raked", "apiclus1_poststratified", "nhanes_raked"} <= set(CASES)
    queries = [q["query"] for case in CASES.values() for q in case["values"]]
    assert {q["statistic"] for q in queries} == {"mean", "total"}
    assert any(q["by"] for q in queries) and any(q["where"] for q in queries)
    empty = [d for case in CASES.values() for q in case["values"] for d in q["domains"].values() if "r_error" in d]
    assert empty
    assert sum(len(case["chisq"]) for case in CASES.values()) >= 10
    assert sum(len(case["logit"]) for case in CASES.values()) >= 8


def _nhanes_raked():
    return design_for_case(CASES["nhanes_raked"])


def test_mean_of_a_0_1_variable_is_the_proportion() -> None:
    """Same estimate, se, df and deff as proportion() on the same domains (raked design)."""
    design = _nhanes_raked()
    mean = design.mean("HI_CHOL", where={"RIAGENDR": [2]}, by="race")
    share = design.proportion("HI_CHOL", success=[1], where={"RIAGENDR": [2]}, by="race")
    for column in ("race", "estimate", "se", "df", "deff", "n", "sum_weights"):
        np.testing.assert_allclose(mean[column], share[column], rtol=1e-12, err_msg=column)


def test_total_is_the_mean_times_the_weighted_base() -> None:
    design = design_for_case(CASES["apiclus1_raked"])
    mean, total = design.mean("acs.46", by="stype"), design.total("acs.46", by="stype")
    np.testing.assert_allclose(total["estimate"], mean["estimate"] * mean["sum_weights"], rtol=1e-12)
    np.testing.assert_array_equal(total["df"], mean["df"])


def test_domain_without_design_df_has_no_interval() -> None:
    """A domain inside one cluster: df 0, so no t interval (noted), estimate and se kept."""
    design = design_for_case(CASES["apiclus1"])
    dnum = design.data["dnum"].iloc[0]
    row = design.mean("api00", where={"dnum": [dnum]}).iloc[0]
    assert row["df"] == 0 and np.isfinite(row["estimate"]) and np.isfinite(row["se"])
    assert np.isnan(row["ci_lower"]) and np.isnan(row["ci_upper"])
    assert "df < 1: no interval" in row["note"]


def test_mean_needs_a_numeric_variable() -> None:
    design = design_for_case(CASES["apistrat"])
    with pytest.raises(ValueError, match="'stype' is not numeric"):
        design.mean("stype")


def test_chisq_rejects_a_table_with_one_level_and_unknown_statistics() -> None:
    design = design_for_case(CASES["apistrat"])
    with pytest.raises(ValueError, match="two levels of 'stype'"):
        design.chisq("sch.wide", "stype", where={"stype": ["E"]})
    with pytest.raises(ValueError, match="statistic must be"):
        design.chisq("sch.wide", "stype", statistic="Wald")


def test_intercept_only_logit_is_the_logit_of_the_proportion() -> None:
    """Linearisation: se(logit p) = se(p) / (p (1 - p)); df = degf + 1 - 1."""
    design = _nhanes_raked()
    share = design.proportion("HI_CHOL", success=[1], where={"RIAGENDR": [2]}).iloc[0]
    fit = design.logit("HI_CHOL ~ 1", where={"RIAGENDR": [2]}).loc["(Intercept)"]
    p = share["estimate"]
    assert np.isclose(fit["estimate"], np.log(p / (1 - p)), rtol=1e-10)
    assert np.isclose(fit["se"], share["se"] / (p * (1 - p)), rtol=1e-8)
    assert fit["df"] == share["df"]


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("HI_CHOL ~ agecat * race", "unsupported term"),
        ("HI_CHOL", "must have the form"),
        ("race ~ agecat", r"\[0, 1\]"),
    ],
)
def test_logit_rejects_what_it_cannot_fit(formula: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _nhanes_raked().logit(formula)


def test_chisq_covariance_in_blocks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """linearized_covariance splits its pairs into blocks on large data; the result must not change."""
    design = _nhanes_raked()
    whole = design.chisq("agecat", "race")
    monkeypatch.setattr(variance, "_PAIR_BLOCK", 2 * design.n)
    assert design.chisq("agecat", "race") == pytest.approx(whole, rel=1e-12)
