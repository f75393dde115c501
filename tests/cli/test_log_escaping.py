"""Text from input files reaches logs and messages escaped: no input can forge a log line."""

from __future__ import annotations

import logging
import re
import shutil

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from survey_pipeline import cli
from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.errors import InputError, escape
from survey_pipeline.sav import spec_metadata
from survey_pipeline.spec import load_spec

FORGED = "\n2026-01-01T00:00:00 INFO fake"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) survey_pipeline[\w.]*: .*")


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture
def project(tmp_path, spec):
    """The real spec and params; the raw data folder holds good files of every wave but 2019."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    for wave in spec.waves[1:]:
        _wave(spec, wave).to_csv(tmp_path / "data" / "raw" / f"wij_panel_{wave}.csv", index=False)
    return tmp_path


def _wave(spec, wave: int) -> pd.DataFrame:
    frame = pd.DataFrame({"resp_id": np.arange(1.0, 9.0), "wave": float(wave)})
    for name in spec.background:
        frame[name] = 1.0
    for variable in spec.variables_in_wave(wave):
        frame[variable.name] = -1.0
    return frame


def _wave_2019(spec) -> pd.DataFrame:
    return _wave(spec, 2019)


def _stderr_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    return err.splitlines()


def _every_line_is_a_log_record_or_the_error(lines: list[str]) -> None:
    for line in lines:
        assert LOG_LINE.fullmatch(line) or line.startswith("survey-pipeline: "), line


def test_a_column_name_with_a_newline_cannot_forge_a_log_line(project, spec, capsys):
    frame = _wave_2019(spec)
    frame["extra" + FORGED] = 1.0
    frame.to_csv(project / "data" / "raw" / "wij_panel_2019.csv", index=False)

    assert cli.main(["--project-dir", str(project), "ingest"]) == 0
    lines = _stderr_lines(capsys)
    _every_line_is_a_log_record_or_the_error(lines)
    assert any("variable 'extra\\n2026-01-01T00:00:00 INFO fake'" in line and " WARNING " in line for line in lines)


def test_a_file_name_with_a_newline_gives_one_escaped_error_line(project, spec, capsys):
    name = "wij_panel_2019" + FORGED + ".csv"
    _wave_2019(spec).to_csv(project / "data" / "raw" / name, index=False)

    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith("survey-pipeline: error: wij_panel_2019\\n2026-01-01T00:00:00 INFO fake.csv, ")


def test_a_value_label_that_moves_the_terminal_cursor_is_shown_escaped(project, spec, capsys):
    frame = _wave_2019(spec)
    meta = spec_metadata(frame.columns, spec, None)
    first = next(iter(spec.variables_in_wave(2019))).name
    labels = {**meta.value_labels, first: {**meta.value_labels[first], 7.0: "\x1b[1A\x1b[2K2026-01-01 INFO fake"}}
    pyreadstat.write_sav(
        frame,
        str(project / "data" / "raw" / "wij_panel_2019.sav"),
        column_labels=meta.column_labels,
        variable_value_labels=labels,
        missing_ranges=meta.missing_ranges,
    )

    assert cli.main(["--project-dir", str(project), "ingest"]) == 0
    lines = _stderr_lines(capsys)
    _every_line_is_a_log_record_or_the_error(lines)
    assert any("'\\x1b[1A\\x1b[2K2026-01-01 INFO fake'" in line for line in lines), lines


def test_escape_shows_control_characters_and_keeps_ordinary_text():
    assert escape("a\nb\rc\td\x1b[31me\u2028f\x00") == "a\\nb\\rc\\td\\x1b[31me\\u2028f\\x00"
    assert escape("wijk Oosterparkwijk: één ‘weet niet’ 100%") == "wijk Oosterparkwijk: één ‘weet niet’ 100%"


def test_input_error_escapes_file_column_and_message():
    error = InputError("label 'ja\nINFO fake'", file="a\nb.csv", row=3, column="x\r", rule="value_label")
    assert error.one_line() == "a\\nb.csv, row 3, column 'x\\r', rule 'value_label': label 'ja\\nINFO fake'"
    assert "\n" not in str(error)


def test_the_log_formatter_escapes_message_and_arguments():
    formatter = cli.OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "survey_pipeline", logging.WARNING, __file__, 1, "file %s:\n%s", ("a\nb", "\x1b[2K"), None
    )
    assert formatter.format(record) == "WARNING file a\\nb:\\n\\x1b[2K"
