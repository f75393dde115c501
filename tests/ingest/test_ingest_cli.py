"""Bad raw files through the real CLI: exit code 2, exactly one line on stderr, no outputs."""

from __future__ import annotations

import fnmatch
import shutil

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from survey_pipeline import cli
from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec

N = 8
N_COLUMNS = 5 + len(load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").variables_in_wave(2019))


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture
def project(tmp_path, spec):
    """A project with the real spec and params and one good raw file for 2019."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    frame = pd.DataFrame({"resp_id": np.arange(1.0, N + 1), "wave": 2019.0})
    for name in spec.background:
        frame[name] = 1.0
    for variable in spec.variables_in_wave(2019):
        frame[variable.name] = -1.0
    write_sav(frame, raw / "wij_panel_2019.sav", spec, "WIJ-monitor test")
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
    "truncated": (
        lambda p: _truncate(p, len(p.read_bytes()) - 40),
        f"wij_panel_2019.sav, rule 'truncated_file': the SPSS file is truncated: the header promises {N} cases "
        f"but the data end inside case {N}",
    ),
    "truncated_header": (
        lambda p: _truncate(p, 120),
        "wij_panel_2019.sav, rule 'truncated_file': the SPSS file is truncated: "
        "the file ends inside its 176-byte header (120 bytes)",
    ),
    "corrupt": (
        _corrupt_body,
        "wij_panel_2019.sav, rule 'unreadable_file': cannot read the SPSS file "
        "(the dictionary runs past the end of the file); it is truncated or corrupt",
    ),
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
