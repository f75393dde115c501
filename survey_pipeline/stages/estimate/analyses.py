"""The spec's analyses (`analyses:`): means, crosstabs, logits, area vs rest and trends.

Each analysis runs on the same calibrated `SurveyDesign` of a wave as the indicators
(raked again to the wave's margins, so the variances are calibration-aware); a trend runs on
the stacked waves with the respondent as cluster, calibrated to every wave's margins, as the
changes do. Only substantive answers count: "weet niet", "geen antwoord" and "niet gevraagd"
leave the analysis (a domain condition on the answer codes, R's na.rm on the valid answers).

Publication (`estimate.suppression`): shares (crosstab cells, the area of an area-vs-rest
comparison) follow the indicators' rule (`reliability.py`); means, odds-ratio levels and
trends need `min_n` respondents (in the domain, at the level, in every wave). A suppressed row
carries no numbers, only its reason, so no small cell is published. The area-vs-rest
comparison publishes an area's difference (and rest) only where its own share (or mean) is
published: with the municipal figure public, either would reveal it. A test or model the data of a wave
cannot carry (a table with one level left, a model matrix not of full rank) is withheld the
same way, with its reason (`no_test`, `no_model`), and named in a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from survey_pipeline import contracts
from survey_pipeline.contracts import columns
from survey_pipeline.core.design import SurveyDesign
from survey_pipeline.errors import InputError
from survey_pipeline.indicators import group_where
from survey_pipeline.reliability import assess
from survey_pipeline.settings import TOTAL, EstimateSettings, SuppressionRule
from survey_pipeline.spec import Analysis, QuestionnaireSpec

log = logging.getLogger(__name__)

TOTAL_LABEL = "Totaal"  # the label of the total row in every estimate table
INTERCEPT = "(Intercept)"
Where = dict[str, list[float]]


def empty_tables() -> dict[str, pd.DataFrame]:
    """Every analysis table without rows (a spec without analyses of a kind)."""
    return {name: _frame([], model) for name, model in contracts.ANALYSIS_TABLES.items()}


def _frame(rows: Sequence[Mapping[str, Any]], model: Any) -> pd.DataFrame:
    """Rows as a table with its contract's columns and dtypes (text stored as `str`)."""
    table = columns(model)
    frame = pd.DataFrame(list(rows), columns=list(table))
    for column, dtype in table.items():
        frame[column] = frame[column].astype("str" if dtype == "str" else dtype)
    return frame


def _labels(spec: QuestionnaireSpec, name: str) -> Mapping[int, str]:
    """Codes and labels of a question's substantive answers or a background variable's levels."""
    return spec.variables[name].codes if name in spec.variables else spec.background[name].codes


def _valid(spec: QuestionnaireSpec, name: str) -> list[float]:
    return [float(code) for code in _labels(spec, name)]


def _and(*conditions: Mapping[str, Sequence[float]] | None) -> Where:
    """Conditions joined (AND): a variable in several keeps the codes they share."""
    out: Where = {}
    for condition in conditions:
        for name, codes in (condition or {}).items():
            kept = [float(c) for c in codes]
            out[name] = [c for c in out[name] if c in kept] if name in out else kept
    return out


def analysis_where(spec: QuestionnaireSpec, analysis: Analysis, *names: str) -> Where:
    """The domain of an analysis: its base group and a substantive answer to each of `names`."""
    return _and(group_where(spec, analysis.base), *({name: _valid(spec, name)} for name in names))


def measured(spec: QuestionnaireSpec, analysis: Analysis, wave: int) -> bool:
    """Whether every question the analysis uses was asked in `wave`."""
    used = [analysis.variable, *([analysis.against] if analysis.against else []), *(analysis.predictors or ())]
    return all(wave in spec.variables[name].waves for name in used if name in spec.variables)


def _suppress(rows: list[dict], blocked: Sequence[str], numbers: Sequence[str]) -> list[dict]:
    """Rows with their suppression: where `blocked` (reason per row, "" = published), numbers become NaN."""
    for row, reason in zip(rows, blocked, strict=True):
        row["suppressed"] = bool(reason)
        row["suppression_reason"] = reason
        if reason:
            for number in numbers:
                row[number] = np.nan
    return rows


def _min_n_reason(n: int, estimate: float, lower: float, rule: SuppressionRule) -> str:
    """The publication rule of a mean, a level or a trend: min_n, an estimate and an interval."""
    if not np.isfinite(estimate):
        return "no_estimate"
    if n < rule.min_n:
        return "min_n"
    return "" if np.isfinite(lower) else "no_interval"


def _fail(analysis: Analysis, wave: int | str, exc: ValueError) -> InputError:
    return InputError(f"analysis '{analysis.id}' (wave {wave}): {exc}", rule="analysis")


# ---------------------------------------------------------------------------
# Per kind


