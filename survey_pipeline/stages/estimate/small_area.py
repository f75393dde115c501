"""Area (wijk) figures where the area sample is small: Fay-Herriot estimates in the estimate stage.

The areas are the levels of the spec's `survey.area_variable` (wijk in the demo).

Per indicator and wave, over the wijken (the estimate stage's direct estimates and their
calibration-aware SEs for the area breakdown, before suppression):

1. sampling variances smoothed by the generalised variance function
   (`sae_adjust.smooth_design_effects`): each wijk gets the effective sample size
   n / deff(n), so a tiny wijk never gets a near-zero variance;
2. the arcsine-square-root Fay-Herriot model (`sae.fay_herriot_arcsine`) on the wijk
   covariates of `estimate.small_area.covariates_file` (whole percentages, as shares,
   plus an intercept), variance of the wijk effect by `method`, parametric-bootstrap MSE;
3. benchmarked (`sae_adjust.benchmark`, `benchmarking`) so that the wijk estimates,
   weighted by the estimated size of the indicator's base in each wijk, add up to the
   direct estimate of the whole city;
4. diagnostics: sigma2_u, shrinkage per wijk (the weight of the direct estimate), the
   standardised residuals and a Shapiro-Wilk test of their normality, and the share of
   the between-wijk variance the covariates explain (1 - sigma2_u / sigma2_u of the
   model with an intercept only). When that share is below `min_explained_variance`, or
   the fit does not converge or cannot be made, the model is not used: the wijk shows
   the direct estimate where it is publishable, and the row says why (`warning`).

What is published per wijk: the direct estimate when it meets the publication rule
(`reliability.py`); otherwise the model-based estimate ("modelschatting"), when its
95% interval estimate +- 1.96 sqrt(MSE) (clipped to [0, 1]) meets the same width rules
(`max_ci_width`, `max_relative_ci_width`); otherwise nothing. Model-based figures are
not design-unbiased: they borrow strength from the other wijken through the model.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from survey_pipeline.contracts import SAE_NORMALITY_ALPHA as NORMALITY_ALPHA
from survey_pipeline.contracts import SAE_SOURCE_DIRECT as SOURCE_DIRECT
from survey_pipeline.contracts import SAE_SOURCE_MODEL as SOURCE_MODEL
from survey_pipeline.contracts import SAE_SOURCE_NONE as SOURCE_NONE
from survey_pipeline.contracts import EstimateSae, columns
from survey_pipeline.errors import InputError
from survey_pipeline.population import load_wijk_covariates
from survey_pipeline.sae import fay_herriot, fay_herriot_arcsine
from survey_pipeline.sae_adjust import benchmark, smooth_design_effects
from survey_pipeline.settings import TOTAL, SmallAreaSettings, SuppressionRule
from survey_pipeline.spec import QuestionnaireSpec

log = logging.getLogger(__name__)

Z95 = 1.959963984540054  # the 95% interval of the model-based estimate (publication level)
SAE_COLUMNS = columns(EstimateSae)  # column -> stored dtype, in order


def read_covariates(settings: SmallAreaSettings, base_dir: Path, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The area covariates `settings` names, from its covariates file (relative to `base_dir`)."""
    return load_wijk_covariates(Path(base_dir) / settings.covariates_file, spec, settings.covariates)


def model_interval_publishable(rule: SuppressionRule, estimate, lower, upper) -> np.ndarray:
    """The publication rule's width checks on a model-based interval (no n: the model has no base)."""
    p, lower, upper = (np.asarray(v, dtype=np.float64) for v in (estimate, lower, upper))
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(p > 0, width / p, np.inf)
    too_wide = (width >= rule.max_ci_width) | (
        (width > rule.relative_width_from) & (relative > rule.max_relative_ci_width)
    )
    return np.isfinite(p) & np.isfinite(width) & ~too_wide


