"""Bad-input corpus, file level: each case asserts the exact problems or the exact error.

A file that cannot be read raises `InputError` (exit 2 in the CLI) with one line
naming the file; a readable file with problems gets them listed in its report
(error or warning, rule and variable), and `ingest_files` refuses files with errors.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml
from panel_builder import raw_frame, write_raw

from survey_pipeline.errors import InputError
from survey_pipeline.sav import spec_metadata, write_sav
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.ingest.sav_structure import NCASES_OFFSET
from survey_pipeline.stages.ingest.stage import FileCheckError, ingest_files, read_raw_file

N = 12


def problems(report):
    return [(p.severity, p.rule, p.variable) for p in report.problems]


def sav_with_labels(frame, path, spec, *, value_labels=None, file_label="WIJ-monitor test", column_labels=None):
    """A .sav written like `write_sav` but with some labels replaced."""
    meta = spec_metadata(frame.columns, spec)
    labels = {**meta.value_labels, **(value_labels or {})}
    pyreadstat.write_sav(
        frame,
        str(path),
        file_label=file_label,
        column_labels={**meta.column_labels, **(column_labels or {})},
        variable_value_labels=labels,
        missing_ranges=meta.missing_ranges,
    )


def assert_one_line_input_error(excinfo, file_name, rule):
    exc = excinfo.value
    assert isinstance(exc, InputError)
    assert exc.rule == rule
    assert exc.file == file_name
    assert "\n" not in str(exc) and str(exc).startswith(file_name)


@pytest.fixture
def good_2019(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    write_raw(raw_frame(spec, 2019, N), path, spec)
    return path


def test_good_file_has_no_problems(good_2019, spec):
    frame, report = read_raw_file(good_2019, spec)
    assert problems(report) == []
    assert report.wave == 2019 and report.n_rows == N
    assert frame["source_row"].tolist() == list(range(1, N + 1))
    assert (frame["file_wave"] == 2019).all()


# --- unreadable, empty and mislabelled files: one-line InputError ------------------


def test_truncated_sav(good_2019, spec):
    content = good_2019.read_bytes()
    good_2019.write_bytes(content[: len(content) - 40])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(good_2019, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "truncated_file")
    assert (
        excinfo.value.message
        == f"the SPSS file is truncated: the header promises {N} cases but the data end inside case {N}"
    )


def test_truncated_zsav(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.zsav"
    write_raw(raw_frame(spec, 2019, N), path, spec)
    size = len(path.read_bytes())
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.zsav", "truncated_file")
    assert excinfo.value.message == (
        f"the SPSS file is truncated: the zlib trailer should end at byte {size} but the file has {size - 30} bytes"
    )


def without_case_count(path):
    """Patch the header's case count to -1 (unknown), as some exporters write it."""
    content = path.read_bytes()
    path.write_bytes(content[:NCASES_OFFSET] + struct.pack("<i", -1) + content[NCASES_OFFSET + 4 :])


@pytest.mark.parametrize(
    ("row_compress", "cut", "detail"),
    [
        (True, 4 * 4096, "the compressed data end inside the values of a command block"),
        (True, 3 * 4096, "the compressed data end inside a block of command codes"),
        (False, 2 * 4096, "the data end inside case 13"),
    ],
    ids=["bytecode_in_values", "bytecode_in_commands", "uncompressed"],
)
def test_sav_without_case_count_cut_at_a_4_kib_boundary(tmp_path, spec, row_compress, cut, detail):
    """ReadStat reads such a file as a shorter, valid one; ingest refuses it."""
    path = tmp_path / "wij_panel_2019.sav"
    write_sav(raw_frame(spec, 2019, 400), path, spec, "WIJ-monitor test", row_compress=row_compress)
    without_case_count(path)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "truncated_file")
    assert excinfo.value.message == f"the SPSS file is truncated: {detail}"


def test_compressed_sav_without_case_count_is_read_whole(tmp_path, spec):
    for suffix, row_compress in ((".sav", True), (".zsav", False)):
        path = tmp_path / f"wij_panel_2019{suffix}"
        write_sav(raw_frame(spec, 2019, 400), path, spec, "WIJ-monitor test", row_compress=row_compress)
        without_case_count(path)
        frame, report = read_raw_file(path, spec)
        assert (len(frame), report.n_rows, problems(report)) == (400, 400, [])
        path.unlink()


