"""Registration figures in the report: counts with Dutch thousands separators, percentages as the
survey shares, no interval, the file's notes as footnotes, "-" for a year without a value; typed
cells in the workbook; judged targets in the target table; sources in the method note."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd
import pytest
import yaml
from report_fixtures import ROOT
from report_html import parse_report

from survey_pipeline import contracts
from survey_pipeline.artifacts import check_table
from survey_pipeline.registrations import registration_table
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.report import registration_rows, tables
from survey_pipeline.stages.report.markdown import escape


def _values(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=["indicator_id", "year", "value", "unit", "source", "note"])


@pytest.fixture(scope="module")
def small_table(spec):
    values = _values(
        ("entree_requests", 2020, 30994.0, "count", "WIJ", "het betreft hier niet unieke personen"),
        ("entree_requests", 2021, 1234567.0, "count", "WIJ", ""),
        ("entree_own_network", 2020, 36.45, "percentage", "WIJ", ""),
        ("entree_own_network", 2021, 37.0, "percentage", "WIJ", ""),
    )
    table = registration_table(values, spec)
    check_table(table, contracts.EstimateRegistrations, file="registrations", spec=spec)
    return table


def test_cells_are_formatted_by_unit_with_a_dash_for_a_year_without_a_value(spec, small_table, report_params):
    columns = tables.annual_columns(report_params)  # Behaald 2019-2021, Beoogd 2022-2023
    counts = registration_rows.annual_cells(small_table, spec.registration("entree_requests"), columns, 0)
    assert [c.text for c in counts] == ["-", "30.994", "1.234.567", "kengetal", "kengetal"]
    assert [c.value for c in counts] == [None, 30994.0, 1234567.0, None, None]
    assert [c.count for c in counts] == [False, True, True, False, False]
    assert [c.note for c in counts] == ["", "het betreft hier niet unieke personen", "", "", ""]
    shares = registration_rows.annual_cells(small_table, spec.registration("entree_own_network"), columns, 1)
    assert [c.text for c in shares] == ["-", "36,5%", "37,0%", "kengetal", ">40%"]  # half-up, as the survey shares
    assert shares[1].value == pytest.approx(0.3645) and not shares[1].count


def test_the_annual_table_gets_the_rows_after_the_survey_rows_with_notes_as_footnotes(
    default_spec, small_table, published, report_params
):
    """Without a report_layout: a registration figure follows the survey rows of its kind's section."""
    spec = default_spec
    indicators = published["indicators"]
    measured = tables.measured_waves(spec, spec.waves)
    columns = tables.annual_columns(report_params)
    annual = tables.build_annual_table(
        indicators, spec, report_params, measured, registration_rows.annual_rows(small_table, spec, columns, 0)
    )
    kengetallen = next(s for s in annual.sections if s.title == "Kengetallen")
    ids = [row.indicator_id for row in kengetallen.rows]
    assert ids[-len(spec.registrations) :] == [r.id for r in spec.registrations]
    entree = next(row for row in kengetallen.rows if row.indicator_id == "entree_requests")
    assert entree.marker == "" and entree.label == spec.registration("entree_requests").label
    key = entree.cells[1].notes[0]
    assert (key, "het betreft hier niet unieke personen") in annual.notes
    wmo = next(row for row in kengetallen.rows if row.indicator_id == "wmo_support")
    assert [c.text for c in wmo.cells[:3]] == ["-", "-", "-"]  # no values at all: dashes, not a guess
    # the base of unmarked rows still names the survey base only
    assert annual.unmarked == tables.unmarked_footnote(spec)


def test_the_rendered_report_shows_the_registered_values(report_run, spec, report_params):
    html = (report_run.report / "jaarverslag.html").read_text(encoding="utf-8")
    parsed = parse_report(html)
    assert parsed.rows["entree_requests"][1:] == ["35.812", "31.406", "28.153", "kengetal", "kengetal"]
    note = parsed.row_notes["entree_requests"][1][0]
    assert f"{note}) het betreft hier niet unieke personen" in parsed.notes
    assert parsed.rows["entree_own_network"][1:] == ["-", "36%", "38%", "kengetal", ">40%"]
    assert parsed.row_notes["entree_own_network"][1:] == [[], [], [], [], []]
    markdown = (report_run.report / "jaarverslag.md").read_text(encoding="utf-8")
    line = next(
        x for x in markdown.splitlines() if x.startswith(f"| {escape(spec.registration('entree_requests').label)} |")
    )
    assert f"| 35.812 ({note}) |" in line and "| 28.153 (" in line


