"""Questionnaire spec: load `questionnaires/*.yaml` into typed, immutable objects.

The spec is the single source of truth for a survey: variables and their codes,
the missing-value codes, routing (which group each question is asked of), and the
indicators with their bases. Validation, denominators and footnotes are all
derived from it. Conditions are data (variable -> allowed codes), never code.

The YAML document is described by pydantic models (`SpecDocument` and its parts):
they check shapes, types and choices, and every cross-reference (groups, routing,
waves, indicators). Its JSON Schema (`schemas/questionnaire.schema.json`, written by
`python -m survey_pipeline.spec --json-schema`) lets editors complete and check the
YAML. The checked document is then resolved (names, inherited missing codes, default
waves) into the `QuestionnaireSpec` the stages use. Every error is one `SpecError`
naming the key path and the problem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from survey_pipeline.errors import SpecError
from survey_pipeline.strict_yaml import StrictYamlError, load_strict
from survey_pipeline.targets import TargetSyntaxError, parse_target

ALL_RESIDENTS = "residents"
IndicatorKind = Literal["prestatie", "kengetal"]
DontKnowRule = Literal["exclude", "count_as_no"]
FilterNoAnswerRule = Literal["exclude", "count_as_no"]
RegistrationUnit = Literal["count", "percentage"]
AnalysisKind = Literal["mean", "crosstab", "logit", "wijk_vs_rest", "trend"]
Adjustment = Literal["holm", "BH"]  # = survey_pipeline.core.multiplicity.ADJUSTMENTS (tested)
MAX_NUMERIC_VALUES = 101  # a numeric answer is a short scale of whole numbers (0-100 at most)
# How the annual-report table states a base other than all residents: a footnote marker (*, **) or
# inline after the label: "(van het deel dat gehoord heeft van WIJ Groningen)".
BaseStyle = Literal["footnote", "inline"]
SPEC_VERSION = 1
JSON_SCHEMA_PATH = Path(str(files("survey_pipeline.schemas"))) / "questionnaire.schema.json"
"""In the project's top-level `schemas/`, installed as package data (`survey_pipeline.schemas`)."""


def _problem(problem: str, key: str = "") -> PydanticCustomError:
    """A validation error whose message is `problem`; `key` extends the error's location."""
    return PydanticCustomError("spec", "{problem}", {"problem": problem, "key": key})


def _non_blank(text: str) -> str:
    if not text.strip():
        raise _problem(f"expected non-empty text, got {text!r}")
    return text


def _distinct(values: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(values)) != len(values):
        raise _problem(f"duplicate values in {list(values)}")
    return values


def _sorted_keys(mapping: Mapping[int, str]) -> dict[int, str]:
    return dict(sorted(mapping.items()))


def _parsed_targets(targets: Mapping[int, str]) -> Mapping[int, str]:
    """Targets by year, each checked by the rule that judges it (`survey_pipeline.targets`)."""
    for year, text in targets.items():
        try:
            parse_target(text)
        except TargetSyntaxError as exc:
            raise _problem(str(exc), str(year)) from None
    return MappingProxyType(_sorted_keys(targets))


# Building blocks. YAML mapping keys that are codes or waves are whole numbers;
# JSON (and so the editor) sees them as digit strings, hence `propertyNames`.
Text = Annotated[StrictStr, Field(min_length=1), AfterValidator(_non_blank)]
Name = Text  # a key other entries refer to: a group, variable or indicator name
Codes = Annotated[
    dict[StrictInt, Text],
    Field(min_length=1, json_schema_extra={"propertyNames": {"pattern": "^-?[0-9]+$"}}),
]
CodeList = Annotated[tuple[StrictInt, ...], Field(min_length=1), AfterValidator(_distinct)]
Reasons = Annotated[
    dict[StrictInt, Text],
    AfterValidator(_sorted_keys),
    Field(
        description="Wave -> the Dutch reason it was not measured, printed as '- (<reason>)', e.g. {2020: 'i.v.m. COVID'}.",
        json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}},
    ),
]


Targets = Annotated[
    Mapping[StrictInt, Text],
    BeforeValidator(lambda raw: {} if raw is None else raw),
    AfterValidator(_parsed_targets),
    Field(
        description="Year -> target: '>N%', '<N%', 'toename', 'afname', 'stabiel', 'kengetal' or a combination.",
        json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}},
    ),
]


class _Model(BaseModel):
    """Spec parts: unknown keys are errors, parsed objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MissingCode(_Model):
    """One special code, e.g. 99 "weet niet"."""

    code: StrictInt
    label: Text


class MissingCodes(_Model):
    """The special codes of a question: "weet niet", "geen antwoord", "niet gevraagd" (the routing code)."""

    dont_know: MissingCode
    no_answer: MissingCode
    not_asked: MissingCode = Field(description="The routing code: the respondent was routed past the question.")

    @model_validator(mode="after")
    def _codes_differ(self) -> MissingCodes:
        if len(set(self.codes)) != len(self.codes):
            raise _problem(f"the missing-value codes must differ, got {list(self.codes)}")
        return self

    @property
    def codes(self) -> tuple[int, int, int]:
        return (self.dont_know.code, self.no_answer.code, self.not_asked.code)

    @property
    def labels(self) -> dict[int, str]:
        return {m.code: m.label for m in (self.dont_know, self.no_answer, self.not_asked)}


Count = Annotated[StrictInt, Field(ge=1)]


class WaveMethod(_Model):
    """How one wave was fielded: the fieldwork period (Dutch, as printed) and how many panel members were invited."""

    fieldwork: Text = Field(description="The fieldwork period as printed, e.g. '2 t/m 23 november 2021'.")
    invited: Count = Field(description="Panel members invited to this wave (the denominator of the response rate).")


class SurveyMethod(_Model):
    """`survey.method:`: what the method note says about the panel (Dutch text) and each wave's fieldwork."""

    recruitment: Text = Field(description="How the panel members were recruited (Dutch, printed in the method note).")
    population: Text = Field(description="The target population and who could join the panel (Dutch).")
    waves: Annotated[
        dict[StrictInt, WaveMethod], Field(min_length=1, json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}})
    ] = Field(description="Per measured wave (each wave of survey.waves): fieldwork period and invited count.")


