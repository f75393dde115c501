"""The estimate stage: complete, schema-valid tables; suppression; targets; the chain; panel SEs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import SurveyDesign, contracts, demo
from survey_pipeline import indicators as ind
from survey_pipeline import targets as tgt
from survey_pipeline.artifacts import OutputStore, check_table, read_table, write_table
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.settings import (
    EstimateSettings,
    SuppressionRule,
    WeightSettings,
    load_params,
    parse_section,
    write_record,
)
from survey_pipeline.stages.estimate import stage as est

ROOT = Path(__file__).resolve().parents[2]
WEIGHTING = WeightSettings(margins=("age_group", "sex", "wijk"), population_file="data/population/margins.csv")
# Suppresses nothing: thresholds params.yaml cannot hold, so built without validation.
NO_SUPPRESSION = SuppressionRule.model_construct(
    min_n=0, min_n_eff=0, max_ci_width=1.01, max_relative_ci_width=math.inf
)


def _raked(frames: dict[int, pd.DataFrame], margins: pd.DataFrame) -> pd.DataFrame:
    """Rows of every wave with weights raked to the wave's margins (as the weight stage does)."""
    parts = []
    for wave, frame in frames.items():
        frame = frame[frame[list(WEIGHTING.weighting_variables)].notna().all(axis=1)].reset_index(drop=True)
        totals = est.wave_margins(margins, wave, WEIGHTING)
        weights = SurveyDesign(frame.assign(weight=1.0), weights="weight").rake(totals).weights
        parts.append(frame.assign(weight=weights))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def small(spec):
    panel = demo.generate_panel(spec, n_per_wave=400, seed=11, faults=False)
    return _raked(panel.waves, panel.margins), panel.margins


@pytest.fixture(scope="module")
def result(spec, small):
    data, margins = small
    return est.estimate_all(spec, data, margins, EstimateSettings(breakdowns=("sex",)), WEIGHTING)


def test_tables_pass_their_schemas(spec, result):
    check_table(result.indicators, contracts.EstimateIndicators, file="indicators", spec=spec)
    check_table(result.changes, contracts.EstimateChanges, file="changes", spec=spec)
    check_table(result.distributions, contracts.EstimateDistributions, file="distributions", spec=spec)


def test_every_indicator_wave_and_level_has_a_row(spec, result):
    levels = 1 + 2
    expected = sum(len(ind.measured_in(spec, i)) for i in spec.indicators) * levels
    assert len(result.indicators) == expected
    total = result.indicators[result.indicators["breakdown"] == "total"]
    assert set(zip(total["indicator_id"], total["wave"], strict=True)) == {
        (i.id, w) for i in spec.indicators for w in ind.measured_in(spec, i)
    }
    pairs = sum(len(est.change_pairs(ind.measured_in(spec, i))) for i in spec.indicators)
    assert len(result.changes) == pairs * levels
    categories = sum(len(ind.answer_categories(v)) for w in spec.waves for v in spec.variables_in_wave(w))
    assert len(result.distributions) == categories * levels


def test_rows_carry_spec_bases_and_labels(spec, result):
    rows = result.indicators.drop_duplicates("indicator_id").set_index("indicator_id")
    for indicator in spec.indicators:
        assert rows.loc[indicator.id, "base_text"] == spec.base_text(indicator.base)
        assert rows.loc[indicator.id, "label"] == indicator.label
    heard_base = "van de bewoners die (wel eens) gehoord hebben van WIJ Groningen"
    assert rows.loc["contact_of_heard", "base_text"] == heard_base
    labels = result.indicators.query("breakdown == 'sex'")["breakdown_label"].unique().tolist()
    assert labels == list(spec.background["sex"].codes.values())
    walk_in = result.distributions.query("variable == 'walk_in' and breakdown == 'total' and wave == 2019")
    assert walk_in["code_label"].tolist()[2] == "neutraal"
    assert set(walk_in["group"]) == {"heard_of_wij"}


