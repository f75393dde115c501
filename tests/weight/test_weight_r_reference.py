"""The weight stage's raking (params, margins file layout, base_weight column) against R's rake().

`tests/reference/raking.json` holds weights from R survey's `rake()` (maxit = 100,
epsilon = 1e-10), made by `tests/reference/r/make_reference.R` from
`tests/reference/data/panel.csv`. The core is compared with them in tests/core;
here the same numbers must come out of `weight_wave`, which builds the margins from
a margins table and starts from the `base_weight` column: 1e-8 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline.settings import WeightSettings
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.weight.stage import Population, weight_wave

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"
RTOL_WEIGHTS = 1e-8
CASES = ("panel2020_unequal_base", "panel2020_equal_base_other_order")


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def raking():
    return json.loads((REFERENCE / "raking.json").read_text(encoding="utf-8"))["raking"]


def _margins_table(case: dict, wave: int, spec) -> pd.DataFrame:
    rows = [
        (wave, variable, int(code), spec.background[variable].codes[int(code)], float(total))
        for variable, pairs in case["margins"].items()
        for code, total in pairs
    ]
    return pd.DataFrame(rows, columns=["wave", "variable", "code", "label", "count"])


@pytest.mark.parametrize("case_id", CASES)
def test_weight_stage_rakes_like_r(spec, raking, case_id):
    case = raking[case_id]
    assert case["r_call"].startswith("weights(rake(") and "epsilon = 1e-10" in case["r_call"]
    (wave,) = case["filter"]["wave"]
    data = pd.read_csv(REFERENCE / "data" / f"{case['data']}.csv")
    data = data[data["wave"] == wave].reset_index(drop=True)
    frame = data[["resp_id", "wave", "age_group", "sex", "wijk"]].astype("float64")
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
    frame.insert(0, "source_file", "panel.csv")
    if case["weights"] is not None:
        frame["base_weight"] = data[case["weights"]].to_numpy(float)
    params = WeightSettings.model_validate(
        {
            "method": "rake",
            "margins": list(case["margins"]),
            "population_file": "margins.csv",
            "max_iter": 100,
            "tol": 1e-10,
            "trim_lower": None,
            "trim_upper": None,
            "base_weight": "require" if case["weights"] is not None else "ignore",
        }
    )
    population = Population(margins=_margins_table(case, wave, spec))
    result = weight_wave(frame, wave, params, population, spec)

    expected = np.array([float(v) for v in case["weights_r"]])
    assert result.included.all() and result.weights.size == expected.size == len(frame)
    np.testing.assert_allclose(result.weights, expected, rtol=RTOL_WEIGHTS, atol=0)
    assert result.diagnostics["base_weights_used"] is (case["weights"] is not None)
    assert result.diagnostics["sum_weights"] == pytest.approx(expected.sum(), rel=1e-12)


def test_the_reference_has_unequal_base_weights(raking):
    data = pd.read_csv(REFERENCE / "data" / "panel.csv")
    w0 = data.loc[data["wave"] == 2020, raking["panel2020_unequal_base"]["weights"]]
    assert w0.std() / w0.mean() > 0.3
