"""Registration figures: the file is read strictly (one error per rule, naming file, row, column
and rule) and targets are judged on the value, without an interval."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from survey_pipeline import contracts, demo
from survey_pipeline.artifacts import check_table
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.registrations import (
    read_registrations,
    registration_table,
)
from survey_pipeline.settings import EstimateSettings
from survey_pipeline.spec import RegistrationUnit, parse_spec

ROOT = Path(__file__).resolve().parents[2]
HEADER = "indicator_id,year,value,unit,source,note"
GOOD = [
    "entree_requests,2020,30994,count,WIJ-registratie,het betreft hier niet unieke personen",
    "entree_requests,2021,27027,count,WIJ-registratie,",
    "entree_own_network,2021,37,percentage,WIJ-registratie,",
]


def _file(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "registrations.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_good_file_is_read_as_written(spec, tmp_path):
    values = read_registrations(_file(tmp_path, *GOOD), spec)
    assert values["value"].tolist() == [30994.0, 27027.0, 37.0]
    assert values["note"].tolist() == ["het betreft hier niet unieke personen", "", ""]
    table = registration_table(values, spec)
    check_table(table, contracts.EstimateRegistrations, file="registrations", spec=spec)
    # spec order (entree_requests before entree_own_network), then year
    assert table[["indicator_id", "year"]].values.tolist() == [
        ["entree_requests", 2020],
        ["entree_requests", 2021],
        ["entree_own_network", 2021],
    ]


def test_the_note_column_is_optional(spec, tmp_path):
    path = _file(tmp_path, "entree_requests,2020,30994,count,WIJ", header="indicator_id,year,value,unit,source")
    assert read_registrations(path, spec)["note"].tolist() == [""]


BAD = [
    # (row text, column, rule, words in the message)
    ("entree_requests,2020,30.994,count,WIJ,", "value", "registrations_number", "thousands separator"),
    ('entree_requests,2020,"30,994",count,WIJ,', "value", "registrations_number", "thousands separator"),
    ("entree_own_network,2020,37.5%,percentage,WIJ,", "value", "registrations_number", "not a number"),
    ('entree_own_network,2020,"37,5",percentage,WIJ,', "value", "registrations_number", "comma"),
    ("entree_requests,2020,30994.0,count,WIJ,", "value", "registrations_number", "not a whole number"),
    ("entree_requests,2020,,count,WIJ,", "value", "registrations_number", "empty value"),
    ("entree_requests,2020,-5,count,WIJ,", "value", "registrations_negative_count", "cannot be negative"),
    ("entree_own_network,2020,100.5,percentage,WIJ,", "value", "registrations_percentage_range", "0-100"),
    ("entree_own_network,2020,-1,percentage,WIJ,", "value", "registrations_percentage_range", "0-100"),
    (
        "entree_requests,2020,30994,percentage,WIJ,",
        "unit",
        "registrations_unit",
        "declares 'entree_requests' as 'count'",
    ),
    ("entree_requests,2020,30994,aantal,WIJ,", "unit", "registrations_unit", "'aantal'"),
    ("meldingen,2020,30994,count,WIJ,", "indicator_id", "registrations_unknown_indicator", "'meldingen'"),
    ("heard,2020,78,percentage,WIJ,", "indicator_id", "registrations_unknown_indicator", "'heard'"),
    ("entree_requests,20.20,30994,count,WIJ,", "year", "registrations_year", "not a whole number"),
    ("entree_requests,1850,30994,count,WIJ,", "year", "registrations_year", "1900-2100"),
    ("entree_requests,2020,30994,count, ,", "source", "registrations_source", "empty source"),
]


@pytest.mark.parametrize(("row", "column", "rule", "words"), BAD)
def test_each_rule_stops_with_one_line_naming_file_row_column_and_rule(spec, tmp_path, row, column, rule, words):
    path = _file(tmp_path, GOOD[0].replace("2020", "2019"), row)
    with pytest.raises(InputError) as caught:
        read_registrations(path, spec, name="data/registrations/registrations.csv")
    error = caught.value
    assert (error.file, error.row, error.column, error.rule) == (
        "data/registrations/registrations.csv",
        3,  # line 1 is the header, line 2 the good row
        column,
        rule,
    )
    assert words in error.message
    assert "\n" not in str(error)


def test_a_second_value_for_the_same_id_and_year_names_both_rows(spec, tmp_path):
    with pytest.raises(InputError) as caught:
        read_registrations(_file(tmp_path, *GOOD, GOOD[1].replace("27027", "27028")), spec)
    assert (caught.value.row, caught.value.column, caught.value.rule) == (5, "year", "registrations_duplicate")
    assert "first at row 3" in caught.value.message


@pytest.mark.parametrize(
    ("header", "column", "words"),
    [
        ("indicator_id,year,value,source", "unit", "missing ['unit']"),
        ("indicator_id,year,value,unit,source,notes", "notes", "unknown ['notes']"),
    ],
)
def test_missing_or_unknown_columns(spec, tmp_path, header, column, words):
    with pytest.raises(InputError) as caught:
        read_registrations(_file(tmp_path, header=header), spec)
    assert (caught.value.column, caught.value.rule) == (column, "registrations_columns")
    assert words in caught.value.message


def test_a_missing_file_an_empty_file_and_a_shifted_row_are_errors(spec, tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_registrations(tmp_path / "none.csv", spec)
    with pytest.raises(InputError, match="no data rows"):
        read_registrations(_file(tmp_path), spec)
    with pytest.raises(InputError, match="row has 7 fields") as caught:
        read_registrations(_file(tmp_path, "entree_requests,2020,30,994,count,WIJ,"), spec)
    assert caught.value.row == 2


def _with_targets(spec_raw: dict, registration: str, targets: dict) -> object:
    for entry in spec_raw["registrations"]:
        if entry["id"] == registration:
            entry["targets"] = targets
    return parse_spec(spec_raw)


@pytest.fixture
def raw_spec() -> dict:
    return yaml.safe_load((ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))


def test_targets_are_judged_on_the_value(raw_spec, tmp_path):
    spec = _with_targets(raw_spec, "entree_own_network", {2020: ">37%", 2021: ">37%", 2022: "kengetal"})
    rows = [
        "entree_own_network,2020,37,percentage,WIJ,",  # not above 37%: no interval to give the benefit of doubt
        "entree_own_network,2021,37.1,percentage,WIJ,",
        "entree_own_network,2022,40,percentage,WIJ,",
        "entree_own_network,2023,41,percentage,WIJ,",
    ]
    table = registration_table(read_registrations(_file(tmp_path, *rows), spec), spec)
    assert table["target_status"].tolist() == ["not_met", "met", "key_figure", "no_target"]
    assert table["target"].tolist() == [">37%", ">37%", "kengetal", ""]


def test_a_change_target_compares_with_the_latest_earlier_year_with_a_value(raw_spec, tmp_path):
    spec = _with_targets(raw_spec, "entree_requests", {2019: "afname", 2021: "afname", 2022: "toename"})
    rows = [
        "entree_requests,2019,30000,count,WIJ,",
        "entree_requests,2021,27000,count,WIJ,",  # 2020 has no value: compared with 2019
        "entree_requests,2022,26000,count,WIJ,",
    ]
    table = registration_table(read_registrations(_file(tmp_path, *rows), spec), spec)
    assert table["target_status"].tolist() == ["indistinguishable", "met", "not_met"]
    assert table["flags"].tolist() == ["target_not_evaluable:no_previous_wave", "", ""]


def test_the_committed_demo_file_is_what_the_demo_writes_and_is_labelled_synthetic(spec, tmp_path):
    written = tmp_path / "registrations.csv"
    demo.write_demo_registrations(spec, written)
    committed = ROOT / "data" / "registrations" / "registrations.csv"
    assert committed.read_bytes() == written.read_bytes()
    values = read_registrations(committed, spec)
    assert set(values["source"]) == {demo.REGISTRATION_SOURCE} == {"synthetisch (demo)"}
    assert set(values["indicator_id"]) == {r.id for r in spec.registrations}


def test_declared_registrations_need_the_file(spec):
    with pytest.raises(ParamsError, match="estimate.registrations_file.*entree_requests"):
        EstimateSettings(breakdowns=()).check_registrations(spec)
    EstimateSettings(breakdowns=(), registrations_file="r.csv").check_registrations(spec)


def test_the_contract_knows_the_spec_units_and_checks_values_by_unit(spec, tmp_path):
    assert list(get_args(RegistrationUnit)) == contracts.REGISTRATION_UNITS
    table = registration_table(read_registrations(_file(tmp_path, *GOOD), spec), spec)
    for row, value in ((0, 30994.5), (2, 100.5)):  # a count with a fraction, a percentage above 100
        bad = table.copy()
        bad.loc[row, "value"] = value
        with pytest.raises(InputError, match="registration_values_fit_their_unit"):
            check_table(bad, contracts.EstimateRegistrations, file="registrations", spec=spec)
