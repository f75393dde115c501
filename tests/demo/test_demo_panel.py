"""The demo panel generator: deterministic, routed as the spec says, rates near the targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline.core.calibration import rake_weights
from survey_pipeline.demo import FAULT_KINDS, FILE_LABEL, ITEM_MODELS, SCORE_MODELS, generate_panel, write_demo
from survey_pipeline.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
BACKGROUND = ("wijk", "age_group", "sex")
ROUTING_FAULTS = {"routing_answered", "routing_skipped"}


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def panel(spec):
    return generate_panel(spec, n_per_wave=3000, seed=7)


def _violations(spec, wave, frame):
    """(source_row, variable, kind) of every routing or code violation in a raw frame."""
    found = set()
    not_asked = spec.missing.not_asked.code
    for variable in spec.variables_in_wave(wave):
        values = frame[variable.name].to_numpy()
        asked = spec.asked_mask(variable.name, frame)
        rows = np.arange(1, len(frame) + 1)
        for row in rows[~asked & (values != not_asked)]:
            found.add((int(row), variable.name, "routing_answered"))
        for row in rows[asked & (values == not_asked)]:
            found.add((int(row), variable.name, "routing_skipped"))
        allowed = set(variable.value_labels)
        for row in rows[~np.isin(values, list(allowed))]:
            found.add((int(row), variable.name, "invalid_code"))
    return found


def _indicator(spec, frame, weights, indicator, with_n_eff=False):
    """Weighted share of success codes in the base ("geen antwoord" left out)."""
    values = frame[indicator.variable].to_numpy()
    keep = spec.groups[indicator.base].mask(frame) & (values != spec.missing.no_answer.code)
    if indicator.dont_know == "exclude":
        keep &= values != spec.missing.dont_know.code
    success = np.isin(values, indicator.success)
    estimate = float((weights * keep * success).sum() / (weights * keep).sum())
    if not with_n_eff:
        return estimate
    w = weights[keep]
    return estimate, float(w.sum() ** 2 / (w**2).sum())


def _clean(panel, wave):
    frame = panel.waves[wave]
    faulty = panel.faults[(panel.faults["wave"] == wave) & (panel.faults["kind"] != "missing_wijk")]
    drop = set(faulty["source_row"])
    dup_ids = set(faulty.loc[faulty["kind"] == "duplicate_id", "resp_id"])
    rows = np.arange(1, len(frame) + 1)
    keep = ~np.isin(rows, list(drop)) & ~frame["resp_id"].isin(dup_ids).to_numpy() & frame["wijk"].notna().to_numpy()
    return frame[keep].reset_index(drop=True)


def _raked(panel, wave, frame):
    margins = []
    for variable in BACKGROUND:
        m = panel.margins[(panel.margins["wave"] == wave) & (panel.margins["variable"] == variable)]
        codes = m["code"].to_numpy()
        margins.append((np.searchsorted(codes, frame[variable].to_numpy().astype(int)), m["count"].to_numpy(float)))
    result = rake_weights(np.ones(len(frame)), margins, max_iter=100, tol=1e-10)
    assert result.converged
    return result.weights


def test_same_seed_gives_same_frames_and_other_seed_differs(spec):
    a = generate_panel(spec, n_per_wave=200, seed=11)
    b = generate_panel(spec, n_per_wave=200, seed=11)
    c = generate_panel(spec, n_per_wave=200, seed=12)
    for wave in spec.waves:
        pd.testing.assert_frame_equal(a.waves[wave], b.waves[wave])
        assert not a.waves[wave].equals(c.waves[wave])
    pd.testing.assert_frame_equal(a.faults, b.faults)
    pd.testing.assert_frame_equal(a.margins, c.margins)


def test_written_files_are_byte_identical_and_labelled(spec, tmp_path):
    first = write_demo(spec, tmp_path / "a" / "raw", tmp_path / "a" / "population", n_per_wave=100, seed=3)
    write_demo(spec, tmp_path / "b" / "raw", tmp_path / "b" / "population", n_per_wave=100, seed=3)
    names = (
        "raw/wij_panel_2019.sav",
        "raw/wij_panel_2020.sav",
        "raw/wij_panel_2021.sav",
        "raw/receipt.csv",
        "population/margins.csv",
        "population/cells.csv",
        "population/wijk_covariates.csv",
    )
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    frame, meta = pyreadstat.read_sav(str(tmp_path / "a" / "raw" / "wij_panel_2021.sav"), user_missing=True)
    assert meta.file_label.startswith(FILE_LABEL)
    assert meta.column_names_to_labels["heard"] == spec.variables["heard"].label
    assert meta.variable_value_labels["contact"][-1.0] == "niet gevraagd"
    assert {r["lo"] for r in meta.missing_ranges["walk_in"]} == {99.0, 98.0, -1.0}
    assert str(meta.creation_time) == "2021-11-15 12:00:00"
    pd.testing.assert_frame_equal(frame, first.waves[2021], check_dtype=False)
    receipt = pd.read_csv(tmp_path / "a" / "raw" / "receipt.csv")
    assert receipt["wave"].tolist() == [2019, 2020, 2021]
    assert receipt["expected_respondents"].tolist() == [len(first.waves[w]) for w in (2019, 2020, 2021)]
    assert receipt["source"].str.startswith("SYNTHETIC").all()


def test_each_wave_holds_exactly_its_variables(spec, panel):
    for wave, frame in panel.waves.items():
        expected = ["resp_id", "wave", *BACKGROUND, *(v.name for v in spec.variables_in_wave(wave))]
        assert list(frame.columns) == expected
        assert set(frame["wave"]) == {float(wave)}
    assert "caregiver" not in panel.waves[2021] and "wmo_client" not in panel.waves[2020]


def test_routing_and_codes_hold_except_the_documented_faults(spec, panel):
    for wave, frame in panel.waves.items():
        faults = panel.faults[panel.faults["wave"] == wave]
        documented = {
            (int(r.source_row), r.variable, r.kind)
            for r in faults.itertuples()
            if r.kind in ROUTING_FAULTS | {"invalid_code"}
        }
        assert _violations(spec, wave, frame) == documented
        assert 0 < len(faults[faults["kind"].isin(ROUTING_FAULTS)]) <= 0.004 * len(frame) + 1


def test_every_fault_kind_is_documented_and_injected(panel):
    for wave in panel.waves:
        assert set(panel.faults.loc[panel.faults["wave"] == wave, "kind"]) == set(FAULT_KINDS)


def test_duplicates_missing_wijk_and_quarantine_share(spec, panel):
    for wave, frame in panel.waves.items():
        faults = panel.faults[panel.faults["wave"] == wave]
        dup_rows = frame.index[frame["resp_id"].duplicated(keep=False)] + 1
        dup_ids = set(faults.loc[faults["kind"] == "duplicate_id", "resp_id"])
        assert set(frame.loc[dup_rows - 1, "resp_id"].astype(int)) == dup_ids
        assert len(dup_ids) == 2
        missing = set(frame.index[frame["wijk"].isna()] + 1)
        assert missing == set(faults.loc[faults["kind"] == "missing_wijk", "source_row"])
        assert frame[["resp_id", "wave", "age_group", "sex"]].notna().all().all()
        quarantined = len(set(faults.loc[faults["kind"] != "missing_wijk", "source_row"])) + len(dup_ids)
        assert quarantined / len(frame) < 0.01


def test_panel_overlap_and_wave_sizes(spec, panel):
    seen = pd.concat([f["resp_id"].drop_duplicates() for f in panel.waves.values()])
    waves_per_person = seen.value_counts()
    assert 0.55 <= (waves_per_person > 1).mean() <= 0.67
    for frame in panel.waves.values():
        assert 2700 <= len(frame) <= 3300


def test_background_is_stable_and_age_group_only_ages(spec, panel):
    stacked = pd.concat(panel.waves.values()).dropna(subset=["wijk"]).drop_duplicates(["resp_id", "wave"])
    per_person = stacked.groupby("resp_id").agg(
        wijk=("wijk", "nunique"), sex=("sex", "nunique"), age_min=("age_group", "min"), age_max=("age_group", "max")
    )
    assert (per_person["wijk"] == 1).all() and (per_person["sex"] == 1).all()
    assert ((per_person["age_max"] - per_person["age_min"]) <= 1).all()
    ordered = stacked.sort_values(["resp_id", "wave"])
    assert (ordered.groupby("resp_id")["age_group"].diff().dropna() >= 0).all()


def test_margins_are_consistent_and_use_spec_codes(spec, panel):
    margins = panel.margins
    totals = margins.groupby(["wave", "variable"])["count"].sum().unstack()
    assert (totals.nunique(axis=1) == 1).all()
    assert totals.iloc[:, 0].between(180_000, 220_000).all()
    for variable in BACKGROUND:
        for wave in spec.waves:
            m = margins[(margins["wave"] == wave) & (margins["variable"] == variable)]
            assert dict(zip(m["code"], m["label"])) == dict(spec.background[variable].codes)
            assert (m["count"] > 0).all()


def test_sample_is_skewed_and_weighting_moves_estimates(spec, panel):
    heard = spec.indicator("heard")
    for wave in spec.waves:
        frame = _clean(panel, wave)
        pop = panel.margins[(panel.margins["wave"] == wave)]
        pop_old = (
            pop.loc[(pop["variable"] == "age_group") & (pop["code"] == 4), "count"].sum()
            / pop.loc[pop["variable"] == "sex", "count"].sum()
        )
        assert (frame["age_group"] == 4).mean() > pop_old + 0.10
        assert (frame["sex"] == 2).mean() > 0.58
        weights = _raked(panel, wave, frame)
        unweighted = _indicator(spec, frame, np.ones(len(frame)), heard)
        weighted = _indicator(spec, frame, weights, heard)
        assert unweighted - weighted > 0.025


def test_weighted_rates_are_near_the_targets(spec, panel):
    """Raking undoes the selection (it is multiplicative in the margins), so weighted
    rates estimate the model's population rates: within 3.5 standard errors (Kish n_eff)."""
    checked = 0
    for wave in spec.waves:
        frame = _clean(panel, wave)
        weights = _raked(panel, wave, frame)
        for indicator in spec.indicators:
            variable = spec.variables[indicator.variable]
            model = ITEM_MODELS[indicator.variable]
            if wave not in variable.waves:
                continue
            residents_target = model.target_of == "residents" and indicator.base == "residents"
            if not (residents_target or (model.target_of == "asked" and indicator.base == variable.asked_of)):
                continue
            estimate, n_eff = _indicator(spec, frame, weights, indicator, with_n_eff=True)
            target = model.targets[wave]
            se = np.sqrt(target * (1 - target) / n_eff)
            assert abs(estimate - target) < 3.5 * se, (indicator.id, wave, estimate, se)
            checked += 1
    assert checked == 10 + 7 + 9


