"""The annual-report table: numbers from the indicator table, bases and targets from the spec."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import report_fixtures as rf
import yaml
from report_html import parse_report

from survey_pipeline.errors import InputError, SpecError
from survey_pipeline.settings import ReportSettings
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.report import formatting as fmt
from survey_pipeline.stages.report import tables
from survey_pipeline.stages.report.document import AnnualTableBlock, Document
from survey_pipeline.stages.report.html import render_html
from survey_pipeline.stages.report.stage import check_waves


def _raw_spec(*, layout: bool = False) -> dict:
    """The demo spec as parsed YAML; without its report_layout (the default table) unless `layout`."""
    raw = yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    if not layout:
        del raw["report_layout"]
    return raw


def _report(year: int = 2022, achieved: int = 3, target: int = 2, **extra) -> ReportSettings:
    return ReportSettings(year=year, achieved_count=achieved, target_count=target, decimals=0, **extra)


def _annual(spec, params, report_params, indicators=None):
    indicators = (
        indicators
        if indicators is not None
        else tables.publish_indicators(rf.indicator_frame(spec, params), spec, list(params.estimate.breakdowns))
    )
    return tables.build_annual_table(indicators, spec, report_params, tables.measured_waves(spec, spec.waves))


def _published(spec, params):
    return tables.publish_indicators(rf.indicator_frame(spec, params), spec, list(params.estimate.breakdowns))


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
    # the 2021 budget, written before the 2020 wave: Behaald 2019; Beoogd 2020, 2021 (year: the first Beoogd year)
    budget_2021 = _report(2020, achieved=1, target=2)
    assert [c.header for c in tables.annual_columns(budget_2021)] == [
        ("Behaald", "2019"),
        ("Beoogd", "2020"),
        ("Beoogd", "2021"),
    ]


def test_without_a_layout_sections_are_the_kinds_in_spec_order(default_spec, params, report_params):
    spec = default_spec
    table = _annual(spec, params, report_params)
    assert [s.title for s in table.sections] == ["Prestatie-indicatoren", "Kengetallen"]
    assert [r.indicator_id for r in table.sections[0].rows] == [i.id for i in spec.indicators if i.kind == "prestatie"]
    assert [r.indicator_id for r in table.sections[1].rows] == [i.id for i in spec.indicators if i.kind == "kengetal"]
    assert all(r.label == spec.indicator(r.indicator_id).label for s in table.sections for r in s.rows)
    assert table.heading == "" and table.intro == tables.DEFAULT_INTRO
    assert not any(r.is_stem or r.level or r.base for s in table.sections for r in s.rows)


def test_the_layout_of_the_spec_gives_sections_stems_bullets_and_inline_bases(spec, params, report_params):
    """The demo spec lays the table out as the 2022 budget page: beleidsvelden, a stem with bullets, bases inline."""
    table = _annual(spec, params, report_params)
    layout = spec.report_layout
    assert [s.title for s in table.sections] == ["Stimulering samenlevingsopbouw", "Passende ondersteuning"]
    assert table.heading == layout.heading and table.intro == layout.intro
    assert table.sections[0].intro == layout.sections[0].intro and table.sections[1].intro == ""
    first = table.sections[0].rows
    assert first[0].is_stem and first[0].text == "% Inwoners (18 jaar e.o.) dat aangeeft:"
    stem = next(row for row in layout.sections[0].rows if not isinstance(row, str))
    bullets = first[1 : 1 + len(stem.members)]
    assert [r.indicator_id for r in bullets] == list(stem.members) and all(r.level == 1 for r in bullets)
    assert [r.label for r in bullets] == [spec.indicator(i).short_label for i in stem.members]
    by_id = {r.indicator_id: r for s in table.sections for r in s.rows}
    # a base other than all residents after the label, in the group's inline words; no footnotes
    assert by_id["contact_of_heard"].text == (
        "\u2022 In de afgelopen 12 maanden (wel eens) contact te hebben gehad met WIJ Groningen "
        "(van het deel dat gehoord heeft van WIJ Groningen)"
    )
    assert by_id["contact_of_residents"].base == "" and by_id["heard"].base == ""
    assert by_id["caregiver_burdened"].level == 0 and by_id["caregiver_burdened"].base == (
        "(van de bewoners die mantelzorg geven)"
    )
    # the Wmo stem states its base: not repeated per bullet
    assert by_id["wmo_quick"].base == "" and by_id["wmo_quick"].text == "\u2022 Snel geholpen te zijn bij de hulpvraag"
    assert table.footnotes == () and table.unmarked == "" and all(not r.marker for r in by_id.values())
    # a question not asked in a wave, with the spec's reason
    assert by_id["wmo_quick"].cells[1].text == "- (i.v.m. COVID)"
    registrations = {r.id for r in spec.registrations}  # their rows need the registrations file's values
    survey_ids = [i for i in layout.indicator_ids() if i not in registrations]
    assert [r.indicator_id for s in table.sections for r in s.rows if not r.is_stem] == survey_ids
    # the target and change tables state the bases the same way
    targets = tables.target_table(
        _published(spec, params), rf.change_frame(spec, rf.indicator_frame(spec, params)), spec, report_params
    )
    walk_in = spec.indicator("walk_in_easy")
    assert f"{walk_in.label} (van het deel dat gehoord heeft van WIJ Groningen)" in set(targets["Indicator"])


def test_a_layout_with_footnotes_marks_bullets_too(params, report_params):
    raw = _raw_spec(layout=True)
    raw["report_layout"]["base_style"] = "footnote"
    table = _annual(parse_spec(raw), params, report_params)
    by_id = {r.indicator_id: r for s in table.sections for r in s.rows}
    assert by_id["walk_in_easy"].text == "\u2022 Het gemakkelijk te vinden om bij WIJ Groningen naar binnen te lopen*"
    assert by_id["wmo_quick"].marker != "" and by_id["wmo_quick"].base == ""
    assert dict(table.footnotes)["*"] == "Percentage van de bewoners die (wel eens) gehoord hebben van WIJ Groningen."


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (
            lambda lay: lay["sections"][1]["rows"].insert(1, "nonsense"),
            "report_layout.sections.1.rows.1",
            "unknown indicator or registration figure 'nonsense'",
        ),
        (
            lambda lay: lay["sections"][1]["rows"].insert(1, "heard"),
            "report_layout.sections.1.rows.1",
            "indicator 'heard' is listed twice (also at report_layout.sections.0.rows.1.members.0)",
        ),
        (
            lambda lay: lay["sections"][0]["rows"].pop(),
            "report_layout.sections",
            "indicator(s) ['caregiver_burdened'] are in no section",
        ),
        (
            lambda lay: lay["sections"][1]["rows"][0].update(base="nobody"),
            "report_layout.sections.1.rows.0.base",
            "unknown group 'nobody'",
        ),
        (
            lambda lay: lay["sections"][1]["rows"][0].update(base="residents"),
            "report_layout.sections.1.rows.0.members.0",
            "indicator 'wmo_quick' has base 'wmo_clients', but its stem states 'residents'",
        ),
        (
            lambda lay: lay.update(base_style="margin"),
            "report_layout.base_style",
            "must be one of 'footnote' or 'inline', got 'margin'",
        ),
    ],
)
def test_a_bad_layout_is_one_line_naming_the_key(edit, key, problem):
    raw = _raw_spec(layout=True)
    edit(raw["report_layout"])
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert (caught.value.key, str(caught.value).split(f"'{key}': ", 1)[-1]) == (key, problem)


def test_a_bullet_needs_its_short_label():
    raw = _raw_spec(layout=True)
    del next(i for i in raw["indicators"] if i["id"] == "knows_where")["short_label"]
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert caught.value.key == "indicators.knows_where.short_label"
    assert "a bullet under a stem at report_layout.sections.0.rows.1" in str(caught.value)


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


def test_footnotes_come_from_the_spec_bases(default_spec, params, report_params):
    spec = default_spec
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


def test_changing_a_base_in_the_spec_changes_its_footnote(default_spec, params, report_params):
    spec = default_spec
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
    report = _report(2022, achieved=4, target=1)
    check_waves(report, skipping, (2019, 2020, 2021), metrics_file="metrics.json")
    table = tables.build_annual_table(
        published["indicators"], skipping, report, tables.measured_waves(skipping, skipping.waves)
    )
    for section in table.sections:
        for row in section.rows:
            assert (row.cells[0].text, row.cells[0].value, row.cells[0].notes) == ("- (nog geen panel)", None, ())
    assert _row(table, "wmo_quick").cells[2].text == "- (i.v.m. COVID)"  # the question's own reason


@pytest.mark.parametrize(
    ("window", "error", "message"),
    [
        (
            {"year": 2022, "achieved": 4},
            "rule 'params': params key 'report.year'",
            "the window Behaald 2018-2021 (report.year 2022, report.achieved_count 4) holds wave 2018, which is "
            "neither measured (survey.waves [2019, 2020, 2021]) nor declared not measured (survey.not_measured) "
            "in the spec",
        ),
        (
            {"year": 2022, "achieved": 3},
            "/data/out/validate/metrics.json, rule 'missing_wave'",
            "the window Behaald 2019-2021 (report.year 2022, report.achieved_count 3) shows wave 2020, but this "
            "run has no valid rows for it",
        ),
        (
            {"year": 2022, "achieved": 2},
            "rule 'params': params key 'report.year'",
            "measured wave 2019 (survey.waves) is outside the window Behaald 2020-2021 (report.year 2022, "
            "report.achieved_count 2): move the window or leave the wave out on purpose under "
            "report.exclude_waves with the reason",
        ),
        (
            {"year": 2021, "achieved": 2},
            "rule 'params': params key 'report.year'",
            "measured wave 2021 (survey.waves) is outside the window Behaald 2019-2020 (report.year 2021, "
            "report.achieved_count 2): move the window or leave the wave out on purpose under "
            "report.exclude_waves with the reason",
        ),
        (
            {"year": 2022, "achieved": 2, "exclude_waves": {2019: "r", 2020: "r"}},
            "rule 'params': params key 'report.exclude_waves.2020'",
            "wave 2020 is in the window Behaald 2020-2021 (report.year 2022, report.achieved_count 2); a wave is "
            "shown or left out",
        ),
        (
            {"year": 2022, "achieved": 3, "exclude_waves": {2017: "r"}},
            "rule 'params': params key 'report.exclude_waves.2017'",
            "wave 2017 is not measured (survey.waves [2019, 2020, 2021])",
        ),
    ],
)
def test_a_window_that_hides_or_invents_a_wave_is_an_error(spec, window, error, message):
    report = _report(window.pop("year"), achieved=window.pop("achieved"), target=0, **window)
    with pytest.raises(InputError) as caught:
        check_waves(report, spec, (2019, 2021), metrics_file="/data/out/validate/metrics.json")
    assert str(caught.value).startswith(error) and str(caught.value).endswith(message)


def test_a_wave_left_out_on_purpose_is_named_under_the_table(spec, params, published):
    report = _report(2022, achieved=2, target=2, exclude_waves={2019: "andere vraagstelling"})
    check_waves(report, spec, (2019, 2020, 2021), metrics_file="metrics.json")
    table = tables.build_annual_table(published["indicators"], spec, report, tables.measured_waves(spec, spec.waves))
    assert [" ".join(c.header) for c in table.columns] == ["Behaald 2020", "Behaald 2021", "Beoogd 2022", "Beoogd 2023"]
    assert table.remarks == ("De meting van 2019 staat niet in deze tabel (andere vraagstelling).",)
    page = render_html(Document("t", (AnnualTableBlock(table),)))
    assert "De meting van 2019 staat niet in deze tabel (andere vraagstelling)." in page


def test_a_stem_without_rows_under_it_is_left_out(spec, params, report_params):
    """Without the registrations file's values the Wmo counts have no rows: their stem is not printed alone."""
    table = _annual(spec, params, report_params)  # built without registration figures
    stems = [row.text for section in table.sections for row in section.rows if row.is_stem]
    assert stems and not any("binnen de Wmo:" in text for text in stems)
