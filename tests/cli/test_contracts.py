"""One contract per table: the column lists and dtypes elsewhere are derived from `survey_pipeline.contracts`."""

from __future__ import annotations

import pandas as pd
import pytest

from survey_pipeline import contracts
from survey_pipeline.artifacts import SchemaCheckError, check_table
from survey_pipeline.core.intervals import CI_METHODS
from survey_pipeline.stages.estimate import stage as est
from survey_pipeline.stages.report import tables


@pytest.mark.parametrize("name", ["indicators", "changes", "distributions"])
def test_report_tables_extend_the_estimate_tables(name):
    estimate, report = contracts.ESTIMATE_TABLES[name], contracts.REPORT_TABLES[name]
    assert issubclass(report, estimate)
    assert contracts.columns(report) == contracts.columns(estimate)
    frame_checks = {str(check.error) for check in report.to_schema().checks}
    assert {"suppressed_rows_have_no_numbers", "interval_contains"} <= {text.split("(")[0] for text in frame_checks}
    assert not estimate.to_schema().checks


def test_column_lists_elsewhere_come_from_the_contracts():
    assert list(est.INDICATOR_COLUMNS) == list(contracts.EstimateIndicators.to_schema().columns)
    assert contracts.columns(contracts.ReportChanges) == tables.CHANGE_COLUMNS
    assert set(contracts.columns(contracts.EstimateDistributions).values()) == {"str", "int64", "float64", "bool"}


@pytest.mark.parametrize("name", ["indicators", "changes", "distributions"])
def test_an_empty_estimate_table_meets_its_contract(name):
    table = {
        "indicators": est.INDICATOR_COLUMNS,
        "changes": est.CHANGE_COLUMNS,
        "distributions": est.DISTRIBUTION_COLUMNS,
    }[name]
    check_table(est._empty(table), contracts.ESTIMATE_TABLES[name], file=name)


def test_columns_leave_out_the_spec_columns_matched_by_pattern():
    assert list(contracts.columns(contracts.ValidateValid)) == [
        "source_file",
        "source_row",
        "file_wave",
        "resp_id",
        "wave",
        "base_weight",
    ]
    frame = pd.DataFrame(
        {
            "source_file": pd.array(["a.sav"], dtype="str"),
            "source_row": [1],
            "file_wave": [2019],
            "resp_id": [7],
            "wave": [2019],
            "heard": [1.0],
        }
    )
    check_table(frame, contracts.ValidateValid, file="valid")
    with pytest.raises(SchemaCheckError, match="heard"):
        check_table(frame.astype({"heard": "str"}), contracts.ValidateValid, file="valid")


def test_interval_methods_are_the_cores():
    assert tuple(contracts.CI_METHODS) == CI_METHODS


def test_weight_metrics_carry_the_diagnostics_columns():
    diagnostics = set(contracts.columns(contracts.WeightDiagnostics)) - {"wave", "method"}
    assert diagnostics < set(contracts.WeightWaveMetrics.model_fields)


# The number columns of each analysis table's `published_or_not` check (the first is the estimate).
PUBLISHED_NUMBERS = {
    "means": ["estimate", "se", "ci_lower", "ci_upper"],
    "crosstabs": ["estimate", "se", "ci_lower", "ci_upper"],
    "crosstab_tests": ["statistic", "ndf", "ddf", "p_value", "pearson"],
    "area_vs_rest": ["estimate_area", "difference", "se", "p_adjusted"],
    "trends": ["slope", "se", "ci_lower", "ci_upper", "p_value"],
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_NUMBERS))
def test_an_analysis_row_is_published_with_its_estimate_or_withheld_without_numbers(name):
    numbers = PUBLISHED_NUMBERS[name]
    (check,) = [c for c in contracts.ANALYSIS_TABLES[name].to_schema().checks if c.name == "published_or_not"]
    assert check.error == f"_cell_published(numbers={numbers})"
    rows = [  # (suppressed, reason, numbers present) -> meets the check
        (False, "", numbers, True),
        (False, "", numbers[1:], False),  # published without its estimate
        (False, "min_n", numbers, False),  # published with a reason
        (True, "min_n", [], True),
        (True, "min_n", numbers[-1:], False),  # withheld, but one number shown
        (True, "", [], False),  # withheld without a reason
    ]
    frame = pd.DataFrame(
        [
            {"suppressed": s, "suppression_reason": r, **{c: 0.5 if c in shown else None for c in numbers}}
            for s, r, shown, _ in rows
        ]
    ).astype({c: float for c in numbers})
    assert check(frame).check_output.tolist() == [ok for *_, ok in rows]