def small_area_estimates(
    raw_levels: pd.DataFrame,
    suppressed: np.ndarray,
    covariates: pd.DataFrame,
    spec: QuestionnaireSpec,
    params: SmallAreaSettings,
    rule: SuppressionRule,
) -> pd.DataFrame:
    """One row per (indicator, wave, area) of `raw_levels` (the unsuppressed indicator rows; areas are
    the levels of the spec's `area_variable`; `suppressed` is the publication rule's verdict per row):
    see the module docstring. `covariates`: wave, the area code and the covariates."""
    parts = []
    area_rows = raw_levels["breakdown"].to_numpy() == spec.area_variable
    totals = raw_levels[raw_levels["breakdown"].to_numpy() == TOTAL].drop_duplicates(["indicator_id", "wave"])
    city_estimate = dict(zip(zip(totals["indicator_id"], totals["wave"]), totals["estimate"].to_numpy(float)))
    covariates_by_wave = {wave: frame.set_index(spec.area_variable) for wave, frame in covariates.groupby("wave")}
    for (indicator_id, wave), rows in raw_levels[area_rows].groupby(["indicator_id", "wave"], sort=False):
        wave_covariates = covariates_by_wave.get(wave)
        if wave_covariates is None:
            raise InputError(
                f"no {spec.area_variable} covariates for wave {wave}",
                file=params.covariates_file,
                column="wave",
                rule="population_file",
            )
        rows = rows.sort_values("breakdown_code")
        parts.append(
            _one_fit(
                rows,
                suppressed[rows.index.to_numpy()],
                float(city_estimate[indicator_id, wave]),
                wave_covariates,
                params,
                rule,
                str(indicator_id),
                int(wave),
            )
        )
    if not parts:
        return empty_table()
    return _typed(pd.DataFrame({column: np.concatenate([part[column] for part in parts]) for column in SAE_COLUMNS}))


def empty_table() -> pd.DataFrame:
    """The table without rows (written when the feature is switched off)."""
    return _typed(pd.DataFrame(columns=list(SAE_COLUMNS)))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in column order with the contract's types (`contracts.EstimateSae`)."""
    out = frame[list(SAE_COLUMNS)].copy()
    for column, dtype in SAE_COLUMNS.items():
        if dtype == "str":
            out[column] = pd.array(out[column].astype(object).to_numpy(), dtype="str")
        else:
            out[column] = out[column].astype(dtype)
    return out


def _one_fit(
    rows: pd.DataFrame,
    direct_suppressed: np.ndarray,
    city: float,
    covariates: pd.DataFrame,
    params: SmallAreaSettings,
    rule: SuppressionRule,
    indicator_id: str,
    wave: int,
) -> dict[str, np.ndarray]:
    """The columns of the rows of one indicator and wave (see the module docstring)."""
    codes = rows["breakdown_code"].to_numpy(float)
    p, se, n = (rows[c].to_numpy(float) for c in ("estimate", "se", "n"))
    size = rows["sum_weights"].to_numpy(float)
    areas = codes.size
    out = {
        "indicator_id": np.full(areas, indicator_id, dtype=object),
        "wave": np.full(areas, wave, dtype=np.int64),
        "area": codes.astype(np.int64),
        "area_label": rows["breakdown_label"].astype(str).to_numpy(),
        "n": n.astype(np.int64),
        "direct_estimate": p,
        "direct_se": se,
        "direct_suppressed": direct_suppressed.astype(bool),
        "method": np.full(areas, params.method, dtype=object),
    }
    for column in (
        "design_effect",
        "model_estimate",
        "model_rmse",
        "model_ci_lower",
        "model_ci_upper",
        "shrinkage",
        "standardized_residual",
        "benchmark_adjustment",
        "sigma2_u",
        "explained_variance",
        "normality_p",
    ):
        out[column] = np.full(areas, np.nan)
    out["model_publishable"] = np.zeros(areas, dtype=bool)
    out["model_used"] = np.zeros(areas, dtype=bool)
    fitted = n > 0
    by_code = covariates.reindex(codes.astype(np.int64))
    design = np.column_stack([np.ones(areas), by_code[list(params.covariates)].to_numpy(float) / 100.0])
    warning = _fit_into(out, fitted, p, se, n, size, design, city, params, rule, indicator_id, wave)
    out["warning"] = np.full(areas, warning, dtype=object)
    publish_direct = ~out["direct_suppressed"]
    publish_model = ~publish_direct & out["model_used"] & out["model_publishable"]
    out["published_source"] = np.where(
        publish_direct, SOURCE_DIRECT, np.where(publish_model, SOURCE_MODEL, SOURCE_NONE)
    ).astype(object)
    direct_lower, direct_upper = rows["ci_lower"].to_numpy(float), rows["ci_upper"].to_numpy(float)
    for published, direct, model in (
        ("published_estimate", p, out["model_estimate"]),
        ("published_ci_lower", direct_lower, out["model_ci_lower"]),
        ("published_ci_upper", direct_upper, out["model_ci_upper"]),
    ):
        out[published] = np.where(publish_direct, direct, np.where(publish_model, model, np.nan))
    return out


