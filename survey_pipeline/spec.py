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
# How the annual-report table states a base other than all residents: a footnote marker (*, **) or
# inline after the label: "(van het deel dat gehoord heeft van WIJ Groningen)".
BaseStyle = Literal["footnote", "inline"]
SPEC_VERSION = 1
JSON_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "questionnaire.schema.json"


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

    @model_validator(mode="after")
    def _measured_or_not(self) -> SurveySection:
        if self.wave_variable == self.respondent_id:
            raise _problem(f"must differ from survey.respondent_id, both are '{self.wave_variable}'", "wave_variable")
        for wave in self.not_measured:
            if wave in self.waves:
                raise _problem(
                    f"wave {wave} is also in survey.waves; a wave is measured or not", f"not_measured.{wave}"
                )
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


class VariableSpec(_Model):
    """A substantive question."""

    label: Text
    codes: Codes
    asked_of: Name = Field(description="The group the routing sends this question to.")
    waves: CodeList | None = Field(None, description="Waves the question is asked in (default: survey.waves).")
    not_measured: Reasons = Field(default_factory=dict)
    missing_codes: MissingCodes | None = Field(
        None, description="Overrides the spec's missing_codes for this question."
    )


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
    targets: Annotated[
        Mapping[StrictInt, Text],
        BeforeValidator(lambda raw: {} if raw is None else raw),
        AfterValidator(_parsed_targets),
        Field(
            description="Year -> target: '>N%', '<N%', 'toename', 'afname', 'stabiel', 'kengetal' or a combination.",
            json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}},
        ),
    ] = Field(default_factory=lambda: MappingProxyType({}))


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
        """Every indicator id the layout prints, in print order."""
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
    scales: dict[Name, Codes] | None = Field(None, description="Code lists to reuse through YAML anchors.")
    background: Annotated[dict[Name, BackgroundSpec], Field(min_length=1)]
    variables: Annotated[dict[Name, VariableSpec], Field(min_length=1)]
    indicators: Annotated[list[Indicator], Field(min_length=1)]
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
        self._check_report_layout()
        return self

    def waves_of(self, name: str) -> tuple[int, ...]:
        """The waves a question is asked in."""
        return self.variables[name].waves or self.survey.waves

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
            clash = sorted(set(var.codes) & set((var.missing_codes or self.missing_codes).codes))
            if clash:
                raise _problem(f"code(s) {clash} are also missing-value codes", f"{key}.codes")
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
        known = self.variables.get(name) or self.background.get(name)
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

    def _check_indicators(self) -> None:
        for indicator in self.indicators:
            key = f"indicators.{indicator.id}"
            if indicator.variable not in self.variables:
                raise _problem(f"unknown variable '{indicator.variable}'", f"{key}.variable")
            unknown = sorted(set(indicator.success) - set(self.variables[indicator.variable].codes))
            if unknown:
                raise _problem(f"code(s) {unknown} are not answer codes of '{indicator.variable}'", f"{key}.success")
            if indicator.base not in self.groups:
                raise _problem(f"unknown group '{indicator.base}'", f"{key}.base")
        ids = [indicator.id for indicator in self.indicators]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _problem(f"duplicate indicator id(s) {duplicates}", "indicators")

    def _check_report_layout(self) -> None:
        """Every indicator exactly once; a bullet has its short label; a stem's base is every member's base."""
        layout = self.report_layout
        if layout is None:
            return
        indicators = {indicator.id: indicator for indicator in self.indicators}
        placed: dict[str, str] = {}

        def place(indicator_id: str, key: str) -> None:
            if indicator_id not in indicators:
                raise _problem(f"unknown indicator '{indicator_id}'", key)
            if indicator_id in placed:
                raise _problem(f"indicator '{indicator_id}' is listed twice (also at {placed[indicator_id]})", key)
            placed[indicator_id] = key

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
                    indicator = indicators[member]
                    if indicator.short_label is None:
                        raise _problem(
                            f"required: indicator '{member}' is a bullet under a stem at {key}",
                            f"indicators.{member}.short_label",
                        )
                    if row.base is not None and indicator.base != row.base:
                        raise _problem(
                            f"indicator '{member}' has base '{indicator.base}', but its stem states '{row.base}'",
                            f"{key}.members.{m}",
                        )
        unplaced = [indicator_id for indicator_id in indicators if indicator_id not in placed]
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
    # How the annual-report table is laid out (None: a section per indicator kind, bases as footnotes).
    report_layout: ReportLayout | None = None

    def indicator(self, indicator_id: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(indicator_id)

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
            MappingProxyType(var.codes),
            var.missing_codes or doc.missing_codes,
            var.asked_of,
            doc.waves_of(name),
            MappingProxyType(var.not_measured),
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
