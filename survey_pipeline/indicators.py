"""Indicator outcomes and bases derived from the questionnaire spec (pure).

Each indicator becomes a 1/0/NaN outcome column over the rows of its base group;
NaN leaves the denominator. For a respondent in the base:

- an answer in the indicator's success codes -> 1;
- any other substantive answer -> 0;
- "weet niet" -> 0 when the indicator says `dont_know: count_as_no`, else NaN;
- "geen antwoord" or a blank -> NaN (item non-response);
- "niet gevraagd" (routed past the question) -> the routing decides, see below.

A respondent in the base but routed past the question (e.g. contact of all
residents for someone who never heard of WIJ) is "not success": 0. Whether the
routing is *determined* follows the filter answers up the chain
(helped <- contact <- heard):

- a filter answered with a substantive code outside the group's codes (heard =
  "nee") determines the routing: outcome 0;
- a filter answered "weet niet" also determines it: the questionnaire treats
  that answer as outside the group and did not ask the question, so the
  respondent is "not success" (0) whatever the indicator's own `dont_know`
  rule, which governs "weet niet" to the indicator's question only. This keeps
  the chain consistent with `heard`, where "weet niet" counts as "not heard";
- a filter answered "geen antwoord" (or blank) leaves the status unknown. The
  indicator's `filter_no_answer` rule (spec) decides: `exclude` (the default)
  leaves the respondent out of the denominator (NaN), like item non-response on
  the question itself, since counting them as 0 would impute "no" for people who
  did not say; `count_as_no` counts them as 0 (not success).

A respondent whose filters put them in the question's group but who still has
"niet gevraagd" contradicts the routing; validation rejects such rows, and
here they are excluded and counted (`routing_inconsistent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey_pipeline.spec import Indicator, QuestionnaireSpec, Variable

# Membership of a row in a routing group, resolved through the filter chain.
IN, OUT, DONT_KNOW, UNKNOWN = np.int8(0), np.int8(1), np.int8(2), np.int8(3)


@dataclass(frozen=True)
class IndicatorBase:
    """The denominator of an indicator: a spec group, its condition and its Dutch text."""

    group: str
    where: Mapping[str, list[int]] | None
    text: str


@dataclass(frozen=True)
class Outcome:
    """An indicator's outcome column and how the rows of its base were classified."""

    values: np.ndarray
    counts: Mapping[str, int]


def indicator_base(spec: QuestionnaireSpec, indicator: Indicator) -> IndicatorBase:
    """The base group of `indicator` as a domain condition plus its printed text."""
    return IndicatorBase(indicator.base, group_where(spec, indicator.base), spec.base_text(indicator.base))


def group_where(spec: QuestionnaireSpec, group: str) -> dict[str, list[int]] | None:
    """A group's condition as a `where=` mapping for the design (None = everyone)."""
    when = spec.groups[group].when
    if when is None:
        return None
    return {name: list(codes) for name, codes in when.clauses}


def measured_in(spec: QuestionnaireSpec, indicator: Indicator) -> tuple[int, ...]:
    """The waves in which the indicator's question was asked."""
    return spec.variables[indicator.variable].waves


def group_status(spec: QuestionnaireSpec, group: str, frame: pd.DataFrame) -> np.ndarray:
    """Per row: IN, OUT, DONT_KNOW or UNKNOWN membership of `group`.

    Every clause of the group's condition is resolved; one definite OUT settles
    it, else an UNKNOWN clause makes the whole unknown, else a DONT_KNOW clause.
    """
    when = spec.groups[group].when
    if when is None:
        return np.full(len(frame), IN, dtype=np.int8)
    status = np.full(len(frame), IN, dtype=np.int8)
    clause_states = [_clause_status(spec, name, codes, frame) for name, codes in when.clauses]
    for state in (DONT_KNOW, UNKNOWN, OUT):
        for clause in clause_states:
            status[clause == state] = state
    return status