class SurveySection(_Model):
    """`survey:`: identity, the survey's own column names and its waves."""

    id: Name
    title: Text
    population_label: Text = Field(description="The target population as printed, e.g. 'bewoners (18 jaar e.o.)'.")
    respondent_id: Name = Field(description="Column of the respondent id in the raw files.")
    wave_variable: Name = Field(description="Column of the wave (year) in the raw files.")
    area_variable: Name | None = Field(
        None, description="Background variable whose areas the report compares in a figure per indicator (e.g. wijk)."
    )
    waves: CodeList = Field(description="The waves (years) measured; each needs exactly one raw file.")
    not_measured: Reasons = Field(default_factory=dict)
    method: SurveyMethod | None = Field(
        None, description="Recruitment, population and fieldwork per wave, for the method note (optional)."
    )

    @model_validator(mode="after")
    def _measured_or_not(self) -> SurveySection:
        if self.wave_variable == self.respondent_id:
            raise _problem(f"must differ from survey.respondent_id, both are '{self.wave_variable}'", "wave_variable")
        for wave in self.not_measured:
            if wave in self.waves:
                raise _problem(
                    f"wave {wave} is also in survey.waves; a wave is measured or not", f"not_measured.{wave}"
                )
        if self.method is not None:
            for wave in self.method.waves:
                if wave not in self.waves:
                    raise _problem(f"wave {wave} is not in survey.waves", f"method.waves.{wave}")
            missing = [w for w in self.waves if w not in self.method.waves]
            if missing:
                raise _problem(f"measured wave(s) {missing} have no fieldwork entry", "method.waves")
        return self


class GroupSpec(_Model):
    """A named subgroup of respondents; `when` (all entries hold) is absent only for 'residents'."""

    label: Text = Field(description="Dutch phrase used in base texts: 'van <label>'.")
    inline_label: Text | None = Field(
        None,
        description="Shorter Dutch phrase for a base printed inline after a row of the annual-report table: "
        "'(van <inline_label>)', e.g. 'het deel dat gehoord heeft van WIJ Groningen' (default: label).",
    )
    when: Annotated[dict[Name, CodeList], Field(min_length=1)] | None = Field(
        None, description="Condition {variable: [codes]}; every entry must hold."
    )


class BackgroundSpec(_Model):
    """A weighting/breakdown variable such as wijk, age group or sex."""

    label: Text
    codes: Codes


class AnswerGroup(_Model):
    """Answer codes the report sums up under one Dutch label, e.g. 4 and 5 as "(helemaal) niet mee eens"."""

    label: Text
    codes: CodeList


class ScaleSpec(_Model):
    """A reusable answer scale. On an agree scale, `disagree` and `neutral` name the answers whose shares the
    report states beside an indicator on it, so that a low "(helemaal) mee eens" share is not read as dissent."""

    codes: Codes
    disagree: AnswerGroup | None = Field(None, description="The disagreeing answers, e.g. [4, 5].")
    neutral: AnswerGroup | None = Field(None, description="The neutral answers, e.g. [3].")

    @model_validator(mode="after")
    def _groups_of_codes(self) -> ScaleSpec:
        if (self.disagree is None) != (self.neutral is None):
            raise _problem("give both disagree and neutral, or neither")
        if self.disagree is not None and self.neutral is not None:
            for key, group in (("disagree", self.disagree), ("neutral", self.neutral)):
                unknown = sorted(set(group.codes) - set(self.codes))
                if unknown:
                    raise _problem(f"code(s) {unknown} are not codes of this scale", f"{key}.codes")
            both = sorted(set(self.disagree.codes) & set(self.neutral.codes))
            if both:
                raise _problem(f"code(s) {both} are both disagree and neutral", "neutral.codes")
        return self


