"""A new wave, added the way the README says ("Een nieuwe meting toevoegen"), end to end through the CLI.

A copy of the demo project gets a 2022 wave: the 2021 file re-labelled (wave 2022, new respondent
ids), the population files of 2021 repeated for 2022, the wave in the spec and the receipt. With the
report year left at 2022 the run stops before any stage (the measured wave 2022 is outside the
window); with the year moved on it runs and the title, the columns, the method note and the changes
table all include 2022.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
import yaml
from report_html import parse_report

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path("questionnaires") / "wij_monitor.yaml"
NEW, PREVIOUS = 2022, 2021
ID_OFFSET = 10_000_000  # the demo's ids have six digits: the new wave's ids are new respondents
pytestmark = pytest.mark.slow


def _edit_yaml(path: Path, edit) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _add_wave_to_spec(raw: dict) -> None:
    """Step 3: the wave in survey.waves, its fieldwork and invited count in survey.method, in the waves of every
    question asked in it, targets for the new years."""
    raw["survey"]["waves"].append(NEW)
    raw["survey"]["method"]["waves"][NEW] = {"fieldwork": "september-oktober 2022", "invited": 6100}
    for body in raw["variables"].values():
        if PREVIOUS in body.get("waves", []):
            body["waves"].append(NEW)
    for indicator in raw["indicators"]:
        if 2023 in indicator["targets"]:
            indicator["targets"][2024] = indicator["targets"][2023]


def _repeat_rows(path: Path, source: int, wave: int) -> None:
    table = pd.read_csv(path)
    table = pd.concat([table, table[table["wave"] == source].assign(wave=wave)], ignore_index=True)
    table.to_csv(path, index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The demo project (400 respondents per wave) with the 2022 wave's files dropped in, spec not yet changed."""
    project = tmp_path_factory.mktemp("new_wave")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / SPEC, project / SPEC)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["weight"].update(trim_lower=None, trim_upper=None)  # 400 over 30 wijken: cells too sparse to trim
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    raw_dir, population = project / "data" / "raw", project / "data" / "population"
    write_demo(load_spec(project / SPEC), raw_dir, population, n_per_wave=400, seed=7)

    # Step 1: the wave's file (2021 re-labelled, new ids) and its row in the receipt.
    frame, _ = pyreadstat.read_sav(str(raw_dir / f"wij_panel_{PREVIOUS}.sav"), user_missing=True)
    frame = frame.assign(wave=float(NEW), resp_id=frame["resp_id"] + ID_OFFSET)
    _edit_yaml(project / SPEC, _add_wave_to_spec)
    write_sav(frame, raw_dir / f"wij_panel_{NEW}.sav", load_spec(project / SPEC), f"WIJ-monitor ({NEW})")
    with (raw_dir / "receipt.csv").open("a", encoding="utf-8") as receipt:
        receipt.write(f'{NEW},{len(frame)},"test: the {PREVIOUS} file re-labelled"\n')
    # Step 2: the population of the new year (here: that of the year before).
    for name in ("margins.csv", "cells.csv", "wijk_covariates.csv"):
        _repeat_rows(population / name, PREVIOUS, NEW)
    return project


def test_a_new_wave_outside_the_report_window_stops_the_run(project, capsys):
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        "params key 'report.year': measured wave 2022 (survey.waves) is outside the window Behaald 2019-2021 "
        "(report.year 2022, report.achieved_count 3): move the window or leave the wave out on purpose under "
        "report.exclude_waves with the reason"
    )
    assert not (project / "outputs" / "ingest").exists()


@pytest.fixture(scope="module")
def finished(project) -> Path:
    """Step 4 and 5: the report year moved on (the 2023 budget), then `survey-pipeline run`."""
    _edit_yaml(project / "params.yaml", lambda raw: raw["report"].update(year=2023, achieved_count=4))
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    return project / "outputs" / "report"


def test_the_report_shows_the_new_wave(finished):
    parsed = parse_report((finished / "jaarverslag.html").read_text(encoding="utf-8"))
    page = (finished / "jaarverslag.md").read_text(encoding="utf-8")
    assert page.startswith("# WIJ-monitor bewonerspanel gemeente Groningen: indicatoren 2019\u20132022\n")
    columns = ["Behaald 2019", "Behaald 2020", "Behaald 2021", "Behaald 2022", "Beoogd 2023", "Beoogd 2024"]
    assert parsed.headers == columns
    indicators = pd.read_parquet(finished / "indicators.parquet")
    heard = indicators[(indicators["indicator_id"] == "heard") & (indicators["breakdown"] == "total")]
    assert parsed.rows["heard"][4] == f"{round(100 * heard.set_index('wave').loc[NEW, 'estimate'])}%"
    assert parsed.rows["heard"][5:] == [">80%", ">80%"]  # the new target year from the spec
    assert parsed.rows["caregiver_burdened"][4] == "-"  # not asked in 2022
    assert parsed.rows["wmo_quick"][2] == "- (i.v.m. COVID)"


def test_the_method_note_and_the_changes_include_the_new_wave(finished):
    note = (finished / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "*Metingen 2019, 2020, 2021 en 2022*" in note
    assert "| 2022 |" in note  # a row of the response table
    changes = pd.read_parquet(finished / "changes.parquet")
    totals = changes[(changes["breakdown"] == "total") & (changes["indicator_id"] == "heard")]
    assert (PREVIOUS, NEW) in set(zip(totals["wave_from"], totals["wave_to"]))
    page = (finished / "jaarverslag.md").read_text(encoding="utf-8")
    assert "2021\u20132022" in page.split("## Veranderingen tussen metingen", 1)[1]
