"""Weight stage: params, missing-background rule, raking/post-stratification, trimming,
diagnostics against hand computations, and the stage's outputs (Parquet, metrics, SPSS)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline import artifacts, cli, contracts
from survey_pipeline.core.calibration import largest_margin_deviation, rake_weights
from survey_pipeline.demo import FILE_LABEL, generate_panel
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.population import load_cells, load_margins
from survey_pipeline.settings import Params, WeightSettings, parse_params, parse_section, write_record
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.weight.stage import (
    Population,
    apply_missing_rule,
    compute_weights,
    run,
    weight_summary,
    weight_wave,
)

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def demo(spec, tmp_path_factory):
    """A small demo panel with its population files, as ingest + validate would pass it on."""
    folder = tmp_path_factory.mktemp("population")
    panel = generate_panel(spec, n_per_wave=900, seed=5)
    panel.margins.to_csv(folder / "margins.csv", index=False)
    panel.population.to_csv(folder / "cells.csv", index=False)
    return panel, folder


def _valid(spec, panel) -> pd.DataFrame:
    """The panel's rows minus the documented faults, in the validate_valid layout."""
    parts = []
    for wave, frame in panel.waves.items():
        frame = frame.copy()
        frame.insert(0, "file_wave", wave)
        frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
        frame.insert(0, "source_file", f"wij_panel_{wave}.sav")
        faults = panel.faults[(panel.faults["wave"] == wave) & (panel.faults["kind"] != "missing_wijk")]
        dup_ids = set(faults.loc[faults["kind"] == "duplicate_id", "resp_id"])
        parts.append(frame[~frame["source_row"].isin(faults["source_row"]) & ~frame["resp_id"].isin(dup_ids)])
    valid = pd.concat(parts, ignore_index=True)
    for name in spec.variables:
        if name not in valid:
            valid[name] = np.nan
    return valid.astype({"resp_id": "int64", "wave": "int64", "source_row": "int64", "file_wave": "int64"})


def _params(**overrides):
    section = dict(PARAMS["weight"])
    section.update(overrides)
    return section


def _parse(section) -> WeightSettings:
    return parse_section(WeightSettings, section, "weight")


def _population(spec, folder, cells=("age_group", "sex")):
    return Population(
        margins=load_margins(folder / "margins.csv", spec),
        cells=load_cells(folder / "cells.csv", spec, list(cells)),
        margins_file="margins.csv",
        cells_file="cells.csv",
    )


# --- params ------------------------------------------------------------------------------


def test_the_committed_params_parse():
    settings = _parse(PARAMS["weight"])
    assert settings.method == "rake" and settings.margins == ("age_group", "sex", "wijk")
    assert settings.trimming and settings.missing_background == "exclude"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"method": "calibrate"}, "weight.method"),
        ({"trim_upper": 0.8}, "weight.trim_upper"),
        ({"trim_lower": 1.5}, "weight.trim_lower"),
        ({"max_iter": 0}, "weight.max_iter"),
        ({"tol": 0}, "weight.tol"),
        ({"margin_tolerance": 0}, "weight.margin_tolerance"),
        ({"margin_tolerance": 0.05}, "weight.margin_tolerance"),
        ({"margins": []}, "weight.margins"),
        ({"missing_background": "impute"}, "weight.missing_background"),
        ({"base_weight": True}, "weight.base_weight"),
        ({"maxiter": 10}, "weight.maxiter"),
        ({"cells_file": 5}, "weight.cells_file"),
        ({"cells_file": ""}, "weight.cells_file"),
        ({"method": "poststratify", "cells_file": None}, "weight.cells_file"),
        ({"max_iter": 100.0}, "weight.max_iter"),
        ({"tol": "1e-10"}, "weight.tol"),
        ({"tol": float("nan")}, "weight.tol"),
    ],
)
def test_bad_params_name_the_key(override, key):
    with pytest.raises(ParamsError) as caught:
        _parse(_params(**override))
    assert caught.value.key == key


def test_params_must_name_background_variables(spec):
    with pytest.raises(ParamsError, match="'income' is not a background variable"):
        _parse(_params(margins=["sex", "income"])).check_against(spec)


# --- diagnostics ---------------------------------------------------------------------------


