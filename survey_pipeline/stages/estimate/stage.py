"""Estimate stage: indicators, full answer distributions and wave changes, with design-based CIs.

Per wave, the valid rows joined with their weights form a `SurveyDesign` that is
raked again to that wave's population margins. The weights are already raked, so
this changes no weight (checked: `calibration_tolerance`), but it makes the
variance calibration-aware, as R's `rake()` does. Each indicator is a proportion
of its 1/0 outcome (`indicators.py`) over its base group, as a domain of the
whole design; every item gets the share of every answer code among those asked.
All proportions of a design and breakdown are one batched core call
(`SurveyDesign.proportions`; changes: `.differences`).

Changes between waves use the stacked rows of both waves with the respondent as
cluster (panel members answer in several waves, so the waves are not
independent samples), raked to the margins of both waves crossed with wave; R
reference: tests/reference/r/make_change_reference.R. `se_independent` is what
treating the waves as independent samples would give: sqrt(se_from^2 + se_to^2)
from the per-wave estimates. A change is suppressed when either of its wave
estimates is (so it never reveals a suppressed value).

The spec's analyses (means, crosstabs, logits, area vs rest, trends; `analyses.py`) run on
the same calibrated designs and go to `outputs/estimate/analyses/`.

Publication rule: `reliability.py`; targets: `targets.py`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey_pipeline import contracts
from survey_pipeline import indicators as ind
from survey_pipeline import targets as tgt
from survey_pipeline.artifacts import OutputStore, read_table, write_spec_record, write_table
from survey_pipeline.contracts import columns
from survey_pipeline.core.design import CalibrationError, Share, SurveyDesign
from survey_pipeline.errors import InputError
from survey_pipeline.population import load_cells, load_margins
from survey_pipeline.population import wave_margins as population_margins
from survey_pipeline.registrations import empty_table as empty_registration_table
from survey_pipeline.registrations import read_registrations, registration_table
from survey_pipeline.reliability import apply_suppression, assess
from survey_pipeline.settings import (
    TOTAL,
    EstimateSettings,
    Params,
    SuppressionRule,
    WeightSettings,
    recorded_software,
    upstream_settings,
    write_record,
)
from survey_pipeline.spec import Indicator, QuestionnaireSpec
from survey_pipeline.stages.estimate.analyses import TOTAL_LABEL, estimate_analyses
from survey_pipeline.stages.estimate.analyses import empty_tables as empty_analysis_tables
from survey_pipeline.stages.estimate.small_area import empty_table as empty_sae_table
from survey_pipeline.stages.estimate.small_area import published_share, read_covariates, small_area_estimates

log = logging.getLogger(__name__)

WEIGHT = "weight"
# Calibration margins as `SurveyDesign.rake` / `.poststratify` take them: `{variable: {code: total}}`
# or, over crossed variables, `{(variable_a, variable_b): {(code_a, code_b): total}}`.
Margins = Mapping[str | tuple[str, ...], Mapping[Any, float]]

INDICATOR_COLUMNS = columns(contracts.EstimateIndicators)
CHANGE_COLUMNS = columns(contracts.EstimateChanges)
DISTRIBUTION_COLUMNS = columns(contracts.EstimateDistributions)
CHANGE_MASKED = (
    "estimate_from",
    "estimate_to",
    "difference",
    "se",
    "ci_lower",
    "ci_upper",
    "p_value",
    "se_independent",
)


# ---------------------------------------------------------------------------
# Parameters


def parse_targets(spec: QuestionnaireSpec) -> dict[tuple[str, int], tgt.Target]:
    """Every target of the spec, parsed (the spec loader has checked their syntax)."""
    return {
        (indicator.id, year): tgt.parse_target(text)
        for indicator in spec.indicators
        for year, text in indicator.targets.items()
    }


# ---------------------------------------------------------------------------
# Inputs


def join_weights(
    valid: pd.DataFrame, weights: pd.DataFrame, spec: QuestionnaireSpec
) -> tuple[pd.DataFrame, dict[int, dict[str, int]]]:
    """Valid rows with their weight; rows without one (excluded by the weight stage) are dropped."""
    keys = [spec.respondent_id, spec.wave_variable]
    if weights.duplicated(keys).any():
        raise InputError("a respondent has more than one weight in a wave", rule="weights_unique")
    if valid.duplicated(keys).any():
        raise InputError("a respondent occurs twice in a wave of the valid data", rule="valid_unique")
    merged = valid.merge(weights[[*keys, WEIGHT]], on=keys, how="left", validate="one_to_one", indicator=True)
    stale = weights.merge(valid[keys], on=keys, how="left", indicator=True)["_merge"].eq("left_only")
    if stale.any():
        raise InputError(
            f"{int(stale.sum())} weight(s) belong to no valid row; rerun the weight stage", rule="weights_match"
        )
    has_weight = merged["_merge"].eq("both")
    counts = {
        int(wave): {"rows_valid": int(len(group)), "rows_weighted": int(has_weight[group.index].sum())}
        for wave, group in merged.groupby(spec.wave_variable, sort=True)
    }
    return merged.loc[has_weight].drop(columns="_merge").reset_index(drop=True), counts


def read_targets(path: Path, spec: QuestionnaireSpec, weighting: WeightSettings) -> pd.DataFrame:
    """The population file the weight stage calibrated to: margins (rake) or cells."""
    if weighting.method == "rake":
        return load_margins(path, spec)
    return load_cells(path, spec, weighting.weighting_variables)


def wave_margins(targets: pd.DataFrame, wave: int, weighting: WeightSettings, *, file: str = "margins") -> Margins:
    """The calibration margins of one wave as `SurveyDesign` takes them, codes as float like the data.

    Raking: `{variable: {code: total}}`, checked and scaled to a common total exactly as
    the weight stage does (`population.wave_margins`). Post-stratification: the crossed
    cells as one margin, `{(variable_a, variable_b): {(code_a, code_b): total}}` (one
    variable: `{variable: {code: total}}`), so any codes key their own cell.
    """
    if weighting.method == "rake":
        checked = population_margins(
            targets, wave, weighting.weighting_variables, weighting.margin_total_tolerance, file=file
        )
        return {
            m.variable: dict(zip(m.codes.astype(float).tolist(), m.counts.tolist(), strict=True))
            for m in checked.margins
        }
    rows = targets[targets["wave"] == wave]
    if rows.empty:
        raise InputError(f"no population cells for wave {wave}", file=file, rule="population_margins")
    variables = tuple(weighting.weighting_variables)
    counts = rows["count"].astype(float).tolist()
    if len(variables) == 1:
        (variable,) = variables
        return {variable: dict(zip(rows[variable].astype(float).tolist(), counts, strict=True))}
    cells = map(tuple, rows[list(variables)].to_numpy(dtype=float).tolist())
    return {variables: dict(zip(cells, counts, strict=True))}


# ---------------------------------------------------------------------------
# Designs


def _calibrate(design: SurveyDesign, margins: Margins, weighting: WeightSettings) -> SurveyDesign:
    try:
        if weighting.method == "rake":
            return design.rake(
                margins, max_iter=weighting.max_iter, tol=weighting.tol, margin_tol=weighting.margin_tolerance
            )
        ((variables, totals),) = margins.items()
        return design.poststratify(variables, totals)
    except CalibrationError as exc:
        raise InputError(f"cannot calibrate to the population margins: {exc}", rule="calibration") from None


def wave_design(
    frame: pd.DataFrame,
    margins: Margins,
    weighting: WeightSettings,
    tolerance: float,
    *,
    wave: int | None = None,
) -> tuple[SurveyDesign, float]:
    """Design of one wave (named in the error), calibrated again; the weights must already meet the margins."""
    design = _calibrate(SurveyDesign(frame, weights=WEIGHT), margins, weighting)
    change = float(np.max(np.abs(design.weights / frame[WEIGHT].to_numpy() - 1.0))) if len(frame) else 0.0
    if change > tolerance:
        raise InputError(
            f"weights{'' if wave is None else f' of wave {wave}'} do not meet the population margins "
            f"(re-calibrating changes a weight by {change:.2e} relative); rerun the weight stage",
            rule="calibration",
        )
    return design, change


def margins_by_wave_crossed(margins_by_wave: Mapping[int, Margins], wave_variable: str) -> Margins:
    """The margins of several waves as margins crossed with the wave: `{variable: {code: total}}`
    of wave w becomes `{(wave_variable, variable): {(w, code): total}}` (crossed cells likewise)."""
    crossed: dict[tuple, dict[tuple, float]] = {}
    for wave, margins in margins_by_wave.items():
        for variables, totals in margins.items():
            crossed_variables = isinstance(variables, tuple)
            target = crossed.setdefault((wave_variable, *(variables if crossed_variables else (variables,))), {})
            for code, total in totals.items():
                target[(float(wave), *(code if crossed_variables else (code,)))] = total
    return crossed


def stacked_design(
    frames: Sequence[pd.DataFrame],
    margins_by_wave: Mapping[int, Margins],
    weighting: WeightSettings,
    spec: QuestionnaireSpec,
) -> SurveyDesign:
    """Rows of several waves, respondent as cluster, calibrated to every wave's margins."""
    design = SurveyDesign(pd.concat(frames, ignore_index=True), weights=WEIGHT, cluster=spec.respondent_id)
    return _calibrate(design, margins_by_wave_crossed(margins_by_wave, spec.wave_variable), weighting)


