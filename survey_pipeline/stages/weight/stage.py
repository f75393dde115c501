"""Weight stage: calibrate each wave to its population (18+), with published diagnostics.

Reads `outputs/validate/valid.parquet` and the population margins; per wave it
1. applies the missing-background rule (`missing_background`): `exclude` drops the
   respondents lacking a weighting variable and counts them per variable in the
   metrics (the remaining respondents are weighted to the whole population, i.e.
   the missing values are assumed unrelated to the answers given the other
   variables), `fail` stops with an error naming the first such row;
2. checks the margins (equal totals within `margin_total_tolerance`, the same
   categories in sample and population);
3. rakes (`method: rake`, iterative proportional fitting to `margins`, stopping at
   `tol` or failing after `max_iter` sweeps) or post-stratifies (`method:
   poststratify`, on the cells of `poststratify_cells` from `cells_file`), starting
   from base weights when the data have a `base_weight` column (`base_weight`);
4. trims weights outside [`trim_lower`, `trim_upper`] x mean weight and calibrates
   again, repeating until both the bounds and the margins hold (`trim_max_rounds`;
   the rule rebuilt from R's rake() in tests/reference/r/make_trim_reference.R gives
   the same weights, tests/weight/test_trim_r_reference.py);
5. checks the contract on the final weights: every category of every calibration
   margin has a weighted total within `margin_tolerance` (relative) of its population
   total (as scaled in step 2). That the raking loop stopped is not enough: with
   margins no weights can meet, it settles on weights that miss them. The default
   1e-6 is far above what converged raking leaves (about 1e-10 at `tol` 1e-10) and
   far below anything a published percentage shows; the estimate stage re-rakes the
   weights and allows them to move by `estimate.calibration_tolerance` (also 1e-6).
A missed margin is an `InputError` (exit 2), never a warning, naming the margin,
category, population and weighted totals and the cause: infeasible margins (found by
a linear program on the sample's occupied category combinations), raking not
converged within `max_iter` (or stopped by `tol` too early), or trimming bounds too
tight (untrimmed raking met every margin, the trimmed rounds could not).

Writes `weights.parquet` (the spec's respondent id and wave variable, weight; population-scaled), `margins.parquet`
(weighted sample against population for every category), `diagnostics.parquet` and
`metrics.json` (DVC metrics: the diagnostics, exclusions per variable, the largest
relative recovery difference per margin, and the largest relative deviation from a
calibration target with the tolerance it was checked against), and `sav/<wave>.sav`
(the wave's valid rows with the population weight, the normalised weight (mean 1) and
the 0/1 variable of every indicator asked in the wave, labelled from the spec and
system-missing outside the indicator's base; excluded respondents have system-missing
weights).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey_pipeline import artifacts, contracts
from survey_pipeline.columns import BASE_WEIGHT as BASE_WEIGHT_COLUMN
from survey_pipeline.core.calibration import (
    INFEASIBLE,
    NOT_CONVERGED,
    SHORTFALL_TEXT,
    STOPPED_EARLY,
    ZERO_WEIGHTS,
    MarginDeviation,
    largest_margin_deviation,
    poststratify_weights,
    rake_weights,
    raking_shortfall,
    trim_weights,
)
from survey_pipeline.errors import InputError
from survey_pipeline.indicators import measured_in, outcome
from survey_pipeline.population import (
    Margin,
    WaveMargins,
    check_categories,
    load_cells,
    load_margins,
    wave_margins,
)
from survey_pipeline.sav import write_sav
from survey_pipeline.settings import Params, WeightSettings, recorded_software, upstream_settings, write_record
from survey_pipeline.spec import ALL_RESIDENTS, Indicator, QuestionnaireSpec

log = logging.getLogger(__name__)

WEIGHT_COLUMN = "weight"
NORMALISED_WEIGHT_COLUMN = "weight_norm"
NORMALISED_WEIGHT_LABEL = "Weegfactor genormaliseerd (gemiddelde 1 over de gewogen respondenten)"
INDICATOR_PREFIX = "ind_"
INDICATOR_VALUE_LABELS = {0: "nee", 1: "ja"}
SPSS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
RULE_SAV_NAME = "sav_variable_name"
RULE_MARGINS = "margins_met"
RULE_MISSING = "missing_background"
RULE_BASE = "base_weight"


# --------------------------------------------------------------------------------------
# Pure part


@dataclass(frozen=True)
class Population:
    """Population figures: the margins table and, for post-stratification, the cells table."""

    margins: pd.DataFrame
    cells: pd.DataFrame | None = None
    margins_file: str = "margins.csv"
    cells_file: str = "cells.csv"


@dataclass(frozen=True)
class WaveWeights:
    """One wave's result: its valid rows, weights of the included ones, diagnostics, recovery table."""

    wave: int
    rows: pd.DataFrame
    included: np.ndarray
    weights: np.ndarray
    diagnostics: dict[str, Any]
    excluded_by_variable: dict[str, int]
    recovery: pd.DataFrame
    margin_deviation: float


