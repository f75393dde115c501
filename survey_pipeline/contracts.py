"""The contract of every stage output, declared once.

Tables are pandera `DataFrameModel`s: column names, order, dtypes, nullability,
ranges, uniqueness and the cross-column checks. The published report tables extend
the estimate tables (same columns, plus the checks on intervals and suppression).
JSON outputs are pydantic models that forbid unknown keys. `survey_pipeline.artifacts`
checks every table and JSON file against its contract when it is written and read;
column lists and dtypes elsewhere come from here (`columns`).

The rules that depend on the questionnaire (allowed codes, routing) are generated from
the spec in `survey_pipeline.stages.validate.stage`; the tables of ingested responses have one fixed
part (origin columns) and spec columns matched by pattern.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, TypedDict

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series
from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, create_model, model_validator

TOLERANCE = 1e-9
CI_METHODS = ["logit", "beta", "wilson", "wald"]  # = survey_pipeline.core.intervals.CI_METHODS (tested)
YEARS = {"min_value": 1900, "max_value": 2100}
SHARE = {"min_value": 0, "max_value": 1}
SIGNED_SHARE = {"min_value": -1, "max_value": 1}
SUPPRESSED = "not published: every number of the estimate is NaN"
SUPPRESSION_REASON = "rule codes joined by ';' (reliability.py), empty when published"


def _every_column_but(*names: str) -> str:
    """A column-name pattern for the spec's columns: anything but the fixed `names`."""
    return "^(?!" + "|".join(f"{name}$" for name in names) + ").+$"


def columns(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """The fixed columns of a table contract in order, with the pandas dtype each is stored as
    ("str", "int64", "float64", "bool"); columns matched by pattern are left out."""
    out = {}
    for name, column in model.to_schema().columns.items():
        if not column.regex:
            dtype = str(column.dtype)
            out[name] = "str" if dtype.startswith("string") else dtype
    return out


def contract_name(model: type[pa.DataFrameModel]) -> str:
    """The name a contract goes by in messages (`schema:<name>`), e.g. `estimate_indicators`."""
    return str(model.to_schema().name)


# ---------------------------------------------------------------------------
# Cross-column checks of the published tables (within 1e-9)


def interval_contains(frame: pd.DataFrame, *, value: str, lower: str, upper: str) -> pd.Series:
    """Where `value` is published: lower <= value <= upper."""
    present = frame[value].notna()
    inside = (frame[lower] <= frame[value] + TOLERANCE) & (frame[value] <= frame[upper] + TOLERANCE)
    return ~present | inside


def suppressed_rows_have_no_numbers(frame: pd.DataFrame, *, flag: str, reason: str, numbers: list[str]) -> pd.Series:
    """Suppressed: every number NaN and a reason given; published: every number present, no reason.

    Except `deff` of a published 0% or 100%: the design effect is undefined there (the
    variance is 0; `SurveyDesign.proportions` gives NaN), and NCHS publishes such a cell.
    """
    suppressed = frame[flag].astype(bool)
    all_missing = frame[numbers].isna().all(axis=1)
    present = frame[numbers].notna()
    if "deff" in present and "estimate" in frame:
        present["deff"] |= frame["estimate"].isin([0.0, 1.0])
    none_missing = present.all(axis=1)
    has_reason = frame[reason].astype("str").str.len() > 0
    return (suppressed & all_missing & has_reason) | (~suppressed & none_missing & ~has_reason)


def published_bases_positive(frame: pd.DataFrame, *, flag: str, bases: list[str]) -> pd.Series:
    """A published estimate rests on a positive unweighted and weighted base."""
    positive = (frame[bases] > 0).all(axis=1)
    return frame[flag].astype(bool) | positive


def _named(check: Any, **arguments: Any) -> str:
    """The name a failed check goes by in messages: `check(arg=value, ...)`."""
    return f"{check.__name__}({', '.join(f'{k}={v}' for k, v in arguments.items())})"


# ---------------------------------------------------------------------------
# ingest, validate


class IngestResponses(pa.DataFrameModel):
    """One row per data row of every raw file; codes as read. Background and question columns follow the spec."""

    source_file: Series[str] = pa.Field(str_length={"min_value": 1}, description="raw file name")
    source_row: Series[int] = pa.Field(ge=1, description="1-based data row in the raw file")
    file_wave: Series[int] = pa.Field(description="wave from the file name")
    resp_id: Series[float] = pa.Field(nullable=True, description="respondent id as read")
    wave: Series[float] = pa.Field(nullable=True, description="wave variable as read")
    base_weight: Optional[Series[float]] = pa.Field(
        nullable=True, description="design weight when the raw file has one"
    )
    codes: Series[float] = pa.Field(
        alias=_every_column_but("source_file", "source_row", "file_wave"),
        regex=True,
        nullable=True,
        description="background variables and spec questions: codes as read (NaN = system missing)",
    )

    class Config:
        name = "ingest_responses"


class ValidateValid(pa.DataFrameModel):
    """Rows that passed every validation rule; same columns as ingest_responses."""

    source_file: Series[str] = pa.Field(str_length={"min_value": 1}, description="raw file name")
    source_row: Series[int] = pa.Field(ge=1, description="1-based data row in the raw file")
    file_wave: Series[int] = pa.Field(description="wave from the file name")
    resp_id: Series[int] = pa.Field(ge=0, description="respondent id")
    wave: Series[int] = pa.Field(description="wave (equals file_wave)")
    base_weight: Optional[Series[float]] = pa.Field(
        nullable=True, description="design weight when the raw file has one"
    )
    codes: Series[float] = pa.Field(
        alias=_every_column_but("source_file", "source_row", "file_wave", "resp_id", "wave"),
        regex=True,
        nullable=True,
        description="background variables and spec questions: codes (NaN = system missing or not in the wave)",
    )

    class Config:
        name = "validate_valid"
        unique = ["file_wave", "resp_id"]


class ValidateQuarantine(pa.DataFrameModel):
    """Rows that failed validation, with every reason."""

    source_file: Series[str] = pa.Field(str_length={"min_value": 1}, description="raw file name")
    source_row: Series[int] = pa.Field(ge=1, description="1-based data row in the raw file")
    file_wave: Series[int] = pa.Field(description="wave from the file name")
    resp_id: Series[float] = pa.Field(nullable=True, description="respondent id as read (may be NaN)")
    reasons: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="every failed rule as 'rule:variable; rule:variable'"
    )
    codes: Series[float] = pa.Field(
        alias=_every_column_but("source_file", "source_row", "file_wave", "resp_id", "reasons"),
        regex=True,
        nullable=True,
        description="the row's codes as read, to inspect the problem",
    )

    class Config:
        name = "validate_quarantine"
        unique = ["source_file", "source_row"]


