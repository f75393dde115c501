"""The report stage end to end on contract fixtures: files, numbers, footnotes, Excel, CSV, failure."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import openpyxl
import pandas as pd
import pytest
import report_fixtures as rf
import yaml
from report_html import parse_report

from survey_pipeline import cli, contracts
from survey_pipeline.artifacts import OutputStore, read_table
from survey_pipeline.errors import InputError
from survey_pipeline.stages.report import sheets, stage, tables
from survey_pipeline.stages.report.formatting import format_percent, not_measured_text
from survey_pipeline.stages.report.markdown import escape


def _digest(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_output_is_written(report_run, spec, report_params):
    files = set(_digest(report_run.report))
    for name in ("indicators", "changes", "distributions"):
        assert {f"{name}.csv", f"{name}_excel_nl.csv", f"{name}.parquet"} <= files
    assert {
        "tabellen.xlsx",
        "jaarverslag.html",
        "jaarverslag.md",
        "jaarverslag.docx",
        "onderzoeksverantwoording.html",
        "onderzoeksverantwoording.md",
        "checks.json",
    } <= files
    indicators = report_run.frames["indicators"]
    wijk_rows = indicators[(indicators["breakdown"] == "wijk") & ~indicators["suppressed"]]
    latest = indicators.groupby("indicator_id")["wave"].max()
    with_wijken = [
        i.id for i in spec.indicators if (wijk_rows["indicator_id"].eq(i.id) & wijk_rows["wave"].eq(latest[i.id])).any()
    ]
    assert "heard" in with_wijken and "wmo_quick" not in with_wijken  # wmo clients per wijk: all suppressed
    stems = ["keten", *(f"trend_{i.id}" for i in spec.indicators), *(f"{spec.area_variable}_{i}" for i in with_wijken)]
    assert report_params.figure_formats == ("svg",)  # PNG only on request
    assert {f for f in files if f.startswith("figures/")} == {f"figures/{stem}.svg" for stem in stems}
    assert report_run.summary["figures"] == len(stems)
    assert not any(f.startswith(f"figures/{spec.area_variable}_wmo_quick") for f in files)
    page = (report_run.report / "jaarverslag.md").read_text(encoding="utf-8")
    # the text under "Vergelijking van de wijken" describes what the figures do with unpublished wijken
    assert "staat in de figuur als \u2018niet gepubliceerd\u2019" in page and "niet getoond" not in page
    checks = json.loads((report_run.report / "checks.json").read_text(encoding="utf-8"))
    assert checks["expectations"] and all(e["success"] for e in checks["expectations"])


def test_published_tables_are_the_estimate_tables_checked(report_run, spec):
    for name in ("indicators", "changes", "distributions"):
        published = read_table(report_run.report / f"{name}.parquet", contracts.REPORT_TABLES[name], spec)
        source = report_run.frames[name]
        assert len(published) == len(source)
        key = [
            c
            for c in published.columns
            if c in ("indicator_id", "variable", "wave", "wave_from", "wave_to", "breakdown", "breakdown_code", "code")
        ]
        merged = published.merge(source, on=key, suffixes=("", "_src"))
        assert len(merged) == len(source)
        for column in ("estimate", "ci_lower", "ci_upper") if "estimate" in published else ("difference",):
            pd.testing.assert_series_equal(merged[column], merged[f"{column}_src"], check_names=False)


def test_report_table_numbers_equal_the_indicator_table(report_run, spec, report_params, annual):
    """HTML, Markdown and Excel show exactly the whole-municipality estimates of indicators.parquet."""
    indicators = read_table(report_run.report / "indicators.parquet", contracts.ReportIndicators, spec)
    totals = indicators[indicators["breakdown"] == "total"].set_index(["indicator_id", "wave"])
    columns = tables.annual_columns(report_params)
    parsed = parse_report((report_run.report / "jaarverslag.html").read_text(encoding="utf-8"))
    markdown = (report_run.report / "jaarverslag.md").read_text(encoding="utf-8")
    sheet = openpyxl.load_workbook(report_run.report / "tabellen.xlsx")["Jaarverslag"]
    excel_rows = {str(r[0].value): r[1:] for r in sheet.iter_rows(min_row=1) if r[0].value}

    assert parsed.headers[: len(columns)] == [" ".join(c.header) for c in columns]
    assert list(parsed.rows) == rf.annual_row_ids(spec)
    printed = {row.indicator_id: row.text for section in annual.sections for row in section.rows}
    compared = 0
    for ind in tables.report_order(spec):
        html_cells = parsed.rows[ind.id][1:]
        assert parsed.rows[ind.id][0] == printed[ind.id]
        excel_cells = excel_rows[printed[ind.id]]
        md_line = next(line for line in markdown.splitlines() if line.startswith(f"| {escape(printed[ind.id])} |"))
        for column, html_cell, excel_cell in zip(columns, html_cells, excel_cells):
            if column.kind == "target":
                assert html_cell == (ind.targets.get(column.year) or "-")
                assert excel_cell.value == html_cell
                continue
            if (ind.id, column.year) not in totals.index:
                assert html_cell == not_measured_text(spec.not_measured_reason(column.year, ind.variable))
                assert excel_cell.value == html_cell and f"| {escape(html_cell)} |" in md_line
                continue
            if totals.loc[(ind.id, column.year), "suppressed"]:
                assert html_cell == "-"
                continue
            estimate = totals.loc[(ind.id, column.year), "estimate"]
            assert html_cell == format_percent(estimate, report_params.decimals)
            assert f"| {html_cell} |" in md_line or f"| {html_cell} (" in md_line
            # xlsxwriter writes 16 significant digits (Excel keeps 15): equal to the last digit Excel can hold
            assert excel_cell.value == pytest.approx(estimate, rel=1e-15, abs=0)
            assert excel_cell.data_type == "n" and excel_cell.number_format.startswith("0%")
            compared += 1
    assert compared == int((~totals["suppressed"]).sum())


def test_bases_and_notes_in_the_rendered_report(report_run, spec):
    """The demo layout states bases inline (footnote markers: test_tables); notes on "-" cells as always."""
    parsed = parse_report((report_run.report / "jaarverslag.html").read_text(encoding="utf-8"))
    assert parsed.footnotes == [] and parsed.unmarked == ""
    walk_in = spec.indicator("walk_in_easy")
    assert parsed.rows["walk_in_easy"][0] == f"\u2022 {walk_in.short_label} {spec.inline_base_text(walk_in.base)}"
    assert parsed.rows["heard"][0] == "\u2022 " + spec.indicator("heard").short_label  # all residents: no base
    suppressed = parsed.rows["wmo_quick"][3]  # Behaald 2021
    # notes are lettered in print order: the registration figure in the first row has one
    assert parsed.notes == [
        "a) het betreft hier niet unieke personen",  # the registrations file's note on a value
        "b) Niet gepubliceerd: effectieve steekproefomvang te klein.",
    ]
    assert suppressed == "-" and parsed.row_notes["wmo_quick"][3] == ["b"]
    assert parsed.row_notes["entree_requests"][1:] and ["a"] in parsed.row_notes["entree_requests"][1:]
    assert parsed.rows["caregiver_burdened"][3] == "-" and parsed.row_notes["caregiver_burdened"][3] == []


def test_excel_has_one_sheet_per_table_with_typed_cells(report_run, spec):
    book = openpyxl.load_workbook(report_run.report / "tabellen.xlsx")
    assert book.sheetnames[:5] == ["Jaarverslag", "Streefwaarden", "Indicatoren", "Veranderingen", "Verdelingen"]
    assert book.sheetnames[5] == "Registraties"
    assert len(book.sheetnames) == 6 + len(spec.indicators)  # a wijk x jaar pivot each
    sheet = book["Indicatoren"]
    header = [c.value for c in sheet[1]]
    assert header == list(sheets.INDICATOR_HEADERS.values())
    first = {h: c for h, c in zip(header, sheet[2])}
    assert first["Indicator"].data_type == "s"
    assert first["Percentage"].data_type == "n" and "%" in first["Percentage"].number_format
    assert first["Aantal respondenten"].data_type == "n" and first["Aantal respondenten"].number_format == "#,##0"
    assert first["Jaar"].data_type == "n" and first["Jaar"].number_format == "0"  # a year: 2019, not 2.019
    assert first["Vrijheidsgraden"].number_format == "General"  # no "2926." quirk
    wijk = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("Uitsplitsing")].value == "Wijk")
    assert wijk[header.index("Code")].number_format == "0"

    targets = book["Streefwaarden"]
    names = [c.value for c in targets[1]]
    assert names == [c for c in tables.TARGET_COLUMNS if c != "indicator_id"]
    rows = [dict(zip(names, r)) for r in targets.iter_rows(min_row=2)]
    judged = [r for r in rows if r["Behaald"].value is not None]
    assert judged and all(r["Behaald"].data_type == "n" and "%" in r["Behaald"].number_format for r in judged)
    assert all(r["Jaar"].number_format == "0" for r in rows)
    change = next(r for r in rows if r["Streefwaarde"].value == "toename")
    assert change["Vergeleken met"].value == change["Jaar"].value - 1 and change["Verandering"].data_type == "n"


def test_csv_is_formula_safe_and_parquet_keeps_text(tmp_path, published):
    from survey_pipeline.stages.report.csv_safety import write_csv
    from survey_pipeline.stages.report.excel import write_workbook

    frame = published["indicators"].head(4).copy()
    frame["label"] = ['=HYPERLINK("http://x")', "+31 50 123", "-1", "@SUM(A1)"]
    write_csv(frame, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(encoding="utf-8", newline="") as handle:
        labels = [row["label"] for row in csv.DictReader(handle)]
    assert labels == ['\'=HYPERLINK("http://x")', "'+31 50 123", "'-1", "'@SUM(A1)"]
    numbers = pd.read_csv(tmp_path / "t.csv")["estimate"]
    pd.testing.assert_series_equal(numbers, frame["estimate"].reset_index(drop=True), check_names=False)

    annual = tables.AnnualTable((), (), (), (), 0)
    write_workbook(
        tmp_path / "t.xlsx", title="=1+1", annual=annual, sheets={"T": frame}, share_columns={"T": ("estimate",)}
    )
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    cells = [row[1] for row in book["T"].iter_rows(min_row=2)]
    assert [c.value for c in cells] == list(frame["label"]) and {c.data_type for c in cells} == {"s"}
    assert book["Jaarverslag"]["A1"].value == "=1+1" and book["Jaarverslag"]["A1"].data_type == "s"


def test_method_note_is_generated_from_the_run(report_run, spec, params):
    text = (report_run.report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    metrics = rf.validate_metrics(tuple(spec.waves))
    for wave, m in metrics["waves"].items():
        assert f"| {wave} | {m['rows_in']:,}".replace(",", ".") in text
    assert f"minder dan {params.estimate.suppression.min_n} respondenten" in text
    assert "Korn-Graubard" in text
    for ind in spec.indicators:
        assert spec.base_text(ind.base) in text
    assert "Kish" in text and "1,42" in text  # the weight diagnostics of the run
    assert "enkel aanhalingsteken" in text  # the CSV formula rule is documented
    # questions left out of a wave, with the spec's reason where it declares one
    assert f"- {spec.variables['wmo_quick'].label}: niet gesteld in 2020 (i.v.m. COVID)." in text
    assert f"- {spec.variables['caregiver_burden'].label}: niet gesteld in 2021." in text
    assert escape("indicators_excel_nl.csv") in text and "decimale komma" in text


def test_a_failed_check_is_exit_2_and_keeps_the_last_good_report(tmp_path, report_run, spec, params):
    project = tmp_path / "project"
    (project / "questionnaires").mkdir(parents=True)
    shutil.copy(rf.ROOT / "questionnaires" / "wij_monitor.yaml", project / "questionnaires")
    (project / "params.yaml").write_text(
        yaml.safe_dump(params.model_dump(mode="json", by_alias=True)), encoding="utf-8"
    )
    shutil.copytree(report_run.outputs, project / "outputs")
    before = _digest(project / "outputs" / "report")

    bad = report_run.frames["indicators"].copy()
    hit = (bad["indicator_id"] == "heard") & (bad["wave"] == 2020) & (bad["breakdown"] == "total")
    bad.loc[hit, "n"] = 12  # published although below the minimum base
    bad.to_parquet(project / "outputs" / "estimate" / "indicators.parquet", index=False)

    # no figure cached: every figure is drawn, in the background while the checkpoint that fails runs
    shutil.rmtree(project / "outputs" / stage.FIGURE_CACHE)
    with pytest.raises(InputError, match="reliability: n >= 30.*heard 2020 Totaal"):
        stage.run(OutputStore(project / "outputs"), spec, params, project)
    # nothing drawn or written for the failed report is left: no scratch or staging folder, no cache entry
    assert not list((project / "outputs").glob(".staging-*"))
    assert not list((project / "outputs" / stage.FIGURE_CACHE).glob("*"))
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == cli.EXIT_INPUT
    assert _digest(project / "outputs" / "report") == before
    assert not list((project / "outputs").glob(".staging-*"))
