"""SurveyDesign against R survey 4.1-1 (values from tests/reference/r/make_reference.R).

Tolerances (relative): estimates 1e-9, SEs and CI bounds 1e-7, deff 1e-7; df exact.
Where R gives no interval (p = 0 or 1, df = 0) or fails (empty domain) the documented
behaviour is tested in test_core_edges.py instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from r_reference import (
    RTOL_ESTIMATE,
    RTOL_SE,
    assert_close,
    design_for_case,
    level_key,
    r_value,
    reference,
)

from survey_pipeline.core.variance import LonelyPSUError

CASES = reference("proportions")["cases"]
QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-q{i}")
    for case_id, case in CASES.items()
    for i in range(len(case["queries"]))
]
CI_METHODS = ("logit", "beta", "wald")


def _call(design, query: dict, ci: str, where_extra: dict | None = None) -> pd.DataFrame:
    where = dict(query["where"] or {})
    where.update(where_extra or {})
    return design.proportion(
        query["variable"],
        success=query["success"],
        exclude=query["exclude"],
        where=where,
        by=None if where_extra else query["by"],
        ci=ci,
    )


def _compare_row(row: pd.Series, r: dict, ci: str, what: str) -> None:
    assert row["n"] == r["n"], f"{what}: n"
    estimate = r_value(r["estimate"])
    assert_close(row["estimate"], estimate, RTOL_ESTIMATE, f"{what} estimate")
    # R's SE of a 0/1 domain can be rounding noise (1e-17) instead of 0.
    assert_close(row["se"], r_value(r["se"]), RTOL_SE, f"{what} se", atol=1e-15)
    assert row["df"] == r_value(r["df"]), f"{what}: df {row['df']} vs R {r['df']}"
    assert_close(row["sum_weights"], r_value(r["sum_weights"]), RTOL_ESTIMATE, f"{what} sum_weights")
    if min(estimate, 1 - estimate) < 1e-12:
        # p is 0 or 1 (R may be off by rounding: 0.99999999999999989); deff and the
        # intervals are then the documented edge behaviour (test_core_edges.py).
        return
    assert_close(row["deff"], r_value(r["deff"]), RTOL_SE, f"{what} deff")
    r_ci = r[f"ci_{ci}"]
    lower, upper = r_value(r_ci["lower"]), r_value(r_ci["upper"])
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower < 0 or upper > 1:
        return
    assert_close(row["ci_lower"], lower, RTOL_SE, f"{what} ci_lower ({r_ci['call']})")
    assert_close(row["ci_upper"], upper, RTOL_SE, f"{what} ci_upper ({r_ci['call']})")


@pytest.mark.parametrize("ci", CI_METHODS)
@pytest.mark.parametrize(("case_id", "index"), QUERIES)
def test_proportion_matches_r(case_id: str, index: int, ci: str) -> None:
    case = CASES[case_id]
    query = case["queries"][index]["query"]
    domains = case["queries"][index]["domains"]
    design = design_for_case(case)
    lonely_failures = {k for k, d in domains.items() if "only one PSU" in d.get("r_error", "")}
    comparable = {k: d for k, d in domains.items() if "r_error" not in d}
    if lonely_failures:
        with pytest.raises(LonelyPSUError):
            _call(design, query, ci)
        for level, r in comparable.items():
            row = _call(design, query, ci, where_extra={query["by"]: [r_level(level)]}).iloc[0]
            _compare_row(row, r, ci, f"{case_id} {query['variable']} {level}")
        return
    result = _call(design, query, ci)
    if query["by"] is None:
        rows = {"_all": result.iloc[0]}
    else:
        rows = {level_key(v): row for v, (_, row) in zip(result[query["by"]], result.iterrows())}
    assert set(domains) <= set(rows)
    for level, r in comparable.items():
        _compare_row(rows[level], r, ci, f"{case_id} {query['variable']} {level}")


def r_level(level: str):
    """A by-level label from the JSON back to the data's type."""
    try:
        return int(level)
    except ValueError:
        return level


def test_reference_covers_the_issue() -> None:
    """Real R data, raked and post-stratified designs, every lonely-PSU rule, edge cases."""
    ids = set(CASES)
    assert {"apistrat", "apiclus1", "apiclus2_first_stage", "nhanes"} <= ids
    assert {"apiclus1_raked", "nhanes_raked", "panel2020_raked", "apiclus1_poststratified"} <= ids
    for rule in ("adjust", "average", "remove", "certainty", "fail"):
        assert f"strat_{rule}" in ids and f"strat_{rule}_fpc_poststratified" in ids
    n_values = sum(1 for case in CASES.values() for q in case["queries"] for d in q["domains"].values() if "se" in d)
    assert n_values > 150
