"""The spec's analyses in the estimate stage: typed tables, equal to direct `SurveyDesign` calls on the
same calibrated designs, valid answers only, small cells suppressed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import SurveyDesign, contracts, demo
from survey_pipeline import indicators as ind
from survey_pipeline.artifacts import check_table
from survey_pipeline.settings import EstimateSettings, SuppressionRule, WeightSettings
from survey_pipeline.spec import Analysis
from survey_pipeline.stages.estimate import analyses as an
from survey_pipeline.stages.estimate import stage as est

CAL = WeightSettings(margins=("age_group", "sex", "wijk"), population_file="data/population/margins.csv")
# A low minimum base, so that on this small panel some wijken are published and others not.
PARAMS = EstimateSettings(breakdowns=("sex",), suppression=SuppressionRule(min_n=10))
MARKS = [float(v) for v in range(1, 11)]


@pytest.fixture(scope="module")
def small(spec):
    """Three raked demo waves (as the weight stage leaves them) and their margins."""
    panel = demo.generate_panel(spec, n_per_wave=900, seed=7, faults=False)
    parts = []
    for wave, frame in panel.waves.items():
        frame = frame[frame[list(CAL.weighting_variables)].notna().all(axis=1)].reset_index(drop=True)
        design = SurveyDesign(frame.assign(weight=1.0), weights="weight")
        parts.append(frame.assign(weight=design.rake(est.wave_margins(panel.margins, wave, CAL)).weights))
    return pd.concat(parts, ignore_index=True), panel.margins


@pytest.fixture(scope="module")
def result(spec, small):
    data, margins = small
    return est.estimate_all(spec, data, margins, PARAMS, CAL)


@pytest.fixture(scope="module")
def designs(spec, small):
    """The calibrated design of each wave, built as the stage builds it."""
    data, margins = small
    out = {}
    for wave in spec.waves:
        frame = data[data["wave"] == wave].reset_index(drop=True)
        out[wave] = est.wave_design(frame, est.wave_margins(margins, wave, CAL), CAL, 1e-6)[0]
    return out


def _published(table: pd.DataFrame, **where) -> pd.DataFrame:
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return rows[~rows["suppressed"]]


def test_every_table_meets_its_contract(spec, result):
    assert set(result.analyses) == set(contracts.ANALYSIS_TABLES)
    for name, table in result.analyses.items():
        check_table(table, contracts.ANALYSIS_TABLES[name], file=name, spec=spec)
        assert len(table), name  # the demo spec declares every kind


def test_means_equal_direct_calls_and_use_valid_answers_only(result, designs):
    means = result.analyses["means"]
    for wave, design in designs.items():
        where = {"contact": [1], "report_mark": MARKS}
        direct = design.mean("report_mark", where=where, by="wijk")
        total = design.mean("report_mark", where=where).iloc[0]
        rows = means[(means["analysis_id"] == "report_mark") & (means["wave"] == wave)]
        stage_total = rows[rows["breakdown"] == "total"].iloc[0]
        assert stage_total["estimate"] == pytest.approx(total["estimate"], rel=1e-12)
        assert stage_total["se"] == pytest.approx(total["se"], rel=1e-12)
        # the oracle: the weighted mean of the marks 1-10 of those with contact ("weet niet" 99 left out)
        data = design.data
        valid = (data["contact"] == 1) & data["report_mark"].isin(MARKS)
        weights = design.weights[valid.to_numpy()]
        assert total["estimate"] == pytest.approx(np.average(data.loc[valid, "report_mark"], weights=weights))
        assert (data.loc[data["contact"] == 1, "report_mark"] == 99).any()  # so the exclusion matters
        published = rows[(rows["breakdown"] == "wijk") & ~rows["suppressed"]].set_index("breakdown_code")
        assert len(published) >= 1
        for code, row in published.iterrows():
            match = direct[direct["wijk"] == code].iloc[0]
            for column in ("estimate", "se", "ci_lower", "ci_upper", "df", "n"):
                assert row[column] == pytest.approx(match[column], rel=1e-12), (wave, code, column)


def test_small_cells_are_suppressed_with_their_reason(result):
    rule = PARAMS.suppression
    means = result.analyses["means"]
    small = means[means["n"] < rule.min_n]
    assert len(small) and small["suppressed"].all() and small["estimate"].isna().all()
    assert set(small["suppression_reason"]) <= {"min_n", "no_estimate"}
    assert (means.loc[~means["suppressed"], "n"] >= rule.min_n).all()
    # an empty wijk is a row too, without numbers
    assert means.groupby(["analysis_id", "wave", "breakdown"]).size().loc[("report_mark", 2019, "wijk")] == 30
    odds = result.analyses["odds_ratios"]
    assert (odds.loc[~odds["suppressed"], "n"] >= rule.min_n).all()
    versus = result.analyses["area_vs_rest"]
    hidden = versus[versus["suppressed"]]
    assert len(hidden) and hidden[["estimate_area", "estimate_rest", "difference", "p_adjusted"]].isna().all().all()


def test_crosstab_equals_chisq_and_proportions(result, designs):
    cells, tests = result.analyses["crosstabs"], result.analyses["crosstab_tests"]
    for wave, design in designs.items():
        where = {"heard": [1.0, 2.0]}
        direct = design.chisq("heard", "age_group", where=where, statistic="F")
        row = tests[tests["wave"] == wave].iloc[0]
        for key in ("statistic", "ndf", "ddf", "p_value", "pearson", "n"):
            assert row[key] == pytest.approx(direct[key], rel=1e-12), key
        shares = design.proportion("heard", [1], where=where, by="age_group", ci=PARAMS.ci_method)
        stage = _published(cells, wave=wave, row_code=1.0).set_index("column_code")
        assert len(stage) == 4
        for _, match in shares.iterrows():
            assert stage.loc[match["age_group"], "estimate"] == pytest.approx(match["estimate"], rel=1e-12)
            assert stage.loc[match["age_group"], "ci_upper"] == pytest.approx(match["ci_upper"], rel=1e-12)
        both = cells[(cells["wave"] == wave) & ~cells["suppressed"]].groupby("column_code")["estimate"].sum()
        assert np.allclose(both, 1.0)  # per column the answers add up


def test_odds_ratios_equal_the_logit(result, designs):
    odds = result.analyses["odds_ratios"]
    for wave, design in designs.items():
        fit = design.logit(
            "heard ~ factor(age_group) + factor(sex)", success=[2], where={"heard": [1, 2], "sex": [1, 2]}
        )
        rows = odds[(odds["wave"] == wave) & ~odds["reference"]].set_index("term")
        assert list(rows.index) == list(fit.index)
        assert np.allclose(rows["estimate"], fit["estimate"], rtol=1e-10)
        assert np.allclose(rows["odds_ratio"], np.exp(fit["estimate"]), rtol=1e-10)
        assert np.allclose(rows["or_lower"], np.exp(fit["ci_lower"]), rtol=1e-10)
        references = odds[(odds["wave"] == wave) & odds["reference"]]
        assert list(references["term"]) == ["factor(age_group)1", "factor(sex)1"]
        assert (references["odds_ratio"] == 1.0).all() and references["or_lower"].isna().all()


def test_area_vs_rest_equals_domain_vs_rest_with_holm(result, designs):
    versus = result.analyses["area_vs_rest"]
    for wave, design in designs.items():
        direct = design.domain_vs_rest("heard", success=[1], where={"heard": [1, 2]}, by="wijk", adjust="holm")
        rows = versus[versus["wave"] == wave].set_index("area_code")
        assert len(rows) == len(direct) and (rows["adjust"] == "holm").all()
        assert (rows["n_tests"] == direct["n_tests"].iloc[0]).all()  # adjusted over every area, published or not
        for _, match in direct.iterrows():
            row = rows.loc[match["wijk"]]
            if not row["suppressed"]:
                assert row["p_adjusted"] == pytest.approx(match["p_adjusted"], rel=1e-12)
                assert row["difference"] == pytest.approx(match["difference"], rel=1e-12)


def test_trend_equals_the_stacked_design(spec, small, result):
    data, margins = small
    frames = [data[data["wave"] == w].reset_index(drop=True) for w in spec.waves]
    stacked = est.stacked_design(frames, {w: est.wave_margins(margins, w, CAL) for w in spec.waves}, CAL, spec)
    direct = stacked.trend("heard", success=[1], where={"heard": [1, 2]}, over="wave", waves=list(spec.waves))
    row = result.analyses["trends"].iloc[0]
    assert (row["wave_first"], row["wave_last"], row["n_waves"]) == (2019, 2021, 3)
    for key in ("slope", "se", "df", "p_value"):
        assert row[key] == pytest.approx(direct[key].iloc[0], rel=1e-12), key


@pytest.mark.filterwarnings("ignore:Perfect separation")
def test_a_model_the_data_cannot_carry_is_withheld_with_its_reason(spec, designs, caplog):
    analysis = spec.analyses[3].model_copy(update={"predictors": ("age_group", "sex", "wijk")})
    tiny = SurveyDesign(designs[2019].data.iloc[:40].reset_index(drop=True), weights="weight")
    rows = an.logit_rows(spec, analysis, tiny, 2019, PARAMS)
    assert rows and all(r["suppressed"] and r["suppression_reason"] == "no_model" for r in rows)
    assert all(np.isnan(r["odds_ratio"]) for r in rows)
    assert "analysis 'not_heard' (wave 2019): no model" in caplog.text


def test_a_table_with_one_level_left_has_no_test(spec, designs, caplog):
    analysis = spec.analyses[2].model_copy(update={"base": "heard_of_wij"})  # heard is 1 for all of them
    cells, tests = an.crosstab_rows(spec, analysis, designs[2019], 2019, PARAMS)
    assert tests[0]["suppressed"] and tests[0]["suppression_reason"] == "no_test"
    assert tests[0]["n"] == sum(c["n"] for c in cells if c["row_code"] == 1.0) > 0
    assert "analysis 'heard_by_age' (wave 2019): no Rao-Scott test" in caplog.text
    check_table(an._frame(tests, contracts.AnalysisCrosstabTests), contracts.AnalysisCrosstabTests, file="t")


def test_a_spec_without_analyses_writes_empty_tables(spec, small):
    data, margins = small
    bare = dataclasses.replace(spec, analyses=())
    tables = est.estimate_all(bare, data, margins, PARAMS, CAL).analyses
    for name, table in tables.items():
        assert table.empty
        check_table(table, contracts.ANALYSIS_TABLES[name], file=name, spec=spec)


def test_where_joins_conditions_on_the_same_variable(spec):
    analysis = Analysis(id="x", kind="mean", variable="contact", base="had_contact", title="t")
    assert an.analysis_where(spec, analysis, "contact") == {"contact": [1.0]}
    assert ind.group_where(spec, "had_contact") == {"contact": [1]}
