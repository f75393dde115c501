"""Render a `Document` as Word (`.docx`, python-docx) for the editors who assemble the annual report in Word.

The same document model as the HTML and Markdown renderers, so the three say the same thing. The
annual-report table becomes a real Word table (section heading rows, Behaald/Beoogd columns, notes
after the numbers, footnotes under it) that an editor can restyle; figures are embedded from their
PNG files (Word cannot show SVG), or named when only SVG was written. The file's bytes depend only on
the document: fixed document dates and fixed times inside the zip.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt

from survey_pipeline.stages.report.document import (
    AnnualTableBlock,
    Bullets,
    Document,
    Heading,
    Image,
    Paragraph,
    Table,
)
from survey_pipeline.stages.report.tables import AnnualTable

FIXED_DATE = datetime(2000, 1, 1, tzinfo=UTC)
ZIP_DATE = (2000, 1, 1, 0, 0, 0)
FIGURE_WIDTH = Cm(16)
NOTE_SIZE = Pt(8)


def _cell(cell, text: str, *, bold: bool = False, right: bool = False) -> None:
    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.bold = bold
    if right:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT


def _note(word, text: str, *, italic: bool = False) -> None:
    run = word.add_paragraph().add_run(text)
    run.font.size = NOTE_SIZE
    run.italic = italic


def _table(word, block: Table) -> None:
    numeric = block.numeric or (False,) * len(block.headers)
    table = word.add_table(rows=1 + len(block.rows), cols=len(block.headers))
    table.style = "Table Grid"
    # row by row: `table.cell(row, col)` lays out the whole table again on every call
    rows = iter(table.rows)
    for cell, header, right in zip(next(rows).cells, block.headers, numeric, strict=True):
        _cell(cell, header, bold=True, right=right)
    for row, values in zip(rows, block.rows, strict=True):
        for cell, value, right in zip(row.cells, values, numeric, strict=True):
            _cell(cell, value, right=right)
    if block.caption:
        _note(word, block.caption, italic=True)


def _annual(word, annual: AnnualTable) -> None:
    """One Word table: the column headers (once above all sections, or in each section's title row), a
    title row per section (beleidsveld) with its intro, then its rows: indicators, stems and bullets."""
    width = 1 + len(annual.columns)
    lines = sum(1 + bool(section.intro) + len(section.rows) for section in annual.sections)
    table = word.add_table(rows=lines + bool(annual.heading), cols=width)
    table.style = "Table Grid"

    # a row's cells fetched once: `table.cell(row, col)` lays out the whole table again on every call
    rows = iter(table.rows)

    def headers(title: str) -> None:
        label, *cells = next(rows).cells
        _cell(label, title, bold=True)
        for cell, column in zip(cells, annual.columns, strict=True):
            _cell(cell, " ".join(column.header), bold=True, right=True)

    def spanning() -> object:
        cells = next(rows).cells
        return cells[0].merge(cells[-1])

    if annual.heading:
        headers(annual.heading)
    for section in annual.sections:
        if annual.heading:
            _cell(spanning(), section.title, bold=True)
        else:
            headers(section.title)
        if section.intro:
            spanning().paragraphs[0].add_run(section.intro).italic = True
        for line in section.rows:
            label, *cells = next(rows).cells
            _cell(label, line.text)
            for cell, value in zip(cells, line.cells):
                _cell(cell, value.text + "".join(f" {key})" for key in value.notes), right=True)
    if annual.unmarked:
        _note(word, annual.unmarked)
    for marker, text in annual.footnotes:
        _note(word, f"{marker} {text}")
    for key, text in annual.notes:
        _note(word, f"{key}) {text}")
    for text in annual.scale_notes:
        _note(word, text)
    for remark in annual.remarks:
        _note(word, remark)


def _image(word, block: Image, images_from: Path) -> None:
    png = (images_from / block.src).with_suffix(".png")
    if png.is_file():
        word.add_picture(str(png), width=FIGURE_WIDTH)
    else:
        word.add_paragraph(f"Figuur: {block.alt} ({block.src})")
    if block.caption:
        _note(word, block.caption, italic=True)


def build_docx(doc: Document, images_from: Path):
    """The python-docx document of `doc`; image paths are relative to `images_from`."""
    word = docx.Document()
    properties = word.core_properties
    properties.title = doc.title
    properties.author = properties.last_modified_by = ""
    properties.created = properties.modified = properties.last_printed = FIXED_DATE
    properties.revision = 1
    word.add_heading(doc.title, level=0)
    if doc.subtitle:
        word.add_paragraph().add_run(doc.subtitle).italic = True
    for block in doc.blocks:
        if isinstance(block, Heading):
            word.add_heading(block.text, level=max(1, min(block.level, 9)))
        elif isinstance(block, Paragraph):
            link = block.link
            word.add_paragraph(block.text + (f" {link.label} ({link.page}.html)" if link else ""))
        elif isinstance(block, Bullets):
            for item in block.items:
                word.add_paragraph(item, style="List Bullet")
        elif isinstance(block, Table):
            _table(word, block)
        elif isinstance(block, Image):
            _image(word, block, images_from)
        elif isinstance(block, AnnualTableBlock):
            _annual(word, block.table)
        else:
            raise TypeError(f"unknown block {type(block).__name__}")
    return word


def render_docx(doc: Document, path: Path, *, images_from: Path) -> None:
    """Write `doc` to `path` as `.docx`, byte-identical for an identical document."""
    buffer = io.BytesIO()
    build_docx(doc, images_from).save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