def test_weight_summary_matches_hand_computation():
    summary = weight_summary(np.array([1.0, 2.0, 3.0, 4.0]))
    # sum 10, sum of squares 30: deff = 4 * 30 / 100, n_eff = 100 / 30
    assert summary["deff_kish"] == pytest.approx(1.2, rel=1e-15)
    assert summary["n_eff"] == pytest.approx(10 / 3, rel=1e-15)
    assert summary["cv_weight"] == pytest.approx(np.sqrt(1.25) / 2.5, rel=1e-15)
    assert summary["deff_kish"] == pytest.approx(1 + summary["cv_weight"] ** 2, rel=1e-14)
    assert (summary["n"], summary["sum_weights"], summary["min_weight"], summary["max_weight"]) == (4, 10.0, 1.0, 4.0)


# --- missing background ------------------------------------------------------------------


def test_missing_background_is_excluded_with_a_count_or_fails():
    frame = pd.DataFrame(
        {
            "source_file": ["a.sav"] * 4,
            "source_row": [1, 2, 3, 4],
            "wijk": [1.0, np.nan, 2.0, np.nan],
            "sex": [1.0, 2.0, np.nan, np.nan],
        }
    )
    keep, counts = apply_missing_rule(frame, ["wijk", "sex"], "exclude", 2020)
    assert keep.tolist() == [True, False, False, False]
    assert counts == {"wijk": 2, "sex": 2}
    with pytest.raises(InputError) as caught:
        apply_missing_rule(frame, ["wijk", "sex"], "fail", 2020)
    assert (caught.value.file, caught.value.row, caught.value.column) == ("a.sav", 2, "wijk")
    assert "3 respondent(s)" in caught.value.message and caught.value.rule == "missing_background"


def test_excluded_respondents_are_counted_and_the_rest_weighted_to_the_total(spec, demo):
    panel, folder = demo
    valid = _valid(spec, panel)
    result = compute_weights(valid, _parse(_params()), _population(spec, folder), spec)
    for wave, wave_result in result.per_wave.items():
        missing = int(valid.loc[valid["wave"] == wave, "wijk"].isna().sum())
        assert missing > 0
        assert wave_result.diagnostics["n_excluded_missing_background"] == missing
        assert result.metrics["waves"][str(wave)]["excluded_missing_by_variable"] == {
            "age_group": 0,
            "sex": 0,
            "wijk": missing,
        }
        total = panel.margins.loc[(panel.margins["wave"] == wave) & (panel.margins["variable"] == "sex"), "count"].sum()
        assert result.weights.loc[result.weights["wave"] == wave, "weight"].sum() == pytest.approx(total, rel=1e-9)
    assert len(result.weights) == len(valid) - valid["wijk"].isna().sum()


# --- raking, post-stratification, trimming -----------------------------------------------------


def test_raked_weights_recover_every_margin_and_diagnostics_follow_from_the_weights(spec, demo):
    panel, folder = demo
    valid = _valid(spec, panel)
    settings = _parse(_params(trim_lower=None, trim_upper=None))
    result = compute_weights(valid, settings, _population(spec, folder), spec)
    recovery = result.margins
    assert set(recovery["variable"]) == {"age_group", "sex", "wijk"}
    assert len(recovery) == 3 * (4 + 2 + 30)
    assert (recovery["relative_difference"].abs() < 1e-8).all()
    for row in result.diagnostics.itertuples():
        w = result.weights.loc[result.weights["wave"] == row.wave, "weight"].to_numpy()
        assert row.deff_kish == pytest.approx(len(w) * (w**2).sum() / w.sum() ** 2, rel=1e-12)
        assert row.n_eff == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
        assert row.cv_weight == pytest.approx(w.std() / w.mean(), rel=1e-12)
        assert (row.n, row.min_weight, row.max_weight) == (len(w), w.min(), w.max())
        assert row.converged and row.iterations > 1 and row.n_trimmed == 0 and row.trim_rounds == 0
        assert row.deff_kish > 1.3  # the sample is skewed: weighting matters


