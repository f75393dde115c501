"""Ingest stage: read the raw panel files, check each against the spec, stack them.

Raw files come from panel software and from SPSS users (`.sav`/`.zsav`, CSV,
Parquet). Before any row is used, every file is checked against the questionnaire
spec: variables missing for its wave, unexpected variables, value labels that
disagree with the spec, wrong types and non-integral codes. Problems a user must
fix are errors (the stage stops with exit 2); harmless ones are warnings, kept in
`files.json`. A file that cannot be read at all gives a one-line `InputError`, and
so does an SPSS file cut short: its rows must be every case the file promises.
Every wave of the spec's `survey.waves` must have exactly one file; a file for
a wave the spec does not measure (or does not know) is an error too.

Codes stay as read (float64, special codes such as -1 and 99 intact); row-level
rules (allowed codes, routing, duplicates) are the validate stage's job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat

from survey_pipeline import artifacts, contracts
from survey_pipeline.columns import BASE_WEIGHT, ORIGIN_COLUMNS
from survey_pipeline.errors import InputError
from survey_pipeline.numbers import LONG_ROW_HINT, read_text_csv, rows_of_another_length, whole_number_column
from survey_pipeline.settings import WAVE_PLACEHOLDER, Params, write_record
from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.stages.ingest.sav_structure import SavLayout, check_rows_read, check_sav_structure, numeric_cases

log = logging.getLogger(__name__)

SPSS_SUFFIXES = (".sav", ".zsav")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = SPSS_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES
RECEIPT_FILE = "receipt.csv"
RECEIPT_COLUMNS = ("wave", "expected_respondents")
RECEIPT_OPTIONAL_COLUMNS = ("source", "note")
RULE_RECEIPT = "receipt"
ERROR, WARNING = "error", "warning"
LEGACY_ENCODING = "cp1252"
_SNIFF_BYTES = 8192
_MAX_LABEL_IN_MESSAGE = 80


@dataclass(frozen=True)
class Problem:
    """One finding of the file-level check: an error stops the run, a warning is recorded."""

    severity: str
    rule: str
    variable: str | None
    message: str

    def text(self, file: str) -> str:
        """One line: a variable name from a file header may hold a line break, shown escaped."""
        where = f"{file}, variable '{_escape_unprintable(self.variable)}'" if self.variable else file
        return f"{where}: {self.message}"


@dataclass
class FileReport:
    """What ingest learnt about one raw file; the `files.json` entry."""

    name: str
    path: str
    format: str
    sha256: str
    n_rows: int
    wave: int | None
    file_label: str | None = None
    encoding: str | None = None
    variable_labels: dict[str, str | None] = field(default_factory=dict)
    value_labels: dict[str, dict[float, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "n_rows": self.n_rows,
            "wave": self.wave,
            "file_label": self.file_label,
            "encoding": self.encoding,
            "variable_labels": self.variable_labels,
            "value_labels": {
                name: {_code_text(code): label for code, label in labels.items()}
                for name, labels in self.value_labels.items()
            },
            "warnings": [p.text(self.name) for p in self.warnings],
            "errors": [p.text(self.name) for p in self.errors],
        }


class FileCheckError(InputError):
    """One or more raw files failed the file-level check; `problems` lists every error."""

    def __init__(self, reports: list[FileReport]) -> None:
        failed = [r for r in reports if r.errors]
        self.problems = [(r.name, p) for r in failed for p in r.errors]
        first_file, first = self.problems[0]
        details = "; ".join(p.text(name) for name, p in self.problems)
        super().__init__(
            f"{len(self.problems)} file-level error(s) in {len(failed)} file(s): {details}",
            file=first_file if len(failed) == 1 else None,
            column=first.variable if len(self.problems) == 1 else None,
            rule=first.rule if len(self.problems) == 1 else "file_check",
        )


# ---------------------------------------------------------------------------
# Reading one file


@dataclass
class _RawFile:
    frame: pd.DataFrame
    format: str
    file_label: str | None = None
    encoding: str | None = None
    variable_labels: dict[str, str | None] = field(default_factory=dict)
    value_labels: dict[str, dict[float, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def wave_from_name(name: str, file_pattern: str) -> int | None:
    """The wave in a file name such as `wij_panel_2019.sav`; None if it does not match."""
    prefix, suffix = file_pattern.split(WAVE_PLACEHOLDER)
    regex = re.compile(re.escape(prefix) + r"(?P<wave>\d+)" + re.escape(suffix))
    match = regex.fullmatch(Path(name).name.split(".", 1)[0])
    return int(match["wave"]) if match else None


def read_raw_file(
    path: str | Path,
    spec: QuestionnaireSpec,
    *,
    file_pattern: str = "wij_panel_{wave}",
    display_path: str | None = None,
) -> tuple[pd.DataFrame, FileReport]:
    """Read one raw file and check it against the spec.

    Returns the standardised frame (origin columns, then resp_id, wave, background
    and every spec variable as float64) and the file's report. File-level findings
    are in `report.problems`; an unreadable file raises `InputError` at once.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"unsupported file type '{suffix}' (expected {', '.join(SUPPORTED_SUFFIXES)})", file=name, rule="file_type"
        )
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot open the file ({exc.strerror or type(exc).__name__})", file=name, rule="unreadable_file"
        ) from None
    if not content.strip():
        raise InputError("the file is empty (no header, no data)", file=name, rule="empty_file")
    _check_content_type(content, suffix, name)

    if suffix in SPSS_SUFFIXES:
        raw = _read_spss(path, name, content)
    elif suffix in CSV_SUFFIXES:
        raw = _read_csv(content, name)
    else:
        raw = _read_parquet(content, name)

    wave = wave_from_name(name, file_pattern)
    report = FileReport(
        name=name,
        path=display_path or name,
        format=raw.format,
        sha256=hashlib.sha256(content).hexdigest(),
        n_rows=len(raw.frame),
        wave=wave,
        file_label=raw.file_label,
        encoding=raw.encoding,
        variable_labels=raw.variable_labels,
        value_labels=raw.value_labels,
        problems=list(raw.problems),
    )
    if wave is None:
        example = file_pattern.replace(WAVE_PLACEHOLDER, str(spec.waves[0]))
        report.problems.append(
            Problem(
                ERROR,
                "wave_from_name",
                None,
                f"the file name does not match '{file_pattern}' (e.g. {example}{suffix}), so its wave is unknown",
            )
        )
    elif wave in spec.not_measured:
        report.problems.append(
            Problem(
                ERROR,
                "wave_not_measured",
                None,
                f"the spec declares wave {wave} not measured (survey.not_measured: {spec.not_measured[wave]}); "
                f"remove the file, or move {wave} to survey.waves",
            )
        )
    elif wave not in spec.waves:
        report.problems.append(
            Problem(
                ERROR,
                "wave_in_spec",
                None,
                f"wave {wave} (from the file name) is not one of the spec's waves {list(spec.waves)}; "
                f"add it to survey.waves (or survey.not_measured) or remove the file",
            )
        )
    frame = _check_and_standardise(raw, spec, wave if wave in spec.waves else None, report)
    return frame, report


