"""Write SPSS `.sav`/`.zsav` files that carry the questionnaire spec's metadata.

SPSS users open these files directly, so each one carries what the spec says:
question texts as variable labels, answer and missing codes as value labels, and
the special codes ("weet niet", "geen antwoord", "niet gevraagd") declared as
user-missing so SPSS leaves them out of its statistics. Used by the demo data
generator, the weight stage and the tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from survey_pipeline.errors import OutputWriteError
from survey_pipeline.spec import QuestionnaireSpec

MAX_DISCRETE_MISSING = 3
MAX_FILE_LABEL_BYTES = 64
MAX_VARIABLE_LABEL_BYTES = 256  # ReadStat cuts longer labels at this byte, possibly inside a character
CODE_FORMAT = "F3.0"
ID_FORMAT = "F12.0"
WAVE_FORMAT = "F4.0"
# Uncompressed numeric data are written in blocks of this many rows (see `_write_numeric_sav`).
DATA_BLOCK_ROWS = 65_536
LAYOUT_CODE_OFFSET, HEADER_CASE_COUNT_OFFSET = 64, 80  # int32 fields of the 176-byte header
# SPSS's system-missing value (-DBL_MAX), as ReadStat writes a missing number.
SYSTEM_MISSING = -np.finfo(np.float64).max


@dataclass(frozen=True)
class SavMetadata:
    """The SPSS dictionary of one file, in the shapes `pyreadstat.write_sav` takes."""

    column_labels: dict[str, str | None]
    value_labels: dict[str, dict[float, str]]
    missing_ranges: dict[str, list[float]]
    formats: dict[str, str]
    measures: dict[str, str]


def spec_metadata(
    columns: Iterable[str],
    spec: QuestionnaireSpec,
    extra_variable_labels: Mapping[str, str] | None = None,
    extra_value_labels: Mapping[str, Mapping[float, str]] | None = None,
) -> SavMetadata:
    """The SPSS dictionary for `columns` as the spec describes them.

    Spec questions get their label, value labels (answers plus missing codes) and
    the three missing codes as discrete user-missing values; background variables
    get label and value labels; `extra_variable_labels` labels any other column
    (e.g. the respondent id, the wave, the weight) and `extra_value_labels` gives such a column value
    labels (a nominal code variable, e.g. a derived 0/1 indicator). Columns the spec
    does not know stay unlabelled.
    """
    extra = dict(extra_variable_labels or {})
    labels: dict[str, str | None] = {}
    value_labels: dict[str, dict[float, str]] = {}
    missing: dict[str, list[float]] = {}
    formats: dict[str, str] = {}
    measures: dict[str, str] = {}
    for name in columns:
        labels[name] = extra.get(name)
        if name in spec.variables:
            variable = spec.variables[name]
            labels[name] = extra.get(name, variable.label)
            value_labels[name] = {float(code): label for code, label in variable.value_labels.items()}
            codes = [float(code) for code in variable.missing.codes]
            if len(codes) > MAX_DISCRETE_MISSING:
                raise ValueError(f"SPSS allows at most {MAX_DISCRETE_MISSING} user-missing codes, '{name}' has {codes}")
            missing[name] = codes
            formats[name] = CODE_FORMAT
            measures[name] = "nominal"
        elif name in spec.background:
            background = spec.background[name]
            labels[name] = extra.get(name, background.label)
            value_labels[name] = {float(code): label for code, label in background.codes.items()}
            formats[name] = CODE_FORMAT
            measures[name] = "nominal"
        elif extra_value_labels and name in extra_value_labels:
            value_labels[name] = {float(code): label for code, label in extra_value_labels[name].items()}
            formats[name] = CODE_FORMAT
            measures[name] = "nominal"
        elif name == spec.respondent_id:
            formats[name] = ID_FORMAT
            measures[name] = "nominal"
        elif name == spec.wave_variable:
            formats[name] = WAVE_FORMAT
            measures[name] = "ordinal"
    labels = {
        name: None if label is None else cut_to_bytes(label, MAX_VARIABLE_LABEL_BYTES) for name, label in labels.items()
    }
    return SavMetadata(labels, value_labels, missing, formats, measures)


def cut_to_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes at a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def write_sav(
    frame: pd.DataFrame,
    path: str | Path,
    spec: QuestionnaireSpec,
    file_label: str,
    extra_variable_labels: Mapping[str, str] | None = None,
    timestamp: datetime | None = None,
    row_compress: bool = False,
    extra_value_labels: Mapping[str, Mapping[float, str]] | None = None,
) -> None:
    """Write `frame` as an SPSS file with the spec's labels and user-missing codes.

    A `.zsav` suffix writes a zlib-compressed file; `row_compress` writes a `.sav`
    with SPSS's bytecode compression (SPSS's own default for `.sav`). Nullable integer columns are written
    as doubles (SPSS numerics); codes are expected as numbers, not text. With
    `timestamp`, the header's creation time is set to it instead of the current
    time, so identical data give byte-identical files. The file label is cut to
    SPSS's 64 bytes at a character boundary (ReadStat would cut inside a character).
    """
    path = Path(path)
    file_label = cut_to_bytes(file_label, MAX_FILE_LABEL_BYTES)
    frame = _spss_numeric(frame)
    meta = spec_metadata(frame.columns, spec, extra_variable_labels, extra_value_labels)
    options = {
        "file_label": file_label,
        "column_labels": meta.column_labels,
        "compress": path.suffix.lower() == ".zsav",
        "row_compress": row_compress and path.suffix.lower() != ".zsav",
        "variable_value_labels": meta.value_labels,
        "missing_ranges": meta.missing_ranges,
        "variable_format": meta.formats,
        "variable_measure": meta.measures,
    }
    numeric = all(dtype == np.float64 for dtype in frame.dtypes)
    try:
        fast = numeric and not options["compress"] and not options["row_compress"] and len(frame) < 2**31
        if not (fast and _write_numeric_sav(frame, path, options)):
            pyreadstat.write_sav(frame, str(path), **options)
    except OSError as exc:
        raise OutputWriteError.from_os_error(exc, path) from None
    except pyreadstat.ReadstatError as exc:
        # ReadStat reports a refused write without the OS's reason ("Unable to write data").
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OutputWriteError(
            path, f"the SPSS writer could not write ({first}): is the disk full, or the file larger than allowed?"
        ) from None
    if timestamp is not None:
        set_header_timestamp(path, timestamp)


def _write_numeric_sav(frame: pd.DataFrame, path: Path, options: Mapping) -> bool:
    """What `pyreadstat.write_sav(frame, path, **options)` writes for an all-float64 frame, uncompressed.

    ReadStat converts row by row and cell by cell in Python (about 0.4 us a cell: 2 s
    for 300,000 rows of 17 columns). Here ReadStat writes the dictionary (a frame with no
    rows), the two case counts it holds are set (the header's and the 64-bit one of
    extension record 7/16), and the data follow as 8-byte doubles per cell in row order,
    NaN as system-missing, which is all an uncompressed file's data are. The bytes equal
    ReadStat's own (tests/ingest/test_sav.py compares them). False, with nothing
    written but the dictionary, if ReadStat's dictionary does not hold the case counts
    where expected (another ReadStat version): the caller then lets ReadStat write all.
    """
    pyreadstat.write_sav(frame.iloc[:0], str(path), **options)
    dictionary = bytearray(path.read_bytes())
    order = "<" if struct.unpack_from("<i", dictionary, LAYOUT_CODE_OFFSET)[0] in (2, 3) else ">"
    empty_count = struct.pack(f"{order}4i2q", 7, 16, 8, 2, 1, 0)  # record 7, subtype 16: (1, ncases)
    if struct.unpack_from(f"{order}i", dictionary, HEADER_CASE_COUNT_OFFSET)[0] != 0 or (
        dictionary.count(empty_count) != 1
    ):
        return False
    struct.pack_into(f"{order}i", dictionary, HEADER_CASE_COUNT_OFFSET, len(frame))
    at = dictionary.index(empty_count)
    dictionary[at : at + len(empty_count)] = struct.pack(f"{order}4i2q", 7, 16, 8, 2, 1, len(frame))
    double = np.dtype(np.float64).newbyteorder(order)
    with path.open("wb") as handle:
        handle.write(dictionary)
        for start in range(0, len(frame), DATA_BLOCK_ROWS):
            block = frame.iloc[start : start + DATA_BLOCK_ROWS].to_numpy(dtype=double, copy=True)
            block[np.isnan(block)] = SYSTEM_MISSING
            handle.write(block.tobytes())
    return True


def set_header_timestamp(path: str | Path, when: datetime) -> None:
    """Overwrite the creation date and time in an SPSS file header (`.sav`/`.zsav`).

    The header holds `creation_date` ("dd Mon yy", 9 bytes) at offset 92 and
    `creation_time` ("hh:mm:ss", 8 bytes) at 101; ReadStat fills them with the
    current time, which makes otherwise identical files differ.
    """
    path = Path(path)
    stamp = when.strftime("%d %b %y").encode("ascii") + when.strftime("%H:%M:%S").encode("ascii")
    with path.open("r+b") as handle:
        if handle.read(4) not in (b"$FL2", b"$FL3"):
            raise ValueError(f"{path} is not an SPSS system file")
        handle.seek(92)
        handle.write(stamp)


def _spss_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable numeric and boolean columns as float64 (NaN = system missing)."""
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            out[name] = out[name].astype("float64")
    return out