def test_raking_matches_the_core_with_unequal_base_weights(spec, demo):
    panel, folder = demo
    frame = _valid(spec, panel)
    frame = frame[(frame["wave"] == 2019) & frame["wijk"].notna()].reset_index(drop=True)
    frame["base_weight"] = np.where(frame["sex"] == 2, 0.5, 2.0) * (1 + (frame["resp_id"] % 7) / 10)
    population = _population(spec, folder)
    settings = _parse(_params(trim_lower=None, trim_upper=None))
    result = weight_wave(frame, 2019, settings, population, spec)
    assert result.diagnostics["base_weights_used"]
    margins = []
    for variable in ("age_group", "sex", "wijk"):
        m = population.margins[(population.margins["wave"] == 2019) & (population.margins["variable"] == variable)]
        margins.append((frame[variable].astype(int).to_numpy() - 1, m.sort_values("code")["count"].to_numpy()))
    expected = rake_weights(frame["base_weight"].to_numpy(), margins, max_iter=100, tol=1e-10)
    np.testing.assert_allclose(result.weights, expected.weights, rtol=1e-12)
    ignored = weight_wave(
        frame, 2019, _parse(_params(base_weight="ignore", trim_lower=None, trim_upper=None)), population, spec
    )
    assert not ignored.diagnostics["base_weights_used"]
    assert not np.allclose(ignored.weights, result.weights)


def test_bad_or_required_base_weights_are_errors(spec, demo):
    panel, folder = demo
    frame = _valid(spec, panel)
    frame = frame[frame["wave"] == 2019].reset_index(drop=True)
    population = _population(spec, folder)
    with pytest.raises(InputError, match="no 'base_weight' values"):
        weight_wave(frame, 2019, _parse(_params(base_weight="require")), population, spec)
    for bad in (0.0, -1.0, np.inf, np.nan):
        frame["base_weight"] = 1.0
        frame.loc[7, "base_weight"] = bad
        with pytest.raises(InputError, match="1 base weight\\(s\\) missing, infinite or not positive") as caught:
            weight_wave(frame, 2019, _parse(_params()), population, spec)
        where = (caught.value.file, caught.value.row, caught.value.column)
        assert where == ("wij_panel_2019.sav", frame.loc[7, "source_row"], "base_weight")


def test_trimming_holds_the_bounds_and_the_margins(spec, demo):
    panel, folder = demo
    valid = _valid(spec, panel)
    population = _population(spec, folder)
    untrimmed = compute_weights(valid, _parse(_params(trim_lower=None, trim_upper=None)), population, spec)
    ratio = max(untrimmed.weights.groupby("wave")["weight"].max() / untrimmed.weights.groupby("wave")["weight"].mean())
    upper = round(0.8 * ratio, 2)
    assert upper > 1.5
    trimmed = compute_weights(valid, _parse(_params(trim_lower=0.3, trim_upper=upper)), population, spec)
    for _wave, w in trimmed.weights.groupby("wave")["weight"]:
        assert w.max() <= upper * w.mean() * (1 + 1e-6)
        assert w.min() >= 0.3 * w.mean() * (1 - 1e-6)
    assert (trimmed.margins["relative_difference"].abs() < 1e-8).all()
    assert trimmed.diagnostics["n_trimmed"].sum() > 0 and (trimmed.diagnostics["trim_rounds"] > 0).any()


def _wave_2020(spec, demo) -> pd.DataFrame:
    frame = _valid(spec, demo[0])
    return frame[(frame["wave"] == 2020) & frame["wijk"].notna()].reset_index(drop=True)


def _conflicting(frame: pd.DataFrame) -> pd.DataFrame:
    """Every respondent of age group 4 moved to wijk 1: age group 4 has about 36,000 residents,
    wijk 1 about 20,000, so no weights on this sample can meet both margins."""
    frame = frame.copy()
    frame.loc[frame["age_group"] == 4, "wijk"] = 1.0
    return frame


UNTRIMMED = {"trim_lower": None, "trim_upper": None}