# ---------------------------------------------------------------------------
# Proportions by breakdown


Columns = dict[str, np.ndarray]

PROPORTION_FIELDS = ("estimate", "se", "ci_lower", "ci_upper", "df", "deff", "n_eff", "n", "sum_weights", "ci_method")
DIFFERENCE_FIELDS = ("estimate_from", "estimate_to", "difference", "se", "ci_lower", "ci_upper", "df", "p_value")


def _levels(spec: QuestionnaireSpec, breakdown: str, found: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Every level of a breakdown: the spec's codes plus any other code found, with labels."""
    codes = spec.background[breakdown].codes
    every = sorted({float(c) for c in codes} | {float(c) for c in found if not np.isnan(c)})
    return np.asarray(every, dtype=np.float64), [codes.get(int(c), str(c)) for c in every]


def _reindex(columns: Columns, n_items: int, found: np.ndarray, every: np.ndarray) -> Columns:
    """Spread per-level results (item-major) over every level, as (items x levels) arrays;
    absent levels get NaN / 0 / None."""
    position = np.searchsorted(every, found)
    out = {}
    for name, values in columns.items():
        if values.dtype.kind == "f":
            filled = np.full((n_items, every.size), np.nan)
        elif values.dtype.kind in "iu":
            filled = np.zeros((n_items, every.size), dtype=values.dtype)
        else:
            filled = np.full((n_items, every.size), None, dtype=object)
        filled[:, position] = values.reshape(n_items, found.size)
        out[name] = filled
    return out


def _by_breakdown(spec: QuestionnaireSpec, breakdowns: Sequence[str], n_items: int, compute) -> Columns:
    """`compute(by) -> (columns, levels found)` for the total and each breakdown, columns item-major.

    Result, item by item: the total, then every spec level of each breakdown.
    """
    total, _ = compute(None)
    blocks = [{key: values.reshape(n_items, 1) for key, values in total.items()}]
    names, codes, labels = [TOTAL], [np.full(1, np.nan)], [TOTAL_LABEL]
    for name in breakdowns:
        columns, found = compute(name)
        every, every_labels = _levels(spec, name, found)
        blocks.append(_reindex(columns, n_items, found, every))
        names += [name] * every.size
        codes.append(every)
        labels += every_labels
    out = {key: np.concatenate([block[key] for block in blocks], axis=1).ravel() for key in total}
    out["breakdown"] = np.tile(np.asarray(names, dtype=object), n_items)
    out["breakdown_code"] = np.tile(np.concatenate(codes), n_items)
    out["breakdown_label"] = np.tile(np.asarray(labels, dtype=object), n_items)
    return out


def _found_levels(result: pd.DataFrame, by: str | None, n_items: int) -> np.ndarray | None:
    """The `by` levels of a batched result (the same for every item)."""
    return None if by is None else result[by].to_numpy(dtype=np.float64)[: len(result) // n_items]


def _proportion_tables(
    design: SurveyDesign, spec: QuestionnaireSpec, params: EstimateSettings, shares: Sequence[Share]
) -> Columns:
    """Proportions of every share by breakdown, item-major, with the displayed CI."""

    def compute(by):
        result = design.proportions(shares, by=by, ci=params.ci_method, level=params.level)
        out = {name: result[name].to_numpy() for name in PROPORTION_FIELDS}
        out["ci_method"] = out["ci_method"].astype(object)
        return out, _found_levels(result, by, len(shares))

    out = _by_breakdown(spec, params.breakdowns, len(shares), compute)
    out["sum_weights"] = np.nan_to_num(out["sum_weights"], nan=0.0)
    out["ci_method"] = np.where(pd.isna(out["ci_method"]), params.ci_method, out["ci_method"])
    return out


def _stack(metas: Sequence[Mapping[str, Any]], columns: Columns) -> pd.DataFrame:
    """One frame from item-major columns plus each item's constant columns (`metas`, one per item)."""
    if not metas:
        return pd.DataFrame()
    data = dict(columns)
    rows_per_item = len(next(iter(columns.values()))) // len(metas)
    for key in metas[0]:
        values = [meta[key] for meta in metas]
        first = values[0]
        dtype = np.int64 if isinstance(first, int | np.integer) else np.float64 if isinstance(first, float) else object
        data[key] = np.repeat(np.asarray(values, dtype=dtype), rows_per_item)
    return pd.DataFrame(data)


def _as_text(frame: pd.DataFrame, table: Mapping[str, str]) -> pd.DataFrame:
    """The text columns of `table` (its contract's columns and dtypes) stored as `str`."""
    for column, dtype in table.items():
        if dtype == "str" and column in frame:
            frame[column] = pd.array(frame[column].astype(object).to_numpy(), dtype="str")
    return frame


def estimate_indicators(
    spec: QuestionnaireSpec,
    design: SurveyDesign,
    wave: int,
    params: EstimateSettings,
    indicators: Sequence[Indicator] | None = None,
) -> pd.DataFrame:
    """Unsuppressed indicator estimates of one wave (design data holds the outcome columns)."""
    chosen = [
        i for i in (indicators if indicators is not None else spec.indicators) if wave in ind.measured_in(spec, i)
    ]
    if not chosen:
        return pd.DataFrame()
    bases = [ind.indicator_base(spec, indicator) for indicator in chosen]
    shares = [
        Share(ind.outcome_column(indicator), [1.0], None, base.where)
        for indicator, base in zip(chosen, bases, strict=True)
    ]
    metas = [
        {
            "indicator_id": indicator.id,
            "label": indicator.label,
            "kind": indicator.kind,
            "variable": indicator.variable,
            "wave": int(wave),
            "base": base.group,
            "base_text": base.text,
            "level": params.level,
        }
        for indicator, base in zip(chosen, bases, strict=True)
    ]
    return _stack(metas, _proportion_tables(design, spec, params, shares))


def estimate_distributions(
    spec: QuestionnaireSpec, design: SurveyDesign, wave: int, params: EstimateSettings
) -> pd.DataFrame:
    """Share of every code (answers, "weet niet", "geen antwoord") among those asked, suppressed per rule."""
    shares, metas = [], []
    for variable in spec.variables_in_wave(wave):
        group = variable.asked_of
        where = ind.group_where(spec, group)
        for code, code_label, code_type in ind.answer_categories(variable):
            shares.append(Share(variable.name, [code], [float(variable.missing.not_asked.code)], where))
            metas.append(
                {
                    "variable": variable.name,
                    "label": variable.label,
                    "wave": int(wave),
                    "group": group,
                    "base_text": spec.base_text(group),
                    "code": float(code),
                    "code_label": code_label,
                    "code_type": code_type,
                }
            )
    if not shares:
        return _empty(DISTRIBUTION_COLUMNS)
    out = apply_rule(_stack(metas, _proportion_tables(design, spec, params, shares)), params.suppression)
    out = out.rename(columns={"n": "n_base", "sum_weights": "sum_weights_base"})
    return out[list(DISTRIBUTION_COLUMNS)]


def apply_rule(raw: pd.DataFrame, rule: SuppressionRule) -> pd.DataFrame:
    """Suppress/flag unsuppressed estimates with the rule (judged on its own 95% interval)."""
    assessment = assess(rule, raw["estimate"], raw["se"], raw["n"], raw["df"])
    return apply_suppression(raw, assessment)


# ---------------------------------------------------------------------------
# Changes


def change_pairs(waves: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive measured waves, plus first -> last when there are more than two."""
    ordered = sorted(waves)
    pairs = list(zip(ordered[:-1], ordered[1:], strict=True))
    if len(ordered) > 2:
        pairs.append((ordered[0], ordered[-1]))
    return pairs


def _panel_pairs(
    frame: pd.DataFrame, first: int, second: int, spec: QuestionnaireSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Row of each respondent in `first` and in `second`, for respondents in both waves."""
    wave = frame[spec.wave_variable].to_numpy()
    resp = frame[spec.respondent_id].to_numpy(dtype=np.int64)
    rows_first, rows_second = np.flatnonzero(wave == first), np.flatnonzero(wave == second)
    _, i, j = np.intersect1d(resp[rows_first], resp[rows_second], return_indices=True)
    return rows_first[i], rows_second[j]


def _n_both(
    frame: pd.DataFrame,
    masks: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    breakdown: str | None,
    found: np.ndarray | None,
) -> np.ndarray:
    """Per item (row of `masks`: its domain) and level `found` of the breakdown (one level
    for the total): respondents in the domain, at that level, in both waves. Item-major."""
    first, second = pairs
    both = masks[:, first] & masks[:, second]
    if breakdown is None:
        return both.sum(axis=1)
    level = frame[breakdown].to_numpy(dtype=np.float64)
    same = level[first] == level[second]
    position = np.searchsorted(found, level[first])
    return np.concatenate([np.bincount(position[item & same], minlength=found.size) for item in both])


def estimate_changes(
    spec: QuestionnaireSpec,
    design: SurveyDesign,
    first: int,
    second: int,
    params: EstimateSettings,
    indicators: Sequence[Indicator] | None = None,
) -> pd.DataFrame:
    """Unsuppressed changes first -> second on a stacked design (outcome columns in its data)."""
    frame = design.data
    chosen = [
        i
        for i in (indicators if indicators is not None else spec.indicators)
        if first in ind.measured_in(spec, i) and second in ind.measured_in(spec, i)
    ]
    if not chosen:
        return pd.DataFrame()
    bases = [ind.indicator_base(spec, indicator) for indicator in chosen]
    shares = [
        Share(ind.outcome_column(indicator), [1.0], None, base.where)
        for indicator, base in zip(chosen, bases, strict=True)
    ]
    masks = np.vstack(
        [
            spec.groups[base.group].mask(frame) & frame[share.variable].notna().to_numpy()
            for base, share in zip(bases, shares, strict=True)
        ]
    )
    pairs = _panel_pairs(frame, first, second, spec)

    def compute(by):
        result = design.differences(shares, between=(spec.wave_variable, first, second), by=by, level=params.level)
        out = {name: result[name].to_numpy() for name in DIFFERENCE_FIELDS}
        found = _found_levels(result, by, len(shares))
        out["n_both"] = _n_both(frame, masks, pairs, by, found).astype(np.int64)
        return out, found

    metas = [{"indicator_id": indicator.id, "wave_from": int(first), "wave_to": int(second)} for indicator in chosen]
    return _stack(metas, _by_breakdown(spec, params.breakdowns, len(shares), compute))


def finish_changes(raw: pd.DataFrame, levels: pd.DataFrame) -> pd.DataFrame:
    """Add se_independent and suppression (from the per-wave estimates) to raw changes.

    `levels` is the indicator table after suppression but with the unsuppressed
    SE kept in `se_raw`.
    """
    if raw.empty:
        return _empty(CHANGE_COLUMNS)
    key = ["indicator_id", "wave", "breakdown", "breakdown_code"]
    side = levels[[*key, "se_raw", "suppressed"]]
    out = raw.copy()
    for end, wave_col in (("from", "wave_from"), ("to", "wave_to")):
        renamed = side.rename(columns={"wave": wave_col, "se_raw": f"se_{end}", "suppressed": f"suppressed_{end}"})
        out = out.merge(renamed, on=["indicator_id", wave_col, "breakdown", "breakdown_code"], how="left")
    out["se_independent"] = np.sqrt(out["se_from"] ** 2 + out["se_to"] ** 2)
    no_estimate = out["difference"].isna().to_numpy()
    no_interval = ~no_estimate & (out["ci_lower"].isna() | out["ci_upper"].isna()).to_numpy()
    reasons = [
        ("estimate_from_suppressed", out["suppressed_from"].fillna(True).to_numpy(dtype=bool)),
        ("estimate_to_suppressed", out["suppressed_to"].fillna(True).to_numpy(dtype=bool)),
        ("no_estimate", no_estimate),
        ("no_interval", no_interval),
    ]
    suppressed = np.zeros(len(out), dtype=bool)
    reason = np.full(len(out), "", dtype=object)
    for code, mask in reasons:
        suppressed |= mask
        reason = np.where(mask, np.where(reason == "", code, reason + ";" + code), reason)
    for column in CHANGE_MASKED:
        out[column] = out[column].astype(np.float64).where(~suppressed)
    out["suppressed"] = suppressed
    out["suppression_reason"] = pd.array(reason.astype(str), dtype="str")
    return out[list(CHANGE_COLUMNS)]


# ---------------------------------------------------------------------------
# Targets


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple]:
    """Rows of some columns as named tuples (plain Python values: fast, unlike itertuples
    over Arrow-backed string columns)."""
    row = namedtuple("Row", columns)
    return itertools.starmap(row, zip(*(frame[column].tolist() for column in columns), strict=True))


def judge_targets(
    spec: QuestionnaireSpec, levels: pd.DataFrame, changes: pd.DataFrame, parsed: Mapping[tuple[str, int], tgt.Target]
) -> pd.DataFrame:
    """Add target and target_status; target reasons are appended to flags.

    A change target compares with the previous wave in which the indicator was
    measured and is present in the data.
    """
    out = levels.copy()
    consecutive = {}
    for indicator_id, waves in out.groupby("indicator_id", sort=False)["wave"]:
        measured = sorted(int(w) for w in waves.unique())
        for previous, wave in zip(measured[:-1], measured[1:], strict=True):
            consecutive[(indicator_id, wave)] = previous
    change_index = {}
    if not changes.empty:
        for row in _rows(
            changes,
            (
                "indicator_id",
                "wave_from",
                "wave_to",
                "breakdown",
                "breakdown_code",
                "difference",
                "ci_lower",
                "ci_upper",
            ),
        ):
            code = None if math.isnan(row.breakdown_code) else row.breakdown_code
            change_index[(row.indicator_id, row.wave_from, row.wave_to, row.breakdown, code)] = row
    texts, statuses, flags = [], [], []
    for row in _rows(
        out, ("indicator_id", "wave", "breakdown", "breakdown_code", "estimate", "ci_lower", "ci_upper", "flags")
    ):
        indicator = spec.indicator(row.indicator_id)
        text = indicator.targets.get(int(row.wave), "")
        target = parsed.get((row.indicator_id, int(row.wave)))
        level = tgt.Interval(row.estimate, row.ci_lower, row.ci_upper)
        code = None if math.isnan(row.breakdown_code) else row.breakdown_code
        previous = consecutive.get((row.indicator_id, int(row.wave)))
        change, change_reason = None, "no_previous_wave"
        if previous is not None:
            found = change_index.get((row.indicator_id, previous, int(row.wave), row.breakdown, code))
            change_reason = "no_change_estimate" if found is None else "change_suppressed"
            if found is not None:
                change = tgt.Interval(found.difference, found.ci_lower, found.ci_upper)
        status, reason = tgt.evaluate(
            target, level, change, level_reason="estimate_suppressed", change_reason=change_reason
        )
        texts.append(text)
        statuses.append(status)
        flags.append(";".join(part for part in (row.flags, reason) if part))
    out["target"] = pd.array(texts, dtype="str")
    out["target_status"] = pd.array(statuses, dtype="str")
    out["flags"] = pd.array(flags, dtype="str")
    return out


# ---------------------------------------------------------------------------
# The whole computation (pure) and the stage shell


@dataclass(frozen=True)
class Estimates:
    indicators: pd.DataFrame
    changes: pd.DataFrame
    distributions: pd.DataFrame
    diagnostics: dict
    small_area: pd.DataFrame | None = None  # `contracts.EstimateSae`, when estimate.small_area is enabled
    analyses: Mapping[str, pd.DataFrame] | None = None  # `contracts.ANALYSIS_TABLES`: the spec's analyses


def _empty(table: Mapping[str, str]) -> pd.DataFrame:
    """A table without rows, with the columns and dtypes of its contract."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in table.items()})


def estimate_all(
    spec: QuestionnaireSpec,
    data: pd.DataFrame,
    margins: pd.DataFrame,
    params: EstimateSettings,
    weighting: WeightSettings,
    *,
    margins_file: str = "margins",
    covariates: pd.DataFrame | None = None,
) -> Estimates:
    """Indicators, changes and distributions from weighted valid rows (column `weight`); with
    `params.small_area` enabled and the area `covariates`, the small-area estimates too."""
    params.check_against(spec)
    parsed = parse_targets(spec)
    waves = sorted(int(w) for w in data[spec.wave_variable].unique())
    if not waves:
        raise InputError("no weighted rows to estimate from", rule="estimate_input")
    frames, margins_by_wave, designs, diagnostics = {}, {}, {}, {"waves": {}}
    level_parts, distribution_parts = [], []
    for wave in waves:
        rows = data[data[spec.wave_variable] == wave].reset_index(drop=True)
        measured = [i for i in spec.indicators if wave in ind.measured_in(spec, i)]
        frame, counts = ind.add_outcomes(spec, rows, measured)
        margins_by_wave[wave] = wave_margins(margins, wave, weighting, file=margins_file)
        design, change = wave_design(frame, margins_by_wave[wave], weighting, params.calibration_tolerance, wave=wave)
        frames[wave], designs[wave] = frame, design
        diagnostics["waves"][str(wave)] = {
            "rows": int(len(frame)),
            "calibration_max_relative_change": change,
            "outcome_counts": counts,
        }
        inconsistent = sum(c["routing_inconsistent"] for c in counts.values())
        if inconsistent:
            log.warning("wave %d: %d routing-inconsistent answer(s) excluded from indicators", wave, inconsistent)
        level_parts.append(estimate_indicators(spec, design, wave, params, measured))
        distribution_parts.append(estimate_distributions(spec, design, wave, params))
        log.info("wave %d: %d rows estimated", wave, len(frame))
    del design  # the stacked designs below are the largest objects: none of the per-wave ones beside them

    raw_levels = pd.concat(level_parts, ignore_index=True)
    levels = apply_rule(raw_levels, params.suppression)
    levels["se_raw"] = raw_levels["se"].to_numpy()
    small_area = None
    if params.small_area.enabled:
        small_area = small_area_estimates(
            raw_levels, levels["suppressed"].to_numpy(), covariates, spec, params.small_area, params.suppression
        )
        diagnostics["small_area_published_share"] = published_share(small_area)

    change_parts = []
    pairs = sorted(
        {p for i in spec.indicators for p in change_pairs([w for w in ind.measured_in(spec, i) if w in frames])}
    )
    for first, second in pairs:
        design = stacked_design(
            [frames[first], frames[second]],
            {first: margins_by_wave[first], second: margins_by_wave[second]},
            weighting,
            spec,
        )
        change_parts.append(estimate_changes(spec, design, first, second, params))
        del design  # before the next pair's design is built
    changes = finish_changes(pd.concat(change_parts, ignore_index=True) if change_parts else pd.DataFrame(), levels)

    def stacked(chosen: Sequence[int]) -> SurveyDesign:
        return stacked_design([frames[w] for w in chosen], {w: margins_by_wave[w] for w in chosen}, weighting, spec)

    analyses = estimate_analyses(spec, designs, stacked, params)
    judged = judge_targets(spec, levels, changes, parsed)
    indicators_out = _as_text(judged[list(INDICATOR_COLUMNS)].copy(), INDICATOR_COLUMNS)
    changes = _as_text(changes, CHANGE_COLUMNS)
    distributions = _as_text(pd.concat(distribution_parts, ignore_index=True), DISTRIBUTION_COLUMNS)
    diagnostics["pairs"] = [list(p) for p in pairs]
    diagnostics["analyses"] = {name: int(len(table)) for name, table in analyses.items()}
    return Estimates(indicators_out, changes, distributions, diagnostics, small_area, analyses)


def read_registration_table(settings: EstimateSettings, base_dir: Path, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The registration figures with their target judgement (`survey_pipeline.registrations`); no rows
    when the spec declares none and no file is named."""
    settings.check_registrations(spec)
    if settings.registrations_file is None:
        return empty_registration_table()
    path = Path(base_dir) / settings.registrations_file
    return registration_table(read_registrations(path, spec, name=settings.registrations_file), spec)


def run(store: OutputStore, spec: QuestionnaireSpec, params: Params, base_dir: Path) -> dict:
    """Read valid rows, weights and margins; write indicators, changes, distributions and the settings
    record. The calibration is redone as the weight stage recorded it."""
    inputs = {"validate": store.reading("validate"), "weight": store.reading("weight")}
    upstream = upstream_settings(inputs, params)
    settings = params.estimate
    weighting = upstream["weight"]
    valid = read_table(store.reading("validate") / "valid.parquet", contracts.ValidateValid, spec)
    weights = read_table(store.reading("weight") / "weights.parquet", contracts.WeightWeights, spec)
    margins_path = Path(base_dir) / weighting.target_file
    margins = read_targets(margins_path, spec, weighting)
    data, join_counts = join_weights(valid, weights, spec)
    del valid, weights  # the joined copy is all the estimates read: one copy of the panel in memory, not three
    settings.check_against(spec)  # before reading the covariates a wrong setting would not need
    covariates = read_covariates(settings.small_area, base_dir, spec) if settings.small_area.enabled else None
    registrations = read_registration_table(settings, base_dir, spec)  # a bad file fails before the estimates
    result = estimate_all(
        spec, data, margins, settings, weighting, margins_file=str(margins_path), covariates=covariates
    )
    small_area = result.small_area if result.small_area is not None else empty_sae_table()
    with store.writing("estimate") as out:
        write_table(result.indicators, out / "indicators.parquet", contracts.EstimateIndicators, spec)
        write_table(result.changes, out / "changes.parquet", contracts.EstimateChanges, spec)
        write_table(result.distributions, out / "distributions.parquet", contracts.EstimateDistributions, spec)
        write_table(small_area, out / "sae.parquet", contracts.EstimateSae, spec)
        write_table(registrations, out / "registrations.parquet", contracts.EstimateRegistrations, spec)
        (out / contracts.ANALYSES_FOLDER).mkdir()
        for name, table in (result.analyses or empty_analysis_tables()).items():
            path = out / contracts.ANALYSES_FOLDER / f"{name}.parquet"
            write_table(table, path, contracts.ANALYSIS_TABLES[name], spec)
        write_spec_record(out, spec)
        write_record(out, {**upstream, "estimate": settings}, recorded_software(inputs))
    for wave, counts in join_counts.items():
        result.diagnostics["waves"].setdefault(str(wave), {}).update(counts)
    summary = {
        name: {"rows": int(len(frame)), "suppressed": int(frame["suppressed"].sum())}
        for name, frame in (
            ("indicators", result.indicators),
            ("changes", result.changes),
            ("distributions", result.distributions),
        )
    }
    summary["registrations"] = {"rows": int(len(registrations))}
    status_counts = result.indicators.loc[result.indicators["breakdown"] == TOTAL, "target_status"].value_counts()
    summary["indicators"]["target_status_total"] = {str(k): int(v) for k, v in status_counts.items()}
    log.info(
        "estimate: %d indicator rows, %d changes, %d distribution rows",
        len(result.indicators),
        len(result.changes),
        len(result.distributions),
    )
    return {**summary, **result.diagnostics}
