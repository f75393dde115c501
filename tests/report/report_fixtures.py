"""Realistic estimate-stage outputs for the report tests, built to contracts.md.

Rates are near the seed figures (heard 78%, contact of heard 30%, helped of
contact 86%); CIs are Korn-Graubard on the effective sample size; rows that the
reliability rule rejects are suppressed exactly as the contract says (numbers NaN,
reason given). Also the validate/weight metrics and population margins the
method note reads (in the layouts of validate.py and weight.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from survey_pipeline import contracts, demo, registrations
from survey_pipeline.artifacts import write_json, write_spec_record
from survey_pipeline.reliability import apply_suppression, assess
from survey_pipeline.settings import Params, SuppressionRule, write_record
from survey_pipeline.settings import load_params as load_settings
from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.stages.estimate import analyses, small_area
from survey_pipeline.stages.report import tables
from survey_pipeline.stages.report.method_note import RunFacts

ROOT = Path(__file__).resolve().parents[2]
RATES = {
    "heard": 0.78,
    "familiar": 0.66,
    "knows_where": 0.71,
    "walk_in_easy": 0.71,
    "contact_of_heard": 0.30,
    "helped_of_contact": 0.86,
    "contact_of_residents": 0.23,
    "helped_of_residents": 0.20,
    "caregiver_burdened": 0.18,
    "wmo_quick": 0.77,
    "wmo_taken_seriously": 0.87,
    "wmo_fits_need": 0.86,
}
BASE_SHARE = {"residents": 1.0, "heard_of_wij": 0.78, "had_contact": 0.23, "caregivers": 0.17, "wmo_clients": 0.09}
RESPONDENTS = 3000
POPULATION = 190_000.0
DEFF = 1.45
INDICATOR_ORDER = (
    "indicator_id",
    "label",
    "kind",
    "variable",
    "wave",
    "breakdown",
    "breakdown_code",
    "breakdown_label",
    "base",
    "base_text",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "ci_method",
    "level",
    "df",
    "deff",
    "n_eff",
    "n",
    "sum_weights",
    "suppressed",
    "suppression_reason",
    "flags",
    "target",
    "target_status",
)


def load_params() -> Params:
    return load_settings(ROOT / "params.yaml")


def korn_graubard(p: float, n_eff: float, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson on the effective sample size (Korn & Graubard 1998)."""
    alpha = 1 - level
    x = p * n_eff
    lower = 0.0 if x <= 0 else stats.beta.ppf(alpha / 2, x, n_eff - x + 1)
    upper = 1.0 if x >= n_eff else stats.beta.ppf(1 - alpha / 2, x + 1, n_eff - x)
    return float(lower), float(upper)


def rule_of(params: Params) -> SuppressionRule:
    return params.estimate.suppression


def suppress(frame: pd.DataFrame, rule: SuppressionRule, n_column: str = "n", keep_flags: bool = True) -> pd.DataFrame:
    """The estimate stage's publication rule (survey_pipeline.reliability) applied to raw estimates."""
    assessment = assess(rule, frame["estimate"], frame["se"], frame[n_column], frame["df"])
    columns = [c for c in ("estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff") if c in frame]
    out = apply_suppression(frame, assessment, columns)
    if not keep_flags:
        out = out.drop(columns=["flags"])
    return out


def _levels(spec: QuestionnaireSpec, breakdowns: tuple[str, ...], rng: np.random.Generator):
    """(breakdown, code, label, share of respondents) for the total and each breakdown level."""
    yield "total", np.nan, "Totaal", 1.0
    for name in breakdowns:
        codes = spec.background[name].codes
        shares = rng.dirichlet(np.full(len(codes), 8.0))
        for (code, label), share in zip(codes.items(), shares):
            yield name, float(code), label, float(share)


