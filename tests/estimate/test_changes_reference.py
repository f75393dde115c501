"""Wave changes on a stacked overlapping panel against R survey (svyratio + svycontrast).

Reference values: tests/reference/changes.json, written by
tests/reference/r/make_change_reference.R from tests/reference/data/changes_*.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from survey_pipeline import SurveyDesign
from survey_pipeline import indicators as ind
from survey_pipeline.settings import EstimateSettings, WeightSettings
from survey_pipeline.stages.estimate import stage as est

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((ROOT / "tests" / "reference" / "changes.json").read_text(encoding="utf-8"))
WEIGHTING = WeightSettings(
    margins=("age_group", "sex", "wijk"), population_file="tests/reference/data/changes_margins.csv"
)
RTOL = 1e-7


@pytest.fixture(scope="module")
def panel(spec):
    data = pd.read_csv(ROOT / "tests" / "reference" / "data" / "changes_panel.csv")
    data = data.rename(columns={"base_weight": "weight"})
    for name in ("wijk", "age_group", "sex", "heard", "contact", "helped"):
        data[name] = data[name].astype("float64")
    return data


@pytest.fixture(scope="module")
def margins():
    # The R reference margins carry no labels; the estimate stage only needs the counts.
    return pd.read_csv(ROOT / "tests" / "reference" / "data" / "changes_margins.csv").assign(label="")


def _case_id(case):
    by = f"-{case['by']}={case['level']:g}" if case["by"] else ""
    return f"{case['indicator']}-{case['wave_from']}-{case['wave_to']}{by}-{'raked' if case['raked'] else 'plain'}"


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=_case_id)
def test_change_matches_r(spec, panel, margins, case):
    indicator = spec.indicator(case["indicator"])
    first, second = case["wave_from"], case["wave_to"]
    frames = [
        ind.add_outcomes(spec, panel[panel["wave"] == w].reset_index(drop=True), [indicator])[0]
        for w in (first, second)
    ]
    if case["raked"]:
        design = est.stacked_design(
            frames, {w: est.wave_margins(margins, w, WEIGHTING) for w in (first, second)}, WEIGHTING, spec
        )
    else:
        design = SurveyDesign(pd.concat(frames, ignore_index=True), weights="weight", cluster="resp_id")
    params = EstimateSettings(breakdowns=(case["by"],) if case["by"] else ())
    table = est.estimate_changes(spec, design, first, second, params, [indicator])
    if case["by"]:
        row = table[(table["breakdown"] == case["by"]) & (table["breakdown_code"] == case["level"])].iloc[0]
    else:
        row = table[table["breakdown"] == "total"].iloc[0]
    for field in ("estimate_from", "estimate_to", "difference", "se", "ci_lower", "ci_upper", "df", "p_value"):
        expected = case[field]["value"]
        assert row[field] == pytest.approx(expected, rel=RTOL, abs=1e-12), (field, case[field]["r"])


def test_reference_covers_overlap(panel):
    # The reference data must be a real panel: many respondents answer in two waves.
    per_respondent = panel.groupby("resp_id")["wave"].nunique()
    assert (per_respondent > 1).mean() > 0.4