class ValidateQuarantineReasons(pa.DataFrameModel):
    """One row per failed rule per quarantined row."""

    source_file: Series[str] = pa.Field(str_length={"min_value": 1}, description="raw file name")
    source_row: Series[int] = pa.Field(ge=1, description="1-based data row in the raw file")
    rule: Series[str] = pa.Field(str_length={"min_value": 1}, description="rule name, e.g. routed_past")
    column: Series[str] = pa.Field(description="variable the rule is about")
    message: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="what is wrong (codes only, no respondent text)"
    )

    class Config:
        name = "validate_quarantine_reasons"
        strict = True


# The validate stage's quarantine rules (`ValidateQuarantineReasons.rule`) in Dutch: for the data manager's
# quarantine workbook, the Data Docs page and the method note's quarantine reasons.
RULE_TEXT_NL = {
    "valid_id": "respondentnummer ontbreekt of is geen geheel getal van 0 tot 2^53",
    "unique_id": "respondentnummer komt meer dan eens voor in deze meting",
    "wave_matches_file": "de meting in de data is een andere dan die in de bestandsnaam",
    "wave_in_spec": "de meting in de bestandsnaam staat niet in de vragenlijstspecificatie",
    "allowed_codes": "de code is geen antwoord- of ontbrekende-waardecode van deze vraag",
    "not_in_wave": "de vraag is in deze meting niet gesteld maar heeft een code",
    "routed_past": "de respondent is langs de vraag gestuurd maar heeft niet de code 'niet gevraagd'",
    "routed_to": "de respondent had de vraag moeten krijgen maar heeft de code 'niet gevraagd'",
    "not_blank": "de respondent had de vraag moeten krijgen maar het antwoord is leeg",
}


# ---------------------------------------------------------------------------
# weight


class WeightWeights(pa.DataFrameModel):
    """Population-scaled weights per respondent and wave (sum = population 18+ of the wave)."""

    resp_id: Series[int]
    wave: Series[int] = pa.Field(in_range=YEARS)
    weight: Series[float] = pa.Field(gt=0, lt=math.inf)

    class Config:
        name = "weight_weights"
        strict = True
        ordered = True
        unique = ["resp_id", "wave"]


class WeightMargins(pa.DataFrameModel):
    """Margin recovery: weighted sample against population for every category of every margin."""

    wave: Series[int] = pa.Field(in_range=YEARS)
    variable: Series[str]
    code: Series[int]
    label: Series[str]
    population: Series[float] = pa.Field(ge=0)
    population_share: Series[float] = pa.Field(in_range=SHARE)
    sample_n: Series[int] = pa.Field(ge=0)
    sample_share: Series[float] = pa.Field(in_range=SHARE)
    weighted: Series[float] = pa.Field(ge=0)
    weighted_share: Series[float] = pa.Field(in_range=SHARE)
    difference: Series[float]
    relative_difference: Series[float]

    class Config:
        name = "weight_margins"
        strict = True
        ordered = True
        unique = ["wave", "variable", "code"]


class WeightDiagnostics(pa.DataFrameModel):
    """Weighting diagnostics per wave (Kish deff = n * sum(w^2) / sum(w)^2)."""

    wave: Series[int] = pa.Field(in_range=YEARS)
    method: Series[str] = pa.Field(isin=["rake", "poststratify"])
    n_valid: Series[int] = pa.Field(ge=0)
    n_excluded_missing_background: Series[int] = pa.Field(ge=0)
    n: Series[int] = pa.Field(gt=0)
    sum_weights: Series[float] = pa.Field(gt=0)
    mean_weight: Series[float] = pa.Field(gt=0)
    min_weight: Series[float] = pa.Field(gt=0)
    max_weight: Series[float] = pa.Field(gt=0)
    cv_weight: Series[float] = pa.Field(ge=0)
    deff_kish: Series[float] = pa.Field(ge=0.999999999999)
    n_eff: Series[float] = pa.Field(gt=0)
    population_total: Series[float] = pa.Field(gt=0)
    iterations: Series[int] = pa.Field(ge=0)
    converged: Series[bool]
    trim_rounds: Series[int] = pa.Field(ge=0)
    n_trimmed: Series[int] = pa.Field(ge=0)
    max_abs_margin_error: Series[float] = pa.Field(ge=0)
    margin_total_max_rel_diff: Series[float] = pa.Field(ge=0)
    base_weights_used: Series[bool]

    class Config:
        name = "weight_diagnostics"
        strict = True
        ordered = True
        unique = ["wave"]


# ---------------------------------------------------------------------------
# estimate; the report publishes the same tables with the cross-column checks


def _breakdown() -> Any:
    # Which background variables may appear is the spec's and params' business (settings.py checks
    # estimate.breakdowns against the spec); the contract holds for any survey.
    return pa.Field(str_length={"min_value": 1}, description="total or the background variable of the breakdown")


def _breakdown_code() -> Any:
    return pa.Field(nullable=True, description="code of the breakdown level (NaN for total)")


def _breakdown_label() -> Any:
    return pa.Field(str_length={"min_value": 1}, description="label of the level from the spec (Totaal for total)")


