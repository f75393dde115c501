"""The SPSS structure check: a whole file gives its case count, a cut or padded one is refused.

Files are demo-like (the first rows of the demo panel's 2019 wave, with the spec's
labels), written by ReadStat uncompressed, bytecode-compressed and zlib-compressed;
"unknown count" files have the header's case count patched to -1, as some
exporters write it. Hand-made files cover what ReadStat never writes: big-endian
files, values of one case spread over command blocks, and no end-of-data code.
"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.errors import InputError
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest.sav_structure import (
    BYTECODE,
    HEADER_SIZE,
    NCASES_OFFSET,
    UNCOMPRESSED,
    ZLIB,
    check_rows_read,
    check_sav_structure,
    numeric_cases,
)

N = 40
NAME = "wij_panel_2019.sav"
KINDS = {"uncompressed": (".sav", False), "bytecode": (".sav", True), "zlib": (".zsav", False)}


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def demo_rows():
    frame, _ = pyreadstat.read_sav(
        str(PROJECT_ROOT / "data" / "raw" / "wij_panel_2019.sav"), user_missing=True, row_limit=N
    )
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory, spec, demo_rows):
    """The bytes of the demo-like file in each kind, as written (case count declared)."""
    folder = tmp_path_factory.mktemp("sav")
    out = {}
    for kind, (suffix, row_compress) in KINDS.items():
        path = folder / f"wij_panel_2019{suffix}"
        write_sav(demo_rows, path, spec, "WIJ-monitor test", row_compress=row_compress)
        out[kind] = path.read_bytes()
    return out


def unknown_case_count(content: bytes) -> bytes:
    return content[:NCASES_OFFSET] + struct.pack("<i", -1) + content[NCASES_OFFSET + 4 :]


def with_case_count(content: bytes, count: int) -> bytes:
    return content[:NCASES_OFFSET] + struct.pack("<i", count) + content[NCASES_OFFSET + 4 :]


def rule_of(content: bytes) -> str:
    """The rule of the one-line error the check raises; fails the test if it passes."""
    try:
        check_sav_structure(content, NAME)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(NAME)
        return exc.rule
    pytest.fail(f"a file of {len(content)} bytes passed the check")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_whole_file_gives_its_cases(files, kind):
    layout = check_sav_structure(files[kind], NAME)
    assert (layout.cases, layout.declared_cases) == (N, N)
    assert layout.compression == {"uncompressed": UNCOMPRESSED, "bytecode": BYTECODE, "zlib": ZLIB}[kind]
    assert layout.case_size == len(
        pyreadstat.read_sav(str(PROJECT_ROOT / "data" / "raw" / "wij_panel_2019.sav"), metadataonly=True)[
            1
        ].column_names
    )


@pytest.mark.parametrize("kind", ["bytecode", "zlib"])
def test_a_whole_compressed_file_without_case_count_ends_with_its_end_code(files, kind):
    layout = check_sav_structure(unknown_case_count(files[kind]), NAME)
    assert (layout.cases, layout.declared_cases) == (N, None)


def test_a_whole_uncompressed_file_without_case_count_cannot_be_checked(files):
    with pytest.raises(InputError) as excinfo:
        check_sav_structure(unknown_case_count(files["uncompressed"]), NAME)
    assert excinfo.value.rule == "unknown_case_count"
    assert "a truncated file cannot be told from a whole one" in excinfo.value.message


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "unknown_count"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_cut_is_refused(files, kind, declared):
    """Cut at every byte of header and data (every 7th of the dictionary, the same in every kind).

    Header and data cuts are 'truncated_file'; a dictionary cut is 'unreadable_file'
    (a record runs past the end: truncated or corrupt).
    """
    content = files[kind] if declared else unknown_case_count(files[kind])
    data_offset = check_sav_structure(files[kind], NAME).data_offset
    rules = {}
    for cut in [*range(HEADER_SIZE), *range(HEADER_SIZE, data_offset, 7), *range(data_offset, len(content))]:
        part = "header" if cut < HEADER_SIZE else "dictionary" if cut < data_offset else "data"
        rules.setdefault(part, set()).add(rule_of(content[:cut]))
    expected_data = {"truncated_file"}
    if kind == "uncompressed" and not declared:
        expected_data.add("unknown_case_count")  # cut at a case boundary: indistinguishable, refused as such
    assert rules == {"header": {"truncated_file"}, "dictionary": {"unreadable_file"}, "data": expected_data}


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "unknown_count"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_cuts_at_4_kib_boundaries_of_a_full_demo_wave_are_refused(tmp_path, spec, kind, declared):
    frame, _ = pyreadstat.read_sav(str(PROJECT_ROOT / "data" / "raw" / "wij_panel_2019.sav"), user_missing=True)
    suffix, row_compress = KINDS[kind]
    path = tmp_path / f"wij_panel_2019{suffix}"
    write_sav(frame, path, spec, "WIJ-monitor test", row_compress=row_compress)
    content = path.read_bytes() if declared else unknown_case_count(path.read_bytes())
    cuts = range(4096, len(content), 4096)
    assert len(cuts) >= 5
    expected = {"truncated_file", "unreadable_file"} | (
        {"unknown_case_count"} if kind == "uncompressed" and not declared else set()
    )
    assert {rule_of(content[:cut]) for cut in cuts} <= expected


@pytest.mark.parametrize("kind", list(KINDS))
def test_bytes_after_the_data_are_refused(files, kind):
    with pytest.raises(InputError) as excinfo:
        check_sav_structure(files[kind] + bytes(8), NAME)
    assert excinfo.value.rule == "trailing_bytes"
    assert excinfo.value.message.startswith("8 byte(s) follow ")


@pytest.mark.parametrize("kind", ["bytecode", "zlib"])
def test_a_case_count_that_disagrees_with_the_compressed_data_is_refused(files, kind):
    for count in (N - 1, N + 1):
        with pytest.raises(InputError) as excinfo:
            check_sav_structure(with_case_count(files[kind], count), NAME)
        assert excinfo.value.rule == "case_count"
        assert excinfo.value.message.startswith(f"the header promises {count} cases but the {kind}")


def test_a_case_count_that_disagrees_with_uncompressed_data_is_refused(files):
    content = files["uncompressed"]
    assert rule_of(with_case_count(content, N + 1)) == "truncated_file"
    assert rule_of(with_case_count(content, N - 1)) == "trailing_bytes"


def test_rows_read_must_equal_the_cases(files):
    layout = check_sav_structure(files["bytecode"], NAME)
    check_rows_read(layout, N, NAME)
    with pytest.raises(InputError) as excinfo:
        check_rows_read(layout, N - 1, NAME)
    assert excinfo.value.rule == "case_count"
    assert (
        excinfo.value.message
        == f"the SPSS reader returned {N - 1} rows but the file holds {N} cases; the file is corrupt"
    )


def test_a_document_record_is_walked(tmp_path, demo_rows):
    path = tmp_path / "with_note.sav"
    pyreadstat.write_sav(demo_rows, str(path), note=["first line", "second line"], row_compress=True)
    assert check_sav_structure(unknown_case_count(path.read_bytes()), NAME).cases == N


def test_a_corrupt_zlib_block_is_refused(files):
    content = bytearray(files["zlib"])
    data_offset = check_sav_structure(files["zlib"], NAME).data_offset
    content[data_offset + 30 : data_offset + 40] = bytes(10)
    with pytest.raises(InputError) as excinfo:
        check_sav_structure(bytes(content), NAME)
    assert excinfo.value.rule == "unreadable_file"
    assert excinfo.value.message.startswith("cannot read the SPSS file (zlib block 1 ")


# --- hand-made files: what ReadStat does not write ---------------------------------


def handmade_sav(
    cases: list[list[float]], *, compression: int, ncases: int, order: str = "<", end_code: bool = True
) -> bytes:
    """A minimal system file of numeric variables; bytecode packs values across cases (as SPSS does)."""
    n_vars = len(cases[0])
    header = (
        b"$FL2"
        + b"@(#) SPSS DATA FILE handmade test file".ljust(60)
        + struct.pack(order + "5i", 2, n_vars, compression, 0, ncases)
        + struct.pack(order + "d", 100.0)
        + b"01 Jan 26"
        + b"00:00:00"
        + b"handmade".ljust(64)
        + bytes(3)
    )
    assert len(header) == HEADER_SIZE
    dictionary = b"".join(
        struct.pack(order + "6i", 2, 0, 0, 0, 0x050800, 0x050800) + f"V{i}".encode().ljust(8) for i in range(n_vars)
    )
    dictionary += struct.pack(order + "2i", 999, 0)
    values = [v for case in cases for v in case]
    if compression == UNCOMPRESSED:
        return header + dictionary + b"".join(struct.pack(order + "d", v) for v in values)
    commands = [int(v) + 100 if v == int(v) and -99 <= v <= 151 else 253 for v in values] + ([252] if end_code else [])
    commands += [0] * (-len(commands) % 8)
    data = b""
    raw = iter(v for v in values if not (v == int(v) and -99 <= v <= 151))
    for start in range(0, len(commands), 8):
        block = commands[start : start + 8]
        data += bytes(block) + b"".join(struct.pack(order + "d", next(raw)) for c in block if c == 253)
    return header + dictionary + data


CASES = [[1.0, 2.5, 99.0], [3.0, 1000.0, -1.0], [2.0, 7.0, 0.25]]


@pytest.mark.parametrize("order", ["<", ">"], ids=["little_endian", "big_endian"])
@pytest.mark.parametrize("compression", [UNCOMPRESSED, BYTECODE])
def test_handmade_file_in_either_byte_order(order, compression):
    content = handmade_sav(CASES, compression=compression, ncases=3, order=order)
    layout = check_sav_structure(content, NAME)
    assert layout.cases == 3
    assert {rule_of(content[:cut]) for cut in range(layout.data_offset, len(content))} == {"truncated_file"}


def test_the_end_code_is_optional_when_the_header_gives_the_count():
    content = handmade_sav(CASES, compression=BYTECODE, ncases=3, end_code=False)
    assert check_sav_structure(content, NAME).cases == 3


def test_without_count_and_end_code_the_data_cannot_be_trusted():
    content = handmade_sav(CASES, compression=BYTECODE, ncases=-1, end_code=False)
    with pytest.raises(InputError) as excinfo:
        check_sav_structure(content, NAME)
    assert excinfo.value.rule == "truncated_file"
    assert "stop without the end-of-data code and the header gives no case count" in excinfo.value.message


def test_a_cut_between_whole_blocks_inside_a_case_is_refused():
    content = handmade_sav(CASES * 4, compression=BYTECODE, ncases=-1)
    # 3 values a case, 8 commands a block: the file cut after the first block ends inside case 3
    data_offset = check_sav_structure(content, NAME).data_offset
    raw_in_first_block = content[data_offset : data_offset + 8].count(253)
    first_block_end = data_offset + 8 + 8 * raw_in_first_block
    with pytest.raises(InputError) as excinfo:
        check_sav_structure(content[:first_block_end], NAME)
    assert excinfo.value.message == "the SPSS file is truncated: the data end inside case 3"


@pytest.mark.parametrize("kind", list(KINDS))
def test_string_variables_count_one_element_per_8_bytes(tmp_path, kind):
    """Strings longer than 8 bytes add continuation records, longer than 255 bytes segments.

    A wrong case size would miscount: uncompressed data would not be exactly the
    declared cases long, compressed values would not fill whole cases.
    """
    frame = pd.DataFrame(
        {
            "id": [1.0, 2.0, 3.0],
            "short": ["a", "", "abcdefghij"],
            "long": ["x" * 300, "", "y" * 700],
            "num": [1.5, None, 1e9],
        }
    )
    suffix, row_compress = KINDS[kind]
    path = tmp_path / f"strings{suffix}"
    pyreadstat.write_sav(frame, str(path), row_compress=row_compress, compress=suffix == ".zsav")
    content = path.read_bytes()
    layout = check_sav_structure(content, NAME)
    assert layout.cases == 3
    assert {rule_of(content[:cut]) for cut in range(layout.data_offset, len(content))} == {"truncated_file"}


# --- numeric cases: decoded with numpy as ReadStat reads them ------------------------

DBL_MAX = np.finfo(np.float64).max
LOWEST = struct.unpack("<d", struct.pack("<Q", 0xFFEFFFFFFFFFFFFE))[0]  # SPSS's LOWEST: read as system-missing


def _readstat_values(path) -> np.ndarray:
    return pyreadstat.read_sav(str(path), user_missing=True)[0].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_numeric_cases_are_the_values_readstat_reads(tmp_path, spec, demo_rows, kind):
    """Codes, user-missing codes, system-missing, raw doubles (ids, fractions, infinities,
    -0.0) and the HIGHEST / LOWEST / system-missing bit patterns that ReadStat reads as NaN."""
    frame = demo_rows.copy()
    specials = [np.inf, -np.inf, -0.0, 0.25, 1e300, DBL_MAX, -DBL_MAX, LOWEST, np.nan, 151.0, -99.0, 152.0]
    frame.loc[: len(specials) - 1, "wijk"] = specials
    suffix, row_compress = KINDS[kind]
    path = tmp_path / f"wij_panel_2019{suffix}"
    write_sav(frame, path, spec, "WIJ-monitor test", row_compress=row_compress)
    content = path.read_bytes()
    values = numeric_cases(content, check_sav_structure(content, NAME))
    expected = _readstat_values(path)
    assert np.isnan(expected[5:8, 2]).all()  # the sentinels really are read as system-missing
    np.testing.assert_array_equal(values, expected)
    assert np.array_equal(np.signbit(values), np.signbit(expected))  # -0.0 stays -0.0


@pytest.mark.parametrize("order", ["<", ">"], ids=["little_endian", "big_endian"])
@pytest.mark.parametrize("end_code", [True, False])
def test_numeric_cases_of_handmade_files_spread_over_blocks(tmp_path, order, end_code):
    cases = CASES * 5
    for compression in (UNCOMPRESSED, BYTECODE):
        content = handmade_sav(cases, compression=compression, ncases=len(cases), order=order, end_code=end_code)
        path = tmp_path / "handmade.sav"
        path.write_bytes(content)
        values = numeric_cases(content, check_sav_structure(content, NAME))
        np.testing.assert_array_equal(values, np.array(cases))
        np.testing.assert_array_equal(values, _readstat_values(path))


@pytest.mark.parametrize("kind", list(KINDS))
def test_files_with_string_variables_are_left_to_readstat(tmp_path, kind):
    frame = pd.DataFrame({"id": [1.0, 2.0], "text": ["a", "abcdefghij"]})
    suffix, row_compress = KINDS[kind]
    path = tmp_path / f"strings{suffix}"
    pyreadstat.write_sav(frame, str(path), row_compress=row_compress, compress=suffix == ".zsav")
    content = path.read_bytes()
    assert numeric_cases(content, check_sav_structure(content, NAME)) is None
