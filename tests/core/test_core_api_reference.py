"""SurveyDesign's domain and raking options against R survey 4.1-1
(values from tests/reference/r/make_api_reference.R):

- `where` with "in"/"not_in" conditions (a missing value never meets one);
- `by` over several columns (one row and one column per variable per combination);
- raking margins over crossed variables ({("age_group", "sex"): {(1, 1): total}}), R's
  rake(list(~age_group + sex, ...)), including a stacked panel raked per wave;
- rake(epsilon=...) as R's control = list(epsilon) reads it (absolute from 1 on).

Tolerances (relative): estimates 1e-9; SEs, intervals, deff 1e-7; weights 1e-9 (the
epsilon cases stop after the same sweep as R or differ far more); df and n exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_reference import RTOL_ESTIMATE, RTOL_SE, assert_close, level_key, r_value, reference, reference_data

from survey_pipeline import SurveyDesign
from survey_pipeline.core.design import CalibrationError

API = reference("api")
CASES = API["cases"]
QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-{i}-{q['query']['kind']}-{q['query']['variable']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["queries"])
]
RTOL_WEIGHTS = 1e-9


def _margins(calibration: dict) -> dict:
    """R's population tables as SurveyDesign margins: crossed ones keyed by tuples."""
    margins = {}
    for variables, pairs in calibration["margins"]:
        if isinstance(variables, list):
            margins[tuple(variables)] = {tuple(codes): total for codes, total in pairs}
        else:
            margins[variables] = {codes[0]: total for codes, total in pairs}
    return margins


def _base_design(case: dict) -> SurveyDesign:
    spec = dict(case["design_py"])
    return SurveyDesign(reference_data(case["data"], spec.pop("filter", None)), **spec)


def _design(case: dict) -> SurveyDesign:
    design = _base_design(case)
    if case["calibration"] is None:
        return design
    return design.rake(_margins(case["calibration"]), max_iter=100, tol=1e-10)


@pytest.mark.parametrize(("case_id", "index"), QUERIES)
def test_domains_match_r(case_id: str, index: int) -> None:
    case = CASES[case_id]
    r = case["queries"][index]
    query = r["query"]
    design = _design(case)
    where = query["where"] or None
    if query["kind"] == "proportion":
        result = design.proportion(
            query["variable"], query["success"], exclude=query["exclude"], where=where, by=query["by"]
        )
    else:
        result = design.mean(query["variable"], where=where, by=query["by"])
    by = [] if query["by"] is None else [query["by"]] if isinstance(query["by"], str) else query["by"]
    assert list(result.columns[: len(by)]) == by
    rows = {tuple(level_key(v) for v in row[by]): row for _, row in result.iterrows()}
    expected_keys = [tuple(level_key(d["level"][b]) for b in by) for d in r["domains"]]
    assert [k for k in rows if rows[k]["n"] > 0] == expected_keys, f"{case_id}: the combinations R finds"
    for key, expected in zip(expected_keys, r["domains"]):
        row, what = rows[key], f"{case_id} {query['variable']} {key} ({r['r_call']})"
        assert row["n"] == expected["n"], what
        assert_close(row["estimate"], r_value(expected["estimate"]), RTOL_ESTIMATE, f"{what} estimate")
        # Proportions: R's confint is the unclipped Wald interval; the intervals of a share
        # are compared with R's svyciprop in test_core_reference.
        columns = ("se", "deff") if query["kind"] == "proportion" else ("se", "deff", "ci_lower", "ci_upper")
        for column in columns:
            assert_close(row[column], r_value(expected[column]), RTOL_SE, f"{what} {column}")
        assert row["df"] == r_value(expected["df"]), f"{what}: df"


@pytest.mark.parametrize("case_id", [c for c, case in CASES.items() if case["weights_r"]])
def test_crossed_margins_rake_like_r(case_id: str) -> None:
    case = CASES[case_id]
    design = _design(case)
    np.testing.assert_allclose(
        design.weights, [float(v) for v in case["weights_r"]], rtol=RTOL_WEIGHTS, atol=0, err_msg=case["design_r"]
    )


@pytest.mark.parametrize("r", API["epsilon"]["cases"], ids=lambda r: f"epsilon={r['epsilon']}-maxit={r['maxit']}")
def test_rake_epsilon_as_r_reads_it(r: dict) -> None:
    eps = API["epsilon"]
    design = _base_design({"data": eps["data"], "design_py": {"weights": eps["weights"], "filter": eps["filter"]}})
    raked = design.rake(_margins(eps), max_iter=r["maxit"], epsilon=r["epsilon"], margin_tol=1e-3)
    np.testing.assert_allclose(
        raked.weights, [float(v) for v in r["weights_r"]], rtol=RTOL_WEIGHTS, atol=0, err_msg=r["r_call"]
    )