class EstimateIndicators(pa.DataFrameModel):
    """One row per indicator x wave x breakdown level; suppressed values are NaN."""

    indicator_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec indicator id")
    label: Series[str] = pa.Field(str_length={"min_value": 1}, description="indicator label from the spec (Dutch)")
    kind: Series[str] = pa.Field(isin=["prestatie", "kengetal"], description="prestatie or kengetal")
    variable: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec variable of the indicator")
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    breakdown: Series[str] = _breakdown()
    breakdown_code: Series[float] = _breakdown_code()
    breakdown_label: Series[str] = _breakdown_label()
    base: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec group of the denominator")
    base_text: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="the base in words, from the spec (Dutch)"
    )
    estimate: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="weighted share (NaN when suppressed)"
    )
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error, calibration-aware linearisation")
    ci_lower: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="lower bound of the confidence interval"
    )
    ci_upper: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="upper bound of the confidence interval"
    )
    ci_method: Series[str] = pa.Field(
        isin=CI_METHODS, description="interval method used for the row (beta = Korn-Graubard)"
    )
    level: Series[float] = pa.Field(
        in_range={**SHARE, "include_min": False, "include_max": False}, description="confidence level"
    )
    df: Series[float] = pa.Field(nullable=True, ge=0, description="design degrees of freedom of the domain")
    deff: Series[float] = pa.Field(nullable=True, gt=0, description="design effect (R svymean deff)")
    n_eff: Series[float] = pa.Field(nullable=True, ge=0, description="effective sample size p(1-p)/se^2")
    n: Series[int] = pa.Field(ge=0, description="unweighted base")
    sum_weights: Series[float] = pa.Field(ge=0, description="weighted base")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)
    flags: Series[str] = pa.Field(description="flags joined by ';' (low_df, target_not_evaluable:...), empty when none")
    target: Series[str] = pa.Field(description="target string of the wave's year from the spec, empty when none")
    target_status: Series[str] = pa.Field(
        isin=["met", "not_met", "indistinguishable", "key_figure", "no_target"],
        description="judgement of the target (targets.py)",
    )

    class Config:
        name = "estimate_indicators"
        strict = True
        ordered = True
        unique = ["indicator_id", "wave", "breakdown", "breakdown_code"]


class EstimateChanges(pa.DataFrameModel):
    """Change of each indicator between consecutive measured waves and first -> last."""

    indicator_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec indicator id")
    wave_from: Series[int] = pa.Field(in_range=YEARS, description="earlier wave")
    wave_to: Series[int] = pa.Field(in_range=YEARS, description="later wave")
    breakdown: Series[str] = _breakdown()
    breakdown_code: Series[float] = _breakdown_code()
    breakdown_label: Series[str] = _breakdown_label()
    estimate_from: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="estimate in wave_from (stacked design)"
    )
    estimate_to: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="estimate in wave_to (stacked design)"
    )
    difference: Series[float] = pa.Field(
        nullable=True, in_range=SIGNED_SHARE, description="estimate_to - estimate_from"
    )
    se: Series[float] = pa.Field(
        nullable=True, ge=0, description="SE of the difference, respondent as cluster, calibration-aware"
    )
    ci_lower: Series[float] = pa.Field(nullable=True, in_range=SIGNED_SHARE, description="difference - t(df) se")
    ci_upper: Series[float] = pa.Field(nullable=True, in_range=SIGNED_SHARE, description="difference + t(df) se")
    df: Series[float] = pa.Field(
        nullable=True, ge=0, description="degrees of freedom (respondents in either domain - 1)"
    )
    p_value: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="two-sided t test of no change")
    se_independent: Series[float] = pa.Field(
        nullable=True, ge=0, description="SE if the waves were independent samples: sqrt(se_from^2 + se_to^2)"
    )
    n_both: Series[int] = pa.Field(ge=0, description="respondents in the domain in both waves")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    class Config:
        name = "estimate_changes"
        strict = True
        ordered = True
        unique = ["indicator_id", "wave_from", "wave_to", "breakdown", "breakdown_code"]


class EstimateDistributions(pa.DataFrameModel):
    """Share of every answer code, including 'weet niet' and 'geen antwoord', per item and wave."""

    variable: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec variable")
    label: Series[str] = pa.Field(str_length={"min_value": 1}, description="question text from the spec (Dutch)")
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    group: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="spec group the question is asked of (the base)"
    )
    base_text: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="the base in words, from the spec (Dutch)"
    )
    breakdown: Series[str] = _breakdown()
    breakdown_code: Series[float] = _breakdown_code()
    breakdown_label: Series[str] = _breakdown_label()
    code: Series[float] = pa.Field(description="answer code")
    code_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the code from the spec")
    code_type: Series[str] = pa.Field(
        isin=["answer", "dont_know", "no_answer"], description="answer, dont_know or no_answer"
    )
    estimate: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="weighted share of the code among those asked"
    )
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error")
    ci_lower: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="lower bound of the confidence interval"
    )
    ci_upper: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="upper bound of the confidence interval"
    )
    df: Series[float] = pa.Field(nullable=True, ge=0, description="design degrees of freedom of the domain")
    n_base: Series[int] = pa.Field(ge=0, description="unweighted base (asked, with a code)")
    sum_weights_base: Series[float] = pa.Field(ge=0, description="weighted base")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    class Config:
        name = "estimate_distributions"
        strict = True
        ordered = True
        unique = ["variable", "wave", "breakdown", "breakdown_code", "code"]


# ---------------------------------------------------------------------------
# estimate: the spec's analyses (outputs/estimate/analyses/, report section Verdieping)


def _analysis_id() -> Any:
    return pa.Field(str_length={"min_value": 1}, description="spec analysis id")


def _title() -> Any:
    return pa.Field(str_length={"min_value": 1}, description="title of the analysis from the spec (Dutch)")


def _base_text() -> Any:
    return pa.Field(str_length={"min_value": 1}, description="the base in words, from the spec (Dutch)")


def _cell_published(frame: pd.DataFrame, *, numbers: list[str]) -> pd.Series:
    """A suppressed row has no numbers and a reason; a published one has its estimate and no reason."""
    suppressed = frame["suppressed"].astype(bool)
    has_reason = frame["suppression_reason"].astype("str").str.len() > 0
    no_numbers = frame[numbers].isna().all(axis=1)
    return (suppressed & no_numbers & has_reason) | (~suppressed & frame[numbers[0]].notna() & ~has_reason)


def _published_or_not(*numbers: str) -> Any:
    """The dataframe check `published_or_not` of an analysis table: `_cell_published` over its `numbers`
    (the first is the estimate a published row always has), named with them in messages."""
    columns = list(numbers)

    def published_or_not(cls: Any, frame: pd.DataFrame) -> pd.Series:
        return _cell_published(frame, numbers=columns)

    return pa.dataframe_check(error=_named(_cell_published, numbers=columns))(published_or_not)  # as a classmethod