def test_zsav_without_case_count_cut_short(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.zsav"
    write_raw(raw_frame(spec, 2019, 400), path, spec)
    without_case_count(path)
    size = len(path.read_bytes())
    path.write_bytes(path.read_bytes()[: size - 100])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.zsav", "truncated_file")
    assert excinfo.value.message == (
        f"the SPSS file is truncated: the zlib trailer should end at byte {size} but the file has {size - 100} bytes"
    )


def test_uncompressed_sav_without_case_count_is_refused(good_2019, spec):
    without_case_count(good_2019)
    with pytest.raises(InputError) as excinfo:
        read_raw_file(good_2019, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "unknown_case_count")
    assert excinfo.value.message == (
        "the header gives no case count (-1) and uncompressed SPSS data have no end marker, so a truncated file "
        "cannot be told from a whole one; save the file again from SPSS (which records the case count)"
    )


@pytest.mark.parametrize(
    ("suffix", "row_compress", "after"),
    [
        (".sav", True, "the end-of-data code"),
        (".sav", False, f"the {N} cases the header promises"),
        (".zsav", False, "the zlib trailer"),
    ],
    ids=["bytecode", "uncompressed", "zlib"],
)
def test_sav_with_bytes_after_the_data(tmp_path, spec, suffix, row_compress, after):
    path = tmp_path / f"wij_panel_2019{suffix}"
    write_sav(raw_frame(spec, 2019, N), path, spec, "WIJ-monitor test", row_compress=row_compress)
    path.write_bytes(path.read_bytes() + bytes(16))
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, path.name, "trailing_bytes")
    assert excinfo.value.message == f"16 byte(s) follow {after}; the file is damaged or not one SPSS file"


def test_compressed_sav_promising_more_cases_than_it_holds(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    write_sav(raw_frame(spec, 2019, N), path, spec, "WIJ-monitor test", row_compress=True)
    content = path.read_bytes()
    path.write_bytes(content[:NCASES_OFFSET] + struct.pack("<i", N + 5) + content[NCASES_OFFSET + 4 :])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "case_count")
    assert excinfo.value.message == (
        f"the header promises {N + 5} cases but the bytecode-compressed data hold {N}; the file is corrupt"
    )


def test_empty_file(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    path.write_bytes(b"")
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "empty_file")


def test_csv_named_sav(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    raw_frame(spec, 2019, N).to_csv(path, index=False)
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "file_type")
    assert "not an SPSS file: the content is text (a CSV file?)" in str(excinfo.value)


def test_parquet_named_sav(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    raw_frame(spec, 2019, N).to_parquet(path)
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "file_type")
    assert "the content is a Parquet file" in str(excinfo.value)


def test_sav_named_csv(good_2019, spec):
    path = good_2019.with_name("wij_panel_2019.csv")
    good_2019.rename(path)
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "file_type")
    assert "not a CSV file: the content is an SPSS file" in str(excinfo.value)


def test_utf16_csv(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.csv"
    path.write_bytes(raw_frame(spec, 2019, N).to_csv(index=False).encode("utf-16"))
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "file_type")
    assert "the content is UTF-16 text (save it as UTF-8 CSV)" in str(excinfo.value)