def _check_content_type(content: bytes, suffix: str, name: str) -> None:
    """A file whose content is not what its extension says fails with a one-line hint."""
    head = content[:_SNIFF_BYTES]
    if head[:4] in (b"$FL2", b"$FL3"):
        kind = "an SPSS file"
    elif head[:4] == b"PAR1":
        kind = "a Parquet file"
    elif head[:4] == b"PK\x03\x04":
        kind = "a ZIP archive (an Excel .xlsx file?)"
    elif head[:4] == b"\xd0\xcf\x11\xe0":
        kind = "an old Excel/Office file"
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        kind = "UTF-16 text (save it as UTF-8 CSV)"
    elif b"\x00" in head:
        kind = "binary data of an unknown kind"
    else:
        kind = "text (a CSV file?)"
    expected = "SPSS" if suffix in SPSS_SUFFIXES else "CSV" if suffix in CSV_SUFFIXES else "Parquet"
    ok = (
        (expected == "SPSS" and kind == "an SPSS file")
        or (expected == "Parquet" and kind == "a Parquet file")
        or (expected == "CSV" and kind.startswith("text"))
    )
    if not ok:
        raise InputError(
            f"not a{'n' if expected == 'SPSS' else ''} {expected} file: the content is {kind}; check the file and its extension",
            file=name,
            rule="file_type",
        )


_SPSS_ERRORS = (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, UnicodeError, ValueError, OSError)
_RAW_BYTES = "ISO-8859-1"