class AnalysisMeans(pa.DataFrameModel):
    """kind mean: the weighted mean of a numeric or scale item per wave and breakdown level."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    variable: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec question")
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    base_text: Series[str] = _base_text()
    breakdown: Series[str] = _breakdown()
    breakdown_code: Series[float] = _breakdown_code()
    breakdown_label: Series[str] = _breakdown_label()
    estimate: Series[float] = pa.Field(nullable=True, description="weighted mean of the valid answers")
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error, calibration-aware linearisation")
    ci_lower: Series[float] = pa.Field(nullable=True, description="estimate - t(df) se")
    ci_upper: Series[float] = pa.Field(nullable=True, description="estimate + t(df) se")
    df: Series[float] = pa.Field(nullable=True, ge=0, description="design degrees of freedom of the domain")
    level: Series[float] = pa.Field(in_range={**SHARE, "include_min": False, "include_max": False})
    n: Series[int] = pa.Field(ge=0, description="unweighted base (valid answers)")
    sum_weights: Series[float] = pa.Field(ge=0, description="weighted base")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    published_or_not = _published_or_not("estimate", "se", "ci_lower", "ci_upper")

    class Config:
        name = "analysis_means"
        strict = True
        ordered = True
        unique = ["analysis_id", "wave", "breakdown", "breakdown_code"]


class AnalysisCrosstabs(pa.DataFrameModel):
    """kind crosstab: per level of `against` (column) the share of each answer of `variable` (row)."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    base_text: Series[str] = _base_text()
    row_variable: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec question of the rows")
    row_code: Series[float] = pa.Field(description="answer code")
    row_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the answer code")
    column_variable: Series[str] = pa.Field(str_length={"min_value": 1}, description="variable of the columns")
    column_code: Series[float] = pa.Field(description="code of the column level")
    column_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the column level")
    estimate: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="share of the row answer")
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error")
    ci_lower: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="lower bound of the interval")
    ci_upper: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="upper bound of the interval")
    n: Series[int] = pa.Field(ge=0, description="unweighted base of the column")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    published_or_not = _published_or_not("estimate", "se", "ci_lower", "ci_upper")

    class Config:
        name = "analysis_crosstabs"
        strict = True
        ordered = True
        unique = ["analysis_id", "wave", "row_code", "column_code"]


class AnalysisCrosstabTests(pa.DataFrameModel):
    """kind crosstab: the second-order Rao-Scott F test of independence (R svychisq, statistic = "F")."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    statistic: Series[float] = pa.Field(nullable=True, ge=0, description="Rao-Scott F")
    ndf: Series[float] = pa.Field(nullable=True, gt=0, description="numerator degrees of freedom")
    ddf: Series[float] = pa.Field(nullable=True, gt=0, description="denominator degrees of freedom")
    p_value: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="p-value of F(ndf, ddf)")
    pearson: Series[float] = pa.Field(nullable=True, ge=0, description="Pearson X^2 of the weighted table")
    n: Series[int] = pa.Field(ge=0, description="respondents in the table")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    published_or_not = _published_or_not("statistic", "ndf", "ddf", "p_value", "pearson")

    class Config:
        name = "analysis_crosstab_tests"
        strict = True
        ordered = True
        unique = ["analysis_id", "wave"]


class AnalysisOddsRatios(pa.DataFrameModel):
    """kind logit: per model term the log-odds coefficient (R svyglm, quasibinomial) and its odds ratio;
    each predictor's reference level is a row of its own (odds ratio 1, no interval)."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    base_text: Series[str] = _base_text()
    term: Series[str] = pa.Field(str_length={"min_value": 1}, description="term as R names it, e.g. factor(sex)2")
    predictor: Series[str] = pa.Field(description="spec variable of the term, empty for the intercept")
    level_code: Series[float] = pa.Field(nullable=True, description="code of the level (NaN for the intercept)")
    level_label: Series[str] = pa.Field(description="label of the level, empty for the intercept")
    reference: Series[bool] = pa.Field(description="the predictor's reference level (odds ratio 1)")
    estimate: Series[float] = pa.Field(nullable=True, description="coefficient (log-odds)")
    se: Series[float] = pa.Field(nullable=True, ge=0, description="design-based (sandwich) standard error")
    odds_ratio: Series[float] = pa.Field(nullable=True, gt=0, description="exp(estimate)")
    or_lower: Series[float] = pa.Field(nullable=True, gt=0, description="exp(estimate - t(df) se)")
    or_upper: Series[float] = pa.Field(nullable=True, gt=0, description="exp(estimate + t(df) se)")
    df: Series[float] = pa.Field(nullable=True, description="residual degrees of freedom: degf + 1 - terms")
    p_value: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="two-sided t test of the term")
    n: Series[int] = pa.Field(ge=0, description="respondents at the level (the model's rows for the intercept)")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    class Config:
        name = "analysis_odds_ratios"
        strict = True
        ordered = True
        unique = ["analysis_id", "wave", "term"]


