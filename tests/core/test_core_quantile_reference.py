"""SurveyDesign.quantile against R survey 4.1-1 svyquantile(interval.type = "mean", qrule = "math")
(values from tests/reference/r/make_quantile_reference.R).

Tolerances (relative): quantiles (values of the data) 1e-9; interval bounds (also values of the
data, found at the bounds of the share's interval) and SEs 1e-7; df and n exact. Domains R cannot
compute (no row with a value) come back empty, with a note.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_reference import RTOL_ESTIMATE, RTOL_SE, assert_close, design_for_case, level_key, r_value, reference

CASES = reference("quantiles")["cases"]
QUERIES = [
    pytest.param(case_id, i, id=f"{case_id}-{i}-{q['query']['variable']}")
    for case_id, case in CASES.items()
    for i, q in enumerate(case["quantiles"])
]


@pytest.mark.parametrize(("case_id", "index"), QUERIES)
def test_quantile_matches_r(case_id: str, index: int) -> None:
    case = CASES[case_id]
    query, domains = case["quantiles"][index]["query"], case["quantiles"][index]["domains"]
    probs = np.atleast_1d(query["probs"]).tolist()
    design = design_for_case(case)
    result = design.quantile(query["variable"], probs, where=query["where"] or None, by=query["by"])
    keys = ["_all"] * len(result) if query["by"] is None else [level_key(v) for v in result[query["by"]]]
    assert set(keys) == set(domains) and len(result) == len(domains) * len(probs)
    for key, (_, row) in zip(keys, result.iterrows()):
        r, what = domains[key], f"{case_id} quantile({query['variable']}, {row['prob']}) {key}"
        assert row["n"] == r["n"], f"{what}: n"
        if "r_error" in r:
            assert np.isnan(row["estimate"]) and np.isnan(row["se"]) and "empty domain" in row["note"], what
            continue
        (expected,) = [q for q in r["quantiles"] if q["prob"] == row["prob"]]
        assert row["df"] == r_value(r["df"]), f"{what}: df ({r['r_df_call']})"
        assert_close(row["sum_weights"], r_value(r["sum_weights"]), RTOL_ESTIMATE, f"{what} sum_weights")
        assert_close(row["estimate"], r_value(expected["estimate"]), RTOL_ESTIMATE, f"{what} ({r['r_call']})")
        for column in ("ci_lower", "ci_upper", "se"):
            assert_close(row[column], r_value(expected[column]), RTOL_SE, f"{what} {column} ({r['r_call']})")


def test_every_case_has_an_interval_and_a_domain_r_cannot_compute():
    """The reference exercises ties, NaN bounds or not, and an empty domain (not a vacuous comparison)."""
    values = [d for case in CASES.values() for q in case["quantiles"] for d in q["domains"].values()]
    assert any("r_error" in d for d in values)
    bounds = [r_value(q["ci_lower"]) for d in values if "quantiles" in d for q in d["quantiles"]]
    assert len(bounds) > 40 and np.isfinite(bounds).mean() > 0.9


def test_probs_are_checked():
    design = design_for_case(CASES["apistrat"])
    for bad in (1.5, -0.1, [], [0.5, float("nan")]):
        with pytest.raises(ValueError, match="probs"):
            design.quantile("api00", bad)
