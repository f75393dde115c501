"""The report's workbook `tabellen.xlsx`: the annual table, the published frames and the wijk x jaar pivots.

Cells are written by the shared safe writer (`survey_pipeline.workbook`); headers
and texts are Dutch (`stages/report/sheets.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pandas as pd

from survey_pipeline import gx_process
from survey_pipeline.stages.report.sheets import CODE_HEADERS, Pivot
from survey_pipeline.stages.report.tables import AnnualTable
from survey_pipeline.workbook import Formats, frame_sheet, open_workbook, sheet_name


def _annual_sheet(book, formats: Formats, table: AnnualTable, title: str) -> None:
    """The annual table as printed: title and intro, the column headers (once, or per section title row),
    per section (beleidsveld) its title, intro and rows (stems and bullets as text), then the notes."""
    sheet = book.add_worksheet("Jaarverslag")
    sheet.set_column(0, 0, 80)
    sheet.set_column(1, len(table.columns), 12)
    sheet.write_string(0, 0, title, formats.title)
    sheet.write_string(1, 0, table.intro, formats.small)

    def headers(row: int, text: str) -> None:
        sheet.write_string(row, 0, text, formats.header)
        for col, column in enumerate(table.columns, start=1):
            sheet.write_string(row, col, "\n".join(column.header), formats.header)

    row = 3
    if table.heading:
        headers(row, table.heading)
        row += 1
    for section in table.sections:
        if table.heading:
            sheet.write_string(row, 0, section.title, formats.header)
        else:
            headers(row, section.title)
        row += 1
        if section.intro:
            sheet.write_string(row, 0, section.intro, formats.small)
            row += 1
        for line in section.rows:
            sheet.write_string(row, 0, line.text, formats.text)
            for col, cell in enumerate(line.cells, start=1):
                note = "".join(f" {key})" for key in cell.notes)
                if cell.value is not None:
                    number_format = formats.report_count_with(note) if cell.count else formats.report_share_with(note)
                    sheet.write_number(row, col, cell.value, number_format)
                else:
                    sheet.write_string(row, col, cell.text + note, formats.right)
            row += 1
        row += 1
    closing = [
        *([table.unmarked] if table.unmarked else []),
        *(f"{marker} {text}" for marker, text in table.footnotes),
        *(f"{key}) {text}" for key, text in table.notes),
        *table.scale_notes,
        *table.remarks,
    ]
    for offset, text in enumerate(closing):
        sheet.write_string(row + offset, 0, text, formats.small)


def _pivot_sheet(book, formats: Formats, name: str, pivot: Pivot) -> None:
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
    book = open_workbook(path, title)
    formats = Formats(book, annual.decimals)
    _annual_sheet(book, formats, annual, title)
    names = ["Jaarverslag"]
    for name, frame in sheets.items():
        frame_sheet(book, formats, name, frame, share_columns.get(name, ()), CODE_HEADERS)
        names.append(name)
    for pivot in pivots:
        name = sheet_name(f"Wijk-jaar {pivot.indicator.id}", names)
        _pivot_sheet(book, formats, name, pivot)
        names.append(name)
    book.close()
    return names


@contextmanager
def workbook_in_background(path: Path, **workbook: Any) -> Iterator[Callable[[], list[str]]]:
    """`write_workbook(path, **workbook)` in a forked process while the caller writes the rest of the
    report (~1.5 s of xlsxwriter on the demo); yields what waits for it and returns its sheet names or
    raises its error. Forked, the process has the inputs as they are (nothing pickled but the result);
    it is ended if the block is left before waiting (the stage failed or was stopped)."""
    context = get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_write_and_send, args=(os.getpid(), sending, path, workbook), name="workbook")
    process.start()
    sending.close()

    received: list[Any] = []

    def sheet_names() -> list[str]:
        if not received:
            try:
                received.append(receiving.recv())
            except EOFError:
                process.join()
                raise RuntimeError(f"the process writing {path.name} ended with exit code {process.exitcode}") from None
        if isinstance(received[0], BaseException):
            raise received[0]
        return received[0]

    try:
        yield sheet_names
    finally:
        if not received:
            process.terminate()  # not waited for: the stage failed or was stopped
        process.join()
        receiving.close()


def _write_and_send(parent: int, sending: Connection, path: Path, workbook: dict[str, Any]) -> None:
    gx_process.tied_to_parent(parent)  # the main process stops the run and this process; dies with it
    try:
        sending.send(write_workbook(path, **workbook))
    except Exception as exc:
        sending.send(exc)
