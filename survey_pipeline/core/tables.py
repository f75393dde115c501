"""Fast path for 0/1 variables when every row is its own PSU, or every PSU has at most two rows.

The influence of a row on a domain mean is coef_k (y - p_k) w / W_k with w = b F[cell]
(b: weight before calibration, F: the calibration factor of the row's joint cell). For
a 0/1 y every sum the variance needs -- per stratum, per calibration cell, and the
projection on the raking margins -- follows from three sums per (domain, stratum,
cell, y): rows, sum of b, sum of b^2. Those take one pass of np.bincount each per
share over the design rows (no shares x rows arrays); the rest is arithmetic on small
arrays, so there is no loop over domains or rows. Worth it when a share's table is
smaller than the design's rows (`fits`), i.e. for many rows.

Clusters of at most two rows (a panel's two stacked waves, respondent as cluster): a
PSU's total is the sum of its rows' projected influence, so its square adds, to the
rows' squares, twice the product of the two rows' values. Where a row's domain follows
from its (stratum, cell) slot (breakdown and wave are calibration variables), that
value is a function of the row's slot, its state (outside the base, y = 0, y = 1) and
its base weight: the products come from per-share sums of b_i b_k over the pairs by
(pair slot, state of each row), one bincount over the pairs.
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
# Largest (shares x outputs x row states x pair slots) block of PSU-pair values evaluated at once.
PAIR_BLOCK = 1 << 21


@dataclass(frozen=True)
class PsuPairs:
    """The two rows of each PSU that has two (a design whose PSUs have at most two rows), with
    their pair slot: `slot[pair]` indexes `slot_first`/`slot_second` (each row's (stratum,
    cell) slot, stratum * cells + cell) and `slot_stratum`. `base_product`: b_first b_second;
    `positive`: pairs whose weights are both positive (None: all)."""

    first: np.ndarray
    second: np.ndarray
    slot: np.ndarray
    slot_first: np.ndarray
    slot_second: np.ndarray
    slot_stratum: np.ndarray
    base_product: np.ndarray
    positive: np.ndarray | None


def psu_pairs(
    psu: np.ndarray, slot: np.ndarray, n_cells: int, base: np.ndarray, positive: np.ndarray | None
) -> PsuPairs | None:
    """The pairs of rows sharing a PSU (`psu`: each row's), or None when a PSU has more than
    two rows. `slot`: each row's (stratum, cell) slot, stratum * `n_cells` + cell."""
    if psu.size and np.bincount(psu).max() > 2:
        return None
    order = np.argsort(psu, kind="stable")
    mate = np.flatnonzero(psu[order][1:] == psu[order][:-1])
    first, second = order[mate], order[mate + 1]
    n_slots = np.int64(slot.max()) + 1 if slot.size else np.int64(1)
    found, index = np.unique(slot[first] * n_slots + slot[second], return_inverse=True)
    slot_first, slot_second = np.divmod(found, n_slots)
    return PsuPairs(
        first=first,
        second=second,
        slot=index.astype(np.int64),
        slot_first=slot_first,
        slot_second=slot_second,
        slot_stratum=slot_first // n_cells,
        base_product=base[first] * base[second],
        positive=None if positive is None else positive[first] & positive[second],
    )


@dataclass(frozen=True)
class RowCells:
    """Per-row (stratum, cell) key and weights of a design without clusters, or whose PSUs
    have at most two rows (`pairs`) (constant)."""

    key2: np.ndarray
    block: int
    n_strata: int
    n_cells: int
    base: np.ndarray
    base_sq: np.ndarray
    factor: np.ndarray
    pairs: PsuPairs | None = None
    # Per design, filled as calls come: one-domain tables of shares (`kept_table`) and
    # each `by` column's level per (stratum, cell) slot (`slot_levels`).
    kept: dict = field(default_factory=dict, compare=False, repr=False)
    levels: dict = field(default_factory=dict, compare=False, repr=False)


def row_cells(
    structure: SamplingStructure, weights: np.ndarray, projection: Projection | None, positive: np.ndarray | None
) -> RowCells | None:
    """Constant part of the table key: 2 * (stratum * cells + cell) + one block (domain -1);
    None for a clustered design with a PSU of more than two rows."""
    if projection is None:
        n_cells, cell, base, factor = 1, None, weights, np.ones(1)
    else:
        n_cells, cell, base, factor = projection.n_cells, projection.cell, projection.base, projection.factor
    key = structure.stratum * np.int64(n_cells)
    if cell is not None:
        key = key + cell
    block = 2 * structure.n_strata * n_cells
    pairs = None
    if structure.psu is not None:
        pairs = psu_pairs(structure.psu, key, n_cells, base, positive)
        if pairs is None:
            return None
    return RowCells(
        key2=2 * key + block,
        block=block,
        n_strata=structure.n_strata,
        n_cells=n_cells,
        base=base,
        base_sq=base * base,
        factor=factor,
        pairs=pairs,
    )


def fits(cells: RowCells, domains_per_share: int, n_rows: int) -> bool:
    """Use the tables when a share's table is no larger than its rows: with many domains
    and cells most table slots are empty and the per-row path is faster."""
    return domains_per_share * cells.block <= min(MAX_TABLE, n_rows)


def shares_per_chunk(cells: RowCells, domains_per_share: int) -> int:
    """Shares whose tables together stay within TABLE_CHUNK slots (at least one)."""
    return max(1, TABLE_CHUNK // (domains_per_share * cells.block))


# A row's state in a share's pair tables: outside the share's base, inside with y = 0, with y = 1.
ROW_STATES = 3


@dataclass(frozen=True)
class PairTables:
    """Per share, (pair's first row state, second row state, pair slot) (`PsuPairs`), arrays
    of shape (shares, 3, 3, pair slots): pairs, pairs with both weights positive, and the
    sums of b_first b_second."""

    count: np.ndarray
    pos_count: np.ndarray
    b_product: np.ndarray


@dataclass(frozen=True)
class DomainTables:
    """Per (domain, stratum, cell, y), arrays of that shape: rows, rows with positive
    weight, and the sums of the base weight and of its square; for PSUs of two rows, the
    share's `PairTables` (domains then follow from the slots: `slot_domain_contrasts`)."""

    count: np.ndarray
    pos_count: np.ndarray
    b_sum: np.ndarray
    b_sq: np.ndarray
    pairs: PairTables | None = None


ROW_TABLES = ("count", "pos_count", "b_sum", "b_sq")


def pair_tables(pairs: PsuPairs, inside: np.ndarray, y: np.ndarray) -> PairTables:
    """The pair tables of one share: `inside` its base rows, `y` their 0/1 value."""
    state = np.where(inside, 1 + y.astype(np.int8), 0).astype(np.int64)
    n_slots = pairs.slot_first.size
    key = (state[pairs.first] * ROW_STATES + state[pairs.second]) * n_slots + pairs.slot
    size = ROW_STATES * ROW_STATES * n_slots
    shape = (1, ROW_STATES, ROW_STATES, n_slots)
    count = np.bincount(key, minlength=size).reshape(shape)
    return PairTables(
        count=count,
        pos_count=count if pairs.positive is None else np.bincount(key[pairs.positive], minlength=size).reshape(shape),
        b_product=np.bincount(key, weights=pairs.base_product, minlength=size).reshape(shape),
    )


def domain_tables(
    cells: RowCells, domain: np.ndarray, y: np.ndarray, n_domains: int, positive: np.ndarray | None
) -> DomainTables:
    """The tables of one share from its per-row domain (0..n_domains-1; -1: none) and 0/1 `y`:
    one np.bincount pass per table over the design rows, nothing of size shares x rows.
    With PSU pairs the domain must be the share's base (one domain, split by slot later)."""
    pairs = None
    if cells.pairs is not None:
        assert n_domains == 1  # pair tables know the base only; domains come from the slots
        pairs = pair_tables(cells.pairs, domain >= 0, y)
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
        pairs=pairs,
    )


def answer_tables(
    cells: RowCells,
    base: np.ndarray,
    values: np.ndarray,
    successes: Sequence[Sequence[float]],
    positive: np.ndarray | None,
) -> list[DomainTables]:
    """The one-domain tables (`domain_tables` with one domain) of shares with one base (rows
    `base`) that differ only in their success codes among `values` (e.g. every answer of an
    item): one pass per table over the rows by (slot, answer), each share's y = 1 the sum of
    its codes' columns and y = 0 the rest."""
    codes = sorted({float(c) for success in successes for c in success})
    width = len(codes) + 1  # the last column: any other answer
    answer = np.full(values.shape[0], len(codes), dtype=np.int64)
    for j, code in enumerate(codes):
        answer[values == code] = j
    n_slots = cells.block // 2
    key = np.where(base, (cells.key2 - cells.block) // 2 * width + answer, n_slots * width)
    size = (n_slots + 1) * width

    def table(keys: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(keys, weights=weights, minlength=size)[: n_slots * width].reshape(n_slots, width)

    count = table(key)
    sums = {
        "count": count,
        "pos_count": count if positive is None else table(key[positive]),
        "b_sum": table(key, cells.base),
        "b_sq": table(key, cells.base_sq),
    }
    shape = (1, cells.n_strata, cells.n_cells, 2)
    totals = {name: table.sum(axis=1) for name, table in sums.items()}
    out = []
    for success in successes:
        columns = [codes.index(float(c)) for c in set(success)]
        chosen = {name: table[:, columns].sum(axis=1) for name, table in sums.items()}
        split = {name: np.stack([totals[name] - chosen[name], chosen[name]], axis=-1).reshape(shape) for name in sums}
        out.append(DomainTables(split["count"], split["pos_count"], split["b_sum"], split["b_sq"]))
    return out


def kept_table(cells: RowCells, key: tuple, compute) -> DomainTables:
    """A share's one-domain table (`compute()`), kept on `cells` under `key` while
    KEEP_SLOTS allows: later calls on the same design (other breakdowns) reuse it."""
    if key in cells.kept:
        return cells.kept[key]
    table = compute()
    size = table.count.size + (0 if table.pairs is None else table.pairs.count.size)
    if (len(cells.kept) + 1) * size <= KEEP_SLOTS:
        cells.kept[key] = table
    return table


def slot_levels(cells: RowCells, by: tuple, level: np.ndarray) -> np.ndarray | None:
    """Level of `by` per (stratum, cell) slot (-1: missing or no rows) when all rows of
    each slot share one level, as for a calibration variable; else None. `by` names the
    levels (the cache key)."""
    if by not in cells.levels:
        cells.levels[by] = slot_values(cells, level)
    return cells.levels[by]


def slot_values(cells: RowCells, values: np.ndarray) -> np.ndarray | None:
    """`values` (codes >= -1) per (stratum, cell) slot when all rows of each slot share one (-1:
    no rows); else None."""
    slot = (cells.key2 - cells.block) // 2
    first = np.full(cells.block // 2, -1, dtype=np.int64)
    first[slot] = values
    return first if np.array_equal(first[slot], values) else None


def stack_tables(parts: Sequence[DomainTables]) -> DomainTables:
    """Tables of consecutive shares as one (domains in share order; pair tables share by share)."""
    if len(parts) == 1:
        return parts[0]
    pairs = None
    if parts[0].pairs is not None:
        pairs = PairTables(
            **{f.name: np.concatenate([getattr(t.pairs, f.name) for t in parts]) for f in fields(PairTables)}
        )
    return DomainTables(**{name: np.concatenate([getattr(t, name) for t in parts]) for name in ROW_TABLES}, pairs=pairs)


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
    """Variance of sum_k coefficient_k p_k per output (domains grouped by `contrasts.output`),
    from tables with a domain axis (rows-as-PSU designs)."""
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
    positive_per_stratum = per_output(pos_count.sum(axis=3).astype(np.float64)).sum(axis=2)
    variance = combine_strata(StratumSums(total=total, sumsq=sumsq, n_domain_psu=n_domain_psu), structure)

    df = positive_per_stratum.sum(axis=1) - (positive_per_stratum > 0).sum(axis=1)
    n = count.sum(axis=(1, 2, 3))
    means = DomainMeans(estimate=p, sum_weights=sum_weights, n=n, n_positive=pos_count.sum(axis=(1, 2, 3)))
    return BinaryDomainResult(means=means, variance=variance, df=df.astype(np.float64))


def slot_domain_contrasts(
    tables: DomainTables,
    slot_domain: np.ndarray,
    per_share: int,
    contrasts: Contrasts,
    cells: RowCells,
    structure: SamplingStructure,
    projection: Projection | None,
) -> BinaryDomainResult:
    """`binary_domain_contrasts` where each (stratum, cell) slot lies in one domain of a share,
    `slot_domain` (-1: none; calibration variables), from one-domain tables per share (shares,
    strata, cells, 2): every sum is per (share, slot), no (domains x slots) table is formed.
    With PSU pairs, adds the pairs' products (`_pair_terms`)."""
    n_shares = tables.count.shape[0]
    n_strata, n_cells = cells.n_strata, cells.n_cells
    n_out = contrasts.n_out
    outputs_per_share, local_output = _uniform_outputs(contrasts, n_shares, per_share)
    slot = np.flatnonzero(slot_domain >= 0)
    domain, cell, stratum = slot_domain[slot], slot % n_cells, slot // n_cells
    share = np.arange(n_shares)[:, None]

    def at_slots(table: np.ndarray) -> np.ndarray:
        """(shares, used slots, y) of a (shares, strata, cells, y) table."""
        return table.reshape(n_shares, n_strata * n_cells, 2)[:, slot, :].astype(np.float64)

    count, pos_count, b_sum, b_sq = (at_slots(getattr(tables, name)) for name in ROW_TABLES)
    f = cells.factor[cell][None, :, None]
    domain_key = (share * per_share + domain[None, :]).ravel()
    k = n_shares * per_share

    def per_domain(values: np.ndarray) -> np.ndarray:
        return np.bincount(domain_key, weights=values.ravel(), minlength=k)

    output = share * outputs_per_share + local_output[domain][None, :]  # (shares, used slots)
    output_key = (output * np.int64(n_strata) + stratum[None, :]).ravel()

    def per_output(values: np.ndarray) -> np.ndarray:
        """(outputs, strata) sums of per (share, used slot) values."""
        return np.bincount(output_key, weights=values.ravel(), minlength=n_out * n_strata).reshape(n_out, n_strata)

    weighted = f * b_sum
    sum_weights = per_domain(weighted.sum(axis=2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = per_domain(weighted[:, :, 1]) / sum_weights
        scale = np.where(sum_weights > 0, contrasts.coefficient / sum_weights, 0.0)
    r = scale[:, None] * (np.array([0.0, 1.0])[None, :] - np.nan_to_num(p)[:, None])
    r_slot = r.reshape(n_shares, per_share, 2)[:, domain, :]  # (shares, used slots, y)
    a_sum = (r_slot * f * b_sum).sum(axis=2)
    total = per_output(a_sum)
    sumsq = per_output((r_slot * r_slot * f * f * b_sq).sum(axis=2))
    n_domain_psu, h = None, None
    if projection is None:
        n_domain_psu = per_output(count.sum(axis=2))
    else:
        cell_values = a_sum if projection.kind == "poststratify" else (r_slot * f * count).sum(axis=2)
        cell_key = (output * np.int64(n_cells) + cell[None, :]).ravel()
        cell_sums = np.bincount(cell_key, weights=cell_values.ravel(), minlength=n_out * n_cells)
        h = projection_from_cell_sums(cell_sums.reshape(n_out, n_cells), projection)
        h_slot = h[output, cell[None, :]]
        total = total - times_transpose(h, projection.stratum_base)
        cross = per_output((r_slot * f * b_sq).sum(axis=2) * h_slot)
        sumsq = sumsq - 2 * cross + times_transpose(h * h, projection.stratum_base_sq)
    positive_per_stratum = per_output(pos_count.sum(axis=2))
    if tables.pairs is not None:
        assert cells.pairs is not None
        r_share = r.reshape(n_shares, per_share, 2)
        mates = _pair_terms(tables.pairs, cells.pairs, slot_domain, local_output, r_share, cells.factor, h, n_strata)
        sumsq = _sum_of_squares_with_pairs(sumsq, mates.products)
        positive_per_stratum = positive_per_stratum - mates.positive_both
        if n_domain_psu is not None:
            n_domain_psu = n_domain_psu - mates.both
    variance = combine_strata(StratumSums(total=total, sumsq=sumsq, n_domain_psu=n_domain_psu), structure)
    df = positive_per_stratum.sum(axis=1) - (positive_per_stratum > 0).sum(axis=1)
    n = per_domain(count.sum(axis=2)).astype(np.int64)
    n_positive = per_domain(pos_count.sum(axis=2)).astype(np.int64)
    means = DomainMeans(estimate=p, sum_weights=sum_weights, n=n, n_positive=n_positive)
    return BinaryDomainResult(means=means, variance=variance, df=df.astype(np.float64))


PAIR_ROUNDING = 1e-12
"""Relative size below which a PSU sum of squares formed as a² + b² + 2ab is rounding, not variance."""


def _sum_of_squares_with_pairs(row_squares: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Per (output, stratum) the PSUs' squared totals from their rows' squares and the pairs'
    products: (a + b)² as a² + b² + 2ab. When a domain's influence cancels within its PSUs
    the true value is 0 but the sum can round to about -1e-17, whose square root would be a
    NaN standard error where the per-row totals (and R) give 0; a sum of squares is never
    negative, so what is within rounding of its terms' size is 0."""
    paired = row_squares + 2 * products
    magnitude = np.abs(row_squares) + 2 * np.abs(products)
    return np.where(paired <= PAIR_ROUNDING * magnitude, 0.0, paired)


def _uniform_outputs(contrasts: Contrasts, n_shares: int, per_share: int) -> tuple[int, np.ndarray]:
    """Outputs per share and the output (within its share) of each domain of a share, for
    contrasts that treat every share alike (`Contrasts.identity`, `.changes`)."""
    outputs_per_share = contrasts.n_out // n_shares
    local_output = contrasts.output[:per_share]
    shifted = contrasts.output.reshape(n_shares, per_share) - outputs_per_share * np.arange(n_shares)[:, None]
    assert outputs_per_share * n_shares == contrasts.n_out and np.array_equal(
        shifted, np.broadcast_to(local_output, shifted.shape)
    )
    return outputs_per_share, local_output


@dataclass(frozen=True)
class PairSums:
    """Per (output, stratum): the sum over PSU pairs of the product of the two rows' projected
    influence, and the pairs with both rows in the output's domains (all; both weights positive)."""

    products: np.ndarray
    both: np.ndarray
    positive_both: np.ndarray


def _pair_terms(
    tables: PairTables,
    pairs: PsuPairs,
    slot_domain: np.ndarray,
    local_output: np.ndarray,
    r: np.ndarray,
    factor: np.ndarray,
    h: np.ndarray | None,
    n_strata: int,
) -> PairSums:
    """`PairSums` of a chunk of shares with the same domains per share (`slot_domain`), whose
    domains go to outputs `local_output` within the share; `r` (shares, domains of a share, y),
    `h` (outputs, cells) or None. Evaluated in blocks of shares of at most PAIR_BLOCK values.

    A row's projected influence for output j is b (A - h[j, cell]) with A = r[domain, y] F[cell]
    when its domain is one of j's (0 otherwise): per output, a function of the row's slot and
    state, so the pair sums are quadratic forms of those values with the share's pair tables.
    """
    n_shares = r.shape[0]
    outputs_per_share = int(local_output.max()) + 1
    n_slots = pairs.slot_first.size
    step = max(1, PAIR_BLOCK // (outputs_per_share * ROW_STATES * max(n_slots, 1)))
    parts = [
        _pair_terms_block(
            PairTables(**{f.name: getattr(tables, f.name)[q : q + step] for f in fields(PairTables)}),
            pairs,
            slot_domain,
            local_output,
            r[q : q + step],
            factor,
            None if h is None else h[q * outputs_per_share : (q + step) * outputs_per_share],
            n_strata,
        )
        for q in range(0, n_shares, step)
    ]
    return PairSums(**{f.name: np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(PairSums)})


def _pair_terms_block(
    tables: PairTables,
    pairs: PsuPairs,
    slot_domain: np.ndarray,
    local_output: np.ndarray,
    r: np.ndarray,
    factor: np.ndarray,
    h: np.ndarray | None,
    n_strata: int,
) -> PairSums:
    """`_pair_terms` of one block of shares."""
    n_shares = r.shape[0]
    outputs_per_share = int(local_output.max()) + 1
    n_out = n_shares * outputs_per_share
    n_cells = factor.size
    n_slots = pairs.slot_first.size
    ends = []
    for slot in (pairs.slot_first, pairs.slot_second):
        domain = slot_domain[slot]
        inside = domain >= 0
        output = np.where(inside, local_output[np.maximum(domain, 0)], -1)
        # (shares, outputs of a share, state, pair slot)
        value = np.zeros((n_shares, outputs_per_share, ROW_STATES, n_slots))
        if h is not None:
            value -= h.reshape(n_shares, outputs_per_share, n_cells)[:, :, None, slot % n_cells]
        own = (
            np.where(inside[None, :, None], r[:, np.maximum(domain, 0), :], 0.0) * factor[slot % n_cells][None, :, None]
        )
        mine = output[None, :] == np.arange(outputs_per_share)[:, None]  # (outputs of a share, pair slot)
        value[:, :, 1:, :] += mine[None, :, None, :] * own.transpose(0, 2, 1)[:, None, :, :]
        ends.append((value, output))
    (first, output_first), (second, output_second) = ends
    products = np.einsum("qlap,qabp,qlbp->qlp", first, tables.b_product, second)
    to_stratum = sp.csr_matrix((np.ones(n_slots), (np.arange(n_slots), pairs.slot_stratum)), shape=(n_slots, n_strata))
    # Pairs with both rows in one output's domains: by share, (output, stratum).
    same = np.flatnonzero((output_first == output_second) & (output_first >= 0))
    key = (np.arange(n_shares)[:, None] * outputs_per_share + output_first[same][None, :]) * np.int64(n_strata)
    key = (key + pairs.slot_stratum[same][None, :]).ravel()

    def both_inside(count: np.ndarray) -> np.ndarray:
        inside = count[:, 1:, 1:, :].sum(axis=(1, 2))[:, same].astype(np.float64).ravel()
        return np.bincount(key, weights=inside, minlength=n_out * n_strata).reshape(n_out, n_strata)

    return PairSums(
        products=np.asarray(products.reshape(n_out, n_slots) @ to_stratum),
        both=both_inside(tables.count),
        positive_both=both_inside(tables.pos_count),
    )
