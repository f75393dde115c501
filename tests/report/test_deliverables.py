"""The office's deliverables read back as the office opens them: the Dutch workbook (openpyxl) and the
annual-report tables in Word (python-docx)."""

from __future__ import annotations

import dataclasses

import docx
import openpyxl
import pandas as pd
import pytest
from report_html import parse_report

from survey_pipeline import contracts
from survey_pipeline.artifacts import read_table
from survey_pipeline.stages.report import sheets, tables
from survey_pipeline.stages.report.document import AnnualTableBlock, Document, Image, Paragraph
from survey_pipeline.stages.report.excel import workbook_in_background, write_workbook
from survey_pipeline.stages.report.word import render_docx
from survey_pipeline.workbook import sheet_name, write_frames

ENGLISH_CODES = {
    "total",
    "wijk",
    "answer",
    "dont_know",
    "no_answer",
    "met",
    "not_met",
    "indistinguishable",
    "key_figure",
    "no_target",
    "True",
    "False",
    "min_n",
    "min_n_eff",
    "max_ci_width",
}


def _rows(sheet) -> list[dict]:
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, row)) for row in sheet.iter_rows(min_row=2, values_only=True)]


@pytest.fixture(scope="module")
def book(report_run):
    return openpyxl.load_workbook(report_run.report / "tabellen.xlsx")


@pytest.fixture(scope="module")
def indicators(report_run, spec):
    return read_table(report_run.report / "indicators.parquet", contracts.ReportIndicators, spec)


def test_workbook_headers_codes_and_reasons_are_dutch(book, indicators, spec):
    expected = {
        "Indicatoren": sheets.INDICATOR_HEADERS,
        "Veranderingen": sheets.CHANGE_HEADERS,
        "Verdelingen": sheets.DISTRIBUTION_HEADERS,
    }
    for name, headers in expected.items():
        rows = _rows(book[name])
        assert [c.value for c in book[name][1]] == list(headers.values()), name
        texts = {v for row in rows for v in row.values() if isinstance(v, str)}
        assert not texts & ENGLISH_CODES, (name, texts & ENGLISH_CODES)
        assert (
            {"Totaal"}
            < {row["Uitsplitsing"] for row in rows}
            <= {"Totaal", *(b.label for b in spec.background.values())}
        )
        assert {row["Niet gepubliceerd"] for row in rows} == {"ja", "nee"}
    rows = _rows(book["Indicatoren"])
    hidden = indicators[indicators["suppressed"]].reset_index(drop=True)
    shown = [r for r in rows if r["Niet gepubliceerd"] == "ja"]
    assert len(shown) == len(hidden) > 0
    for row, (_, source) in zip(shown, hidden.iterrows()):
        assert row["Reden niet gepubliceerd"] == tables.describe_reason(source["suppression_reason"])
        assert row["Percentage"] is None
    assert "effectieve steekproefomvang te klein" in {r["Reden niet gepubliceerd"] for r in shown}
    verdicts = {r["Oordeel streefwaarde"] for r in rows}
    assert verdicts <= set(sheets.TARGET_STATUS_TEXT.values()) and "gehaald" in verdicts | {"niet gehaald"}
    kinds = {r["Soort antwoord"] for r in _rows(book["Verdelingen"])}
    assert kinds == {"antwoord", "weet niet", "geen antwoord"}


def pivot_sheet_names(spec) -> list[str]:
    names = ["Jaarverslag", "Streefwaarden", "Indicatoren", "Veranderingen", "Verdelingen"]
    names += ["Registraties"] if spec.registrations else []
    for ind in tables.report_order(spec):
        names.append(sheet_name(f"Wijk-jaar {ind.id}", names))
    return names


def test_workbook_has_a_wijk_by_year_pivot_per_indicator(book, indicators, spec):
    wijken = spec.background["wijk"].codes
    assert book.sheetnames == pivot_sheet_names(spec)
    first_pivot = 6 if spec.registrations else 5
    for ind, name in zip(tables.report_order(spec), book.sheetnames[first_pivot:]):
        sheet = book[name]
        assert sheet["A1"].value == ind.label
        waves = [c.value for c in sheet[4][1:]]
        assert waves == sorted(int(w) for w in indicators["wave"].unique())
        body = {row[0].value: row[1:] for row in sheet.iter_rows(min_row=5)}
        assert list(body) == ["Totaal", *wijken.values()]
        for label, cells in body.items():
            for wave, cell in zip(waves, cells):
                source = indicators[(indicators["indicator_id"] == ind.id) & (indicators["wave"] == wave)]
                source = (
                    source[source["breakdown"] == "total"]
                    if label == "Totaal"
                    else source[source["breakdown_label"] == label]
                )
                if source.empty:
                    assert cell.value == tables.not_measured_text(spec.not_measured_reason(wave, ind.variable))
                elif source["suppressed"].item():
                    assert cell.value == f"- ({tables.describe_reason(source['suppression_reason'].item())})"
                else:
                    assert cell.data_type == "n" and cell.number_format == "0.0%"
                    assert cell.value == pytest.approx(source["estimate"].item(), rel=1e-15)


