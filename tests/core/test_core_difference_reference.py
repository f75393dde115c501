"""Wave changes on the stacked panel (respondent as cluster) against R survey.

R: svycontrast(svyratio(~num_a + num_b, ~den_a + den_b, svydesign(ids = ~resp_id,
weights = ~w, data = panel), covmat = TRUE), c(-1, 0, 0, 1)); df = degf of the design
restricted to both waves' domains; p = 2 pt(-|t|, df).
"""

from __future__ import annotations

import pytest
from r_reference import RTOL_ESTIMATE, RTOL_SE, assert_close, level_key, r_value, reference, reference_data

from survey_pipeline import SurveyDesign

REF = reference("differences")["differences"]
QUERIES = [pytest.param(i, id=f"q{i}") for i in range(len(REF["queries"]))]


def _design() -> SurveyDesign:
    return SurveyDesign(reference_data(REF["data"]), **REF["design_py"])


@pytest.mark.parametrize("index", QUERIES)
def test_difference_matches_r(index: int) -> None:
    query = REF["queries"][index]["query"]
    expected = REF["queries"][index]["domains"]
    result = _design().difference(
        query["variable"],
        success=query["success"],
        exclude=query["exclude"],
        where=query["where"] or None,
        between=tuple(query["between"]),
        by=query["by"],
    )
    if query["by"] is None:
        rows = {"_all": result.iloc[0]}
    else:
        rows = {level_key(v): row for v, (_, row) in zip(result[query["by"]], result.iterrows())}
    assert set(rows) == set(expected)
    for level, r in expected.items():
        row = rows[level]
        what = f"{query['variable']} {level}"
        for col in ("estimate_from", "estimate_to", "difference"):
            assert_close(row[col], r_value(r[col]), RTOL_ESTIMATE, f"{what} {col}")
        for col in ("se", "ci_lower", "ci_upper", "p_value"):
            assert_close(row[col], r_value(r[col]), RTOL_SE, f"{what} {col}")
        assert row["df"] == r_value(r["df"])


def test_overlapping_waves_are_not_independent() -> None:
    """The respondent-cluster SE differs from the SE that treats the waves as independent."""
    r = REF["queries"][0]["domains"]["_all"]
    assert abs(r_value(r["se"]) / r_value(r["se_independent_waves"]) - 1) > 0.01