def test_corrupt_sav_with_a_valid_header(good_2019, spec):
    content = bytearray(good_2019.read_bytes())
    rng = np.random.default_rng(1)
    content[300:1500] = rng.integers(0, 256, 1200, dtype=np.uint8).tobytes()
    good_2019.write_bytes(bytes(content))
    with pytest.raises(InputError) as excinfo:
        read_raw_file(good_2019, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.sav", "unreadable_file")
    assert str(excinfo.value).endswith("; it is truncated or corrupt")


def test_csv_cut_off_inside_a_row(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.csv"
    text = raw_frame(spec, 2019, N).to_csv(index=False)
    cut = text.rstrip("\n").rfind(",", 0, len(text) - 20)
    path.write_text(text[:cut], encoding="utf-8")
    n_fields = text.splitlines()[0].count(",") + 1
    found = text[:cut].splitlines()[-1].count(",") + 1
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "unreadable_file")
    assert excinfo.value.row == N
    assert (
        excinfo.value.message
        == f"malformed CSV: the row has {found} of {n_fields} fields; the file ends inside it: truncated?"
    )


def test_csv_rows_with_missing_fields(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.csv"
    lines = raw_frame(spec, 2019, N).to_csv(index=False).splitlines()
    n_fields = lines[0].count(",") + 1
    for row in (4, 9):
        lines[row] = lines[row].rsplit(",", 2)[0]
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "unreadable_file")
    assert excinfo.value.row == 4
    assert excinfo.value.message == (
        f"malformed CSV: the row has {n_fields - 2} of {n_fields} fields (the first of 2 short rows); "
        "a separator is missing or the file is damaged"
    )


def test_truncated_parquet(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.parquet"
    raw_frame(spec, 2019, N).to_parquet(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.parquet", "unreadable_file")


def test_unsupported_extension(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.xlsx"
    path.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.xlsx", "file_type")


# --- file-level checks against the spec ---------------------------------------------


def test_empty_wave_file_without_rows(tmp_path, spec):
    path = tmp_path / "wij_panel_2020.sav"
    write_raw(raw_frame(spec, 2020, N).iloc[0:0], path, spec)
    _frame, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "empty_file", None)]
    with pytest.raises(FileCheckError) as excinfo:
        ingest_files([path], spec, "wij_panel_{wave}")
    assert str(excinfo.value) == (
        "wij_panel_2020.sav, rule 'empty_file': 1 file-level error(s) in 1 file(s): "
        "wij_panel_2020.sav: the file has no data rows"
    )


def test_missing_question_of_the_wave(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    write_raw(raw_frame(spec, 2019, N).drop(columns=["walk_in"]), path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "missing_variable", "walk_in")]
    assert report.errors[0].text(report.name) == (
        "wij_panel_2019.sav, variable 'walk_in': variable is missing from the file (the spec asks it in wave 2019)"
    )


def test_missing_background_variable(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    write_raw(raw_frame(spec, 2019, N).drop(columns=["wijk"]), path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "missing_variable", "wijk")]
    assert "background variable is missing" in report.errors[0].message


def test_question_a_wave_did_not_ask_with_answers_is_an_error(tmp_path, spec):
    raw = raw_frame(spec, 2021, N)
    raw["caregiver"] = np.where(np.arange(N) % 2 == 0, 1.0, 2.0)
    path = tmp_path / "wij_panel_2021.sav"
    write_raw(raw, path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "not_in_wave", "caregiver")]
    assert f"holds {N} answer(s)" in report.errors[0].message


def test_question_a_wave_did_not_ask_without_answers_is_ignored(tmp_path, spec):
    raw = raw_frame(spec, 2021, N)
    raw["caregiver"] = -1.0
    path = tmp_path / "wij_panel_2021.sav"
    write_raw(raw, path, spec)
    frame, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "not_in_wave", "caregiver")]
    assert frame["caregiver"].isna().all()


def test_unexpected_extra_variable_is_a_warning_and_dropped(tmp_path, spec):
    raw = raw_frame(spec, 2019, N)
    raw["opmerking_code"] = 1.0
    path = tmp_path / "wij_panel_2019.sav"
    write_raw(raw, path, spec)
    frame, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "extra_variable", "opmerking_code")]
    assert "opmerking_code" not in frame.columns


def test_variable_name_in_other_case_is_read_with_a_warning(tmp_path, spec):
    raw = raw_frame(spec, 2019, N).rename(columns={"heard": "Heard"})
    path = tmp_path / "wij_panel_2019.csv"
    write_raw(raw, path, spec)
    frame, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "variable_name_case", "heard")]
    assert frame["heard"].tolist() == raw["Heard"].tolist()


def test_value_label_changed_between_waves(tmp_path, spec):
    first = tmp_path / "wij_panel_2019.sav"
    write_raw(raw_frame(spec, 2019, N), first, spec)
    second = tmp_path / "wij_panel_2020.sav"
    swapped = {1.0: "nee", 2.0: "ja", 99.0: "weet niet", 98.0: "geen antwoord", -1.0: "niet gevraagd"}
    sav_with_labels(raw_frame(spec, 2020, N), second, spec, value_labels={"heard": swapped})
    _, report = read_raw_file(second, spec)
    assert problems(report) == [
        ("error", "value_label_mismatch", "heard"),
        ("error", "value_label_mismatch", "heard"),
    ]
    assert [p.message for p in report.errors] == [
        "code 1 is labelled 'nee' in the file but 'ja' in the spec",
        "code 2 is labelled 'ja' in the file but 'nee' in the spec",
    ]
    with pytest.raises(FileCheckError) as excinfo:
        ingest_files([first, second], spec, "wij_panel_{wave}")
    assert excinfo.value.file == "wij_panel_2020.sav"
    assert [(name, p.variable) for name, p in excinfo.value.problems] == [
        ("wij_panel_2020.sav", "heard"),
        ("wij_panel_2020.sav", "heard"),
    ]


