"""Reliability and disclosure: which estimated proportions are published.

The default rule is the NCHS Data Presentation Standards for Proportions
(Parker et al. 2017, Vital Health Stat 2(175)) plus a minimum unweighted base,
all thresholds in `params.yaml` under `estimate.suppression`:

Suppress (the value is never published as a number; the report prints "-") when
  1. the unweighted base n < `min_n` (default 30)                   -> "min_n";
  2. the effective sample size n_eff < `min_n_eff` (30)             -> "min_n_eff",
     with n_eff = p(1-p)/se^2 capped at n (a design effect below 1 is
     taken as 1) and n_eff = n at p = 0 or 1, as NCHS defines it;
  3. the publication interval's width >= `max_ci_width` (0.30)      -> "max_ci_width";
  4. the width > `relative_width_from` (0.05) and the relative width
     (width / p) > `max_relative_ci_width` (1.30)                   -> "max_relative_ci_width";
  5. there is no estimate or no interval (empty domain, df < 1)     -> "no_estimate" / "no_interval".
Flag (published, marked for review) when the design degrees of freedom are
below `flag_df_below` (8)                                            -> "low_df".

The publication interval is the standard's own, whatever interval the report
displays: the 95% Korn-Graubard interval on the capped n_eff, adjusted for the
degrees of freedom with the domain's own sample size,
n_eff,df = n_eff * (t(0.975; n - 1) / t(0.975; df))^2 (no adjustment when either
df is below 1). So `estimate.level` and `estimate.ci_method` change what is
displayed, never what is published. (R's `svyciprop(method="beta")` uses the
uncapped n_eff and, on a calibrated design, the whole wave's row count in the
adjustment, which gives a narrower interval than the standard's.)
Reasons and flags are joined with ";" in rule order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey_pipeline.core.intervals import korn_graubard_interval
from survey_pipeline.settings import SuppressionRule

SUPPRESSED_COLUMNS = ("estimate", "se", "ci_lower", "ci_upper", "deff", "n_eff")
PUBLICATION_LEVEL = 0.95
"""Confidence level of the publication interval (NCHS), independent of the displayed level."""


@dataclass(frozen=True)
class Assessment:
    """Per estimate: suppressed?, the reasons and the flags ("" when none)."""

    suppressed: np.ndarray
    reason: np.ndarray
    flags: np.ndarray


def _join(parts: list[tuple[str, np.ndarray]], size: int) -> np.ndarray:
    out = np.full(size, "", dtype=object)
    for code, mask in parts:
        out = np.where(mask, np.where(out == "", code, out + ";" + code), out)
    return out


def effective_sample_size(p, se, n) -> np.ndarray:
    """NCHS n_eff: p(1-p)/se^2 capped at n; n where p is 0 or 1 or se is 0; NaN where
    the variance is not estimable."""
    p, se, n = (np.asarray(v, dtype=np.float64) for v in (p, se, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = p * (1 - p) / se**2
    degenerate = (p == 0) | (p == 1) | (se == 0)
    return np.where(degenerate, n, np.minimum(raw, n))


def publication_interval(p, se, n, df) -> tuple[np.ndarray, np.ndarray]:
    """The NCHS 95% Korn-Graubard interval: capped n_eff, df adjustment on the domain's n.

    NaN where there is no estimate, or where 0 < p < 1 and the design has no degrees
    of freedom (no variance information to judge).
    """
    p, se, n, df = (np.asarray(v, dtype=np.float64) for v in (p, se, n, df))
    n_eff = effective_sample_size(p, se, n)
    lower, upper = korn_graubard_interval(p, n_eff, df, n, PUBLICATION_LEVEL)
    inner = (p > 0) & (p < 1)
    unusable = ~np.isfinite(p) | (n <= 0) | (inner & ~(df >= 1))
    return np.where(unusable, np.nan, lower), np.where(unusable, np.nan, upper)


def assess(rule: SuppressionRule, estimate, se, n, df) -> Assessment:
    """Apply the rule to arrays of proportions (with their SE, unweighted base and design df)."""
    p, se, n, df = (np.asarray(v, dtype=np.float64) for v in (estimate, se, n, df))
    lower, upper = publication_interval(p, se, n, df)
    size = p.shape[0]
    no_estimate = ~np.isfinite(p) | (n <= 0)
    no_interval = ~no_estimate & ~(np.isfinite(lower) & np.isfinite(upper))
    n_eff = effective_sample_size(p, se, n)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(p > 0, width / p, np.inf)
    valid = ~no_estimate
    checked = valid & ~no_interval
    too_wide_relative = checked & (width > rule.relative_width_from) & (relative > rule.max_relative_ci_width)
    reasons = [
        ("no_estimate", no_estimate),
        ("min_n", valid & (n < rule.min_n)),
        ("min_n_eff", valid & (n_eff < rule.min_n_eff)),
        ("no_interval", no_interval),
        ("max_ci_width", checked & (width >= rule.max_ci_width)),
        ("max_relative_ci_width", too_wide_relative),
    ]
    suppressed = np.zeros(size, dtype=bool)
    for _, mask in reasons:
        suppressed |= mask
    flags = [("low_df", valid & (df < rule.flag_df_below))]
    return Assessment(suppressed, _join(reasons, size), _join(flags, size))


def apply_suppression(frame: pd.DataFrame, assessment: Assessment, columns=SUPPRESSED_COLUMNS) -> pd.DataFrame:
    """`frame` with suppressed/suppression_reason/flags added and suppressed numbers set to NaN."""
    out = frame.copy()
    for column in columns:
        if column in out:
            out[column] = out[column].astype("float64").where(~assessment.suppressed)
    out["suppressed"] = assessment.suppressed
    out["suppression_reason"] = pd.array(assessment.reason.astype(str), dtype="str")
    out["flags"] = pd.array(assessment.flags.astype(str), dtype="str")
    return out
