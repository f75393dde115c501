"""Questionnaire spec: load `questionnaires/*.yaml` into typed, immutable objects.

The spec is the single source of truth for a survey: variables and their codes,
the missing-value codes, routing (which group each question is asked of), and the
indicators with their bases. Validation, denominators and footnotes are all
derived from it. Conditions are data (variable -> allowed codes), never code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import yaml

from survey_pipeline.errors import SpecError
from survey_pipeline.strict_yaml import StrictYamlError, load_strict

ALL_RESIDENTS = "residents"
INDICATOR_KINDS = ("prestatie", "kengetal")
DONT_KNOW_RULES = ("exclude", "count_as_no")
MISSING_KINDS = ("dont_know", "no_answer", "not_asked")


def _no_reasons() -> Mapping[int, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class MissingCode:
    """One special code, e.g. 99 "weet niet"."""

    code: int
    label: str


@dataclass(frozen=True)
class MissingCodes:
    """The special codes of a question: "weet niet", "geen antwoord", "niet gevraagd"."""

    dont_know: MissingCode
    no_answer: MissingCode
    not_asked: MissingCode

    @property
    def codes(self) -> tuple[int, int, int]:
        return (self.dont_know.code, self.no_answer.code, self.not_asked.code)

    @property
    def labels(self) -> dict[int, str]:
        return {m.code: m.label for m in (self.dont_know, self.no_answer, self.not_asked)}


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
    not_measured: Mapping[int, str] = field(default_factory=_no_reasons)

    @property
    def answer_codes(self) -> tuple[int, ...]:
        """Substantive answers plus "weet niet" and "geen antwoord" (allowed when asked)."""
        return (*self.codes, self.missing.dont_know.code, self.missing.no_answer.code)

    @property
    def value_labels(self) -> dict[int, str]:
        """Every code the file may hold, with its label, in the order the report shows."""
        return {**self.codes, **self.missing.labels}


@dataclass(frozen=True)
class Indicator:
    """A published percentage: numerator codes of one variable over a declared base."""

    id: str
    kind: str
    variable: str
    success: tuple[int, ...]
    base: str
    dont_know: str
    label: str
    targets: Mapping[int, str]


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
    not_measured: Mapping[int, str] = field(default_factory=_no_reasons)

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


# ---------------------------------------------------------------------------
# Loading and checking


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
        if exc.file is None:
            raise SpecError(exc.key, exc.message.split(": ", 1)[1], file=str(path)) from None
        raise


def parse_spec(raw: Any, source: str = "<memory>") -> QuestionnaireSpec:
    """Build a spec from already-parsed YAML data (a dict)."""
    top = _mapping(raw, "<root>")
    _only_keys(
        top,
        "<root>",
        required=("spec_version", "survey", "missing_codes", "groups", "background", "variables", "indicators"),
        optional=("scales",),
    )
    if top["spec_version"] != 1:
        raise SpecError("spec_version", f"unsupported version {top['spec_version']!r}; this reader knows 1")

    survey = _mapping(top["survey"], "survey")
    _only_keys(
        survey,
        "survey",
        required=("id", "title", "population_label", "respondent_id", "wave_variable", "waves"),
        optional=("not_measured",),
    )
    waves = _int_list(survey["waves"], "survey.waves", non_empty=True)
    skipped = _reasons(survey.get("not_measured", {}), "survey.not_measured")
    for wave in skipped:
        if wave in waves:
            raise SpecError(f"survey.not_measured.{wave}", f"wave {wave} is also in survey.waves; a wave is measured or not")
    missing = _missing_codes(top["missing_codes"], "missing_codes")

    background = {
        name: BackgroundVariable(
            name=name,
            label=_text(_mapping(body, f"background.{name}").get("label"), f"background.{name}.label"),
            codes=_codes(body.get("codes"), f"background.{name}.codes"),
        )
        for name, body in _mapping(top["background"], "background", non_empty=True).items()
    }
    for name, body in top["background"].items():
        _only_keys(body, f"background.{name}", required=("label", "codes"))

    raw_groups = _mapping(top["groups"], "groups", non_empty=True)
    if ALL_RESIDENTS not in raw_groups:
        raise SpecError("groups", f"must declare the group '{ALL_RESIDENTS}' (all respondents)")

    variables: dict[str, Variable] = {}
    for name, body in _mapping(top["variables"], "variables", non_empty=True).items():
        key = f"variables.{name}"
        body = _mapping(body, key)
        _only_keys(body, key, required=("label", "codes", "asked_of"), optional=("waves", "not_measured", "missing_codes"))
        if name in background or name in (survey["respondent_id"], survey["wave_variable"]):
            raise SpecError(key, "name is already used by a background or id variable")
        var_missing = _missing_codes(body["missing_codes"], f"{key}.missing_codes") if "missing_codes" in body else missing
        codes = _codes(body["codes"], f"{key}.codes")
        clash = set(codes) & set(var_missing.codes)
        if clash:
            raise SpecError(f"{key}.codes", f"code(s) {sorted(clash)} are also missing-value codes")
        var_waves = tuple(_int_list(body["waves"], f"{key}.waves", non_empty=True)) if "waves" in body else tuple(waves)
        _check_variable_waves(var_waves, waves, skipped, f"{key}.waves")
        var_skipped = _reasons(body.get("not_measured", {}), f"{key}.not_measured")
        for wave in var_skipped:
            where = f"{key}.not_measured.{wave}"
            if wave in skipped:
                raise SpecError(where, f"wave {wave} is already declared not measured in survey.not_measured")
            if wave not in waves:
                raise SpecError(where, f"wave {wave} is not in survey.waves")
            if wave in var_waves:
                raise SpecError(where, f"wave {wave} is also in {key}.waves; a question is asked in a wave or not")
        asked_of = _text(body["asked_of"], f"{key}.asked_of")
        if asked_of not in raw_groups:
            raise SpecError(f"{key}.asked_of", f"unknown group '{asked_of}'")
        variables[name] = Variable(
            name, _text(body["label"], f"{key}.label"), codes, var_missing, asked_of, var_waves, var_skipped
        )

    groups = {name: _group(name, body, variables, background) for name, body in raw_groups.items()}
    _check_routing(groups, variables)

    indicators = tuple(
        _indicator(i, body, variables, groups) for i, body in enumerate(_list(top["indicators"], "indicators"))
    )
    ids = [ind.id for ind in indicators]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SpecError("indicators", f"duplicate indicator id(s) {duplicates}")

    return QuestionnaireSpec(
        survey_id=_text(survey["id"], "survey.id"),
        title=_text(survey["title"], "survey.title"),
        population_label=_text(survey["population_label"], "survey.population_label"),
        respondent_id=_text(survey["respondent_id"], "survey.respondent_id"),
        wave_variable=_text(survey["wave_variable"], "survey.wave_variable"),
        waves=tuple(waves),
        missing=missing,
        groups=MappingProxyType(groups),
        background=MappingProxyType(background),
        variables=MappingProxyType(variables),
        indicators=indicators,
        source=source,
        fingerprint=_fingerprint(top),
        not_measured=skipped,
    )


def _reasons(raw: Any, key: str) -> Mapping[int, str]:
    """A `not_measured` mapping: wave -> the Dutch reason the report prints ("i.v.m. COVID")."""
    reasons = {}
    for wave, reason in _mapping(raw, key).items():
        reasons[_int(wave, f"{key}.{wave}")] = _text(reason, f"{key}.{wave}")
    return MappingProxyType(dict(sorted(reasons.items())))


def _check_variable_waves(var_waves: tuple[int, ...], waves: list[int], skipped: Mapping[int, str], key: str) -> None:
    """A question's waves are measured waves of the survey."""
    not_measured = sorted(set(var_waves) & set(skipped))
    if not_measured:
        raise SpecError(key, f"wave(s) {not_measured} are declared not measured in survey.not_measured")
    unknown = sorted(set(var_waves) - set(waves))
    if unknown:
        raise SpecError(key, f"wave(s) {unknown} are not in survey.waves")


