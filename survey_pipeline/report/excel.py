"""The Excel workbooks: the report's `tabellen.xlsx` and plain frame workbooks (the quarantine).

Numbers are written as numbers (shares with a percent format), text with
`write_string`, and the workbook is opened with `strings_to_formulas`,
`strings_to_urls` and `strings_to_numbers` off, so no text cell can become a
formula, link or number, whatever it starts with; the text is stored unchanged.
(CSV files have no cell types: `report/csv_safety.py`.) Headers and texts are
Dutch (`report/sheets.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import xlsxwriter

from survey_pipeline.report.formatting import percent_excel_format
from survey_pipeline.report.sheets import CODE_HEADERS, Pivot
from survey_pipeline.report.tables import AnnualTable

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
FIXED_DATE = datetime(2000, 1, 1)  # a fixed creation date keeps the file bytes reproducible
MAX_SHEET_NAME = 31
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


class _Formats:
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

    def report_share_with(self, note: str):
        """A percent format that also shows a note letter (the cell stays a number)."""
        if note not in self._noted:
            self._noted[note] = self._book.add_format(
                {"num_format": f'{percent_excel_format(self._decimals)}"{note}"', "align": "right", "valign": "top"}
            )
        return self._noted[note]


def _write_cell(sheet, row: int, col: int, value, number_format, formats: _Formats) -> None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        sheet.write_blank(row, col, None)
    elif isinstance(value, str):
        sheet.write_string(row, col, value, formats.plain)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    else:
        sheet.write_number(row, col, float(value), number_format)


def _column_format(column: str, values: pd.Series, shares: set[str], formats: _Formats):
    """Shares as percentages; years and codes (by Dutch header) without a thousands separator; counts with one."""
    if column in shares:
        return formats.share
    if column in CODE_HEADERS:
        return formats.code
    if pd.api.types.is_integer_dtype(values):
        return formats.count
    return formats.number


def _frame_sheet(book, formats: _Formats, name: str, frame: pd.DataFrame, shares: Iterable[str] = ()) -> None:
    sheet = book.add_worksheet(name)
    shares = set(shares)
    column_formats = []
    for col, column in enumerate(frame.columns):
        sheet.write_string(0, col, str(column), formats.header)
        width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)]) + 2
        sheet.set_column(col, col, min(max(width, 8), 60))
        column_formats.append(_column_format(str(column), frame[column], shares, formats))
    for row, record in enumerate(frame.itertuples(index=False), start=1):
        for col, value in enumerate(record):
            _write_cell(sheet, row, col, value, column_formats[col], formats)
    sheet.freeze_panes(1, 0)
    if len(frame):
        sheet.autofilter(0, 0, len(frame), len(frame.columns) - 1)


def _annual_sheet(book, formats: _Formats, table: AnnualTable, title: str) -> None:
    sheet = book.add_worksheet("Jaarverslag")
    sheet.set_column(0, 0, 80)
    sheet.set_column(1, len(table.columns), 12)
    sheet.write_string(0, 0, title, formats.title)
    row = 2
    for section in table.sections:
        sheet.write_string(row, 0, section.title, formats.header)
        for col, column in enumerate(table.columns, start=1):
            sheet.write_string(row, col, "\n".join(column.header), formats.header)
        row += 1
        for line in section.rows:
            sheet.write_string(row, 0, line.label + line.marker, formats.text)
            for col, cell in enumerate(line.cells, start=1):
                note = "".join(f" {key})" for key in cell.notes)
                if cell.value is not None:
                    sheet.write_number(row, col, cell.value, formats.report_share_with(note))
                else:
                    sheet.write_string(row, col, cell.text + note, formats.right)
            row += 1
        row += 1
    if table.unmarked:
        sheet.write_string(row, 0, table.unmarked, formats.small)
        row += 1
    for marker, text in table.footnotes:
        sheet.write_string(row, 0, f"{marker} {text}", formats.small)
        row += 1
    for key, text in table.notes:
        sheet.write_string(row, 0, f"{key}) {text}", formats.small)
        row += 1


def _pivot_sheet(book, formats: _Formats, name: str, pivot: Pivot) -> None:
    """Title and base, then wijk | one column per wave; "-" with its reason where nothing is published."""
    sheet = book.add_worksheet(name)
    sheet.set_column(0, 0, 32)
    sheet.set_column(1, len(pivot.waves), 14)
    sheet.write_string(0, 0, pivot.title, formats.title)
    sheet.write_string(1, 0, pivot.base, formats.small)
    sheet.write_string(3, 0, pivot.row_header, formats.header)
    for col, wave in enumerate(pivot.waves, start=1):
        sheet.write_number(3, col, wave, formats.year_header)
    for row, (label, cells) in enumerate(pivot.rows, start=4):
        sheet.write_string(row, 0, label, formats.plain)
        for col, value in enumerate(cells, start=1):
            if isinstance(value, str):
                sheet.write_string(row, col, value, formats.right)
            else:
                sheet.write_number(row, col, value, formats.share)
    sheet.freeze_panes(4, 1)


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


def write_workbook(
    path: Path,
    *,
    title: str,
    annual: AnnualTable,
    sheets: Mapping[str, pd.DataFrame],
    share_columns: Mapping[str, Iterable[str]],
    pivots: Sequence[Pivot] = (),
) -> list[str]:
    """Write the annual table, each frame and each wijk x jaar pivot to its own sheet; return the sheet names."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    book.set_properties({"title": title, "created": FIXED_DATE})
    formats = _Formats(book, annual.decimals)
    _annual_sheet(book, formats, annual, title)
    names = ["Jaarverslag"]
    for name, frame in sheets.items():
        _frame_sheet(book, formats, name, frame, share_columns.get(name, ()))
        names.append(name)
    for pivot in pivots:
        name = sheet_name(f"Wijk-jaar {pivot.indicator.id}", names)
        _pivot_sheet(book, formats, name, pivot)
        names.append(name)
    book.close()
    return names


def write_frames(
    path: Path,
    *,
    title: str,
    sheets: Mapping[str, pd.DataFrame],
    share_columns: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """Write each frame to its own sheet (header row, filters, frozen header); return the sheet names."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    book.set_properties({"title": title, "created": FIXED_DATE})
    formats = _Formats(book, 0)
    for name, frame in sheets.items():
        _frame_sheet(book, formats, name, frame, (share_columns or {}).get(name, ()))
    book.close()
    return list(sheets)