def test_scored_items_leave_every_other_column_as_it_was(spec, panel):
    """The scored items (report mark, agree scale) come from their own stream and get no faults: a spec
    without them gives the same frames, faults included, minus their columns."""
    raw = yaml.safe_load((ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    for name in SCORE_MODELS:
        del raw["variables"][name]
    raw["analyses"] = [a for a in raw["analyses"] if a["variable"] not in SCORE_MODELS]
    without = generate_panel(parse_spec(raw), n_per_wave=3000, seed=7)
    for wave, frame in panel.waves.items():
        pd.testing.assert_frame_equal(frame.drop(columns=list(SCORE_MODELS)), without.waves[wave])
    pd.testing.assert_frame_equal(panel.faults, without.faults)


def test_scored_items_hold_their_codes_and_follow_the_routing(spec, panel):
    frame = _clean(panel, 2021)
    mark = frame["report_mark"].to_numpy()
    contact = (frame["contact"] == 1).to_numpy()
    assert (mark[~contact] == spec.missing.not_asked.code).all()
    answered = mark[contact & (mark <= 10)]
    assert set(answered) <= set(range(1, 11)) and 6.0 < answered.mean() < 8.0  # a typical report mark
    assert {98.0, 99.0} <= set(mark[contact])
    reachable = frame.loc[frame["heard"] == 1, "reachable"]
    assert set(reachable) <= {1.0, 2.0, 3.0, 4.0, 5.0, 98.0, 99.0}
