"""The weight stage's trimming against the same rule rebuilt from R survey's rake().

`tests/reference/trimming.json` (made by `tests/reference/r/make_trim_reference.R` from
`tests/reference/data/panel.csv`) holds, per case, the weights R reaches by raking,
capping at [trim_lower, trim_upper] x mean weight and raking again until the bounds
and the margins hold, with the number of rounds and of capped rows. `weight_wave`
with the same params must publish those weights (1e-8 relative), rounds and counts,
and must stop with the stage's error where R's loop does not settle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline.core.calibration import trim_weights
from survey_pipeline.errors import InputError
from survey_pipeline.settings import WeightSettings, parse_section
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.weight.stage import Population, weight_wave

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"
RTOL_WEIGHTS = 1e-8
TRIMMING = json.loads((REFERENCE / "trimming.json").read_text(encoding="utf-8"))
CASES = TRIMMING["trimming"]


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


def _wave_inputs(case: dict, spec) -> tuple[pd.DataFrame, int, Population]:
    (wave,) = case["filter"]["wave"]
    data = pd.read_csv(REFERENCE / "data" / f"{case['data']}.csv")
    data = data[data["wave"] == wave].reset_index(drop=True)
    frame = data[["resp_id", "wave", "age_group", "sex", "wijk"]].astype("float64")
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
    frame.insert(0, "source_file", "panel.csv")
    if case["weights"] is not None:
        frame["base_weight"] = data[case["weights"]].to_numpy(float)
    rows = [
        (wave, variable, int(code), spec.background[variable].codes[int(code)], float(total))
        for variable, pairs in case["margins"].items()
        for code, total in pairs
    ]
    margins = pd.DataFrame(rows, columns=["wave", "variable", "code", "label", "count"])
    return frame, wave, Population(margins=margins)


def _params(case: dict) -> WeightSettings:
    return parse_section(
        WeightSettings,
        {
            "method": "rake",
            "margins": list(case["margins"]),
            "population_file": "margins.csv",
            "max_iter": 100,
            "tol": 1e-10,
            "trim_lower": case["trim_lower"],
            "trim_upper": case["trim_upper"],
            "trim_max_rounds": case["max_rounds"],
            "base_weight": "require" if case["weights"] is not None else "ignore",
        },
        "weight",
    )


CONVERGED = [case_id for case_id, case in CASES.items() if case["converged"]]


@pytest.mark.parametrize("case_id", CONVERGED)
def test_weight_stage_trims_like_r(spec, case_id):
    case = CASES[case_id]
    frame, wave, population = _wave_inputs(case, spec)
    result = weight_wave(frame, wave, _params(case), population, spec)

    expected = np.array([float(v) for v in case["weights_r"]])
    assert result.weights.size == expected.size == len(frame)
    np.testing.assert_allclose(result.weights, expected, rtol=RTOL_WEIGHTS, atol=0, err_msg=case["r_call"])
    assert result.diagnostics["trim_rounds"] == case["rounds"]
    assert result.diagnostics["n_trimmed"] == case["n_trimmed"]
    ratio = result.weights / result.weights.mean()
    bound_tol = TRIMMING["meta"]["bound_tol"]
    assert ratio.min() >= (case["trim_lower"] or 0) * (1 - bound_tol)
    assert ratio.max() <= (case["trim_upper"] or np.inf) * (1 + bound_tol)


@pytest.mark.parametrize("case_id", [c for c in CASES if not CASES[c]["converged"]])
def test_weight_stage_stops_where_r_loop_does_not_settle(spec, case_id):
    case = CASES[case_id]
    frame, wave, population = _wave_inputs(case, spec)
    with pytest.raises(InputError, match=f"trimming bounds are too tight.*after {case['rounds']} rounds"):
        weight_wave(frame, wave, _params(case), population, spec)


def test_reference_covers_the_rule():
    """Both bounds, one bound each, equal and unequal base weights, margins in another
    order, several rounds, and a case R's loop does not settle."""
    assert len(CONVERGED) >= 4 and len(CASES) > len(CONVERGED)
    assert all(CASES[c]["rounds"] >= 2 for c in CONVERGED)
    assert any(CASES[c]["trim_lower"] is None for c in CONVERGED)
    assert any(CASES[c]["trim_upper"] is None for c in CONVERGED)
    assert any(CASES[c]["weights"] is None for c in CONVERGED)
    assert TRIMMING["meta"]["survey_version"] == "4.1.1"


def test_core_trim_weights_needs_the_rounds_r_needs():
    """One round fewer than R needed leaves the core unconverged: the count is part of the rule."""
    case = CASES["panel2020_both_bounds"]
    data = pd.read_csv(REFERENCE / "data" / "panel.csv")
    data = data[data["wave"] == 2020].reset_index(drop=True)
    expected = np.array([float(v) for v in case["weights_r"]])
    margins = []
    for variable, pairs in case["margins"].items():
        codes = [code for code, _ in pairs]
        margins.append((pd.Index(codes).get_indexer(data[variable]), np.array([t for _, t in pairs], float)))
    start = data["w"].to_numpy(float)  # R's raked, untrimmed weights (make_reference.R)
    short = trim_weights(start, 0.3, 3.0, margins, max_rounds=case["rounds"] - 1, tol=1e-10)
    full = trim_weights(start, 0.3, 3.0, margins, max_rounds=case["rounds"], tol=1e-10)
    assert not short.converged and full.converged and full.rounds == case["rounds"]
    np.testing.assert_allclose(full.weights, expected, rtol=RTOL_WEIGHTS, atol=0)