def mean_rows(
    spec: QuestionnaireSpec, analysis: Analysis, design: SurveyDesign, wave: int, params: EstimateSettings
) -> list[dict]:
    """The mean overall and per level of each breakdown (every spec level, empty ones suppressed)."""
    where = analysis_where(spec, analysis, analysis.variable)
    rows = []
    parts = [(TOTAL, design.mean(analysis.variable, where=where, level=params.level))]
    parts += [(b, design.mean(analysis.variable, where=where, by=b, level=params.level)) for b in analysis.breakdowns]
    for breakdown, result in parts:
        if breakdown == TOTAL:
            levels = [(np.nan, TOTAL_LABEL, result.iloc[0])]
        else:
            found = {float(row[breakdown]): row for _, row in result.iterrows()}
            levels = [(float(c), label, found.get(float(c))) for c, label in spec.background[breakdown].codes.items()]
        for code, label, row in levels:
            numbers = (
                {k: float(row[k]) for k in ("estimate", "se", "ci_lower", "ci_upper", "df", "sum_weights")}
                if row is not None
                else dict.fromkeys(("estimate", "se", "ci_lower", "ci_upper", "df"), np.nan) | {"sum_weights": 0.0}
            )
            rows.append(
                {
                    "analysis_id": analysis.id,
                    "title": analysis.title,
                    "variable": analysis.variable,
                    "wave": int(wave),
                    "base_text": spec.base_text(analysis.base),
                    "breakdown": breakdown,
                    "breakdown_code": code,
                    "breakdown_label": label,
                    **numbers,
                    "level": params.level,
                    "n": int(row["n"]) if row is not None else 0,
                }
            )
    reasons = [_min_n_reason(r["n"], r["estimate"], r["ci_lower"], params.suppression) for r in rows]
    return _suppress(rows, reasons, ("estimate", "se", "ci_lower", "ci_upper"))


def crosstab_rows(
    spec: QuestionnaireSpec, analysis: Analysis, design: SurveyDesign, wave: int, params: EstimateSettings
) -> tuple[list[dict], list[dict]]:
    """Per level of `against`, the share of each answer of `variable` (the publication rule per cell),
    and the Rao-Scott F test of the table (published when the table has `min_n` respondents)."""
    row_var, col_var = analysis.variable, analysis.against
    assert col_var is not None  # the spec requires it for a crosstab
    where = analysis_where(spec, analysis, row_var, col_var)
    try:
        test: Mapping[str, float] | None = design.chisq(row_var, col_var, where=where, statistic="F")
    except ValueError as exc:
        log.warning("analysis '%s' (wave %d): no Rao-Scott test: %s", analysis.id, wave, exc)
        test = None
    cells: list[dict] = []
    raw = []
    for code, label in _labels(spec, row_var).items():
        shares = design.proportion(
            row_var, [float(code)], where=where, by=col_var, ci=params.ci_method, level=params.level
        )
        found = {float(row[col_var]): row for _, row in shares.iterrows()}
        for col_code, col_label in _labels(spec, col_var).items():
            row = found.get(float(col_code))
            raw.append(row)
            cells.append(
                {
                    "analysis_id": analysis.id,
                    "title": analysis.title,
                    "wave": int(wave),
                    "base_text": spec.base_text(analysis.base),
                    "row_variable": row_var,
                    "row_code": float(code),
                    "row_label": label,
                    "column_variable": col_var,
                    "column_code": float(col_code),
                    "column_label": col_label,
                    **{
                        k: float(row[k]) if row is not None else np.nan
                        for k in ("estimate", "se", "ci_lower", "ci_upper")
                    },
                    "n": int(row["n"]) if row is not None else 0,
                }
            )
    judged = assess(
        params.suppression,
        [c["estimate"] for c in cells],
        [c["se"] for c in cells],
        [c["n"] for c in cells],
        [float(r["df"]) if r is not None else np.nan for r in raw],
    )
    cells = _suppress(cells, list(judged.reason), ("estimate", "se", "ci_lower", "ci_upper"))
    statistics = ("statistic", "ndf", "ddf", "p_value", "pearson")
    test_row = {
        "analysis_id": analysis.id,
        "title": analysis.title,
        "wave": int(wave),
        **{k: float(test[k]) if test is not None else np.nan for k in statistics},
        # the table's respondents: every column's base (each answer's share has the same base)
        "n": int(test["n"]) if test is not None else sum(c["n"] for c in cells[: len(_labels(spec, col_var))]),
    }
    reason = "no_test" if test is None else "min_n" if test_row["n"] < params.suppression.min_n else ""
    tests = _suppress([test_row], [reason], statistics)
    return cells, tests


def logit_formula(analysis: Analysis) -> str:
    """The model as `SurveyDesign.logit` (and R's svyglm) reads it: every predictor a factor."""
    return f"{analysis.variable} ~ " + " + ".join(f"factor({name})" for name in analysis.predictors or ())


