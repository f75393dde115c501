"""The typed readers of params.yaml sections (`survey_pipeline.params.SectionReader`)."""

from __future__ import annotations

import math

import pytest

from survey_pipeline.errors import ParamsError
from survey_pipeline.params import REQUIRED, SectionReader


def _reader(**section) -> SectionReader:
    return SectionReader(section, "stage", ["a", "b"])


def _rejects(read, key: str = "stage.a", match: str | None = None) -> ParamsError:
    with pytest.raises(ParamsError, match=match) as info:
        read()
    assert info.value.key == key
    return info.value


def test_section_must_be_a_mapping_of_known_keys():
    assert SectionReader({}, "stage", ["a"]).section == {}
    _rejects(lambda: SectionReader(None, "stage", ["a"]), key="stage", match="expected a mapping")
    _rejects(lambda: SectionReader([1], "stage", ["a"]), key="stage")
    _rejects(lambda: SectionReader({"a": 1, "zz": 2, "c": 3}, "stage", ["b", "a"]), key="stage.c",
             match=r"unknown key \(known: a, b\)")
    _rejects(lambda: SectionReader({1: "x"}, "stage", ["a"]), key="stage.1")


def test_error_names_prefix_and_key():
    error = _reader().error("a", "too odd")
    assert error.key == "stage.a" and "too odd" in str(error)


def test_choice():
    assert _reader(a="x").choice("a", ("x", "y"), "y") == "x"
    assert _reader().choice("a", ("x", "y"), "y") == "y"
    _rejects(lambda: _reader(a="z").choice("a", ("x", "y"), "y"), match="must be one of x, y, got 'z'")
    _rejects(lambda: _reader(a=None).choice("a", ("x", "y"), "y"))
    _rejects(lambda: _reader().choice("a", ("x", "y")))


def test_choices_drop_repeats_and_need_one():
    assert _reader(a=["y", "x", "y"]).choices("a", ("x", "y")) == ("y", "x")
    assert _reader().choices("a", ("x", "y"), ["x"]) == ("x",)
    for bad in ([], ["z"], "x", None):
        _rejects(lambda bad=bad: _reader(a=bad).choices("a", ("x", "y"), ["x"]), match="non-empty list from x, y")
    _rejects(lambda: _reader().choices("a", ("x", "y")), match="missing")


def test_text():
    assert _reader(a="data/raw").text("a") == "data/raw"
    assert _reader().text("a", "default") == "default"
    for bad in ("", "   ", 3, None, ["x"]):
        _rejects(lambda bad=bad: _reader(a=bad).text("a", what="a folder"), match="expected a folder, got")
    _rejects(lambda: _reader().text("a", what="a folder"), match=r"missing \(expected a folder\)")


def test_text_with_default_none_is_optional():
    assert _reader().text("a", None) is None
    assert _reader(a=None).text("a", None) is None
    for bad in ("", 5, ["x"]):
        _rejects(lambda bad=bad: _reader(a=bad).text("a", None))


@pytest.mark.parametrize(("bounds", "inside", "outside"), [
    ("[]", [0, 0.5, 1, 1.0], [-0.1, 1.01]),
    ("()", [1e-10, 0.5, 0.999], [0, 1, 0.0]),
    ("[)", [0, 0.5], [1, -1e-9]),
    ("(]", [0.5, 1], [0]),
])
def test_number_bounds(bounds, inside, outside):
    for value in inside:
        parsed = _reader(a=value).number("a", 0.5, 0, 1, bounds)
        assert parsed == value and isinstance(parsed, float)
    for value in outside:
        _rejects(lambda value=value: _reader(a=value).number("a", 0.5, 0, 1, bounds),
                 match=rf"expected a number in \{bounds[0]}0, 1\{bounds[1]}, got")


