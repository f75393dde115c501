"""The questionnaire spec loader: the real spec loads; malformed specs are rejected by key."""

from __future__ import annotations

import copy
import typing
from pathlib import Path

import pandas as pd
import pytest
import yaml

from survey_pipeline.core.multiplicity import ADJUSTMENTS
from survey_pipeline.errors import InputError, SpecError
from survey_pipeline.spec import Adjustment, load_spec, parse_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "questionnaires" / "wij_monitor.yaml"


@pytest.fixture(scope="module")
def raw_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_real_spec_loads_into_immutable_objects():
    spec = load_spec(SPEC_PATH)
    assert spec.respondent_id == "resp_id"
    assert spec.waves == (2019, 2020, 2021)
    assert spec.variables["contact"].asked_of == "heard_of_wij"
    assert spec.variables["helped"].asked_of == "had_contact"
    assert spec.variables["caregiver_burden"].waves == (2019, 2020)
    assert spec.indicator("helped_of_contact").base == "had_contact"
    assert spec.parent_group("had_contact") == "heard_of_wij"
    assert spec.base_text("heard_of_wij") == "van de bewoners die (wel eens) gehoord hebben van WIJ Groningen"
    with pytest.raises(TypeError):
        spec.variables["heard"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        spec.waves = (2019,)  # type: ignore[misc]


def test_waves_not_measured_and_their_reasons(raw_spec):
    spec = load_spec(SPEC_PATH)
    assert spec.not_measured == {} and spec.declared_waves == (2019, 2020, 2021)
    assert spec.variables["wmo_quick"].not_measured == {2020: "i.v.m. COVID"}  # as the annual report prints it
    assert spec.not_measured_reason(2020, "wmo_quick") == "i.v.m. COVID"
    assert spec.not_measured_reason(2021, "caregiver_burden") is None  # left out, no reason declared
    assert spec.not_measured_reason(2020) is None

    raw = copy.deepcopy(raw_spec)
    raw["survey"]["not_measured"] = {2022: "geen meting", 2018: "nog geen panel"}
    skipped = parse_spec(raw)
    assert list(skipped.not_measured.items()) == [(2018, "nog geen panel"), (2022, "geen meting")]
    assert skipped.declared_waves == (2018, 2019, 2020, 2021, 2022)
    assert skipped.not_measured_reason(2022) == skipped.not_measured_reason(2022, "heard") == "geen meting"
    assert skipped.variables["heard"].waves == (2019, 2020, 2021)  # only measured waves by default
    with pytest.raises(TypeError):
        skipped.not_measured[2023] = "x"  # type: ignore[index]


def test_survey_names_come_from_the_spec():
    spec = load_spec(SPEC_PATH)
    assert (spec.respondent_id, spec.wave_variable, spec.area_variable) == ("resp_id", "wave", "wijk")
    assert spec.population_label == "bewoners (18 jaar e.o.)"
    assert spec.breakdown_text("age_group") == "per leeftijdsgroep" and spec.breakdown_text("wijk") == "per wijk"
    assert spec.indicator("heard").targets == {2020: "toename", 2021: ">80%", 2022: ">80%", 2023: ">80%"}
    with pytest.raises(TypeError):
        spec.indicator("heard").targets[2030] = ">90%"  # type: ignore[index]


def test_every_seed_indicator_is_declared():
    ids = {indicator.id for indicator in load_spec(SPEC_PATH).indicators}
    assert {
        "heard",
        "familiar",
        "knows_where",
        "walk_in_easy",
        "contact_of_heard",
        "contact_of_residents",
        "helped_of_contact",
        "helped_of_residents",
        "caregiver_burdened",
    } <= ids


def test_group_masks_follow_the_data():
    spec = load_spec(SPEC_PATH)
    frame = pd.DataFrame({"heard": [1.0, 2.0, 99.0, float("nan")], "contact": [1.0, -1.0, -1.0, -1.0]})
    assert spec.groups["heard_of_wij"].mask(frame).tolist() == [True, False, False, False]
    assert spec.asked_mask("helped", frame).tolist() == [True, False, False, False]
    assert spec.groups["residents"].mask(frame).all()


def _set(path: str, value):
    """A mutation that sets `path` (dot-separated; ints index lists) to `value`."""

    def mutate(raw: dict) -> None:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str):
    def mutate(raw: dict) -> None:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _both(*mutations):
    def mutate(raw: dict) -> None:
        for mutation in mutations:
            mutation(raw)

    return mutate


