"""The weight stage's margin contract against what R's rake() does on the same inputs.

`tests/reference/rake_contract.json` is made by
`tests/reference/r/make_rake_contract_reference.R` from `tests/reference/data/rake_contract.csv`:
per case R's call, whether rake() converged (it only warns when it does not), the weighted
total it reached for every margin category, and its weights. Where R meets every margin, our
weights equal R's (1e-8 relative); where R does not converge, misses a margin or stops with
an error, the stage refuses (InputError) and names the cause. R "converges" on the
infeasible case and returns weights that miss a margin by half: the loop stopping is not
the contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline.core.calibration import rake_weights
from survey_pipeline.errors import InputError
from survey_pipeline.settings import WeightSettings
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.weight.stage import Population, weight_wave

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"
RTOL_WEIGHTS = 1e-8
WAVE = 2020
CASES = json.loads((REFERENCE / "rake_contract.json").read_text(encoding="utf-8"))["cases"]
EXPECTED_CAUSE = {
    "feasible_maxit_2": "not converged",
    "conflict": "infeasible",
    "empty_category": "no respondents in the sample",
}


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


def _inputs(case: dict, spec) -> tuple[pd.DataFrame, WeightSettings, Population]:
    data = pd.read_csv(REFERENCE / "data" / "rake_contract.csv")
    data = data[data["sample"] == case["sample"]].reset_index(drop=True)
    frame = data[["resp_id", "age_group", "sex", "wijk"]].astype("float64")
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
    frame.insert(0, "source_file", "rake_contract.csv")
    frame["wave"] = float(WAVE)
    frame["base_weight"] = data[case["weights"]].to_numpy(float)
    params = WeightSettings.model_validate(
        {
            "method": "rake",
            "margins": list(case["margins"]),
            "population_file": "margins.csv",
            "max_iter": case["max_iter"],
            "tol": case["tol"],
            "trim_lower": None,
            "trim_upper": None,
            "base_weight": "require",
        }
    )
    rows = [
        (WAVE, variable, int(code), spec.background[variable].codes[int(code)], float(total))
        for variable, pairs in case["margins"].items()
        for code, total in pairs
    ]
    margins = pd.DataFrame(rows, columns=["wave", "variable", "code", "label", "count"])
    return frame, params, Population(margins=margins)


def _r_meets_every_margin(case: dict, tolerance: float) -> bool:
    """From R's achieved totals, not from our code: every category within `tolerance`."""
    if case["r_status"] == "error":
        return False
    for variable, pairs in case["margins"].items():
        achieved = {int(code): float(total) for code, total in case["r_achieved"][variable]}
        for code, target in pairs:
            if abs(achieved.get(int(code), 0.0) - target) > tolerance * target:
                return False
    return True


def test_the_reference_has_cases_r_meets_and_cases_it_misses_silently():
    tolerance = WeightSettings.model_validate({"margins": ["sex"], "population_file": "m.csv"}).margin_tolerance
    met = {case_id for case_id, case in CASES.items() if _r_meets_every_margin(case, tolerance)}
    assert met == {"feasible"}
    # R reports success on the infeasible case: no warning, and age group 1 at half its population.
    conflict = CASES["conflict"]
    assert conflict["r_status"] == "converged" and conflict["r_warnings"] == []
    assert "maxit = 100, epsilon = 1e-10" in conflict["r_call"]
    assert CASES["feasible_maxit_2"]["r_status"] == "not_converged"
    assert "did not converge" in CASES["feasible_maxit_2"]["r_warnings"][0]
    assert "absent from sample" in CASES["empty_category"]["r_error"]


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_we_match_r_where_r_meets_the_margins_and_refuse_where_it_does_not(spec, case_id):
    case = CASES[case_id]
    frame, params, population = _inputs(case, spec)
    if _r_meets_every_margin(case, params.margin_tolerance):
        result = weight_wave(frame, WAVE, params, population, spec)
        expected = np.array([float(v) for v in case["weights_r"]])
        np.testing.assert_allclose(result.weights, expected, rtol=RTOL_WEIGHTS, atol=0)
        assert result.margin_deviation <= params.margin_tolerance
        return
    with pytest.raises(InputError) as caught:
        weight_wave(frame, WAVE, params, population, spec)
    message = str(caught.value)
    assert "\n" not in message and EXPECTED_CAUSE[case_id] in message
    if case["r_status"] == "error":
        return
    assert caught.value.rule == "margins_met" and "not met" in message
    # Same algorithm, same inputs: our raking reaches R's totals, so R misses the margin we name.
    codes = [frame[v].to_numpy(int) - 1 for v in case["margins"]]
    totals = [np.array([t for _, t in pairs]) for pairs in case["margins"].values()]
    ours = rake_weights(
        frame["base_weight"].to_numpy(), list(zip(codes, totals)), max_iter=case["max_iter"], tol=case["tol"]
    )
    for pairs, c in zip(case["r_achieved"].values(), codes):
        achieved = np.bincount(c, weights=ours.weights)
        np.testing.assert_allclose(achieved, [float(v) for _, v in pairs], rtol=1e-8)
    np.testing.assert_allclose(ours.weights, [float(v) for v in case["weights_r"]], rtol=RTOL_WEIGHTS)
    variable = caught.value.column
    target = dict(case["margins"][variable])
    r_totals = {int(k): float(v) for k, v in case["r_achieved"][variable]}
    named = [code for code in target if f"category {code} (" in message]
    assert len(named) == 1
    assert abs(r_totals[named[0]] - target[named[0]]) > params.margin_tolerance * target[named[0]]
    assert f"population {target[named[0]]:,.2f}, weighted {r_totals[named[0]]:,.2f}" in message