def _fit_into(
    out: dict[str, np.ndarray],
    fitted: np.ndarray,
    p,
    se,
    n,
    size,
    design,
    city: float,
    params: SmallAreaSettings,
    rule: SuppressionRule,
    indicator_id: str,
    wave: int,
) -> str:
    """Fit the model on the wijken with respondents and fill the columns `out`; the warning text ("" if none)."""
    where = f"{indicator_id} {wave}"
    if fitted.sum() <= design.shape[1] + 1:
        return _warn(where, f"only {int(fitted.sum())} areas with respondents: no model, direct estimates only")
    try:
        gvf = smooth_design_effects(se[fitted] ** 2, p[fitted], n[fitted])
        arcsine_size = gvf.arcsine_sample_size(city)
        fit = fay_herriot_arcsine(
            p[fitted], arcsine_size, design[fitted], params.method, replicates=params.bootstrap, seed=params.seed
        )
        null = fay_herriot(
            np.arcsin(np.sqrt(p[fitted])), 1.0 / (4.0 * arcsine_size), design[fitted][:, :1], params.method
        )
    except ValueError as exc:
        return _warn(where, f"no model ({exc}): direct estimates only")
    estimate, mse = fit.estimate, fit.mse
    if params.benchmarking != "none":
        benchmarked = benchmark(estimate, mse, size[fitted], city, params.benchmarking)
        estimate, mse = benchmarked.estimate, benchmarked.mse
        out["benchmark_adjustment"][fitted] = benchmarked.adjustment
    rmse = np.sqrt(mse)
    lower, upper = np.clip(estimate - Z95 * rmse, 0, 1), np.clip(estimate + Z95 * rmse, 0, 1)
    sigma2_u = fit.transformed.sigma2_u
    explained = 1.0 - sigma2_u / null.sigma2_u if null.sigma2_u > 0 else math.nan
    residuals = fit.transformed.standardized_residuals
    normality_p = _shapiro_p(residuals)
    for column, values in (
        ("design_effect", gvf.design_effect),
        ("model_estimate", estimate),
        ("model_rmse", rmse),
        ("model_ci_lower", lower),
        ("model_ci_upper", upper),
        ("shrinkage", fit.transformed.gamma),
        ("standardized_residual", residuals),
        ("model_publishable", model_interval_publishable(rule, estimate, lower, upper)),
    ):
        out[column][fitted] = values
    out["sigma2_u"][:] = sigma2_u
    out["explained_variance"][:] = explained
    out["normality_p"][:] = normality_p
    warnings = []
    if not fit.converged:
        warnings.append("the model did not converge: direct estimates only")
    elif np.isfinite(explained) and explained < params.min_explained_variance:
        warnings.append(
            f"the covariates explain {explained:.0%} of the variance between areas (below "
            f"{params.min_explained_variance:.0%}): direct estimates only"
        )
    else:
        out["model_used"][fitted] = True
    if normality_p < NORMALITY_ALPHA:
        warnings.append(f"standardised residuals not normal (Shapiro-Wilk p = {normality_p:.3f})")
    if (~fitted).any():
        warnings.append(f"{int((~fitted).sum())} area(s) without respondents: no estimate there")
    return _warn(where, "; ".join(warnings)) if warnings else ""


def _shapiro_p(residuals: np.ndarray) -> float:
    from scipy.stats import shapiro  # costly to import; only when a model is fitted

    return float(shapiro(residuals).pvalue) if residuals.size >= 3 else math.nan


def _warn(where: str, message: str) -> str:
    log.warning("small-area estimates %s: %s", where, message)
    return message


def published_share(table: pd.DataFrame) -> float:
    """Share of wijk cells (indicator x wave x wijk) with a published figure."""
    return float((table["published_source"] != SOURCE_NONE).mean()) if len(table) else math.nan