class NumericRange(_Model):
    """A numeric answer: every whole number from `min` to `max` (e.g. a report mark 1-10)."""

    min: StrictInt
    max: StrictInt
    labels: Annotated[
        dict[StrictInt, Text],
        Field(
            description="Labels of some values, e.g. {1: 'zeer slecht', 10: 'uitstekend'}; the others are "
            "labelled with their number.",
            json_schema_extra={"propertyNames": {"pattern": "^-?[0-9]+$"}},
        ),
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> NumericRange:
        if not self.min < self.max:
            raise _problem(f"min ({self.min}) must be below max ({self.max})")
        if self.max - self.min + 1 > MAX_NUMERIC_VALUES:
            raise _problem(f"at most {MAX_NUMERIC_VALUES} values, got {self.max - self.min + 1}")
        outside = sorted(v for v in self.labels if not self.min <= v <= self.max)
        if outside:
            raise _problem(f"value(s) {outside} are outside {self.min}..{self.max}", "labels")
        return self

    @property
    def codes(self) -> dict[int, str]:
        """Every allowed value with its label (its number when none is given)."""
        return {v: self.labels.get(v, str(v)) for v in range(self.min, self.max + 1)}


class VariableSpec(_Model):
    """A substantive question: its answer codes (`codes`), a scale of `scales:` (`scale`) or a numeric answer
    (`numeric`)."""

    label: Text
    codes: Codes | None = Field(None, description="The answer codes; or give `scale` or `numeric`.")
    scale: Name | None = Field(
        None, description="A scale of `scales:` whose codes are the answers; or give `codes` or `numeric`."
    )
    numeric: NumericRange | None = Field(
        None, description="A numeric answer (whole numbers min..max), e.g. a report mark 1-10; or give `codes`."
    )
    asked_of: Name = Field(description="The group the routing sends this question to.")
    waves: CodeList | None = Field(None, description="Waves the question is asked in (default: survey.waves).")
    not_measured: Reasons = Field(default_factory=dict)
    missing_codes: MissingCodes | None = Field(
        None, description="Overrides the spec's missing_codes for this question."
    )

    @model_validator(mode="after")
    def _one_answer_form(self) -> VariableSpec:
        if sum(form is not None for form in (self.codes, self.scale, self.numeric)) != 1:
            raise _problem("give one of codes, scale or numeric (a numeric answer)")
        return self


class Indicator(_Model):
    """A published percentage: numerator codes of one variable over a declared base."""

    id: Name
    kind: IndicatorKind = Field(description="prestatie (performance indicator) or kengetal (key figure).")
    variable: Name
    success: CodeList = Field(description="Numerator codes.")
    base: Name = Field(description="A group name: the denominator.")
    dont_know: DontKnowRule = Field(description="What 'weet niet' does: leave the denominator or count as 'no'.")
    filter_no_answer: FilterNoAnswerRule = Field(
        "exclude",
        description="A respondent in the base who was routed past the question because a filter question was "
        "answered 'geen antwoord' or left blank: leaves the denominator (exclude, the default: their answer is "
        "unknown) or counts as 'no' (count_as_no). Matters only where the base is wider than the group asked.",
    )
    label: Text
    short_label: Text | None = Field(
        None,
        description="The bullet text when the indicator is printed under a shared stem in the report layout "
        "(e.g. 'Te weten waar te moeten zijn met een hulpvraag' under '% Inwoners (18 jaar e.o.) dat aangeeft:').",
    )
    targets: Targets = Field(default_factory=lambda: MappingProxyType({}))


class Registration(_Model):
    """A registration figure (e.g. the number of requests at the WIJ entrance): not from the survey but
    from an organisation's records, read from the registrations file (params `estimate.registrations_file`)."""

    id: Name
    kind: IndicatorKind = Field(description="prestatie (performance indicator) or kengetal (key figure).")
    label: Text
    unit: RegistrationUnit = Field(
        description="count (a whole number, printed '30.994') or percentage (0-100, printed as the survey shares)."
    )
    source: Text = Field(description="Who registers the figure and how, in Dutch; the method note lists it.")
    short_label: Text | None = Field(
        None,
        description="The bullet text when the figure is printed under a shared stem in the report layout "
        "(e.g. 'Huishoudelijke Hulp' under 'Aantal unieke personen ... binnen de Wmo:').",
    )
    targets: Targets = Field(default_factory=lambda: MappingProxyType({}))


# Per analysis kind: the keys it needs besides id, kind, title, variable and base, and those it may have.
ANALYSIS_KEYS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        "mean": (frozenset(), frozenset({"breakdowns"})),
        "crosstab": (frozenset({"against"}), frozenset()),
        "logit": (frozenset({"success", "predictors"}), frozenset()),
        "wijk_vs_rest": (frozenset(), frozenset({"success", "adjust"})),
        "trend": (frozenset(), frozenset({"success", "breakdowns"})),
    }
)
MIN_TREND_WAVES = 3


class Analysis(_Model):
    """An analysis beyond the indicator percentages, estimated per wave (trend: over the waves) and
    printed in the report's section "Verdieping". Only substantive answers count: "weet niet",
    "geen antwoord" and "niet gevraagd" leave the analysis (R's na.rm on the valid answers)."""

    id: Name
    kind: AnalysisKind = Field(
        description="mean (of a numeric or scale item), crosstab (Rao-Scott test of variable x against), logit "
        "(odds of the success codes on the predictors), wijk_vs_rest (each area against the rest of the "
        "municipality, adjusted p-values) or trend (linear trend over the waves)."
    )
    title: Text = Field(description="Dutch title printed above the analysis.")
    variable: Name = Field(description="The question analysed (crosstab: the row variable).")
    base: Name = Field(ALL_RESIDENTS, description="A group name: the respondents analysed.")
    success: CodeList | None = Field(
        None, description="logit: the outcome codes; wijk_vs_rest and trend: the share of these codes (else the mean)."
    )
    against: Name | None = Field(None, description="crosstab: the column variable (a question or background variable).")
    predictors: Annotated[tuple[Name, ...], Field(min_length=1)] | None = Field(
        None, description="logit: background variables or questions, each entered as a factor."
    )
    breakdowns: tuple[Name, ...] = Field((), description="mean and trend: background variables to break down by.")
    adjust: Adjustment | None = Field(
        None, description="wijk_vs_rest: holm (default; family-wise) or BH (Benjamini-Hochberg; false discovery rate)."
    )

    @model_validator(mode="after")
    def _keys_of_kind(self) -> Analysis:
        required, optional = ANALYSIS_KEYS[self.kind]
        given = {key for key in ("success", "against", "predictors", "adjust") if getattr(self, key) is not None}
        given |= {"breakdowns"} if self.breakdowns else set()
        missing, unused = sorted(required - given), sorted(given - required - optional)
        if missing:
            raise _problem(f"required for an analysis of kind {self.kind}", missing[0])
        if unused:
            raise _problem(f"not used by an analysis of kind {self.kind}", unused[0])
        return self

    @property
    def adjustment(self) -> str:
        """The multiple-comparison adjustment of a wijk_vs_rest analysis (default holm)."""
        return self.adjust or "holm"


