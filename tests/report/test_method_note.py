"""The method note for an auditor: design and response, the weighting assumption, software, the agree-scale
shares; every value as recorded by the run (metrics, settings records, distributions)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import report_fixtures as rf
import yaml

from survey_pipeline.artifacts import OutputStore
from survey_pipeline.contracts import RULE_TEXT_NL
from survey_pipeline.core import R_SURVEY_VERSION
from survey_pipeline.errors import SpecError
from survey_pipeline.settings import RECORD
from survey_pipeline.spec import parse_spec
from survey_pipeline.stages.estimate.analyses import empty_tables
from survey_pipeline.stages.report import stage
from survey_pipeline.stages.report.agree_scale import AgreeShares, agree_notes, agree_shares
from survey_pipeline.stages.report.formatting import format_number, format_percent
from survey_pipeline.stages.report.html import render_html
from survey_pipeline.stages.report.markdown import escape, render_markdown
from survey_pipeline.stages.report.method_note import NOTED_PACKAGES, build_method_note, response_rate
from survey_pipeline.stages.report.tables import label_with_base

SPEC_FILE = rf.ROOT / "questionnaires" / "wij_monitor.yaml"
VERSIONS = {"python": "3.11.7", "packages": {name: f"1.{i}.0" for i, name in enumerate(NOTED_PACKAGES)}}


def _raw_spec() -> dict:
    return yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


def _section(text: str, heading: str) -> str:
    """The markdown of one section, from its heading to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    body = text.split(heading + "\n", 1)[1]
    stops = [i for i in (body.find("\n## "), body.find("\n" + level + " ")) if i >= 0]
    return body[: min(stops)] if stops else body


