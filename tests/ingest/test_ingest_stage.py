"""Ingest stage: file discovery, wave from the file name, params, stacking and files.json."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import contracts
from survey_pipeline.artifacts import PROJECT_ROOT, OutputStore, read_json, read_table
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.sav import write_sav
from survey_pipeline.settings import IngestSettings, load_params, parse_section
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest import stage as ingest
from survey_pipeline.stages.ingest.stage import find_raw_files, wave_from_name

PARAMS = load_params(PROJECT_ROOT / "params.yaml").model_copy(
    update={"ingest": IngestSettings(raw_dir="raw", file_pattern="wij_panel_{wave}")}
)


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


def wave_frame(spec, wave, n=6, first_id=1):
    """Columns of a raw file of `wave`; codes need not follow routing here."""
    frame = pd.DataFrame({"resp_id": np.arange(first_id, first_id + n, dtype="float64"), "wave": float(wave)})
    for name in spec.background:
        frame[name] = 1.0
    for variable in spec.variables_in_wave(wave):
        frame[variable.name] = -1.0
    return frame


@pytest.mark.parametrize(
    ("name", "wave"),
    [
        ("wij_panel_2019.sav", 2019),
        ("wij_panel_2021.zsav", 2021),
        ("wij_panel_2020.csv", 2020),
        ("WIJ_PANEL_2020.csv", None),
        ("wij_panel_2019_old.sav", None),
        ("backup_wij_panel_2019.sav", None),
        ("wij_panel_.sav", None),
    ],
)
def test_wave_from_name(name, wave):
    assert wave_from_name(name, "wij_panel_{wave}") == wave


def test_wave_from_name_with_suffix_in_pattern():
    assert wave_from_name("monitor_2020_final.parquet", "monitor_{wave}_final") == 2020


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"raw_dir": "data/raw", "file_pattern": "wij_panel"}, "ingest.file_pattern"),
        ({"raw_dir": "data/raw", "file_pattern": "{wave}_{wave}"}, "ingest.file_pattern"),
        ({"file_pattern": "wij_panel_{wave}"}, "ingest.raw_dir"),
        ({"raw_dir": "data/raw", "file_pattern": "wij_panel_{wave}", "glob": "*"}, "ingest.glob"),
        (None, "ingest"),
    ],
)
def test_bad_params(section, key):
    with pytest.raises(ParamsError) as excinfo:
        parse_section(IngestSettings, section, "ingest")
    assert excinfo.value.key == key


def test_find_raw_files_skips_other_and_hidden_files(tmp_path):
    for name in ("wij_panel_2019.sav", "wij_panel_2020.CSV", "README.md", ".~lock.wij_panel_2019.csv#", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_raw_files(tmp_path)] == ["wij_panel_2019.sav", "wij_panel_2020.CSV"]


def test_no_raw_files_and_no_folder(tmp_path):
    with pytest.raises(InputError) as excinfo:
        find_raw_files(tmp_path)
    assert excinfo.value.rule == "raw_dir" and "no raw data files" in str(excinfo.value)
    with pytest.raises(InputError) as excinfo:
        find_raw_files(tmp_path / "missing")
    assert "does not exist" in str(excinfo.value)


def test_run_stacks_every_format_and_writes_files_json(tmp_path, spec):
    raw = tmp_path / "raw"
    raw.mkdir()
    first = wave_frame(spec, 2019)
    first["base_weight"] = 1.5
    write_sav(first, raw / "wij_panel_2019.sav", spec, "Panel 2019")
    wave_frame(spec, 2020, n=4).to_csv(raw / "wij_panel_2020.csv", index=False)
    wave_frame(spec, 2021, n=5).to_parquet(raw / "wij_panel_2021.parquet")
    (raw / "README.md").write_text("demo", encoding="utf-8")

    store = OutputStore(tmp_path / "outputs")
    manifest = ingest.run(store, spec, PARAMS, tmp_path)
    store.commit()

    assert manifest == {
        "files": 3,
        "rows": 15,
        "rows_per_wave": {"2019": 6, "2020": 4, "2021": 5},
        "warnings": 0,
        "receipt_checked_waves": [],
    }
    responses = read_table(tmp_path / "outputs" / "ingest" / "responses.parquet", contracts.IngestResponses, spec)
    expected_columns = ["source_file", "source_row", "file_wave", "resp_id", "wave", *spec.background, *spec.variables]
    assert list(responses.columns) == [*expected_columns, "base_weight"]
    assert responses.groupby("source_file")["source_row"].max().to_dict() == {
        "wij_panel_2019.sav": 6,
        "wij_panel_2020.csv": 4,
        "wij_panel_2021.parquet": 5,
    }
    assert responses["base_weight"].isna().sum() == 9
    assert responses.loc[responses["file_wave"] == 2021, "caregiver"].isna().all()
    assert (responses.loc[responses["file_wave"] == 2020, "caregiver"] == -1).all()

    files = read_json(tmp_path / "outputs" / "ingest" / "files.json", contracts.IngestFiles)
    assert sorted(files) == ["wij_panel_2019.sav", "wij_panel_2020.csv", "wij_panel_2021.parquet"]
    sav = files["wij_panel_2019.sav"]
    assert sav["path"] == "raw/wij_panel_2019.sav"
    assert sav["sha256"] == hashlib.sha256((raw / "wij_panel_2019.sav").read_bytes()).hexdigest()
    assert (sav["n_rows"], sav["wave"], sav["file_label"], sav["format"]) == (6, 2019, "Panel 2019", "spss")
    assert sav["variable_labels"]["heard"] == spec.variables["heard"].label
    assert sav["value_labels"]["wijk"]["30"] == "Ten Boer"
    assert sav["warnings"] == [] and sav["errors"] == []
    assert files["wij_panel_2020.csv"]["value_labels"] == {}
    assert {name: entry["receipt"] for name, entry in files.items()} == dict.fromkeys(files)


def test_run_keeps_warnings_in_files_json(tmp_path, spec):
    raw = tmp_path / "raw"
    raw.mkdir()
    for wave in spec.waves:
        frame = wave_frame(spec, wave)
        if wave == 2020:
            frame["extra_column"] = 3.0
        write_sav(frame, raw / f"wij_panel_{wave}.sav", spec, f"Panel {wave}")
    store = OutputStore(tmp_path / "outputs")
    manifest = ingest.run(store, spec, PARAMS, tmp_path)
    assert manifest["warnings"] == 1
    files = read_json(store.reading("ingest") / "files.json", contracts.IngestFiles)
    assert files["wij_panel_2020.sav"]["warnings"] == [
        "wij_panel_2020.sav, variable 'extra_column': not in the spec; ignored"
    ]


def test_a_wave_of_the_spec_without_a_raw_file_is_an_error(tmp_path, spec):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_sav(wave_frame(spec, 2020), raw / "wij_panel_2020.sav", spec, "Panel 2020")
    store = OutputStore(tmp_path / "outputs")
    with pytest.raises(InputError) as excinfo:
        ingest.run(store, spec, PARAMS, tmp_path)
    assert str(excinfo.value) == (
        "raw, rule 'missing_wave': no raw file for wave(s) 2019, 2021 of survey.waves in the spec: expected "
        "wij_panel_2019.sav, wij_panel_2021.sav (or .zsav, .csv, .parquet) in the folder; a wave deliberately "
        "not measured belongs in survey.not_measured with its reason"
    )
    assert not (store.reading("ingest") / "responses.parquet").exists()


def test_run_with_a_bad_file_writes_nothing(tmp_path, spec):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_sav(wave_frame(spec, 2019).drop(columns=["age_group"]), raw / "wij_panel_2019.sav", spec, "x")
    store = OutputStore(tmp_path / "outputs")
    with pytest.raises(InputError) as excinfo:
        ingest.run(store, spec, PARAMS, tmp_path)
    assert str(excinfo.value) == (
        "wij_panel_2019.sav, column 'age_group', rule 'missing_variable': 1 file-level error(s) in 1 file(s): "
        "wij_panel_2019.sav, variable 'age_group': background variable is missing from the file"
    )
    assert not (store.reading("ingest") / "responses.parquet").exists()
