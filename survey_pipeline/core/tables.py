"""Fast path for 0/1 variables when every row is its own PSU (no clusters).

The influence of a row on a domain mean is coef_k (y - p_k) w / W_k with w = b F[cell]
(b: weight before calibration, F: the calibration factor of the row's joint cell). For
a 0/1 y every sum the variance needs -- per stratum, per calibration cell, and the
projection on the raking margins -- follows from three sums per (domain, stratum,
cell, y): rows, sum of b, sum of b^2. Those take one pass of np.bincount each per
share over the design rows (no shares x rows arrays); the rest is arithmetic on small
arrays, so there is no loop over domains or rows. Worth it when a share's table is
smaller than the design's rows (`fits`), i.e. for many rows.
Results equal `variance.linearized_variance` on the per-row influence (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp

from survey_pipeline.core.estimation import Contrasts, DomainMeans
from survey_pipeline.core.variance import (
    Projection,
    SamplingStructure,
    StratumSums,
    combine_strata,
    projection_from_cell_sums,
    times_transpose,
)

# Largest (domains x strata x cells x 2) table of one share this path builds.
MAX_TABLE = 20_000_000
# Table slots evaluated at once; more shares go in chunks.
TABLE_CHUNK = 1 << 21
# Table slots of one-domain share tables kept for reuse by later calls on the same design.
KEEP_SLOTS = 1 << 20


@dataclass(frozen=True)
class RowCells:
    """Per-row (stratum, cell) key and weights of a design without clusters (constant)."""

    key2: np.ndarray
    block: int
    n_strata: int
    n_cells: int
    base: np.ndarray
    base_sq: np.ndarray
    factor: np.ndarray
    # Per design, filled as calls come: one-domain tables of shares (`kept_table`) and
    # each `by` column's level per (stratum, cell) slot (`slot_levels`).
    kept: dict = field(default_factory=dict, compare=False, repr=False)
    levels: dict = field(default_factory=dict, compare=False, repr=False)


def row_cells(structure: SamplingStructure, weights: np.ndarray, projection: Projection | None) -> RowCells:
    """Constant part of the table key: 2 * (stratum * cells + cell) + one block (domain -1)."""
    if projection is None:
        n_cells, cell, base, factor = 1, None, weights, np.ones(1)
    else:
        n_cells, cell, base, factor = projection.n_cells, projection.cell, projection.base, projection.factor
    key = structure.stratum * np.int64(n_cells)
    if cell is not None:
        key = key + cell
    block = 2 * structure.n_strata * n_cells
    return RowCells(
        key2=2 * key + block,
        block=block,
        n_strata=structure.n_strata,
        n_cells=n_cells,
        base=base,
        base_sq=base * base,
        factor=factor,
    )


def fits(cells: RowCells, domains_per_share: int, n_rows: int) -> bool:
    """Use the tables when a share's table is no larger than its rows: with many domains
    and cells most table slots are empty and the per-row path is faster."""
    return domains_per_share * cells.block <= min(MAX_TABLE, n_rows)


def shares_per_chunk(cells: RowCells, domains_per_share: int) -> int:
    """Shares whose tables together stay within TABLE_CHUNK slots (at least one)."""
    return max(1, TABLE_CHUNK // (domains_per_share * cells.block))


@dataclass(frozen=True)
class DomainTables:
    """Per (domain, stratum, cell, y), arrays of that shape: rows, rows with positive
    weight, and the sums of the base weight and of its square."""

    count: np.ndarray
    pos_count: np.ndarray
    b_sum: np.ndarray
    b_sq: np.ndarray


def domain_tables(
    cells: RowCells, domain: np.ndarray, y: np.ndarray, n_domains: int, positive: np.ndarray | None
) -> DomainTables:
    """The tables of one share from its per-row domain (0..n_domains-1; -1: none) and 0/1 `y`:
    one np.bincount pass per table over the design rows, nothing of size shares x rows."""
    key = domain * np.int64(cells.block)
    key += cells.key2
    key += y
    size = (n_domains + 1) * cells.block
    shape = (n_domains, cells.n_strata, cells.n_cells, 2)

    def table(keys: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(keys, weights=weights, minlength=size)[cells.block :].reshape(shape)

    count = table(key)
    return DomainTables(
        count=count,
        pos_count=count if positive is None else table(key[positive]),
        b_sum=table(key, cells.base),
        b_sq=table(key, cells.base_sq),
    )


def kept_table(cells: RowCells, key: tuple, compute) -> DomainTables:
    """A share's one-domain table (`compute()`), kept on `cells` under `key` while
    KEEP_SLOTS allows: later calls on the same design (other breakdowns) reuse it."""
    if key in cells.kept:
        return cells.kept[key]
    table = compute()
    if (len(cells.kept) + 1) * table.count.size <= KEEP_SLOTS:
        cells.kept[key] = table
    return table


def slot_levels(cells: RowCells, by: tuple[str, ...], level: np.ndarray) -> np.ndarray | None:
    """Level of `by` per (stratum, cell) slot (-1: missing or no rows) when all rows of
    each slot share one level, as for a calibration variable; else None."""
    if by not in cells.levels:
        slot = (cells.key2 - cells.block) // 2
        first = np.full(cells.block // 2, -1, dtype=np.int64)
        first[slot] = level
        cells.levels[by] = first if np.array_equal(first[slot], level) else None
    return cells.levels[by]


def split_by_level(table: DomainTables, levels: np.ndarray, n_levels: int) -> DomainTables:
    """A one-domain table as one domain per level: slot (s, c) goes to domain levels[s, c]
    (the sums a pass with the level in the key would give, without that pass)."""
    shape = table.count.shape[1:]
    member = (levels[None, :] == np.arange(n_levels)[:, None]).reshape(n_levels, *shape[:2], 1)
    return DomainTables(**{f.name: np.where(member, getattr(table, f.name), 0) for f in fields(DomainTables)})


def stack_tables(parts: Sequence[DomainTables]) -> DomainTables:
    """Tables of consecutive shares as one (domains in share order)."""
    if len(parts) == 1:
        return parts[0]
    return DomainTables(**{f.name: np.concatenate([getattr(t, f.name) for t in parts]) for f in fields(DomainTables)})


@dataclass(frozen=True)
class BinaryDomainResult:
    """Domain means, per-output variance and per-output degrees of freedom."""

    means: DomainMeans
    variance: np.ndarray
    df: np.ndarray


def concatenate(parts: Sequence[BinaryDomainResult]) -> BinaryDomainResult:
    """Results of consecutive batches (disjoint domains and outputs) as one."""
    if len(parts) == 1:
        return parts[0]
    means = DomainMeans(
        **{f.name: np.concatenate([getattr(part.means, f.name) for part in parts]) for f in fields(DomainMeans)}
    )
    return BinaryDomainResult(
        means=means,
        variance=np.concatenate([part.variance for part in parts]),
        df=np.concatenate([part.df for part in parts]),
    )


def binary_domain_contrasts(
    tables: DomainTables,
    contrasts: Contrasts,
    cells: RowCells,
    structure: SamplingStructure,
    projection: Projection | None,
) -> BinaryDomainResult:
    """Variance of sum_k coefficient_k p_k per output (domains grouped by `contrasts.output`)."""
    k, s, c = tables.count.shape[:3]
    n_out = contrasts.n_out
    count, pos_count, b_sum, b_sq = tables.count, tables.pos_count, tables.b_sum, tables.b_sq

    f = cells.factor[None, None, :, None]
    w_sum = (f * b_sum).sum(axis=(1, 2))
    sum_weights = w_sum.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = w_sum[:, 1] / sum_weights
        scale = np.where(sum_weights > 0, contrasts.coefficient / sum_weights, 0.0)
    p_safe = np.nan_to_num(p)
    r = scale[:, None] * (np.array([0.0, 1.0])[None, :] - p_safe[:, None])
    r4 = r[:, None, None, :]

    to_out = sp.csr_matrix((np.ones(k), (contrasts.output, np.arange(k))), shape=(n_out, k))

    def per_output(x: np.ndarray) -> np.ndarray:
        return (to_out @ x.reshape(k, -1)).reshape(n_out, s, c)

    sum_a = per_output((r4 * f * b_sum).sum(axis=3))
    sum_a2 = per_output((r4 * r4 * f * f * b_sq).sum(axis=3))
    total = sum_a.sum(axis=2)
    sumsq = sum_a2.sum(axis=2)
    n_domain_psu = None
    if projection is None:
        n_domain_psu = per_output(count.sum(axis=3).astype(np.float64)).sum(axis=2)
    else:
        if projection.kind == "poststratify":
            cell_sums = sum_a.sum(axis=1)
        else:
            cell_sums = per_output((r4 * f * count).sum(axis=3)).sum(axis=1)
        h = projection_from_cell_sums(cell_sums, projection)
        sum_ab = per_output((r4 * f * b_sq).sum(axis=3))
        total = total - times_transpose(h, projection.stratum_base)
        cross = (sum_ab * h[:, None, :]).sum(axis=2)
        sumsq = sumsq - 2 * cross + times_transpose(h * h, projection.stratum_base_sq)
    variance = combine_strata(StratumSums(total=total, sumsq=sumsq, n_domain_psu=n_domain_psu), structure)

    positive_per_stratum = per_output(pos_count.sum(axis=3).astype(np.float64)).sum(axis=2)
    df = positive_per_stratum.sum(axis=1) - (positive_per_stratum > 0).sum(axis=1)
    n = count.sum(axis=(1, 2, 3))
    means = DomainMeans(estimate=p, sum_weights=sum_weights, n=n, n_positive=pos_count.sum(axis=(1, 2, 3)))
    return BinaryDomainResult(means=means, variance=variance, df=df.astype(np.float64))
