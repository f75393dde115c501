"""The Excel workbook: one sheet per table.

Numbers are written as numbers (shares with a percent format), text with
`write_string`, and the workbook is opened with `strings_to_formulas`,
`strings_to_urls` and `strings_to_numbers` off, so no text cell can become a
formula, link or number, whatever it starts with; the text is stored unchanged.
(CSV files have no cell types: `report/csv_safety.py`.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import pandas as pd
import xlsxwriter

from survey_pipeline.report.formatting import percent_excel_format
from survey_pipeline.report.tables import AnnualTable

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
FIXED_DATE = datetime(2000, 1, 1)  # a fixed creation date keeps the file bytes reproducible
# Years and codes: whole numbers shown without a thousands separator (2019, not 2.019).
CODE_COLUMNS = frozenset({"wave", "wave_from", "wave_to", "breakdown_code", "code", "Jaar", "Vergeleken met"})
SHARE_COLUMNS = {
    "indicators": ("estimate", "se", "ci_lower", "ci_upper"),
    "changes": ("estimate_from", "estimate_to", "difference", "se", "ci_lower", "ci_upper", "se_independent"),
    "distributions": ("estimate", "se", "ci_lower", "ci_upper"),
}


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook, decimals: int) -> None:
        self.header = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
        self.title = book.add_format({"bold": True, "font_size": 13})
        self.section = book.add_format({"bold": True, "italic": True})
        self.text = book.add_format({"text_wrap": True, "valign": "top"})
        self.plain = book.add_format({"valign": "top"})
        self.right = book.add_format({"align": "right", "valign": "top"})
        self.report_share = book.add_format({"num_format": percent_excel_format(decimals), "align": "right", "valign": "top"})
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
            self._noted[note] = self._book.add_format({
                "num_format": f'{percent_excel_format(self._decimals)}"{note}"', "align": "right", "valign": "top"})
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
    """Shares as percentages; years and codes without a thousands separator; counts with one; else General."""
    if column in shares:
        return formats.share
    if column in CODE_COLUMNS:
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


def write_workbook(path: Path, *, title: str, annual: AnnualTable, sheets: Mapping[str, pd.DataFrame],
                   share_columns: Mapping[str, Iterable[str]]) -> list[str]:
    """Write the annual table and each frame to its own sheet; return the sheet names."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    book.set_properties({"title": title, "created": FIXED_DATE})
    formats = _Formats(book, annual.decimals)
    _annual_sheet(book, formats, annual, title)
    for name, frame in sheets.items():
        _frame_sheet(book, formats, name, frame, share_columns.get(name, ()))
    book.close()
    return ["Jaarverslag", *sheets]