def test_value_label_differing_only_in_case_is_a_warning(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.sav"
    labels = {**{float(k): v for k, v in spec.variables["heard"].value_labels.items()}, 99.0: "Weet  niet"}
    sav_with_labels(raw_frame(spec, 2019, N), path, spec, value_labels={"heard": labels})
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "value_label_mismatch", "heard")]


def test_value_label_for_an_unknown_code(tmp_path, spec):
    labels = {**{float(k): v for k, v in spec.variables["contact"].value_labels.items()}, 3.0: "misschien"}
    unused = tmp_path / "wij_panel_2019.sav"
    sav_with_labels(raw_frame(spec, 2019, N), unused, spec, value_labels={"contact": labels})
    _, report = read_raw_file(unused, spec)
    assert problems(report) == [("warning", "value_label_unknown_code", "contact")]

    raw = raw_frame(spec, 2020, N)
    raw.loc[0, "contact"] = 3.0
    used = tmp_path / "wij_panel_2020.sav"
    sav_with_labels(raw, used, spec, value_labels={"contact": labels})
    _, report = read_raw_file(used, spec)
    assert problems(report) == [("error", "value_label_unknown_code", "contact")]
    assert (
        report.errors[0].message
        == "value label 'misschien' for code 3, which is not a code in the spec and occurs in the data"
    )


def test_text_codes_in_csv_are_a_type_error(tmp_path, spec):
    raw = raw_frame(spec, 2019, N).astype({"heard": "object"})
    raw.loc[[2, 5], "heard"] = "ja"
    path = tmp_path / "wij_panel_2019.csv"
    write_raw(raw, path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "wrong_type", "heard")]
    assert report.errors[0].message == "2 value(s) are text, not numeric codes (first at row 3)"


def test_numbers_stored_as_text_are_read_with_a_warning(tmp_path, spec):
    raw = raw_frame(spec, 2019, N)
    raw["sex"] = raw["sex"].map(lambda v: f"{v:.0f}").astype("str")
    path = tmp_path / "wij_panel_2019.parquet"
    write_raw(raw, path, spec)
    frame, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "wrong_type", "sex")]
    assert frame["sex"].dtype == "float64" and frame["sex"].tolist() == raw_frame(spec, 2019, N)["sex"].tolist()


def test_non_integral_code(tmp_path, spec):
    raw = raw_frame(spec, 2019, N)
    raw.loc[4, "knows_where"] = 1.5
    path = tmp_path / "wij_panel_2019.sav"
    write_raw(raw, path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "non_integral", "knows_where")]
    assert report.errors[0].message == "1 value(s) are not whole-number codes (first at row 5, e.g. 1.5)"


def test_non_integral_respondent_id_does_not_show_the_id(tmp_path, spec):
    raw = raw_frame(spec, 2019, N)
    raw.loc[0, "resp_id"] = 1234.5
    path = tmp_path / "wij_panel_2019.csv"
    write_raw(raw, path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "non_integral", "resp_id")]
    assert "1234" not in report.errors[0].message


def test_non_utf8_labels_are_read_as_windows_1252(tmp_path, spec):
    source = yaml.safe_load(Path(spec.source).read_text(encoding="utf-8"))
    source["background"]["wijk"]["codes"][1] = "Café Binnenstad"
    accented = parse_spec(source)
    path = tmp_path / "wij_panel_2019.sav"
    labels = {k: v for k, v in spec_metadata(["wijk"], accented).value_labels["wijk"].items()}
    labels[1.0] = "CafQ Binnenstad"
    sav_with_labels(raw_frame(accented, 2019, N), path, accented, value_labels={"wijk": labels}, file_label="Panel QQ")
    content = path.read_bytes()
    assert content.count(b"CafQ Binnenstad") == 1 and content.count(b"Panel QQ") == 1
    path.write_bytes(content.replace(b"CafQ Binnenstad", b"Caf\xe9 Binnenstad").replace(b"Panel QQ", b"Panel \xeb!"))

    _, report = read_raw_file(path, accented)
    assert problems(report) == [("warning", "label_encoding", None), ("warning", "label_encoding", "wijk")]
    assert report.file_label == "Panel ë!"
    assert report.value_labels["wijk"][1.0] == "Café Binnenstad"


