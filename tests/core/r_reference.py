"""Shared helpers for the core tests: R reference values and the data they were made from.

A module of its own, not conftest.py: the test folders have no __init__.py, so a second
`conftest` (tests/estimate has one) would shadow it when both folders are collected."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from survey_pipeline import SurveyDesign

REFERENCE = Path(__file__).resolve().parents[1] / "reference"

# Tolerances from issue 5 (relative).
RTOL_ESTIMATE = 1e-9
RTOL_SE = 1e-7
RTOL_WEIGHTS = 1e-8


def r_value(text: str) -> float:
    """R's sprintf('%.17g') output as a float (NaN, Inf included)."""
    return float(text)


@cache
def reference(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


@cache
def _raw_data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / f"{name}.csv")


def reference_data(name: str, filter_: dict | None = None) -> pd.DataFrame:
    df = _raw_data(name)
    for column, codes in (filter_ or {}).items():
        df = df[df[column].isin(codes)]
    return df.reset_index(drop=True)


def margins_from_json(margins: dict) -> dict:
    return {var: {code: total for code, total in pairs} for var, pairs in margins.items()}


def design_for_case(case: dict) -> SurveyDesign:
    """The SurveyDesign equivalent to a reference case's R design (calibration included)."""
    spec = dict(case["design_py"])
    df = reference_data(case["data"], spec.pop("filter", None))
    design = SurveyDesign(df, **spec)
    calibration = case.get("calibration")
    if calibration is None:
        return design
    if calibration["kind"] == "rake":
        return design.rake(margins_from_json(calibration["margins"]), max_iter=100, tol=1e-10)
    several = len(calibration["variables"]) > 1
    totals = {tuple(code) if several else code: total for code, total in calibration["totals"]}
    return design.poststratify(calibration["variables"], totals)


def level_key(value) -> str:
    """Domain labels as R prints them (1 not 1.0)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def assert_close(actual: float, expected: float, rtol: float, what: str, atol: float = 0.0) -> None:
    """Relative comparison; `atol` only for values R computes as rounding noise around 0."""
    if np.isnan(expected):
        assert np.isnan(actual), f"{what}: R gives NaN, got {actual!r}"
        return
    assert np.isclose(actual, expected, rtol=rtol, atol=atol) or actual == expected, (
        f"{what}: got {actual!r}, R {expected!r}, rel. diff {abs(actual / expected - 1) if expected else actual:.3g}"
    )