class AnalysisAreaVsRest(pa.DataFrameModel):
    """kind wijk_vs_rest: each area against the rest of the municipality, p-values adjusted over the areas."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    base_text: Series[str] = _base_text()
    statistic: Series[str] = pa.Field(isin=["share", "mean"], description="share of the success codes, or mean")
    area_code: Series[float] = pa.Field(description="code of the area (level of the spec's area_variable)")
    area_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the area")
    estimate_area: Series[float] = pa.Field(nullable=True, description="estimate in the area")
    estimate_rest: Series[float] = pa.Field(nullable=True, description="estimate in the rest of the municipality")
    difference: Series[float] = pa.Field(nullable=True, description="area minus rest")
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error of the difference")
    ci_lower: Series[float] = pa.Field(nullable=True, description="difference - t(df) se (unadjusted)")
    ci_upper: Series[float] = pa.Field(nullable=True, description="difference + t(df) se (unadjusted)")
    df: Series[float] = pa.Field(nullable=True, ge=0, description="design degrees of freedom")
    p_value: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="unadjusted two-sided p-value")
    p_adjusted: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="p-value adjusted over areas")
    adjust: Series[str] = pa.Field(isin=["holm", "BH"], description="adjustment method (Holm or Benjamini-Hochberg)")
    n_tests: Series[int] = pa.Field(ge=0, description="number of p-values adjusted together")
    n_area: Series[int] = pa.Field(ge=0, description="unweighted base in the area")
    n_rest: Series[int] = pa.Field(ge=0, description="unweighted base in the rest")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    published_or_not = _published_or_not("estimate_area", "difference", "se", "p_adjusted")

    class Config:
        name = "analysis_area_vs_rest"
        strict = True
        ordered = True
        unique = ["analysis_id", "wave", "area_code"]


class AnalysisTrends(pa.DataFrameModel):
    """kind trend: the least-squares slope per year of the wave estimates (stacked waves, respondent as cluster)."""

    analysis_id: Series[str] = _analysis_id()
    title: Series[str] = _title()
    base_text: Series[str] = _base_text()
    statistic: Series[str] = pa.Field(isin=["share", "mean"], description="share of the success codes, or mean")
    breakdown: Series[str] = _breakdown()
    breakdown_code: Series[float] = _breakdown_code()
    breakdown_label: Series[str] = _breakdown_label()
    wave_first: Series[int] = pa.Field(in_range=YEARS, description="first wave of the trend")
    wave_last: Series[int] = pa.Field(in_range=YEARS, description="last wave of the trend")
    n_waves: Series[int] = pa.Field(ge=3, description="waves in the trend")
    slope: Series[float] = pa.Field(nullable=True, description="change per year (share or mean)")
    se: Series[float] = pa.Field(nullable=True, ge=0, description="standard error of the slope")
    ci_lower: Series[float] = pa.Field(nullable=True, description="slope - t(df) se")
    ci_upper: Series[float] = pa.Field(nullable=True, description="slope + t(df) se")
    df: Series[float] = pa.Field(nullable=True, ge=0, description="design degrees of freedom")
    p_value: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="two-sided t test of no trend")
    n_min: Series[int] = pa.Field(ge=0, description="smallest unweighted base of a wave")
    suppressed: Series[bool] = pa.Field(description=SUPPRESSED)
    suppression_reason: Series[str] = pa.Field(description=SUPPRESSION_REASON)

    published_or_not = _published_or_not("slope", "se", "ci_lower", "ci_upper", "p_value")

    class Config:
        name = "analysis_trends"
        strict = True
        ordered = True
        unique = ["analysis_id", "breakdown", "breakdown_code"]


ANALYSES_FOLDER = "analyses"  # under outputs/estimate/
ANALYSIS_TABLES: dict[str, type[pa.DataFrameModel]] = {
    "means": AnalysisMeans,
    "crosstabs": AnalysisCrosstabs,
    "crosstab_tests": AnalysisCrosstabTests,
    "odds_ratios": AnalysisOddsRatios,
    "area_vs_rest": AnalysisAreaVsRest,
    "trends": AnalysisTrends,
}
"""The tables of `outputs/estimate/analyses/<name>.parquet` (every table is written, with no rows when the
spec declares no analysis of its kind)."""


class _IntervalColumns(TypedDict):
    """Keyword arguments of `interval_contains`."""

    value: str
    lower: str
    upper: str


class _NumberColumns(TypedDict):
    """Keyword arguments of `suppressed_rows_have_no_numbers`."""

    flag: str
    reason: str
    numbers: list[str]


class _BaseColumns(TypedDict):
    """Keyword arguments of `published_bases_positive`."""

    flag: str
    bases: list[str]


_INDICATOR_INTERVAL: _IntervalColumns = {"value": "estimate", "lower": "ci_lower", "upper": "ci_upper"}
_INDICATOR_NUMBERS: _NumberColumns = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"],
}
_INDICATOR_BASES: _BaseColumns = {"flag": "suppressed", "bases": ["n", "sum_weights"]}
_CHANGE_INTERVAL: _IntervalColumns = {"value": "difference", "lower": "ci_lower", "upper": "ci_upper"}
_CHANGE_NUMBERS: _NumberColumns = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate_from", "estimate_to", "difference", "se", "ci_lower", "ci_upper", "p_value"],
}
_DISTRIBUTION_NUMBERS: _NumberColumns = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate", "se", "ci_lower", "ci_upper"],
}
_DISTRIBUTION_BASES: _BaseColumns = {"flag": "suppressed", "bases": ["n_base", "sum_weights_base"]}


SAE_SOURCE_DIRECT, SAE_SOURCE_MODEL, SAE_SOURCE_NONE = "direct", "model", "none"
SAE_NORMALITY_ALPHA = 0.05  # below this Shapiro-Wilk p the model's residuals are flagged as not normal


class EstimateSae(pa.DataFrameModel):
    """Small-area (Fay-Herriot) estimates per indicator x wave x area (the levels of the spec's
    area_variable), with what the report publishes per area (small_area.py)."""

    indicator_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec indicator id")
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    area: Series[int] = pa.Field(description="code of the area (level of the spec's area_variable)")
    area_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the area from the spec")
    n: Series[int] = pa.Field(ge=0, description="unweighted base of the direct estimate")
    direct_estimate: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="direct estimate, unsuppressed (NaN without respondents)"
    )
    direct_se: Series[float] = pa.Field(nullable=True, ge=0, description="its calibration-aware SE, unsuppressed")
    direct_suppressed: Series[bool] = pa.Field(description="the direct estimate fails the publication rule")
    design_effect: Series[float] = pa.Field(
        nullable=True, ge=0, description="design effect from the generalised variance function"
    )
    model_estimate: Series[float] = pa.Field(
        nullable=True, description="Fay-Herriot estimate (arcsine, back-transformed, benchmarked)"
    )
    model_rmse: Series[float] = pa.Field(
        nullable=True, ge=0, description="root of its MSE (parametric bootstrap, benchmarking included)"
    )
    model_ci_lower: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="estimate - 1.96 rmse, clipped to [0, 1]"
    )
    model_ci_upper: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="estimate + 1.96 rmse, clipped to [0, 1]"
    )
    model_publishable: Series[bool] = pa.Field(
        description="the model-based interval meets the publication rule's width checks"
    )
    shrinkage: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="gamma = sigma2_u / (sigma2_u + psi): weight of the direct estimate"
    )
    standardized_residual: Series[float] = pa.Field(
        nullable=True, description="(direct - synthetic) / sqrt(sigma2_u + psi), arcsine scale"
    )
    benchmark_adjustment: Series[float] = pa.Field(
        nullable=True, description="benchmarked minus unbenchmarked model estimate"
    )
    method: Series[str] = pa.Field(isin=["REML", "ML", "FH"], description="variance estimator of the area effect")
    sigma2_u: Series[float] = pa.Field(nullable=True, ge=0, description="variance of the area effect (arcsine scale)")
    explained_variance: Series[float] = pa.Field(
        nullable=True, description="share of the between-area variance the covariates explain (NaN when none)"
    )
    normality_p: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="Shapiro-Wilk p-value of the standardised residuals"
    )
    model_used: Series[bool] = pa.Field(
        description="the model passed its checks and may fill areas without a publishable direct estimate"
    )
    warning: Series[str] = pa.Field(
        description="why the model is not used or what its diagnostics flag; empty when none"
    )
    published_source: Series[str] = pa.Field(
        isin=[SAE_SOURCE_DIRECT, SAE_SOURCE_MODEL, SAE_SOURCE_NONE],
        description="what the report shows: direct, model (modelschatting) or none",
    )
    published_estimate: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="the figure the report shows (NaN when none)"
    )
    published_ci_lower: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="its 95% interval, lower bound"
    )
    published_ci_upper: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="its 95% interval, upper bound"
    )

    class Config:
        name = "estimate_sae"
        strict = True
        ordered = True
        unique = ["indicator_id", "wave", "area"]


REGISTRATION_UNITS = ["count", "percentage"]  # = survey_pipeline.spec.RegistrationUnit (tested)


def registration_values_fit_their_unit(frame: pd.DataFrame) -> pd.Series:
    """A count is a whole number, a percentage lies in 0-100 (both are >= 0 by the column check)."""
    count = frame["unit"] == "count"
    whole = (frame["value"] % 1 == 0) & (frame["value"] <= 2**53)
    return (count & whole) | (~count & (frame["value"] <= 100))


class EstimateRegistrations(pa.DataFrameModel):
    """One row per registration figure (spec `registrations`) and year with a value in the registrations
    file: the value as registered (no interval: not a sample) and its target judgement (targets.py, on the value)."""

    indicator_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec registration id")
    label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label from the spec (Dutch)")
    kind: Series[str] = pa.Field(isin=["prestatie", "kengetal"], description="prestatie or kengetal")
    unit: Series[str] = pa.Field(isin=REGISTRATION_UNITS, description="count or percentage (0-100)")
    year: Series[int] = pa.Field(in_range=YEARS, description="the year the figure is about")
    value: Series[float] = pa.Field(ge=0, description="the registered figure: a count, or a percentage in 0-100")
    source: Series[str] = pa.Field(str_length={"min_value": 1}, description="source of the value (file column)")
    note: Series[str] = pa.Field(description="note printed as a footnote to the value, empty when none")
    target: Series[str] = pa.Field(description="target string of the year from the spec, empty when none")
    target_status: Series[str] = pa.Field(
        isin=["met", "not_met", "indistinguishable", "key_figure", "no_target"],
        description="judgement of the target on the value (targets.py)",
    )
    flags: Series[str] = pa.Field(description="target_not_evaluable:<reason> when a target could not be judged")

    @pa.dataframe_check(error="registration_values_fit_their_unit")
    @classmethod
    def registration_values_fit_their_unit(cls, frame: pd.DataFrame) -> pd.Series:
        return registration_values_fit_their_unit(frame)

    class Config:
        name = "estimate_registrations"
        strict = True
        ordered = True
        unique = ["indicator_id", "year"]


class ReportSmallArea(pa.DataFrameModel):
    """The published area figures (wijkcijfers): direct where publishable, else the model-based
    estimate (modelschatting), else nothing."""

    indicator_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="spec indicator id")
    label: Series[str] = pa.Field(str_length={"min_value": 1}, description="indicator label from the spec (Dutch)")
    wave: Series[int] = pa.Field(in_range=YEARS, description="wave (survey year)")
    area: Series[int] = pa.Field(description="code of the area (level of the spec's area_variable)")
    area_label: Series[str] = pa.Field(str_length={"min_value": 1}, description="label of the area from the spec")
    source: Series[str] = pa.Field(
        isin=["direct", "modelschatting", "niet gepubliceerd"],
        description="direct, modelschatting (Fay-Herriot) or niet gepubliceerd",
    )
    estimate: Series[float] = pa.Field(
        nullable=True, in_range=SHARE, description="published figure (NaN when niet gepubliceerd)"
    )
    ci_lower: Series[float] = pa.Field(
        nullable=True,
        in_range=SHARE,
        description="95% interval, lower bound (direct: the displayed CI; model: from the MSE)",
    )
    ci_upper: Series[float] = pa.Field(nullable=True, in_range=SHARE, description="95% interval, upper bound")

    class Config:
        name = "report_small_area"
        strict = True
        ordered = True
        unique = ["indicator_id", "wave", "area"]


_INDICATOR_INTERVAL = {"value": "estimate", "lower": "ci_lower", "upper": "ci_upper"}
_INDICATOR_NUMBERS = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff"],
}
_INDICATOR_BASES = {"flag": "suppressed", "bases": ["n", "sum_weights"]}
_CHANGE_INTERVAL = {"value": "difference", "lower": "ci_lower", "upper": "ci_upper"}
_CHANGE_NUMBERS = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate_from", "estimate_to", "difference", "se", "ci_lower", "ci_upper", "p_value"],
}
_DISTRIBUTION_NUMBERS = {
    "flag": "suppressed",
    "reason": "suppression_reason",
    "numbers": ["estimate", "se", "ci_lower", "ci_upper"],
}
_DISTRIBUTION_BASES = {"flag": "suppressed", "bases": ["n_base", "sum_weights_base"]}


class ReportIndicators(EstimateIndicators):
    """Published indicator table: one row per indicator x wave x breakdown level (shares in [0, 1])."""

    @pa.dataframe_check(error=_named(interval_contains, **_INDICATOR_INTERVAL))
    @classmethod
    def interval_contains_estimate(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_INDICATOR_INTERVAL)

    @pa.dataframe_check(error=_named(suppressed_rows_have_no_numbers, **_INDICATOR_NUMBERS))
    @classmethod
    def suppressed_rows_have_no_numbers(cls, frame: pd.DataFrame) -> pd.Series:
        return suppressed_rows_have_no_numbers(frame, **_INDICATOR_NUMBERS)

    @pa.dataframe_check(error=_named(published_bases_positive, **_INDICATOR_BASES))
    @classmethod
    def published_bases_positive(cls, frame: pd.DataFrame) -> pd.Series:
        return published_bases_positive(frame, **_INDICATOR_BASES)

    class Config:
        name = "report_indicators"


class ReportChanges(EstimateChanges):
    """Published changes between waves (stacked design, respondent as cluster)."""

    @pa.dataframe_check(error=_named(interval_contains, **_CHANGE_INTERVAL))
    @classmethod
    def interval_contains_difference(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_CHANGE_INTERVAL)

    @pa.dataframe_check(error=_named(suppressed_rows_have_no_numbers, **_CHANGE_NUMBERS))
    @classmethod
    def suppressed_rows_have_no_numbers(cls, frame: pd.DataFrame) -> pd.Series:
        return suppressed_rows_have_no_numbers(frame, **_CHANGE_NUMBERS)

    class Config:
        name = "report_changes"


class ReportDistributions(EstimateDistributions):
    """Published answer distributions per question, incl. weet niet / geen antwoord."""

    @pa.dataframe_check(error=_named(interval_contains, **_INDICATOR_INTERVAL))
    @classmethod
    def interval_contains_estimate(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_INDICATOR_INTERVAL)

    @pa.dataframe_check(error=_named(suppressed_rows_have_no_numbers, **_DISTRIBUTION_NUMBERS))
    @classmethod
    def suppressed_rows_have_no_numbers(cls, frame: pd.DataFrame) -> pd.Series:
        return suppressed_rows_have_no_numbers(frame, **_DISTRIBUTION_NUMBERS)

    @pa.dataframe_check(error=_named(published_bases_positive, **_DISTRIBUTION_BASES))
    @classmethod
    def published_bases_positive(cls, frame: pd.DataFrame) -> pd.Series:
        return published_bases_positive(frame, **_DISTRIBUTION_BASES)

    class Config:
        name = "report_distributions"


REPORT_TABLES: dict[str, type[pa.DataFrameModel]] = {
    "indicators": ReportIndicators,
    "changes": ReportChanges,
    "distributions": ReportDistributions,
}
ESTIMATE_TABLES: dict[str, type[pa.DataFrameModel]] = {
    "indicators": EstimateIndicators,
    "changes": EstimateChanges,
    "distributions": EstimateDistributions,
}


# The analysis tables as the report publishes them (outputs/report/analyses/): the estimate stage's rows
# and withholding unchanged, plus: a published interval contains its value.
_MEAN_INTERVAL = {"value": "estimate", "lower": "ci_lower", "upper": "ci_upper"}
_ODDS_INTERVAL = {"value": "odds_ratio", "lower": "or_lower", "upper": "or_upper"}
_DIFFERENCE_INTERVAL = {"value": "difference", "lower": "ci_lower", "upper": "ci_upper"}
_SLOPE_INTERVAL = {"value": "slope", "lower": "ci_lower", "upper": "ci_upper"}
_ODDS_NUMBERS = ["estimate", "se", "odds_ratio", "or_lower", "or_upper", "p_value"]


def odds_ratio_published_or_not(frame: pd.DataFrame) -> pd.Series:
    """A suppressed term has no numbers and a reason; a published non-reference term has all of them."""
    suppressed = frame["suppressed"].astype(bool)
    has_reason = frame["suppression_reason"].astype("str").str.len() > 0
    no_numbers = frame[_ODDS_NUMBERS].isna().all(axis=1)
    all_numbers = frame[_ODDS_NUMBERS].notna().all(axis=1) | frame["reference"].astype(bool)
    return (suppressed & no_numbers & has_reason) | (~suppressed & all_numbers & ~has_reason)


class ReportAnalysisMeans(AnalysisMeans):
    """Published means of the spec's analyses (as estimated; withheld rows without numbers)."""

    @pa.dataframe_check(error=_named(interval_contains, **_MEAN_INTERVAL))
    @classmethod
    def interval_contains_estimate(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_MEAN_INTERVAL)

    class Config:
        name = "report_analysis_means"


