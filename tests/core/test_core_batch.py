"""Batched estimation (`proportions`, `differences`) equals one call per share; the
factorised raking projection equals svyrecvar's 10 sweeps replayed literally."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import SurveyDesign
from survey_pipeline.core import design as design_module
from survey_pipeline.core import tables as tables_module
from survey_pipeline.core.design import Share
from survey_pipeline.core.variance import RAKING_PROJECTION_SWEEPS, _raking_operator

SHARES = [
    Share("y", success=[1], exclude=[99]),
    Share("y", success=[2], exclude=[99], where={"heard": [1]}),
    Share("y", success=[1, 2]),
    Share("z", success=[3], where={"heard": [2]}),
    Share("z", success=[1], where={"heard": [7]}),  # empty domain
]
NUMERIC = ["estimate", "se", "ci_lower", "ci_upper", "df", "deff", "n_eff", "n", "sum_weights"]
CHANGE_NUMERIC = [
    "estimate_from",
    "estimate_to",
    "n_from",
    "n_to",
    "difference",
    "se",
    "ci_lower",
    "ci_upper",
    "df",
    "p_value",
]


def make_data(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "w": rng.uniform(0.5, 4.0, n),
            "stratum": rng.integers(0, 3, n),
            "psu": rng.integers(0, 8, n),
            "y": rng.choice([1.0, 2.0, 3.0, 99.0, np.nan], n, p=[0.35, 0.3, 0.2, 0.1, 0.05]),
            "z": rng.choice([1.0, 2.0, 3.0], n),
            "heard": rng.choice([1, 2], n),
            "wijk": rng.choice([1.0, 2.0, 3.0, 4.0, np.nan], n, p=[0.3, 0.3, 0.2, 0.15, 0.05]),
            "age": np.arange(n) % 3,
            "sex": rng.permutation(np.arange(n) % 2),
        }
    )


def make_design(df: pd.DataFrame, kind: str) -> SurveyDesign:
    if kind == "srs":
        return SurveyDesign(df, weights="w")
    if kind == "clustered":
        return SurveyDesign(df, weights="w", strata="stratum", cluster="psu")
    if kind == "poststratified":
        return SurveyDesign(df, weights="w", strata="stratum").poststratify("age", {0: 300.0, 1: 350.0, 2: 250.0})
    design = SurveyDesign(df, weights="w", strata="stratum", cluster="psu" if kind == "raked_clustered" else None)
    return design.rake({"age": {0: 300.0, 1: 350.0, 2: 250.0}, "sex": {0: 420.0, 1: 480.0}})


def assert_same(batch: pd.DataFrame, single: pd.DataFrame, numeric: list[str]) -> None:
    assert list(batch.columns) == list(single.columns)
    for column in batch.columns:
        if column in numeric:
            np.testing.assert_allclose(
                batch[column].to_numpy(float), single[column].to_numpy(float), rtol=1e-12, atol=1e-15, err_msg=column
            )
        else:
            assert batch[column].tolist() == single[column].tolist(), column


@pytest.mark.parametrize("kind", ["srs", "clustered", "poststratified", "raked", "raked_clustered"])
@pytest.mark.parametrize("by", [None, "wijk"])
def test_proportions_equal_one_call_per_share(kind, by):
    design = make_design(make_data(11), kind)
    batch = design.proportions(SHARES, by=by, ci="beta")
    assert batch["share"].tolist() == list(np.repeat(np.arange(len(SHARES)), 1 if by is None else 4))
    for q, share in enumerate(SHARES):
        single = design.proportion(share.variable, share.success, share.exclude, share.where, by=by, ci="beta")
        part = batch[batch["share"] == q].drop(columns="share").reset_index(drop=True)
        assert_same(part, single, NUMERIC)


@pytest.mark.parametrize("kind", ["clustered", "raked_clustered", "raked"])
@pytest.mark.parametrize("by", [None, "wijk"])
def test_differences_equal_one_call_per_share(kind, by):
    df = make_data(5)
    df["wave"] = np.where(np.arange(len(df)) % 2 == 0, 2020, 2021)
    design = make_design(df, kind)
    batch = design.differences(SHARES, between=("wave", 2020, 2021), by=by)
    for q, share in enumerate(SHARES):
        single = design.difference(
            share.variable, share.success, share.exclude, share.where, between=("wave", 2020, 2021), by=by
        )
        part = batch[batch["share"] == q].drop(columns="share").reset_index(drop=True)
        assert_same(part, single, CHANGE_NUMERIC)


@pytest.mark.parametrize("kind", ["raked", "raked_clustered"])
def test_batches_in_chunks_equal_one_batch(kind, monkeypatch):
    df = make_data(9)
    df["wave"] = np.where(np.arange(len(df)) % 2 == 0, 2020, 2021)
    design = make_design(df, kind)
    whole = design.proportions(SHARES, by="wijk"), design.differences(SHARES, ("wave", 2020, 2021), by="wijk")
    monkeypatch.setattr(design_module, "MAX_BATCH", 2 * len(df))  # two shares per chunk
    chunked = design.proportions(SHARES, by="wijk"), design.differences(SHARES, ("wave", 2020, 2021), by="wijk")
    assert_same(chunked[0], whole[0], NUMERIC)
    assert_same(chunked[1], whole[1], CHANGE_NUMERIC)


def test_batches_need_a_share():
    design = make_design(make_data(1), "srs")
    with pytest.raises(ValueError):
        design.proportions([])
    with pytest.raises(ValueError):
        design.differences([])


def replay_raking_projection(cell_sums, stage_factors, margin_codes, margin_sizes, rows_per_cell):
    """svyrecvar's raking projection on cell totals, sweep by sweep (the definition)."""
    h = np.zeros_like(cell_sums)
    indicators = [np.eye(k)[codes] for codes, k in zip(margin_codes, margin_sizes)]
    rows_per_category = [np.maximum(rows_per_cell @ e, 1.0) for e in indicators]
    for _ in range(RAKING_PROJECTION_SWEEPS):
        for sf, e, rows in zip(stage_factors, indicators, rows_per_category):
            category_mean = (((cell_sums - rows_per_cell * h) / sf) @ e) / rows
            h = h + sf * (category_mean @ e.T)
    return h


