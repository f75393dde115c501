"""Publication rule (NCHS standards for proportions + minimum base): suppress, flag, never a number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survey_pipeline.errors import ParamsError
from survey_pipeline.reliability import (
    apply_suppression,
    assess,
    effective_sample_size,
    publication_interval,
)
from survey_pipeline.settings import SuppressionRule, load_params, parse_section

ROOT = Path(__file__).resolve().parents[2]
RULE = SuppressionRule()


def _one(p, se, n, df):
    a = assess(RULE, [p], [se], [n], [df])
    return bool(a.suppressed[0]), a.reason[0], a.flags[0]


def _clopper_pearson(x, n, level=0.95):
    alpha = 1 - level
    lower = stats.beta.ppf(alpha / 2, x, n - x + 1) if x > 0 else 0.0
    upper = stats.beta.ppf(1 - alpha / 2, x + 1, n - x) if x < n else 1.0
    return lower, upper


def test_params_section_parses_and_defaults_are_nchs():
    rule = load_params(ROOT / "params.yaml").estimate.suppression
    assert rule.min_n == 30 and rule.min_n_eff == 30 and rule.max_ci_width == 0.30
    assert rule.max_relative_ci_width == 1.30 and rule.flag_df_below == 8
    assert parse_section(SuppressionRule, {}, "estimate.suppression") == SuppressionRule()


@pytest.mark.parametrize(
    "section",
    [
        {"min_n": -1},
        {"min_n": 2.5},
        {"min_n": 30.0},
        {"max_ci_width": 1.5},
        {"colour": 1},
        {"min_n_eff": "30"},
        {"flag_df_below": True},
        [30],
    ],
)
def test_bad_params_name_the_key(section):
    with pytest.raises(ParamsError) as info:
        parse_section(SuppressionRule, section, "estimate.suppression")
    assert "estimate.suppression" in str(info.value)


def test_srs_half_needs_about_fifty_for_the_width_rule():
    # Simple random sample, p = 0.5: the Korn-Graubard interval is Clopper-Pearson.
    # n = 40 gives width 0.32 (suppress), n = 50 gives 0.29 (publish).
    for n, expected in ((40, True), (50, False)):
        lower, upper = _clopper_pearson(n // 2, n)
        se = np.sqrt(0.25 / n)
        np.testing.assert_allclose(publication_interval([0.5], [se], [n], [n - 1]), [[lower], [upper]], rtol=1e-12)
        suppressed, reason, _ = _one(0.5, se, n, n - 1)
        assert suppressed is expected
        assert reason == ("max_ci_width" if expected else "")


@pytest.mark.parametrize(
    ("p", "se", "n", "df", "reason", "flags"),
    [
        (0.5, 0.02, 600, 599, "", ""),
        (0.5, 0.05, 20, 19, "min_n;min_n_eff;max_ci_width", ""),
        (0.5, 0.10, 400, 399, "min_n_eff;max_ci_width", ""),  # n_eff = 25 (deff 16)
        (0.03, 0.015, 500, 499, "max_relative_ci_width", ""),  # n_eff 129: width .07, relative 2.3
        (0.02, 0.005, 900, 899, "", ""),  # width .02: relative not checked
        (0.6, 0.03, 300, 5, "", "low_df"),
        (0.0, 0.0, 400, 399, "", ""),  # p = 0: n_eff = n
        (np.nan, np.nan, 0, np.nan, "no_estimate", ""),
        (0.4, 0.03, 300, 0, "no_interval", "low_df"),  # no degrees of freedom
        (0.4, np.nan, 300, 20, "no_interval", ""),  # variance not estimable
    ],
)
def test_rule_cases(p, se, n, df, reason, flags):
    suppressed, got_reason, got_flags = _one(p, se, n, df)
    assert (got_reason, got_flags) == (reason, flags)
    assert suppressed is (reason != "")


def test_df_adjustment_uses_the_domain_sample_size():
    """n_eff,df = n_eff (t(0.975; n-1) / t(0.975; df))^2 with the domain's own n (NCHS 2017)."""
    p, se, n, df = 0.3, 0.05, 200, 12
    n_eff = p * (1 - p) / se**2
    m = n_eff * (stats.t.ppf(0.975, n - 1) / stats.t.ppf(0.975, df)) ** 2
    expected = _clopper_pearson(p * m, m)
    np.testing.assert_allclose(np.ravel(publication_interval([p], [se], [n], [df])), expected, rtol=1e-10)
    wider_design = publication_interval([p], [se], [n], [6])
    assert wider_design[1][0] - wider_design[0][0] > expected[1] - expected[0]


def test_effective_sample_size_is_capped_at_n():
    np.testing.assert_allclose(effective_sample_size([0.5, 0.5, 0.0], [0.01, 0.1, 0.0], [100, 100, 50]), [100, 25, 50])


def test_suppressed_values_are_never_numbers():
    frame = pd.DataFrame(
        {
            "estimate": [0.5, 0.5],
            "se": [0.02, 0.05],
            "ci_lower": [0.46, 0.3],
            "ci_upper": [0.54, 0.7],
            "deff": [1.0, 1.0],
            "n_eff": [600.0, 20.0],
            "n": [600, 20],
            "df": [599.0, 19.0],
        }
    )
    a = assess(RULE, frame["estimate"], frame["se"], frame["n"], frame["df"])
    out = apply_suppression(frame, a)
    assert out["suppressed"].tolist() == [False, True]
    assert out.loc[1, ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"]].isna().all()
    assert out.loc[0, "estimate"] == 0.5
    assert out["n"].tolist() == [600, 20]
    assert out["suppression_reason"].tolist() == ["", "min_n;min_n_eff;max_ci_width"]
