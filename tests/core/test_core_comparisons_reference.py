"""SurveyDesign.domain_vs_rest and .trend against R survey 4.1-1
(values from tests/reference/r/make_comparisons_reference.R: svyratio of the domain
means on the full design, svycontrast, degf of the base, p.adjust).

Tolerances (relative): estimates 1e-9; SEs, intervals, t and p-values (adjusted too)
1e-7; df and n exact. Designs: stratified with fpc, clustered and raked, stratified
clusters (uncalibrated), a raked wave, and a stacked three-wave panel with the
respondent as cluster (uncalibrated and raked per wave).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from r_reference import (
    RTOL_ESTIMATE,
    RTOL_SE,
    assert_close,
    level_key,
    margins_from_json,
    r_value,
    reference,
    reference_data,
)

from survey_pipeline import SurveyDesign
from survey_pipeline.core.multiplicity import p_adjust

CASES = reference("comparisons")["cases"]
DVR = [
    pytest.param(case_id, i, id=f"{case_id}-dvr{i}-{q['query']['variable']}-by-{q['query']['by']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["domain_vs_rest"])
]
TRENDS = [
    pytest.param(case_id, i, id=f"{case_id}-trend{i}-{q['query']['variable']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["trend"])
]


def _design(case: dict) -> SurveyDesign:
    spec = dict(case["design_py"])
    df = reference_data(case["data"], spec.pop("filter", None))
    if case["crossed_with"]:
        # R's calibration variables: each margin crossed with the wave (wave * 1000 + code).
        for variable in ("age_group", "sex", "wijk"):
            df[f"cal_{variable}"] = df[case["crossed_with"]] * 1000 + df[variable]
    design = SurveyDesign(df, **spec)
    if case["calibration"] is None:
        return design
    return design.rake(margins_from_json(case["calibration"]["margins"]), max_iter=100, tol=1e-10)


def _check(row: pd.Series, r: dict, estimate_key: str, what: str) -> None:
    assert_close(row[estimate_key], r_value(r["estimate"]), RTOL_ESTIMATE, f"{what} {estimate_key}")
    for key in ("se", "ci_lower", "ci_upper", "t", "p_value"):
        assert_close(row[key], r_value(r[key]), RTOL_SE, f"{what} {key}")
    assert row["df"] == r_value(r["df"]), f"{what}: df"
    assert row["note"] == "", what


@pytest.mark.parametrize("adjust", ["holm", "BH"])
@pytest.mark.parametrize(("case_id", "index"), DVR)
def test_domain_vs_rest_matches_r(case_id: str, index: int, adjust: str) -> None:
    case = CASES[case_id]
    r = case["domain_vs_rest"][index]
    query = r["query"]
    result = _design(case).domain_vs_rest(
        query["variable"],
        success=query["success"],
        exclude=query["exclude"],
        where=query["where"] or None,
        by=query["by"],
        adjust=adjust,
    )
    assert [level_key(v) for v in result[query["by"]]] == [level_key(lv["level"]) for lv in r["levels"]]
    assert (result["adjust"] == adjust).all() and (result["n_tests"] == len(r["levels"])).all()
    for (_, row), expected in zip(result.iterrows(), r["levels"]):
        what = f"{case_id} {query['variable']} {query['by']}={expected['level']} ({r['r_call']})"
        assert (row["n_domain"], row["n_rest"]) == (expected["n_domain"], expected["n_rest"]), what
        assert_close(row["estimate_domain"], r_value(expected["estimate_domain"]), RTOL_ESTIMATE, what)
        assert_close(row["estimate_rest"], r_value(expected["estimate_rest"]), RTOL_ESTIMATE, what)
        _check(row, expected, "difference", what)
        key = "p_holm" if adjust == "holm" else "p_bh"
        assert_close(row["p_adjusted"], r_value(expected[key]), RTOL_SE, f"{what} p.adjust {adjust}")


@pytest.mark.parametrize(("case_id", "index"), TRENDS)
def test_trend_matches_r(case_id: str, index: int) -> None:
    case = CASES[case_id]
    r = case["trend"][index]
    query = r["query"]
    result = _design(case).trend(
        query["variable"],
        success=query["success"],
        exclude=query["exclude"],
        where=query["where"] or None,
        over=query["over"],
        waves=query["waves"],
        scores=query["scores"],
        by=query["by"],
    )
    if query["by"] is None:
        rows = {"_all": result.iloc[0]}
    else:
        rows = {level_key(v): row for v, (_, row) in zip(result[query["by"]], result.iterrows())}
    assert set(rows) == set(r["groups"])
    for group, expected in r["groups"].items():
        row, what = rows[group], f"{case_id} trend {query['variable']} {group} ({r['r_call']})"
        assert row["waves"] == len(query["waves"])
        _check(row, expected, "slope", what)
        for wave, estimate, n in zip(query["waves"], expected["estimates"], expected["n"]):
            assert row[f"n_{wave}"] == n, f"{what}: n {wave}"
            assert_close(row[f"estimate_{wave}"], r_value(estimate), RTOL_ESTIMATE, f"{what} estimate {wave}")


def test_reference_covers_the_brief() -> None:
    """Three or more designs each; proportions and means; raked designs; a stacked panel."""
    with_dvr = [c for c, case in CASES.items() if case["domain_vs_rest"]]
    with_trend = [c for c, case in CASES.items() if case["trend"]]
    assert len(with_dvr) >= 3 and len(with_trend) >= 3
    assert {"changes_panel", "changes_panel_raked"} <= set(with_trend)
    queries = [q["query"] for case in CASES.values() for q in case["domain_vs_rest"] + case["trend"]]
    assert any(q["success"] is None for q in queries) and any(q["success"] for q in queries)
    assert any(q.get("scores") for q in queries) and any(q["by"] for q in queries if "over" in q)


def test_domain_vs_rest_is_the_difference_with_a_complement_column() -> None:
    """The same numbers as `difference` between the level and a 'rest' group of one column."""
    case = CASES["panel2020_raked"]
    design = _design(case)
    by_wijk = design.domain_vs_rest("heard", [1], exclude=[99], by="wijk")
    df = design.data.assign(is_3=np.where(design.data["wijk"] == 3, 1, 0))
    same = SurveyDesign(df, weights="w0").rake(margins_from_json(case["calibration"]["margins"]), tol=1e-10)
    diff = same.difference("heard", [1], exclude=[99], between=("is_3", 0, 1)).iloc[0]
    row = by_wijk[by_wijk["wijk"] == 3].iloc[0]
    for ours, theirs in (("difference", "difference"), ("se", "se"), ("df", "df"), ("p_value", "p_value")):
        assert row[ours] == pytest.approx(diff[theirs], rel=1e-12)


def test_empty_level_and_bad_arguments() -> None:
    design = _design(CASES["panel2020_raked"])
    data = design.data.assign(wijk=pd.Categorical(design.data["wijk"], categories=range(1, 10)))
    result = SurveyDesign(data, weights="w0").domain_vs_rest("heard", [1], by="wijk")
    empty = result[result["wijk"] == 9].iloc[0]
    assert np.isnan(empty["difference"]) and np.isnan(empty["p_adjusted"]) and "empty domain" in empty["note"]
    assert (result["n_tests"] == 8).all()
    with pytest.raises(ValueError, match="adjust must be one of holm, BH"):
        design.domain_vs_rest("heard", [1], by="wijk", adjust="bonferroni")
    with pytest.raises(ValueError, match="three or more distinct"):
        design.trend("heard", [1], over="wijk", waves=[1, 2])
    with pytest.raises(ValueError, match="not all equal"):
        design.trend("heard", [1], over="wijk", waves=[1, 2, 3], scores=[1, 1, 1])


@pytest.mark.parametrize(
    ("p", "holm", "bh"),
    [
        # R: p.adjust(c(0.01, 0.04, 0.03, NA, 0.5), "holm") / "BH"
        (
            [0.01, 0.04, 0.03, np.nan, 0.5],
            [0.04, 0.09, 0.09, np.nan, 0.5],
            [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, np.nan, 0.5],
        ),
        ([0.2, 0.2, 0.9], [0.6, 0.6, 0.9], [0.3, 0.3, 0.9]),
    ],
)
def test_p_adjust_as_r(p, holm, bh) -> None:
    np.testing.assert_allclose(p_adjust(np.array(p), "holm"), holm, rtol=1e-15)
    np.testing.assert_allclose(p_adjust(np.array(p), "BH"), bh, rtol=1e-15)