class StemGroup(_Model):
    """Rows of the annual-report table under one shared stem, each printed as a bullet with its `short_label`."""

    stem: Text = Field(
        description="The shared start, printed on its own row: '% Inwoners (18 jaar e.o.) dat aangeeft:'."
    )
    members: Annotated[tuple[Name, ...], Field(min_length=1)] = Field(description="Indicator ids, in print order.")
    base: Name | None = Field(
        None,
        description="The base group the stem itself states (e.g. wmo_clients in '% Inwoners met een "
        "Wmo-maatwerkvoorziening dat aangeeft:'): every member has it, and it is not repeated inline per bullet.",
    )


LayoutRow = Annotated[Name | StemGroup, Field(description="An indicator id, or a stem with bullet members.")]


class LayoutSection(_Model):
    """A beleidsveld of the annual-report table: a title row, an optional intro sentence, its rows in order."""

    title: Text
    intro: Text | None = Field(None, description="A sentence printed under the section title.")
    rows: Annotated[tuple[LayoutRow, ...], Field(min_length=1)]


class ReportLayout(_Model):
    """`report_layout:` the annual-report table as the report prints it: sections (beleidsvelden) of
    indicator rows and stems with bullets. Without it the table has a section per indicator kind."""

    heading: Text | None = Field(
        None,
        description="Printed once with the column headers above all sections ('Prestatie indicator(en)'); "
        "without it every section title row carries the column headers.",
    )
    intro: Text | None = Field(None, description="The sentence printed before the table.")
    base_style: BaseStyle = Field(
        "footnote",
        description="A base other than all residents as a footnote marker (footnote) or after the label (inline).",
    )
    sections: Annotated[tuple[LayoutSection, ...], Field(min_length=1)]

    def indicator_ids(self) -> tuple[str, ...]:
        """Every indicator and registration id the layout prints, in print order."""
        return tuple(
            member
            for section in self.sections
            for row in section.rows
            for member in ((row,) if isinstance(row, str) else row.members)
        )


