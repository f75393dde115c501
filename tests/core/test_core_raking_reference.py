"""Raked weights against R survey's rake() (maxit = 100, epsilon = 1e-10): 1e-8 relative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from r_reference import RTOL_WEIGHTS, margins_from_json, reference, reference_data

from survey_pipeline import SurveyDesign
from survey_pipeline.core.calibration import rake_weights

RAKING = reference("raking")["raking"]


def _case(case_id: str):
    case = RAKING[case_id]
    df = reference_data(case["data"], case["filter"])
    base = np.ones(len(df)) if case["weights"] is None else df[case["weights"]].to_numpy(float)
    margins = margins_from_json(case["margins"])
    expected = np.array([float(v) for v in case["weights_r"]])
    return df, base, margins, expected


@pytest.mark.parametrize("case_id", list(RAKING))
def test_rake_weights_match_r(case_id: str) -> None:
    df, base, margins, expected = _case(case_id)
    coded = []
    for var, totals in margins.items():
        codes = pd.Index(list(totals)).get_indexer(df[var].to_numpy())
        coded.append((codes, np.array(list(totals.values()), dtype=float)))
    result = rake_weights(base, coded, max_iter=100, tol=1e-10)
    assert result.converged
    np.testing.assert_allclose(result.weights, expected, rtol=RTOL_WEIGHTS, atol=0)
    assert result.max_abs_error < 1e-6 * sum(coded[0][1])


@pytest.mark.parametrize("case_id", list(RAKING))
def test_design_rake_weights_match_r(case_id: str) -> None:
    df, base, margins, expected = _case(case_id)
    df = df.assign(_w=base)
    raked = SurveyDesign(df, weights="_w").rake(margins, max_iter=100, tol=1e-10)
    np.testing.assert_allclose(raked.weights, expected, rtol=RTOL_WEIGHTS, atol=0)
    assert raked.calibration.converged


def test_reference_has_unequal_base_weights() -> None:
    _, base, _, _ = _case("panel2020_unequal_base")
    assert base.std() > 0.3
