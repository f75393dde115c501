"""Formula-safe CSV files: the standard flavour and one for Dutch Excel.

A CSV file has no cell types: a spreadsheet program decides per cell whether it
is a number, text or a formula, and it cuts a line into cells at *its* list
separator, which depends on the locale. Dutch Excel cuts at ";", so the label
`Wijk;=cmd|' /C calc'!A0` in a comma-separated file becomes two cells there, and
the second is a formula. Quoting the cell does not prevent this: a quote in the
middle of a cell (after the comma of the previous column) is an ordinary
character for a reader that cuts at ";".

So `neutralise_formulas` looks at every *piece* of a text: its start and
whatever follows any separator a reader may cut at (",", ";", tab, carriage
return, line feed). A piece that, after spaces and double quotes, starts with a
formula trigger gets a single quote (') right before the trigger, the convention
spreadsheets read as "this is text" (OWASP, "CSV Injection"). The triggers are
OWASP's (=, +, -, @, tab, carriage return), the NUL character (OWASP ASVS 1.2.10)
and the full-width forms of =, +, - and @ (East-Asian input methods type them,
and some spreadsheet set-ups read them as the ASCII signs). One exception: a text that is exactly "-", the
report's "not measured / not published" marker, stays as it is; with no operand
it cannot compute or reference anything, and Excel, LibreOffice and Google
Sheets show it as text. Any other "-" that opens a piece gets the quote:
"- (i.v.m. COVID)" (after "-" any text could be an operand) and also "Wijk;-"
(a reader that cuts at ";" sees "-" followed by the next column's content).

Only text is touched: numbers, booleans and missing values are written as they
are, so a negative number in a numeric column stays a number. Column names are
treated as text. A cell that holds the separator, a double quote or a line break
is put in double quotes with inner quotes doubled (RFC 4180, done by the CSV
writer); lines end in CRLF (RFC 4180, as Excel writes them), which also makes
the writer quote a lone carriage return inside a text (with "\n" line ends it
would not, and the row would break there). Quoting every text cell, OWASP's
other option, adds nothing here: a reader that cuts at a different separator
splits a line in the middle of a quoted cell, where the quote is an ordinary
character. Parquet files and the Excel workbook (typed cells) keep the text
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from survey_pipeline.stages.report.formatting import MISSING_TEXT

FORMULA_TRIGGERS = frozenset("=+-@\t\r\0\uff1d\uff0b\uff0d\uff20")
PIECE_SEPARATORS = frozenset(",;\t\r\n")
FORMULA_ESCAPE = "'"


@dataclass(frozen=True)
class CsvFlavour:
    """How one CSV variant is written: file name suffix, separator, decimal mark, encoding."""

    suffix: str
    separator: str
    decimal: str
    encoding: str


STANDARD = CsvFlavour(suffix="", separator=",", decimal=".", encoding="utf-8")
# Excel with Dutch regional settings: ";" between cells, decimal comma; the byte
# order mark makes Excel read the file as UTF-8 (accents), not as Windows-1252.
DUTCH_EXCEL = CsvFlavour(suffix="_excel_nl", separator=";", decimal=",", encoding="utf-8-sig")
FLAVOURS = (STANDARD, DUTCH_EXCEL)


def _is_padding(char: str) -> bool:
    """Characters a reader may skip before it decides what a cell is: whitespace and double quotes."""
    return char == '"' or (char.isspace() and char not in PIECE_SEPARATORS)


def neutralise_formulas(text: str) -> str:
    """`text` with "'" before every formula trigger that opens one of its separator-delimited pieces."""
    if text == MISSING_TEXT:
        return text
    out: list[str] = []
    at_piece_start = True
    for char in text:
        if at_piece_start and not _is_padding(char):
            if char in FORMULA_TRIGGERS:
                out.append(FORMULA_ESCAPE)
            at_piece_start = False
        out.append(char)
        if char in PIECE_SEPARATORS:
            at_piece_start = True
    return "".join(out)


def neutralised_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell and column name passed through `neutralise_formulas`."""
    out = frame.rename(columns=lambda c: neutralise_formulas(str(c)))
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            # each distinct text once: a table repeats its labels, codes and area names on many rows
            texts = {value: neutralise_formulas(value) for value in out[column].unique() if isinstance(value, str)}
            out[column] = out[column].map(lambda v, texts=texts: texts[v] if isinstance(v, str) else v)
    return out


def csv_path(folder: Path, name: str, flavour: CsvFlavour) -> Path:
    """Where table `name` goes in `flavour`: indicators.csv, indicators_excel_nl.csv."""
    return folder / f"{name}{flavour.suffix}.csv"


def write_csv(frame: pd.DataFrame, path: Path, flavour: CsvFlavour = STANDARD) -> None:
    """Write `frame` as formula-safe CSV in `flavour` (numbers in full precision, no thousands separator)."""
    neutralised_frame(frame).to_csv(
        path,
        index=False,
        sep=flavour.separator,
        decimal=flavour.decimal,
        encoding=flavour.encoding,
        lineterminator="\r\n",
    )


def write_csv_files(frame: pd.DataFrame, folder: Path, name: str) -> list[Path]:
    """Write table `name` in every flavour; return the paths written."""
    paths = [csv_path(folder, name, flavour) for flavour in FLAVOURS]
    for path, flavour in zip(paths, FLAVOURS):
        write_csv(frame, path, flavour)
    return paths
