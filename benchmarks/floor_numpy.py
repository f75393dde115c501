"""The standard job of bench_estimation.py in plain numpy: the floor the library is measured against.

Rake to the margins (iterative proportional fitting of the joint cell table), then for
each item the share of code 1 among valid answers (not missing, not 99), overall and
per wijk, with the calibration-aware linearisation SE (R's raking projection: 10
sweeps over the margins, replayed on per-(domain, cell) sums) and the logit interval.
Written for this job only: one stratum, every row its own PSU, positive weights, every
margin code present in the data, wijk one of the margins. Per item, three np.bincount
passes over the rows (count, base weight, squared base weight per cell and 0/1
answer); everything else is arithmetic on (domains x cells) arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

PROJECTION_SWEEPS = 10


def codes_of(values: np.ndarray, keys: Sequence) -> np.ndarray:
    """Position of each value in the sorted margin keys."""
    keys = np.sort(np.asarray(list(keys), dtype=np.float64))
    return np.searchsorted(keys, values)


def rake(
    cell_base: np.ndarray, cell_codes: list[np.ndarray], totals: list[np.ndarray], max_iter: int, epsilon: float
) -> list[np.ndarray]:
    """Calibration factor per cell after each margin of the last sweep (the last one is final)."""
    factor = np.ones_like(cell_base)
    stage = [factor] * len(totals)
    old = cell_base
    for _ in range(max_iter):
        for m, (codes, total) in enumerate(zip(cell_codes, totals)):
            sample = np.bincount(codes, weights=cell_base * factor, minlength=total.size)
            factor = factor * np.divide(total, sample, out=np.ones(total.size), where=sample > 0)[codes]
            stage[m] = factor
        new = cell_base * factor
        if np.max(np.abs(new - old)) < epsilon:
            break
        old = new
    return stage


def project(
    cell_sums: np.ndarray, stage: list[np.ndarray], indicators: list[np.ndarray], rows_per_cell: np.ndarray
) -> np.ndarray:
    """H (domains x cells) of R's raking projection of influence / base weight summed per cell."""
    h = np.zeros_like(cell_sums)
    rows_per_category = [np.maximum(rows_per_cell @ e, 1.0) for e in indicators]
    for _ in range(PROJECTION_SWEEPS):
        for factor, e, rows in zip(stage, indicators, rows_per_category):
            mean = np.einsum("dc,ck->dk", (cell_sums - rows_per_cell * h) / factor, e) / rows
            h = h + factor * np.einsum("dk,ck->dc", mean, e)
    return h


def standard_job(
    df: pd.DataFrame,
    margins: Mapping[str, Mapping],
    items: Sequence[str],
    by: str = "wijk",
    base_weight: str = "w0",
    max_iter: int = 100,
    tol: float = 1e-10,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Estimates, SEs, df and logit bounds, (items x domains): domain 0 overall, then each `by` code."""
    names = list(margins)
    sizes = [len(margins[v]) for v in names]
    codes = [codes_of(df[v].to_numpy(dtype=np.float64), margins[v]) for v in names]
    cell = np.ravel_multi_index(codes, sizes)
    n_cells = int(np.prod(sizes))
    cell_codes = list(np.unravel_index(np.arange(n_cells), sizes))
    totals = [np.array([margins[v][k] for k in sorted(margins[v])], dtype=np.float64) for v in names]
    b = df[base_weight].to_numpy(dtype=np.float64)
    b_sq = b * b
    cell_base = np.bincount(cell, weights=b, minlength=n_cells)
    cell_base_sq = np.bincount(cell, weights=b_sq, minlength=n_cells)
    rows_per_cell = np.bincount(cell, minlength=n_cells).astype(np.float64)
    stage = rake(cell_base, cell_codes, totals, max_iter, tol * b.sum())
    factor = stage[-1]
    indicators = [np.eye(k)[c] for c, k in zip(cell_codes, sizes)]
    by_levels = indicators[names.index(by)].T  # (levels x cells)
    member = np.vstack([np.ones(n_cells), by_levels])  # (domains x cells)
    n = len(df)
    out = {key: [] for key in ("estimate", "se", "df", "ci_lower", "ci_upper")}
    for item in items:
        values = df[item].to_numpy()
        valid = ~np.isnan(values) & (values != 99)
        key = np.where(valid, 2 * cell + (values == 1), 2 * n_cells)
        count = np.bincount(key, minlength=2 * n_cells + 1)[:-1].reshape(n_cells, 2)
        b1 = np.bincount(key, weights=b, minlength=2 * n_cells + 1)[:-1].reshape(n_cells, 2)
        b2 = np.bincount(key, weights=b_sq, minlength=2 * n_cells + 1)[:-1].reshape(n_cells, 2)
        w_sum = np.einsum("dc,c,cy->dy", member, factor, b1)
        total_w = w_sum.sum(axis=1)
        p = w_sum[:, 1] / total_w
        r = (np.array([0.0, 1.0])[None, :] - p[:, None]) / total_w[:, None]  # influence / (F b), by y
        rf = r[:, None, :] * factor[None, :, None]  # (domains x cells x y)
        cell_sums = member * np.einsum("dcy,cy->dc", rf, count)
        h = project(cell_sums, stage, indicators, rows_per_cell)
        total = member * np.einsum("dcy,cy->dc", rf, b1)
        sumsq = member * (np.einsum("dcy,cy->dc", rf * rf, b2) - 2 * h * np.einsum("dcy,cy->dc", rf, b2))
        total_x = total.sum(axis=1) - h @ cell_base
        sumsq_x = sumsq.sum(axis=1) + (h * h) @ cell_base_sq
        variance = n / (n - 1) * (sumsq_x - total_x**2 / n)
        se = np.sqrt(variance)
        rows = member @ count.sum(axis=1)
        df_domain = rows - 1
        half = special.stdtrit(df_domain, 0.5 + level / 2) * se / (p * (1 - p))
        out["estimate"].append(p)
        out["se"].append(se)
        out["df"].append(df_domain)
        out["ci_lower"].append(special.expit(special.logit(p) - half))
        out["ci_upper"].append(special.expit(special.logit(p) + half))
    return {key: np.array(values) for key, values in out.items()}