class SpecDocument(_Model):
    """A questionnaire spec as written in YAML (see `questionnaires/wij_monitor.yaml`)."""

    model_config = ConfigDict(title="Questionnaire spec")

    spec_version: Literal[1]
    survey: SurveySection
    missing_codes: MissingCodes
    groups: Annotated[dict[Name, GroupSpec], Field(min_length=1)] = Field(
        description=f"Named subgroups; routing and bases refer to them. '{ALL_RESIDENTS}' (everyone) is required."
    )
    scales: dict[Name, ScaleSpec] | None = Field(
        None, description="Answer scales: variables name one (`scale`) or reuse its codes through a YAML anchor."
    )
    background: Annotated[dict[Name, BackgroundSpec], Field(min_length=1)]
    variables: Annotated[dict[Name, VariableSpec], Field(min_length=1)]
    indicators: Annotated[list[Indicator], Field(min_length=1)]
    registrations: list[Registration] = Field(
        default_factory=list, description="Registration figures (kengetallen not from the survey), by year."
    )
    analyses: list[Analysis] = Field(
        default_factory=list, description="Analyses for the report's section Verdieping (means, crosstabs, ...)."
    )
    report_layout: ReportLayout | None = None

    @field_validator("spec_version", mode="before")
    @classmethod
    def _known_version(cls, version: Any) -> Any:
        if version != SPEC_VERSION or isinstance(version, bool):
            raise _problem(f"unsupported version {version!r}; this reader knows {SPEC_VERSION}")
        return version

    @model_validator(mode="after")
    def _references(self) -> SpecDocument:
        self._check_groups_declared()
        self._check_variables()
        self._check_conditions()
        self._check_routing()
        self._check_indicators()
        self._check_registrations()
        self._check_analyses()
        self._check_report_layout()
        return self

    def waves_of(self, name: str) -> tuple[int, ...]:
        """The waves a question is asked in."""
        return self.variables[name].waves or self.survey.waves

    def codes_of(self, name: str) -> dict[int, str]:
        """A question's answer codes: its own, every value of its numeric range, or its scale's (checked to exist first)."""
        var = self.variables[name]
        if var.codes is not None:
            return var.codes
        if var.numeric is not None:
            return var.numeric.codes
        return (self.scales or {})[var.scale].codes  # type: ignore[index]

    def _check_groups_declared(self) -> None:
        if ALL_RESIDENTS not in self.groups:
            raise _problem(f"must declare the group '{ALL_RESIDENTS}' (all respondents)", "groups")
        if self.groups[ALL_RESIDENTS].when is not None:
            raise _problem(
                f"the group '{ALL_RESIDENTS}' is everyone: it takes no condition", f"groups.{ALL_RESIDENTS}.when"
            )
        for name, group in self.groups.items():
            if group.when is None and name != ALL_RESIDENTS:
                raise _problem("required key is missing", f"groups.{name}.when")
        area = self.survey.area_variable
        if area is not None and area not in self.background:
            raise _problem(f"unknown background variable '{area}'", "survey.area_variable")

    def _check_variables(self) -> None:
        survey = self.survey
        reserved = {survey.respondent_id: "the respondent id", survey.wave_variable: "the wave variable"}
        for name in self.background:
            if name in reserved:
                raise _problem(f"name is already used by {reserved[name]}", f"background.{name}")
        for name, var in self.variables.items():
            key = f"variables.{name}"
            if name in self.background or name in reserved:
                raise _problem("name is already used by a background or id variable", key)
            if var.scale is not None and var.scale not in (self.scales or {}):
                raise _problem(f"unknown scale '{var.scale}'", f"{key}.scale")
            clash = sorted(set(self.codes_of(name)) & set((var.missing_codes or self.missing_codes).codes))
            if clash:
                where = "codes" if var.codes is not None else "numeric"
                raise _problem(f"code(s) {clash} are also missing-value codes", f"{key}.{where}")
            skipped_waves = sorted(set(self.waves_of(name)) & set(survey.not_measured))
            if skipped_waves:
                raise _problem(
                    f"wave(s) {skipped_waves} are declared not measured in survey.not_measured", f"{key}.waves"
                )
            unknown = sorted(set(self.waves_of(name)) - set(survey.waves))
            if unknown:
                raise _problem(f"wave(s) {unknown} are not in survey.waves", f"{key}.waves")
            for wave in var.not_measured:
                where = f"{key}.not_measured.{wave}"
                if wave in survey.not_measured:
                    raise _problem(f"wave {wave} is already declared not measured in survey.not_measured", where)
                if wave not in survey.waves:
                    raise _problem(f"wave {wave} is not in survey.waves", where)
                if wave in self.waves_of(name):
                    raise _problem(f"wave {wave} is also in {key}.waves; a question is asked in a wave or not", where)
            if var.asked_of not in self.groups:
                raise _problem(f"unknown group '{var.asked_of}'", f"{key}.asked_of")

    def _answer_codes(self, name: str) -> Mapping[int, str] | None:
        """The answer codes of a question or background variable; None for an unknown name."""
        if name in self.variables:
            return self.codes_of(name)
        known = self.background.get(name)
        return known.codes if known is not None else None

    def _check_conditions(self) -> None:
        for name, group in self.groups.items():
            for var, codes in (group.when or {}).items():
                key = f"groups.{name}.when.{var}"
                known = self._answer_codes(var)
                if known is None:
                    raise _problem("unknown variable", key)
                unknown = sorted(set(codes) - set(known))
                if unknown:
                    raise _problem(f"code(s) {unknown} are not answer codes of '{var}'", key)

    def _check_routing(self) -> None:
        """Routing must be acyclic and a question cannot be asked in a wave its filter was not."""

        def chain(group: str, seen: tuple[str, ...]) -> None:
            if group in seen:
                raise _problem(f"routing cycle: {' -> '.join((*seen, group))}", f"groups.{group}")
            for var in self.groups[group].when or {}:
                if var in self.variables:
                    chain(self.variables[var].asked_of, (*seen, group))

        for name in self.groups:
            chain(name, ())
        for name, var in self.variables.items():
            for filter_var in self.groups[var.asked_of].when or {}:
                if filter_var in self.variables:
                    missing_waves = sorted(set(self.waves_of(name)) - set(self.waves_of(filter_var)))
                    if missing_waves:
                        raise _problem(
                            f"asked in wave(s) {missing_waves} where its filter question '{filter_var}' is not asked",
                            f"variables.{name}.waves",
                        )

    def _check_agree_partition(self, indicator: Indicator, codes: set[int], key: str) -> None:
        """On an agree scale the success codes, `disagree` and `neutral` split the answers, so the shares the
        report states beside the indicator add up with it to the whole base."""
        scale = (self.scales or {}).get(self.variables[indicator.variable].scale or "")
        if scale is None or scale.disagree is None or scale.neutral is None:
            return
        parts = (set(indicator.success), set(scale.disagree.codes), set(scale.neutral.codes))
        if sum(len(p) for p in parts) != len(codes) or set().union(*parts) != codes:
            raise _problem(
                f"on scale '{self.variables[indicator.variable].scale}' the success codes, disagree and neutral "
                f"must split its codes {sorted(codes)} without overlap",
                f"{key}.success",
            )

    def _check_indicators(self) -> None:
        for indicator in self.indicators:
            key = f"indicators.{indicator.id}"
            if indicator.variable not in self.variables:
                raise _problem(f"unknown variable '{indicator.variable}'", f"{key}.variable")
            codes = self.codes_of(indicator.variable)
            unknown = sorted(set(indicator.success) - set(codes))
            if unknown:
                raise _problem(f"code(s) {unknown} are not answer codes of '{indicator.variable}'", f"{key}.success")
            self._check_agree_partition(indicator, set(codes), key)
            if indicator.base not in self.groups:
                raise _problem(f"unknown group '{indicator.base}'", f"{key}.base")
        ids = [indicator.id for indicator in self.indicators]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _problem(f"duplicate indicator id(s) {duplicates}", "indicators")

    def _check_registrations(self) -> None:
        indicator_ids = {indicator.id for indicator in self.indicators}
        seen: set[str] = set()
        for registration in self.registrations:
            key = f"registrations.{registration.id}"
            if registration.id in indicator_ids:
                raise _problem(f"id '{registration.id}' is also a survey indicator id", f"{key}.id")
            if registration.id in seen:
                raise _problem(f"duplicate registration id '{registration.id}'", f"{key}.id")
            seen.add(registration.id)
            if registration.unit == "count":
                for year, text in registration.targets.items():
                    if parse_target(text).level is not None:
                        raise _problem(
                            f"a level target ({text!r}) is a percentage and needs unit 'percentage'; a count "
                            "takes 'kengetal', 'toename', 'afname' or 'stabiel'",
                            f"{key}.targets.{year}",
                        )

    def _check_analyses(self) -> None:
        ids = [analysis.id for analysis in self.analyses]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _problem(f"duplicate analysis id(s) {duplicates}", "analyses")
        for analysis in self.analyses:
            key = f"analyses.{analysis.id}"
            if analysis.variable not in self.variables:
                raise _problem(f"unknown question '{analysis.variable}'", f"{key}.variable")
            codes = self.codes_of(analysis.variable)
            unknown = sorted(set(analysis.success or ()) - set(codes))
            if unknown:
                raise _problem(f"code(s) {unknown} are not answer codes of '{analysis.variable}'", f"{key}.success")
            if analysis.kind == "logit" and set(codes) <= set(analysis.success or ()):
                raise _problem("every answer is a success: the outcome would not vary", f"{key}.success")
            if analysis.base not in self.groups:
                raise _problem(f"unknown group '{analysis.base}'", f"{key}.base")
            for field_name in ("against", "predictors"):
                value = getattr(analysis, field_name)
                for name in (value,) if isinstance(value, str) else value or ():
                    if self._answer_codes(name) is None:
                        raise _problem(f"unknown question or background variable '{name}'", f"{key}.{field_name}")
                    if name == analysis.variable:
                        raise _problem(f"'{name}' is the analysed variable itself", f"{key}.{field_name}")
            if analysis.predictors and len(set(analysis.predictors)) != len(analysis.predictors):
                raise _problem(f"duplicate predictors in {list(analysis.predictors)}", f"{key}.predictors")
            for name in analysis.breakdowns:
                if name not in self.background:
                    raise _problem(f"unknown background variable '{name}'", f"{key}.breakdowns")
            if analysis.kind == "wijk_vs_rest" and self.survey.area_variable is None:
                raise _problem("needs survey.area_variable (the areas compared)", f"{key}.kind")
            if analysis.kind == "trend" and len(self.waves_of(analysis.variable)) < MIN_TREND_WAVES:
                raise _problem(
                    f"a trend needs a question asked in at least {MIN_TREND_WAVES} waves, "
                    f"'{analysis.variable}' is asked in {list(self.waves_of(analysis.variable))}",
                    f"{key}.variable",
                )

    def _check_report_layout(self) -> None:
        """Every indicator and registration figure exactly once; a bullet has its short label; a stem's base
        is every member indicator's base (a registration figure has none)."""
        layout = self.report_layout
        if layout is None:
            return
        indicators = {indicator.id: indicator for indicator in self.indicators}
        registrations = {registration.id: registration for registration in self.registrations}
        placed: dict[str, str] = {}

        def place(figure_id: str, key: str) -> None:
            if figure_id not in indicators and figure_id not in registrations:
                raise _problem(f"unknown indicator or registration figure '{figure_id}'", key)
            if figure_id in placed:
                raise _problem(f"indicator '{figure_id}' is listed twice (also at {placed[figure_id]})", key)
            placed[figure_id] = key

        for s, section in enumerate(layout.sections):
            for r, row in enumerate(section.rows):
                key = f"report_layout.sections.{s}.rows.{r}"
                if isinstance(row, str):
                    place(row, key)
                    continue
                if row.base is not None and row.base not in self.groups:
                    raise _problem(f"unknown group '{row.base}'", f"{key}.base")
                for m, member in enumerate(row.members):
                    place(member, f"{key}.members.{m}")
                    figure = indicators.get(member) or registrations[member]
                    if figure.short_label is None:
                        listed = "indicators" if member in indicators else "registrations"
                        raise _problem(
                            f"required: '{member}' is a bullet under a stem at {key}", f"{listed}.{member}.short_label"
                        )
                    base = figure.base if isinstance(figure, Indicator) else None
                    if row.base is not None and base != row.base:
                        raise _problem(
                            f"indicator '{member}' has base '{base}', but its stem states '{row.base}'",
                            f"{key}.members.{m}",
                        )
        unplaced = [figure for figure in [*indicators, *registrations] if figure not in placed]
        if unplaced:
            raise _problem(f"indicator(s) {unplaced} are in no section", "report_layout.sections")


