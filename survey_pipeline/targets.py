"""Targets of the annual report: parse the spec's target strings and judge them.

A target string is one of
  ">80%", "<15%", ">=80%", "<=15%"   a level the proportion must exceed / stay under;
  "20%"                              a point level ("beoogd 20%");
  "toename", "afname", "stabiel"     a change versus the previous measured wave;
  "kengetal"                         a key figure: reported, no target;
or a level combined with a change, e.g. "afname <20%". Case, spaces and a
decimal comma ("17,5%") are accepted.

Judgement of one wave's estimate (CI = the published confidence interval of the
level; change CI = that of the difference with the previous wave in which the
indicator was measured, estimated with the respondent as cluster):

  ">N"   met when the CI lies above N (lower > N); not_met when it does not reach
         above N (upper <= N); otherwise indistinguishable.
  ">=N"  met when lower >= N; not_met when upper < N.
  "<N"   met when upper < N; not_met when lower >= N.  "<=N" mirrors ">=N".
  "N"    met when N lies inside the CI (the estimate is consistent with the
         intended level), not_met otherwise.
  toename / afname  the same rule as ">0" / "<0" applied to the change CI.
  stabiel  met when the change CI contains 0 (no significant change at the
         report's confidence level), not_met otherwise. This is not an
         equivalence test: a small sample is "stable" easily.
  combinations  not_met if any part is not_met, met if all parts are met,
         otherwise indistinguishable.
  kengetal -> key_figure; no target for the year -> no_target.

When a part cannot be judged (no earlier wave to compare with, or a suppressed
estimate or change), the status is "indistinguishable" and the reason is
returned, so a suppressed number never shows through its target status.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MET, NOT_MET, INDISTINGUISHABLE = "met", "not_met", "indistinguishable"
KEY_FIGURE, NO_TARGET = "key_figure", "no_target"
STATUSES = (MET, NOT_MET, INDISTINGUISHABLE, KEY_FIGURE, NO_TARGET)

DIRECTIONS = {"toename": "increase", "afname": "decrease", "stabiel": "stable"}
KEY_FIGURE_WORD = "kengetal"
_OPERATORS = {">": ">", "<": "<", ">=": ">=", "<=": "<=", "≥": ">=", "≤": "<=", "=": "=", "": "="}
_LEVEL = re.compile(r"(>=|<=|≥|≤|>|<|=)?\s*(\d+(?:[.,]\d+)?)\s*%")
_WORD = re.compile(r"[a-z]+")


class TargetSyntaxError(ValueError):
    """A target string that is not in the grammar above."""


@dataclass(frozen=True)
class Level:
    """A level target on the proportion scale: operator and value in [0, 1]."""

    op: str
    value: float


@dataclass(frozen=True)
class Target:
    """A parsed target; `direction` is increase/decrease/stable or None."""

    text: str
    key_figure: bool = False
    direction: str | None = None
    level: Level | None = None


@dataclass(frozen=True)
class Interval:
    """A point estimate with its CI (either may be NaN when not available)."""

    estimate: float
    lower: float
    upper: float

    @property
    def available(self) -> bool:
        return not any(math.isnan(x) for x in (self.estimate, self.lower, self.upper))


def parse_target(text: str) -> Target:
    """Parse one target string; raise TargetSyntaxError naming what is wrong."""
    source = text
    rest = text.strip().lower()
    if not rest:
        raise TargetSyntaxError("empty target")
    direction: str | None = None
    level: Level | None = None
    key_figure = False
    while rest:
        match = _LEVEL.match(rest)
        if match:
            if level is not None:
                raise TargetSyntaxError(f"more than one level in {source!r}")
            value = float(match.group(2).replace(",", "."))
            if not 0 <= value <= 100:
                raise TargetSyntaxError(f"level {value}% outside 0-100% in {source!r}")
            level = Level(_OPERATORS[match.group(1) or ""], value / 100.0)
        else:
            match = _WORD.match(rest)
            word = match.group(0) if match else rest.split()[0]
            if word == KEY_FIGURE_WORD:
                key_figure = True
            elif word in DIRECTIONS:
                if direction is not None:
                    raise TargetSyntaxError(f"more than one direction in {source!r}")
                direction = DIRECTIONS[word]
            else:
                allowed = ", ".join([">N%", "<N%", "N%", *DIRECTIONS, KEY_FIGURE_WORD])
                raise TargetSyntaxError(f"unknown term {word!r} in {source!r} (allowed: {allowed})")
        rest = rest[match.end() if match else len(word) :].lstrip(" \t\n,;")
    if key_figure and (direction or level):
        raise TargetSyntaxError(f"'kengetal' cannot be combined with a target in {source!r}")
    return Target(text=source.strip(), key_figure=key_figure, direction=direction, level=level)


def _judge_level(op: str, bound: float, ci: Interval) -> str:
    lower, upper = ci.lower, ci.upper
    if op == ">":
        return MET if lower > bound else NOT_MET if upper <= bound else INDISTINGUISHABLE
    if op == ">=":
        return MET if lower >= bound else NOT_MET if upper < bound else INDISTINGUISHABLE
    if op == "<":
        return MET if upper < bound else NOT_MET if lower >= bound else INDISTINGUISHABLE
    if op == "<=":
        return MET if upper <= bound else NOT_MET if lower > bound else INDISTINGUISHABLE
    return MET if lower <= bound <= upper else NOT_MET


_DIRECTION_RULES = {"increase": ">", "decrease": "<"}


def evaluate(
    target: Target | None,
    level: Interval | None,
    change: Interval | None,
    *,
    level_reason: str = "estimate_unavailable",
    change_reason: str = "no_previous_wave",
) -> tuple[str, str]:
    """(status, reason) of one estimate against its target; reason is "" when judged.

    `level` is the wave's estimate and CI, `change` the change versus the previous
    wave with its CI; pass None (or NaN values) when not available, with the
    reason to report.
    """
    if target is None:
        return NO_TARGET, ""
    if target.key_figure:
        return KEY_FIGURE, ""
    parts: list[str] = []
    reasons: list[str] = []
    if target.level is not None:
        if level is None or not level.available:
            parts.append(INDISTINGUISHABLE)
            reasons.append(level_reason)
        else:
            parts.append(_judge_level(target.level.op, target.level.value, level))
    if target.direction is not None:
        if change is None or not change.available:
            parts.append(INDISTINGUISHABLE)
            reasons.append(change_reason)
        elif target.direction == "stable":
            parts.append(_judge_level("=", 0.0, change))
        else:
            parts.append(_judge_level(_DIRECTION_RULES[target.direction], 0.0, change))
    if NOT_MET in parts:
        status = NOT_MET
    elif all(part == MET for part in parts):
        status = MET
    else:
        status = INDISTINGUISHABLE
    return status, ";".join(f"target_not_evaluable:{r}" for r in reasons)