class ReportAnalysisCrosstabs(AnalysisCrosstabs):
    """Published crosstab cells: the share of each answer per column level."""

    @pa.dataframe_check(error=_named(interval_contains, **_MEAN_INTERVAL))
    @classmethod
    def interval_contains_estimate(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_MEAN_INTERVAL)

    class Config:
        name = "report_analysis_crosstabs"


class ReportAnalysisCrosstabTests(AnalysisCrosstabTests):
    """Published Rao-Scott F tests of the crosstabs."""

    class Config:
        name = "report_analysis_crosstab_tests"


class ReportAnalysisOddsRatios(AnalysisOddsRatios):
    """Published odds ratios of the logit analyses (reference levels: odds ratio 1, no interval)."""

    @pa.dataframe_check(error=_named(interval_contains, **_ODDS_INTERVAL) + " (reference levels have none)")
    @classmethod
    def interval_contains_odds_ratio(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["reference"].astype(bool) | interval_contains(frame, **_ODDS_INTERVAL)

    @pa.dataframe_check(error="odds_ratio_published_or_not")
    @classmethod
    def published_or_not(cls, frame: pd.DataFrame) -> pd.Series:
        return odds_ratio_published_or_not(frame)

    class Config:
        name = "report_analysis_odds_ratios"


class ReportAnalysisAreaVsRest(AnalysisAreaVsRest):
    """Published comparisons of each area with the rest of the municipality."""

    @pa.dataframe_check(error=_named(interval_contains, **_DIFFERENCE_INTERVAL))
    @classmethod
    def interval_contains_difference(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_DIFFERENCE_INTERVAL)

    class Config:
        name = "report_analysis_area_vs_rest"


class ReportAnalysisTrends(AnalysisTrends):
    """Published linear trends over the waves."""

    @pa.dataframe_check(error=_named(interval_contains, **_SLOPE_INTERVAL))
    @classmethod
    def interval_contains_slope(cls, frame: pd.DataFrame) -> pd.Series:
        return interval_contains(frame, **_SLOPE_INTERVAL)

    class Config:
        name = "report_analysis_trends"


REPORT_ANALYSIS_TABLES: dict[str, type[pa.DataFrameModel]] = {
    "means": ReportAnalysisMeans,
    "crosstabs": ReportAnalysisCrosstabs,
    "crosstab_tests": ReportAnalysisCrosstabTests,
    "odds_ratios": ReportAnalysisOddsRatios,
    "area_vs_rest": ReportAnalysisAreaVsRest,
    "trends": ReportAnalysisTrends,
}
"""`outputs/report/analyses/<name>.parquet` (and CSV): the keys of `ANALYSIS_TABLES`."""


# ---------------------------------------------------------------------------
# JSON outputs


class Record(BaseModel):
    """A JSON object with exactly the declared keys."""

    model_config = ConfigDict(extra="forbid")


WaveKey = Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
Share = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]