def _read_spss(path: Path, name: str, content: bytes) -> _RawFile:
    """Read a .sav/.zsav with user-missing codes kept (99, 98, -1 stay codes, not NaN).

    The file must be whole first (`sav_structure`): ReadStat returns what it
    could read, so a file cut short would otherwise pass with fewer rows. The
    rows read must then equal the cases the file's own structure promises.

    Labels that are not valid UTF-8 although the file says UTF-8 make ReadStat
    either fail or silently drop bytes. Both are caught: the dictionary is read
    again byte for byte (as Latin-1), each label is decoded as UTF-8 where valid
    and otherwise as Windows-1252 (what older SPSS versions wrote), with a warning.
    """
    layout = check_sav_structure(content, name)
    try:
        frame, meta = _read_sav(path, content, layout)
        raw_meta = None
        utf8 = (meta.file_encoding or "UTF-8").upper().replace("-", "") == "UTF8"
        if utf8:
            raw_meta = _read_sav_meta_bytes(path)
    except _SPSS_ERRORS as exc:
        if "encoding" not in str(exc):
            raise InputError(
                f"cannot read the SPSS file ({_first_line(exc)}); it is truncated or corrupt",
                file=name,
                rule="unreadable_file",
            ) from None
        try:
            frame, meta = pyreadstat.read_sav(str(path), user_missing=True, encoding=_RAW_BYTES)
        except _SPSS_ERRORS as retry:
            raise InputError(
                f"cannot read the SPSS file ({_first_line(retry)}); it is truncated or corrupt",
                file=name,
                rule="unreadable_file",
            ) from None
        raw_meta = meta
        frame = frame.rename(columns=lambda c: _decode(c)[0])
        for column in frame.columns:
            if pd.api.types.is_string_dtype(frame[column].dtype):
                frame[column] = frame[column].map(lambda v: _decode(v)[0] if isinstance(v, str) else v).astype("str")
    check_rows_read(layout, len(frame), name)
    raw = _RawFile(
        frame=frame,
        format="spss",
        file_label=meta.file_label or None,
        encoding=meta.file_encoding,
        variable_labels={c: meta.column_names_to_labels.get(c) for c in frame.columns},
        value_labels={c: dict(v) for c, v in (meta.variable_value_labels or {}).items()},
    )
    if raw_meta is not None:
        _apply_raw_labels(raw, raw_meta)
    return raw


# Display formats of plain numbers: pyreadstat returns such variables as stored (other
# formats, dates and times, it converts).
_PLAIN_NUMBER_FORMAT = re.compile(r"(F|N|E|COMMA|DOT|DOLLAR|PCT)\d*(\.\d+)?")


def _read_sav(path: Path, content: bytes, layout: SavLayout) -> tuple[pd.DataFrame, Any]:
    """The file's rows and dictionary with user-missing codes kept, as `pyreadstat.read_sav` gives them.

    A file of plain numeric variables (the usual panel export) is decoded with numpy from
    the structure already walked (`sav_structure.numeric_cases`), after reading only the
    dictionary with pyreadstat; ReadStat's row-by-row reading costs about 2 s per 300,000
    rows of 17 variables. Any other file is read by pyreadstat whole.
    """
    meta = pyreadstat.read_sav(str(path), metadataonly=True, user_missing=True)[1]
    plain = all(
        meta.readstat_variable_types.get(column) == "double"
        and _PLAIN_NUMBER_FORMAT.fullmatch(meta.original_variable_types.get(column) or "")
        for column in meta.column_names
    )
    values = numeric_cases(content, layout) if plain and len(meta.column_names) == layout.case_size else None
    if values is None:
        return pyreadstat.read_sav(str(path), user_missing=True)
    return pd.DataFrame(values, columns=list(meta.column_names), copy=False), meta


def _read_sav_meta_bytes(path: Path) -> Any:
    """The file's dictionary with every label byte kept (decoded as Latin-1)."""
    try:
        return pyreadstat.read_sav(str(path), metadataonly=True, user_missing=True, encoding=_RAW_BYTES)[1]
    except _SPSS_ERRORS:
        return None


def _decode(text: str) -> tuple[str, bool]:
    """Latin-1-decoded bytes back to text: UTF-8 if valid, else Windows-1252 (True)."""
    data = text.encode("latin-1", errors="replace")
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode(LEGACY_ENCODING, errors="replace"), True


def _apply_raw_labels(raw: _RawFile, raw_meta: Any) -> None:
    """Replace labels by their byte-exact decoding; warn where a label was not UTF-8."""
    names = {_decode(c)[0]: c for c in raw_meta.column_names}
    if raw_meta.file_label:
        text, legacy = _decode(raw_meta.file_label)
        raw.file_label = text
        if legacy:
            raw.problems.append(
                Problem(
                    WARNING,
                    "label_encoding",
                    None,
                    f"the file label is not valid UTF-8 text; read as {LEGACY_ENCODING}",
                )
            )
    for column in raw.variable_labels:
        label = (raw_meta.column_names_to_labels or {}).get(names.get(column, column))
        if label is None:
            continue
        text, legacy = _decode(label)
        raw.variable_labels[column] = text
        if legacy:
            raw.problems.append(
                Problem(
                    WARNING,
                    "label_encoding",
                    column,
                    f"the variable label is not valid UTF-8 text; read as {LEGACY_ENCODING}",
                )
            )
    raw_value_labels = raw_meta.variable_value_labels or {}
    raw.value_labels = {}
    for column in raw.variable_labels:
        labels = raw_value_labels.get(names.get(column, column))
        if not labels:
            continue
        decoded = {code: _decode(label) for code, label in labels.items()}
        raw.value_labels[column] = {code: text for code, (text, _) in decoded.items()}
        legacy = sorted(code for code, (_, bad) in decoded.items() if bad)
        if legacy:
            codes = ", ".join(_code_text(c) for c in legacy)
            raw.problems.append(
                Problem(
                    WARNING,
                    "label_encoding",
                    column,
                    f"value label(s) of code(s) {codes} are not valid UTF-8 text; read as {LEGACY_ENCODING}",
                )
            )