# ---------------------------------------------------------------------------
# The resolved spec the stages use


@dataclass(frozen=True)
class Condition:
    """A conjunction of `variable in codes` clauses; evaluated on a data frame."""

    clauses: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.clauses)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean array: which rows satisfy every clause (missing values never do)."""
        result = np.ones(len(frame), dtype=bool)
        for name, codes in self.clauses:
            result &= frame[name].isin(codes).to_numpy(dtype=bool)
        return result


@dataclass(frozen=True)
class Group:
    """A named subgroup of respondents; `when` is None for all residents."""

    name: str
    label: str
    when: Condition | None
    inline_label: str = ""  # the phrase for a base printed inline ("" = label)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        if self.when is None:
            return np.ones(len(frame), dtype=bool)
        return self.when.mask(frame)


@dataclass(frozen=True)
class BackgroundVariable:
    """A weighting/breakdown variable such as wijk, age group or sex."""

    name: str
    label: str
    codes: Mapping[int, str]


@dataclass(frozen=True)
class Variable:
    """A substantive question with its answer codes, missing codes and routing."""

    name: str
    label: str
    codes: Mapping[int, str]
    missing: MissingCodes
    asked_of: str
    waves: tuple[int, ...]
    # Survey waves in which the question was deliberately not asked -> Dutch reason ("i.v.m. COVID").
    not_measured: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    scale: str | None = None  # the name of its scale in `scales:`, when it names one
    # A numeric answer (min, max): `codes` then holds every whole number between them.
    numeric_range: tuple[int, int] | None = None

    @property
    def answer_codes(self) -> tuple[int, ...]:
        """Substantive answers plus "weet niet" and "geen antwoord" (allowed when asked)."""
        return (*self.codes, self.missing.dont_know.code, self.missing.no_answer.code)

    @property
    def value_labels(self) -> dict[int, str]:
        """Every code the file may hold, with its label, in the order the report shows."""
        return {**self.codes, **self.missing.labels}


@dataclass(frozen=True)
class QuestionnaireSpec:
    """The whole survey spec; see `questionnaires/wij_monitor.yaml`."""

    survey_id: str
    title: str
    population_label: str
    respondent_id: str
    wave_variable: str
    waves: tuple[int, ...]
    missing: MissingCodes
    groups: Mapping[str, Group]
    background: Mapping[str, BackgroundVariable]
    variables: Mapping[str, Variable]
    indicators: tuple[Indicator, ...]
    source: str
    fingerprint: str = ""
    # Waves the survey deliberately did not measure (no raw file) -> Dutch reason ("i.v.m. COVID").
    not_measured: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    # The background variable whose areas the report compares in figures (None: no such figures).
    area_variable: str | None = None
    scales: Mapping[str, ScaleSpec] = field(default_factory=lambda: MappingProxyType({}))
    # Recruitment, population and fieldwork per wave, for the method note (None: not declared).
    method: SurveyMethod | None = None
    # Registration figures (not from the survey), read from params `estimate.registrations_file`.
    registrations: tuple[Registration, ...] = ()
    # Analyses for the report's section Verdieping (spec `analyses:`).
    analyses: tuple[Analysis, ...] = ()
    # How the annual-report table is laid out (None: a section per indicator kind, bases as footnotes).
    report_layout: ReportLayout | None = None

    def indicator(self, indicator_id: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(indicator_id)

    def registration(self, registration_id: str) -> Registration:
        for registration in self.registrations:
            if registration.id == registration_id:
                return registration
        raise KeyError(registration_id)

    @property
    def registration_ids(self) -> frozenset[str]:
        """The ids of the registration figures: rows of the annual layout that are not survey indicators."""
        return frozenset(registration.id for registration in self.registrations)

    @property
    def declared_waves(self) -> tuple[int, ...]:
        """Every wave the spec knows: measured (`waves`) and declared not measured."""
        return tuple(sorted((*self.waves, *self.not_measured)))

    def not_measured_reason(self, wave: int, variable: str | None = None) -> str | None:
        """The declared reason why `wave` (or `variable` in `wave`) was not measured; None if none is declared."""
        if wave in self.not_measured:
            return self.not_measured[wave]
        return self.variables[variable].not_measured.get(wave) if variable is not None else None

    def variables_in_wave(self, wave: int) -> tuple[Variable, ...]:
        """The questions asked (to someone) in `wave`."""
        return tuple(v for v in self.variables.values() if wave in v.waves)

    def asked_mask(self, variable: str, frame: pd.DataFrame) -> np.ndarray:
        """Rows that the routing sends to `variable`."""
        return self.groups[self.variables[variable].asked_of].mask(frame)

    def parent_group(self, group: str) -> str | None:
        """The group a group's filter questions are asked of (None for residents)."""
        when = self.groups[group].when
        if when is None:
            return None
        parents = {self.variables[name].asked_of for name in when.variables if name in self.variables}
        return parents.pop() if len(parents) == 1 else ALL_RESIDENTS

    def base_text(self, group: str) -> str:
        """Dutch description of a base, as printed: "van de bewoners die ..."."""
        return f"van {self.groups[group].label}"

    def agree_scale(self, variable: str) -> ScaleSpec | None:
        """The scale of a question when it is an agree scale (declares `disagree` and `neutral`), else None."""
        scale = self.scales.get(self.variables[variable].scale or "")
        return scale if scale is not None and scale.disagree is not None else None

    def inline_base_text(self, group: str) -> str:
        """A base as printed inline after a row label: "(van het deel dat gehoord heeft van WIJ Groningen)"."""
        found = self.groups[group]
        return f"(van {found.inline_label or found.label})"

    def breakdown_text(self, breakdown: str) -> str:
        """Dutch description of a background breakdown, as printed: "per wijk"."""
        return f"per {self.background[breakdown].label.lower()}"