def test_suppressed_values_are_never_numbers(result):
    numbers = {
        "indicators": ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"],
        "changes": [
            "estimate_from",
            "estimate_to",
            "difference",
            "se",
            "ci_lower",
            "ci_upper",
            "p_value",
            "se_independent",
        ],
        "distributions": ["estimate", "se", "ci_lower", "ci_upper"],
    }
    for name, columns in numbers.items():
        table = getattr(result, name)
        hidden = table[table["suppressed"]]
        assert len(hidden) > 0 and (hidden["suppression_reason"] != "").all()
        assert hidden[columns].isna().all().all()
        shown = table[~table["suppressed"]]
        assert len(shown) > 0 and (shown["suppression_reason"] == "").all()
        assert shown[["estimate" if "estimate" in columns else "difference"]].notna().all().all()
    small_groups = result.indicators[result.indicators["n"] < 30]
    assert small_groups["suppressed"].all()


def test_a_change_is_suppressed_when_either_wave_is(result):
    levels = result.indicators.set_index(["indicator_id", "wave", "breakdown", "breakdown_code"])["suppressed"]
    for row in result.changes.itertuples():
        either = (
            levels[(row.indicator_id, row.wave_from, row.breakdown, row.breakdown_code)]
            or levels[(row.indicator_id, row.wave_to, row.breakdown, row.breakdown_code)]
        )
        assert row.suppressed == either or "no_interval" in row.suppression_reason


def test_target_status_agrees_with_the_published_intervals(spec, result):
    table = result.indicators
    changes = result.changes.set_index(["indicator_id", "wave_from", "wave_to", "breakdown"])
    total = table[table["breakdown"] == "total"]
    assert set(total["target_status"]) <= set(tgt.STATUSES)
    for row in total.itertuples():
        text = spec.indicator(row.indicator_id).targets.get(row.wave)
        assert row.target == (text or "")
        if text is None:
            assert row.target_status == "no_target"
            continue
        target = tgt.parse_target(text)
        change = None
        if target.direction:
            measured = sorted(ind.measured_in(spec, spec.indicator(row.indicator_id)))
            previous = measured[measured.index(row.wave) - 1]
            found = changes.loc[(row.indicator_id, previous, row.wave, "total")]
            change = tgt.Interval(found["difference"], found["ci_lower"], found["ci_upper"])
        level = tgt.Interval(row.estimate, row.ci_lower, row.ci_upper)
        assert row.target_status == tgt.evaluate(target, level, change)[0]
    assert (total.query("kind == 'kengetal' and target == 'kengetal'")["target_status"] == "key_figure").all()


def test_distribution_shares_add_up_to_one(spec, small):
    data, margins = small
    params = EstimateSettings(breakdowns=("sex",), suppression=NO_SUPPRESSION)
    frame = data[data["wave"] == 2019].reset_index(drop=True)
    design, _ = est.wave_design(frame, est.wave_margins(margins, 2019, WEIGHTING), WEIGHTING, 1e-6)
    table = est.estimate_distributions(spec, design, 2019, params)
    sums = table.groupby(["variable", "breakdown", "breakdown_code"], dropna=False)["estimate"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-12)
    heard = table.query("variable == 'walk_in' and breakdown == 'total'")
    asked = frame["heard"] == 1
    assert heard["n_base"].iloc[0] == int(asked.sum())
    assert heard["sum_weights_base"].iloc[0] == pytest.approx(frame.loc[asked, "weight"].sum(), rel=1e-12)


