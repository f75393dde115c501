"""Confidence intervals for design-based proportions (vectorised over domains).

Methods, with `df` the design degrees of freedom (R's degf of the domain):

- ``logit``: R `svyciprop(method = "xlogit")`: logit(p) +/- t(df) * se / (p (1 - p)),
  back-transformed.
- ``beta``: R `svyciprop(method = "beta")` (Korn-Graubard): Clopper-Pearson form on
  n_eff = p (1 - p) / se^2, multiplied by (t(n_rows - 1) / t(df))^2 with t the
  alpha/2 quantiles and n_rows R's `nrow()` of the domain design.
- ``wald``: R `svyciprop(method = "mean")`: p +/- t(df) * se, truncated to [0, 1].
- ``wilson``: Wilson score interval on n_eff with the t(df) quantile as z (no R
  equivalent; with df = Inf it is statsmodels' wilson on n_eff).

Edge cases (R gives no interval for them); every such row gets a `note`:

- empty domain (n = 0): everything NaN, note "empty domain".
- p = 0 or p = 1: the design variance is 0 so n_eff = p(1-p)/se^2 is 0/0. Every method
  then gives the Korn-Graubard interval with n_eff = n (the unweighted base), with R's
  df adjustment when both degrees of freedom are at least 1: [0, upper] at p = 0 and
  [lower, 1] at p = 1. A one-row domain is this case. `ci_method` says "beta".
- df < 1 otherwise (e.g. a domain inside a single PSU): no t quantile exists and the
  design carries no variance information; bounds are NaN.
- se = 0 with 0 < p < 1 and df >= 1 (degenerate designs only): the interval is [p, p].
- se not finite (lonely_psu = "average" when every stratum of the domain has a single
  PSU; R gives NaN too): bounds are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

CI_METHODS = ("logit", "beta", "wilson", "wald")


def t_ppf(q: float, df: np.ndarray | float) -> np.ndarray:
    """scipy.stats.t.ppf(q, df), value for value, from scipy.special (the core does not
    import scipy.stats: it costs about a second per process)."""
    df = np.asarray(df, dtype=np.float64)
    if not 0 < q < 1:
        return np.where(df > 0, {0.0: -np.inf, 1.0: np.inf}.get(q, np.nan), np.nan)
    values, inverse = np.unique(df, return_inverse=True)  # domains share few df values
    with np.errstate(invalid="ignore"):
        quantile = np.where(values > 0, special.stdtrit(values, q), np.nan)
    return quantile[inverse].reshape(df.shape)


def t_sf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """scipy.stats.t.sf(x, df), value for value."""
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, special.stdtr(df, -np.asarray(x, dtype=np.float64)), np.nan)


def beta_ppf(q: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """scipy.stats.beta.ppf(q, a, b), value for value."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where((a > 0) & (b > 0), special.betaincinv(a, b, q), np.nan)


def t_quantile(level: float, df: np.ndarray | float) -> np.ndarray:
    """Upper (1 + level) / 2 quantile of t(df); df = inf gives the normal quantile."""
    return t_ppf(0.5 + level / 2, df)


