"""Properties of SurveyDesign.proportion that must hold for any data (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey_pipeline import SurveyDesign

NUMERIC = ["estimate", "se", "ci_lower", "ci_upper", "df", "n_eff", "sum_weights"]


def make_data(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "w": rng.uniform(0.2, 5.0, n),
            "stratum": rng.integers(0, 3, n),
            "psu": rng.integers(0, 4, n),
            "y": rng.choice([1.0, 2.0, 99.0, np.nan], n, p=[0.45, 0.4, 0.1, 0.05]),
            "heard": rng.choice([1, 2], n),
            "wijk": rng.choice([1, 2, 3, 4], n),
            "age": np.arange(n) % 3,
        }
    )
    return df


def design(df: pd.DataFrame, kind: str, weight_scale: float = 1.0) -> SurveyDesign:
    df = df.assign(w=df["w"] * weight_scale)
    if kind == "srs":
        return SurveyDesign(df, weights="w")
    if kind == "clustered":
        return SurveyDesign(df, weights="w", strata="stratum", cluster="psu")
    raked = SurveyDesign(df, weights="w", strata="stratum")
    return raked.rake({"age": {0: 300.0, 1: 350.0, 2: 250.0}})


CASES = dict(
    seed=st.integers(0, 100_000),
    n=st.integers(12, 80),
    kind=st.sampled_from(["srs", "clustered", "raked"]),
    ci=st.sampled_from(["logit", "beta", "wilson", "wald"]),
)


def _estimate(d: SurveyDesign, ci: str, **kw) -> pd.DataFrame:
    return d.proportion("y", success=[1], exclude=[99], where={"heard": [1]}, ci=ci, **kw)


def _assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, columns) -> None:
    for col in columns:
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-9, atol=1e-15, err_msg=col)


@settings(max_examples=40, deadline=None)
@given(scale=st.sampled_from([1e-3, 0.37, 12.0, 1e4]), **CASES)
def test_scaling_the_weights_changes_nothing(seed, n, kind, ci, scale):
    df = make_data(seed, n)
    a = _estimate(design(df, kind), ci, by="wijk")
    b = _estimate(design(df, kind, scale), ci, by="wijk")
    columns = [c for c in NUMERIC if c != "sum_weights" or kind == "raked"]
    _assert_frames_close(a, b, columns + (["deff"] if kind == "raked" else []))
    if kind != "raked":
        np.testing.assert_allclose(b["sum_weights"], a["sum_weights"] * scale, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(**CASES)
def test_row_order_does_not_matter(seed, n, kind, ci):
    df = make_data(seed, n)
    shuffled = df.sample(frac=1.0, random_state=seed % 1000).reset_index(drop=True)
    a = _estimate(design(df, kind), ci, by="wijk")
    b = _estimate(design(shuffled, kind), ci, by="wijk")
    _assert_frames_close(a, b, NUMERIC + ["deff"])
    assert list(a["note"]) == list(b["note"])


@settings(max_examples=40, deadline=None)
@given(**CASES)
def test_intervals_contain_the_estimate_within_unit_interval(seed, n, kind, ci):
    out = _estimate(design(make_data(seed, n), kind), ci, by="wijk")
    for _, row in out.iterrows():
        if np.isnan(row["ci_lower"]):
            assert row["note"], "a missing interval always carries a note"
            continue
        assert 0.0 <= row["ci_lower"] <= row["estimate"] <= row["ci_upper"] <= 1.0


@settings(max_examples=30, deadline=None)
@given(**CASES)
def test_by_equals_one_where_per_level(seed, n, kind, ci):
    d = design(make_data(seed, n), kind)
    by = _estimate(d, ci, by="wijk").set_index("wijk")
    for level in by.index:
        one = d.proportion("y", success=[1], exclude=[99], where={"heard": [1], "wijk": [level]}, ci=ci)
        row = one.iloc[0]
        for col in NUMERIC + ["deff", "n"]:
            assert row[col] == pytest.approx(by.loc[level, col], rel=1e-12, abs=1e-15, nan_ok=True), col