def test_epsilon_cases_are_distinguishable() -> None:
    """The reference weights of different epsilons differ by far more than the tolerance."""
    weights = [np.array([float(v) for v in r["weights_r"]]) for r in API["epsilon"]["cases"]]
    for i in range(len(weights)):
        for j in range(i + 1, len(weights)):
            assert np.max(np.abs(weights[i] / weights[j] - 1)) > 100 * RTOL_WEIGHTS
    assert any(r["epsilon"] >= 1 for r in API["epsilon"]["cases"])
    assert any(r["epsilon"] < 1 for r in API["epsilon"]["cases"])


def test_tol_cannot_be_read_as_r_epsilon() -> None:
    design = _base_design(CASES["panel2020_raked_age_x_sex"])
    margins = _margins(CASES["panel2020_raked_age_x_sex"]["calibration"])
    with pytest.raises(ValueError, match="pass epsilon="):
        design.rake(margins, tol=1)
    with pytest.raises(ValueError, match="not both"):
        design.rake(margins, tol=1e-10, epsilon=1)
    with pytest.raises(ValueError, match="positive"):
        design.rake(margins, epsilon=0)


def test_crossed_margin_never_merges_cells() -> None:
    """A combination the totals lack is named, not folded into another cell."""
    case = CASES["panel2020_raked_age_x_sex"]
    design = _base_design(case)
    margins = _margins(case["calibration"])
    missing = dict(margins[("age_group", "sex")])
    missing.pop((4, 2))
    with pytest.raises(CalibrationError, match=r"category \(4, 2\) of 'age_group'\*'sex' occurs in the sample"):
        design.rake({("age_group", "sex"): missing, "wijk": margins["wijk"]})


def test_where_syntax_errors_are_named() -> None:
    design = _design(CASES["apistrat"])
    with pytest.raises(ValueError, match="'in' and/or 'not_in'"):
        design.mean("api00", where={"stype": {"notin": ["H"]}})
    with pytest.raises(ValueError, match="codes must be a list"):
        design.mean("api00", where={"stype": "E"})
    with pytest.raises(ValueError, match="distinct columns"):
        design.mean("api00", by=["stype", "stype"])


def test_where_not_in_differs_from_in_on_missing_values() -> None:
    """not_in [1] keeps only answered rows other than 1: not the complement of in [1]."""
    design = _design(CASES["nhanes"])
    n = design.data["HI_CHOL"].notna()
    outside = design.mean("RIAGENDR", where={"HI_CHOL": {"not_in": [1]}})["n"].iloc[0]
    inside = design.mean("RIAGENDR", where={"HI_CHOL": [1]})["n"].iloc[0]
    assert outside + inside == n.sum() < len(design.data)


def test_by_several_columns_equals_a_combined_column() -> None:
    """Same numbers as `by` on one column that holds the combination (proportions batch too)."""
    design = _design(CASES["panel2020_raked_age_x_sex"])
    combined = design.data.assign(combo=design.data["age_group"] * 10 + design.data["sex"])
    other = SurveyDesign(combined, weights="w0").rake(_margins(CASES["panel2020_raked_age_x_sex"]["calibration"]))
    two = design.proportion("heard", [1], exclude=[99], by=["age_group", "sex"])
    one = other.proportion("heard", [1], exclude=[99], by="combo")
    assert list(two.columns[:2]) == ["age_group", "sex"]
    np.testing.assert_array_equal(two["age_group"] * 10 + two["sex"], one["combo"])
    for column in ("estimate", "se", "df", "n"):
        np.testing.assert_allclose(two[column], one[column], rtol=1e-12, err_msg=column)
    changes = design.domain_vs_rest("heard", [1], exclude=[99], by=["age_group", "sex"])
    assert list(changes.columns[:2]) == ["age_group", "sex"] and len(changes) == 8


def test_batched_shares_keep_their_own_exclusions() -> None:
    """Shares that differ only in their not_in codes are separate bases in one batch."""
    from survey_pipeline.core.design import Share

    design = _design(CASES["panel2020_raked_age_x_sex"])
    wheres = [{"wijk": {"not_in": [1]}}, {"wijk": {"not_in": [2]}}, {"wijk": {"in": [1, 2], "not_in": [2]}}]
    batch = design.proportions([Share("heard", [1], [99], where) for where in wheres])
    for i, where in enumerate(wheres):
        single = design.proportion("heard", [1], exclude=[99], where=where).iloc[0]
        for column in ("estimate", "se", "n"):
            assert batch.loc[i, column] == pytest.approx(single[column], rel=1e-12), (where, column)
    assert batch["n"].nunique() == 3