def test_csv_in_windows_1252_is_read_with_a_warning(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.csv"
    text = raw_frame(spec, 2019, N).to_csv(index=False)
    lines = text.splitlines()
    lines[0] += ",opmerking"
    lines[1:] = [line + ",caf\u00e9" for line in lines[1:]]
    path.write_bytes("\n".join(lines).encode("cp1252"))
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "text_encoding", None), ("warning", "extra_variable", "opmerking")]


def test_duplicate_column_in_csv(tmp_path, spec):
    path = tmp_path / "wij_panel_2019.csv"
    text = raw_frame(spec, 2019, N).to_csv(index=False).splitlines()
    text = [line + "," + line.split(",")[5] for line in text]
    path.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "duplicate_column")
    assert "['heard']" in str(excinfo.value)


def csv_with_quoted_line_break(raw, column, sep=","):
    """The CSV text of `raw` with the header cell of `column` quoted and split over two lines.

    Semicolon-separated files use a decimal comma, as Dutch Excel writes them.
    """
    lines = raw.to_csv(index=False, sep=sep, decimal="," if sep == ";" else ".").splitlines()
    cells = lines[0].split(sep)
    cells[cells.index(column)] = '"' + column.replace("_", "\n") + '"'
    return "\n".join([sep.join(cells), *lines[1:]]) + "\n"


@pytest.mark.parametrize("sep", [",", ";"])
def test_csv_header_cell_with_a_quoted_line_break_is_one_header_cell(tmp_path, spec, sep):
    """`"resp<newline>id"` is one header cell (CSV quoting), not a header that ends after `"resp`."""
    path = tmp_path / "wij_panel_2019.csv"
    path.write_text(csv_with_quoted_line_break(raw_frame(spec, 2019, N), "resp_id", sep), encoding="utf-8")
    frame, report = read_raw_file(path, spec)
    assert problems(report) == [("warning", "extra_variable", "resp\nid"), ("error", "missing_variable", "resp_id")]
    assert [p.text(report.name) for p in report.problems] == [
        "wij_panel_2019.csv, variable 'resp\\nid': not in the spec; ignored",
        "wij_panel_2019.csv, variable 'resp_id': variable is missing from the file (the spec's survey.respondent_id)",
    ]
    assert frame["heard"].tolist() == raw_frame(spec, 2019, N)["heard"].tolist()
    with pytest.raises(FileCheckError) as excinfo:
        ingest_files([path], spec, "wij_panel_{wave}")
    assert str(excinfo.value) == (
        "wij_panel_2019.csv, column 'resp_id', rule 'missing_variable': 1 file-level error(s) in 1 file(s): "
        "wij_panel_2019.csv, variable 'resp_id': variable is missing from the file (the spec's survey.respondent_id)"
    )
    assert all("\n" not in p.text(report.name) for p in report.problems)


def test_duplicate_column_after_a_header_cell_with_a_line_break(tmp_path, spec):
    raw = raw_frame(spec, 2019, N)
    raw.insert(0, "opmerking_vrij", 1.0)
    raw["heard_again"] = raw["heard"]
    text = csv_with_quoted_line_break(raw, "opmerking_vrij").replace("heard_again", "heard", 1)
    path = tmp_path / "wij_panel_2019.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read_raw_file(path, spec)
    assert_one_line_input_error(excinfo, "wij_panel_2019.csv", "duplicate_column")
    assert excinfo.value.message == "column(s) ['heard'] appear more than once in the header"


def test_file_name_without_wave(tmp_path, spec):
    path = tmp_path / "panel_export_final.sav"
    write_raw(raw_frame(spec, 2019, N), path, spec)
    _frame, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "wave_from_name", None)]
    assert "does not match 'wij_panel_{wave}' (e.g. wij_panel_2019.sav)" in report.errors[0].message


