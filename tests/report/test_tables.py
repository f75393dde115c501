"""The annual-report table: numbers from the indicator table, bases and targets from the spec."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import report_fixtures as rf
import yaml
from report_html import parse_report

from survey_pipeline.errors import InputError
from survey_pipeline.settings import ReportSettings
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.report import formatting as fmt
from survey_pipeline.stages.report import tables
from survey_pipeline.stages.report.document import AnnualTableBlock, Document
from survey_pipeline.stages.report.html import render_html
from survey_pipeline.stages.report.stage import check_waves


def _raw_spec() -> dict:
    return yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))


def _annual(spec, params, report_params, indicators=None):
    indicators = (
        indicators
        if indicators is not None
        else tables.publish_indicators(rf.indicator_frame(spec, params), spec, list(params.estimate.breakdowns))
    )
    return tables.build_annual_table(indicators, spec, report_params, tables.measured_waves(spec, spec.waves))


def _row(table, indicator_id):
    return next(r for s in table.sections for r in s.rows if r.indicator_id == indicator_id)


def test_columns_follow_params(report_params):
    headers = [c.header for c in tables.annual_columns(report_params)]
    assert headers == [
        ("Behaald", "2019"),
        ("Behaald", "2020"),
        ("Behaald", "2021"),
        ("Beoogd", "2022"),
        ("Beoogd", "2023"),
    ]
    both = ReportSettings(achieved_waves=(2016, 2017), target_years=(2017,), decimals=0)
    assert [c.header for c in tables.annual_columns(both)] == [
        ("Behaald", "2016"),
        ("Beoogd", "2017"),
        ("Behaald", "2017"),
    ]


def test_sections_keep_spec_order(spec, params, report_params, published):
    table = tables.build_annual_table(
        published["indicators"], spec, report_params, tables.measured_waves(spec, spec.waves)
    )
    assert [s.title for s in table.sections] == ["Prestatie-indicatoren", "Kengetallen"]
    assert [r.indicator_id for r in table.sections[0].rows] == [i.id for i in spec.indicators if i.kind == "prestatie"]
    assert [r.indicator_id for r in table.sections[1].rows] == [i.id for i in spec.indicators if i.kind == "kengetal"]
    assert all(r.label == spec.indicator(r.indicator_id).label for s in table.sections for r in s.rows)


def test_achieved_numbers_are_the_indicator_tables_numbers(spec, report_params, published):
    indicators = published["indicators"]
    table = tables.build_annual_table(indicators, spec, report_params, tables.measured_waves(spec, spec.waves))
    totals = indicators[indicators["breakdown"] == "total"].set_index(["indicator_id", "wave"])
    checked = 0
    for section in table.sections:
        for row in section.rows:
            for column, cell in zip(table.columns, row.cells):
                if column.kind != "achieved" or (row.indicator_id, column.year) not in totals.index:
                    continue
                source = totals.loc[(row.indicator_id, column.year)]
                if source["suppressed"]:
                    assert cell.text == "-" and cell.value is None and cell.notes
                    continue
                assert cell.value == source["estimate"]
                printed = float(cell.text.rstrip("%").replace(",", "."))
                assert abs(printed - 100 * source["estimate"]) <= 0.5
                checked += 1
    assert checked == int((~indicators.loc[indicators["breakdown"] == "total", "suppressed"]).sum())


def test_unmeasured_waves_and_targets(spec, params, report_params, published):
    table = tables.build_annual_table(
        published["indicators"], spec, report_params, tables.measured_waves(spec, spec.waves)
    )
    texts = lambda ind: [c.text for c in _row(table, ind).cells]  # noqa: E731
    assert texts("caregiver_burdened")[2:] == ["-", "afname <20%", "<15%"]  # not asked in 2021
    assert texts("wmo_quick")[1] == "- (i.v.m. COVID)"  # not asked in 2020, reason in the spec
    assert texts("heard")[3:] == [">80%", ">80%"]
    assert texts("contact_of_heard")[3:] == ["kengetal", "kengetal"]
    assert texts("contact_of_residents")[3:] == ["kengetal", "20%"]


def test_suppressed_total_is_a_dash_with_the_reason(spec, params, report_params, published):
    indicators = published["indicators"].copy()
    hit = (
        (indicators["indicator_id"] == "wmo_quick")
        & (indicators["wave"] == 2021)
        & (indicators["breakdown"] == "total")
    )
    indicators.loc[hit, ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"]] = np.nan
    indicators.loc[hit, "suppressed"] = True
    indicators.loc[hit, "suppression_reason"] = "min_n_eff;max_ci_width"
    table = tables.build_annual_table(indicators, spec, report_params, tables.measured_waves(spec, spec.waves))
    cell = _row(table, "wmo_quick").cells[2]
    assert cell.text == "-" and cell.value is None
    note = dict(table.notes)[cell.notes[0]]
    assert note == "Niet gepubliceerd: effectieve steekproefomvang te klein; betrouwbaarheidsinterval te breed."


def test_footnotes_come_from_the_spec_bases(spec, params, report_params):
    table = _annual(spec, params, report_params)
    assert _row(table, "heard").marker == ""  # all residents: no footnote
    assert _row(table, "contact_of_residents").marker == ""
    assert _row(table, "walk_in_easy").marker == "*"
    assert _row(table, "contact_of_heard").marker == "*"
    # markers in order of first use: heard_of_wij, caregivers, wmo_clients (prestatie), had_contact (kengetal)
    assert _row(table, "caregiver_burdened").marker == "**"
    assert _row(table, "wmo_fits_need").marker == "***"
    assert _row(table, "helped_of_contact").marker == "****"
    footnotes = dict(table.footnotes)
    assert footnotes["*"] == f"Percentage {spec.base_text('heard_of_wij')}."
    assert footnotes["****"] == f"Percentage {spec.base_text('had_contact')}."
    assert len(footnotes) == len({i.base for i in spec.indicators} - {"residents"})
    # the unmarked rows (heard, contact of all residents, ...) say their base too
    assert table.unmarked == "Zonder voetnoot: percentage van alle bewoners (18 jaar e.o.)."
    page = parse_report(render_html(Document("t", (AnnualTableBlock(table),))))
    assert page.unmarked == table.unmarked


def test_no_unmarked_note_when_every_row_has_a_footnote(spec, params, report_params):
    raw = _raw_spec()
    raw["indicators"] = [i for i in raw["indicators"] if i["base"] != "residents"]
    subgroup_only = parse_spec(raw)
    assert _annual(subgroup_only, params, report_params).unmarked == ""


def test_changing_a_base_in_the_spec_changes_its_footnote(spec, params, report_params):
    raw = _raw_spec()
    changed = copy.deepcopy(raw)
    for body in changed["indicators"]:
        if body["id"] == "knows_where":
            body["base"] = "heard_of_wij"  # was: residents
        if body["id"] == "caregiver_burdened":
            body["base"] = "residents"  # was: caregivers
    changed["groups"]["heard_of_wij"]["label"] = "de bewoners die WIJ Groningen kennen"
    new_spec = parse_spec(changed)
    before, after = _annual(spec, params, report_params), _annual(new_spec, params, report_params)

    assert _row(before, "knows_where").marker == ""
    assert _row(after, "knows_where").marker == "*"
    assert dict(after.footnotes)["*"] == "Percentage van de bewoners die WIJ Groningen kennen."
    assert _row(before, "caregiver_burdened").marker != ""
    assert _row(after, "caregiver_burdened").marker == ""
    assert not any("mantelzorg" in text for _, text in after.footnotes)

    # and so does the rendered page
    page = parse_report(render_html(Document("t", (AnnualTableBlock(after),))))
    assert page.rows["knows_where"][0] == new_spec.indicator("knows_where").label + "*"
    assert page.footnotes[0] == "* Percentage van de bewoners die WIJ Groningen kennen."
    assert not any("mantelzorg" in f for f in page.footnotes)


def test_missing_columns_are_an_input_error(spec, params, raw_frames):
    with pytest.raises(InputError, match="lacks column"):
        tables.publish_indicators(
            raw_frames["indicators"].drop(columns=["ci_upper"]), spec, list(params.estimate.breakdowns)
        )


def test_published_table_keeps_contract_order_and_dtypes(published):
    indicators = published["indicators"]
    assert list(indicators.columns) == list(tables.INDICATOR_COLUMNS)
    assert str(indicators["n"].dtype) == "int64" and str(indicators["suppressed"].dtype) == "bool"
    first = indicators.iloc[0]
    assert (first["indicator_id"], first["breakdown"]) == ("heard", "total")


def test_chain_is_derived_from_the_routing(spec):
    steps = tables.chain_steps(spec)
    assert [s.conditional.id for s in steps] == ["heard", "contact_of_heard", "helped_of_contact"]
    assert [s.of_residents.id for s in steps] == ["heard", "contact_of_residents", "helped_of_residents"]


def test_target_and_change_tables(spec, report_params, published):
    targets = tables.target_table(published["indicators"], published["changes"], spec, report_params)
    assert set(targets["Oordeel"]) <= {"gehaald", "niet gehaald", "niet te onderscheiden", "niet te beoordelen"}
    assert "kengetal" not in set(targets["Streefwaarde"])
    changes = tables.change_table(published["changes"], spec)
    assert set(changes["Periode"]) == {"2019\u20132020", "2020\u20132021", "2019\u20132021"}
    assert changes["Verschil (procentpunt)"].str.match(r"^[+-]?\d+,\d$|^0,0$|^-$").all()
    # both levels with one decimal, like the difference, so rounding cannot make them disagree
    assert changes["Van"].str.match(r"^\d+,\d%$|^-$").all() and changes["Naar"].str.match(r"^\d+,\d%$|^-$").all()


def test_a_change_target_shows_the_change_it_was_judged_on(spec, report_params, published):
    targets = tables.target_table(published["indicators"], published["changes"], spec, report_params)
    row = targets[(targets["indicator_id"] == "heard") & (targets["Jaar"] == 2020)].iloc[0]  # "toename"
    changes = published["changes"]
    source = changes[
        (changes["indicator_id"] == "heard")
        & (changes["wave_from"] == 2019)
        & (changes["wave_to"] == 2020)
        & (changes["breakdown"] == "total")
    ].iloc[0]
    assert row["Vergeleken met"] == 2019
    assert (row["Verandering"], row["Verandering ondergrens"], row["Verandering bovengrens"]) == (
        source["difference"],
        source["ci_lower"],
        source["ci_upper"],
    )
    level = targets[(targets["indicator_id"] == "heard") & (targets["Jaar"] == 2021)].iloc[0]  # ">80%"
    assert pd.isna(level["Vergeleken met"]) and np.isnan(level["Verandering"])

    printed = tables.format_target_table(targets, 0).set_index(["indicator_id", "Jaar"])
    expected = (
        f"{fmt.format_points(source['difference'])} ({fmt.format_points(source['ci_lower'])} tot "
        f"{fmt.format_points(source['ci_upper'])}) t.o.v. 2019"
    )
    assert printed.loc[("heard", "2020"), "Verandering (procentpunt)"] == expected
    assert printed.loc[("heard", "2021"), "Verandering (procentpunt)"] == "n.v.t."
    # the interval one decimal finer than the estimate, so a bound just clear of a target shows it
    assert printed.loc[("heard", "2021"), "Betrouwbaarheidsinterval"] == (
        f"{fmt.format_percent(level['Ondergrens'], 1)} \u2013 {fmt.format_percent(level['Bovengrens'], 1)}"
    )
    assert printed.loc[("heard", "2021"), "Behaald"] == fmt.format_percent(level["Behaald"], 0)
    assert "Toename" in tables.target_rule_text(0.95) and "95%-betrouwbaarheidsinterval" in tables.target_rule_text(
        0.95
    )


def test_a_target_missed_on_its_level_is_not_met_even_if_its_change_cannot_be_judged(spec, report_params, published):
    # "afname <20%" with the level part not met and the change part not evaluable: the estimate stage
    # says not_met (one part fails) and flags the unjudged part; the report must print "niet gehaald".
    indicators = published["indicators"].copy()
    hit = (indicators["indicator_id"] == "heard") & (indicators["wave"] == 2021) & (indicators["breakdown"] == "total")
    indicators.loc[hit, ["target", "target_status", "flags"]] = [
        "afname <20%",
        "not_met",
        "target_not_evaluable:change_suppressed",
    ]
    targets = tables.target_table(indicators, published["changes"], spec, report_params)
    row = targets[(targets["indicator_id"] == "heard") & (targets["Jaar"] == 2021)].iloc[0]
    assert row["Oordeel"] == "niet gehaald"
    indicators.loc[hit, "target_status"] = "indistinguishable"
    targets = tables.target_table(indicators, published["changes"], spec, report_params)
    assert (
        targets.loc[(targets["indicator_id"] == "heard") & (targets["Jaar"] == 2021), "Oordeel"].item()
        == "niet te beoordelen"
    )


def test_a_wave_declared_not_measured_shows_its_reason_in_every_row(spec, params, published):
    raw = _raw_spec()
    raw["survey"]["not_measured"] = {2018: "nog geen panel"}
    skipping = parse_spec(raw)
    report = ReportSettings(achieved_waves=(2018, 2019, 2020, 2021), target_years=(2022,), decimals=0)
    check_waves(report, skipping, (2019, 2020, 2021), metrics_file="metrics.json")
    table = tables.build_annual_table(
        published["indicators"], skipping, report, tables.measured_waves(skipping, skipping.waves)
    )
    for section in table.sections:
        for row in section.rows:
            assert (row.cells[0].text, row.cells[0].value, row.cells[0].notes) == ("- (nog geen panel)", None, ())
    assert _row(table, "wmo_quick").cells[2].text == "- (i.v.m. COVID)"  # the question's own reason


@pytest.mark.parametrize(
    ("achieved", "error", "message"),
    [
        (
            (2018, 2019),
            "rule 'params': params key 'report.achieved_waves'",
            "wave 2018 is neither measured (survey.waves [2019, 2020, 2021]) nor declared not measured "
            "(survey.not_measured) in the spec",
        ),
        (
            (2019, 2020),
            "/data/out/validate/metrics.json, rule 'missing_wave'",
            "report.achieved_waves lists wave 2020, but this run has no valid rows for it",
        ),
    ],
)
def test_an_achieved_wave_without_data_or_declaration_is_an_error(spec, achieved, error, message):
    report = ReportSettings(achieved_waves=achieved, target_years=(), decimals=0)
    with pytest.raises(InputError) as caught:
        check_waves(report, spec, (2019, 2021), metrics_file="/data/out/validate/metrics.json")
    assert str(caught.value).startswith(error) and str(caught.value).endswith(message)