def _read_csv(content: bytes, name: str) -> _RawFile:
    problems = []
    try:
        text = content.decode("utf-8-sig")
        encoding = "UTF-8"
    except UnicodeDecodeError:
        text = content.decode(LEGACY_ENCODING, errors="replace")
        encoding = LEGACY_ENCODING
        problems.append(
            Problem(WARNING, "text_encoding", None, f"the file is not UTF-8 text; read as {LEGACY_ENCODING}")
        )
    sep, header = _csv_header(text, name)
    duplicated = sorted({h.strip() for h in header if [x.strip() for x in header].count(h.strip()) > 1})
    if duplicated:
        raise InputError(
            f"column(s) {duplicated} appear more than once in the header", file=name, rule="duplicate_column"
        )
    _check_row_lengths(text, sep, len(header), name)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal="," if sep == ";" else ".", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"malformed CSV ({_first_line(exc)})", file=name, rule="unreadable_file") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return _RawFile(frame=frame, format="csv", encoding=encoding, problems=problems)


def _csv_header(text: str, name: str) -> tuple[str, list[str]]:
    """The separator and the header cells, the header read as one CSV record.

    A quoted header cell may hold a line break (`"resp<newline>id"`), so the header is
    not the first line of text. Each candidate separator parses the first
    non-blank record; the one that gives most cells wins (ties: comma).
    """
    headers = {}
    try:
        for sep in (",", ";", "\t"):
            records = csv.reader(io.StringIO(text), delimiter=sep)
            headers[sep] = next((r for r in records if r and (len(r) > 1 or r[0].strip())), [])
    except csv.Error as exc:
        raise InputError(f"malformed CSV header ({_first_line(exc)})", file=name, rule="unreadable_file") from None
    sep = max(headers, key=lambda s: len(headers[s]))
    return sep, headers[sep]


def _check_row_lengths(text: str, sep: str, n_fields: int, name: str) -> None:
    """A data row with fewer or more fields than the header is an error.

    pandas pads a short row with NaN, so a CSV cut off in the middle of a row (a
    truncated download or copy) would otherwise pass as a row with blank answers; a
    first row with a field more (a trailing separator) would shift every column.
    Rows are counted as pandas counts them (blank lines skipped), so the row number
    is the `source_row`.
    """
    try:
        _, n_rows, wrong = rows_of_another_length(text, sep)
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({_first_line(exc)})", file=name, rule="unreadable_file") from None
    if not wrong:
        return
    row, found = wrong[0]
    same_kind = [(r, n) for r, n in wrong if (n > n_fields) == (found > n_fields)]
    more = (
        f" (the first of {len(same_kind)} {'long' if found > n_fields else 'short'} rows)" if len(same_kind) > 1 else ""
    )
    if found > n_fields:
        message = f"malformed CSV: the row has {found} fields but the header has {n_fields}{more}; {LONG_ROW_HINT}"
    else:
        truncated = same_kind == [(n_rows, found)] and not text.endswith(("\n", "\r"))
        hint = "the file ends inside it: truncated?" if truncated else "a separator is missing or the file is damaged"
        message = f"malformed CSV: the row has {found} of {n_fields} fields{more}; {hint}"
    raise InputError(message, file=name, row=row, rule="unreadable_file")


def _read_parquet(content: bytes, name: str) -> _RawFile:
    import pyarrow

    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the Parquet file ({_first_line(exc)}); it is truncated or corrupt",
            file=name,
            rule="unreadable_file",
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return _RawFile(frame=frame, format="parquet")


# ---------------------------------------------------------------------------
# Checking one file against the spec