def test_infeasible_margins_are_refused_not_weighted_to_a_limit_that_misses_them(spec, demo):
    frame = _conflicting(_wave_2020(spec, demo))
    population = _population(spec, demo[1])
    settings = _parse(_params(**UNTRIMMED))
    # The raking loop itself "converges": it settles on weights that miss the age margin.
    margins = population.margins[population.margins["wave"] == 2020]
    calibration = [
        (frame[v].astype(int).to_numpy() - 1, margins[margins["variable"] == v].sort_values("code")["count"].to_numpy())
        for v in ("age_group", "sex", "wijk")
    ]
    loop = rake_weights(np.ones(len(frame)), calibration, max_iter=100, tol=1e-10)
    assert loop.converged and loop.deviation.relative > 0.4
    with pytest.raises(InputError) as caught:
        weight_wave(frame, 2020, settings, population, spec)
    message = str(caught.value)
    assert caught.value.rule == "margins_met" and caught.value.column == "age_group"
    assert (
        "margin 'age_group' category 4 (65 jaar en ouder) not met: population 36,418.00, weighted 19,597.00" in message
    )
    assert "the margins are infeasible" in message and "\n" not in message


def test_infeasible_margins_with_trimming_on_name_infeasibility_not_trimming(spec, demo):
    frame = _conflicting(_wave_2020(spec, demo))
    settings = _parse(_params())
    assert settings.trimming
    with pytest.raises(InputError) as caught:
        weight_wave(frame, 2020, settings, _population(spec, demo[1]), spec)
    message = str(caught.value)
    assert "category 4 (65 jaar en ouder) not met" in message and "infeasible" in message
    assert "trim" not in message


def test_trimming_bounds_too_tight_for_feasible_margins_blame_trimming(spec, demo):
    frame = _wave_2020(spec, demo)
    population = _population(spec, demo[1])
    untrimmed = weight_wave(frame, 2020, _parse(_params(**UNTRIMMED)), population, spec)
    assert untrimmed.margin_deviation < 1e-9
    # Each wijk's weights must add up to its population; a small wijk with few respondents
    # forces weights far above 1.2 x the mean: no trimming can hold.
    with pytest.raises(InputError) as caught:
        weight_wave(frame, 2020, _parse(_params(trim_upper=1.2, trim_max_rounds=5)), population, spec)
    message = str(caught.value)
    assert caught.value.rule == "margins_met"
    assert (
        message.startswith("margins.csv, column ")
        and "wave 2020: the trimming bounds are too tight: margin '" in message
    )
    assert "not met: population " in message and "by weights within [0.2, 1.2] x mean after 5 rounds" in message
    assert "untrimmed raking met every margin" in message and "infeasible" not in message


def test_raking_out_of_sweeps_or_stopped_by_a_loose_tol_is_not_converged(spec, demo):
    frame = _wave_2020(spec, demo)
    population = _population(spec, demo[1])
    with pytest.raises(InputError) as caught:
        weight_wave(frame, 2020, _parse(_params(max_iter=2)), population, spec)
    message = str(caught.value)
    assert caught.value.rule == "margins_met" and "raking not converged" in message
    assert "raise weight.max_iter (now 2)" in message and "relative deviation " in message
    with pytest.raises(InputError, match=r"not met.*raking stopped .* lower weight.tol \(now 1e-03\)"):
        weight_wave(frame, 2020, _parse(_params(tol=1e-3, **UNTRIMMED)), population, spec)


def test_the_contract_is_checked_on_the_final_trimmed_weights(spec, demo):
    frame = _wave_2020(spec, demo)
    population = _population(spec, demo[1])
    untrimmed = weight_wave(frame, 2020, _parse(_params(**UNTRIMMED)), population, spec)
    upper = round(0.8 * untrimmed.weights.max() / untrimmed.weights.mean(), 2)
    settings = _parse(_params(trim_lower=0.3, trim_upper=upper))
    result = weight_wave(frame, 2020, settings, population, spec)
    assert result.diagnostics["n_trimmed"] > 0
    margins = population.margins[population.margins["wave"] == 2020]
    codes = [frame[v].astype(int).to_numpy() for v in ("age_group", "sex", "wijk")]
    totals = [margins[margins["variable"] == v].set_index("code")["count"] for v in ("age_group", "sex", "wijk")]
    recomputed = largest_margin_deviation(
        result.weights, [np.searchsorted(t.index, c) for c, t in zip(codes, totals)], [t.to_numpy() for t in totals]
    )
    assert result.margin_deviation == recomputed.relative <= settings.margin_tolerance
    # the recovery table sums in another order: the same deviation up to rounding of the totals
    assert result.margin_deviation == pytest.approx(result.recovery["relative_difference"].abs().max(), abs=1e-12)


