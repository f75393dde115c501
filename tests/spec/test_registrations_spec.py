"""Registration figures in the spec: declared with unit, kind, source and targets; cross-references checked."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from survey_pipeline.errors import SpecError
from survey_pipeline.spec import load_spec, parse_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "questionnaires" / "wij_monitor.yaml"


@pytest.fixture(scope="module")
def raw_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_the_real_spec_declares_the_seed_registrations():
    spec = load_spec(SPEC_PATH)
    entree = spec.registration("entree_requests")
    assert (entree.unit, entree.kind, entree.label) == (
        "count",
        "kengetal",
        "Aantal geregistreerde meldingen entree WIJ-Groningen",
    )
    assert spec.registration("entree_own_network").unit == "percentage"
    assert spec.registration("entree_own_network").targets[2023] == ">40%"
    assert entree.source
    with pytest.raises(KeyError):
        spec.registration("heard")  # a survey indicator, not a registration


def test_registrations_are_optional(raw_spec):
    raw = copy.deepcopy(raw_spec)
    ids = {r["id"] for r in raw.pop("registrations")}
    for section in raw["report_layout"]["sections"]:  # the layout places every figure: drop theirs too
        section["rows"] = [
            row for row in section["rows"] if (row if isinstance(row, str) else row["members"][0]) not in ids
        ]
    assert parse_spec(raw).registrations == ()
    assert parse_spec(raw).registration_ids == frozenset()
    assert load_spec(SPEC_PATH).registration_ids == ids  # what the report tells apart from survey indicators


def _first(raw: dict) -> dict:
    return raw["registrations"][0]


REJECTIONS = [
    (lambda r: _first(r).update(unit="aantal"), "registrations.entree_requests.unit", "must be one of"),
    (lambda r: _first(r).pop("source"), "registrations.entree_requests.source", "required key is missing"),
    (lambda r: _first(r).update(kind="x"), "registrations.entree_requests.kind", "must be one of"),
    (lambda r: _first(r).update(colour="red"), "registrations.entree_requests.colour", "unknown key"),
    (
        lambda r: _first(r).update(targets={2023: "meer"}),
        "registrations.entree_requests.targets.2023",
        "unknown term 'meer'",
    ),
    (
        lambda r: _first(r).update(targets={2023: ">40%"}),
        "registrations.entree_requests.targets.2023",
        "needs unit 'percentage'",
    ),
    (lambda r: _first(r).update(id="heard"), "registrations.heard.id", "also a survey indicator id"),
    (
        lambda r: r["registrations"][1].update(id="entree_requests"),
        "registrations.entree_requests.id",
        "duplicate registration id",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "problem"), REJECTIONS)
def test_malformed_registration_is_one_error_naming_the_key(raw_spec, mutate, key, problem):
    raw = copy.deepcopy(raw_spec)
    mutate(raw)
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert caught.value.key == key
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_count_may_have_a_direction_target(raw_spec):
    raw = copy.deepcopy(raw_spec)
    _first(raw).update(targets={2021: "toename", 2022: "kengetal"})
    assert parse_spec(raw).registration("entree_requests").targets[2021] == "toename"


def test_each_short_label_of_the_demo_spec_repeats_the_words_of_its_label():
    """A bullet under a stem (short_label) and the full label elsewhere (targets, changes, method note)
    must name the same thing; only the stem and the first letter's case differ."""
    spec = load_spec(SPEC_PATH)
    differing = [
        ind.id for ind in spec.indicators if ind.short_label and ind.short_label.lower() not in ind.label.lower()
    ]
    assert differing == []