@dataclass(frozen=True)
class WeightResult:
    """All waves: the output tables and the metrics."""

    weights: pd.DataFrame
    diagnostics: pd.DataFrame
    margins: pd.DataFrame
    metrics: dict[str, Any]
    per_wave: Mapping[int, WaveWeights]


def weight_summary(weights: np.ndarray) -> dict[str, float]:
    """Spread of the weights: Kish deff = n * sum(w^2) / sum(w)^2 = 1 + CV^2 (CV with ddof=0)."""
    w = np.asarray(weights, dtype=float)
    n = w.size
    total = float(w.sum())
    mean = total / n
    cv = float(w.std(ddof=0) / mean)
    deff = float(n * np.square(w).sum() / total**2)
    return {
        "n": int(n),
        "sum_weights": total,
        "mean_weight": mean,
        "min_weight": float(w.min()),
        "max_weight": float(w.max()),
        "cv_weight": cv,
        "deff_kish": deff,
        "n_eff": float(total**2 / np.square(w).sum()),
    }


def _where(frame: pd.DataFrame, index: int) -> dict[str, Any]:
    """`file` and `row` of a valid row, for an `InputError` (the raw file's row number)."""
    row = frame.iloc[index]
    return {
        "file": str(row["source_file"]) if "source_file" in frame else None,
        "row": int(row["source_row"]) if "source_row" in frame else None,
    }