def test_chain_identity_holds_for_the_published_estimates(spec, small):
    # With no "weet niet" / "geen antwoord" in heard, contact and helped every status
    # is determined and the bases nest (see tests/estimate/test_indicators.py), so with
    # the same raked weights: contact of all = heard x contact of those who heard, and
    # helped of all = heard x contact|heard x helped|contact, overall and in each level.
    data, margins = small
    data = data.copy()
    for name in ("heard", "contact", "helped"):
        data.loc[data[name].isin([98, 99]), name] = 2.0
    data.loc[data["heard"] != 1, "contact"] = -1.0
    data.loc[data["contact"] != 1, "helped"] = -1.0
    chain = [
        spec.indicator(i)
        for i in ("heard", "contact_of_heard", "helped_of_contact", "contact_of_residents", "helped_of_residents")
    ]
    frame = ind.add_outcomes(spec, data[data["wave"] == 2020].reset_index(drop=True), chain)[0]
    design, _ = est.wave_design(frame, est.wave_margins(margins, 2020, WEIGHTING), WEIGHTING, 1e-6)
    table = est.estimate_indicators(spec, design, 2020, EstimateSettings(breakdowns=("sex",)), chain)
    p = {i.id: table.loc[table["indicator_id"] == i.id, "estimate"].to_numpy() for i in chain}
    np.testing.assert_allclose(p["contact_of_residents"], p["heard"] * p["contact_of_heard"], rtol=1e-12)
    np.testing.assert_allclose(
        p["helped_of_residents"], p["heard"] * p["contact_of_heard"] * p["helped_of_contact"], rtol=1e-12
    )


def test_panel_changes_need_the_respondent_as_cluster(spec):
    # The demo panel (data/raw without its injected faults): about 60% of the
    # respondents answer in more than one wave and their answers correlate. The
    # clustered SE of a change differs from the SE that treats the waves as
    # independent samples; with the panel link cut (new ids in the later wave) the
    # two agree up to the n/(n-1) factors.
    panel = demo.generate_panel(spec, faults=False)
    data = _raked(panel.waves, panel.margins)
    chosen = [spec.indicator(i) for i in ("heard", "familiar", "contact_of_residents", "walk_in_easy")]
    params = EstimateSettings(breakdowns=())
    frames, margins, se = {}, {}, {}
    for wave in (2019, 2020, 2021):
        frames[wave] = ind.add_outcomes(spec, data[data["wave"] == wave].reset_index(drop=True), chosen)[0]
        margins[wave] = est.wave_margins(panel.margins, wave, WEIGHTING)
        design, _ = est.wave_design(frames[wave], margins[wave], WEIGHTING, 1e-6)
        se[wave] = est.estimate_indicators(spec, design, wave, params, chosen)["se"].to_numpy()
    for first, second in est.change_pairs([2019, 2020, 2021]):
        independent = np.sqrt(se[first] ** 2 + se[second] ** 2)
        both = {first: margins[first], second: margins[second]}
        linked = est.estimate_changes(
            spec,
            est.stacked_design([frames[first], frames[second]], both, WEIGHTING, spec),
            first,
            second,
            params,
            chosen,
        )
        assert (linked["n_both"] > 1000).all()
        ratio = linked["se"].to_numpy() / independent
        assert ratio.mean() < 0.99 and ratio[1] < 0.98  # familiar: clearly smaller
        unlinked_frames = [frames[first], frames[second].assign(resp_id=frames[second]["resp_id"] + 10**7)]
        unlinked = est.estimate_changes(
            spec, est.stacked_design(unlinked_frames, both, WEIGHTING, spec), first, second, params, chosen
        )
        assert (unlinked["n_both"] == 0).all()
        np.testing.assert_allclose(unlinked["se"].to_numpy(), independent, rtol=1e-3)
        np.testing.assert_allclose(unlinked["difference"].to_numpy(), linked["difference"].to_numpy(), rtol=1e-12)


def test_weights_off_the_margins_are_rejected(spec, small):
    data, margins = small
    data = data.copy()
    data.loc[(data["wave"] == 2019) & (data["sex"] == 1), "weight"] *= 1.05
    with pytest.raises(InputError) as info:
        est.estimate_all(spec, data, margins, EstimateSettings(breakdowns=()), WEIGHTING)
    assert info.value.rule == "calibration"


