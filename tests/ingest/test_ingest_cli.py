"""Bad raw files through the real CLI: exit code 2, exactly one line on stderr, no outputs."""

from __future__ import annotations

import fnmatch
import json
import shutil
import struct

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest.sav_structure import NCASES_OFFSET

N = 8
N_COLUMNS = 5 + len(load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").variables_in_wave(2019))


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


def _csv_with_a_trailing_separator(path, rows="every"):
    """An export that ends every data row (or only the first) with one separator more than the header has."""
    frame, _ = pyreadstat.read_sav(str(path), user_missing=True)
    lines = frame.to_csv(index=False).splitlines()
    last = len(lines) if rows == "every" else 2
    lines[1:last] = [line + "," for line in lines[1:last]]
    path.unlink()
    path.with_suffix(".csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    # pandas would read the first column as the row index and shift every other column by one.
    "csv_trailing_separator": (
        _csv_with_a_trailing_separator,
        f"wij_panel_2019.csv, row 1, rule 'unreadable_file': malformed CSV: the row has {N_COLUMNS + 1} fields but "
        f"the header has {N_COLUMNS} (the first of {N} long rows); a separator inside an unquoted value or at the "
        "end of the row?",
    ),
    "csv_first_row_too_long": (
        lambda p: _csv_with_a_trailing_separator(p, rows="first"),
        f"wij_panel_2019.csv, row 1, rule 'unreadable_file': malformed CSV: the row has {N_COLUMNS + 1} fields but "
        f"the header has {N_COLUMNS}; a separator inside an unquoted value or at the end of the row?",
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


# --- SPSS files cut short, on a copy of the demo project ------------------------------
#
# The demo waves are written again as SPSS writes them (bytecode-compressed .sav or
# .zsav), some with the header's case count -1 as some exporters write it, then cut
# where a copy or download stops (a 4 KiB boundary). The run must fail with exit 2
# and one line naming the file, and leave the previous good outputs byte-identical.


def _demo_wave_as(path, *, suffix=".sav", row_compress=False, unknown_count=True, cut=None):
    frame, _ = pyreadstat.read_sav(str(path), user_missing=True)
    path.unlink()
    target = path.with_suffix(suffix)
    write_sav(
        frame,
        target,
        load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml"),
        "WIJ-monitor test",
        row_compress=row_compress,
    )
    content = target.read_bytes()
    if unknown_count:
        content = content[:NCASES_OFFSET] + struct.pack("<i", -1) + content[NCASES_OFFSET + 4 :]
    target.write_bytes(content if cut is None else content[:cut])


TRUNCATED = "wij_panel_2019.{suffix}, rule 'truncated_file': the SPSS file is truncated: {detail}"
SPSS_CUT_CASES = {
    "bytecode_unknown_count_cut_at_4_kib": (
        dict(row_compress=True, cut=13 * 4096),
        TRUNCATED.format(suffix="sav", detail="the compressed data end inside a block of command codes"),
    ),
    "bytecode_declared_count_cut_at_4_kib": (
        dict(row_compress=True, unknown_count=False, cut=13 * 4096),
        TRUNCATED.format(suffix="sav", detail="the compressed data end inside a block of command codes"),
    ),
    "zsav_unknown_count_cut_at_4_kib": (
        dict(suffix=".zsav", cut=4 * 4096),
        TRUNCATED.format(suffix="zsav", detail="the zlib trailer should end at byte * but the file has 16384 bytes"),
    ),
    "uncompressed_unknown_count_cut_at_4_kib": (
        dict(cut=12 * 4096),
        TRUNCATED.format(suffix="sav", detail="the data end inside case *"),
    ),
    "uncompressed_unknown_count_whole": (
        dict(),
        "wij_panel_2019.sav, rule 'unknown_case_count': the header gives no case count (-1) and uncompressed SPSS data "
        "have no end marker, so a truncated file cannot be told from a whole one; save the file again from SPSS "
        "(which records the case count)",
    ),
}


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


@pytest.fixture
def demo_project(tmp_path):
    """A copy of the demo project's spec, params and raw waves."""
    for folder in ("questionnaires", "data/raw"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_rewritten_demo_wave_ingests_whole(demo_project):
    """Control: the same rewriting without a cut ingests every row."""
    raw = demo_project / "data" / "raw"
    rows = pyreadstat.read_sav(str(raw / "wij_panel_2019.sav"), metadataonly=True)[1].number_rows
    _demo_wave_as(raw / "wij_panel_2019.sav", row_compress=True)
    assert cli.main(["--project-dir", str(demo_project), "--quiet", "ingest"]) == 0
    files = json.loads((demo_project / "outputs" / "ingest" / "files.json").read_text(encoding="utf-8"))
    assert files["wij_panel_2019.sav"]["n_rows"] == rows


@pytest.mark.parametrize("case", list(SPSS_CUT_CASES))
def test_a_cut_spss_wave_fails_and_keeps_the_previous_outputs(demo_project, capsys, case):
    options, expected = SPSS_CUT_CASES[case]
    args = ["--project-dir", str(demo_project), "--quiet", "ingest"]
    assert cli.main(args) == 0
    before = _snapshot(demo_project / "outputs")
    assert "ingest/responses.parquet" in before
    capsys.readouterr()

    _demo_wave_as(demo_project / "data" / "raw" / "wij_panel_2019.sav", **options)
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert fnmatch.fnmatchcase(lines[0], "survey-pipeline: error: " + expected), lines[0]
    assert "wij_panel_2019" in lines[0] and "truncated" in lines[0]
    assert _snapshot(demo_project / "outputs") == before


def test_csv_header_cell_with_a_line_break_fails_on_one_line(project, capsys):
    """A quoted header cell `"resp<newline>id"` is one cell; it matches no spec name, and
    both the warning and the error stay one line each (the line break escaped)."""
    sav = project / "data" / "raw" / "wij_panel_2019.sav"
    frame, _ = pyreadstat.read_sav(str(sav), user_missing=True)
    sav.unlink()
    text = frame.to_csv(index=False).replace("resp_id", '"resp\nid"', 1)
    (project / "data" / "raw" / "wij_panel_2019.csv").write_text(text, encoding="utf-8")
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(
        " WARNING survey_pipeline.stages.ingest.stage: wij_panel_2019.csv, variable 'resp\\nid': not in the spec; ignored"
    )
    assert lines[1] == (
        "survey-pipeline: error: wij_panel_2019.csv, column 'resp_id', rule 'missing_variable': "
        "1 file-level error(s) in 1 file(s): wij_panel_2019.csv, variable 'resp_id': variable is missing from the file (the spec's survey.respondent_id)"
    )
    assert not (project / "outputs" / "ingest").exists()


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