def _resolve(doc: SpecDocument, source: str, fingerprint: str) -> QuestionnaireSpec:
    """The checked document as the stages use it: names attached, defaults filled in."""
    variables = {
        name: Variable(
            name,
            var.label,
            MappingProxyType(doc.codes_of(name)),
            var.missing_codes or doc.missing_codes,
            var.asked_of,
            doc.waves_of(name),
            MappingProxyType(var.not_measured),
            var.scale,
            (var.numeric.min, var.numeric.max) if var.numeric is not None else None,
        )
        for name, var in doc.variables.items()
    }
    groups = {
        name: Group(
            name, group.label, Condition(tuple(group.when.items())) if group.when else None, group.inline_label or ""
        )
        for name, group in doc.groups.items()
    }
    background = {
        name: BackgroundVariable(name, var.label, MappingProxyType(var.codes)) for name, var in doc.background.items()
    }
    survey = doc.survey
    return QuestionnaireSpec(
        survey_id=survey.id,
        title=survey.title,
        population_label=survey.population_label,
        respondent_id=survey.respondent_id,
        wave_variable=survey.wave_variable,
        waves=survey.waves,
        missing=doc.missing_codes,
        groups=MappingProxyType(groups),
        background=MappingProxyType(background),
        variables=MappingProxyType(variables),
        indicators=tuple(doc.indicators),
        source=source,
        fingerprint=fingerprint,
        not_measured=MappingProxyType(survey.not_measured),
        area_variable=survey.area_variable,
        scales=MappingProxyType(dict(doc.scales or {})),
        method=survey.method,
        registrations=tuple(doc.registrations),
        analyses=tuple(doc.analyses),
        report_layout=doc.report_layout,
    )