def logit_rows(
    spec: QuestionnaireSpec, analysis: Analysis, design: SurveyDesign, wave: int, params: EstimateSettings
) -> list[dict]:
    """Odds ratios of the success codes per predictor level against its reference (first) level."""
    predictors = list(analysis.predictors or ())
    where = analysis_where(spec, analysis, analysis.variable, *predictors)
    try:
        fit: pd.DataFrame | None = design.logit(
            logit_formula(analysis), success=list(analysis.success or ()), where=where, level=params.level
        )
    except ValueError as exc:
        log.warning("analysis '%s' (wave %d): no model: %s", analysis.id, wave, exc)
        fit = None
    data = design.data
    inside = np.ones(len(data), dtype=bool)  # the model's rows: in the domain, every variable answered
    for name, codes in where.items():
        inside &= data[name].isin(codes).to_numpy(dtype=bool)
    common = {"analysis_id": analysis.id, "title": analysis.title, "wave": int(wave)}
    common["base_text"] = spec.base_text(analysis.base)
    rows = []

    def term_row(term: str, predictor: str, code: float, label: str, n: int, reference: bool) -> dict:
        coefficient = fit.loc[term] if fit is not None and term in fit.index else None
        numbers = {"estimate": 0.0, "se": np.nan, "df": np.nan, "p_value": np.nan, "lower": np.nan, "upper": np.nan}
        if coefficient is not None:
            numbers = {
                "estimate": float(coefficient["estimate"]),
                "se": float(coefficient["se"]),
                "df": float(coefficient["df"]),
                "p_value": float(coefficient["p_value"]),
                "lower": float(coefficient["ci_lower"]),
                "upper": float(coefficient["ci_upper"]),
            }
        return {
            **common,
            "term": term,
            "predictor": predictor,
            "level_code": code,
            "level_label": label,
            "reference": reference,
            "estimate": numbers["estimate"],
            "se": numbers["se"],
            "odds_ratio": float(np.exp(numbers["estimate"])),
            "or_lower": float(np.exp(numbers["lower"])),
            "or_upper": float(np.exp(numbers["upper"])),
            "df": numbers["df"],
            "p_value": numbers["p_value"],
            "n": n,
        }

    rows.append(term_row(INTERCEPT, "", np.nan, "", int(inside.sum()), False))
    for name in predictors:
        present, counts = np.unique(data[name].to_numpy(dtype=np.float64)[inside], return_counts=True)
        labels = _labels(spec, name)
        for position, (code, n) in enumerate(zip(present.tolist(), counts.tolist(), strict=True)):
            label = labels.get(int(code), str(code))
            term = f"factor({name}){int(code)}"  # R's name; the reference level has no coefficient
            rows.append(term_row(term, name, float(code), label, int(n), position == 0))
    reasons = []
    for row in rows:
        if fit is None:
            reasons.append("no_model")
        elif row["reference"]:
            reasons.append("min_n" if row["n"] < params.suppression.min_n else "")
        else:
            reasons.append(_min_n_reason(row["n"], row["estimate"], row["or_lower"], params.suppression))
    numbers = ("estimate", "se", "odds_ratio", "or_lower", "or_upper", "p_value")
    return _suppress(rows, reasons, numbers)


def area_vs_rest_rows(
    spec: QuestionnaireSpec, analysis: Analysis, design: SurveyDesign, wave: int, params: EstimateSettings
) -> list[dict]:
    """Each area against the rest of the municipality, p-values adjusted over the areas (Holm or BH)."""
    area = spec.area_variable
    assert area is not None  # the spec requires it for wijk_vs_rest
    where = analysis_where(spec, analysis, analysis.variable)
    success = list(analysis.success) if analysis.success else None
    try:
        result = design.domain_vs_rest(
            analysis.variable, success=success, where=where, by=area, adjust=analysis.adjustment, level=params.level
        )
    except ValueError as exc:
        raise _fail(analysis, wave, exc) from None
    if success is not None:
        own = design.proportion(analysis.variable, success, where=where, by=area, ci=params.ci_method)
        judged = assess(params.suppression, own["estimate"], own["se"], own["n"], own["df"])
        own_reason = dict(zip(own[area].astype(float), judged.reason, strict=True))
    labels = spec.background[area].codes
    rows, reasons = [], []
    for _, row in result.iterrows():
        code = float(row[area])
        rows.append(
            {
                "analysis_id": analysis.id,
                "title": analysis.title,
                "wave": int(wave),
                "base_text": spec.base_text(analysis.base),
                "statistic": "share" if success is not None else "mean",
                "area_code": code,
                "area_label": labels.get(int(code), str(code)),
                "estimate_area": float(row["estimate_domain"]),
                "estimate_rest": float(row["estimate_rest"]),
                **{
                    k: float(row[k])
                    for k in ("difference", "se", "ci_lower", "ci_upper", "df", "p_value", "p_adjusted")
                },
                "adjust": str(row["adjust"]),
                "n_tests": int(row["n_tests"]),
                "n_area": int(row["n_domain"]),
                "n_rest": int(row["n_rest"]),
            }
        )
        if success is not None:
            reason = own_reason[code]
        else:
            reason = _min_n_reason(
                rows[-1]["n_area"], rows[-1]["estimate_area"], rows[-1]["ci_lower"], params.suppression
            )
        reasons.append(reason or ("" if np.isfinite(rows[-1]["p_adjusted"]) else "no_test"))
    # The rest too: with the municipal figure public, it would reveal the area's.
    numbers = ("estimate_area", "estimate_rest", "difference", "se", "ci_lower", "ci_upper", "p_value", "p_adjusted")
    return _suppress(rows, reasons, numbers)


