"""Small-area wijk estimates in the estimate stage (small_area.py) and what the report publishes of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline import sae
from survey_pipeline.errors import ParamsError
from survey_pipeline.reliability import assess
from survey_pipeline.settings import EstimateSettings, SmallAreaSettings, SuppressionRule, parse_section
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.estimate.small_area import SAE_COLUMNS, model_interval_publishable, small_area_estimates
from survey_pipeline.stages.report.tables import publish_small_area

ROOT = Path(__file__).resolve().parents[2]
WIJKEN = 30
RULE = SuppressionRule()
COVARIATES = ("pct_a", "pct_b")


SPEC = load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")  # area_variable: wijk


@pytest.fixture(scope="module")
def spec():
    return SPEC


def _levels(seed: int, slope: float, residual_sd: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unsuppressed indicator rows (total + 30 wijken) of one indicator and wave, direct estimates
    drawn around a truth that follows covariate `pct_a` with `slope`, and the covariates."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(5, 40, WIJKEN), rng.uniform(5, 40, WIJKEN)
    truth = np.clip(0.15 + slope * (a - 20) / 100 + rng.normal(0, residual_sd, WIJKEN), 0.02, 0.98)
    n = np.round(np.exp(rng.uniform(np.log(8), np.log(300), WIJKEN))).astype(int)
    size = n * 60.0
    deff = 1.5
    p = rng.binomial(n, truth) / n
    se = np.sqrt(deff * p * (1 - p) / n)
    lower = np.clip(p - 2 * se, 0, 1)
    upper = np.clip(p + 2 * se, 0, 1)
    city = float(size @ p / size.sum())
    city_se = 0.005
    rows = pd.DataFrame(
        {
            "indicator_id": "heard",
            "wave": 2021,
            "breakdown": ["total", *["wijk"] * WIJKEN],
            "breakdown_code": [np.nan, *np.arange(1, WIJKEN + 1, dtype=float)],
            "breakdown_label": ["Totaal", *[f"wijk {i}" for i in range(1, WIJKEN + 1)]],
            "estimate": [city, *p],
            "se": [city_se, *se],
            "ci_lower": [city - 0.01, *lower],
            "ci_upper": [city + 0.01, *upper],
            "n": [int(n.sum()), *n],
            "df": [float(n.sum() - 1), *(n - 1.0)],
            "sum_weights": [size.sum(), *size],
        }
    )
    covariates = pd.DataFrame({"wave": 2021, "wijk": np.arange(1, WIJKEN + 1), "pct_a": a.round(), "pct_b": b.round()})
    return rows, covariates


def _estimates(rows, covariates, **settings):
    params = SmallAreaSettings(enabled=True, covariates=COVARIATES, bootstrap=50, seed=1, **settings)
    suppressed = assess(RULE, rows["estimate"], rows["se"], rows["n"], rows["df"]).suppressed
    return small_area_estimates(rows, suppressed, covariates, SPEC, params, RULE)


def test_published_figure_is_direct_where_publishable_else_the_model_where_its_interval_is():
    rows, covariates = _levels(seed=1, slope=0.8, residual_sd=0.01)
    table = _estimates(rows, covariates)
    assert list(table.columns) == list(SAE_COLUMNS) and len(table) == WIJKEN
    assert table["model_used"].all() and table["warning"].eq("").all()
    direct = ~table["direct_suppressed"]
    assert (table.loc[direct, "published_source"] == "direct").all()
    np.testing.assert_array_equal(table.loc[direct, "published_estimate"], table.loc[direct, "direct_estimate"])
    model = table["direct_suppressed"] & table["model_publishable"]
    assert model.any()
    assert (table.loc[model, "published_source"] == "model").all()
    np.testing.assert_array_equal(table.loc[model, "published_estimate"], table.loc[model, "model_estimate"])
    neither = table["direct_suppressed"] & ~table["model_publishable"]
    assert table.loc[neither, "published_estimate"].isna().all()
    # the model interval is estimate +- 1.96 rmse, clipped, and judged by the width rule
    np.testing.assert_allclose(
        table["model_ci_upper"], np.clip(table["model_estimate"] + 1.959963984540054 * table["model_rmse"], 0, 1)
    )
    np.testing.assert_array_equal(
        table["model_publishable"],
        model_interval_publishable(RULE, table["model_estimate"], table["model_ci_lower"], table["model_ci_upper"]),
    )


def test_tiny_wijken_shrink_more_and_the_estimates_add_up_to_the_city():
    rows, covariates = _levels(seed=2, slope=0.8, residual_sd=0.03)
    table = _estimates(rows, covariates)
    gamma, n = table["shrinkage"].to_numpy(), table["n"].to_numpy()
    assert np.corrcoef(gamma, n)[0, 1] > 0.5  # the direct estimate weighs more where the sample is larger
    size = rows["sum_weights"].to_numpy()[1:]
    city = rows["estimate"].iloc[0]
    assert size @ table["model_estimate"].to_numpy() / size.sum() == pytest.approx(city, abs=1e-12)
    assert (table["design_effect"] > 0).all()  # no wijk without a (smoothed) sampling variance


def test_covariates_that_explain_little_fall_back_to_the_direct_estimates():
    """Strong wijk differences unrelated to the covariates: the model is not used, and says so."""
    rows, covariates = _levels(seed=3, slope=0.0, residual_sd=0.12)
    table = _estimates(rows, covariates, min_explained_variance=0.5)
    assert not table["model_used"].any()
    assert table["warning"].str.contains("explain").all()
    assert table["explained_variance"].iloc[0] < 0.5
    assert set(table["published_source"]) <= {"direct", "none"}
    hidden = table["direct_suppressed"]
    assert (table.loc[hidden, "published_source"] == "none").all()


def test_a_wave_without_covariates_is_an_input_error():
    rows, covariates = _levels(seed=4, slope=0.5, residual_sd=0.02)
    with pytest.raises(Exception, match="no wijk covariates for wave 2021"):
        _estimates(rows, covariates.assign(wave=2020))


def test_the_report_table_never_carries_a_suppressed_direct_estimate(spec):
    rows, covariates = _levels(seed=5, slope=0.8, residual_sd=0.01)
    table = _estimates(rows, covariates)
    published = publish_small_area(table, spec)
    assert set(published["source"]) <= {"direct", "modelschatting", "niet gepubliceerd"}
    hidden = table["direct_suppressed"].to_numpy()
    shown = published["estimate"].to_numpy()[hidden]
    direct = table["direct_estimate"].to_numpy()[hidden]
    model = table["model_estimate"].to_numpy()[hidden]
    assert not np.any(np.isclose(shown, direct) & ~np.isclose(direct, model))
    assert (published.loc[published["source"] == "niet gepubliceerd", "estimate"].isna()).all()
    assert "shrinkage" not in published and "direct_estimate" not in published


def _estimate_section(small_area=None) -> EstimateSettings:
    raw = {"breakdowns": ["wijk"], **({"small_area": small_area} if small_area is not None else {})}
    return parse_section(EstimateSettings, raw, "estimate")


def test_params_switch_the_feature_and_are_strict():
    assert _estimate_section().small_area.enabled is False
    parsed = _estimate_section({"enabled": True, "method": "ML", "benchmarking": "difference"}).small_area
    assert (parsed.enabled, parsed.method, parsed.benchmarking) == (True, "ML", "difference")
    for wrong, key in (
        ({"enabled": "yes"}, "enabled"),
        ({"method": "EBLUP"}, "method"),
        ({"shrink": 1}, "shrink"),
        ({"bootstrap": 0}, "bootstrap"),
        ({"covariates": []}, "covariates"),
    ):
        with pytest.raises(ParamsError, match=f"estimate.small_area.{key}"):
            _estimate_section(wrong)


def test_the_methods_are_those_the_fitter_knows():
    assert SmallAreaSettings.model_fields["method"].annotation.__args__ == sae.METHODS


def test_enabled_without_the_area_breakdown_is_a_params_error(spec):
    settings = parse_section(EstimateSettings, {"breakdowns": ["sex"], "small_area": {"enabled": True}}, "estimate")
    with pytest.raises(ParamsError, match="estimate.small_area.enabled.*'wijk' breakdown"):
        settings.check_against(spec)


def _indicator_rows(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The report's indicator rows of the fitted wijken: suppressed ones carry no numbers."""
    out = rows.assign(level=0.95, suppressed=False)
    out.loc[1:, "suppressed"] = table["direct_suppressed"].to_numpy()
    out.loc[out["suppressed"], ["estimate", "ci_lower", "ci_upper"]] = np.nan
    return out


