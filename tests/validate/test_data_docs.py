"""The validation page (outputs/validate/data_docs/index.html): offline, counts per rule as in the
quarantine, the checkpoint per expectation suite, the same bytes for the same inputs."""

from __future__ import annotations

import re
from html import unescape

import pandas as pd
from test_validate_stage import PARAMS, write_panel

from survey_pipeline import contracts
from survey_pipeline.artifacts import OutputStore, read_json, read_table
from survey_pipeline.stages.ingest import stage as ingest
from survey_pipeline.stages.validate import data_docs
from survey_pipeline.stages.validate import stage as validate

CHECKPOINT = PARAMS.model_copy(update={"validate_": PARAMS.validate_.model_copy(update={"gx_level": "checkpoint"})})


def _break_rows(frame: pd.DataFrame) -> None:
    frame.loc[0, "walk_in"] = -1.0  # routed_to
    frame.loc[1, ["familiarity", "helped"]] = 7.0  # allowed_codes on two variables: one row for the rule
    frame.loc[2, "familiarity"] = 9.0
    frame.loc[3, "helped"] = -1.0


def _rows(page: str, pattern: str) -> dict[tuple[str, ...], list[str]]:
    """Table rows whose attributes match `pattern` (its groups are the key) -> their cells."""
    found = {}
    for match in re.finditer(rf"<tr {pattern}>(.*?)</tr>", page):
        found[match.groups()[:-1]] = [
            unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(match.lastindex))
        ]
    return found


def test_the_page_works_offline_counts_as_the_quarantine_and_is_reproducible(tmp_path, spec):
    write_panel(tmp_path, spec, 400, {2019: _break_rows})
    store = OutputStore(tmp_path / "outputs")
    ingest.run(store, spec, CHECKPOINT, tmp_path)
    validate.run(store, spec, CHECKPOINT, tmp_path)
    store.commit()
    out = tmp_path / "outputs" / "validate"
    first = (out / "data_docs" / "index.html").read_bytes()
    page = first.decode("utf-8")

    # offline: nothing loaded from elsewhere, no scripts
    assert not re.search(r"https?:|//[a-z]", page, flags=re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and " src=" not in page
    assert '<html lang="nl">' in page and "Quarantaine per regel" in page

    # quarantined rows per rule and per rule and variable: the quarantine reasons, counted
    quarantine = read_table(out / "quarantine.parquet", contracts.ValidateQuarantine, spec)
    rules_of_row = quarantine["reasons"].str.split("; ").map(lambda keys: {key.split(":")[0] for key in keys})
    per_rule = rules_of_row.explode().value_counts()
    shown = _rows(page, r'data-rule="([^"]+)"()')
    assert {key[0]: int(cells[-1]) for key, cells in shown.items()} == per_rule.to_dict()
    assert per_rule["allowed_codes"] == 2  # row 2 breaks it on two variables: one row
    reasons = read_table(out / "quarantine_reasons.parquet", contracts.ValidateQuarantineReasons)
    per_variable = reasons.groupby(["rule", "column"]).size()
    shown = _rows(page, r'data-rule="([^"]+)" data-variable="([^"]+)"')
    assert {key: int(cells[-1]) for key, cells in shown.items()} == per_variable.to_dict()
    assert shown[("allowed_codes", "familiarity")][-4:] == ["2", "0", "0", "2"]  # per wave, then the total

    # the checkpoint per suite: every expectation with its counts
    gx = read_json(out / "gx_result.json", contracts.GxResult)
    n = len(gx["expectations"])
    assert "<h3>Expectation suite \u201cresponses\u201d</h3>" in page
    assert f"{n} van {n} verwachtingen geslaagd" in page
    assert page.count("<td>ja</td>") == n

    # the same inputs give the same bytes
    store = OutputStore(tmp_path / "outputs")
    validate.run(store, spec, CHECKPOINT, tmp_path)
    store.commit()
    assert (out / "data_docs" / "index.html").read_bytes() == first


def test_counts_carry_dutch_thousands_separators_as_in_the_report(spec):
    counts = {"rows_in": 12952, "rows_valid": 12939, "rows_quarantined": 13, "quarantined_share": 13 / 12952}
    reasons = pd.DataFrame(columns=["source_file", "source_row", "rule", "column", "message"])
    quarantine = pd.DataFrame(columns=["source_file", "source_row", "file_wave", "reasons"])
    page = data_docs.render_page(spec, {"waves": {"2019": counts}, "total": counts}, reasons, quarantine, {}, None)
    first_wave = re.search(r"<tr><td>2019</td>(.*?)</tr>", page).group(1)
    assert [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", first_wave)][:3] == ["12.952", "12.939", "13"]