# ---------------------------------------------------------------------------
# Loading


def load_spec(path: str | Path) -> QuestionnaireSpec:
    """Read and check a questionnaire spec; raise `SpecError` naming key and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("<file>", "file not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise SpecError("<file>", "not UTF-8 text", file=str(path)) from None
    try:
        raw = load_strict(text)
    except StrictYamlError as exc:
        raise SpecError(exc.path, exc.problem, file=str(path)) from None
    except yaml.YAMLError as exc:
        raise SpecError("<file>", f"not valid YAML ({_first_line(exc)})", file=str(path)) from None
    try:
        return parse_spec(raw, source=str(path))
    except SpecError as exc:
        raise SpecError(exc.key, exc.message.split(": ", 1)[1], file=str(path)) from None


def parse_spec(raw: Any, source: str = "<memory>") -> QuestionnaireSpec:
    """Build a spec from already-parsed YAML data (a dict)."""
    try:
        doc = SpecDocument.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(exc, raw) from None
    return _resolve(doc, source, fingerprint(raw))


def fingerprint(raw: Any) -> str:
    """sha256 of the spec's content (not its comments or layout): stage outputs record
    it so that a later stage can refuse outputs made under another version of the spec."""
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _spec_error(exc: ValidationError, raw: Any) -> SpecError:
    """pydantic's first error as one `SpecError`: the YAML key path and the problem in words."""
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    parts = [str(part) for part in _readable_loc(loc, raw)]
    if ctx.get("key"):
        parts.append(ctx["key"])
    key = ".".join(parts) or "<root>"
    return SpecError(key, _describe(error, loc))


def _readable_loc(loc: tuple[Any, ...], raw: Any) -> list[Any]:
    """The location as YAML key path: a list index becomes the entry's `id` when it has one, dict-key markers go."""
    parts: list[Any] = []
    node = raw
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            entry_id = node.get("id") if isinstance(node, dict) else None
            parts.append(entry_id if isinstance(entry_id, str) and entry_id else part)
            continue
        node = node.get(part) if isinstance(node, dict) else None
        parts.append(part)
    return parts


def _describe(error: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "spec":
        return ctx["problem"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {type(value).__name__}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a non-empty list, got {type(value).__name__}"
    if kind == "too_short":
        return "must not be empty" if isinstance(value, dict) else "expected a non-empty list"
    if kind.startswith("int_"):
        return f"expected a whole number, got {value!r}"
    if kind.startswith("string_"):
        return f"expected non-empty text, got {value!r}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {value!r}"
    return str(error["msg"])


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts (for the message on an unknown key)."""
    annotation: Any = SpecDocument
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if part not in annotation.model_fields:
                return []
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list, tuple):
            annotation = typing.get_args(annotation)[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# ---------------------------------------------------------------------------
# The JSON Schema for editors


def json_schema_text() -> str:
    """The spec's JSON Schema as committed in `schemas/questionnaire.schema.json`."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "questionnaire.schema.json",
        **SpecDocument.model_json_schema(),
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m survey_pipeline.spec --json-schema [PATH]`: write the JSON Schema of the spec."""
    parser = argparse.ArgumentParser(prog="python -m survey_pipeline.spec", description=main.__doc__)
    parser.add_argument(
        "--json-schema",
        nargs="?",
        const=str(JSON_SCHEMA_PATH),
        metavar="PATH",
        required=True,
        help=f"write the JSON Schema (default {JSON_SCHEMA_PATH.name} in schemas/)",
    )
    args = parser.parse_args(argv)
    Path(args.json_schema).write_text(json_schema_text(), encoding="utf-8")
    print(args.json_schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
