"""Report parameters, target parsing for figures, and the method note built from a run's facts."""

from __future__ import annotations

import copy

import pytest
import report_fixtures as rf
import yaml

from survey_pipeline.contracts import RULE_TEXT_NL
from survey_pipeline.errors import ParamsError
from survey_pipeline.settings import ReportSettings, parse_section
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.report import figures, method_note, tables
from survey_pipeline.stages.report.markdown import escape, render_markdown
from survey_pipeline.stages.report.method_note import build_method_note


def test_report_params_parse_and_reject():
    window = {"year": 2022, "achieved_count": 2, "target_count": 2}
    parsed = parse_section(ReportSettings, {**window, "decimals": 1}, "report")
    assert parsed == ReportSettings(year=2022, achieved_count=2, target_count=2, decimals=1, figure_formats=("svg",))
    # the 2022 budget: Behaald 2020, 2021; Beoogd 2022, 2023
    assert (parsed.achieved_waves, parsed.target_years) == ((2020, 2021), (2022, 2023))
    asked = parse_section(ReportSettings, {**window, "figure_formats": ["png", "svg"]}, "report")
    assert asked.figure_formats == ("png", "svg")
    for section, key in (
        ({**window, "achieved_count": 0}, "report.achieved_count"),
        ({**window, "target_count": -1}, "report.target_count"),
        ({**window, "year": "2022"}, "report.year"),
        ({**window, "exclude_waves": {2019: ""}}, "report.exclude_waves"),
        ({**window, "decimals": 5}, "report.decimals"),
        ({**window, "figure_formats": ["pdf"]}, "report.figure_formats"),
        ({**window, "achieved_waves": [2021]}, "report.achieved_waves"),
        ({**window, "colour": "red"}, "report.colour"),
    ):
        with pytest.raises(ParamsError) as info:
            parse_section(ReportSettings, section, "report")
        assert info.value.key == key


@pytest.mark.parametrize(
    ("target", "value"),
    [
        (">80%", 0.8),
        ("<15%", 0.15),
        ("20%", 0.2),
        ("afname <20%", 0.2),
        (">45,5%", 0.455),
        (">=85%", 0.85),
        ("≤17,5%", 0.175),
        ("toename", None),
        ("kengetal", None),
        ("stabiel", None),
    ],
)
def test_numeric_targets_for_figures(target, value):
    assert figures.numeric_target(target) == (pytest.approx(value) if value is not None else None)


def test_method_note_states_each_base_and_the_routing(spec, params, published):
    text = render_markdown(build_method_note(spec, rf.run_facts(spec, params, published)))
    assert "## De basis van elke indicator" in text
    routed = [line for line in text.splitlines() if line.startswith("- ") and "wie de vraag door de routing" in line]
    # familiar, contact_of_residents and helped_of_residents: over all residents, asked of a subgroup
    assert len(routed) == 3
    assert any(spec.groups["had_contact"].label in line for line in routed)
    assert all("wie een filtervraag niet beantwoordde, valt buiten de basis" in line for line in routed)
    assert all("filtervraag met \u2018weet niet\u2019 beantwoordde" in line for line in routed)
    assert "minder dan 30 respondenten" in text and "Korn-Graubard" in text
    assert "altijd beoordeeld op het 95%-Korn-Graubard-interval" in text  # the interval the rule judges
    assert "ook als de tabellen een ander interval of betrouwbaarheidsniveau tonen" in text
    assert "wijk 7" in text  # missing background per variable (weight metrics)
    assert f"{escape(RULE_TEXT_NL['allowed_codes'])} (heard)" in text  # quarantine reasons (validate metrics)
    assert escape(tables.target_rule_text(0.95)) in text  # the same target rule as the report's caption
    assert "verschuift dan 10\u207b\u00b9\u2070 maal" in text  # tol 1e-10 in Dutch notation, not "1e-10"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-10, "10\u207b\u00b9\u2070"),
        (2.5e-8, "2,5 \u00d7 10\u207b\u2078"),
        (0.01, "0,01"),
        (0.5, "0,5"),
        (0.0, "0"),
    ],
)
def test_tolerances_are_written_in_dutch_notation(value, text):
    assert method_note._scientific(value) == text


def test_method_note_follows_a_changed_base(spec, params):
    raw = yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    changed = copy.deepcopy(raw)
    changed["groups"]["caregivers"]["label"] = "de bewoners die nu mantelzorg verlenen"
    new_spec = parse_spec(changed)
    indicators = rf.indicator_frame(new_spec, params)
    frames = {
        "indicators": indicators,
        "changes": rf.change_frame(new_spec, indicators),
        "distributions": rf.distribution_frame(new_spec, params),
    }
    text = render_markdown(build_method_note(new_spec, rf.run_facts(new_spec, params, frames)))
    row = next(line for line in text.splitlines() if line.startswith("| % Mantelzorgers"))
    assert "van de bewoners die nu mantelzorg verlenen" in row
    assert "mantelzorg geven" not in text.split("## De basis van elke indicator")[1].split("De groepen")[0]


def test_chain_follows_the_spec(spec):
    raw = yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    changed = copy.deepcopy(raw)
    del changed["report_layout"]  # lists every indicator; the default table follows the indicators
    changed["indicators"] = [i for i in changed["indicators"] if i["id"] not in ("contact_of_heard", "walk_in_easy")]
    # without an indicator on the heard_of_wij base the chain starts at contact (of all residents)
    steps = tables.chain_steps(parse_spec(changed))
    assert [s.conditional.id for s in steps] == ["contact_of_residents", "helped_of_contact"]
    changed["indicators"] = [i for i in changed["indicators"] if i["id"] != "helped_of_contact"]
    assert tables.chain_steps(parse_spec(changed)) == ()


def test_figure_descriptions_state_a_restricted_base(spec, published):
    """contact_of_residents and contact_of_heard share a label: the figure texts must tell them apart."""
    indicators = published["indicators"]
    waves = [2019, 2020, 2021]
    everyone, heard = spec.indicator("contact_of_residents"), spec.indicator("contact_of_heard")
    assert everyone.label == heard.label
    for plan_of in (
        lambda ind: figures.trend_plan(indicators, spec, ind, waves, [2022, 2023]),
        lambda ind: figures.area_plan(indicators, spec, ind, 2021),
    ):
        for_everyone, for_heard = plan_of(everyone), plan_of(heard)
        assert for_heard.description.endswith(spec.inline_base_text(heard.base))
        assert spec.inline_base_text(heard.base) in for_heard.title
        assert for_everyone.description != for_heard.description and for_everyone.title != for_heard.title