def _check_and_standardise(
    raw: _RawFile, spec: QuestionnaireSpec, wave: int | None, report: FileReport
) -> pd.DataFrame:
    problems = report.problems
    frame = raw.frame
    if len(frame) == 0:
        problems.append(Problem(ERROR, "empty_file", None, "the file has no data rows"))

    id_columns = (spec.respondent_id, spec.wave_variable)
    measured = [v.name for v in spec.variables.values() if wave is None or wave in v.waves]
    unmeasured = [v.name for v in spec.variables.values() if wave is not None and wave not in v.waves]
    required = [*id_columns, *spec.background, *(measured if wave is not None else [])]
    known = [*id_columns, *spec.background, *spec.variables, BASE_WEIGHT]

    columns = _match_columns(list(frame.columns), known, problems)
    id_keys = {spec.respondent_id: "survey.respondent_id", spec.wave_variable: "survey.wave_variable"}
    for name in required:
        if name not in columns:
            what = "background variable" if name in spec.background else "variable"
            why = f" (the spec asks it in wave {wave})" if name in spec.variables else ""
            if name in id_keys:
                why = f" (the spec's {id_keys[name]})"
            problems.append(Problem(ERROR, "missing_variable", name, f"{what} is missing from the file{why}"))

    n = len(frame)
    values: dict[str, pd.Series] = {}
    for name in known:
        if name in columns:
            series, problem = _as_numbers(frame[columns[name]], name)
            if problem is not None and name == BASE_WEIGHT and problem.severity == WARNING:
                problem = _base_weight_as_text(frame[columns[name]])
            if problem is not None:
                problems.append(problem)
            values[name] = series
    codes = [spec.wave_variable, *spec.background, *spec.variables]
    distinct = {name: _distinct_values(values[name]) for name in codes if name in values}
    for name in [spec.respondent_id, *codes]:
        if name in values:
            _check_integral(
                values[name],
                name,
                include_value=name != spec.respondent_id,
                problems=problems,
                distinct=distinct.get(name),
            )

    if raw.format == "spss":
        for name in [*spec.background, *measured]:
            if name in columns:
                _check_labels(name, columns[name], spec, raw, set(distinct[name].tolist()), problems)

    not_asked = {v.name: v.missing.not_asked.code for v in spec.variables.values()}
    for name in unmeasured:
        if name in values:
            answers = int((values[name].notna() & (values[name] != not_asked[name])).sum())
            if answers:
                problems.append(
                    Problem(
                        ERROR,
                        "not_in_wave",
                        name,
                        f"the spec says wave {wave} does not ask this question, but the file holds {answers} answer(s); "
                        f"add {wave} to variables.{name}.waves in the spec or remove the column",
                    )
                )
            else:
                problems.append(
                    Problem(
                        WARNING,
                        "not_in_wave",
                        name,
                        f"the spec says wave {wave} does not ask this question; the column (only blank or -1) is ignored",
                    )
                )
            del values[name]

    numeric = [*id_columns, *spec.background, *spec.variables, *([BASE_WEIGHT] if BASE_WEIGHT in values else [])]
    # one float64 block (column-major, as pandas keeps it): stacking the files copies it once
    block = np.empty((n, len(numeric)), order="F")
    for index, name in enumerate(numeric):
        block[:, index] = values[name].to_numpy(dtype="float64") if name in values else np.nan
    out = pd.DataFrame(block, columns=numeric, copy=False)
    out.insert(0, "source_file", pd.Series([report.name] * n, dtype="str"))
    out.insert(1, "source_row", np.arange(1, n + 1, dtype="int64"))
    out.insert(2, "file_wave", np.full(n, wave if wave is not None else -1, dtype="int64"))
    return out


def _match_columns(present: list[str], known: list[str], problems: list[Problem]) -> dict[str, str]:
    """Map spec names to file columns; names differing only in case are matched with a warning."""
    columns = {name: name for name in present if name in known}
    by_lower = {name.lower(): name for name in known}
    for name in present:
        if name in columns:
            continue
        target = by_lower.get(name.lower())
        if target is not None and target not in columns:
            columns[target] = name
            problems.append(
                Problem(WARNING, "variable_name_case", target, f"the file calls it '{name}'; read as '{target}'")
            )
        else:
            problems.append(Problem(WARNING, "extra_variable", name, "not in the spec; ignored"))
    return columns


