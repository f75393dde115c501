"""The report's section Verdieping: the spec's analyses as Dutch tables and a forest plot, with
suppressed rows counted, never printed as numbers."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import openpyxl
import pandas as pd
import pytest
import report_fixtures as rf

from survey_pipeline import SurveyDesign, contracts, demo
from survey_pipeline.artifacts import OutputStore, read_table
from survey_pipeline.errors import InputError
from survey_pipeline.settings import EstimateSettings, WeightSettings
from survey_pipeline.stages.estimate import stage as est
from survey_pipeline.stages.report import checks, figures, stage, verdieping
from survey_pipeline.stages.report import method_note as verdieping_note
from survey_pipeline.stages.report.document import Document, Heading, Image, Table
from survey_pipeline.stages.report.formatting import format_number, format_p_value
from survey_pipeline.stages.report.markdown import render_markdown

CAL = WeightSettings(margins=("age_group", "sex", "wijk"), population_file="data/population/margins.csv")
WAVES = [2019, 2020, 2021]


@pytest.fixture(scope="module")
def small_rule(rule):
    """A low minimum base, so that on this small panel some wijken are published and others not."""
    return rule.model_copy(update={"min_n": 10})


@pytest.fixture(scope="module")
def analyses(spec, small_rule):
    """The analysis tables of a small demo panel, as the estimate stage writes them."""
    panel = demo.generate_panel(spec, n_per_wave=900, seed=7, faults=False)
    parts = []
    for wave, frame in panel.waves.items():
        frame = frame[frame[list(CAL.weighting_variables)].notna().all(axis=1)].reset_index(drop=True)
        design = SurveyDesign(frame.assign(weight=1.0), weights="weight")
        parts.append(frame.assign(weight=design.rake(est.wave_margins(panel.margins, wave, CAL)).weights))
    params = EstimateSettings(breakdowns=("sex",), suppression=small_rule)
    return est.estimate_all(spec, pd.concat(parts, ignore_index=True), panel.margins, params, CAL).analyses


@pytest.fixture(scope="module")
def forest(spec, analyses, tmp_path_factory):
    (plan,) = verdieping.forest_plans(analyses, spec, WAVES, 0.95)
    return figures.write_figures([plan], tmp_path_factory.mktemp("report") / "figures", ["svg"], None)


@pytest.fixture(scope="module")
def section(spec, analyses, forest, small_rule):
    return verdieping.verdieping_blocks(spec, analyses, forest, WAVES, 0.95, small_rule)


def _table_after(blocks, title: str, position: int = 0) -> Table:
    start = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == title)
    return [b for b in blocks[start + 1 :] if isinstance(b, Table)][position]


def test_every_analysis_has_its_heading_in_spec_order(spec, section):
    assert isinstance(section[0], Heading) and section[0].text == "Verdieping"
    titles = [b.text for b in section if isinstance(b, Heading) and b.level == 3]
    assert titles == [a.title for a in spec.analyses]


def test_crosstab_prints_the_rao_scott_test_with_both_degrees_of_freedom(section, analyses):
    tests = _table_after(section, "Gehoord van WIJ Groningen naar leeftijdsgroep", 1)
    assert tests.headers[2:5] == ("Vrijheidsgraden (teller)", "Vrijheidsgraden (noemer)", "p-waarde")
    row = analyses["crosstab_tests"].set_index("wave").loc[2021]
    printed = dict(zip(tests.headers, tests.rows[-1], strict=True))
    assert printed["Meting"] == "2021" and printed["F"] == format_number(row["statistic"], 2)
    assert printed["Vrijheidsgraden (noemer)"] == format_number(row["ddf"], 1)
    assert printed["p-waarde"] == format_p_value(row["p_value"])
    cells = _table_after(section, "Gehoord van WIJ Groningen naar leeftijdsgroep")
    assert cells.headers == ("Antwoord", "18-34 jaar", "35-49 jaar", "50-64 jaar", "65 jaar en ouder")


def test_suppressed_rows_are_counted_never_printed(spec, section, analyses, small_rule):
    means = analyses["means"]
    rows = means[(means["analysis_id"] == "report_mark") & (means["wave"] == 2021) & (means["breakdown"] == "wijk")]
    hidden, shown = rows[rows["suppressed"]], rows[~rows["suppressed"]]
    assert len(hidden) and len(shown)
    table = _table_after(section, "Rapportcijfer voor WIJ Groningen", 1)
    assert {r[0] for r in table.rows} == set(shown["breakdown_label"])
    assert f"Niet gepubliceerd: {len(hidden)} van de 30 (minder dan {small_rule.min_n} waarnemingen" in table.caption
    versus = analyses["area_vs_rest"]
    published = versus[(versus["wave"] == 2021) & ~versus["suppressed"]]
    area_table = _table_after(section, "Gehoord van WIJ Groningen: wijk tegenover de rest van de gemeente")
    assert [r[0] for r in area_table.rows] == list(published.sort_values("difference", ascending=False)["area_label"])


def test_area_comparison_states_the_adjustment(section):
    text = render_markdown(Document("t", tuple(section)))
    assert "gecorrigeerd voor 30 vergelijkingen volgens Holm" in text
    assert "p-waarde gecorrigeerd (Holm)" in text


def test_odds_ratios_with_reference_rows_and_the_forest_plot(section, analyses, forest):
    table = _table_after(section, "Wie heeft nog niet van WIJ Groningen gehoord?")
    assert table.rows[0][:3] == ("Leeftijdsgroep", "18-34 jaar", "1 (referentie)")
    odds = analyses["odds_ratios"]
    woman = odds[(odds["wave"] == 2021) & (odds["term"] == "factor(sex)2")].iloc[0]
    assert ("Geslacht", "vrouw", format_number(woman["odds_ratio"], 2)) == table.rows[-1][:3]
    images = [b for b in section if isinstance(b, Image)]
    assert [i.src for i in images] == ["figures/odds_not_heard.svg"] == list(forest[0].files)


def test_trend_prints_points_per_year(section, analyses):
    table = _table_after(section, "Gehoord van WIJ Groningen: trend over de metingen")
    row = analyses["trends"].iloc[0]
    assert table.rows[0][0] == "Totaal" and table.rows[0][4] == format_p_value(row["p_value"])
    assert table.rows[0][2].replace("+", "") == format_number(100 * row["slope"], 1)


def test_no_analyses_no_section(spec, analyses, rule):
    assert verdieping.verdieping_blocks(dataclasses.replace(spec, analyses=()), analyses, [], WAVES, 0.95, rule) == []


@pytest.fixture(scope="module")
def published_run(tmp_path_factory, spec, params, analyses):
    """A whole report-stage run on the demo analyses; one title is a formula, as a spec could hold."""
    outputs = tmp_path_factory.mktemp("verdieping_run") / "outputs"
    rf.write_stage_outputs(outputs, spec, params)
    means = analyses["means"]
    estimated = {
        **analyses,
        "means": means.assign(title=means["title"].where(means["analysis_id"] != "report_mark", FORMULA)),
    }
    for name, table in estimated.items():
        table.to_parquet(outputs / "estimate" / contracts.ANALYSES_FOLDER / f"{name}.parquet", index=False)
    store = OutputStore(outputs)
    stage.run(store, spec, params, rf.ROOT)
    store.commit()
    return SimpleNamespace(report=outputs / "report", estimated=estimated)


FORMULA = '=HYPERLINK("http://x.invalid","Rapportcijfer")'


def test_analysis_tables_are_published_as_estimated(spec, published_run):
    folder = published_run.report / contracts.ANALYSES_FOLDER
    for name, estimated in published_run.estimated.items():
        published = read_table(folder / f"{name}.parquet", contracts.REPORT_ANALYSIS_TABLES[name], spec)
        pd.testing.assert_frame_equal(published, estimated.reset_index(drop=True), check_dtype=False)
        csv = pd.read_csv(folder / f"{name}.csv")
        assert list(csv.columns) == list(estimated.columns) and len(csv) == len(estimated)
        assert (folder / f"{name}_excel_nl.csv").exists()
    assert published_run.estimated["means"]["suppressed"].any()  # withheld rows are exercised
    means = pd.read_csv(folder / "means.csv")
    assert (means["title"] != FORMULA).all() and (means["title"] == "'" + FORMULA).any()


def test_analysis_sheets_are_dutch_with_rows_withheld(spec, published_run):
    book = openpyxl.load_workbook(published_run.report / "tabellen.xlsx")
    for name, sheet_name in verdieping.ANALYSIS_SHEETS.items():
        estimated = published_run.estimated[name]
        sheet = book[sheet_name]
        header = [c.value for c in sheet[1]]
        assert header == list(verdieping.ANALYSIS_HEADERS[name].values())
        rows = [dict(zip(header, r)) for r in sheet.iter_rows(min_row=2, values_only=True)]
        assert len(rows) == len(estimated)
        for row, hidden in zip(rows, estimated["suppressed"]):
            assert row["Niet gepubliceerd"] == ("ja" if hidden else "nee")
            assert bool(row["Reden niet gepubliceerd"]) == hidden
            assert row["Reden niet gepubliceerd"] not in {"min_n", "no_estimate", "no_interval"}
    means = [
        dict(zip([c.value for c in book["Gemiddelden"][1]], r))
        for r in book["Gemiddelden"].iter_rows(min_row=2, values_only=True)
    ]
    assert all(r["Gemiddelde"] is None for r in means if r["Niet gepubliceerd"] == "ja")
    assert any(r["Analyse"] == FORMULA for r in means)  # stored as text, never as a formula
    assert all(c.data_type != "f" for r in book["Gemiddelden"].iter_rows() for c in r)


def test_a_withheld_analysis_row_with_a_number_fails_the_report_check(spec, analyses, tmp_path):
    means = analyses["means"].copy()
    hidden = means.index[means["suppressed"]][0]
    means.loc[hidden, "estimate"] = 7.5
    with pytest.raises(InputError) as info:
        checks.check_analyses({**analyses, "means": means}, spec, tmp_path)
    assert info.value.rule == "schema:report_analysis_means"
    odds = analyses["odds_ratios"].copy()
    odds.loc[odds.index[~odds["reference"] & ~odds["suppressed"]][0], "or_upper"] = 1e-3
    with pytest.raises(InputError) as info:
        checks.check_analyses({**analyses, "odds_ratios": odds}, spec, tmp_path)
    assert "interval_contains" in str(info.value)


def test_the_method_note_explains_the_analyses_of_the_spec(spec, published_run):
    note = (published_run.report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    section = note.split("Verdieping: gemiddelden", 1)[1].split("\n## ", 1)[0]
    for analysis in spec.analyses:
        assert analysis.title in section
    for words in (
        "Rao-Scott F-toets van de tweede orde",
        "quasibinomial()",
        "residuele vrijheidsgraden",
        "svycontrast",
    ):
        assert words in section
    (comparison,) = [a for a in spec.analyses if a.kind == "wijk_vs_rest"]
    assert verdieping_note.ADJUSTMENT_METHOD_TEXT[comparison.adjustment] in section
    versus = published_run.estimated["area_vs_rest"]
    assert f"({int(versus['n_tests'].iloc[0])} vergelijkingen per meting)" in section
    means = published_run.estimated["means"]
    assert f"| Gemiddelden | {len(means)} | {int(means['suppressed'].sum())} |" in section


def test_analyses_without_rows_are_described_but_not_counted(spec, report_run):
    """The report-stage fixture has the spec's analyses but tables without rows."""
    note = (report_run.report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    section = note.split("Verdieping: gemiddelden", 1)[1].split("\n## ", 1)[0]
    assert spec.analyses[0].title in section and "| Gemiddelden |" not in section