def test_design_states_fieldwork_invited_response_and_rate_from_the_same_counts(spec, params, published):
    facts = rf.run_facts(spec, params, published)
    text = render_markdown(build_method_note(spec, facts))
    design = _section(text, "## Opzet van het onderzoek")
    assert escape(spec.method.recruitment) in design and escape(spec.method.population) in design
    for wave in spec.waves:
        fielded, counts = spec.method.waves[wave], facts.validate_metrics["waves"][str(wave)]
        row = next(line for line in design.splitlines() if line.startswith(f"| {wave} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells == [
            str(wave),
            escape(fielded.fieldwork),
            format_number(fielded.invited, 0),
            format_number(counts["rows_in"], 0),
            format_percent(counts["rows_in"] / fielded.invited, 1),
            format_number(counts["rows_valid"], 0),
        ]
    assert response_rate(200, 50) == 0.25


def test_a_changed_invited_count_shows_and_fewer_invited_than_respondents_is_refused(spec, params, published):
    raw = _raw_spec()
    raw["survey"]["method"]["waves"][2020]["invited"] = 4000
    changed = parse_spec(raw)
    text = render_markdown(build_method_note(changed, rf.run_facts(changed, params, published)))
    rows_in = rf.validate_metrics(tuple(spec.waves))["waves"]["2020"]["rows_in"]
    assert f"| 2020 | {escape(changed.method.waves[2020].fieldwork)} | 4.000 | " in text
    assert format_percent(rows_in / 4000, 1) in text

    raw["survey"]["method"]["waves"][2020]["invited"] = rows_in - 1
    short = parse_spec(raw, source="wij_monitor.yaml")
    with pytest.raises(SpecError) as caught:
        build_method_note(short, rf.run_facts(short, params, published))
    assert caught.value.key == "survey.method.waves.2020.invited"
    assert "wij_monitor.yaml" in str(caught.value)


def test_without_a_declared_method_the_note_says_so(params, published):
    raw = _raw_spec()
    del raw["survey"]["method"]
    bare = parse_spec(raw)
    text = render_markdown(build_method_note(bare, rf.run_facts(bare, params, published)))
    assert "responspercentage is daarom niet te geven" in _section(text, "## Opzet van het onderzoek")


def test_the_weighting_assumption_names_the_recorded_weighting_variables(spec, params, published):
    text = render_markdown(build_method_note(spec, rf.run_facts(spec, params, published)))
    limits = _section(text, "### Aanname van de weging en wat weging niet oplost")
    assert "naar leeftijdsgroep, geslacht en wijk" in limits
    assert "missing at random" in limits and "Panelconditionering" in limits
    assert "belangstelling heeft voor het onderwerp" in limits

    recorded = params.weight.model_copy(update={"margins": ("age_group", "sex")})
    changed = render_markdown(build_method_note(spec, rf.run_facts(spec, params, published, weight=recorded)))
    limits = _section(changed, "### Aanname van de weging en wat weging niet oplost")
    assert "naar leeftijdsgroep en geslacht" in limits and "wijk" not in limits


def test_software_is_named_as_recorded_and_the_r_reference_version_is_the_committed_one(spec, params, published):
    same = {stage_name: VERSIONS for stage_name in ("ingest", "validate", "weight", "estimate")}
    text = render_markdown(build_method_note(spec, rf.run_facts(spec, params, published, software=same)))
    software = _section(text, "## Software en controle van de berekeningen")
    listed = "Python 3.11.7, " + ", ".join(f"{escape(n)} {v}" for n, v in VERSIONS["packages"].items())
    assert listed in software
    assert f"R-pakket survey, versie {R_SURVEY_VERSION}" in software

    other = {**VERSIONS, "packages": {**VERSIONS["packages"], "numpy": "9.9.9"}}
    mixed = render_markdown(
        build_method_note(spec, rf.run_facts(spec, params, published, software={**same, "estimate": other}))
    )
    rows = [line for line in _section(mixed, "## Software en controle van de berekeningen").splitlines() if "|" in line]
    assert any(line.startswith("| schatting |") and "numpy 9.9.9" in line for line in rows)
    assert any(line.startswith("| weging |") and "numpy 1.1.0" in line for line in rows)


def test_the_r_version_the_note_states_is_the_one_the_reference_values_were_made_with():
    recorded = set()
    for path in (rf.ROOT / "tests" / "reference").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        meta = data.get("meta", data) if isinstance(data, dict) else {}
        if "survey_version" in meta:
            recorded.add(meta["survey_version"])
    assert recorded == {R_SURVEY_VERSION.replace("-", ".")}


def test_links_between_the_annual_report_and_the_method_note(report_run):
    report = report_run.report
    assert 'href="jaarverslag.html"' in (report / "onderzoeksverantwoording.html").read_text(encoding="utf-8")
    assert 'href="onderzoeksverantwoording.html"' in (report / "jaarverslag.html").read_text(encoding="utf-8")
    assert "](jaarverslag.md)" in (report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "](onderzoeksverantwoording.md)" in (report / "jaarverslag.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# Agree-scale shares


def _distribution(spec, variable: str, wave: int, shares: dict[int, float], suppressed=()) -> pd.DataFrame:
    var = spec.variables[variable]
    types = {var.missing.dont_know.code: "dont_know", var.missing.no_answer.code: "no_answer"}
    return pd.DataFrame(
        {
            "variable": variable,
            "wave": wave,
            "breakdown": "total",
            "code": [float(c) for c in shares],
            "code_type": [types.get(c, "answer") for c in shares],
            "estimate": [float("nan") if c in suppressed else p for c, p in shares.items()],
            "suppressed": [c in suppressed for c in shares],
            "suppression_reason": ["min_n_eff" if c in suppressed else "" for c in shares],
        }
    )


# Shares among those asked (answers, "weet niet" 99, "geen antwoord" 98): they sum to 1.
WALK_IN = {1: 0.20, 2: 0.40, 3: 0.15, 4: 0.08, 5: 0.04, 99: 0.08, 98: 0.05}


def test_agree_shares_split_the_indicator_base(spec):
    indicator = spec.indicator("walk_in_easy")  # dont_know: count_as_no, so "weet niet" is in the base
    found = agree_shares(_distribution(spec, "walk_in", 2021, WALK_IN), spec, indicator, 2021)
    assert isinstance(found, AgreeShares)
    base = 1 - WALK_IN[98]  # "geen antwoord" is outside every indicator base
    assert found.agree == pytest.approx((0.20 + 0.40) / base)
    assert found.disagree == pytest.approx((0.08 + 0.04) / base)
    assert found.neutral == pytest.approx((0.15 + 0.08) / base)
    assert found.agree + found.disagree + found.neutral == pytest.approx(1.0)
    assert (found.disagree_label, found.neutral_labels) == ("(helemaal) niet mee eens", ("neutraal", "weet niet"))


def test_weet_niet_leaves_the_shares_when_it_leaves_the_indicator_base():
    raw = _raw_spec()
    next(i for i in raw["indicators"] if i["id"] == "walk_in_easy")["dont_know"] = "exclude"
    spec = parse_spec(raw)
    found = agree_shares(_distribution(spec, "walk_in", 2021, WALK_IN), spec, spec.indicator("walk_in_easy"), 2021)
    base = 1 - WALK_IN[98] - WALK_IN[99]
    assert found.neutral == pytest.approx(0.15 / base) and found.neutral_labels == ("neutraal",)
    assert found.agree + found.disagree + found.neutral == pytest.approx(1.0)


def test_which_answers_disagree_comes_from_the_spec():
    raw = _raw_spec()
    raw["scales"]["agree5"]["disagree"] = {"label": "helemaal niet mee eens", "codes": [5]}
    raw["scales"]["agree5"]["neutral"] = {"label": "neutraal of niet mee eens", "codes": [3, 4]}
    spec = parse_spec(raw)
    found = agree_shares(_distribution(spec, "walk_in", 2021, WALK_IN), spec, spec.indicator("walk_in_easy"), 2021)
    assert found.disagree == pytest.approx(0.04 / (1 - WALK_IN[98]))
    assert found.disagree_label == "helemaal niet mee eens"


def test_a_suppressed_share_gives_no_split_but_its_reason(spec):
    frame = _distribution(spec, "walk_in", 2021, WALK_IN, suppressed=(5,))
    found = agree_shares(frame, spec, spec.indicator("walk_in_easy"), 2021)
    assert found == "niet alle aandelen zijn gepubliceerd (effectieve steekproefomvang te klein)"


def test_agree_notes_quote_the_published_percentage_for_the_latest_shown_wave(spec, published):
    measured = {i.id: tuple(spec.variables[i.variable].waves) for i in spec.indicators}
    notes = agree_notes(published["indicators"], published["distributions"], spec, [2019, 2020], measured, 0)
    by_id = {note.indicator.id: note for note in notes}
    assert set(by_id) == {"walk_in_easy", "wmo_quick", "wmo_taken_seriously", "wmo_fits_need"}
    assert by_id["walk_in_easy"].wave == 2020 and by_id["wmo_quick"].wave == 2019  # wmo not asked in 2020
    totals = published["indicators"][published["indicators"]["breakdown"] == "total"]
    for note in notes:
        if note.shares is None:
            assert "geen uitsplitsing" in note.text
            continue
        row = totals[(totals["indicator_id"] == note.indicator.id) & (totals["wave"] == note.wave)].iloc[0]
        assert f"({note.wave}: {format_percent(row['estimate'], 0)})" in note.text
        assert note.text.startswith(label_with_base(spec, note.indicator))  # the percentage's base is stated
        assert f"{format_percent(note.shares.disagree, 0)} antwoordde \u2018(helemaal) niet mee eens\u2019" in note.text
        assert note.shares.agree + note.shares.disagree + note.shares.neutral == pytest.approx(1.0)


def test_the_annual_table_and_the_method_note_carry_the_same_agree_sentences(report_run):
    report = report_run.report
    annual = (report / "jaarverslag.md").read_text(encoding="utf-8")
    note = (report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    sentences = [
        line.rstrip() for line in annual.splitlines() if "antwoordde \u2018(helemaal) niet mee eens\u2019" in line
    ]
    assert sentences
    section = _section(note, "## Indicatoren op een eens-schaal")
    for sentence in sentences:
        assert f"- {sentence}" in section
    assert 'id="eens-schaal"' in (report / "jaarverslag.html").read_text(encoding="utf-8")


def test_the_note_names_the_software_recorded_upstream_not_the_current_one(tmp_path, spec, params):
    outputs = tmp_path / "outputs"
    rf.write_stage_outputs(outputs, spec, params)
    record_path = outputs / "estimate" / RECORD
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record["software"]["estimate"]["packages"]["statsmodels"] = "0.0.1-recorded"
    record_path.write_text(json.dumps(record), encoding="utf-8")
    store = OutputStore(outputs)
    stage.run(store, spec, params, rf.ROOT)
    store.commit()
    note = (outputs / "report" / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "statsmodels 0.0.1-recorded" in note
    written = json.loads((outputs / "report" / RECORD).read_text(encoding="utf-8"))
    assert written["software"]["estimate"]["packages"]["statsmodels"] == "0.0.1-recorded"
    assert set(written["software"]) >= {"estimate", "report"}


def test_html_renders_the_link_escaped(spec, params, published):
    html = render_html(build_method_note(spec, rf.run_facts(spec, params, published)))
    assert '<a href="jaarverslag.html">De tabellen en figuren voor het jaarverslag</a>' in html


@pytest.mark.parametrize("style", ["inline", "footnote"])
def test_the_note_describes_how_the_table_states_bases_as_the_layout_prints_them(spec, params, published, style):
    raw = _raw_spec()
    raw["report_layout"]["base_style"] = style
    styled = parse_spec(raw)
    bases = _section(
        render_markdown(build_method_note(styled, rf.run_facts(styled, params, published))),
        "## De basis van elke indicator",
    )
    assert ("tussen haakjes" in bases) == (style == "inline")
    assert ("De voetnoten bij de tabel" in bases) == (style == "footnote")


@pytest.mark.parametrize(("formats", "named"), [(("svg",), "als SVG"), (("svg", "png"), "als SVG en PNG")])
def test_the_file_list_names_the_figure_formats_the_run_drew_and_the_word_file(spec, params, published, formats, named):
    report = params.report.model_copy(update={"figure_formats": formats})
    files = _section(
        render_markdown(build_method_note(spec, rf.run_facts(spec, params, published, report=report))),
        "## Bestanden bij dit rapport",
    )
    assert f"figures/: de figuren {named}." in files
    assert "PNG" not in files or "png" in formats
    assert "jaarverslag.docx" in files


def test_quarantine_reasons_are_named_in_dutch_not_by_rule_code(spec, params, published):
    text = render_markdown(build_method_note(spec, rf.run_facts(spec, params, published)))
    quality = _section(text, "## Respons en datakwaliteit")
    assert f"{escape(RULE_TEXT_NL['allowed_codes'])} (heard)" in quality
    assert "allowed\\_codes" not in quality and "controle:variabele" not in quality


def test_the_file_list_names_the_analyses_and_the_settings_record(spec, params, published):
    without = _section(
        render_markdown(build_method_note(spec, rf.run_facts(spec, params, published))), "## Bestanden bij dit rapport"
    )
    assert "analyses/" not in without and "settings.json" in without
    facts = rf.run_facts(spec, params, published, analyses=empty_tables())
    listed = _section(render_markdown(build_method_note(spec, facts)), "## Bestanden bij dit rapport")
    assert "analyses/" in listed
