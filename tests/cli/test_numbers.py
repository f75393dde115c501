"""Strict parsing of numbers written in input files (`survey_pipeline.numbers`)."""

from __future__ import annotations

import pytest

from survey_pipeline.errors import InputError
from survey_pipeline.numbers import number_problem, parse_whole_number, whole_number_column

WHERE = {"file": "margins.csv", "row": 7, "column": "count", "rule": "population_file"}


@pytest.mark.parametrize("text", ["0", "75826", "-1", "007"])
def test_whole_numbers_are_digits_with_an_optional_minus(text):
    assert parse_whole_number(text, **WHERE) == int(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("75.826", "thousands separator or decimal mark"),
        ("75,826", "thousands separator or decimal mark"),
        ("1.234.567", "thousands separator or decimal mark"),
        ("1,234,567", "thousands separator or decimal mark"),
        ("7,5e3", "a comma in a whole number"),
        ("7,5", "a comma in a whole number"),
        (" 12 ", "spaces around the value"),
        ("12 ", "spaces around the value"),
        ("", "empty value"),
        ("  ", "empty value"),
        ("NaN", "not a finite number"),
        ("inf", "not a finite number"),
        ("true", "a yes/no value"),
        ("+12", "a leading '+'"),
        ("75826.0", "not a whole number"),
        ("7.5e3", "not a whole number"),
        ("1e3", "not a whole number"),
        ("veel", "not a whole number"),
        ("1.234,5", "a comma in a whole number"),
        ("9" * 20, "too large a number"),
    ],
)
def test_anything_else_is_an_error_naming_file_row_and_column(text, problem):
    with pytest.raises(InputError) as caught:
        parse_whole_number(text, **WHERE)
    error = caught.value
    assert (error.file, error.row, error.column, error.rule) == ("margins.csv", 7, "count", "population_file")
    assert problem in error.message and repr(text) in error.message
    assert str(error).startswith("margins.csv, row 7, column 'count', rule 'population_file': ")


def test_a_minimum():
    assert parse_whole_number("0", **WHERE, minimum=0) == 0
    with pytest.raises(InputError, match="expected a whole number >= 0, got '-3'"):
        parse_whole_number("-3", **WHERE, minimum=0)


def test_real_numbers_for_hints():
    for text in ("0.5", "1.0e-10", "1e-10", "-3", ".5"):
        assert number_problem(text, whole=False) is None
    assert number_problem("0,5", whole=False) == "a comma in a number: write digits only, with '.' as the decimal point"
    assert number_problem("nan", whole=False) == "not a finite number (expected a number)"


def test_a_column_names_the_row_of_its_first_bad_value():
    assert whole_number_column(["1", "2"], file="f.csv", column="wave", rule="r", first_row=2).tolist() == [1, 2]
    with pytest.raises(InputError) as caught:
        whole_number_column(["1", "2", "3.000"], file="f.csv", column="wave", rule="r", first_row=2)
    assert caught.value.row == 4