def logit_interval(p, se, df, level):
    """R svyciprop(method="xlogit")."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = t_quantile(level, df) * np.asarray(se) / (p * (1 - p))
        centre = special.logit(p)
    return special.expit(centre - half), special.expit(centre + half)


def wald_interval(p, se, df, level):
    """R svyciprop(method="mean"): p +/- t(df) se (not truncated here)."""
    half = t_quantile(level, df) * np.asarray(se)
    return np.asarray(p) - half, np.asarray(p) + half


def korn_graubard_interval(p, n_eff, df, n_rows, level):
    """R svyciprop(method="beta") given n_eff = p(1-p)/se^2 (before the df adjustment).

    The df adjustment (t_{n_rows-1} / t_df)^2 at alpha/2 is skipped where either
    degrees of freedom is below 1.
    """
    p = np.asarray(p, dtype=np.float64)
    n_eff = np.asarray(n_eff, dtype=np.float64)
    alpha = 1 - level
    df = np.asarray(df, dtype=np.float64)
    df_rows = np.asarray(n_rows, dtype=np.float64) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        adjust = (t_ppf(alpha / 2, df_rows) / t_ppf(alpha / 2, df)) ** 2
    adjust = np.where((df >= 1) & (df_rows >= 1), adjust, 1.0)
    m = n_eff * adjust
    with np.errstate(invalid="ignore"):
        lower = beta_ppf(alpha / 2, m * p, m * (1 - p) + 1)
        upper = beta_ppf(1 - alpha / 2, m * p + 1, m * (1 - p))
    lower = np.where(p == 0, 0.0, lower)
    upper = np.where(p == 1, 1.0, upper)
    return lower, upper


def wilson_interval(p, n_eff, df, level):
    """Wilson score interval on the effective sample size, z = t(df) quantile."""
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n_eff, dtype=np.float64)
    z = t_quantile(level, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return centre - half, centre + half


@dataclass(frozen=True)
class Intervals:
    """Bounds plus, per row, the method actually used and a note on edge cases."""

    lower: np.ndarray
    upper: np.ndarray
    method: np.ndarray
    note: np.ndarray


def append_note(note: np.ndarray, mask: np.ndarray, text: str) -> np.ndarray:
    """Add `text` to the notes where `mask` holds (notes are joined with '; ')."""
    add = np.where(note == "", text, note + "; " + text)
    return np.where(mask, add, note)


def proportion_intervals(
    method: str,
    p: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    n: np.ndarray,
    n_rows: np.ndarray,
    level: float,
) -> Intervals:
    """Intervals for proportions with the edge-case rules in the module docstring."""
    if method not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {method!r}")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    p, se, df, n, n_rows = (np.asarray(v, dtype=np.float64) for v in (p, se, df, n, n_rows))
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1 - p) / se**2
    if method == "logit":
        lower, upper = logit_interval(p, se, df, level)
    elif method == "beta":
        lower, upper = korn_graubard_interval(p, n_eff, df, n_rows, level)
    elif method == "wilson":
        lower, upper = wilson_interval(p, n_eff, df, level)
    else:
        lower, upper = wald_interval(p, se, df, level)
    used = np.full(p.shape, method, dtype=object)
    note = np.full(p.shape, "", dtype=object)

    empty = n == 0
    boundary = ~empty & ((p == 0) | (p == 1))
    no_df = ~empty & ~boundary & ~(df >= 1)
    no_variance = ~empty & ~boundary & ~np.isfinite(se)
    zero_se = ~empty & ~boundary & ~no_df & (se == 0)
    if method == "wald":
        outside = ~empty & ((lower < 0) | (upper > 1))
        lower, upper = np.clip(lower, 0, 1), np.clip(upper, 0, 1)
        note = append_note(note, outside & ~boundary, "wald interval truncated to [0, 1]")
    if np.any(boundary):
        b = boundary
        lower, upper = lower.copy(), upper.copy()
        lower[b], upper[b] = korn_graubard_interval(p[b], n[b], df[b], n_rows[b], level)
        used = np.where(boundary, "beta", used)
        note = append_note(note, boundary, "estimate is 0 or 1: Korn-Graubard interval with n_eff = n")
    lower = np.where(zero_se, p, lower)
    upper = np.where(zero_se, p, upper)
    note = append_note(note, zero_se, "zero variance: interval [p, p]")
    lower = np.where(no_df | no_variance | empty, np.nan, lower)
    upper = np.where(no_df | no_variance | empty, np.nan, upper)
    note = append_note(note, no_df, "df < 1: no interval")
    note = append_note(note, no_variance, "variance not estimable: no stratum of the domain has two PSUs")
    note = append_note(note, empty, "empty domain")
    return Intervals(lower=lower, upper=upper, method=used, note=note)