def _as_numbers(series: pd.Series, name: str) -> tuple[pd.Series, Problem | None]:
    """The column as float64; text that is not a number is a type error, bool and dates too."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return pd.Series(np.nan, index=series.index), Problem(
            ERROR, "wrong_type", name, "holds true/false values; expected numeric codes"
        )
    if pd.api.types.is_numeric_dtype(dtype):
        return series.astype("float64").reset_index(drop=True), None
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return pd.Series(np.nan, index=series.index), Problem(
            ERROR, "wrong_type", name, f"holds dates ({dtype}); expected numeric codes"
        )
    text = series.astype("str").str.strip()
    blank = series.isna() | text.eq("")
    parsed = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64").reset_index(drop=True)
    bad = (~blank.to_numpy()) & parsed.isna().to_numpy()
    if blank.all():
        return parsed, None
    if bad.any():
        first = int(np.flatnonzero(bad)[0]) + 1
        return parsed.where(~bad), Problem(
            ERROR, "wrong_type", name, f"{int(bad.sum())} value(s) are text, not numeric codes (first at row {first})"
        )
    return parsed, Problem(WARNING, "wrong_type", name, "stored as text; read as numbers")


def _base_weight_as_text(series: pd.Series) -> Problem:
    """Base weights are real numbers: one stored as text (`1.234` in a `;` file, ` 2 `) is
    ambiguous (a thousands separator or a decimal point?), so it is an error, not a guess."""
    numeric = pd.to_numeric(series, errors="coerce")
    first = int(np.flatnonzero((series.notna() & numeric.notna()).to_numpy())[0]) + 1
    return Problem(
        ERROR,
        "wrong_type",
        BASE_WEIGHT,
        f"base weights are stored as text (first at row {first}), e.g. with a thousands separator or "
        "the other decimal mark; write plain numbers with the file's decimal mark",
    )


def _distinct_values(values: pd.Series) -> np.ndarray:
    """The column's distinct values, blanks left out: a code column has a few, so checks of the
    codes (whole numbers, labelled) look at these instead of every row."""
    distinct = pd.unique(values.to_numpy(dtype="float64"))
    return distinct[~np.isnan(distinct)]


def _check_integral(
    values: pd.Series, name: str, *, include_value: bool, problems: list[Problem], distinct: np.ndarray | None = None
) -> None:
    """Every finite value a whole number; `distinct` (the column's distinct values) answers that
    when all of them are, and the rows are searched only when one is not."""
    if distinct is not None and not _not_whole(distinct).any():
        return
    array = values.to_numpy(dtype="float64")
    bad = _not_whole(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        example = f", e.g. {array[first]:g}" if include_value else ""
        problems.append(
            Problem(
                ERROR,
                "non_integral",
                name,
                f"{int(bad.sum())} value(s) are not whole-number codes (first at row {first + 1}{example})",
            )
        )


def _not_whole(array: np.ndarray) -> np.ndarray:
    return np.isfinite(array) & (array != np.round(array))


def _check_labels(
    name: str, column: str, spec: QuestionnaireSpec, raw: _RawFile, present: set[float], problems: list[Problem]
) -> None:
    """Compare the file's value labels (and question text) with the spec's; `present`: the codes in the data."""
    if name in spec.variables:
        expected = spec.variables[name].value_labels
        spec_label = spec.variables[name].label
    else:
        expected = dict(spec.background[name].codes)
        spec_label = spec.background[name].label
    file_label = raw.variable_labels.get(column)
    if file_label and _normalise(file_label) != _normalise(spec_label):
        problems.append(
            Problem(
                WARNING,
                "variable_label",
                name,
                f"variable label '{_clip(file_label)}' differs from the spec's '{_clip(spec_label)}'",
            )
        )
    labels = raw.value_labels.get(column, {})
    if not labels:
        problems.append(
            Problem(WARNING, "value_labels_missing", name, "the file has no value labels for this variable")
        )
        return
    for code, label in sorted(labels.items()):
        key = int(code) if float(code).is_integer() else None
        if key is None or key not in expected:
            used = code in present
            problems.append(
                Problem(
                    ERROR if used else WARNING,
                    "value_label_unknown_code",
                    name,
                    f"value label '{_clip(label)}' for code {_code_text(code)}, which is not a code in the spec"
                    + (" and occurs in the data" if used else " (not used in the data)"),
                )
            )
        elif label != expected[key]:
            same = _normalise(label) == _normalise(expected[key])
            problems.append(
                Problem(
                    WARNING if same else ERROR,
                    "value_label_mismatch",
                    name,
                    f"code {key} is labelled '{_clip(label)}' in the file but '{expected[key]}' in the spec",
                )
            )
    unlabelled = [code for code in expected if float(code) not in labels]
    if unlabelled:
        problems.append(
            Problem(WARNING, "value_labels_incomplete", name, f"no value label for code(s) {unlabelled} in the file")
        )


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_LABEL_IN_MESSAGE else text[: _MAX_LABEL_IN_MESSAGE - 1] + "…"


def _code_text(code: float) -> str:
    code = float(code)
    return str(int(code)) if code.is_integer() else repr(code)


def _escape_unprintable(text: str) -> str:
    """Line breaks and other unprintable characters as escapes (`\\n`), so text stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------
# All files of a run


def find_raw_files(raw_dir: Path) -> list[Path]:
    """The supported files in `raw_dir` (hidden files and other types skipped)."""
    if not raw_dir.is_dir():
        raise InputError("the raw data folder does not exist", file=str(raw_dir), rule="raw_dir")
    paths = []
    for path in sorted(raw_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.name == RECEIPT_FILE:
            continue
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            paths.append(path)
        else:
            log.info("skipping %s (not a data file type)", path.name)
    if not paths:
        raise InputError(
            f"no raw data files ({', '.join(SUPPORTED_SUFFIXES)}) in the folder", file=str(raw_dir), rule="raw_dir"
        )
    return paths


def ingest_files(
    paths: list[Path], spec: QuestionnaireSpec, file_pattern: str, base_dir: Path | None = None
) -> tuple[pd.DataFrame, list[FileReport]]:
    """Read and check every file; raise `FileCheckError` listing all errors, else stack them."""
    frames, reports = [], []
    for path in paths:
        frame, report = read_raw_file(path, spec, file_pattern=file_pattern, display_path=_display_path(path, base_dir))
        for problem in report.warnings:
            log.warning("%s", problem.text(report.name))
        frames.append(frame)
        reports.append(report)
    by_wave: dict[int, list[str]] = {}
    for report in reports:
        if report.wave is not None:
            by_wave.setdefault(report.wave, []).append(report.name)
    for wave, names in by_wave.items():
        if len(names) > 1:
            for report in reports:
                if report.name in names:
                    report.problems.append(
                        Problem(
                            ERROR,
                            "one_file_per_wave",
                            None,
                            f"wave {wave} has {len(names)} files ({', '.join(names)}); keep one",
                        )
                    )
    if any(r.errors for r in reports):
        raise FileCheckError(reports)
    return stack_frames(frames, spec), reports


def check_every_wave_has_a_file(
    reports: list[FileReport], spec: QuestionnaireSpec, file_pattern: str, raw_dir: str
) -> None:
    """Every wave of `survey.waves` has a raw file: a run without one would publish "-" for a wave the
    spec says was measured. A wave deliberately not measured belongs in `survey.not_measured`."""
    found = {r.wave for r in reports}
    missing = [w for w in spec.waves if w not in found]
    if not missing:
        return
    expected = ", ".join(file_pattern.replace(WAVE_PLACEHOLDER, str(w)) + ".sav" for w in missing)
    raise InputError(
        f"no raw file for wave(s) {', '.join(map(str, missing))} of survey.waves in the spec: expected {expected} "
        f"(or {', '.join(SUPPORTED_SUFFIXES[1:])}) in the folder; a wave deliberately not measured belongs in "
        f"survey.not_measured with its reason",
        file=raw_dir,
        rule="missing_wave",
    )


def stack_frames(frames: list[pd.DataFrame], spec: QuestionnaireSpec) -> pd.DataFrame:
    """One table in the `ingest_responses` column order; base_weight kept if any file has it."""
    columns = [*ORIGIN_COLUMNS, spec.respondent_id, spec.wave_variable, *spec.background, *spec.variables]
    if any(BASE_WEIGHT in f.columns for f in frames):
        columns.append(BASE_WEIGHT)
    stacked = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True)
    for name in columns[3:]:
        if stacked[name].dtype != "float64":  # (a column only some files have) replacing a column splits the block
            stacked[name] = stacked[name].astype("float64")
    stacked["source_file"] = stacked["source_file"].astype("str")
    return stacked


def _display_path(path: Path, base_dir: Path | None) -> str:
    if base_dir is not None:
        try:
            return path.resolve().relative_to(Path(base_dir).resolve()).as_posix()
        except ValueError:
            pass
    return path.name


# ---------------------------------------------------------------------------
# The panel provider's receipt


@dataclass(frozen=True)
class ReceiptLine:
    """One wave of the receipt: how many respondents the panel provider delivered."""

    wave: int
    expected_respondents: int
    row: int
    source: str | None
    note: str | None


def read_receipt(path: Path, spec: QuestionnaireSpec) -> dict[int, ReceiptLine]:
    """The receipt's lines by wave; numbers are parsed strictly, a wave may appear once."""
    name = path.name
    table = read_text_csv(path, rule=RULE_RECEIPT)
    known = (*RECEIPT_COLUMNS, *RECEIPT_OPTIONAL_COLUMNS)
    missing = [c for c in RECEIPT_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in known]
    if missing or unknown:
        raise InputError(
            f"expected the columns {', '.join(RECEIPT_COLUMNS)} (optional: {', '.join(RECEIPT_OPTIONAL_COLUMNS)}); "
            + (f"missing {missing}" if missing else f"unknown {unknown}"),
            file=name,
            rule=RULE_RECEIPT,
        )
    if table.empty:
        raise InputError("the receipt has no rows", file=name, rule=RULE_RECEIPT)
    first_row = 2  # line 1 is the header
    waves = whole_number_column(
        table["wave"].tolist(), file=name, column="wave", rule=RULE_RECEIPT, first_row=first_row
    )
    expected = whole_number_column(
        table["expected_respondents"].tolist(),
        file=name,
        column="expected_respondents",
        rule=RULE_RECEIPT,
        first_row=first_row,
        minimum=1,
    )
    lines: dict[int, ReceiptLine] = {}
    for index, (wave, count) in enumerate(zip(waves.tolist(), expected.tolist())):
        row = first_row + index
        if wave not in spec.waves:
            raise InputError(
                f"wave {wave} is not one of the spec's waves {list(spec.waves)}",
                file=name,
                row=row,
                column="wave",
                rule=RULE_RECEIPT,
            )
        if wave in lines:
            raise InputError(
                f"wave {wave} is listed twice (first at row {lines[wave].row})",
                file=name,
                row=row,
                column="wave",
                rule=RULE_RECEIPT,
            )
        optional = {
            c: (table.at[index, c].strip() or None) if c in table.columns else None for c in RECEIPT_OPTIONAL_COLUMNS
        }
        lines[wave] = ReceiptLine(wave, count, row, **optional)
    return lines


def check_receipt(receipt: dict[int, ReceiptLine], reports: list[FileReport], receipt_name: str) -> dict[str, dict]:
    """Each file's data rows against the receipt; returns the `receipt` entry of each file in files.json.

    A file whose row count differs is an `InputError`; a file the receipt does not list is
    recorded as unchecked, with a warning. (A receipt line for a wave without a file cannot
    get here: every wave of the spec has a file, and the receipt lists only the spec's waves.)
    """
    entries: dict[str, dict] = {}
    for report in reports:
        line = receipt.get(report.wave)
        if line is None:
            log.warning(
                "%s: %s has no line for wave %s; its row count is not checked", report.name, receipt_name, report.wave
            )
            entries[report.name] = {"file": receipt_name, "checked": False}
            continue
        if report.n_rows != line.expected_respondents:
            raise InputError(
                f"the file has {report.n_rows} data rows but the panel provider's receipt ({receipt_name}, row "
                f"{line.row}) says {line.expected_respondents} respondents for wave {line.wave}",
                file=report.name,
                rule=RULE_RECEIPT,
            )
        entries[report.name] = {
            "file": receipt_name,
            "checked": True,
            "row": line.row,
            "expected_respondents": line.expected_respondents,
            "source": line.source,
            "note": line.note,
        }
    return entries


def run(store: artifacts.OutputStore, spec: QuestionnaireSpec, params: Params, base_dir: Path) -> dict:
    """Read every raw file, check it (and its row count against `receipt.csv` if there is one),
    write `responses.parquet`, `files.json` and the settings record."""
    settings = params.ingest
    raw_dir = Path(base_dir) / settings.raw_dir
    paths = find_raw_files(raw_dir)
    log.info("ingest: %d raw file(s) in %s", len(paths), settings.raw_dir)
    receipt_path = raw_dir / RECEIPT_FILE
    receipt = read_receipt(receipt_path, spec) if receipt_path.is_file() else None
    responses, reports = ingest_files(paths, spec, settings.file_pattern, base_dir=Path(base_dir))
    check_every_wave_has_a_file(reports, spec, settings.file_pattern, settings.raw_dir)
    receipt_entries = check_receipt(receipt, reports, RECEIPT_FILE) if receipt is not None else {}
    files = {r.name: {**r.to_json(), "receipt": receipt_entries.get(r.name)} for r in reports}
    with store.writing("ingest") as out:
        artifacts.write_table(responses, out / "responses.parquet", contracts.IngestResponses, spec)
        artifacts.write_json(files, out / "files.json", contracts.IngestFiles)
        write_record(out, {"ingest": settings})
    rows_per_wave = {str(r.wave): r.n_rows for r in sorted(reports, key=lambda r: r.wave)}
    log.info("ingest: %d rows from %d file(s)", len(responses), len(reports))
    return {
        "files": len(reports),
        "rows": len(responses),
        "rows_per_wave": rows_per_wave,
        "warnings": sum(len(r.warnings) for r in reports),
        "receipt_checked_waves": sorted(r.wave for r in reports if (receipt_entries.get(r.name) or {}).get("checked")),
    }