def _fingerprint(raw: dict) -> str:
    """sha256 of the spec's content (not its comments or layout): stage outputs record
    it so that a later stage can refuse outputs made under another version of the spec."""
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _group(name: str, body: Any, variables: dict[str, Variable], background: dict) -> Group:
    key = f"groups.{name}"
    body = _mapping(body, key)
    if name == ALL_RESIDENTS:
        _only_keys(body, key, required=("label",))
        return Group(name, _text(body["label"], f"{key}.label"), None)
    _only_keys(body, key, required=("label", "when"))
    return Group(name, _text(body["label"], f"{key}.label"), _condition(body["when"], f"{key}.when", variables, background))


def _condition(raw: Any, key: str, variables: dict[str, Variable], background: dict) -> Condition:
    clauses = []
    for var, codes in _mapping(raw, key, non_empty=True).items():
        if var in variables:
            known = variables[var].codes
        elif var in background:
            known = background[var].codes
        else:
            raise SpecError(f"{key}.{var}", "unknown variable")
        code_list = _int_list(codes, f"{key}.{var}", non_empty=True)
        unknown = sorted(set(code_list) - set(known))
        if unknown:
            raise SpecError(f"{key}.{var}", f"code(s) {unknown} are not answer codes of '{var}'")
        clauses.append((var, tuple(code_list)))
    return Condition(tuple(clauses))


