"""The auxiliary wijk covariates: written by the demo, read strictly, predictive of the wijk truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import demo
from survey_pipeline.errors import InputError
from survey_pipeline.population import load_wijk_covariates
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = list(demo.COVARIATE_COLUMNS)


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def covariates():
    return demo.wijk_covariates(demo.population_cells((2019, 2020, 2021)))


def _write(tmp_path, frame):
    path = tmp_path / demo.COVARIATES_FILE
    frame.to_csv(path, index=False)
    return path


def test_committed_file_is_what_the_demo_writes(spec, covariates):
    committed = load_wijk_covariates(ROOT / "data" / "population" / demo.COVARIATES_FILE, spec, COLUMNS)
    expected = covariates.astype({c: "float64" for c in COLUMNS})
    pd.testing.assert_frame_equal(committed, expected)


def test_age_shares_agree_with_the_population_cells(covariates):
    cells = demo.population_cells((2019, 2020, 2021))
    for (wave, wijk), rows in cells.groupby(["wave", "wijk"]):
        row = covariates[(covariates["wave"] == wave) & (covariates["wijk"] == wijk)]
        for column, age_group in (("pct_18_34", 1), ("pct_65_plus", 4)):
            share = rows.loc[rows["age_group"] == age_group, "count"].sum() / rows["count"].sum()
            assert abs(row[column].item() - 100 * share) <= 0.5


def test_covariates_predict_the_wijk_effects(spec, covariates):
    """The truth borrows from the covariates: the need index explains most of a need-loaded wijk effect."""
    panel = demo.generate_panel(spec, n_per_wave=200, seed=3, faults=False)
    need = demo.need_index(panel.covariates)
    world = demo._make_world(np.random.default_rng(0), need)
    effect = world.wijk_effect["contact"]
    assert np.corrcoef(need, effect)[0, 1] > 0.8
    high = covariates.loc[covariates["wave"] == 2019].set_index("wijk")["pct_low_income_households"]
    assert need[high.idxmax() - 1] > 0 > need[high.idxmin() - 1]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("pct_low_income_households", "12.5", "not a whole number"),
        ("pct_low_income_households", "1.234", "thousands separator"),
        ("pct_migration_background", "", "empty value"),
        ("pct_migration_background", "101", "above 100"),
        ("pct_65_plus", "-3", ">= 0"),
        ("wijk", "31", "not a code of 'wijk'"),
    ],
)
def test_a_bad_value_names_file_row_and_column(spec, covariates, tmp_path, column, value, message):
    frame = covariates.astype(str)
    frame.loc[4, column] = value
    with pytest.raises(InputError, match=message) as caught:
        load_wijk_covariates(_write(tmp_path, frame), spec, COLUMNS)
    text = str(caught.value)
    assert demo.COVARIATES_FILE in text and "row 6" in text and column in text


def test_missing_wijk_duplicate_row_and_missing_column_are_errors(spec, covariates, tmp_path):
    with pytest.raises(InputError, match=r"wave 2020: no row for wijk 7 \(Oosterpoort\)"):
        load_wijk_covariates(
            _write(tmp_path, covariates[~((covariates.wave == 2020) & (covariates.wijk == 7))]), spec, COLUMNS
        )
    with pytest.raises(InputError, match="duplicate"):
        load_wijk_covariates(_write(tmp_path, pd.concat([covariates, covariates.iloc[[3]]])), spec, COLUMNS)
    with pytest.raises(InputError, match="missing column"):
        load_wijk_covariates(_write(tmp_path, covariates.drop(columns="pct_65_plus")), spec, COLUMNS)
    with pytest.raises(InputError, match="not found"):
        load_wijk_covariates(tmp_path / "absent.csv", spec, COLUMNS)