def test_factorised_raking_projection_equals_the_sweeps():
    rng = np.random.default_rng(0)
    sizes = (4, 2, 30)
    n_cells = 200
    codes = tuple(rng.integers(0, k, n_cells) for k in sizes)
    stage_factors = tuple(rng.uniform(0.5, 2.0, n_cells) for _ in sizes)
    rows_per_cell = rng.integers(1, 40, n_cells).astype(float)
    to_categories, from_categories = _raking_operator(stage_factors, codes, sizes, rows_per_cell)
    cell_sums = rng.normal(size=(9, n_cells))
    expected = replay_raking_projection(cell_sums, stage_factors, codes, sizes, rows_per_cell)
    np.testing.assert_allclose(
        (cell_sums @ to_categories) @ from_categories, expected, rtol=0, atol=1e-13 * np.abs(expected).max()
    )


@pytest.mark.parametrize("by", ["age", "sex"])
def test_breakdown_by_calibration_variable_equals_a_pass_by_level(by, monkeypatch):
    """By a calibration variable, the tables are the overall ones split by cell (kept from
    an earlier call); they equal a pass over the rows with the level in the key."""
    design = make_design(make_data(3, n=3000), "raked")
    design.proportions(SHARES, ci="beta")  # keeps the one-domain tables
    split = design.proportions(SHARES, by=by, ci="beta")
    monkeypatch.setattr(design_module, "slot_levels", lambda *args: None)
    fresh = make_design(make_data(3, n=3000), "raked")
    assert_same(split, fresh.proportions(SHARES, by=by, ci="beta"), NUMERIC)