def test_poststratified_weights_hit_every_cell(spec, demo):
    panel, folder = demo
    valid = _valid(spec, panel)
    settings = _parse(_params(method="poststratify", trim_lower=None, trim_upper=None))
    result = compute_weights(valid, settings, _population(spec, folder), spec)
    weights = result.weights.merge(valid[["resp_id", "wave", "age_group", "sex"]], on=["resp_id", "wave"])
    sums = weights.groupby(["wave", "age_group", "sex"])["weight"].sum()
    cells = panel.population.groupby(["wave", "age_group", "sex"])["count"].sum()
    np.testing.assert_allclose(sums.to_numpy(), cells.to_numpy(), rtol=1e-12)
    assert (result.diagnostics["method"] == "poststratify").all()
    # post-stratification on age x sex misses the wijk margin: the recovery table shows it
    wijk = result.margins[result.margins["variable"] == "wijk"]
    assert wijk["relative_difference"].abs().max() > 0.05
    # rows with a missing wijk still count as missing only if wijk is a weighting variable
    assert result.diagnostics["n_excluded_missing_background"].sum() == 0


def test_a_sample_missing_a_population_wijk_stops_the_run(spec, demo):
    panel, folder = demo
    valid = _valid(spec, panel)
    valid = valid[~((valid["wave"] == 2021) & (valid["wijk"] == 28))]
    with pytest.raises(InputError) as caught:
        compute_weights(valid, _parse(_params()), _population(spec, folder), spec)
    assert "wave 2021: margin 'wijk' category 28 (Meerstad)" in str(caught.value)
    assert "no respondents" in str(caught.value)


# --- the stage ------------------------------------------------------------------------------


def _ingested_file(wave: int) -> dict:
    """The files.json entry ingest writes for the demo file of `wave` (what the weight stage reads: its label)."""
    return {
        "path": f"data/raw/wij_panel_{wave}.sav",
        "format": "sav",
        "sha256": "0" * 64,
        "n_rows": 1,
        "wave": wave,
        "file_label": f"{FILE_LABEL} ({wave})",
        "encoding": None,
        "variable_labels": {},
        "value_labels": {},
        "warnings": [],
        "errors": [],
        "receipt": None,
    }


def _stage_inputs(spec, demo, root: Path) -> tuple[artifacts.OutputStore, Params]:
    panel, folder = demo
    (root / "data" / "population").mkdir(parents=True)
    for name in ("margins.csv", "cells.csv"):
        shutil.copy(folder / name, root / "data" / "population" / name)
    params = parse_params(PARAMS)
    store = artifacts.OutputStore(root / "outputs")
    with store.writing("validate") as out:
        artifacts.write_table(_valid(spec, panel), out / "valid.parquet", contracts.ValidateValid, spec)
        write_record(out, {"ingest": params.ingest, "validate": params.validate_})
    with store.writing("ingest") as out:
        artifacts.write_json(
            {f"wij_panel_{w}.sav": _ingested_file(w) for w in spec.waves}, out / "files.json", contracts.IngestFiles
        )
        write_record(out, {"ingest": params.ingest})
    store.commit()
    return artifacts.OutputStore(root / "outputs"), params


