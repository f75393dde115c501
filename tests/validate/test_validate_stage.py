"""The validate stage end to end: ingest + validate on small .sav files, GX checkpoint, params."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from panel_builder import raw_frame, stacked, valid_responses, write_raw

from survey_pipeline import contracts
from survey_pipeline.artifacts import OutputStore, read_json, read_table
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.settings import IngestSettings, Params, ValidateSettings, load_params, parse_section
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.ingest import stage as ingest
from survey_pipeline.stages.validate import expectations
from survey_pipeline.stages.validate import stage as validate

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params(ROOT / "params.yaml").model_copy(
    update={
        "ingest": IngestSettings(raw_dir="data/raw", file_pattern="wij_panel_{wave}"),
        "validate_": ValidateSettings(max_quarantine_share=0.02),
    }
)


def _with_validate(**settings) -> Params:
    return PARAMS.model_copy(update={"validate_": ValidateSettings(**settings)})


def write_panel(base, spec, n, edits=None):
    raw_dir = base / "data" / "raw"
    raw_dir.mkdir(parents=True)
    for offset, wave in enumerate(spec.waves):
        frame = raw_frame(spec, wave, n, first_id=1 + offset * 7)
        if edits and wave in edits:
            edits[wave](frame)
        write_raw(frame, raw_dir / f"wij_panel_{wave}.sav", spec)


def test_routing_errors_in_one_percent_of_rows_are_quarantined_and_the_run_goes_on(tmp_path, spec):
    n = 300
    broken = {0: ("walk_in", -1.0), 101: ("familiarity", 1.0), 150: ("helped", -1.0)}

    def break_routing(frame):
        for row, (column, value) in broken.items():
            frame.loc[row, column] = value

    write_panel(tmp_path, spec, n, {2019: break_routing})
    store = OutputStore(tmp_path / "outputs")
    ingest_manifest = ingest.run(store, spec, PARAMS, tmp_path)
    manifest = validate.run(store, spec, PARAMS, tmp_path)
    store.commit()

    out = tmp_path / "outputs" / "validate"
    quarantine = read_table(out / "quarantine.parquet", contracts.ValidateQuarantine, spec)
    assert dict(zip(quarantine["source_row"], quarantine["reasons"])) == {
        1: "routed_to:walk_in",
        102: "routed_past:familiarity",
        151: "routed_to:helped",
    }
    assert set(quarantine["source_file"]) == {"wij_panel_2019.sav"}
    reasons = read_table(out / "quarantine_reasons.parquet", contracts.ValidateQuarantineReasons)
    assert len(reasons) == 3

    valid = read_table(out / "valid.parquet", contracts.ValidateValid, spec)
    assert len(valid) == 3 * n - 3
    assert ingest_manifest["rows"] == 3 * n
    metrics = read_json(out / "metrics.json", contracts.ValidateMetrics)
    assert metrics["waves"]["2019"] == {
        "rows_in": n,
        "rows_valid": n - 3,
        "rows_quarantined": 3,
        "quarantined_share": 0.01,
    }
    assert metrics["waves"]["2020"]["rows_quarantined"] == 0
    for wave in metrics["waves"].values():
        assert wave["rows_in"] == wave["rows_valid"] + wave["rows_quarantined"]
    assert manifest["rows_in"] == 3 * n and manifest["rows_quarantined"] == 3
    assert manifest["waves"] == metrics["waves"]

    gx = json.loads((out / "gx_result.json").read_text(encoding="utf-8"))
    assert gx["success"] is True and manifest["gx_success"] is True
    assert gx["statistics"]["raised_exceptions"] == 0
    assert gx["statistics"]["evaluated_expectations"] == manifest["gx_expectations"]
    rules = pd.Series([e["rule"] for e in gx["expectations"]]).value_counts().to_dict()
    assert rules == {
        "not_empty": 1,
        "unique_id": 1,
        "routed_past": sum(v.asked_of != "residents" for v in spec.variables.values()),
        "routed_to": len(spec.variables),
        "not_blank": len(spec.variables),
    }
    assert manifest["gx_level"] == "full"
    index = (out / "gx_data_docs" / "index.html").read_text(encoding="utf-8")
    pages = list((out / "gx_data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 1 and pages[0].relative_to(out / "gx_data_docs").as_posix() in index
    assert str(tmp_path) not in (out / "gx_result.json").read_text(encoding="utf-8")

    files = read_json(tmp_path / "outputs" / "ingest" / "files.json", contracts.IngestFiles)
    assert files["wij_panel_2019.sav"]["path"] == "data/raw/wij_panel_2019.sav"
    assert files["wij_panel_2019.sav"]["value_labels"]["heard"]["-1"] == "niet gevraagd"


def _gx_result(failed: list[str]) -> dict:
    """A checkpoint summary as `expectations.summarise` writes it, with these expectations failed."""
    rows = [
        {
            "suite": expectations.SUITE_NAME,
            "name": name,
            "rule": name.split(":")[0],
            "variable": name.split(":")[1],
            "expectation": "expect_column_values_to_be_in_set",
            "kwargs": {},
            "row_condition": None,
            "success": False,
            "raised_exception": False,
            "exception_message": None,
            "element_count": 30,
            "unexpected_count": 1,
        }
        for name in failed
    ]
    return {
        "success": not failed,
        "statistics": {
            "evaluated_expectations": len(rows),
            "successful_expectations": 0,
            "unsuccessful_expectations": len(rows),
            "raised_exceptions": 0,
        },
        "expectations": rows,
    }


def test_quarantine_workbook_gives_the_data_manager_every_reason_in_dutch(tmp_path, spec):
    broken = {0: ("walk_in", -1.0), 101: ("familiarity", 1.0), 150: ("helped", 7.0)}

    def break_rows(frame):
        for row, (column, value) in broken.items():
            frame.loc[row, column] = value

    write_panel(tmp_path, spec, 300, {2020: break_rows})
    store = OutputStore(tmp_path / "outputs")
    ingest.run(store, spec, PARAMS, tmp_path)
    without_gx = PARAMS.model_copy(update={"validate_": PARAMS.validate_.model_copy(update={"gx_level": "off"})})
    validate.run(store, spec, without_gx, tmp_path)
    store.commit()
    book = openpyxl.load_workbook(tmp_path / "outputs" / "validate" / "quarantine.xlsx")
    assert book.sheetnames == ["Rijen", "Redenen"]
    rows = {r[1]: r for r in book["Rijen"].iter_rows(min_row=2, values_only=True)}
    assert [c.value for c in book["Rijen"][1]][:5] == [
        "Bestand",
        "Rij",
        "Meting (bestand)",
        "Respondentnummer",
        "Redenen",
    ]
    assert sorted(rows) == [1, 102, 151]
    assert rows[1][4] == f"{validate.RULE_TEXT_NL['routed_to']} (walk_in)"
    assert rows[102][4] == f"{validate.RULE_TEXT_NL['routed_past']} (familiarity)"
    assert rows[151][4] == f"{validate.RULE_TEXT_NL['allowed_codes']} (helped)"
    header = [c.value for c in book["Rijen"][1]]
    assert rows[151][header.index("helped")] == 7 and rows[1][2] == 2020
    lines = [
        dict(zip([c.value for c in book["Redenen"][1]], r))
        for r in book["Redenen"].iter_rows(min_row=2, values_only=True)
    ]
    assert [(line["Rij"], line["Regel"], line["Variabele"], line["Gevonden code"]) for line in lines] == [
        (1, "routed_to", "walk_in", -1),
        (102, "routed_past", "familiarity", 1),
        (151, "allowed_codes", "helped", 7),
    ]
    assert lines[2]["Omschrijving variabele"] == spec.variables["helped"].label
    assert {line["Reden"] for line in lines} <= set(validate.RULE_TEXT_NL.values())


def test_every_rule_has_a_dutch_text():
    assert set(validate.RULE_TEXT_NL) == set(validate.RULES)


def test_too_many_quarantined_rows_stop_the_run_and_keep_old_outputs(tmp_path, spec, monkeypatch):
    def break_codes(frame):
        frame.loc[[0, 2, 4], "familiarity"] = 9.0

    write_panel(tmp_path, spec, 100, {2020: break_codes})
    store = OutputStore(tmp_path / "outputs")
    ingest.run(store, spec, PARAMS, tmp_path)
    with pytest.raises(InputError) as excinfo:
        validate.run(store, spec, PARAMS, tmp_path)
    assert str(excinfo.value) == (
        "rule 'max_quarantine_share': wave 2020: 3 of 100 rows quarantined (3.0%); most frequent: "
        "allowed_codes:familiarity (3); the limit is 2.0% (validate.max_quarantine_share); "
        f"the quarantine is kept in {tmp_path / 'outputs' / 'failed' / 'validate'}/ for inspection"
    )
    store.discard()
    assert not (tmp_path / "outputs" / "validate").exists()
    kept = pd.read_parquet(tmp_path / "outputs" / "failed" / "validate" / "quarantine.parquet")
    assert sorted(kept["source_row"]) == [1, 3, 5]
    kept_book = openpyxl.load_workbook(tmp_path / "outputs" / "failed" / "validate" / "quarantine.xlsx")
    assert [r[1] for r in kept_book["Rijen"].iter_rows(min_row=2, values_only=True)] == [1, 3, 5]
    kept_page = (tmp_path / "outputs" / "failed" / "validate" / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert "Great Expectations is niet uitgevoerd: de run is gestopt" in kept_page

    looser = _with_validate(max_quarantine_share=0.05)
    store = OutputStore(tmp_path / "outputs")
    ingest.run(store, spec, looser, tmp_path)
    passed = _gx_result([])
    monkeypatch.setattr(expectations, "run_checkpoint", lambda frame, spec, docs_dir=None: passed)
    manifest = validate.run(store, spec, looser, tmp_path)
    assert manifest["waves"]["2020"]["rows_quarantined"] == 3


@pytest.mark.parametrize("mode", ["error", "warn"])
def test_failed_checkpoint_policy(tmp_path, spec, monkeypatch, mode):
    write_panel(tmp_path, spec, 30)
    failed = _gx_result(["routed_to:walk_in"])
    monkeypatch.setattr(expectations, "run_checkpoint", lambda frame, spec, docs_dir=None: failed)
    params = _with_validate(max_quarantine_share=0.02, gx_failure=mode)
    store = OutputStore(tmp_path / "outputs")
    ingest.run(store, spec, params, tmp_path)
    if mode == "error":
        with pytest.raises(InputError) as excinfo:
            validate.run(store, spec, params, tmp_path)
        assert excinfo.value.rule == "gx_checkpoint"
        assert "failed 1 of 1 expectation(s) on the valid rows: routed_to:walk_in" in str(excinfo.value)
    else:
        manifest = validate.run(store, spec, params, tmp_path)
        assert manifest["gx_success"] is False and manifest["gx_failed"] == 1


SMALL_SPEC = {
    "spec_version": 1,
    "survey": {
        "id": "mini",
        "title": "mini",
        "population_label": "bewoners",
        "respondent_id": "resp_id",
        "wave_variable": "wave",
        "waves": [2019],
    },
    "missing_codes": {
        "dont_know": {"code": 99, "label": "weet niet"},
        "no_answer": {"code": 98, "label": "geen antwoord"},
        "not_asked": {"code": -1, "label": "niet gevraagd"},
    },
    "groups": {
        "residents": {"label": "alle bewoners"},
        "heard_of_wij": {"label": "die WIJ kennen", "when": {"heard": [1]}},
    },
    "background": {"sex": {"label": "Geslacht", "codes": {1: "man", 2: "vrouw"}}},
    "variables": {
        "heard": {"label": "Gehoord?", "codes": {1: "ja", 2: "nee"}, "asked_of": "residents"},
        "contact": {"label": "Contact?", "codes": {1: "ja", 2: "nee"}, "asked_of": "heard_of_wij"},
    },
    "indicators": [
        {
            "id": "heard",
            "kind": "prestatie",
            "variable": "heard",
            "success": [1],
            "base": "residents",
            "dont_know": "exclude",
            "label": "% gehoord",
        }
    ],
}


def test_checkpoint_catches_what_slipped_through_and_counts_raised_expectations_as_failed(tmp_path):
    mini = parse_spec(SMALL_SPEC)
    frame = valid_responses(mini, 2019, 8)
    frame[mini.respondent_id] = frame[mini.respondent_id].astype("int64")
    frame[mini.wave_variable] = frame[mini.wave_variable].astype("int64")
    passed = expectations.run_checkpoint(frame, mini, None)
    assert passed["success"] is True
    assert passed["statistics"]["unsuccessful_expectations"] == 0

    routed_past = frame.index[frame["heard"] != 1][0]
    frame.loc[routed_past, "contact"] = 1.0
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    result = expectations.run_checkpoint(frame, mini, tmp_path / "docs")
    failed = {(e["rule"], e["variable"], e["raised_exception"]) for e in result["expectations"] if not e["success"]}
    assert failed == {("unique_id", "resp_id", False), ("routed_past", "contact", False)}
    assert result["success"] is False
    assert (tmp_path / "docs" / "index.html").exists()

    raised = expectations.run_checkpoint(frame.drop(columns=["contact"]), mini, None)
    failed = {(e["rule"], e["variable"], e["raised_exception"]) for e in raised["expectations"] if not e["success"]}
    assert {f for f in failed if f[1] == "contact"} == {
        ("routed_past", "contact", True),
        ("routed_to", "contact", True),
        ("not_blank", "contact", True),
    }
    assert raised["statistics"]["raised_exceptions"] == 3
    # a missing filter column: the rules it routes cannot be evaluated, and fail
    no_filter = expectations.run_checkpoint(frame.drop(columns=["heard"]), mini, None)
    failed = {(e["rule"], e["variable"], e["raised_exception"]) for e in no_filter["expectations"] if not e["success"]}
    assert {f for f in failed if f[1] == "contact"} == {
        ("routed_past", "contact", True),
        ("routed_to", "contact", True),
        ("not_blank", "contact", True),
    }


def test_routing_expectations_read_precomputed_boolean_columns(spec):
    frame = valid_responses(spec, 2019, 40)
    checked = expectations.checkpoint_frame(frame, spec)
    rules = expectations.routing_rules(spec)
    conditions = {r.rows for r in rules if r.rows is not None}
    assert set(checked.columns) == {"file_wave", spec.respondent_id, *spec.variables, *conditions}
    for rule in rules:
        if rule.rows is not None:
            assert checked[rule.rows].dtype == bool
            # the same rows as the routing of the question's group, within its waves
            group = spec.groups[spec.variables[rule.variable].asked_of]
            asked = group.mask(frame) & frame["file_wave"].isin(rule.waves).to_numpy()
            measured = frame["file_wave"].isin(rule.waves).to_numpy()
            expected = measured & ~asked if rule.rule == "routed_past" else asked
            assert (checked[rule.rows].to_numpy() == expected).all(), rule


def test_the_checkpoint_selects_the_rows_of_a_routing_group_once_and_still_fails_on_one_broken_question(spec):
    frame = stacked(spec, 60)
    frame[spec.respondent_id] = frame[spec.respondent_id].astype("int64")
    frame[spec.wave_variable] = frame[spec.wave_variable].astype("int64")
    checked = expectations.FilteredOnce(expectations.checkpoint_frame(frame, spec))
    # familiarity and walk_in are asked of the same group in the same waves: one selection serves both
    same = [checked.query(f"`routed_to__{name}` == True") for name in ("familiarity", "walk_in")]
    assert same[0] is same[1] and same[0] is checked.query("`routed_to__familiarity` == True")
    pd.testing.assert_frame_equal(same[0], pd.DataFrame(checked).query("`routed_to__walk_in` == True"))
    past = checked.query("`routed_past__walk_in__heard` == True")
    assert past is not same[0] and len(past) + len(same[0]) == len(frame)

    routed_to = frame.index[(frame["heard"] == 1).to_numpy()]
    frame.loc[routed_to[3], "walk_in"] = spec.variables["walk_in"].missing.not_asked.code
    frame.loc[routed_to[5], "familiarity"] = float("nan")
    result = expectations.run_checkpoint(frame, spec, None)
    failed = {
        e["name"]: (e["unexpected_count"], e["element_count"]) for e in result["expectations"] if not e["success"]
    }
    assert failed == {"routed_to:walk_in": (1, len(routed_to)), "not_blank:familiarity": (1, len(routed_to))}
    assert result["success"] is False


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"max_quarantine_share": 1.5}, "validate.max_quarantine_share"),
        ({"max_quarantine_share": "2%"}, "validate.max_quarantine_share"),
        ({"gx_failure": "ignore"}, "validate.gx_failure"),
        ({"gx_level": "docs"}, "validate.gx_level"),
        ({"max_share": 0.1}, "validate.max_share"),
    ],
)
def test_bad_validate_params(section, key):
    with pytest.raises(ParamsError) as excinfo:
        parse_section(ValidateSettings, section, "validate")
    assert excinfo.value.key == key


def test_gx_level_off_as_written_in_params_yaml():
    assert parse_section(ValidateSettings, yaml.safe_load("gx_level: off"), "validate").gx_level == "off"
    assert parse_section(ValidateSettings, yaml.safe_load("gx_level: checkpoint"), "validate").gx_level == "checkpoint"


def test_validate_params_defaults():
    assert parse_section(ValidateSettings, {}, "validate") == ValidateSettings(
        max_quarantine_share=0.02, gx_failure="error", gx_level="full"
    )
    assert parse_section(ValidateSettings, {"max_quarantine_share": 0}, "validate").max_quarantine_share == 0.0


def test_data_docs_count_failures_without_showing_respondent_values(tmp_path):
    mini = parse_spec(SMALL_SPEC)
    frame = valid_responses(mini, 2019, 8, first_id=987650)
    frame.loc[3, mini.respondent_id] = frame.loc[2, mini.respondent_id]
    frame.loc[frame.index[frame["heard"] != 1][0], "contact"] = 77.0  # routed past, yet an answer
    result = expectations.run_checkpoint(frame, mini, tmp_path / "docs")
    failed = {e["name"]: e["unexpected_count"] for e in result["expectations"] if not e["success"]}
    assert failed == {"unique_id:resp_id": 2, "routed_past:contact": 1}
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    html = pages[0].read_text(encoding="utf-8")
    assert "2 unexpected values found" in html and "1 unexpected values found" in html
    # GX gives page elements random UUIDs, which may contain "77"; look for the values as tokens.
    visible = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", html)
    for value in ("987652", "77"):
        assert not re.search(rf"(?<![\w.]){value}(?:\.0+)?(?![\w.])", visible), value