def apply_missing_rule(
    frame: pd.DataFrame, variables: Sequence[str], rule: str, wave: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows usable for weighting and, per variable, how many rows lack it.

    `rule == "fail"` raises at the first row with a missing weighting variable.
    """
    missing = {name: frame[name].isna().to_numpy() for name in variables}
    any_missing = np.zeros(len(frame), dtype=bool)
    for values in missing.values():
        any_missing |= values
    counts = {name: int(values.sum()) for name, values in missing.items()}
    if rule == "fail" and any_missing.any():
        first = int(np.flatnonzero(any_missing)[0])
        column = next(name for name, values in missing.items() if values[first])
        raise InputError(
            f"wave {wave}: {int(any_missing.sum())} respondent(s) lack a weighting variable "
            f"(weight.missing_background: fail)",
            **_where(frame, first),
            column=column,
            rule=RULE_MISSING,
        )
    return ~any_missing, counts


def _integral_codes(frame: pd.DataFrame, variable: str, wave: int) -> np.ndarray:
    values = frame[variable].to_numpy(dtype=float)
    bad = values != np.round(values)
    if bad.any():
        raise InputError(
            f"wave {wave}: weighting variable holds a code that is not a whole number",
            **_where(frame, int(np.flatnonzero(bad)[0])),
            column=variable,
            rule="margin_category",
        )
    return values.astype(np.int64)


def base_weights(frame: pd.DataFrame, rule: str, wave: int) -> tuple[np.ndarray, bool]:
    """Starting weights: the `base_weight` column when present (rule auto/require), else 1."""
    has_column = BASE_WEIGHT_COLUMN in frame and frame[BASE_WEIGHT_COLUMN].notna().any()
    if rule == "require" and not has_column:
        raise InputError(
            f"wave {wave}: no '{BASE_WEIGHT_COLUMN}' values (weight.base_weight: require)",
            column=BASE_WEIGHT_COLUMN,
            rule=RULE_BASE,
        )
    if rule == "ignore" or not has_column:
        return np.ones(len(frame)), False
    values = frame[BASE_WEIGHT_COLUMN].to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        raise InputError(
            f"wave {wave}: {int(bad.sum())} base weight(s) missing, infinite or not positive",
            **_where(frame, int(np.flatnonzero(bad)[0])),
            column=BASE_WEIGHT_COLUMN,
            rule=RULE_BASE,
        )
    return values, True


def _cell_margin(cells: pd.DataFrame, wave: int, variables: Sequence[str], *, file: str) -> tuple[Margin, pd.DataFrame]:
    """Post-stratification cells of a wave as one margin whose codes are cell positions."""
    table = cells[cells["wave"] == wave].reset_index(drop=True)
    if table.empty:
        raise InputError(f"no population cells for wave {wave}", file=file, rule="margin_totals")
    labels = tuple(", ".join(f"{v}={int(table.loc[i, v])}" for v in variables) for i in range(len(table)))
    name = " x ".join(variables)
    return Margin(name, np.arange(len(table), dtype=np.int64), labels, table["count"].to_numpy(float)), table


def _sample_cells(frame: pd.DataFrame, table: pd.DataFrame, variables: Sequence[str], wave: int) -> np.ndarray:
    """Cell position of each row; -1 for a cell the population table lacks."""
    keys = pd.DataFrame({v: _integral_codes(frame, v, wave) for v in variables})
    lookup = table[list(variables)].assign(_cell=np.arange(len(table)))
    merged = keys.merge(lookup, on=list(variables), how="left")
    return merged["_cell"].fillna(-1).to_numpy(np.int64)


def _check_cells(margin: Margin, positions: np.ndarray, wave: int, *, file: str) -> None:
    if (positions < 0).any():
        raise InputError(
            f"wave {wave}: {int((positions < 0).sum())} respondent(s) fall in a post-stratification cell "
            f"the population table does not have",
            file=file,
            column=margin.variable,
            rule="margin_category",
        )
    check_categories(margin, positions, wave, file=file, labels=dict(enumerate(margin.labels)))


def recovery_table(frame: pd.DataFrame, weights: np.ndarray, margins: WaveMargins, wave: int) -> pd.DataFrame:
    """Weighted sample against population for every category of every margin."""
    parts = []
    for margin in margins.margins:
        codes = frame[margin.variable].to_numpy(dtype=float)
        rows = [codes == c for c in margin.codes]
        sample_n = np.array([np.count_nonzero(r) for r in rows], dtype=np.int64)
        weighted = np.array([weights[r].sum() for r in rows], dtype=float)
        parts.append(
            pd.DataFrame(
                {
                    "wave": np.int64(wave),
                    "variable": margin.variable,
                    "code": margin.codes.astype(np.int64),
                    "label": list(margin.labels),
                    "population": margin.counts,
                    "population_share": margin.counts / margin.total,
                    "sample_n": sample_n,
                    "sample_share": sample_n / max(len(frame), 1),
                    "weighted": weighted,
                    "weighted_share": weighted / weights.sum(),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    table["difference"] = table["weighted"] - table["population"]
    table["relative_difference"] = np.where(
        table["population"] > 0, table["difference"] / table["population"].where(table["population"] > 0, 1.0), 0.0
    )
    return table


def _missed(targets: Sequence[Margin], deviation: MarginDeviation) -> str:
    """`margin 'age_group' category 1 (18-34 jaar): population 75,826.00, weighted 5,301.22`."""
    margin = targets[deviation.margin]
    return (
        f"margin '{margin.variable}' category {int(margin.codes[deviation.category])} "
        f"({margin.labels[deviation.category]}) not met: population {deviation.target:,.2f}, "
        f"weighted {deviation.achieved:,.2f}"
    )


def _require_margins_met(
    weights: np.ndarray,
    start: np.ndarray,
    calibration: Sequence[tuple[np.ndarray, np.ndarray]],
    targets: Sequence[Margin],
    params: WeightSettings,
    wave: int,
    *,
    converged: bool,
    file: str,
) -> MarginDeviation:
    """The contract of the stage: every target met within `margin_tolerance`, else the cause."""
    codes = [c for c, _ in calibration]
    deviation = largest_margin_deviation(weights, codes, [t for _, t in calibration])
    if deviation.relative <= params.margin_tolerance:
        return deviation
    cause = raking_shortfall(start, calibration, converged=converged)
    remedy = {
        INFEASIBLE: "collapse categories or weight without this margin",
        ZERO_WEIGHTS: "collapse categories or weight without this margin",
        NOT_CONVERGED: f"raise weight.max_iter (now {params.max_iter})",
        STOPPED_EARLY: f"lower weight.tol (now {params.tol:.0e})",
    }[cause]
    raise InputError(
        f"wave {wave}: {_missed(targets, deviation)} (relative deviation {deviation.relative:.2e} > "
        f"weight.margin_tolerance {params.margin_tolerance:.0e}); {SHORTFALL_TEXT[cause]}; {remedy}",
        file=file,
        column=targets[deviation.margin].variable,
        rule=RULE_MARGINS,
    )


def weight_wave(
    frame: pd.DataFrame, wave: int, params: WeightSettings, population: Population, spec: QuestionnaireSpec
) -> WaveWeights:
    """Calibrate one wave's valid rows (pure: frames in, arrays and frames out)."""
    included, excluded = apply_missing_rule(frame, params.weighting_variables, params.missing_background, wave)
    # the included rows of the columns weighting reads (and the origin an error names), not of every column
    reads = dict.fromkeys(
        [*params.margins, *params.weighting_variables, BASE_WEIGHT_COLUMN, "source_file", "source_row"]
    )
    data = frame.loc[included, [c for c in reads if c in frame]].reset_index(drop=True)
    if data.empty:
        raise InputError(f"wave {wave}: no respondents left to weight", rule=RULE_MISSING)
    start, used_base = base_weights(data, params.base_weight, wave)
    margins = wave_margins(
        population.margins,
        wave,
        params.margins,
        params.margin_total_tolerance,
        file=population.margins_file,
        categories={name: spec.background[name].codes for name in params.margins},
    )
    if params.method == "rake":
        targets, target_file = margins.margins, population.margins_file
        calibration = [
            (
                check_categories(
                    m,
                    _integral_codes(data, m.variable, wave),
                    wave,
                    file=population.margins_file,
                    labels=spec.background[m.variable].codes,
                ),
                m.counts,
            )
            for m in targets
        ]
        result = rake_weights(start, calibration, max_iter=params.max_iter, tol=params.tol)
        weights, iterations, converged = result.weights, result.iterations, result.converged
    else:
        cell_margin, table = _cell_margin(population.cells, wave, params.poststratify_cells, file=population.cells_file)
        positions = _sample_cells(data, table, params.poststratify_cells, wave)
        _check_cells(cell_margin, positions, wave, file=population.cells_file)
        difference = abs(cell_margin.total - margins.total) / margins.total
        if difference > params.margin_total_tolerance:
            raise InputError(
                f"wave {wave}: the population cells sum to {cell_margin.total:,.0f} but the margins to "
                f"{margins.total:,.0f} (relative difference {difference:.2e} > tolerance "
                f"{params.margin_total_tolerance:.2e})",
                file=population.cells_file,
                rule="margin_totals",
            )
        targets, target_file = (cell_margin.scaled(margins.total),), population.cells_file
        calibration = [(positions, targets[0].counts)]
        weights, iterations, converged = poststratify_weights(start, positions, targets[0].counts), 1, True
    deviation = _require_margins_met(
        weights, start, calibration, targets, params, wave, converged=converged, file=target_file
    )

    n_trimmed, rounds = 0, 0
    if params.trimming:
        trimmed = trim_weights(
            weights,
            params.trim_lower,
            params.trim_upper,
            calibration,
            max_rounds=params.trim_max_rounds,
            max_iter=params.max_iter,
            tol=params.tol,
        )
        if not trimmed.converged:
            bounded = np.clip(trimmed.weights, trimmed.lower_bound, trimmed.upper_bound)
            missed = largest_margin_deviation(bounded, [c for c, _ in calibration], [t for _, t in calibration])
            raise InputError(
                f"wave {wave}: the trimming bounds are too tight: {_missed(targets, missed)} by weights within "
                f"[{params.trim_lower}, {params.trim_upper}] x mean after {trimmed.rounds} rounds (calibrated "
                f"again they reach {trimmed.weights.max() / trimmed.weights.mean():.2f} x mean), while untrimmed "
                f"raking met every margin; widen weight.trim_lower/trim_upper or raise weight.trim_max_rounds",
                file=target_file,
                column=targets[missed.margin].variable,
                rule=RULE_MARGINS,
            )
        weights, n_trimmed, rounds, converged = trimmed.weights, trimmed.n_trimmed, trimmed.rounds, True
        deviation = _require_margins_met(
            weights, start, calibration, targets, params, wave, converged=True, file=target_file
        )

    recovery = recovery_table(data, weights, margins, wave)
    max_error = max(
        float(np.abs(np.bincount(codes, weights=weights, minlength=totals.size) - totals).max())
        for codes, totals in calibration
    )
    diagnostics = {
        "wave": int(wave),
        "method": params.method,
        "n_valid": int(len(frame)),
        "n_excluded_missing_background": int((~included).sum()),
        **weight_summary(weights),
        "population_total": float(margins.total),
        "iterations": int(iterations),
        "converged": bool(converged),
        "trim_rounds": int(rounds),
        "n_trimmed": int(n_trimmed),
        "max_abs_margin_error": max_error,
        "margin_total_max_rel_diff": float(margins.max_total_difference),
        "base_weights_used": bool(used_base),
    }
    log.info(
        "wave %d: %d weighted (%d excluded), deff %.3f, %d trimmed",
        wave,
        diagnostics["n"],
        diagnostics["n_excluded_missing_background"],
        diagnostics["deff_kish"],
        n_trimmed,
    )
    return WaveWeights(wave, frame, included, weights, diagnostics, excluded, recovery, deviation.relative)


def compute_weights(
    valid: pd.DataFrame, params: WeightSettings, population: Population, spec: QuestionnaireSpec
) -> WeightResult:
    """Weights for every wave in `valid` (waves in ascending order)."""
    params.check_against(spec)
    waves = sorted(int(w) for w in pd.unique(valid[spec.wave_variable]))
    if not waves:
        raise InputError("no valid respondents to weight", rule="stage_input")
    per_wave: dict[int, WaveWeights] = {}
    weight_parts, diagnostics, recoveries = [], [], []
    for wave in waves:
        frame = valid[valid[spec.wave_variable] == wave].reset_index(drop=True)
        result = weight_wave(frame, wave, params, population, spec)
        per_wave[wave] = result
        kept = frame[spec.respondent_id].to_numpy(np.int64)[result.included]
        weight_parts.append(
            pd.DataFrame(
                {
                    spec.respondent_id: kept,
                    spec.wave_variable: np.full(len(kept), wave, dtype=np.int64),
                    WEIGHT_COLUMN: result.weights,
                }
            )
        )
        diagnostics.append(result.diagnostics)
        recoveries.append(result.recovery)
    metrics = {
        "waves": {
            str(w): {
                **{k: v for k, v in r.diagnostics.items() if k not in ("wave", "method")},
                "excluded_missing_by_variable": r.excluded_by_variable,
                "margin_recovery_max_rel_diff": {
                    str(name): float(group.abs().max())
                    for name, group in r.recovery.groupby("variable", sort=False)["relative_difference"]
                },
                "max_rel_margin_deviation": r.margin_deviation,
                "margin_tolerance": params.margin_tolerance,
            }
            for w, r in per_wave.items()
        }
    }
    return WeightResult(
        weights=pd.concat(weight_parts, ignore_index=True),
        diagnostics=pd.DataFrame(diagnostics),
        margins=pd.concat(recoveries, ignore_index=True),
        metrics=metrics,
        per_wave=per_wave,
    )


def indicator_variable(indicator: Indicator) -> str:
    """The SPSS name of an indicator's derived 0/1 variable ("ind_<id>")."""
    return f"{INDICATOR_PREFIX}{indicator.id}"


def sav_indicators(spec: QuestionnaireSpec, wave: int) -> tuple[Indicator, ...]:
    """The indicators whose question the wave asked (the others have no variable in that wave's file)."""
    return tuple(ind for ind in spec.indicators if wave in measured_in(spec, ind))


def sav_frame(frame: pd.DataFrame, wave_result: WaveWeights, spec: QuestionnaireSpec) -> pd.DataFrame:
    """One wave's valid rows for SPSS: id, wave, background, the wave's questions, the population weight,
    the normalised weight (mean 1 over the weighted respondents, so SPSS counts respondents, not residents)
    and per indicator asked in the wave its 0/1 outcome, system-missing outside its base
    (`indicators.outcome`, as the estimate stage computes it). All float64, in one column-major block
    (the layout the SPSS writer reads)."""
    wave = wave_result.wave
    rows = frame.reset_index(drop=True)
    columns = [
        spec.respondent_id,
        spec.wave_variable,
        *spec.background,
        *(v.name for v in spec.variables_in_wave(wave)),
    ]
    if wave_result.diagnostics["base_weights_used"]:
        columns.append(BASE_WEIGHT_COLUMN)
    names = [*columns, WEIGHT_COLUMN, NORMALISED_WEIGHT_COLUMN]
    indicators = sav_indicators(spec, wave)
    for indicator in indicators:
        name = indicator_variable(indicator)
        if not SPSS_NAME.fullmatch(name) or name in names:
            problem = (
                "is already a column of the file"
                if name in names
                else ("is not a valid SPSS variable name (a letter, then letters, digits, '_' or '.'; at most 64)")
            )
            raise InputError(
                f"indicator '{indicator.id}': its SPSS variable '{name}' {problem}",
                file=spec.source,
                column=indicator.id,
                rule=RULE_SAV_NAME,
            )
        names.append(name)
    weight = np.full(len(rows), np.nan)
    weight[wave_result.included] = wave_result.weights
    block = np.empty((len(rows), len(names)), order="F")
    for index, name in enumerate(columns):
        block[:, index] = rows[name].to_numpy(dtype="float64")
    block[:, len(columns)] = weight
    block[:, len(columns) + 1] = weight / np.nanmean(weight)
    for index, indicator in enumerate(indicators, start=len(columns) + 2):
        block[:, index] = outcome(spec, indicator, rows).values
    return pd.DataFrame(block, columns=names, copy=False)


def sav_labels(spec: QuestionnaireSpec, wave: int) -> tuple[dict[str, str], dict[str, dict[int, str]]]:
    """Variable labels of the columns `sav_frame` adds to the spec's, and value labels of the indicators."""
    labels = {
        WEIGHT_COLUMN: f"Weegfactor (populatie: {spec.population_label})",
        NORMALISED_WEIGHT_COLUMN: NORMALISED_WEIGHT_LABEL,
        spec.respondent_id: "Respondentnummer",
        spec.wave_variable: "Meting (jaar)",
    }
    indicators = sav_indicators(spec, wave)
    labels.update(
        {
            indicator_variable(ind): ind.label
            if ind.base == ALL_RESIDENTS
            else f"{ind.label} ({spec.base_text(ind.base)})"
            for ind in indicators
        }
    )
    return labels, {indicator_variable(ind): dict(INDICATOR_VALUE_LABELS) for ind in indicators}


# --------------------------------------------------------------------------------------
# Stage shell


def sav_timestamp(wave: int) -> datetime:
    """A fixed header time (31 December of the wave year), not the real creation time,
    so that identical runs write byte-identical files."""
    return datetime(wave, 12, 31, 0, 0, 0)


def _file_labels(files_json: Path) -> dict[str, str]:
    """File name -> SPSS file label, from the ingest stage's files.json ({name: {..., file_label}})."""
    if not files_json.exists():
        return {}
    files = artifacts.read_json(files_json, contracts.IngestFiles)
    return {name: entry["file_label"] for name, entry in files.items() if entry["file_label"]}


def _sav_label(source_files: Sequence[str], labels: Mapping[str, str], spec: QuestionnaireSpec, wave: int) -> str:
    """The source file's label (it may say the data are synthetic), else the survey title."""
    for name in source_files:
        if name in labels:
            return labels[name]
    return f"{spec.title} {wave}"


def run(store: artifacts.OutputStore, spec: QuestionnaireSpec, params: Params, base_dir: Path) -> dict:
    """Stage entry point (see contracts): read valid rows and population, write weights, diagnostics
    and the settings record."""
    inputs = {"ingest": store.reading("ingest"), "validate": store.reading("validate")}
    upstream = upstream_settings(inputs, params)
    settings = params.weight
    settings.check_against(spec)
    base_dir = Path(base_dir)
    valid = artifacts.read_table(store.reading("validate") / "valid.parquet", contracts.ValidateValid, spec)
    margins_path = base_dir / settings.population_file
    population = Population(
        margins=load_margins(margins_path, spec),
        cells=load_cells(base_dir / settings.cells_file, spec, settings.poststratify_cells)
        if settings.method == "poststratify"
        else None,
        margins_file=settings.population_file,
        cells_file=settings.cells_file or "",
    )
    result = compute_weights(valid, settings, population, spec)
    labels = _file_labels(store.reading("ingest") / "files.json")
    with store.writing("weight") as out:
        artifacts.write_table(result.weights, out / "weights.parquet", contracts.WeightWeights, spec)
        artifacts.write_table(result.margins, out / "margins.parquet", contracts.WeightMargins)
        artifacts.write_table(result.diagnostics, out / "diagnostics.parquet", contracts.WeightDiagnostics)
        artifacts.write_json(result.metrics, out / "metrics.json", contracts.WeightMetrics)
        write_record(out, {**upstream, "weight": settings}, recorded_software(inputs))
        (out / "sav").mkdir()
        for wave, wave_result in result.per_wave.items():
            frame = wave_result.rows
            path = out / "sav" / f"{wave}.sav"
            sources = sorted(frame["source_file"].unique()) if "source_file" in frame else []
            variable_labels, value_labels = sav_labels(spec, wave)
            write_sav(
                sav_frame(frame, wave_result, spec),
                path,
                spec,
                _sav_label(sources, labels, spec, wave),
                extra_variable_labels=variable_labels,
                extra_value_labels=value_labels,
                timestamp=sav_timestamp(wave),
            )
    return {
        "method": settings.method,
        "rows_weighted": int(len(result.weights)),
        "waves": {
            str(w): {
                "n": r.diagnostics["n"],
                "excluded_missing_background": r.diagnostics["n_excluded_missing_background"],
                "n_trimmed": r.diagnostics["n_trimmed"],
            }
            for w, r in result.per_wave.items()
        },
    }