def test_number_types_and_defaults():
    assert _reader().number("a", 0.25, 0, 1) == 0.25
    assert _reader(a=7).number("a", 1, 0, math.inf, "[)") == 7.0
    for bad in (True, "0.5", None, math.nan, [0.5]):
        _rejects(lambda bad=bad: _reader(a=bad).number("a", 0.5, 0, 1))
    _rejects(lambda: _reader(a=math.inf).number("a", 1, 0, math.inf, "[)"), match=r"in \[0, inf\), got inf")
    _rejects(lambda: _reader(a=math.inf).number("a", 1, 0, math.inf, "[]"), match=r"in \[0, inf\], got inf")
    _rejects(lambda: _reader(a=2).number("a", 0.5, 0, 1, what="a share"), match="expected a share in")
    _rejects(lambda: _reader().number("a", REQUIRED, 0, 1), match="missing")


@pytest.mark.parametrize("text", ["1e-10", "1.0e2", "0.5", " 0.5"])
def test_a_number_yaml_read_as_text_is_an_error_with_a_hint(text):
    _rejects(lambda: _reader(a=text).number("a", 0.5, 0, 1),
             match=rf"got '{text}' \(YAML read it as text: remove any quotes; write an exponent with a decimal point and a sign")


def test_number_with_default_none_is_optional():
    assert _reader().number("a", None, 1, math.inf, "()") is None
    assert _reader(a=None).number("a", None, 1, math.inf, "()") is None
    assert _reader(a=5).number("a", None, 1, math.inf, "()") == 5.0
    _rejects(lambda: _reader(a=1).number("a", None, 1, math.inf, "()"))
    _rejects(lambda: _reader(a="5").number("a", None, 1, math.inf, "()"))


def test_whole_number():
    assert _reader(a=3).whole_number("a", 0, 0, 3) == 3
    assert _reader().whole_number("a", 100, 1) == 100
    assert _reader(a=10**6).whole_number("a", 100, 1) == 10**6
    _rejects(lambda: _reader(a=0).whole_number("a", 100, 1), match="expected a whole number >= 1, got 0")
    _rejects(lambda: _reader(a=4).whole_number("a", 0, 0, 3), match="expected a whole number from 0 to 3, got 4")
    for bad in (2.0, True, "2", None, -1):
        _rejects(lambda bad=bad: _reader(a=bad).whole_number("a", 0, 0, 3))


def test_names():
    assert _reader(a=["sex", "wijk"]).names("a") == ("sex", "wijk")
    assert _reader(a=[]).names("a") == ()
    assert _reader().names("a", ["wijk"]) == ("wijk",)
    _rejects(lambda: _reader(a=[]).names("a", non_empty=True), match="expected a non-empty list of names, got")
    _rejects(lambda: _reader(a=["sex", "sex"]).names("a"), match="'sex' is listed twice")
    for bad in ("sex", ["sex", 1], None, [["sex"]]):
        _rejects(lambda bad=bad: _reader(a=bad).names("a", ["wijk"]), match="expected a list of names")
    _rejects(lambda: _reader().names("a"), match="missing")


def test_names_with_default_none_are_optional():
    assert _reader().names("a", None, non_empty=True) is None
    assert _reader(a=None).names("a", None, non_empty=True) is None
    _rejects(lambda: _reader(a=[]).names("a", None, non_empty=True))


def test_whole_numbers():
    assert _reader(a=[2019, 2020]).whole_numbers("a", non_empty=True) == (2019, 2020)
    assert _reader(a=[]).whole_numbers("a") == ()
    _rejects(lambda: _reader(a=[]).whole_numbers("a", non_empty=True), match="non-empty list of whole numbers")
    _rejects(lambda: _reader(a=[2019, 2019]).whole_numbers("a"), match="2019 is listed twice")
    for bad in (["2019"], [2019.0], [True], 2019, None):
        _rejects(lambda bad=bad: _reader(a=bad).whole_numbers("a"), match="list of whole numbers")
    _rejects(lambda: _reader().whole_numbers("a"), match="missing")