class SpecRecord(Record):
    """`<stage>/spec.json`: the spec version a stage's outputs were made under."""

    survey_id: str
    spec_fingerprint: str


class Software(Record):
    """The Python and package versions a stage ran with (`survey_pipeline.software.software_versions`)."""

    python: str
    packages: dict[str, Optional[str]]


class SettingsRecord(Record):
    """`<stage>/settings.json`: the params sections a stage's outputs were made with (as
    `survey_pipeline.settings` dumps them), the sha256 of their canonical JSON, and per stage (this one
    and those its inputs came from) the software it ran with (not part of the fingerprint)."""

    sections: dict[str, dict[str, Any]]
    fingerprint: str
    software: dict[str, Software]


class ReceiptCheck(Record):
    """Whether (and against which line of the provider's receipt) a raw file's row count was checked."""

    file: str
    checked: bool
    row: Optional[int] = None
    expected_respondents: Optional[Count] = None
    source: Optional[str] = None
    note: Optional[str] = None


class IngestedFile(Record):
    """What ingest learnt about one raw file."""

    path: str
    format: str
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    n_rows: Count
    wave: Optional[int]
    file_label: Optional[str]
    encoding: Optional[str]
    variable_labels: dict[str, Optional[str]]
    value_labels: dict[str, dict[str, str]]
    warnings: list[str]
    errors: list[str]
    receipt: Optional[ReceiptCheck]


