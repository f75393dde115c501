"""Strict parsing of numbers read as text (population files, receipts): one rule for every file.

A number in an input file is written the way Python and CSV exports write it, and
nothing else, so that no value is read as a different number:

- whole numbers are digits with an optional leading '-': `75826`, `-1`;
- rejected, with file, row and column: thousands separators (`75.826`, `75,826`,
  `1.234.567`: Dutch and English exports disagree on what they mean), decimal commas
  (`7,5e3`), spaces around the value (`' 12 '`), blanks, `NaN`/`inf`, true/false, a
  leading '+', and a decimal point in a whole number (`75826.0`).

Messages quote the offending text: these files hold aggregates, never respondent
answers. The real-number form (`0.5`, `1.0e-10`) is recognised only to explain a
params value that YAML read as text (`survey_pipeline.settings`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from survey_pipeline.errors import InputError

_WHOLE = re.compile(r"-?[0-9]+")
_REAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*")
_NOT_FINITE = {"nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity", "na", "n/a", "null", "none"}
_LARGEST = 2**53  # every whole number up to here is exact as a float64 (counts are stored as floats)
_BOOLEANS = {"true", "false", "ja", "nee", "yes", "no"}
LONG_ROW_HINT = "a separator inside an unquoted value or at the end of the row?"


def number_problem(text: str, *, whole: bool) -> str | None:
    """Why `text` is not a strictly written whole (or real) number; None when it is one."""
    pattern = _WHOLE if whole else _REAL
    if pattern.fullmatch(text):
        return None
    kind = "a whole number" if whole else "a number"
    if not text.strip():
        return f"empty value (expected {kind})"
    if text != text.strip():
        return f"spaces around the value (expected {kind}, digits only)"
    lowered = text.lower()
    if lowered in _NOT_FINITE:
        return f"not a finite number (expected {kind})"
    if lowered in _BOOLEANS:
        return f"a yes/no value (expected {kind})"
    if text.startswith("+"):
        return f"a leading '+' (expected {kind} without a plus sign)"
    if _GROUPED.fullmatch(text):
        return (
            f"a thousands separator or decimal mark in {kind}: '.' and ',' mean different things in Dutch "
            "and English exports; write digits only" + ("" if whole else ", with '.' as the decimal point")
        )
    if "," in text:
        return f"a comma in {kind}: write digits only" + ("" if whole else ", with '.' as the decimal point")
    if whole and _REAL.fullmatch(text):
        return "not a whole number (write digits only, no decimal point or exponent)"
    return f"not {kind}"


def parse_whole_number(
    text: str,
    *,
    file: str,
    row: int | None,
    column: str,
    rule: str,
    minimum: int | None = None,
) -> int:
    """`text` as an int (>= `minimum` if given), or `InputError` naming file, row, column and the text."""
    problem = number_problem(text, whole=True)
    if problem is None and abs(int(text)) > _LARGEST:
        problem = "too large a number"
    elif problem is None and minimum is not None and int(text) < minimum:
        problem = f"expected a whole number >= {minimum}"
    if problem is not None:
        raise InputError(f"{problem}, got {text!r}", file=file, row=row, column=column, rule=rule)
    return int(text)


def read_text_csv(path: Path, *, rule: str) -> pd.DataFrame:
    """A CSV file with every cell as the text in the file (blank is ''), for strict parsing.

    pandas would otherwise guess types: `75.826` would become a float and `75,826` text.
    Every row must have as many fields as the header (`rows_of_another_length`): an
    unquoted `75,826` adds a field, and pandas would silently shift the columns.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
        n_fields, _, wrong = rows_of_another_length(text, ",")
        if wrong:
            row, found = wrong[0]
            hint = LONG_ROW_HINT if found > n_fields else "a separator is missing or the file is damaged"
            raise InputError(
                f"malformed CSV: the row has {found} fields but the header has {n_fields}; {hint}",
                file=str(path),
                row=row + 1,
                rule=rule,
            )
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV file ({type(exc).__name__})", file=str(path), rule=rule) from None


def rows_of_another_length(text: str, sep: str) -> tuple[int, int, list[tuple[int, int]]]:
    """The header's number of fields, the number of data rows, and (data row, fields) of each
    data row with another number of fields.

    pandas pads a short row with blanks, and when the first data row has one field more
    than the header it reads the first column as the row index and shifts every column:
    both would pass silently. Blank lines are skipped as pandas skips them, so data row 1
    is the first record after the header. A quoted field may hold separators and line
    breaks. Raises `csv.Error` on malformed quoting.
    """
    records = (r for r in csv.reader(io.StringIO(text), delimiter=sep) if r and (len(r) > 1 or r[0].strip()))
    n_fields = len(next(records, []))
    lengths = [len(r) for r in records]
    return n_fields, len(lengths), [(row, n) for row, n in enumerate(lengths, start=1) if n != n_fields]


def whole_number_column(
    texts: Sequence[str],
    *,
    file: str,
    column: str,
    rule: str,
    first_row: int,
    minimum: int | None = None,
) -> np.ndarray:
    """Every text of a column as int64; the first bad one raises, its row is `first_row + position`."""
    return np.array(
        [
            parse_whole_number(t, file=file, row=first_row + i, column=column, rule=rule, minimum=minimum)
            for i, t in enumerate(texts)
        ],
        dtype=np.int64,
    )
