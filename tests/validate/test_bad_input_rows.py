"""Bad-input corpus, row level: which rows are quarantined, with exactly which reasons.

Rows of `raw_frame(spec, 2019, N)` with an even index answered "ja" to every filter
question (routed to everything); odd rows answered "nee" (routed past the
follow-up questions, which hold -1). Source rows are 1-based.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pytest
from panel_builder import raw_frame, stacked, with_origin

from survey_pipeline.errors import InputError
from survey_pipeline.stages.validate.stage import (
    check_quarantine_share,
    routing_clauses,
    validate_responses,
    validation_schema,
)

KEPT_IN = Path("/data/out/failed/validate")

N = 20
FILE = "wij_panel_2019.sav"


def run_2019(spec, raw):
    return validate_responses(with_origin(raw, spec, 2019), spec)


def outcome(result):
    """{source_row: reasons} of the quarantined rows."""
    return {int(r.source_row): r.reasons for r in result.quarantine.itertuples()}


def messages(result):
    return [(int(r.source_row), r.rule, r.column, r.message) for r in result.reasons.itertuples()]


def assert_reconciles(result, rows_in, quarantined):
    total = result.metrics["total"]
    assert total == {
        "rows_in": rows_in,
        "rows_valid": rows_in - quarantined,
        "rows_quarantined": quarantined,
        "quarantined_share": round(quarantined / rows_in, 6),
    }
    assert len(result.valid) + len(result.quarantine) == rows_in


@pytest.fixture
def raw(spec):
    return raw_frame(spec, 2019, N)


def test_valid_panel_has_no_quarantine(spec):
    result = validate_responses(stacked(spec, N), spec)
    assert outcome(result) == {}
    assert result.valid[spec.respondent_id].dtype == "int64" and result.valid["wave"].dtype == "int64"
    assert result.metrics["waves"] == {
        str(w): {"rows_in": N, "rows_valid": N, "rows_quarantined": 0, "quarantined_share": 0.0} for w in spec.waves
    }


def test_exact_duplicate_row_quarantines_only_the_copy(spec, raw):
    raw = pd.concat([raw.iloc[:5], raw.iloc[[4]], raw.iloc[5:]], ignore_index=True)
    result = run_2019(spec, raw)
    assert outcome(result) == {6: "unique_id:resp_id"}
    assert messages(result) == [
        (6, "unique_id", "resp_id", "exact copy of row 5 (same respondent id and answers in wave 2019)")
    ]
    assert_reconciles(result, N + 1, 1)


def test_conflicting_duplicate_ids_quarantine_every_row(spec, raw):
    raw.loc[7, "resp_id"] = raw.loc[2, "resp_id"]
    result = run_2019(spec, raw)
    assert outcome(result) == {3: "unique_id:resp_id", 8: "unique_id:resp_id"}
    assert messages(result)[0][3] == "the respondent id occurs in 2 rows of wave 2019 with different data (rows 3, 8)"


def test_same_id_in_two_waves_is_fine(spec):
    frame = pd.concat([with_origin(raw_frame(spec, w, N), spec, w) for w in (2019, 2020)], ignore_index=True)
    assert outcome(validate_responses(frame, spec)) == {}


def test_routed_past_but_answered(spec, raw):
    raw.loc[1, "familiarity"] = 3.0
    result = run_2019(spec, raw)
    assert outcome(result) == {2: "routed_past:familiarity"}
    assert messages(result) == [
        (
            2,
            "routed_past",
            "familiarity",
            "routed past 'familiarity' (heard=2) but it holds 3; expected -1 'niet gevraagd'",
        )
    ]


def test_routed_to_but_coded_not_asked(spec, raw):
    raw.loc[0, "walk_in"] = -1.0
    result = run_2019(spec, raw)
    assert outcome(result) == {1: "routed_to:walk_in"}
    assert messages(result)[0][3] == "routed to 'walk_in' (heard=1) but coded -1 'niet gevraagd'"


@pytest.mark.parametrize("filter_code", [99.0, 98.0])
def test_filter_weet_niet_or_geen_antwoord_routes_past(spec, raw, filter_code):
    raw.loc[1, "heard"] = filter_code
    raw.loc[3, "heard"] = filter_code
    raw.loc[3, "walk_in"] = 2.0
    result = run_2019(spec, raw)
    assert outcome(result) == {4: "routed_past:walk_in"}


def test_routed_past_with_a_blank_instead_of_not_asked(spec, raw):
    raw.loc[1, "contact"] = np.nan
    result = run_2019(spec, raw)
    assert outcome(result) == {2: "routed_past:contact"}
    assert "but it holds blank" in messages(result)[0][3]


def test_routed_to_but_blank(spec, raw):
    raw.loc[0, "knows_where"] = np.nan
    result = run_2019(spec, raw)
    assert outcome(result) == {1: "not_blank:knows_where"}
    assert messages(result)[0][3] == (
        "routed to 'knows_where' but blank (system missing); expected an answer, 99 'weet niet' or 98 'geen antwoord'"
    )


def test_routing_follows_the_whole_chain(spec, raw):
    # Row 2 said "nee" to heard; contact is answered although routed past, helped stays -1:
    # only contact breaks a rule, because helped is routed past through heard as well.
    raw.loc[1, "contact"] = 1.0
    raw.loc[3, "contact"] = 1.0
    raw.loc[3, "helped"] = 2.0
    result = run_2019(spec, raw)
    assert routing_clauses(spec, "helped") == {"contact": [1], "heard": [1]}
    assert outcome(result) == {2: "routed_past:contact", 4: "routed_past:contact; routed_past:helped"}


def test_out_of_range_code(spec, raw):
    raw.loc[2, "familiarity"] = 7.0
    result = run_2019(spec, raw)
    assert outcome(result) == {3: "allowed_codes:familiarity"}
    assert messages(result)[0][3] == "code 7 is not a code of 'familiarity' (allowed: 1-4, 99, 98, -1)"


def test_huge_value(spec, raw):
    raw.loc[2, "knows_where"] = 1e12
    raw.loc[5, "heard"] = np.inf
    result = run_2019(spec, raw)
    assert outcome(result) == {3: "allowed_codes:knows_where", 6: "allowed_codes:heard"}
    assert [m[3] for m in messages(result)] == [
        "code 1000000000000 is not a code of 'knows_where' (allowed: 1, 2, 99, 98, -1)",
        "code inf is not a code of 'heard' (allowed: 1, 2, 99, 98, -1)",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.nan, "the respondent id is blank"),
        (2.0**60, "the respondent id is outside 0..2^53 (a huge number)"),
        (-5.0, "the respondent id is outside 0..2^53 (a negative number)"),
    ],
)
def test_bad_respondent_id(spec, raw, value, message):
    raw.loc[9, "resp_id"] = value
    result = run_2019(spec, raw)
    assert outcome(result) == {10: "valid_id:resp_id"}
    assert messages(result)[0][3] == message
    assert np.isnan(value) or result.quarantine["resp_id"].iloc[0] == value


def test_wave_in_the_wrong_file(spec, raw):
    raw.loc[5, "wave"] = 2020.0
    result = run_2019(spec, raw)
    assert outcome(result) == {6: "wave_matches_file:wave"}
    assert messages(result)[0][3] == "the wave variable is 2020 but the file is wave 2019"


def test_whole_file_of_another_wave_stops_the_run(spec):
    raw = raw_frame(spec, 2019, N)
    raw["wave"] = 2020.0
    result = run_2019(spec, raw)
    assert set(outcome(result).values()) == {"wave_matches_file:wave"}
    with pytest.raises(InputError) as excinfo:
        check_quarantine_share(result.metrics, 0.02, kept_in=KEPT_IN)
    assert str(excinfo.value) == (
        "rule 'max_quarantine_share': wave 2019: 20 of 20 rows quarantined (100.0%); most frequent: "
        "wave_matches_file:wave (20); the limit is 2.0% (validate.max_quarantine_share); "
        "the quarantine is kept in /data/out/failed/validate/ for inspection"
    )


def test_missing_background_value_is_valid(spec, raw):
    raw.loc[[0, 3], "wijk"] = np.nan
    result = run_2019(spec, raw)
    assert outcome(result) == {}
    assert result.valid["wijk"].isna().sum() == 2


def test_background_code_out_of_range(spec, raw):
    raw.loc[4, "wijk"] = 31.0
    result = run_2019(spec, raw)
    assert outcome(result) == {5: "allowed_codes:wijk"}
    assert messages(result)[0][3] == "code 31 is not a code of 'wijk' (allowed: 1-30)"


def test_question_not_asked_in_the_wave_must_be_blank(spec):
    frame = with_origin(raw_frame(spec, 2021, N), spec, 2021)
    frame.loc[2, "caregiver"] = 1.0
    result = validate_responses(frame, spec)
    assert {int(r.source_row): r.reasons for r in result.quarantine.itertuples()} == {3: "not_in_wave:caregiver"}


def test_every_reason_of_a_row_is_listed(spec, raw):
    raw.loc[0, "familiarity"] = 7.0
    raw.loc[0, "knows_where"] = np.nan
    raw.loc[0, "wave"] = 2021.0
    result = run_2019(spec, raw)
    assert outcome(result) == {1: "wave_matches_file:wave; allowed_codes:familiarity; not_blank:knows_where"}
    assert result.reasons["source_file"].tolist() == [FILE] * 3


def test_missing_background_column_is_a_table_error(spec, raw):
    frame = with_origin(raw, spec, 2019).drop(columns=["sex"])
    with pytest.raises(InputError) as excinfo:
        validate_responses(frame, spec)
    assert excinfo.value.rule == "column_present" and excinfo.value.column == "sex"


def test_quarantine_threshold_is_per_wave_and_strict(spec):
    frame = stacked(spec, 50, waves=(2019, 2020))
    frame.loc[0, "familiarity"] = 7.0
    result = validate_responses(frame, spec)
    assert result.metrics["waves"]["2019"]["quarantined_share"] == 0.02
    check_quarantine_share(result.metrics, 0.02, kept_in=KEPT_IN)
    frame.loc[2, "familiarity"] = 7.0
    result = validate_responses(frame, spec)
    with pytest.raises(InputError) as excinfo:
        check_quarantine_share(result.metrics, 0.02, kept_in=KEPT_IN)
    assert str(excinfo.value).startswith("rule 'max_quarantine_share': wave 2019: 2 of 50 rows quarantined (4.0%)")
    assert result.metrics["waves"]["2020"]["rows_quarantined"] == 0
    assert result.metrics["reasons"] == {"2019": {"allowed_codes:familiarity": 2}, "2020": {}}


def test_quarantine_keeps_codes_and_origin(spec, raw):
    raw.loc[1, "familiarity"] = 3.0
    result = run_2019(spec, raw)
    row = result.quarantine.iloc[0]
    assert (row["source_file"], row["source_row"], row["file_wave"], row["resp_id"]) == (FILE, 2, 2019, 2.0)
    assert row["familiarity"] == 3.0 and row["heard"] == 2.0


def test_schema_uses_named_checks_only_and_survives_yaml(spec, raw):
    """No lambdas: the generated schema serialises, and the YAML copy finds the same failures."""
    raw.loc[1, "familiarity"] = 3.0
    raw.loc[4, "wijk"] = 31.0
    frame = with_origin(raw, spec, 2019)
    schema = validation_schema(spec)
    copy = pa.DataFrameSchema.from_yaml(schema.to_yaml())
    assert len(copy.checks) == len(schema.checks) > 0

    def failures(s):
        with pytest.raises(pandera.errors.SchemaErrors) as excinfo:
            s.validate(frame, lazy=True)
        cases = excinfo.value.failure_cases
        return sorted(set(zip(cases["index"].astype(int), cases["check"].astype(str))))

    assert failures(copy) == failures(schema) == [(1, "routed_past:familiarity"), (4, "allowed_codes:wijk")]


def test_quarantine_message_prints_share_and_limit_apart(spec):
    frame = stacked(spec, 250, waves=(2019,))
    frame.loc[[0, 2, 4], "familiarity"] = 7.0
    result = validate_responses(frame, spec)
    with pytest.raises(InputError) as excinfo:
        check_quarantine_share(result.metrics, 0.0118, kept_in=KEPT_IN)
    text = str(excinfo.value)
    assert "3 of 250 rows quarantined (1.20%)" in text and "the limit is 1.18%" in text