def test_stage_writes_weights_diagnostics_and_spss_files(spec, demo, tmp_path):
    store, params = _stage_inputs(spec, demo, tmp_path)
    counts = run(store, spec, params, tmp_path)
    store.commit()
    out = tmp_path / "outputs" / "weight"
    weights = artifacts.read_table(out / "weights.parquet", contracts.WeightWeights, spec)
    diagnostics = artifacts.read_table(out / "diagnostics.parquet", contracts.WeightDiagnostics)
    recovery = artifacts.read_table(out / "margins.parquet", contracts.WeightMargins)
    metrics = artifacts.read_json(out / "metrics.json", contracts.WeightMetrics)
    assert counts["rows_weighted"] == len(weights)
    assert sorted(metrics["waves"]) == ["2019", "2020", "2021"]
    for row in diagnostics.itertuples():
        assert metrics["waves"][str(row.wave)]["deff_kish"] == pytest.approx(row.deff_kish)
        assert metrics["waves"][str(row.wave)]["n"] == row.n
        wave_recovery = recovery[recovery["wave"] == row.wave]
        assert metrics["waves"][str(row.wave)]["margin_recovery_max_rel_diff"] == {
            name: wave_recovery.loc[wave_recovery["variable"] == name, "relative_difference"].abs().max()
            for name in ("age_group", "sex", "wijk")
        }
        # the contract's measure: the largest deviation from a raking target, checked against the tolerance
        wave_metrics = metrics["waves"][str(row.wave)]
        assert wave_metrics["margin_tolerance"] == params.weight.margin_tolerance == 1e-6
        assert wave_metrics["max_rel_margin_deviation"] <= wave_metrics["margin_tolerance"]
        assert wave_metrics["max_rel_margin_deviation"] == pytest.approx(
            max(wave_metrics["margin_recovery_max_rel_diff"].values()), abs=1e-12
        )
    assert len(recovery) == 3 * 36

    valid = artifacts.read_table(tmp_path / "outputs" / "validate" / "valid.parquet", contracts.ValidateValid, spec)
    frame, meta = pyreadstat.read_sav(str(out / "sav" / "2020.sav"), user_missing=True)
    wave_valid = valid[valid["wave"] == 2020].reset_index(drop=True)
    assert meta.file_label == f"{FILE_LABEL} (2020)"
    derived = [
        "weight",
        "weight_norm",
        *(f"ind_{i.id}" for i in spec.indicators if 2020 in spec.variables[i.variable].waves),
    ]
    assert list(frame.columns) == [
        "resp_id",
        "wave",
        "wijk",
        "age_group",
        "sex",
        *(v.name for v in spec.variables_in_wave(2020)),
        *derived,
    ]
    assert meta.column_names_to_labels["weight"] == f"Weegfactor (populatie: {spec.population_label})"
    assert meta.column_names_to_labels["contact"] == spec.variables["contact"].label
    assert meta.variable_value_labels["helped"] == {
        1.0: "ja",
        2.0: "nee",
        99.0: "weet niet",
        98.0: "geen antwoord",
        -1.0: "niet gevraagd",
    }
    assert meta.variable_value_labels["wijk"][28.0] == "Meerstad"
    assert {r["lo"] for r in meta.missing_ranges["helped"]} == {99.0, 98.0, -1.0}
    pd.testing.assert_frame_equal(
        frame.drop(columns=derived), wave_valid[frame.columns.drop(derived)].astype("float64"), check_dtype=False
    )
    merged = wave_valid[["resp_id"]].merge(weights[weights["wave"] == 2020], on="resp_id", how="left")
    np.testing.assert_allclose(frame["weight"].to_numpy(), merged["weight"].to_numpy(), rtol=1e-15)
    assert frame["weight"].isna().sum() == wave_valid["wijk"].isna().sum() > 0


def test_spss_file_has_the_normalised_weight_and_labelled_indicator_variables(spec, demo, tmp_path):
    store, params = _stage_inputs(spec, demo, tmp_path)
    run(store, spec, params, tmp_path)
    store.commit()
    frame, meta = pyreadstat.read_sav(str(tmp_path / "outputs" / "weight" / "sav" / "2021.sav"), user_missing=True)
    weighted = frame["weight"].notna()
    assert weighted.sum() < len(frame)  # some excluded for missing background
    assert frame.loc[weighted, "weight_norm"].mean() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(frame["weight_norm"], frame["weight"] / frame["weight"].mean(), rtol=1e-12)
    assert frame["weight_norm"].isna().equals(~weighted)
    assert meta.column_names_to_labels["weight_norm"].startswith("Weegfactor genormaliseerd (gemiddelde 1")

    # heard: base all residents, "weet niet" counts as no, "geen antwoord" leaves the base (by hand)
    heard = frame["heard"]
    expected = np.select([heard == 1, heard.isin([2, 99])], [1.0, 0.0], np.nan)
    np.testing.assert_array_equal(frame["ind_heard"].to_numpy(), expected)
    # contact of those who heard: outside the base (heard != 1) missing; "weet niet" excluded
    contact = frame["contact"]
    expected = np.where(heard != 1, np.nan, np.select([contact == 1, contact == 2], [1.0, 0.0], np.nan))
    np.testing.assert_array_equal(frame["ind_contact_of_heard"].to_numpy(), expected)
    assert frame["ind_contact_of_heard"].notna().sum() < frame["ind_heard"].notna().sum()

    asked = [i for i in spec.indicators if 2021 in spec.variables[i.variable].waves]
    assert "ind_caregiver_burdened" not in frame and len(asked) < len(spec.indicators)  # not asked in 2021
    for indicator in asked:
        name = f"ind_{indicator.id}"
        assert meta.variable_value_labels[name] == {0.0: "nee", 1.0: "ja"}
        assert meta.column_names_to_labels[name].startswith(indicator.label)
        assert set(frame[name].dropna().unique()) <= {0.0, 1.0}
    assert meta.column_names_to_labels["ind_contact_of_heard"].endswith(f"({spec.base_text('heard_of_wij')})")
    assert meta.column_names_to_labels["ind_heard"] == spec.indicator("heard").label