def _wave_method(wave: int, entry: dict | None):
    """Set (or, with None, remove) the `survey.method.waves` entry of a wave (its key is a whole number)."""

    def mutate(raw: dict) -> None:
        waves = raw["survey"]["method"]["waves"]
        if entry is None:
            del waves[wave]
        else:
            waves[wave] = entry

    return mutate


SKIP_2018 = _set("survey.not_measured", {2018: "nog geen panel"})

REJECTIONS = [
    (_delete("survey"), "survey", "required key is missing"),
    (_set("spec_version", 2), "spec_version", "unsupported version"),
    (_set("extra_section", {}), "extra_section", "unknown key"),
    (_set("survey.waves", []), "survey.waves", "non-empty list"),
    (_set("survey.waves", [2019, 2019]), "survey.waves", "duplicate"),
    (_set("missing_codes.no_answer.code", 99), "missing_codes", "must differ"),
    (_set("missing_codes.dont_know.code", "99"), "missing_codes.dont_know.code", "whole number"),
    (_delete("groups.residents"), "groups", "must declare the group 'residents'"),
    (
        _set("groups.heard_of_wij.when", {"nonexistent": [1]}),
        "groups.heard_of_wij.when.nonexistent",
        "unknown variable",
    ),
    (_set("groups.heard_of_wij.when", {"heard": [7]}), "groups.heard_of_wij.when.heard", "not answer codes"),
    (_set("groups.heard_of_wij.when", "heard == 1"), "groups.heard_of_wij.when", "expected a mapping"),
    (_set("variables.heard.asked_of", "nobody"), "variables.heard.asked_of", "unknown group"),
    (_set("variables.heard.codes", {1: "ja", 99: "nee"}), "variables.heard.codes", "also missing-value codes"),
    (_set("variables.heard.codes", {}), "variables.heard.codes", "must not be empty"),
    (_set("variables.heard.codes", {1.5: "ja"}), "variables.heard.codes.1.5", "whole number"),
    (_set("variables.heard.label", ""), "variables.heard.label", "non-empty text"),
    (_set("variables.heard.waves", [2018]), "variables.heard.waves", "not in survey.waves"),
    (_set("variables.heard.colour", "red"), "variables.heard.colour", "unknown key"),
    (_set("variables.helped.waves", [2019]), None, None),  # narrower than its filter: fine
    (_set("variables.contact.waves", [2019]), "variables.helped.waves", "filter question 'contact' is not asked"),
    (_set("variables.heard.asked_of", "had_contact"), "groups.", "routing cycle"),
    (SKIP_2018, None, None),
    (_set("survey.not_measured", {2020: "i.v.m. COVID"}), "survey.not_measured.2020", "also in survey.waves"),
    (_set("survey.not_measured", {2018: ""}), "survey.not_measured.2018", "non-empty text"),
    (_set("survey.not_measured", {"2018": "x"}), "survey.not_measured.2018", "whole number"),
    (_set("survey.not_measured", [2018]), "survey.not_measured", "expected a mapping"),
    (
        _both(SKIP_2018, _set("variables.heard.waves", [2018, 2019])),
        "variables.heard.waves",
        "[2018] are declared not measured in survey.not_measured",
    ),
    (_set("variables.heard.not_measured", {2018: "x"}), "variables.heard.not_measured.2018", "not in survey.waves"),
    (
        _set("variables.heard.not_measured", {2020: "x"}),
        "variables.heard.not_measured.2020",
        "also in variables.heard.waves",
    ),
    (
        _both(SKIP_2018, _set("variables.heard.not_measured", {2018: "x"})),
        "variables.heard.not_measured.2018",
        "already declared not measured in survey.not_measured",
    ),
    (_set("variables.heard.not_measured", {2020: None}), "variables.heard.not_measured.2020", "non-empty text"),
    (_set("indicators.0.variable", "nonexistent"), "indicators.heard.variable", "unknown variable"),
    (_set("indicators.0.success", [3]), "indicators.heard.success", "not answer codes"),
    (_set("indicators.0.base", "everyone"), "indicators.heard.base", "unknown group"),
    (_set("indicators.0.kind", "kpi"), "indicators.heard.kind", "must be one of"),
    (_set("indicators.0.dont_know", "drop"), "indicators.heard.dont_know", "must be one of"),
    (_set("indicators.0.targets", {"2020": ">80%"}), "indicators.heard.targets.2020", "whole number"),
    (_set("indicators.1.id", "heard"), "indicators", "duplicate indicator id"),
    (_delete("indicators.0.label"), "indicators.heard.label", "required key is missing"),
    (_set("survey.area_variable", "buurt"), "survey.area_variable", "unknown background variable 'buurt'"),
    (_set("survey.wave_variable", "resp_id"), "survey.wave_variable", "must differ from survey.respondent_id"),
    (_set("survey.respondent_id", "heard"), "variables.heard", "already used by a background or id variable"),
    (_set("survey.wave_variable", "wijk"), "background.wijk", "already used by the wave variable"),
    (_set("groups.residents.when", {"heard": [1]}), "groups.residents.when", "takes no condition"),
    (_delete("groups.heard_of_wij.when"), "groups.heard_of_wij.when", "required key is missing"),
    (_set("groups.heard_of_wij.when", {"heard": [1, 1]}), "groups.heard_of_wij.when.heard", "duplicate values"),
    (_set("indicators.0.colour", "red"), "indicators.heard.colour", "unknown key (allowed: id, kind, variable"),
    (_set("indicators.0", "heard"), "indicators.0", "expected a mapping"),
    (_set("survey.waves", "2019"), "survey.waves", "expected a non-empty list"),
    (_set("indicators.0.targets", None), None, None),  # no targets yet
    (_set("indicators.0.targets", {2020: "meer dan 80%"}), "indicators.heard.targets.2020", "meer dan 80%"),
    # survey.method: one fieldwork entry per measured wave, invited a positive whole number
    (_delete("survey.method"), None, None),  # optional
    (_wave_method(2021, None), "survey.method.waves", "[2021] have no fieldwork entry"),
    (_wave_method(2018, {"fieldwork": "x", "invited": 10}), "survey.method.waves.2018", "not in survey.waves"),
    (_wave_method(2019, {"fieldwork": "x", "invited": 0}), "survey.method.waves.2019.invited", "greater than or equal"),
    (_wave_method(2019, {"fieldwork": "x", "invited": "5.840"}), "survey.method.waves.2019.invited", "whole number"),
    (_delete("survey.method.recruitment"), "survey.method.recruitment", "required key is missing"),
    # scales: a variable gives codes or a known scale; an agree scale's groups split the indicator's codes
    (_set("variables.walk_in.scale", "agree7"), "variables.walk_in.scale", "unknown scale 'agree7'"),
    (_set("variables.walk_in.codes", {1: "ja"}), "variables.walk_in", "one of codes, scale or numeric"),
    (_delete("variables.heard.codes"), "variables.heard", "one of codes, scale or numeric"),
    (_set("scales.agree5.disagree.codes", [4, 5, 6]), "scales.agree5.disagree.codes", "[6] are not codes"),
    (_set("scales.agree5.neutral.codes", [3, 4]), "scales.agree5.neutral.codes", "[4] are both disagree and neutral"),
    (_delete("scales.agree5.neutral"), "scales.agree5", "both disagree and neutral, or neither"),
    (_set("indicators.3.success", [1]), "indicators.walk_in_easy.success", "must split its codes [1, 2, 3, 4, 5]"),
    (_set("indicators.3.success", [1, 2, 3]), "indicators.walk_in_easy.success", "without overlap"),
    # numeric answers (the report mark 1-10)
    (_set("variables.report_mark.codes", {1: "x"}), "variables.report_mark", "one of codes, scale or numeric"),
    (_delete("variables.heard.codes"), "variables.heard", "one of codes, scale or numeric"),
    (_set("variables.report_mark.numeric.min", 10), "variables.report_mark.numeric", "must be below max (10)"),
    (_set("variables.report_mark.numeric.max", 500), "variables.report_mark.numeric", "at most 101 values"),
    (_set("variables.report_mark.numeric.max", 99), "variables.report_mark.numeric", "also missing-value codes"),
    (_set("variables.report_mark.numeric.labels", {11: "x"}), "variables.report_mark.numeric.labels", "outside 1..10"),
    (_set("variables.report_mark.numeric.step", 0.5), "variables.report_mark.numeric.step", "unknown key"),
    (_both(_set("indicators.0.variable", "report_mark"), _set("indicators.0.success", [8, 9, 10])), None, None),
    (_set("indicators.0.success", [11]), "indicators.heard.success", "not answer codes"),
    # analyses
    (_set("analyses.0.kind", "median"), "analyses.report_mark.kind", "must be one of"),
    (_set("analyses.0.variable", "nonexistent"), "analyses.report_mark.variable", "unknown question"),
    (_set("analyses.0.variable", "wijk"), "analyses.report_mark.variable", "unknown question 'wijk'"),
    (_set("analyses.0.base", "everyone"), "analyses.report_mark.base", "unknown group"),
    (_set("analyses.0.breakdowns", ["buurt"]), "analyses.report_mark.breakdowns", "unknown background variable"),
    (_set("analyses.0.against", "sex"), "analyses.report_mark.against", "not used by an analysis of kind mean"),
    (_set("analyses.0.adjust", "holm"), "analyses.report_mark.adjust", "not used by an analysis of kind mean"),
    (_set("analyses.0.title", ""), "analyses.report_mark.title", "non-empty text"),
    (_set("analyses.1.id", "report_mark"), "analyses", "duplicate analysis id(s) ['report_mark']"),
    (_delete("analyses.2.against"), "analyses.heard_by_age.against", "required for an analysis of kind crosstab"),
    (_set("analyses.2.against", "heard"), "analyses.heard_by_age.against", "the analysed variable itself"),
    (_set("analyses.2.against", "buurt"), "analyses.heard_by_age.against", "unknown question or background"),
    (_set("analyses.2.against", "contact"), None, None),  # a question may be the column variable
    (_set("analyses.3.success", [3]), "analyses.not_heard.success", "not answer codes"),
    (_set("analyses.3.success", [1, 2]), "analyses.not_heard.success", "the outcome would not vary"),
    (_set("analyses.3.predictors", ["sex", "sex"]), "analyses.not_heard.predictors", "duplicate predictors"),
    (_set("analyses.3.predictors", ["gemeente"]), "analyses.not_heard.predictors", "unknown question or background"),
    (_delete("analyses.3.predictors"), "analyses.not_heard.predictors", "required for an analysis of kind logit"),
    (_delete("analyses.3.success"), "analyses.not_heard.success", "required for an analysis of kind logit"),
    (_set("analyses.4.adjust", "bonferroni"), "analyses.heard_by_wijk.adjust", "must be one of"),
    (_delete("survey.area_variable"), "analyses.heard_by_wijk.kind", "needs survey.area_variable"),
    (_set("analyses.5.variable", "caregiver"), "analyses.heard_trend.variable", "at least 3 waves"),
    (_set("analyses", []), None, None),
]