def test_sheet_names_are_valid_and_unique():
    assert sheet_name("Wijk-jaar a/b:c", []) == "Wijk-jaar a_b_c"
    long = "Wijk-jaar " + "x" * 40
    first = sheet_name(long, [])
    second = sheet_name(long, [first])
    assert len(first) == len(second) == 31 and first != second


def test_frame_workbook_keeps_formula_like_text_as_text(tmp_path):
    frame = pd.DataFrame({"Bestand": ["=1+1", "@SUM(A1)"], "Rij": [1, 2]})
    write_frames(tmp_path / "q.xlsx", title="=cmd", sheets={"Rijen": frame})
    sheet = openpyxl.load_workbook(tmp_path / "q.xlsx")["Rijen"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == ["=1+1", "@SUM(A1)"] and {c.data_type for c in cells} == {"s"}


def _printed_lines(annual: tables.AnnualTable, *, merged: bool) -> list[list[str]]:
    """The annual table's rows as a table program shows them: the column headers (once, or in each section
    title row), section titles and intros (across the row when `merged`), stems, indicator rows and bullets."""
    width = 1 + len(annual.columns)
    headers = [" ".join(c.header) for c in annual.columns]
    across = lambda text: [text] * width if merged else [text, *[""] * (width - 1)]  # noqa: E731
    lines = [[annual.heading, *headers]] if annual.heading else []
    for section in annual.sections:
        lines.append(across(section.title) if annual.heading else [section.title, *headers])
        lines += [across(section.intro)] if section.intro else []
        for row in section.rows:
            cells = [cell.text + "".join(f" {key})" for key in cell.notes) for cell in row.cells]
            lines.append([row.text, *(cells or [""] * (width - 1))])
    return lines


def test_word_document_has_the_annual_table_as_the_html_prints_it(report_run, spec, params, annual):
    word = docx.Document(str(report_run.report / "jaarverslag.docx"))
    parsed = parse_report((report_run.report / "jaarverslag.html").read_text(encoding="utf-8"))
    texts = [[cell.text for cell in row.cells] for row in word.tables[0].rows]
    assert texts == _printed_lines(annual, merged=True)
    assert [t[0] for t in texts if t[0].startswith("\u2022")]  # the demo layout has bullets
    # the HTML page prints the same rows (label and cells, notes as superscripts)
    html_lines = {row[0]: row for row in texts}
    for indicator_id, html_cells in parsed.rows.items():
        notes = parsed.row_notes[indicator_id]
        expected = [cell + "".join(f" {n})" for n in keys) for cell, keys in zip(html_cells[1:], notes[1:])]
        assert html_lines[html_cells[0]][1:] == expected
    paragraphs = [p.text for p in word.paragraphs]
    for footnote in [annual.unmarked, *parsed.footnotes, *annual.remarks]:
        assert not footnote or footnote in paragraphs
    assert annual.intro in paragraphs
    assert word.paragraphs[0].text == word.core_properties.title
    # every figure of the HTML page is in the Word file: embedded when drawn as PNG, else named
    assert len(parsed.images) > 0
    if "png" in params.report.figure_formats:
        assert len(word.inline_shapes) == len(parsed.images)
    else:
        assert len(word.inline_shapes) == 0
        assert all(any(image["alt"] in text or image["src"] in text for text in paragraphs) for image in parsed.images)


def test_word_document_bytes_depend_only_on_the_document(tmp_path):
    annual = tables.AnnualTable(
        (tables.Column("achieved", 2021),),
        (tables.Section("Kengetallen", (tables.Row("x", "% X", "*", (tables.Cell("45%", 0.45),)),)),),
        (("*", "Percentage van X."),),
        (),
        0,
    )
    doc = Document(
        "Titel", (Paragraph("Tekst"), AnnualTableBlock(annual), Image("figures/none.svg", "alt", "Onderschrift"))
    )
    render_docx(doc, tmp_path / "a.docx", images_from=tmp_path)
    render_docx(doc, tmp_path / "b.docx", images_from=tmp_path)
    assert (tmp_path / "a.docx").read_bytes() == (tmp_path / "b.docx").read_bytes()
    word = docx.Document(str(tmp_path / "a.docx"))
    assert [c.text for c in word.tables[0].rows[1].cells] == ["% X*", "45%"]
    assert "Figuur: alt (figures/none.svg)" in [p.text for p in word.paragraphs]  # no PNG: named, not dropped


@pytest.mark.parametrize("layout", ["default", "demo"])
def test_word_and_excel_print_the_one_table_in_either_layout(layout, spec, default_spec, params, published, tmp_path):
    """Footnotes and per-section headers (no report_layout) or the demo's beleidsvelden, stems and inline
    bases: Word and the Jaarverslag sheet print the rows of the one `AnnualTable`, in its order."""
    chosen = default_spec if layout == "default" else spec
    annual = tables.build_annual_table(
        published["indicators"], chosen, params.report, tables.measured_waves(chosen, chosen.waves)
    )
    render_docx(Document("t", (AnnualTableBlock(annual),)), tmp_path / "t.docx", images_from=tmp_path)
    word = docx.Document(str(tmp_path / "t.docx"))
    assert [[cell.text for cell in row.cells] for row in word.tables[0].rows] == _printed_lines(annual, merged=True)
    write_workbook(tmp_path / "t.xlsx", title="t", annual=annual, sheets={}, share_columns={})
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["Jaarverslag"]
    assert sheet["B2"].value is None and sheet["A2"].value == annual.intro
    shown = [
        [str(c.value).replace("\n", " ") if c.data_type == "s" else c.value for c in row]
        for row in sheet.iter_rows(min_row=4, max_col=1 + len(annual.columns))
        if row[0].value
    ]
    expected = _printed_lines(annual, merged=False)
    assert [row[0] for row in shown[: len(expected)]] == [row[0] for row in expected]
    for got, want in zip(shown, expected):
        texts = [g for g, w in zip(got[1:], want[1:]) if isinstance(g, str)]
        assert texts == [w for g, w in zip(got[1:], want[1:]) if isinstance(g, str)]
    footnotes = [row[0] for row in shown[len(expected) :]]
    assert footnotes == [
        *([annual.unmarked] if annual.unmarked else []),
        *(f"{m} {t}" for m, t in annual.footnotes),
        *(f"{k}) {t}" for k, t in annual.notes),
    ]
    assert bool(annual.footnotes) == (layout == "default")


def test_the_workbook_written_in_its_own_process_has_the_same_bytes_and_its_error_reaches_the_stage(
    spec, params, published, tmp_path
):
    annual = tables.build_annual_table(
        published["indicators"], spec, params.report, tables.measured_waves(spec, spec.waves)
    )
    book = {"title": "t", "annual": annual, "sheets": {"Indicatoren": published["indicators"]}, "share_columns": {}}
    names = write_workbook(tmp_path / "here.xlsx", **book)
    with workbook_in_background(tmp_path / "there.xlsx", **book) as sheet_names:
        assert sheet_names() == names
    assert (tmp_path / "there.xlsx").read_bytes() == (tmp_path / "here.xlsx").read_bytes()
    with (
        workbook_in_background(tmp_path / "missing" / "t.xlsx", **book) as sheet_names,
        pytest.raises(Exception, match="missing"),
    ):
        sheet_names()


def test_the_jaarverslag_sheet_closes_with_the_same_notes_as_word(spec, params, published, tmp_path):
    """The agree-scale explanations and the remarks under the table belong to it in Excel too."""
    annual = dataclasses.replace(
        tables.build_annual_table(
            published["indicators"], spec, params.report, tables.measured_waves(spec, spec.waves)
        ),
        scale_notes=("schaal: 9% oneens",),
        remarks=("opmerking",),
    )
    render_docx(Document("t", (AnnualTableBlock(annual),)), tmp_path / "t.docx", images_from=tmp_path)
    word = [p.text for p in docx.Document(str(tmp_path / "t.docx")).paragraphs]
    write_workbook(tmp_path / "t.xlsx", title="t", annual=annual, sheets={}, share_columns={})
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["Jaarverslag"]
    column_a = [row[0].value for row in sheet.iter_rows(max_col=1) if row[0].value]
    assert column_a[-2:] == word[-2:] == ["schaal: 9% oneens", "opmerking"]