def trend_rows(
    spec: QuestionnaireSpec, analysis: Analysis, design: SurveyDesign, waves: Sequence[int], params: EstimateSettings
) -> list[dict]:
    """The linear trend per year over `waves` (stacked design), overall and per breakdown level."""
    where = analysis_where(spec, analysis, analysis.variable)
    success = list(analysis.success) if analysis.success else None
    rows = []
    for breakdown in (TOTAL, *analysis.breakdowns):
        try:
            result = design.trend(
                analysis.variable,
                success=success,
                where=where,
                over=spec.wave_variable,
                waves=[int(w) for w in waves],
                by=None if breakdown == TOTAL else breakdown,
                level=params.level,
            )
        except ValueError as exc:
            raise _fail(analysis, "/".join(str(w) for w in waves), exc) from None
        found = (
            {np.nan: result.iloc[0]} if breakdown == TOTAL else {float(r[breakdown]): r for _, r in result.iterrows()}
        )
        levels = (
            [(np.nan, TOTAL_LABEL)]
            if breakdown == TOTAL
            else [(float(c), label) for c, label in spec.background[breakdown].codes.items()]
        )
        for code, label in levels:
            row = next(iter(found.values())) if breakdown == TOTAL else found.get(code)
            n_min = min(int(row[f"n_{w}"]) for w in waves) if row is not None else 0
            rows.append(
                {
                    "analysis_id": analysis.id,
                    "title": analysis.title,
                    "base_text": spec.base_text(analysis.base),
                    "statistic": "share" if success is not None else "mean",
                    "breakdown": breakdown,
                    "breakdown_code": code,
                    "breakdown_label": label,
                    "wave_first": int(min(waves)),
                    "wave_last": int(max(waves)),
                    "n_waves": len(waves),
                    **{
                        k: float(row[k]) if row is not None else np.nan
                        for k in ("slope", "se", "ci_lower", "ci_upper", "df", "p_value")
                    },
                    "n_min": n_min,
                }
            )
    reasons = [_min_n_reason(r["n_min"], r["slope"], r["ci_lower"], params.suppression) for r in rows]
    return _suppress(rows, reasons, ("slope", "se", "ci_lower", "ci_upper", "p_value"))


# ---------------------------------------------------------------------------
# All analyses of a run


def estimate_analyses(
    spec: QuestionnaireSpec,
    designs: Mapping[int, SurveyDesign],
    stacked: Callable[[Sequence[int]], SurveyDesign],
    params: EstimateSettings,
) -> dict[str, pd.DataFrame]:
    """Every analysis of the spec: `designs` are the calibrated designs per wave, `stacked(waves)` the
    calibrated stacked design of some waves (respondent as cluster). One table per kind
    (`contracts.ANALYSIS_TABLES`), every table present."""
    rows: dict[str, list[dict]] = {name: [] for name in contracts.ANALYSIS_TABLES}
    for analysis in spec.analyses:
        waves = [w for w in sorted(designs) if measured(spec, analysis, w)]
        if analysis.kind == "trend":
            if len(waves) >= 3:
                rows["trends"] += trend_rows(spec, analysis, stacked(waves), waves, params)
            continue
        for wave in waves:
            design = designs[wave]
            if analysis.kind == "mean":
                rows["means"] += mean_rows(spec, analysis, design, wave, params)
            elif analysis.kind == "crosstab":
                cells, tests = crosstab_rows(spec, analysis, design, wave, params)
                rows["crosstabs"] += cells
                rows["crosstab_tests"] += tests
            elif analysis.kind == "logit":
                rows["odds_ratios"] += logit_rows(spec, analysis, design, wave, params)
            else:
                rows["area_vs_rest"] += area_vs_rest_rows(spec, analysis, design, wave, params)
    return {name: _frame(rows[name], model) for name, model in contracts.ANALYSIS_TABLES.items()}
