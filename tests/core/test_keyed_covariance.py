"""`variance.keyed_covariance` (the chisq path without a rows x contrasts array) equals the general
`linearized_covariance` on every design kind: rows as PSUs with and without strata, raked,
post-stratified, uncalibrated, and a domain; clustered designs take the general path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import SurveyDesign
from survey_pipeline.core import variance


def _data(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "w": rng.uniform(0.5, 3.0, n),
            "a": rng.integers(1, 4, n).astype(float),
            "b": rng.integers(1, 3, n).astype(float),
            "stratum": rng.integers(1, 5, n),
            "cluster": rng.integers(1, 200, n),
        }
    )


def _designs() -> dict[str, SurveyDesign]:
    df = _data()
    margins = {"a": {1.0: 3000.0, 2.0: 4000.0, 3.0: 2500.0}, "b": {1.0: 4500.0, 2.0: 5000.0}}
    plain = SurveyDesign(df, weights="w")
    strat = SurveyDesign(df, weights="w", strata="stratum")
    return {
        "rows": plain,
        "rows_raked": plain.rake(margins),
        "rows_poststratified": plain.poststratify("a", margins["a"]),
        "strata_raked": strat.rake(margins),
        "strata": strat,
        "clusters_raked": SurveyDesign(df, weights="w", strata="stratum", cluster="cluster").rake(margins),
    }


@pytest.mark.parametrize("name", list(_designs()))
@pytest.mark.parametrize("domain", [False, True])
def test_keyed_covariance_equals_the_general_path(name: str, domain: bool) -> None:
    design = _designs()[name]
    rng = np.random.default_rng(11)
    n_keys, k = 6, 5
    key = rng.integers(0, n_keys, design.n)
    inside = rng.random(design.n) < 0.7 if domain else np.ones(design.n, dtype=bool)
    u = np.where(inside, design.weights / design.weights.sum(), 0.0)
    g = rng.normal(size=(k, n_keys))
    keyed = variance.keyed_covariance(u, key, g, inside, design._structure, design._projection)
    general = variance.linearized_covariance(g[:, key] * u, inside, design._structure, design._projection)
    assert keyed == pytest.approx(general, rel=1e-9, abs=1e-18)
