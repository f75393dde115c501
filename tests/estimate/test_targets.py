"""Target strings of the spec: parsing and the met / not met / indistinguishable rule."""

from __future__ import annotations

import math

import pytest

from survey_pipeline.targets import (
    INDISTINGUISHABLE,
    KEY_FIGURE,
    MET,
    NO_TARGET,
    NOT_MET,
    Interval,
    Level,
    TargetSyntaxError,
    evaluate,
    parse_target,
)


@pytest.mark.parametrize(
    ("text", "key_figure", "direction", "level"),
    [
        (">80%", False, None, Level(">", 0.80)),
        ("> 70%", False, None, Level(">", 0.70)),
        ("<15%", False, None, Level("<", 0.15)),
        (">=85 %", False, None, Level(">=", 0.85)),
        ("≤17,5%", False, None, Level("<=", 0.175)),
        ("20%", False, None, Level("=", 0.20)),
        ("toename", False, "increase", None),
        ("Afname", False, "decrease", None),
        ("stabiel", False, "stable", None),
        ("Kengetal", True, None, None),
        ("afname <20%", False, "decrease", Level("<", 0.20)),
        ("Afname\n<20%", False, "decrease", Level("<", 0.20)),
        ("toename, >75%", False, "increase", Level(">", 0.75)),
    ],
)
def test_parse(text, key_figure, direction, level):
    target = parse_target(text)
    assert (target.key_figure, target.direction, target.level) == (key_figure, direction, level)


@pytest.mark.parametrize(
    "text", ["", "  ", "meer", ">80", "80% 90%", "toename afname", "kengetal >20%", "120%", ">80%!"]
)
def test_parse_rejects(text):
    with pytest.raises(TargetSyntaxError):
        parse_target(text)


def test_every_target_in_the_spec_parses(spec):
    for indicator in spec.indicators:
        for text in indicator.targets.values():
            parse_target(text)


CI = Interval


@pytest.mark.parametrize(
    ("text", "level", "status"),
    [
        (">80%", CI(0.85, 0.81, 0.89), MET),
        (">80%", CI(0.82, 0.79, 0.85), INDISTINGUISHABLE),
        (">80%", CI(0.75, 0.72, 0.78), NOT_MET),
        (">80%", CI(0.78, 0.76, 0.80), NOT_MET),  # upper bound exactly at 80%: not above it
        (">=80%", CI(0.82, 0.80, 0.84), MET),
        ("<15%", CI(0.10, 0.08, 0.12), MET),
        ("<15%", CI(0.14, 0.12, 0.16), INDISTINGUISHABLE),
        ("<15%", CI(0.20, 0.15, 0.25), NOT_MET),
        ("20%", CI(0.18, 0.16, 0.21), MET),
        ("20%", CI(0.18, 0.16, 0.19), NOT_MET),
    ],
)
def test_level_targets(text, level, status):
    assert evaluate(parse_target(text), level, None) == (status, "")


@pytest.mark.parametrize(
    ("text", "change", "status"),
    [
        ("toename", CI(0.04, 0.01, 0.07), MET),
        ("toename", CI(0.02, -0.01, 0.05), INDISTINGUISHABLE),
        ("toename", CI(-0.04, -0.07, -0.01), NOT_MET),
        ("afname", CI(-0.04, -0.07, -0.01), MET),
        ("afname", CI(0.04, 0.01, 0.07), NOT_MET),
        ("stabiel", CI(0.01, -0.02, 0.04), MET),
        ("stabiel", CI(0.04, 0.01, 0.07), NOT_MET),
    ],
)
def test_change_targets(text, change, status):
    assert evaluate(parse_target(text), CI(0.5, 0.4, 0.6), change) == (status, "")


def test_combination_needs_every_part():
    target = parse_target("afname <20%")
    falling = CI(-0.05, -0.08, -0.02)
    assert evaluate(target, CI(0.15, 0.12, 0.18), falling)[0] == MET
    assert evaluate(target, CI(0.19, 0.17, 0.22), falling)[0] == INDISTINGUISHABLE
    assert evaluate(target, CI(0.15, 0.12, 0.18), CI(0.03, 0.01, 0.05))[0] == NOT_MET
    assert evaluate(target, CI(0.25, 0.22, 0.28), CI(0.01, -0.02, 0.04))[0] == NOT_MET


def test_key_figure_no_target_and_unavailable_parts():
    assert evaluate(parse_target("kengetal"), CI(0.3, 0.2, 0.4), None) == (KEY_FIGURE, "")
    assert evaluate(None, CI(0.3, 0.2, 0.4), None) == (NO_TARGET, "")
    assert evaluate(parse_target("toename"), CI(0.3, 0.2, 0.4), None) == (
        INDISTINGUISHABLE,
        "target_not_evaluable:no_previous_wave",
    )
    nan = CI(math.nan, math.nan, math.nan)
    assert evaluate(parse_target(">80%"), nan, None, level_reason="suppressed") == (
        INDISTINGUISHABLE,
        "target_not_evaluable:suppressed",
    )