def test_wave_in_file_name_not_in_spec(tmp_path, spec):
    path = tmp_path / "wij_panel_2018.sav"
    write_raw(raw_frame(spec, 2019, N), path, spec)
    _, report = read_raw_file(path, spec)
    assert problems(report) == [("error", "wave_in_spec", None)]


def test_file_of_a_wave_the_spec_declares_not_measured(tmp_path, spec):
    with open(spec.source, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    raw["survey"]["not_measured"] = {2018: "nog geen panel"}
    skipping = parse_spec(raw)
    path = tmp_path / "wij_panel_2018.sav"
    write_raw(raw_frame(spec, 2019, N), path, spec)
    _, report = read_raw_file(path, skipping)
    assert problems(report) == [("error", "wave_not_measured", None)]
    assert report.errors[0].message == (
        "the spec declares wave 2018 not measured (survey.not_measured: nog geen panel); "
        "remove the file, or move 2018 to survey.waves"
    )


def test_two_files_for_one_wave(tmp_path, good_2019, spec):
    csv_path = tmp_path / "wij_panel_2019.csv"
    write_raw(raw_frame(spec, 2019, N), csv_path, spec)
    with pytest.raises(FileCheckError) as excinfo:
        ingest_files([csv_path, good_2019], spec, "wij_panel_{wave}")
    assert [(name, p.rule) for name, p in excinfo.value.problems] == [
        ("wij_panel_2019.csv", "one_file_per_wave"),
        ("wij_panel_2019.sav", "one_file_per_wave"),
    ]


def test_errors_of_several_files_are_reported_together(tmp_path, spec):
    a = tmp_path / "wij_panel_2019.sav"
    write_raw(raw_frame(spec, 2019, N).drop(columns=["sex"]), a, spec)
    b = tmp_path / "wij_panel_2020.csv"
    bad = raw_frame(spec, 2020, N)
    bad.loc[3, "contact"] = 0.5
    write_raw(bad, b, spec)
    with pytest.raises(FileCheckError) as excinfo:
        ingest_files([a, b], spec, "wij_panel_{wave}")
    exc = excinfo.value
    assert exc.rule == "file_check" and exc.file is None
    assert [(name, p.rule, p.variable) for name, p in exc.problems] == [
        ("wij_panel_2019.sav", "missing_variable", "sex"),
        ("wij_panel_2020.csv", "non_integral", "contact"),
    ]
    assert "\n" not in str(exc)


def test_all_formats_read_the_same(tmp_path, spec):
    raw = raw_frame(spec, 2020, N)
    frames = []
    for suffix in ("sav", "zsav", "csv", "parquet"):
        path = tmp_path / suffix / f"wij_panel_2020.{suffix}"
        path.parent.mkdir()
        write_raw(raw, path, spec)
        frame, report = read_raw_file(path, spec)
        assert report.errors == [], suffix
        frames.append(frame.drop(columns=["source_file"]))
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])
    assert frames[0]["caregiver"].notna().all() and frames[0]["wmo_client"].isna().all()


@pytest.mark.parametrize(
    ("sep", "weights", "expected"),
    [
        # a ';' file reads ',' as the decimal mark: '1.234' may be a thousands separator
        (";", ["1.234", "1.5", "2.000"], "stored as text (first at row 1)"),
        (",", ["1,234", "1.5", "2"], "value(s) are text, not numeric codes (first at row 1)"),
    ],
)
def test_base_weights_written_as_text_are_an_error(tmp_path, spec, sep, weights, expected):
    frame = raw_frame(spec, 2019, 3).assign(base_weight=weights)
    path = tmp_path / "wij_panel_2019.csv"
    path.write_text(frame.to_csv(index=False, sep=sep), encoding="utf-8")
    _, report = read_raw_file(path, spec)
    assert ("error", "wrong_type", "base_weight") in problems(report)
    message = next(p.message for p in report.problems if p.variable == "base_weight")
    assert expected in message


def test_base_weights_with_the_files_decimal_mark_are_read(tmp_path, spec):
    frame = raw_frame(spec, 2019, 3).assign(base_weight=[1.25, 0.5, 2.0])
    path = tmp_path / "wij_panel_2019.csv"
    path.write_text(frame.to_csv(index=False, sep=";", decimal=","), encoding="utf-8")
    read, report = read_raw_file(path, spec)
    assert problems(report) == []
    assert read["base_weight"].tolist() == [1.25, 0.5, 2.0]