def _clause_status(spec: QuestionnaireSpec, name: str, codes: tuple[int, ...], frame: pd.DataFrame) -> np.ndarray:
    values = frame[name].to_numpy(dtype=float)
    inside = np.isin(values, codes)
    if name in spec.background:
        status = np.where(inside, IN, OUT).astype(np.int8)
        status[np.isnan(values)] = UNKNOWN
        return status
    variable = spec.variables[name]
    missing = variable.missing
    status = np.full(len(frame), UNKNOWN, dtype=np.int8)
    status[np.isin(values, list(variable.codes))] = OUT
    status[inside] = IN
    status[values == missing.dont_know.code] = DONT_KNOW
    routed = values == missing.not_asked.code
    if routed.any():
        parent = group_status(spec, variable.asked_of, frame)
        # Routed past the filter question itself: its group decides; a row that
        # was in the group yet not asked contradicts the routing -> unknown.
        status[routed] = np.where(parent[routed] == IN, UNKNOWN, parent[routed])
    return status


def outcome(spec: QuestionnaireSpec, indicator: Indicator, frame: pd.DataFrame) -> Outcome:
    """The indicator's 1/0/NaN column (NaN outside its base) with classification counts."""
    variable = spec.variables[indicator.variable]
    missing = variable.missing
    values = frame[indicator.variable].to_numpy(dtype=float)
    in_base = spec.groups[indicator.base].mask(frame)
    count_dk = indicator.dont_know == "count_as_no"

    result = np.full(len(frame), np.nan)
    success = np.isin(values, indicator.success)
    failure = np.isin(values, list(variable.codes)) & ~success
    dont_know = values == missing.dont_know.code
    routed = values == missing.not_asked.code
    result[success] = 1.0
    result[failure] = 0.0
    if count_dk:
        result[dont_know] = 0.0

    none = np.zeros(len(frame), dtype=bool)
    routed_no, routed_dk, routed_unknown, inconsistent = none, none, none, none
    if routed.any():
        asked = group_status(spec, variable.asked_of, frame)
        routed_no = routed & (asked == OUT)
        routed_dk = routed & (asked == DONT_KNOW)
        routed_unknown = routed & (asked == UNKNOWN)
        inconsistent = routed & (asked == IN)
        result[routed_no | routed_dk] = 0.0
        if indicator.filter_no_answer == "count_as_no":
            result[routed_unknown] = 0.0
    result[~in_base] = np.nan

    def n(mask: np.ndarray) -> int:
        return int(np.count_nonzero(mask & in_base))

    counts = {
        "base": int(np.count_nonzero(in_base)),
        "success": n(success),
        "failure": n(failure),
        "dont_know": n(dont_know),
        "no_answer": n(values == missing.no_answer.code),
        "blank": n(np.isnan(values)),
        "routed_no": n(routed_no),
        "routed_dont_know": n(routed_dk),
        "routed_unknown": n(routed_unknown),
        "routing_inconsistent": n(inconsistent),
        "other_code": n(~np.isin(values, [*variable.value_labels]) & ~np.isnan(values)),
        "used": n(~np.isnan(result)),
    }
    return Outcome(result, counts)


def outcome_column(indicator: Indicator) -> str:
    """Name of the derived outcome column of an indicator in the estimation frame."""
    return f"_y_{indicator.id}"


def add_outcomes(spec: QuestionnaireSpec, frame: pd.DataFrame, indicators=None) -> tuple[pd.DataFrame, dict]:
    """`frame` plus one outcome column per indicator; counts per indicator id."""
    columns, counts = {}, {}
    for indicator in indicators if indicators is not None else spec.indicators:
        result = outcome(spec, indicator, frame)
        columns[outcome_column(indicator)] = result.values
        counts[indicator.id] = dict(result.counts)
    return frame.assign(**columns), counts


def answer_categories(variable: Variable) -> list[tuple[float, str, str]]:
    """Every code a respondent who was asked can have: (code, label, code type)."""
    categories = [(float(code), label, "answer") for code, label in variable.codes.items()]
    categories.append((float(variable.missing.dont_know.code), variable.missing.dont_know.label, "dont_know"))
    categories.append((float(variable.missing.no_answer.code), variable.missing.no_answer.label, "no_answer"))
    return categories
