"""The publication interval against the NCHS standard computed by hand in R.

Values from tests/reference/r/make_reference.R (section "publication rule"): on a raked
wave, per wijk, n_eff = min(n, p(1-p)/se^2), adjusted with (qt(0.975, n-1)/qt(0.975, df))^2
on the domain's own n, then Clopper-Pearson at 95%. The R inputs (p, se, n, df) come from
svymean on the subset; the core must give the same inputs and the rule the same interval.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_reference import RTOL_ESTIMATE, RTOL_SE, assert_close, design_for_case, r_value, reference

from survey_pipeline.reliability import publication_interval

CASE = reference("publication_rule")["publication_rule"]
DOMAINS = [pytest.param(d, id=f"{d['variable']}-{d['by']}{d['by_value']}") for d in CASE["domains"]]


def _r_interval(domain: dict) -> tuple[float, float]:
    return r_value(domain["nchs_lower"]), r_value(domain["nchs_upper"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_rule_interval_from_r_inputs_equals_the_hand_computation(domain):
    p, se, df = (r_value(domain[k]) for k in ("estimate", "se", "df"))
    lower, upper = publication_interval([p], [se], [domain["n"]], [df])
    expected_lower, expected_upper = _r_interval(domain)
    assert_close(lower[0], expected_lower, RTOL_ESTIMATE, "lower")
    assert_close(upper[0], expected_upper, RTOL_ESTIMATE, "upper")


@pytest.mark.parametrize("domain", DOMAINS)
def test_core_inputs_give_the_nchs_interval(domain):
    design = design_for_case(CASE)
    row = design.proportion(
        domain["variable"], success=domain["success"], exclude=[99], where={domain["by"]: [domain["by_value"]]}
    ).iloc[0]
    assert row["n"] == domain["n"]
    assert row["df"] == r_value(domain["df"])
    assert_close(row["estimate"], r_value(domain["estimate"]), RTOL_ESTIMATE, "estimate")
    assert_close(row["se"], r_value(domain["se"]), RTOL_SE, "se", atol=1e-15)
    lower, upper = publication_interval([row["estimate"]], [row["se"]], [row["n"]], [row["df"]])
    expected_lower, expected_upper = _r_interval(domain)
    assert_close(lower[0], expected_lower, RTOL_SE, "lower")
    assert_close(upper[0], expected_upper, RTOL_SE, "upper")


def test_the_standard_differs_from_svyciprop_beta_on_a_calibrated_design():
    """R's svyciprop uses nrow() of the whole wave in the df adjustment: not the standard's interval."""
    inner = [d for d in CASE["domains"] if 0 < r_value(d["estimate"]) < 1]
    differences = [abs(r_value(d["nchs_lower"]) - r_value(d["svyciprop_beta_lower"])) for d in inner]
    assert len(inner) >= 8 and min(differences) > 1e-5
    assert np.isnan(r_value(next(d for d in CASE["domains"] if r_value(d["estimate"]) == 0)["svyciprop_beta_lower"]))