def test_the_wijk_figure_shows_model_based_figures_only_where_published(spec, tmp_path):
    from survey_pipeline.stages.report import figures

    rows, covariates = _levels(seed=6, slope=0.8, residual_sd=0.01)
    table = _estimates(rows, covariates)
    indicators = _indicator_rows(table, rows)
    heard = next(i for i in spec.indicators if i.id == "heard")
    plain = figures.area_plan(indicators, spec, heard, 2021)
    marked = figures.area_plan(indicators, spec, heard, 2021, table)
    assert "modelschatting" not in plain.description and "modelschatting" in marked.description
    figures.draw(marked, {"svg": tmp_path / "wijk_heard.svg"})
    svg = (tmp_path / "wijk_heard.svg").read_text(encoding="utf-8")
    model_wijken = table.loc[table["published_source"] == "model", "area_label"]
    hidden_wijken = table.loc[table["published_source"] == "none", "area_label"]
    assert len(model_wijken) and all(f"{name} (m)" in svg for name in model_wijken)
    assert not any(f"{name} (m)" in svg for name in hidden_wijken)
    assert svg.count("niet gepubliceerd") >= len(hidden_wijken)


def test_the_workbook_sheet_is_dutch_and_names_the_area_after_the_spec(spec):
    from survey_pipeline.stages.report.sheets import dutch_small_area

    rows, covariates = _levels(seed=5, slope=0.8, residual_sd=0.01)
    published = publish_small_area(_estimates(rows, covariates), spec)
    sheet = dutch_small_area(published, spec)
    area_header = spec.background[spec.area_variable].label
    assert list(sheet.columns) == [
        "Indicator (code)",
        "Indicator",
        "Jaar",
        "Code",
        area_header,
        "Bron",
        "Percentage",
        "Ondergrens",
        "Bovengrens",
    ]
    assert sheet[area_header].tolist() == published["area_label"].tolist()
