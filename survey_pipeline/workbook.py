"""Excel workbooks written safely: the shared writer of the report's and the quarantine's workbooks.

Numbers are written as numbers (shares with a percent format), text with
`write_string`, and the workbook is opened with `strings_to_formulas`,
`strings_to_urls` and `strings_to_numbers` off, so no text cell can become a
formula, link or number, whatever it starts with; the text is stored unchanged.
(CSV files have no cell types: `stages/report/csv_safety.py`.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import pandas as pd
import xlsxwriter

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
FIXED_DATE = datetime(2000, 1, 1)  # a fixed creation date keeps the file bytes reproducible
MAX_SHEET_NAME = 31
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def percent_excel_format(decimals: int) -> str:
    """The Excel number format for a share shown with `decimals` places ("0%", "0.0%")."""
    return "0%" if decimals <= 0 else "0." + "0" * decimals + "%"


def open_workbook(path: Path, title: str) -> xlsxwriter.Workbook:
    """A workbook with the safe string options and a fixed creation date."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    book.set_properties({"title": title, "created": FIXED_DATE})
    return book


class Formats:
    """The cell formats of one workbook."""

    def __init__(self, book: xlsxwriter.Workbook, decimals: int) -> None:
        self.header = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
        self.year_header = book.add_format({"bold": True, "bottom": 1, "num_format": "0", "align": "right"})
        self.title = book.add_format({"bold": True, "font_size": 13})
        self.section = book.add_format({"bold": True, "italic": True})
        self.text = book.add_format({"text_wrap": True, "valign": "top"})
        self.plain = book.add_format({"valign": "top"})
        self.right = book.add_format({"align": "right", "valign": "top"})
        self.report_share = book.add_format(
            {"num_format": percent_excel_format(decimals), "align": "right", "valign": "top"}
        )
        self.share = book.add_format({"num_format": percent_excel_format(1), "valign": "top"})
        self.code = book.add_format({"num_format": "0", "valign": "top"})
        self.count = book.add_format({"num_format": "#,##0", "valign": "top"})
        self.number = book.add_format({"valign": "top"})
        self.small = book.add_format({"italic": True, "font_size": 9})
        self._book = book
        self._decimals = decimals
        self._noted: dict[str, object] = {"": self.report_share}
        self._noted_counts: dict[tuple[str, str], object] = {}

    def report_count_with(self, note: str):
        """A whole-number format with a thousands separator that also shows a note letter (the cell stays a number)."""
        key = ("count", note)
        if key not in self._noted_counts:
            self._noted_counts[key] = self._book.add_format(
                {"num_format": f'#,##0"{note}"' if note else "#,##0", "align": "right", "valign": "top"}
            )
        return self._noted_counts[key]

    def report_share_with(self, note: str):
        """A percent format that also shows a note letter (the cell stays a number)."""
        if note not in self._noted:
            self._noted[note] = self._book.add_format(
                {"num_format": f'{percent_excel_format(self._decimals)}"{note}"', "align": "right", "valign": "top"}
            )
        return self._noted[note]


def write_cell(sheet, row: int, col: int, value, number_format, formats: Formats) -> None:
    """A value as a typed cell: blank, text, boolean or number."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        sheet.write_blank(row, col, None)
    elif isinstance(value, str):
        sheet.write_string(row, col, value, formats.plain)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    else:
        sheet.write_number(row, col, float(value), number_format)


def _column_format(column: str, values: pd.Series, shares: set[str], formats: Formats, code_headers: frozenset[str]):
    """Shares as percentages; years and codes (by Dutch header) without a thousands separator; counts with one."""
    if column in shares:
        return formats.share
    if column in code_headers:
        return formats.code
    if pd.api.types.is_integer_dtype(values):
        return formats.count
    return formats.number


def frame_sheet(
    book,
    formats: Formats,
    name: str,
    frame: pd.DataFrame,
    shares: Iterable[str] = (),
    code_headers: frozenset[str] = frozenset(),
) -> None:
    """One frame as a sheet: header row, typed cells, frozen header, filters."""
    sheet = book.add_worksheet(name)
    shares = set(shares)
    column_formats = []
    for col, column in enumerate(frame.columns):
        sheet.write_string(0, col, str(column), formats.header)
        width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)]) + 2
        sheet.set_column(col, col, min(max(width, 8), 60))
        column_formats.append(_column_format(str(column), frame[column], shares, formats, code_headers))
    for row, record in enumerate(frame.itertuples(index=False), start=1):
        for col, value in enumerate(record):
            write_cell(sheet, row, col, value, column_formats[col], formats)
    sheet.freeze_panes(1, 0)
    if len(frame):
        sheet.autofilter(0, 0, len(frame), len(frame.columns) - 1)


def sheet_name(text: str, taken: Iterable[str]) -> str:
    """A valid, unused Excel sheet name (at most 31 characters, none of []:*?/\\) made from `text`."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", text)[:MAX_SHEET_NAME]
    taken = {t.lower() for t in taken}
    name, number = base, 1
    while name.lower() in taken:
        number += 1
        suffix = f" ({number})"
        name = base[: MAX_SHEET_NAME - len(suffix)] + suffix
    return name


def write_frames(
    path: Path,
    *,
    title: str,
    sheets: Mapping[str, pd.DataFrame],
    share_columns: Mapping[str, Iterable[str]] | None = None,
    code_headers: frozenset[str] = frozenset(),
) -> list[str]:
    """Write each frame to its own sheet (header row, filters, frozen header); return the sheet names."""
    book = open_workbook(path, title)
    formats = Formats(book, 0)
    for name, frame in sheets.items():
        frame_sheet(book, formats, name, frame, (share_columns or {}).get(name, ()), code_headers)
    book.close()
    return list(sheets)