def _waves(spec: QuestionnaireSpec, variable: str, waves: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(w for w in spec.variables[variable].waves if w in waves)


def indicator_frame(
    spec: QuestionnaireSpec, params: Params, *, seed: int = 7, waves: tuple[int, ...] | None = None
) -> pd.DataFrame:
    """outputs/estimate/indicators.parquet as the contract describes it."""
    rng = np.random.default_rng(seed)
    level = params.estimate.level
    breakdowns = params.estimate.breakdowns
    waves = tuple(waves or spec.waves)
    records = []
    for ind in spec.indicators:
        for wave in _waves(spec, ind.variable, waves):
            drift = 0.02 * (wave - waves[0])
            for breakdown, code, label, share in _levels(spec, breakdowns, rng):
                n = int(round(RESPONDENTS * BASE_SHARE[ind.base] * share * rng.uniform(0.9, 1.1)))
                p_true = min(
                    max(RATES[ind.id] + drift + (0 if breakdown == "total" else rng.normal(0, 0.06)), 0.01), 0.99
                )
                deff = DEFF * rng.uniform(0.9, 1.1)
                n_eff = n / deff
                p = float(rng.binomial(n, p_true) / n) if n else np.nan
                lower, upper = korn_graubard(p, n_eff, level) if n else (np.nan, np.nan)
                target = ind.targets.get(wave, "")
                records.append(
                    {
                        "indicator_id": ind.id,
                        "label": ind.label,
                        "kind": ind.kind,
                        "variable": ind.variable,
                        "wave": wave,
                        "breakdown": breakdown,
                        "breakdown_code": code,
                        "breakdown_label": label,
                        "base": ind.base,
                        "base_text": spec.base_text(ind.base),
                        "estimate": p,
                        "se": float(np.sqrt(p * (1 - p) / n_eff)) if n else np.nan,
                        "ci_lower": lower,
                        "ci_upper": upper,
                        "ci_method": params.estimate.ci_method,
                        "level": level,
                        "df": float(max(n - 31, 0)),
                        "deff": deff if n else np.nan,
                        "n_eff": n_eff if n else np.nan,
                        "n": n,
                        "sum_weights": POPULATION * BASE_SHARE[ind.base] * share if n else 0.0,
                        "target": target,
                        "target_status": _status(target, lower, upper),
                    }
                )
    frame = suppress(pd.DataFrame.from_records(records), rule_of(params))
    frame = frame[[c for c in INDICATOR_ORDER]]
    return _typed(frame, {"wave": "int64", "n": "int64", "suppressed": "bool"})


def _status(target: str, lower: float, upper: float) -> str:
    if not target:
        return "no_target"
    if target == "kengetal":
        return "key_figure"
    if target.startswith(">") and target.endswith("%"):
        bound = float(target[1:-1]) / 100
        return "met" if lower > bound else "not_met" if upper < bound else "indistinguishable"
    return "indistinguishable"


def change_frame(spec: QuestionnaireSpec, indicators: pd.DataFrame, *, seed: int = 11) -> pd.DataFrame:
    """outputs/estimate/changes.parquet: consecutive measured waves, total and sex."""
    rng = np.random.default_rng(seed)
    level_rows = indicators[indicators["breakdown"].isin(["total", "sex"])]
    records = []
    for (ind_id, breakdown, code), group in level_rows.groupby(
        ["indicator_id", "breakdown", "breakdown_code"], dropna=False
    ):
        group = group.sort_values("wave")
        rows = list(group.itertuples(index=False))
        pairs = list(zip(rows, rows[1:])) + ([(rows[0], rows[-1])] if len(rows) > 2 else [])
        for a, b in pairs:
            hidden = bool(a.suppressed or b.suppressed)
            diff = b.estimate - a.estimate
            se_ind = float(np.hypot(a.se, b.se)) if not hidden else np.nan
            se = se_ind * 0.8 if not hidden else np.nan
            df = float(min(a.n, b.n) - 1)
            t = stats.t.ppf(0.975, df)
            records.append(
                {
                    "indicator_id": ind_id,
                    "wave_from": a.wave,
                    "wave_to": b.wave,
                    "breakdown": breakdown,
                    "breakdown_code": code,
                    "breakdown_label": a.breakdown_label,
                    "estimate_from": np.nan if hidden else a.estimate,
                    "estimate_to": np.nan if hidden else b.estimate,
                    "difference": np.nan if hidden else diff,
                    "se": se,
                    "ci_lower": np.nan if hidden else diff - t * se,
                    "ci_upper": np.nan if hidden else diff + t * se,
                    "df": df,
                    "p_value": np.nan if hidden else float(2 * stats.t.sf(abs(diff / se), df)),
                    "se_independent": se_ind,
                    "n_both": int(min(a.n, b.n) * rng.uniform(0.5, 0.7)),
                    "suppressed": hidden,
                    "suppression_reason": ";".join(
                        c
                        for c, bad in (
                            ("estimate_from_suppressed", a.suppressed),
                            ("estimate_to_suppressed", b.suppressed),
                        )
                        if bad
                    ),
                }
            )
    return _typed(
        pd.DataFrame.from_records(records),
        {"wave_from": "int64", "wave_to": "int64", "n_both": "int64", "suppressed": "bool"},
    )


def distribution_frame(
    spec: QuestionnaireSpec, params: Params, *, seed: int = 13, waves: tuple[int, ...] | None = None
) -> pd.DataFrame:
    """outputs/estimate/distributions.parquet: every code incl. "weet niet"/"geen antwoord", total and sex."""
    rng = np.random.default_rng(seed)
    waves = tuple(waves or spec.waves)
    records = []
    for var in spec.variables.values():
        codes = [(float(c), label, "answer") for c, label in var.codes.items()] + [
            (float(var.missing.dont_know.code), var.missing.dont_know.label, "dont_know"),
            (float(var.missing.no_answer.code), var.missing.no_answer.label, "no_answer"),
        ]
        for wave in _waves(spec, var.name, waves):
            for breakdown, code, label, share in _levels(spec, ("sex",), rng):
                n = int(round(RESPONDENTS * BASE_SHARE[var.asked_of] * share))
                n_eff = n / DEFF
                shares = rng.dirichlet([*(np.full(len(var.codes), 6.0)), 0.6, 0.3])
                for (value, value_label, value_type), p in zip(codes, shares):
                    lower, upper = korn_graubard(float(p), n_eff)
                    records.append(
                        {
                            "variable": var.name,
                            "label": var.label,
                            "wave": wave,
                            "group": var.asked_of,
                            "base_text": spec.base_text(var.asked_of),
                            "breakdown": breakdown,
                            "breakdown_code": code,
                            "breakdown_label": label,
                            "code": value,
                            "code_label": value_label,
                            "code_type": value_type,
                            "estimate": float(p),
                            "se": float(np.sqrt(p * (1 - p) / n_eff)),
                            "ci_lower": lower,
                            "ci_upper": upper,
                            "df": float(n - 1),
                            "n_base": n,
                            "sum_weights_base": POPULATION * BASE_SHARE[var.asked_of] * share,
                        }
                    )
    frame = suppress(pd.DataFrame.from_records(records), rule_of(params), n_column="n_base", keep_flags=False)
    return _typed(frame, {"wave": "int64", "n_base": "int64", "suppressed": "bool"})


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    for column in frame.columns:
        if column in dtypes:
            frame[column] = frame[column].astype(dtypes[column])
        elif frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].astype("str")
        else:
            frame[column] = frame[column].astype("float64")
    return frame


