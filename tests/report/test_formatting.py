"""Dutch number formatting as printed in the annual report."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from survey_pipeline import workbook
from survey_pipeline.stages.report import formatting as fmt


@pytest.mark.parametrize(
    ("share", "decimals", "text"),
    [
        (0.78, 0, "78%"),
        (0.457, 1, "45,7%"),
        (0.4567, 1, "45,7%"),
        (0.785, 0, "79%"),
        (0.745, 0, "75%"),
        (0.0049, 0, "0%"),
        (0.005, 0, "1%"),
        (1.0, 0, "100%"),
        (0.12345, 2, "12,35%"),
        (math.nan, 0, "-"),
    ],
)
def test_percent(share, decimals, text):
    assert fmt.format_percent(share, decimals) == text


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (39940, 0, "39.940"),
        (1234567.891, 2, "1.234.567,89"),
        (13681, 0, "13.681"),
        (12.25, 1, "12,3"),
        (-1500, 0, "-1.500"),
    ],
)
def test_number(value, decimals, text):
    assert fmt.format_number(value, decimals) == text


def test_points_and_p_values():
    assert fmt.format_points(0.0321) == "+3,2"
    assert fmt.format_points(-0.0321) == "-3,2"
    assert fmt.format_points(0.00001) == "0,0"
    assert fmt.format_p_value(0.0004) == "<0,001"
    assert fmt.format_p_value(0.0345) == "0,035"


def test_targets_get_a_decimal_comma():
    assert fmt.dutch_target(">45.5%") == ">45,5%"
    assert fmt.dutch_target("afname <20%") == "afname <20%"


@given(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=2))
def test_printed_percent_is_within_half_a_unit_of_the_share(share, decimals):
    text = fmt.format_percent(share, decimals)
    printed = float(text.rstrip("%").replace(".", "").replace(",", "."))
    assert abs(printed - share * 100) <= 0.5 * 10**-decimals + 1e-9


def test_excel_percent_formats():
    assert workbook.percent_excel_format(0) == "0%"
    assert workbook.percent_excel_format(1) == "0.0%"
