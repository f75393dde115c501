"""Output checks: a bad table stops the report with an InputError naming the failed rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from survey_pipeline.errors import InputError
from survey_pipeline.stages.report import checks

REPORT_DIR = Path("/data/out/report")  # named in the messages: the folder the run writes to


def _copies(published):
    return {name: frame.copy() for name, frame in published.items()}


def _total(frame, indicator_id, wave):
    return (frame["indicator_id"] == indicator_id) & (frame["wave"] == wave) & (frame["breakdown"] == "total")


def test_good_tables_pass_every_check(spec, rule, published):
    checked, outcomes = checks.validate_outputs(_copies(published), spec, rule, spec.waves, REPORT_DIR)
    assert set(checked) == {"indicators", "changes", "distributions"}
    assert outcomes and all(o.success for o in outcomes)
    assert {o.table for o in outcomes} == {"indicators", "changes", "distributions"}


def test_gx_finds_each_published_estimate_that_breaks_the_rule(spec, rule, published):
    """One checkpoint run on a table with several independent faults, each on its own row."""
    tables = _copies(published)
    frame = tables["indicators"]
    frame.loc[_total(frame, "wmo_quick", 2021), "n"] = rule.min_n - 1  # base below min_n
    # n_eff about 190, but one degree of freedom: the df adjustment widens the rule's interval past 0.30
    frame.loc[_total(frame, "heard", 2019), ["se", "df"]] = [0.03, 1.0]
    frame.loc[_total(frame, "familiar", 2019), "se"] = 0.2  # n_eff = p(1-p)/se^2 < 30
    # the rule's interval from (p, se, n, df): width .02 at p = .02 is allowed (relative not checked),
    # width .13 at p = .04 (n_eff 60) is not
    frame.loc[_total(frame, "knows_where", 2019), ["estimate", "ci_lower", "ci_upper", "se"]] = [
        0.02,
        0.01,
        0.03,
        0.001,
    ]
    frame.loc[_total(frame, "knows_where", 2020), ["estimate", "ci_lower", "ci_upper", "se"]] = [
        0.04,
        0.01,
        0.1,
        0.0253,
    ]
    extra = frame[_total(frame, "caregiver_burdened", 2020)].assign(wave=2021)  # a wave that did not ask it
    tables["indicators"] = pd.concat([frame, extra], ignore_index=True).astype(frame.dtypes.to_dict())

    failed = {o.check: o.examples for o in checks.run_checkpoint(tables, spec, rule, spec.waves) if not o.success}
    assert failed == {
        f"reliability: n >= {rule.min_n}": ("wmo_quick 2021 Totaal",),
        # n_eff is capped at n, so a base below min_n also breaks the n_eff rule
        f"reliability: n_eff >= {rule.min_n_eff:g}": ("familiar 2019 Totaal", "wmo_quick 2021 Totaal"),
        # the rule's interval at n_eff < 30 (and at n < 30) is wider than 0.30 as well
        f"reliability: CI width < {rule.max_ci_width:g}": (
            "heard 2019 Totaal",
            "familiar 2019 Totaal",
            "wmo_quick 2021 Totaal",
        ),
        f"reliability: relative CI width <= {rule.max_relative_ci_width:g} (where width > "
        f"{rule.relative_width_from:g})": ("knows_where 2020 Totaal",),
        "no indicator in a wave that did not ask it": ("caregiver_burdened 2021 Totaal",),
    }


def test_gx_finds_an_indicator_missing_from_a_measured_wave(spec, rule, published):
    tables = _copies(published)
    tables["indicators"] = tables["indicators"][~_total(tables["indicators"], "contact_of_heard", 2020)].reset_index(
        drop=True
    )
    with pytest.raises(InputError, match="every spec indicator present.*missing contact_of_heard@2020"):
        checks.validate_outputs(tables, spec, rule, spec.waves, REPORT_DIR)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("estimate", 1.2, r"estimate: in_range\(0, 1\) \(1 row\(s\), e\.g\. heard 2019 Totaal\)"),
        (
            "ci_upper",
            0.5,
            r"<table>: interval_contains\(value=estimate, lower=ci_lower, upper=ci_upper\) "
            r"\(1 row\(s\), e\.g\. heard 2019 Totaal\)",
        ),
    ],
)
def test_pandera_rejects_impossible_numbers(spec, rule, published, column, value, message):
    tables = _copies(published)
    tables["indicators"].loc[_total(tables["indicators"], "heard", 2019), column] = value
    with pytest.raises(InputError, match=message):
        checks.validate_outputs(tables, spec, rule, spec.waves, REPORT_DIR)


def test_a_suppressed_value_may_not_carry_a_number(spec, rule, published):
    tables = _copies(published)
    frame = tables["indicators"]
    hidden = frame.index[frame["suppressed"]][0]
    frame.loc[hidden, ["estimate", "ci_lower", "ci_upper"]] = [0.5, 0.4, 0.6]
    with pytest.raises(InputError, match=r"suppressed_rows_have_no_numbers.*\(1 row\(s\)") as info:
        checks.check_schemas(tables, spec, REPORT_DIR)
    assert str(info.value).startswith("/data/out/report/indicators, rule 'schema:report_indicators': ")


def test_a_published_zero_or_hundred_percent_without_a_design_effect_passes(spec, rule, published):
    """p = 1 has variance 0: deff is undefined (NaN) but the cell is published (n_eff = n)."""
    tables = _copies(published)
    frame = tables["indicators"]
    shown = frame.index[~frame["suppressed"]][0]
    frame.loc[shown, ["estimate", "se", "ci_upper", "deff"]] = [1.0, 0.0, 1.0, float("nan")]
    frame.loc[shown, "ci_lower"] = min(frame.loc[shown, "ci_lower"], 1.0)
    checks.check_schemas(tables, spec, REPORT_DIR)
    frame.loc[shown, ["estimate", "ci_upper"]] = [0.9, 0.95]  # not at the boundary: deff must be there
    with pytest.raises(InputError, match=r"suppressed_rows_have_no_numbers.*\(1 row\(s\)"):
        checks.check_schemas(tables, spec, REPORT_DIR)


def test_a_table_estimated_on_another_base_is_rejected(spec, rule, published):
    tables = _copies(published)
    tables["indicators"].loc[tables["indicators"]["indicator_id"] == "walk_in_easy", "base"] = "residents"
    with pytest.raises(InputError, match="walk_in_easy.*base 'residents' but the spec says 'heard_of_wij'"):
        checks.validate_outputs(tables, spec, rule, spec.waves, REPORT_DIR)