def validate_metrics(waves: tuple[int, ...]) -> dict:
    """outputs/validate/metrics.json (validate.reconcile's layout)."""
    per_wave, reasons = {}, {}
    for i, wave in enumerate(waves):
        rows_in = 3050 + 17 * i
        quarantined = 12 + 3 * i
        per_wave[str(wave)] = {
            "rows_in": rows_in,
            "rows_valid": rows_in - quarantined,
            "rows_quarantined": quarantined,
            "quarantined_share": round(quarantined / rows_in, 6),
        }
        reasons[str(wave)] = {"allowed_codes:heard": quarantined - 4, "routing:contact": 3, "duplicate_id:resp_id": 1}
    total_in = sum(w["rows_in"] for w in per_wave.values())
    total_q = sum(w["rows_quarantined"] for w in per_wave.values())
    return {
        "waves": per_wave,
        "reasons": reasons,
        "total": {
            "rows_in": total_in,
            "rows_valid": total_in - total_q,
            "rows_quarantined": total_q,
            "quarantined_share": round(total_q / total_in, 6),
        },
    }


def weight_outputs(
    spec: QuestionnaireSpec, waves: tuple[int, ...], margins: pd.DataFrame
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """outputs/weight/metrics.json, diagnostics.parquet and margins.parquet (weight.py's layout)."""
    rng = np.random.default_rng(5)
    rows, recovery, metrics = [], [], {"waves": {}}
    for i, wave in enumerate(waves):
        n_valid = 3038 + 14 * i
        excluded = 9 + i
        n = n_valid - excluded
        deff = 1.42 + 0.03 * i
        mean = POPULATION / n
        diag = {
            "wave": wave,
            "method": "rake",
            "n_valid": n_valid,
            "n_excluded_missing_background": excluded,
            "n": n,
            "sum_weights": POPULATION,
            "mean_weight": mean,
            "min_weight": 0.21 * mean,
            "max_weight": 4.9 * mean,
            "cv_weight": float(np.sqrt(deff - 1)),
            "deff_kish": deff,
            "n_eff": n / deff,
            "population_total": POPULATION,
            "iterations": 7 + i,
            "converged": True,
            "trim_rounds": 2,
            "n_trimmed": 4 + i,
            "max_abs_margin_error": 3.1e-9,
            "margin_total_max_rel_diff": 0.0,
            "base_weights_used": False,
        }
        rows.append(diag)
        metrics["waves"][str(wave)] = {
            **{k: v for k, v in diag.items() if k not in ("wave", "method")},
            "excluded_missing_by_variable": {"wijk": excluded - 2, "age_group": 2, "sex": 0},
            "margin_recovery_max_rel_diff": {},
            "max_rel_margin_deviation": 2e-10,
            "margin_tolerance": 1e-6,
        }
        for variable, part in margins[margins["wave"] == wave].groupby("variable", sort=False):
            population = part["count"].to_numpy(dtype=float)
            skew = rng.dirichlet(population / population.sum() * 60)
            sample_n = np.round(skew * n).astype(np.int64)
            recovery.append(
                pd.DataFrame(
                    {
                        "wave": np.int64(wave),
                        "variable": variable,
                        "code": part["code"].to_numpy(np.int64),
                        "label": part["label"].to_numpy(),
                        "population": population,
                        "population_share": population / population.sum(),
                        "sample_n": sample_n,
                        "sample_share": sample_n / n,
                        "weighted": population + 1e-9,
                        "weighted_share": population / population.sum(),
                        "difference": np.full(len(part), 1e-9),
                        "relative_difference": 1e-9 / population,
                    }
                )
            )
            metrics["waves"][str(wave)]["margin_recovery_max_rel_diff"][variable] = float((1e-9 / population).max())
    diagnostics = _typed(
        pd.DataFrame(rows),
        {
            "wave": "int64",
            "n_valid": "int64",
            "n_excluded_missing_background": "int64",
            "n": "int64",
            "iterations": "int64",
            "converged": "bool",
            "trim_rounds": "int64",
            "n_trimmed": "int64",
            "base_weights_used": "bool",
        },
    )
    recovered = _typed(pd.concat(recovery, ignore_index=True), {"wave": "int64", "code": "int64", "sample_n": "int64"})
    return metrics, diagnostics, recovered


def population_margins(spec: QuestionnaireSpec, waves: tuple[int, ...]) -> pd.DataFrame:
    """data/population/margins.csv: wave, variable, code, label, count."""
    rng = np.random.default_rng(3)
    records = []
    for wave in waves:
        for name, background in spec.background.items():
            shares = rng.dirichlet(np.full(len(background.codes), 10.0))
            counts = np.floor(shares * POPULATION)
            counts[0] += POPULATION - counts.sum()
            for (code, label), count in zip(background.codes.items(), counts):
                records.append({"wave": wave, "variable": name, "code": code, "label": label, "count": int(count)})
    return pd.DataFrame.from_records(records)


def annual_row_ids(spec: QuestionnaireSpec) -> list[str]:
    """The rows of the annual table in print order (`tables.annual_layout`): survey indicators and
    registration figures as the layout places them (the default: per kind, indicators then registrations)."""
    return list(tables.annual_layout(spec).indicator_ids())


def registration_frame(spec: QuestionnaireSpec) -> pd.DataFrame:
    """The estimate stage's registration table for the demo's synthetic values (`demo.REGISTRATION_VALUES`)."""
    values = pd.DataFrame.from_records(
        [
            (r.id, year, float(value), r.unit, demo.REGISTRATION_SOURCE, demo.REGISTRATION_NOTES.get(r.id, ""))
            for r in spec.registrations
            for year, value in demo.REGISTRATION_VALUES.get(r.id, {}).items()
        ],
        columns=["indicator_id", "year", "value", "unit", "source", "note"],
    )
    return registrations.registration_table(values, spec)


def write_stage_outputs(
    outputs: Path, spec: QuestionnaireSpec, params: Params, frames: Mapping[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """Write the estimate, validate and weight outputs under `outputs/` as those stages would, with the
    settings records of `params`."""
    waves = tuple(spec.waves)
    if frames is None:
        indicators = indicator_frame(spec, params)
        frames = {
            "indicators": indicators,
            "changes": change_frame(spec, indicators),
            "distributions": distribution_frame(spec, params),
        }
    for stage in ("estimate", "validate", "weight"):
        (outputs / stage).mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(outputs / "estimate" / f"{name}.parquet", index=False)
    if "sae" not in frames:  # small-area estimates switched off: the estimate stage writes the table without rows
        small_area.empty_table().to_parquet(outputs / "estimate" / "sae.parquet", index=False)
    if "registrations" not in frames:
        registration_frame(spec).to_parquet(outputs / "estimate" / "registrations.parquet", index=False)
    (outputs / "estimate" / contracts.ANALYSES_FOLDER).mkdir(exist_ok=True)
    for name, table in analyses.empty_tables().items():  # tables without rows, as for a spec without analyses
        table.to_parquet(outputs / "estimate" / contracts.ANALYSES_FOLDER / f"{name}.parquet", index=False)
    write_spec_record(outputs / "estimate", spec)
    made_with = {"ingest": params.ingest, "validate": params.validate_}
    write_record(outputs / "validate", made_with)
    write_record(outputs / "weight", {**made_with, "weight": params.weight})
    write_record(outputs / "estimate", {**made_with, "weight": params.weight, "estimate": params.estimate})
    write_json(validate_metrics(waves), outputs / "validate" / "metrics.json", contracts.ValidateMetrics)
    metrics, diagnostics, recovered = weight_outputs(spec, waves, population_margins(spec, waves))
    write_json(metrics, outputs / "weight" / "metrics.json", contracts.WeightMetrics)
    diagnostics.to_parquet(outputs / "weight" / "diagnostics.parquet", index=False)
    recovered.to_parquet(outputs / "weight" / "margins.parquet", index=False)
    return dict(frames)


def suppress_total(indicators: pd.DataFrame, indicator_id: str, wave: int, reason: str) -> pd.DataFrame:
    """The frame with one whole-municipality estimate suppressed, as the estimate stage would write it."""
    out = indicators.copy()
    hit = (out["indicator_id"] == indicator_id) & (out["wave"] == wave) & (out["breakdown"] == "total")
    out.loc[hit, ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"]] = np.nan
    out.loc[hit, "suppressed"] = True
    out.loc[hit, "suppression_reason"] = reason
    judged = hit & (out["target_status"].isin(["met", "not_met", "indistinguishable"]))
    out.loc[judged, "target_status"] = "indistinguishable"
    out.loc[judged, "flags"] = "target_not_evaluable:estimate_suppressed"
    return out


def run_facts(spec: QuestionnaireSpec, params: Params, frames: Mapping[str, pd.DataFrame], **extra) -> RunFacts:
    """The method note's facts for the published `frames`, with the fixture weight and validate outputs;
    `extra` sets or overrides the other fields (weight, report, small_area, ...)."""
    waves = tuple(spec.waves)
    metrics, diagnostics, recovered = weight_outputs(spec, waves, population_margins(spec, waves))
    return RunFacts(
        validate_metrics=validate_metrics(waves),
        weight_metrics=metrics,
        weight_diagnostics=diagnostics,
        weight_margins=recovered,
        indicators=frames["indicators"],
        changes=frames["changes"],
        weight=extra.pop("weight", params.weight),
        estimate=params.estimate,
        report=extra.pop("report", params.report),
        **extra,
    )