def _check_routing(groups: dict[str, Group], variables: dict[str, Variable]) -> None:
    """Routing must be acyclic and a question cannot be asked in a wave its filter was not."""

    def chain(group: str, seen: tuple[str, ...]) -> None:
        if group in seen:
            raise SpecError(f"groups.{group}", f"routing cycle: {' -> '.join((*seen, group))}")
        when = groups[group].when
        if when is None:
            return
        for var in when.variables:
            if var in variables:
                chain(variables[var].asked_of, (*seen, group))

    for name in groups:
        chain(name, ())
    for var in variables.values():
        when = groups[var.asked_of].when
        for filter_var in when.variables if when else ():
            if filter_var in variables:
                missing_waves = sorted(set(var.waves) - set(variables[filter_var].waves))
                if missing_waves:
                    raise SpecError(
                        f"variables.{var.name}.waves",
                        f"asked in wave(s) {missing_waves} where its filter question '{filter_var}' is not asked",
                    )


def _indicator(index: int, raw: Any, variables: dict[str, Variable], groups: dict[str, Group]) -> Indicator:
    body = _mapping(raw, f"indicators[{index}]")
    key = f"indicators[{index}]"
    if isinstance(body.get("id"), str):
        key = f"indicators.{body['id']}"
    _only_keys(
        body, key, required=("id", "kind", "variable", "success", "base", "dont_know", "label"), optional=("targets",)
    )
    variable = _text(body["variable"], f"{key}.variable")
    if variable not in variables:
        raise SpecError(f"{key}.variable", f"unknown variable '{variable}'")
    success = _int_list(body["success"], f"{key}.success", non_empty=True)
    unknown = sorted(set(success) - set(variables[variable].codes))
    if unknown:
        raise SpecError(f"{key}.success", f"code(s) {unknown} are not answer codes of '{variable}'")
    base = _text(body["base"], f"{key}.base")
    if base not in groups:
        raise SpecError(f"{key}.base", f"unknown group '{base}'")
    kind = _choice(body["kind"], f"{key}.kind", INDICATOR_KINDS)
    dont_know = _choice(body["dont_know"], f"{key}.dont_know", DONT_KNOW_RULES)
    targets: dict[int, str] = {}
    for year, target in _mapping(body.get("targets") or {}, f"{key}.targets").items():
        if not isinstance(year, int) or isinstance(year, bool):
            raise SpecError(f"{key}.targets.{year}", "a target year must be a whole number")
        targets[year] = _text(target, f"{key}.targets.{year}")
    return Indicator(
        id=_text(body["id"], f"{key}.id"),
        kind=kind,
        variable=variable,
        success=tuple(success),
        base=base,
        dont_know=dont_know,
        label=_text(body["label"], f"{key}.label"),
        targets=MappingProxyType(dict(sorted(targets.items()))),
    )


def _missing_codes(raw: Any, key: str) -> MissingCodes:
    body = _mapping(raw, key)
    _only_keys(body, key, required=MISSING_KINDS)
    parsed = {}
    for kind in MISSING_KINDS:
        entry = _mapping(body[kind], f"{key}.{kind}")
        _only_keys(entry, f"{key}.{kind}", required=("code", "label"))
        parsed[kind] = MissingCode(_int(entry["code"], f"{key}.{kind}.code"), _text(entry["label"], f"{key}.{kind}.label"))
    codes = [m.code for m in parsed.values()]
    if len(set(codes)) != len(codes):
        raise SpecError(key, f"the missing-value codes must differ, got {codes}")
    return MissingCodes(**parsed)


def _codes(raw: Any, key: str) -> Mapping[int, str]:
    body = _mapping(raw, key, non_empty=True)
    codes = {}
    for code, label in body.items():
        codes[_int(code, f"{key}.{code}")] = _text(label, f"{key}.{code}")
    return MappingProxyType(codes)


def _mapping(raw: Any, key: str, non_empty: bool = False) -> dict:
    if not isinstance(raw, dict):
        raise SpecError(key, f"expected a mapping, got {type(raw).__name__}")
    if non_empty and not raw:
        raise SpecError(key, "must not be empty")
    return raw


def _list(raw: Any, key: str) -> list:
    if not isinstance(raw, list) or not raw:
        raise SpecError(key, "expected a non-empty list")
    return raw


def _only_keys(body: dict, key: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    prefix = "" if key == "<root>" else f"{key}."
    missing = [k for k in required if k not in body]
    if missing:
        raise SpecError(f"{prefix}{missing[0]}", "required key is missing")
    extra = sorted(str(k) for k in body if k not in required and k not in optional)
    if extra:
        raise SpecError(f"{prefix}{extra[0]}", f"unknown key (allowed: {', '.join((*required, *optional))})")


def _text(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(key, f"expected non-empty text, got {raw!r}")
    return raw


def _int(raw: Any, key: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SpecError(key, f"expected a whole number, got {raw!r}")
    return raw


def _int_list(raw: Any, key: str, non_empty: bool = False) -> list[int]:
    if not isinstance(raw, list) or (non_empty and not raw):
        raise SpecError(key, "expected a non-empty list of whole numbers")
    values = [_int(v, f"{key}[{i}]") for i, v in enumerate(raw)]
    if len(set(values)) != len(values):
        raise SpecError(key, f"duplicate values in {values}")
    return values


def _choice(raw: Any, key: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise SpecError(key, f"must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