def test_params_are_checked(spec):
    params = load_params(ROOT / "params.yaml")
    params.estimate.check_against(spec)
    assert params.estimate.ci_method == "beta" and params.estimate.breakdowns == ("wijk", "age_group", "sex")
    assert params.weight.weighting_variables == ("age_group", "sex", "wijk")
    section = {"breakdowns": ["wijk"]}
    for bad, key in (
        ({"ci_method": "exact"}, "estimate.ci_method"),
        ({"level": 95}, "estimate.level"),
        ({"breakdowns": "wijk"}, "estimate.breakdowns"),
        ({"colour": 1}, "estimate.colour"),
        ({"suppression": {"min_n": -3}}, "estimate.suppression.min_n"),
    ):
        with pytest.raises(ParamsError) as info:
            parse_section(EstimateSettings, {**section, **bad}, "estimate")
        assert info.value.key == key
    with pytest.raises(ParamsError):
        EstimateSettings(breakdowns=("income",)).check_against(spec)


def test_run_reads_stage_outputs_and_writes_checked_tables(spec, small, tmp_path):
    data, margins = small
    data = data[data["wave"] != 2021]
    store = OutputStore(tmp_path / "outputs")
    valid = data.drop(columns="weight").assign(
        source_file=lambda f: "wij_panel_" + f["wave"].astype(str) + ".sav",
        source_row=lambda f: f.groupby("wave").cumcount().astype("int64") + 1,
        file_wave=lambda f: f["wave"].astype("int64"),
    )
    valid = valid[["source_file", "source_row", "file_wave", *[c for c in data.columns if c != "weight"]]]
    valid["source_file"] = valid["source_file"].astype("str")
    valid[["resp_id", "wave"]] = valid[["resp_id", "wave"]].astype("int64")
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={"estimate": params.estimate.model_copy(update={"breakdowns": ("sex",)})})
    with store.writing("validate") as out:
        write_table(valid, out / "valid.parquet", contracts.ValidateValid, spec)
        write_record(out, {"ingest": params.ingest, "validate": params.validate_})
    with store.writing("weight") as out:
        write_record(out, {"ingest": params.ingest, "validate": params.validate_, "weight": params.weight})
        # five respondents without a weight (the weight stage's missing-background rule)
        kept = data.iloc[5:].drop(columns="weight")
        weights = _raked({w: kept[kept["wave"] == w] for w in (2019, 2020)}, margins)
        write_table(
            weights[["resp_id", "wave", "weight"]].astype({"resp_id": "int64", "wave": "int64"}),
            out / "weights.parquet",
            contracts.WeightWeights,
            spec,
        )
    (tmp_path / "data" / "population").mkdir(parents=True)
    margins.to_csv(tmp_path / "data" / "population" / "margins.csv", index=False)
    demo.write_demo_registrations(spec, tmp_path / params.estimate.registrations_file)
    with pytest.raises(ParamsError, match="estimate.small_area.enabled"):  # its area figures need the area breakdown
        est.run(store, spec, params, tmp_path)
    settings = params.estimate.model_copy(
        update={"small_area": params.estimate.small_area.model_copy(update={"enabled": False})}
    )
    params = params.model_copy(update={"estimate": settings})
    summary = est.run(store, spec, params, tmp_path)
    store.commit()
    assert read_table(tmp_path / "outputs" / "estimate" / "sae.parquet", contracts.EstimateSae, spec).empty
    indicators = read_table(
        tmp_path / "outputs" / "estimate" / "indicators.parquet", contracts.EstimateIndicators, spec
    )
    read_table(tmp_path / "outputs" / "estimate" / "changes.parquet", contracts.EstimateChanges, spec)
    read_table(tmp_path / "outputs" / "estimate" / "distributions.parquet", contracts.EstimateDistributions, spec)
    registrations = read_table(
        tmp_path / "outputs" / "estimate" / "registrations.parquet", contracts.EstimateRegistrations, spec
    )
    assert summary["registrations"]["rows"] == len(registrations) > 0
    assert summary["indicators"]["rows"] == len(indicators)
    assert summary["waves"]["2019"]["rows_valid"] == summary["waves"]["2019"]["rows_weighted"] + 5
    assert summary["pairs"] == [[2019, 2020]]
    assert "resp_id" not in str(summary)