def test_scales_and_method_reach_the_resolved_spec():
    spec = load_spec(SPEC_PATH)
    agree = spec.agree_scale("wmo_quick")
    assert agree is not None and agree.disagree is not None and agree.neutral is not None
    assert (agree.disagree.codes, agree.neutral.codes) == ((4, 5), (3,))
    assert spec.variables["wmo_quick"].codes == agree.codes  # the scale's codes are the question's
    assert spec.agree_scale("heard") is None  # yes/no: no agree scale
    assert spec.method is not None and set(spec.method.waves) == set(spec.waves)


def test_numeric_answers_and_analyses_resolve():
    spec = load_spec(SPEC_PATH)
    mark = spec.variables["report_mark"]
    assert mark.numeric_range == (1, 10)
    assert list(mark.codes) == list(range(1, 11)) and mark.codes[1] == "zeer slecht" and mark.codes[7] == "7"
    assert mark.answer_codes == (*range(1, 11), 99, 98)  # validation allows these (and -1 when routed past)
    assert spec.variables["heard"].numeric_range is None
    kinds = {a.id: a.kind for a in spec.analyses}
    assert set(kinds.values()) == {"mean", "crosstab", "logit", "wijk_vs_rest", "trend"}
    assert spec.analyses[4].adjustment == "holm" and spec.analyses[5].base == "residents"


def test_adjustments_are_those_of_the_core():
    assert set(typing.get_args(Adjustment)) == set(ADJUSTMENTS)


@pytest.mark.parametrize(("mutate", "key", "problem"), REJECTIONS)
def test_malformed_spec_is_rejected_naming_key_and_problem(raw_spec, mutate, key, problem):
    raw = copy.deepcopy(raw_spec)
    mutate(raw)
    if key is None:
        parse_spec(raw)
        return
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert caught.value.key.startswith(key), caught.value.key
    assert problem in str(caught.value)
    assert isinstance(caught.value, InputError)


def test_duplicate_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "spec.yaml"
    text = SPEC_PATH.read_text(encoding="utf-8").replace("  heard:\n", "  heard:\n    label: x\n    label: y\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "duplicate key" in str(caught.value)
    assert caught.value.key == "variables.heard.label"
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"survey: [unclosed", "not valid YAML"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"- a list\n", "expected a mapping"),
    ],
)
def test_unreadable_spec_file_gives_one_line_error(tmp_path, content, problem):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "absent.yaml")