def test_registration_targets_are_judged_without_an_interval(report_run):
    html = (report_run.report / "jaarverslag.html").read_text(encoding="utf-8")
    targets = pd.read_html(io.StringIO(html), match="Streefwaarde", thousands=None, decimal="#")[0].astype(str)
    row = targets[targets["Indicator"].str.startswith("% Meldingen bij entree")]
    assert row[["Jaar", "Streefwaarde", "Behaald", "Betrouwbaarheidsinterval", "Oordeel"]].values.tolist() == [
        ["2021", ">35%", "38%", "n.v.t. (registratie)", "gehaald"]
    ]
    assert "Registratiecijfers zijn geen steekproefuitkomsten" in html


def test_the_workbook_holds_typed_numbers(report_run, spec):
    book = openpyxl.load_workbook(report_run.report / "tabellen.xlsx")
    annual = {str(r[0].value): r[1:] for r in book["Jaarverslag"].iter_rows(min_row=1) if r[0].value}
    counts = annual[spec.registration("entree_requests").label]
    assert counts[0].value == 35812 and counts[0].data_type == "n" and counts[0].number_format.startswith("#,##0")
    shares = annual[spec.registration("entree_own_network").label]
    assert shares[0].value == "-"
    assert shares[1].value == pytest.approx(0.364) and shares[1].number_format.startswith("0%")
    sheet = book["Registraties"]
    header = [c.value for c in sheet[1]]
    assert header == list(registration_rows.SHEET_HEADERS)
    rows = [{h: c for h, c in zip(header, r)} for r in sheet.iter_rows(min_row=2)]
    first = rows[0]
    assert first["Aantal"].value == 35812 and first["Aantal"].number_format == "#,##0"
    assert first["Percentage"].value is None and first["Bron"].value == "synthetisch (demo)"
    share = next(r for r in rows if r["Indicator (code)"].value == "entree_own_network")
    assert share["Percentage"].value == pytest.approx(0.364) and "%" in share["Percentage"].number_format
    assert share["Aantal"].value is None and share["Jaar"].number_format == "0"


def test_the_method_note_lists_the_sources(report_run, spec):
    note = (report_run.report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "## Registratiecijfers" in note
    for registration in spec.registrations:
        assert escape(registration.source) in note
    assert "synthetisch (demo)" in note


def test_a_change_target_shows_the_change_it_was_judged_on(spec):
    raw = yaml.safe_load((ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    for entry in raw["registrations"]:
        entry["targets"] = {2021: "afname"} if entry["id"] == "entree_requests" else {2021: "toename"}
    changed = parse_spec(raw)
    values = _values(
        ("entree_requests", 2019, 30994.0, "count", "WIJ", ""),
        ("entree_requests", 2021, 27027.0, "count", "WIJ", ""),
        ("entree_own_network", 2020, 37.0, "percentage", "WIJ", ""),
        ("entree_own_network", 2021, 36.5, "percentage", "WIJ", ""),
    )
    rows = registration_rows.target_rows(registration_table(values, changed), (2019, 2020, 2021), 0)
    assert rows[["Jaar", "Behaald", "Verandering (procentpunt)", "Oordeel"]].values.tolist() == [
        ["2021", "27.027", "-3.967 t.o.v. 2019 (aantal)", "gehaald"],
        ["2021", "37%", "-0,5 t.o.v. 2020", "niet gehaald"],
    ]
    assert list(rows.columns) == list(
        tables.format_target_table(pd.DataFrame(columns=tables.TARGET_COLUMNS), 0).columns
    )


def test_in_the_spec_layout_a_registration_figure_is_a_row_or_a_bullet(spec, small_table, published, report_params):
    """The demo layout (the 2022 budget page) places the figures: entree requests first, the Wmo counts as
    bullets under their stem."""
    columns = tables.annual_columns(report_params)
    annual = tables.build_annual_table(
        published["indicators"],
        spec,
        report_params,
        tables.measured_waves(spec, spec.waves),
        registration_rows.annual_rows(small_table, spec, columns, 0),
    )
    first, second = annual.sections
    assert first.rows[0].indicator_id == "entree_requests" and first.rows[0].level == 0
    stem_at = next(i for i, row in enumerate(second.rows) if row.is_stem and "binnen de Wmo:" in row.text)
    bullets = second.rows[stem_at + 1 : stem_at + 4]
    assert [r.indicator_id for r in bullets] == ["wmo_household_help", "wmo_support", "wmo_sheltered_housing"]
    assert [r.text for r in bullets] == ["\u2022 Huishoudelijke Hulp", "\u2022 Begeleiding", "\u2022 Beschermd Wonen"]