def make_panel(seed: int, n: int = 3000) -> pd.DataFrame:
    """Two stacked waves, a respondent (the cluster) in one or both; age can change between waves."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"resp": rng.integers(0, int(n * 0.7), n), "wave": np.where(np.arange(n) % 2 == 0, 2020, 2021)})
    df = df.drop_duplicates(["resp", "wave"]).reset_index(drop=True)
    m = len(df)
    df["w"] = rng.uniform(0.5, 4.0, m)
    df["stratum"] = df["resp"] % 3
    df["y"] = rng.choice([1.0, 2.0, 3.0, 99.0, np.nan], m, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    df["z"] = rng.choice([1.0, 2.0, 3.0], m)
    df["heard"] = rng.choice([1, 2], m)
    df["age"] = (df["resp"] + (df["wave"] == 2021) * (rng.random(m) < 0.2)) % 3
    df["sex"] = df["resp"] % 2
    df["wijk"] = rng.choice([1.0, 2.0, 3.0], m)
    return df


def make_panel_design(df: pd.DataFrame, kind: str) -> SurveyDesign:
    """Respondent as cluster (but for "rows"); calibrated to margins crossed with the wave, as the changes are."""
    if kind == "clustered":
        weights = df["w"].where(np.arange(len(df)) % 17 != 0, 0.0)  # some zero weights
        return SurveyDesign(df.assign(w=weights), weights="w", strata="stratum", cluster="resp")
    cluster = None if kind == "rows" else "resp"
    design = SurveyDesign(df, weights="w", strata="stratum" if kind != "raked" else None, cluster=cluster)
    if kind == "poststratified":
        return design.poststratify(["wave", "age"], {(v, a): 100.0 + 10 * a for v in (2020, 2021) for a in (0, 1, 2)})
    return design.rake(
        {
            ("wave", "age"): {(v, a): 300.0 for v in (2020, 2021) for a in (0, 1, 2)},
            ("wave", "sex"): {(v, s): 450.0 for v in (2020, 2021) for s in (0, 1)},
        }
    )


@pytest.mark.parametrize("kind", ["raked", "raked_strata", "poststratified", "clustered", "rows"])
@pytest.mark.parametrize("by", [None, "age", "sex", "wijk"])
def test_tables_with_psu_pairs_equal_the_per_row_path(kind, by, monkeypatch):
    """PSUs of at most two rows (a panel's stacked waves): the tables with pair sums give the
    numbers of the per-row PSU totals (by a non-calibration variable `wijk` they fall back).
    "rows": the same stacked waves without clusters (changes split by slot, no pairs)."""
    df = make_panel(1)
    paired = make_panel_design(df, kind)
    result = paired.proportions(SHARES, by=by, ci="beta"), paired.differences(SHARES, ("wave", 2020, 2021), by=by)
    assert paired._row_cells is not None and (paired._row_cells.pairs is None) == (kind == "rows")
    monkeypatch.setattr(design_module, "fits", lambda *args: False)
    per_row = make_panel_design(df, kind)
    expected = per_row.proportions(SHARES, by=by, ci="beta"), per_row.differences(SHARES, ("wave", 2020, 2021), by=by)
    assert_same(result[0], expected[0], NUMERIC)
    assert_same(result[1], expected[1], CHANGE_NUMERIC)


def test_a_domain_whose_influence_cancels_within_its_psu_has_se_0_on_both_paths(monkeypatch):
    """One respondent's two rows as the domain, answers differing: its PSU total is 0, so the
    standard error is 0 (as R gives), not the NaN of a sum of squares rounded below 0."""
    df = make_panel(1)
    df["z"] = np.where(np.arange(len(df)) % 2 == 0, 1.0, 2.0)
    respondents = df["resp"][df["resp"].duplicated()].unique()[:300]
    shares = [Share("z", success=[1], where={"resp": [int(r)]}) for r in respondents]
    paired = SurveyDesign(df, weights="w", cluster="resp")
    result = paired.proportions(shares)
    assert paired._row_cells is not None and paired._row_cells.pairs is not None  # the pair tables were used
    monkeypatch.setattr(design_module, "fits", lambda *args: False)
    expected = SurveyDesign(df, weights="w", cluster="resp").proportions(shares)
    assert not result["se"].isna().any()
    assert_same(result, expected, NUMERIC)


def test_psu_of_three_rows_takes_the_per_row_path():
    df = make_panel(2)
    df.loc[df.index[:3], "resp"] = -1  # one PSU of three rows
    design = make_panel_design(df, "raked")
    design.differences(SHARES, ("wave", 2020, 2021), by="age")
    assert design._row_cells is None


VS_REST_NUMERIC = ["estimate_domain", "estimate_rest", "n_domain", "n_rest", "difference", "se", "ci_lower"]
VS_REST_NUMERIC += ["ci_upper", "df", "t", "p_value", "p_adjusted", "n_tests"]


@pytest.mark.parametrize("kind", ["raked", "panel"])
def test_domain_vs_rest_by_tables_equals_the_per_row_path(kind, monkeypatch):
    """By a calibration variable, each level against the rest from the share's one-domain tables."""

    def design() -> SurveyDesign:
        return (
            make_design(make_data(3, n=3000), "raked")
            if kind == "raked"
            else make_panel_design(make_panel(3), kind="raked")
        )

    tables = design()
    result = tables.domain_vs_rest("y", success=[1], exclude=[99], where={"heard": [1]}, by="age")
    assert tables._row_cells is not None and tables._row_cells.kept  # the tables were used
    monkeypatch.setattr(design_module, "fits", lambda *args: False)
    expected = design().domain_vs_rest("y", success=[1], exclude=[99], where={"heard": [1]}, by="age")
    assert_same(result, expected, VS_REST_NUMERIC)


def test_psu_pair_sums_in_blocks_of_one_share_equal_one_block(monkeypatch):
    design = make_panel_design(make_panel(4), "raked_strata")
    whole = design.differences(SHARES, ("wave", 2020, 2021), by="age")
    monkeypatch.setattr(tables_module, "PAIR_BLOCK", 1)
    blocks = make_panel_design(make_panel(4), "raked_strata").differences(SHARES, ("wave", 2020, 2021), by="age")
    assert_same(blocks, whole, CHANGE_NUMERIC)


@pytest.mark.parametrize("by", [None, "age"])
def test_every_answer_of_an_item_by_one_table_equals_a_table_per_answer(by, monkeypatch):
    """Shares with one base (an item's answer codes) take one pass by (slot, answer)."""
    answers = [Share("y", success=[code], exclude=[99], where={"heard": [1]}) for code in (1, 2, 3)]
    answers.append(Share("y", success=[1, 3], exclude=[99], where={"heard": [1]}))
    result = make_design(make_data(6, n=3000), "raked").proportions(answers, by=by, ci="beta")
    monkeypatch.setattr(SurveyDesign, "_answer_tables", lambda *args: {})
    expected = make_design(make_data(6, n=3000), "raked").proportions(answers, by=by, ci="beta")
    assert_same(result, expected, NUMERIC)
