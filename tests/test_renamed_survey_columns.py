"""Survey-specific names come from the spec: a copy of the demo whose respondent id and
area variable are renamed (spec, params, raw files, population files) runs end to end,
and a spec that names a respondent id the raw files lack stops with one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import FILE_LABEL, write_demo
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = Path("questionnaires") / "wij_monitor.yaml"
NEW_ID, NEW_AREA = "respondentnummer", "buurt"
pytestmark = pytest.mark.slow


def _renamed(names: list[str], old: str, new: str) -> list[str]:
    return [new if name == old else name for name in names]


def _rename_in_spec(path: Path, old_id: str, old_area: str) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["survey"]["respondent_id"] = NEW_ID
    raw["survey"]["area_variable"] = NEW_AREA
    raw["background"] = {NEW_AREA if name == old_area else name: body for name, body in raw["background"].items()}
    for analysis in raw.get("analyses", []):  # breakdowns and predictors name background variables
        for key in ("breakdowns", "predictors"):
            if key in analysis:
                analysis[key] = _renamed(analysis[key], old_area, NEW_AREA)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory) -> tuple[Path, str, str]:
    """The demo project (400 per wave) with its original names; returns (project, id, area variable)."""
    project = tmp_path_factory.mktemp("renamed")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / SPEC, project / SPEC)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["weight"].update(trim_lower=None, trim_upper=None)  # 400 respondents leave cells too sparse for trimming
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    spec = load_spec(project / SPEC)
    write_demo(spec, project / "data" / "raw", project / "data" / "population", n_per_wave=400, seed=11)
    assert spec.area_variable is not None
    return project, spec.respondent_id, spec.area_variable


def _copy(demo: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(demo, project)
    return project


def test_renamed_id_and_area_variable_run_end_to_end(demo_copy, tmp_path):
    demo, old_id, old_area = demo_copy
    project = _copy(demo, tmp_path)
    _rename_in_spec(project / SPEC, old_id, old_area)
    spec = load_spec(project / SPEC)
    for path in sorted((project / "data" / "raw").glob("*.sav")):
        frame, _ = pyreadstat.read_sav(str(path), user_missing=True)
        frame = frame.rename(columns={old_id: NEW_ID, old_area: NEW_AREA})
        write_sav(frame, path, spec, f"{FILE_LABEL} (renamed)")
    population = project / "data" / "population"
    margins = pd.read_csv(population / "margins.csv")
    margins["variable"] = margins["variable"].replace({old_area: NEW_AREA})
    margins.to_csv(population / "margins.csv", index=False)
    for keyed in ("cells.csv", "wijk_covariates.csv"):  # keyed by the area codes, column named after the area variable
        pd.read_csv(population / keyed).rename(columns={old_area: NEW_AREA}).to_csv(population / keyed, index=False)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["weight"]["margins"] = _renamed(params["weight"]["margins"], old_area, NEW_AREA)
    params["weight"]["poststratify_cells"] = _renamed(params["weight"]["poststratify_cells"], old_area, NEW_AREA)
    params["estimate"]["breakdowns"] = _renamed(params["estimate"]["breakdowns"], old_area, NEW_AREA)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0

    outputs = project / "outputs"
    valid = pd.read_parquet(outputs / "validate" / "valid.parquet")
    weights = pd.read_parquet(outputs / "weight" / "weights.parquet")
    assert {NEW_ID, NEW_AREA} <= set(valid.columns) and not {old_id, old_area} & set(valid.columns)
    assert NEW_ID in weights.columns and old_id not in weights.columns
    indicators = pd.read_parquet(outputs / "report" / "indicators.parquet")
    assert NEW_AREA in set(indicators["breakdown"]) and old_area not in set(indicators["breakdown"])
    for name in ("indicators", "changes", "distributions"):
        assert (outputs / "report" / f"{name}.parquet").is_file()
    assert (outputs / "report" / "jaarverslag.html").is_file()
    assert list((outputs / "report" / "figures").glob(f"{NEW_AREA}_*.svg"))  # the area figures follow the spec
    small_area = pd.read_parquet(outputs / "estimate" / "sae.parquet")  # the small-area estimates too
    assert len(small_area) and set(small_area["area"]) == set(spec.background[NEW_AREA].codes)
    assert (outputs / "report" / "wijkcijfers.parquet").is_file()
    note = (outputs / "report" / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert f"per {spec.background[NEW_AREA].label.lower()}" in note


def test_spec_id_missing_from_the_data_names_column_and_file(demo_copy, tmp_path, capsys):
    demo, _old_id, _old_area = demo_copy
    project = _copy(demo, tmp_path)
    raw = yaml.safe_load((project / SPEC).read_text(encoding="utf-8"))
    raw["survey"]["respondent_id"] = NEW_ID  # the raw files still call it old_id
    (project / SPEC).write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")

    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 2

    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("survey-pipeline: error:")]
    assert len(errors) == 1, errors
    assert (
        f"wij_panel_2019.sav, variable '{NEW_ID}': variable is missing from the file (the spec's survey.respondent_id)"
    ) in errors[0], errors[0]
    assert not (project / "outputs" / "ingest").exists()