def test_a_single_wave_gives_an_empty_but_valid_change_table(spec, small):
    data, margins = small
    one = est.estimate_all(spec, data[data["wave"] == 2020], margins, EstimateSettings(breakdowns=()), WEIGHTING)
    assert one.changes.empty
    check_table(one.changes, contracts.EstimateChanges, file="changes", spec=spec)
    check_table(one.indicators, contracts.EstimateIndicators, file="indicators", spec=spec)
    toename = one.indicators[one.indicators["target"] == "toename"]
    assert len(toename) > 0
    assert (toename["target_status"] == "indistinguishable").all()
    assert toename["flags"].str.contains("target_not_evaluable:no_previous_wave").all()


def test_the_rule_uses_its_own_interval_whatever_interval_or_level_is_published(spec, small):
    """What is published depends on the rule only: the displayed method and level change
    the displayed interval, never the suppression decision (NCHS: always 95% Korn-Graubard)."""
    data, margins = small
    frame = ind.add_outcomes(spec, data[data["wave"] == 2019].reset_index(drop=True))[0]
    design, _ = est.wave_design(frame, est.wave_margins(margins, 2019, WEIGHTING), WEIGHTING, 1e-6)
    tables = {}
    for method, level in (("beta", 0.95), ("logit", 0.95), ("beta", 0.90), ("wald", 0.80)):
        params = EstimateSettings(ci_method=method, level=level, breakdowns=("age_group",))
        tables[method, level] = est.apply_rule(est.estimate_indicators(spec, design, 2019, params), params.suppression)
    beta = tables["beta", 0.95]
    for other in tables.values():
        assert (other["suppressed"] == beta["suppressed"]).all()
        assert (other["suppression_reason"] == beta["suppression_reason"]).all()
    assert 0 < beta["suppressed"].sum() < len(beta)
    logit = tables["logit", 0.95]
    shown = ~logit["suppressed"] & (logit["estimate"] > 0) & (logit["estimate"] < 1)
    assert (logit.loc[shown, "ci_method"] == "logit").all()
    assert not np.allclose(logit.loc[shown, "ci_lower"], beta.loc[shown, "ci_lower"])
    narrower = tables["beta", 0.90]
    assert (narrower.loc[shown, "ci_lower"] > beta.loc[shown, "ci_lower"]).all()


def test_poststratified_weights_are_recalibrated_on_the_same_cells(spec):
    """`weight.method: poststratify` runs through the estimate stage, post-stratified on the
    crossed variables: the same variance as post-stratifying on them directly."""
    weight = load_params(ROOT / "params.yaml").weight
    weighting = WeightSettings.model_validate({**weight.model_dump(), "method": "poststratify"})
    assert weighting.target_file == "data/population/cells.csv"
    panel = demo.generate_panel(spec, n_per_wave=400, seed=5, faults=False)
    cells = est.read_targets(ROOT / weighting.target_file, spec, weighting)
    frame = ind.add_outcomes(
        spec, panel.waves[2020].dropna(subset=["age_group", "sex"]).reset_index(drop=True), [spec.indicator("heard")]
    )[0]
    crossed = {
        (float(a), float(s)): float(n)
        for a, s, n in cells.loc[cells["wave"] == 2020, ["age_group", "sex", "count"]].itertuples(index=False)
    }
    direct = SurveyDesign(frame.assign(weight=1.0), weights="weight").poststratify(("age_group", "sex"), crossed)
    frame = frame.assign(weight=direct.weights)
    design, change = est.wave_design(frame, est.wave_margins(cells, 2020, weighting), weighting, 1e-9)
    assert change < 1e-9
    column = ind.outcome_column(spec.indicator("heard"))
    ours = design.proportion(column, success=[1])
    reference = direct.proportion(column, success=[1])
    assert ours["estimate"].iloc[0] == pytest.approx(reference["estimate"].iloc[0], rel=1e-12)
    assert ours["se"].iloc[0] == pytest.approx(reference["se"].iloc[0], rel=1e-10)


