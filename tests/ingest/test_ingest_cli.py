"""Bad raw files through the real CLI: exit code 2, exactly one line on stderr, no outputs."""

from __future__ import annotations

import fnmatch
import shutil

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec

N = 8
N_COLUMNS = 5 + len(load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").variables_in_wave(2019))
# pyreadstat's own reason is quoted in the message and may change between versions.
READSTAT = "wij_panel_2019.sav, rule 'unreadable_file': cannot read the SPSS file (*); it is truncated or corrupt"


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture
def project(tmp_path, spec):
    """A project with the real spec and params and one good raw file for each of the spec's waves."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for wave in spec.waves:
        frame = pd.DataFrame({"resp_id": np.arange(1.0, N + 1), "wave": float(wave)})
        for name in spec.background:
            frame[name] = 1.0
        for variable in spec.variables_in_wave(wave):
            frame[variable.name] = -1.0
        write_sav(frame, raw / f"wij_panel_{wave}.sav", spec, "WIJ-monitor test")
    return tmp_path


def _truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def _corrupt_body(path):
    content = bytearray(path.read_bytes())
    content[300:900] = bytes(range(256)) * 2 + bytes(88)
    path.write_bytes(bytes(content))


def _csv_named_sav(path):
    path.write_text("resp_id,wave,wijk\n1,2019,3\n", encoding="utf-8")


def _csv_cut_off(path):
    frame, _ = pyreadstat.read_sav(str(path), user_missing=True)
    text = frame.to_csv(index=False)
    path.unlink()
    path.with_suffix(".csv").write_text(text[: text.rstrip("\n").rfind(",")], encoding="utf-8")


def _header_only(path):
    frame, _ = pyreadstat.read_sav(str(path), user_missing=True)
    path.unlink()
    frame.iloc[0:0].to_csv(path.with_suffix(".csv"), index=False)


CASES = {
    "empty": (
        lambda p: p.write_bytes(b""),
        "wij_panel_2019.sav, rule 'empty_file': the file is empty (no header, no data)",
    ),
    "truncated": (lambda p: _truncate(p, len(p.read_bytes()) - 40), READSTAT),
    "truncated_header": (lambda p: _truncate(p, 120), READSTAT),
    "corrupt": (_corrupt_body, READSTAT),
    "csv_named_sav": (
        _csv_named_sav,
        "wij_panel_2019.sav, rule 'file_type': not an SPSS file: the content is text (a CSV file?); "
        "check the file and its extension",
    ),
    "garbage_named_sav": (
        lambda p: p.write_bytes(bytes(range(256)) * 4),
        "wij_panel_2019.sav, rule 'file_type': not an SPSS file: the content is binary data of an unknown kind; "
        "check the file and its extension",
    ),
    "sav_named_csv": (
        lambda p: p.rename(p.with_suffix(".csv")),
        "wij_panel_2019.csv, rule 'file_type': not a CSV file: the content is an SPSS file; "
        "check the file and its extension",
    ),
    "csv_cut_off": (
        _csv_cut_off,
        f"wij_panel_2019.csv, row {N}, rule 'unreadable_file': malformed CSV: the row has {N_COLUMNS - 1} of "
        f"{N_COLUMNS} fields; the file ends inside it: truncated?",
    ),
    "empty_wave": (
        _header_only,
        "wij_panel_2019.csv, rule 'empty_file': 1 file-level error(s) in 1 file(s): "
        "wij_panel_2019.csv: the file has no data rows",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_exits_2_with_one_line(project, capsys, case):
    damage, expected = CASES[case]
    damage(project / "data" / "raw" / "wij_panel_2019.sav")
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert fnmatch.fnmatchcase(lines[0], "survey-pipeline: error: " + expected), lines[0]
    assert captured.out == ""
    assert not (project / "outputs" / "ingest").exists()


def test_good_file_exits_0(project, capsys):
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 0
    assert "error" not in capsys.readouterr().err
    assert (project / "outputs" / "ingest" / "responses.parquet").exists()


# --- waves: every wave of the spec has a file; no file for a wave it does not measure --------


def _digest(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _declare_not_measured(project, wave, reason):
    path = project / "questionnaires" / "wij_monitor.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["survey"]["not_measured"] = {wave: reason}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def _copy_wave(project, source, target):
    raw = project / "data" / "raw"
    shutil.copy(raw / f"wij_panel_{source}.sav", raw / f"wij_panel_{target}.sav")


WAVE_CASES = {
    "missing_wave": (
        lambda project: (project / "data" / "raw" / "wij_panel_2020.sav").unlink(),
        "data/raw, rule 'missing_wave': no raw file for wave(s) 2020 of survey.waves in the spec: expected "
        "wij_panel_2020.sav (or .zsav, .csv, .parquet) in the folder; a wave deliberately not measured belongs "
        "in survey.not_measured with its reason",
    ),
    "file_of_a_wave_not_measured": (
        lambda project: (_declare_not_measured(project, 2022, "i.v.m. COVID"), _copy_wave(project, 2021, 2022)),
        "wij_panel_2022.sav, rule 'wave_not_measured': 1 file-level error(s) in 1 file(s): wij_panel_2022.sav: the "
        "spec declares wave 2022 not measured (survey.not_measured: i.v.m. COVID); remove the file, or move 2022 "
        "to survey.waves",
    ),
    "file_of_a_wave_the_spec_does_not_know": (
        lambda project: _copy_wave(project, 2019, 2018),
        "wij_panel_2018.sav, rule 'wave_in_spec': 1 file-level error(s) in 1 file(s): wij_panel_2018.sav: wave 2018 "
        "(from the file name) is not one of the spec's waves [2019, 2020, 2021]; add it to survey.waves (or "
        "survey.not_measured) or remove the file",
    ),
}


@pytest.mark.parametrize("case", list(WAVE_CASES))
def test_wave_without_its_file_or_file_without_its_wave_exits_2_and_keeps_outputs(project, capsys, case):
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 0
    before = _digest(project / "outputs")
    capsys.readouterr()
    damage, expected = WAVE_CASES[case]
    damage(project)
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["survey-pipeline: error: " + expected]
    assert captured.out == ""
    assert _digest(project / "outputs") == before