class IngestFiles(RootModel[dict[str, IngestedFile]]):
    """`ingest/files.json`: one entry per raw file name."""


class QuarantineCounts(Record):
    """Rows in, valid and quarantined; they reconcile: rows_in = rows_valid + rows_quarantined."""

    rows_in: Count
    rows_valid: Count
    rows_quarantined: Count
    quarantined_share: Share

    @model_validator(mode="after")
    def _reconciles(self) -> QuarantineCounts:
        if self.rows_in != self.rows_valid + self.rows_quarantined:
            raise ValueError("rows_in is not rows_valid + rows_quarantined")
        return self


class ValidateMetrics(Record):
    """`validate/metrics.json` (DVC metrics): reconciliation per wave and in total, reasons per wave."""

    waves: dict[WaveKey, QuarantineCounts]
    total: QuarantineCounts
    reasons: dict[WaveKey, dict[str, Count]]


class GxExpectation(Record):
    """One expectation of the great-expectations checkpoint on the valid rows."""

    suite: str
    name: str
    rule: Optional[str]
    variable: Optional[str]
    expectation: str
    kwargs: dict[str, Any]
    row_condition: Optional[str]
    success: bool
    raised_exception: bool
    exception_message: Optional[str]
    element_count: Optional[Count]
    unexpected_count: Optional[Count]


class GxStatistics(Record):
    evaluated_expectations: Count
    successful_expectations: Count
    unsuccessful_expectations: Count
    raised_exceptions: Count


class GxResult(Record):
    """`validate/gx_result.json`: the checkpoint's outcome per expectation."""

    success: bool
    statistics: GxStatistics
    expectations: list[GxExpectation]


_PYTHON_TYPES = {"int64": int, "float64": float, "bool": bool, "str": str}
WeightDiagnosticsRecord: type[Record] = create_model(  # type: ignore[call-overload]
    "WeightDiagnosticsRecord",
    __base__=Record,
    __doc__="A row of the weight_diagnostics table as JSON, without wave and method.",
    **{
        name: (_PYTHON_TYPES[dtype], ...)
        for name, dtype in columns(WeightDiagnostics).items()
        if name not in ("wave", "method")
    },
)


class WeightWaveMetrics(WeightDiagnosticsRecord):  # type: ignore[misc, valid-type]
    """One wave of `weight/metrics.json`: its diagnostics and how well the margins were met."""

    excluded_missing_by_variable: dict[str, Count]
    margin_recovery_max_rel_diff: dict[str, float]
    max_rel_margin_deviation: float
    margin_tolerance: float


class WeightMetrics(Record):
    """`weight/metrics.json` (DVC metrics)."""

    waves: dict[WaveKey, WeightWaveMetrics]


class CheckOutcomeRecord(Record):
    """One expectation on the published tables."""

    table: str
    check: str
    success: bool
    failures: Count
    examples: list[str]


class ReportChecks(Record):
    """`report/checks.json`: what the published tables were checked against."""

    waves: list[int]
    rule: dict[str, Any]
    ci_method: str
    schemas: dict[str, str]
    gx_level: Literal["off", "checkpoint", "full"]
    expectations: list[CheckOutcomeRecord]


class StageManifest(Record):
    """`manifests/<stage>.json`: what went into one stage run and what came out (counts)."""

    command: str
    started_at: str
    finished_at: str
    git_commit: Optional[str]
    python: str
    packages: dict[str, Optional[str]]
    params: dict[str, Any]
    inputs: dict[str, str]
    stage: str
    counts: dict[str, Any]


class StageSummary(Record):
    command: str
    started_at: str
    finished_at: str
    git_commit: Optional[str]
    counts: dict[str, Any]


class RunManifest(Record):
    """`manifest.json`: the stage manifests present, combined (the newest stage's params, inputs, versions)."""

    stages: dict[str, StageSummary]
    row_counts: dict[str, dict[str, Any]]
    params: Optional[dict[str, Any]] = None
    inputs: Optional[dict[str, str]] = None
    packages: Optional[dict[str, Optional[str]]] = None
    python: Optional[str] = None
    git_commit: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
