"""A wave missing from a copy of the demo project: an error unless the spec declares it not measured.

Undeclared, the run stops at ingest (exit 2) and leaves no outputs; declared in
`survey.not_measured`, the run succeeds and every printed form of the annual-report
table shows "- (<reason>)" in that wave's column, and the method note says why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.report.markdown import escape

ROOT = Path(__file__).resolve().parents[1]
SPEC = Path("questionnaires") / "wij_monitor.yaml"
REASON = "i.v.m. COVID"
pytestmark = pytest.mark.slow


def _digest(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _declare_not_measured(project: Path, wave: int, reason: str) -> None:
    """Move `wave` from survey.waves to survey.not_measured, and out of every question's waves and the fieldwork."""
    path = project / SPEC
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["survey"]["waves"].remove(wave)
    raw["survey"]["not_measured"] = {wave: reason}
    raw["survey"].get("method", {}).get("waves", {}).pop(wave, None)  # no fieldwork in a wave not held
    for body in raw["variables"].values():
        if wave in body.get("waves", []):
            body["waves"].remove(wave)
        body.get("not_measured", {}).pop(wave, None)
        if body.get("not_measured") == {}:
            del body["not_measured"]
    # a trend needs a question asked in three waves (a spec rule): with two left it goes
    raw["analyses"] = [analysis for analysis in raw.get("analyses", []) if analysis["kind"] != "trend"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    receipt = project / "data" / "raw" / "receipt.csv"
    if receipt.exists():  # the provider delivers nothing for a wave that was not held
        lines = receipt.read_text(encoding="utf-8").splitlines(keepends=True)
        receipt.write_text("".join(line for line in lines if not line.startswith(f"{wave},")), encoding="utf-8")


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory) -> Path:
    """The demo project (spec, params, a 400-per-wave synthetic panel), before any run."""
    project = tmp_path_factory.mktemp("demo")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / SPEC, project / SPEC)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # 400 respondents over 30 wijken leave cells too sparse for the demo's trimming bounds.
    params["weight"].update(trim_lower=None, trim_upper=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    write_demo(
        load_spec(project / SPEC), project / "data" / "raw", project / "data" / "population", n_per_wave=400, seed=7
    )
    return project


def _copy(demo_project: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(demo_project, project)
    (project / "data" / "raw" / "wij_panel_2020.sav").unlink()
    return project


def test_a_wave_without_its_file_stops_the_run(demo_project, tmp_path, capsys):
    project = _copy(demo_project, tmp_path)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "survey-pipeline: error: data/raw, rule 'missing_wave': no raw file for wave(s) 2020 of survey.waves in the "
        "spec: expected wij_panel_2020.sav (or .zsav, .csv, .parquet) in the folder; a wave deliberately not "
        "measured belongs in survey.not_measured with its reason"
    ]
    assert not (project / "outputs" / "ingest").exists() and not (project / "outputs" / "report").exists()


@pytest.fixture(scope="module")
def declared_run(demo_project, tmp_path_factory) -> Path:
    """The demo project without the 2020 file, 2020 declared not measured, after `survey-pipeline run`."""
    project = _copy(demo_project, tmp_path_factory.mktemp("declared"))
    _declare_not_measured(project, 2020, REASON)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    return project


def test_a_wave_declared_not_measured_shows_its_reason_in_every_form_of_the_table(declared_run):
    report = declared_run / "outputs" / "report"
    spec = load_spec(declared_run / SPEC)
    n_indicators = len(spec.indicators)
    shown = f"- ({REASON})"

    assert json.loads((report / "checks.json").read_text(encoding="utf-8"))["waves"] == [2019, 2021]
    assert set(pd.read_parquet(report / "indicators.parquet")["wave"]) == {2019, 2021}

    html = (report / "jaarverslag.html").read_text(encoding="utf-8")
    assert html.count(f'<td class="num">{shown}</td>') == n_indicators

    blocks = (report / "jaarverslag.md").read_text(encoding="utf-8").split("\n\n")
    annual = next(block for block in blocks if "Behaald 2020" in block).splitlines()
    column = annual[0].split(" | ").index("**Behaald 2020**")
    rows = [line.split(" | ") for line in annual if not line.startswith(("| **", "| ---", "| *"))]
    rows = [row for row in rows if row[column].strip()]  # not the stems (no cells)
    # a registration figure is not a survey wave: its 2020 value stands (demo: counts, "-" where none)
    registrations = {f"| {escape(r.short_label or r.label)}" for r in spec.registrations}
    survey_rows = [row for row in rows if row[0].replace("| \u2022 ", "| ") not in registrations]
    assert len(survey_rows) == n_indicators and all(row[column] == shown for row in survey_rows)
    assert len(rows) - len(survey_rows) == len(spec.registrations)
    assert all(row[column] != shown for row in rows if row[0].replace("| \u2022 ", "| ") in registrations)

    sheet = openpyxl.load_workbook(report / "tabellen.xlsx")["Jaarverslag"]
    cells = [c for row in sheet.iter_rows() for c in row if c.value == shown]
    assert len(cells) == n_indicators and len({c.column for c in cells}) == 1 and cells[0].data_type == "s"

    note = (report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert f"In 2020 is niet gemeten ({REASON})." in note


def test_an_achieved_wave_the_spec_does_not_know_is_exit_2_and_keeps_the_report(declared_run, capsys):
    before = _digest(declared_run / "outputs")
    params_path = declared_run / "params.yaml"
    good = params_path.read_text(encoding="utf-8")
    params = yaml.safe_load(good)
    params["report"]["achieved_count"] = 4
    params_path.write_text(yaml.safe_dump(params), encoding="utf-8")
    try:
        assert cli.main(["--project-dir", str(declared_run), "--quiet", "report"]) == 2
    finally:
        params_path.write_text(good, encoding="utf-8")
    assert capsys.readouterr().err.splitlines() == [
        f"survey-pipeline: error: {params_path}, rule 'params': params key 'report.year': the window Behaald "
        "2018-2021 (report.year 2022, report.achieved_count 4) holds wave 2018, which is neither measured "
        "(survey.waves [2019, 2021]) nor declared not measured (survey.not_measured) in the spec"
    ]
    assert _digest(declared_run / "outputs") == before