def test_stage_outputs_are_byte_identical_between_runs(spec, demo, tmp_path):
    store, params = _stage_inputs(spec, demo, tmp_path)
    run(store, spec, params, tmp_path)
    store.commit()
    out = tmp_path / "outputs" / "weight"
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    store = artifacts.OutputStore(tmp_path / "outputs")
    run(store, spec, params, tmp_path)
    store.commit()
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(first) == 8 and first == second  # 3 tables, metrics, settings, 3 .sav files


@pytest.fixture(scope="module")
def weighted_project(spec, demo, tmp_path_factory) -> Path:
    """A project after a successful `survey-pipeline weight` with the committed params."""
    root = tmp_path_factory.mktemp("weighted")
    _stage_inputs(spec, demo, root)
    (root / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", root / "questionnaires")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert cli.main(["--project-dir", str(root), "--quiet", "weight"]) == 0
    return root


def _in_wave_2020(edit):
    def apply(valid: pd.DataFrame) -> pd.DataFrame:
        rows = valid["wave"] == 2020
        return pd.concat([valid[~rows], edit(valid[rows])]).sort_index()

    return apply


# Bad-input corpus of the weight stage: (params overrides, edit of the valid rows, words in the error).
WEIGHT_CORPUS = {
    "infeasible_margins_untrimmed": (
        UNTRIMMED,
        _in_wave_2020(_conflicting),
        ["wave 2020: margin 'age_group' category 4 (65 jaar en ouder) not met", "infeasible"],
    ),
    "infeasible_margins_trimmed": (
        {},
        _in_wave_2020(_conflicting),
        ["wave 2020: margin 'age_group' category 4 (65 jaar en ouder) not met", "infeasible"],
    ),
    "population_wijk_without_respondents": (
        {},
        _in_wave_2020(lambda rows: rows[rows["wijk"] != 28]),
        ["wave 2020: margin 'wijk' category 28 (Meerstad)", "no respondents"],
    ),
    "trimming_bounds_too_tight": (
        {"trim_upper": 1.2, "trim_max_rounds": 5},
        None,
        ["the trimming bounds are too tight: margin '", "not met", "untrimmed raking met every margin"],
    ),
    "raking_not_converged": (
        {"max_iter": 2},
        None,
        ["not met: population ", "relative deviation ", "raking not converged", "weight.max_iter (now 2)"],
    ),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CORPUS))
def test_cli_exits_2_naming_the_missed_margin_and_keeps_the_previous_outputs(
    spec, weighted_project, tmp_path, capsys, case
):
    overrides, edit, words = WEIGHT_CORPUS[case]
    root = tmp_path / "project"
    shutil.copytree(weighted_project, root)
    out = root / "outputs" / "weight"
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    if overrides:
        (root / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "weight": _params(**overrides)}))
    if edit is not None:
        store = artifacts.OutputStore(root / "outputs")
        valid = artifacts.read_table(store.reading("validate") / "valid.parquet", contracts.ValidateValid, spec)
        settings = parse_params(PARAMS)
        with store.writing("validate") as staged:
            artifacts.write_table(edit(valid), staged / "valid.parquet", contracts.ValidateValid, spec)
            write_record(staged, {"ingest": settings.ingest, "validate": settings.validate_})
        store.commit()
    capsys.readouterr()
    assert cli.main(["--project-dir", str(root), "--quiet", "weight"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    for word in words:
        assert word in error
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(before) == 8 and after == before