def test_poststratification_cells_are_keyed_by_their_codes_whatever_their_size(spec):
    """Codes of 1000 or more (e.g. a postcode-like code) key their own cell: no two cells
    merge, as they did when cells were keyed `code * 1000 + code` (age 1 x sex 2000 and
    age 2 x sex 1000 were one cell)."""
    weight = load_params(ROOT / "params.yaml").weight
    weighting = WeightSettings.model_validate({**weight.model_dump(), "method": "poststratify"})
    assert weighting.poststratify_cells == ("age_group", "sex")
    cells = est.read_targets(ROOT / weighting.target_file, spec, weighting)
    cells = cells.assign(sex=cells["sex"] * 1000)
    panel = demo.generate_panel(spec, n_per_wave=400, seed=5, faults=False)
    frame = panel.waves[2020].dropna(subset=["age_group", "sex"]).reset_index(drop=True)
    frame = ind.add_outcomes(spec, frame.assign(sex=frame["sex"] * 1000), [spec.indicator("heard")])[0]
    crossed = {
        (float(a), float(s)): float(n)
        for a, s, n in cells.loc[cells["wave"] == 2020, ["age_group", "sex", "count"]].itertuples(index=False)
    }
    assert len(crossed) == 2 * frame["age_group"].nunique() and {1000.0, 2000.0} == {s for _, s in crossed}
    direct = SurveyDesign(frame.assign(weight=1.0), weights="weight").poststratify(("age_group", "sex"), crossed)
    frame = frame.assign(weight=direct.weights)
    design, change = est.wave_design(frame, est.wave_margins(cells, 2020, weighting), weighting, 1e-9)
    assert change < 1e-9
    column = ind.outcome_column(spec.indicator("heard"))
    ours, reference = design.proportion(column, success=[1], by="sex"), direct.proportion(column, success=[1], by="sex")
    np.testing.assert_allclose(ours["estimate"], reference["estimate"], rtol=1e-12)
    np.testing.assert_allclose(ours["se"], reference["se"], rtol=1e-10)


def test_stacked_waves_are_calibrated_on_wave_x_code_whatever_the_codes(spec, small):
    """The stacked design is raked to every wave's margins crossed with the wave, keyed by
    (wave, code): recoding wijk to 10-digit codes changes nothing. Keyed `wave * 1e9 + code`,
    wijk 2 of 2019 and wijk 1 of 2020 were one category."""
    data, margins = small
    column = ind.outcome_column(spec.indicator("heard"))

    def stacked(data: pd.DataFrame, margins: pd.DataFrame) -> SurveyDesign:
        frames = [
            ind.add_outcomes(spec, data[data["wave"] == w].reset_index(drop=True), [spec.indicator("heard")])[0]
            for w in (2019, 2020)
        ]
        return est.stacked_design(
            frames, {w: est.wave_margins(margins, w, WEIGHTING) for w in (2019, 2020)}, WEIGHTING, spec
        )

    plain = stacked(data, margins)
    wijk_rows = margins["variable"] == "wijk"
    recoded = stacked(
        data.assign(wijk=data["wijk"] * 10**9),
        margins.assign(code=margins["code"].where(~wijk_rows, margins["code"] * 10**9)),
    )
    np.testing.assert_allclose(recoded.weights, plain.weights, rtol=1e-12)
    ours = recoded.proportion(column, success=[1], by="wave")
    reference = plain.proportion(column, success=[1], by="wave")
    np.testing.assert_allclose(ours["se"], reference["se"], rtol=1e-10)
