"""Taylor-linearisation variance as R survey's svyrecvar/onestage/onestrat (first stage).

The engine takes influence values `a` and an output index `out` (-1: outside every
output's domain), each either per design row or per (share, row) for a batch of
shares (one array row per share; per-row design arrays broadcast). Output j's
variance is that of the total of `a` over its rows, with:

- calibration: the influence is first projected as svyrecvar does for post-strata and
  raking. The projected value of row i for output j is `a_ij - b_i * H[j, cell_i]`
  (b: weight before calibration, cell: joint calibration cell), so every output's
  projection and variance follow from per-(output, cell) and per-(output, stratum)
  sums: no loop over rows or outputs in Python;
- strata, first-stage PSUs, fpc and lonely PSUs with onestrat's rules and R's default
  `survey.adjust.domain.lonely = FALSE`.

Domains follow R's `subset()`: for an uncalibrated design the rows outside the domain
are dropped but every stratum keeps its full PSU count (PSUs without domain rows add
zeros); for a calibrated design the rows are kept with weight zero, so every stratum
is visited. The difference only shows with lonely PSUs (`fail`, `average`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

LONELY_PSU_OPTIONS = ("fail", "remove", "adjust", "average", "certainty")
# R's raking variance repeats the projection on the margins exactly this many times.
RAKING_PROJECTION_SWEEPS = 10
# Cap on dense blocks: (stratum x cell x output) quadratic forms, (stratum x cell) sums.
_DENSE_BLOCK = 20_000_000
# Cap on (pairs x rows) influence values per pass of `linearized_covariance`.
_PAIR_BLOCK = 4_000_000
# Distinct units per output: a dense (output x unit) presence table up to this size
# (or 4 x the rows), a unit-major sparse pattern beyond.
_PRESENCE_TABLE = 1 << 22


class LonelyPSUError(ValueError):
    """A stratum has a single PSU and lonely_psu='fail' (R: 'Stratum has only one PSU')."""


@dataclass(frozen=True)
class SamplingStructure:
    """First-stage sampling structure of a design.

    `psu` is None when every row is its own PSU (R: `ids = ~1`). PSU codes are nested
    in strata (R's `nest = TRUE`). `f[s]` is onestrat's finite population factor
    `(N_s - n_s) / N_s` (1 without fpc); `npsu[s]` the stratum's sampled PSU count.
    """

    stratum: np.ndarray
    psu: np.ndarray | None
    n_strata: int
    n_psu: int
    psu_stratum: np.ndarray
    npsu: np.ndarray
    f: np.ndarray
    lonely_psu: str

    @property
    def rows_are_psus(self) -> bool:
        return self.psu is None


@dataclass(frozen=True)
class Projection:
    """What svyrecvar needs to project influence values on a calibration.

    `kind` is "poststratify" (one pass on the cells) or "rake" (10 passes over the
    margins with the weights R stored after each margin of the final sweep).
    `cell[row]` is the row's joint cell, `base[row]` its weight before calibration,
    `factor[cell]` the final calibration factor. The remaining fields are design
    constants computed once by `make_projection`: per cell and per stratum x cell sums
    and, for raking, the two factors of the projection (`projection_from_cell_sums`);
    the per (stratum x cell) x PSU sums and the per-stratum Gram matrix of the PSU x
    cell sums (clustered designs) on first use (`psu_sums`).
    """

    kind: str
    cell: np.ndarray
    base: np.ndarray
    n_cells: int
    factor: np.ndarray
    inverse_base: np.ndarray
    base_per_cell: np.ndarray
    stratum_base: sp.csr_matrix
    stratum_base_sq: sp.csr_matrix
    structure: SamplingStructure
    to_categories: sp.csr_matrix | None
    from_categories: np.ndarray | None

    @cached_property
    def psu_sums(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(stratum x cell) x PSU sums of base weights and the per-stratum Gram matrix of the
        PSU x cell sums, for the per-row variance of a clustered design (the table path and
        unclustered designs need neither)."""
        st = self.structure
        assert st.psu is not None  # only clustered designs have PSU sums
        psu_base = sp.csr_matrix((self.base, (st.psu, self.cell)), shape=(st.n_psu, self.n_cells))
        cell_psu_base = _cell_psu_base(psu_base, st)
        return cell_psu_base, (cell_psu_base @ psu_base).tocsr()


def make_projection(
    kind: str,
    cell: np.ndarray,
    base: np.ndarray,
    n_cells: int,
    stage_factors: tuple[np.ndarray, ...],
    margin_codes: tuple[np.ndarray, ...],
    margin_sizes: tuple[int, ...],
    structure: SamplingStructure,
) -> Projection:
    """A Projection with its per-cell, per-(stratum, cell) and per-(PSU, cell) sums of base weights.

    `stage_factors[m][cell]` is the calibration factor after margin m and
    `margin_codes[m][cell]` the cell's category on margin m (a single "margin" of
    all cells for post-stratification).
    """
    stratum_base = _stratum_cell_sums(structure, cell, n_cells, base)
    stratum_base_sq = _stratum_cell_sums(structure, cell, n_cells, base * base)
    to_categories = from_categories = None
    if kind == "rake":
        rows_per_cell = np.bincount(cell, minlength=n_cells).astype(np.float64)
        to_categories, from_categories = _raking_operator(stage_factors, margin_codes, margin_sizes, rows_per_cell)
    return Projection(
        kind=kind,
        cell=cell,
        base=base,
        n_cells=n_cells,
        factor=stage_factors[-1],
        inverse_base=1.0 / base,
        base_per_cell=np.bincount(cell, weights=base, minlength=n_cells),
        stratum_base=stratum_base,
        stratum_base_sq=stratum_base_sq,
        structure=structure,
        to_categories=to_categories,
        from_categories=from_categories,
    )


def _stratum_cell_sums(
    structure: SamplingStructure, cell: np.ndarray, n_cells: int, values: np.ndarray
) -> sp.csr_matrix:
    """Sums of `values` per (stratum, cell), sparse (built densely when the table is small: faster)."""
    s = structure.n_strata
    if s * n_cells > _DENSE_BLOCK:
        return sp.csr_matrix((values, (structure.stratum, cell)), shape=(s, n_cells))
    key = structure.stratum * np.int64(n_cells) + cell
    return sp.csr_matrix(np.bincount(key, weights=values, minlength=s * n_cells).reshape(s, n_cells))


def _cell_psu_base(psu_base: sp.csr_matrix, structure: SamplingStructure) -> sp.csr_matrix:
    """B (PSU x cell base sums) transposed, with row stratum * cells + cell: products with
    it give per-(stratum, cell) sums over PSUs, e.g. the Gram matrix of B per stratum."""
    coo = psu_base.tocoo()
    n_cells = psu_base.shape[1]
    row = structure.psu_stratum[coo.row] * np.int64(n_cells) + coo.col
    return sp.csr_matrix((coo.data, (row, coo.row)), shape=(structure.n_strata * n_cells, structure.n_psu))


def _raking_operator(
    stage_factors: tuple[np.ndarray, ...],
    margin_codes: tuple[np.ndarray, ...],
    margin_sizes: tuple[int, ...],
    rows_per_cell: np.ndarray,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """svyrecvar's raking projection as two factors: H = (cell_sums @ to) @ from.

    Each pass of the projection on margin m adds, per category, the sum over its
    cells of (cell_sums - rows_per_cell * H) / stage_factor_m. H is therefore linear
    in the per-margin category sums of cell_sums / stage_factor_m (`to`, cells x
    categories), and the 10 sweeps are replayed once, on one unit input per category
    (`from`, categories x cells), instead of once per call.
    """
    n_cells = rows_per_cell.size
    offsets = np.cumsum([0, *margin_sizes])
    to_categories = sp.csr_matrix(
        (
            np.concatenate([1.0 / sf for sf in stage_factors]),
            (
                np.tile(np.arange(n_cells), len(margin_sizes)),
                np.concatenate([codes + start for codes, start in zip(margin_codes, offsets)]),
            ),
        ),
        shape=(n_cells, int(offsets[-1])),
    )
    unit = np.eye(int(offsets[-1]))
    h = np.zeros((unit.shape[0], n_cells))
    # Category x cell indicators, sparse: products with them avoid BLAS threads on small arrays.
    indicators = [
        sp.csr_matrix((np.ones(n_cells), (codes, np.arange(n_cells))), shape=(k, n_cells))
        for codes, k in zip(margin_codes, margin_sizes)
    ]
    rows_per_category = [np.maximum(e @ rows_per_cell, 1.0) for e in indicators]
    for _ in range(RAKING_PROJECTION_SWEEPS):
        for sf, codes, e, rows, start, stop in zip(
            stage_factors, margin_codes, indicators, rows_per_category, offsets[:-1], offsets[1:]
        ):
            category_mean = (unit[:, start:stop] - (e @ ((rows_per_cell * h) / sf).T).T) / rows
            h = h + sf * category_mean[:, codes]
    return to_categories, h


def _codes(values: pd.Series | np.ndarray, what: str) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(values), sort=True, use_na_sentinel=True)
    if np.any(codes < 0):
        raise ValueError(f"{what} has missing values")
    return codes.astype(np.int64), len(uniques)


def sampling_structure(
    n: int,
    strata: pd.Series | np.ndarray | None,
    cluster: pd.Series | np.ndarray | None,
    fpc: pd.Series | np.ndarray | None,
    lonely_psu: str,
) -> SamplingStructure:
    """Build the first-stage structure as R's svydesign/as.fpc would (nest = TRUE)."""
    if lonely_psu not in LONELY_PSU_OPTIONS:
        raise ValueError(f"lonely_psu must be one of {LONELY_PSU_OPTIONS}, got {lonely_psu!r}")
    if strata is None:
        stratum, n_strata = np.zeros(n, dtype=np.int64), 1
    else:
        stratum, n_strata = _codes(strata, "strata")
    if cluster is None:
        psu = None
        psu_stratum = stratum
        n_psu = n
        npsu = np.bincount(stratum, minlength=n_strata).astype(np.float64)
    else:
        cl, n_cl = _codes(cluster, "cluster")
        # Nested in strata: one PSU per (stratum, cluster); with one stratum, the cluster codes.
        psu, n_psu = (cl, n_cl) if n_strata == 1 else _codes(stratum * np.int64(n_cl) + cl, "cluster")
        psu_stratum = np.zeros(n_psu, dtype=np.int64)
        psu_stratum[psu] = stratum
        npsu = np.bincount(psu_stratum, minlength=n_strata).astype(np.float64)
    f = np.ones(n_strata)
    if fpc is not None:
        f = _finite_population_factor(np.asarray(fpc, dtype=np.float64), stratum, npsu)
    return SamplingStructure(
        stratum=stratum,
        psu=psu,
        n_strata=n_strata,
        n_psu=n_psu,
        psu_stratum=psu_stratum,
        npsu=npsu,
        f=f,
        lonely_psu=lonely_psu,
    )


def _finite_population_factor(fpc: np.ndarray, stratum: np.ndarray, npsu: np.ndarray) -> np.ndarray:
    """R's as.fpc: population PSU counts (any > 1) or sampling fractions (all <= 1)."""
    if np.any(np.isnan(fpc)) or np.any(fpc <= 0):
        raise ValueError("fpc must be positive and not missing")
    lo = np.full(npsu.size, np.inf)
    hi = np.full(npsu.size, -np.inf)
    np.minimum.at(lo, stratum, fpc)
    np.maximum.at(hi, stratum, fpc)
    if np.any(lo != hi):
        raise ValueError("fpc varies within a stratum")
    is_popsize = bool(np.any(fpc > 1))
    if is_popsize and not np.all(fpc >= 1):
        raise ValueError("fpc must be all population sizes (>= 1) or all sampling fractions (<= 1)")
    popsize = lo if is_popsize else npsu / lo
    if np.any(popsize < npsu):
        raise ValueError("fpc implies more than 100% sampling in a stratum")
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(popsize), 1.0, (popsize - npsu) / popsize)


def _sums_by_output(key: np.ndarray, weights: np.ndarray | None, n_out: int, width: int) -> np.ndarray:
    """Sums over rows per (output, column); `key = (out + 1) * width + column`, out = -1 dropped."""
    counts = np.bincount(
        key.ravel(), weights=None if weights is None else weights.ravel(), minlength=(n_out + 1) * width
    )
    return counts[width:].reshape(n_out, width)


def projection_coefficients(a: np.ndarray, out: np.ndarray, n_out: int, proj: Projection) -> np.ndarray:
    """H (outputs x cells) such that the projected influence is a - base * H[out, cell]."""
    key = (out + 1) * np.int64(proj.n_cells) + proj.cell
    values = a if proj.kind == "poststratify" else a * proj.inverse_base
    return projection_from_cell_sums(_sums_by_output(key, values, n_out, proj.n_cells), proj)


def projection_from_cell_sums(cell_sums: np.ndarray, proj: Projection) -> np.ndarray:
    """H from per-(output, cell) sums of the influence (post-stratification) or of
    influence / base weight (raking, svyrecvar's 10 sweeps via `_raking_operator`)."""
    if proj.kind == "poststratify":
        return np.divide(cell_sums, proj.base_per_cell, out=np.zeros_like(cell_sums), where=proj.base_per_cell > 0)
    # make_projection (the only constructor) sets both raking factors when kind is "rake".
    assert proj.to_categories is not None and proj.from_categories is not None
    categories = cell_sums @ proj.to_categories
    return np.einsum("ok,kc->oc", categories, proj.from_categories)  # einsum: no BLAS threads


@dataclass(frozen=True)
class StratumSums:
    """Per (output, stratum): sum and sum of squares of PSU totals; domain PSU counts
    (None for calibrated designs, where every PSU stays in the subset design)."""

    total: np.ndarray
    sumsq: np.ndarray
    n_domain_psu: np.ndarray | None


def times_transpose(m: np.ndarray, by: sp.csr_matrix) -> np.ndarray:
    """m @ by.T, computed by scipy.sparse (no BLAS threads, which cost more than they
    save on arrays this size on a busy machine)."""
    return (by @ m.T).T


def _stratum_sums_rows(
    a: np.ndarray, out: np.ndarray, n_out: int, st: SamplingStructure, proj: Projection | None
) -> StratumSums:
    """Stratum sums when every row is a PSU: bincounts over (output, stratum)."""
    s = st.n_strata
    key = out + 1 if s == 1 else (out + 1) * np.int64(s) + st.stratum
    total = _sums_by_output(key, a, n_out, s)
    sumsq = _sums_by_output(key, a * a, n_out, s)
    if proj is None:
        count = _sums_by_output(key, None, n_out, s).astype(np.float64)
        return StratumSums(total=total, sumsq=sumsq, n_domain_psu=count)
    h = projection_coefficients(a, out, n_out, proj)
    c = proj.n_cells
    h_rows = np.concatenate([np.zeros(c), h.ravel()])[(out + 1) * np.int64(c) + proj.cell]
    cross = _sums_by_output(key, a * proj.base * h_rows, n_out, s)
    total = total - times_transpose(h, proj.stratum_base)
    sumsq = sumsq - 2 * cross + times_transpose(h * h, proj.stratum_base_sq)
    return StratumSums(total=total, sumsq=sumsq, n_domain_psu=None)


def _stratum_sums_clusters(
    a: np.ndarray, out: np.ndarray, n_out: int, st: SamplingStructure, psu: np.ndarray, proj: Projection | None
) -> StratumSums:
    """Stratum sums for clustered designs from the sparse PSU totals of each output.

    Calibrated: the projected PSU total is x_pj = T_pj - m_pj with T the PSU totals of
    `a` (nonzero only where output j has rows in PSU p) and m = B @ H.T (B: PSU x cell
    base sums), which is dense. Its sums over a stratum's PSUs are taken without
    forming it: sum x = sum T - H @ (stratum's B sums) and sum x^2 = sum T^2
    - 2 sum T m + sum m^2, where sum T m pairs H with the sparse product B' T per
    (stratum, cell) and sum m^2 is the quadratic form of H with the stratum's Gram
    matrix of B (`Projection.psu_gram`). `psu`: the structure's PSU of each row.
    """
    p, s = st.n_psu, st.n_strata
    totals = _psu_totals(a, out, psu, p, n_out)
    psu = np.repeat(np.arange(p), np.diff(totals.indptr))
    key = totals.indices * np.int64(s) + st.psu_stratum[psu]
    t = totals.data

    def per_stratum(values: np.ndarray | None) -> np.ndarray:
        return np.bincount(key, weights=values, minlength=n_out * s).reshape(n_out, s).astype(np.float64)

    if proj is None:
        return StratumSums(total=per_stratum(t), sumsq=per_stratum(t * t), n_domain_psu=per_stratum(None))
    cell_psu_base, psu_gram = proj.psu_sums
    h = projection_coefficients(a, out, n_out, proj)
    total = per_stratum(t) - times_transpose(h, proj.stratum_base)
    cross = _paired_forms(h, cell_psu_base @ totals, s)
    sumsq = per_stratum(t * t) - 2 * cross + _quadratic_forms(h, psu_gram, s)
    return StratumSums(total=total, sumsq=sumsq, n_domain_psu=None)


def _psu_totals(a: np.ndarray, out: np.ndarray, psu: np.ndarray, n_psu: int, n_out: int) -> sp.csr_matrix:
    """Sums of `a` per (PSU, output) over rows with out >= 0, as a canonical PSU x output
    matrix (one entry per PSU and output with rows, even when its sum is 0)."""
    inside = out >= 0
    rows = np.broadcast_to(psu, out.shape)[inside]
    totals = sp.csr_matrix((a[inside], (rows, out[inside])), shape=(n_psu, n_out))
    totals.sum_duplicates()
    return totals


def _quadratic_forms(h: np.ndarray, gram: sp.csr_matrix, n_strata: int) -> np.ndarray:
    """(outputs x strata): h_j G_s h_j' for the stacked per-stratum Gram matrices G_s,
    in blocks of outputs (the product with the Gram matrices is dense)."""
    n_out, n_cells = h.shape
    block = max(1, _DENSE_BLOCK // max(n_strata * n_cells, 1))
    return (
        np.concatenate(
            [_paired_forms(h[j0 : j0 + block], gram @ h[j0 : j0 + block].T, n_strata) for j0 in range(0, n_out, block)]
        )
        if n_out
        else np.zeros((0, n_strata))
    )


def _paired_forms(h: np.ndarray, stacked, n_strata: int) -> np.ndarray:
    """(outputs x strata): sum over cells c of h[j, c] * stacked[s * cells + c, j], for
    `stacked` a (strata * cells) x outputs array or sparse matrix."""
    n_out, n_cells = h.shape
    if sp.issparse(stacked):
        stacked = stacked.tocoo()
        s, c = np.divmod(stacked.row, n_cells)
        key = stacked.col * np.int64(n_strata) + s
        weights = stacked.data * h[stacked.col, c]
        return np.bincount(key, weights=weights, minlength=n_out * n_strata).reshape(n_out, n_strata).astype(float)
    return np.einsum("scj,jc->js", stacked.reshape(n_strata, n_cells, n_out), h)


def linearized_variance(
    a: np.ndarray,
    out: np.ndarray,
    n_out: int,
    structure: SamplingStructure,
    projection: Projection | None = None,
) -> np.ndarray:
    """Variance of each output's total of `a`, as svyrecvar on R's subset design."""
    if structure.psu is None:
        sums = _stratum_sums_rows(a, out, n_out, structure, projection)
    else:
        sums = _stratum_sums_clusters(a, out, n_out, structure, structure.psu, projection)
    return combine_strata(sums, structure)


def combine_strata(sums: StratumSums, st: SamplingStructure) -> np.ndarray:
    """onestrat per (output, stratum), then onestage's sum with the `average` rescaling."""
    npsu, f = st.npsu, st.f
    if sums.n_domain_psu is None:
        visited = np.ones_like(sums.total, dtype=bool)
    else:
        visited = sums.n_domain_psu > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(npsu > 1, f * npsu / (npsu - 1), f)
        centred = scale * (sums.sumsq - sums.total**2 / npsu)
    lonely = (npsu == 1) & (f >= 1e-7)
    contribution = np.where(f < 1e-7, 0.0, centred)
    ok = np.ones_like(visited)
    if np.any(lonely):
        rule = st.lonely_psu
        if rule == "fail" and np.any(visited[:, lonely]):
            raise LonelyPSUError("a stratum has only one PSU (lonely_psu='fail')")
        lonely_value = scale * sums.sumsq if rule == "adjust" else np.zeros_like(centred)
        contribution = np.where(lonely, lonely_value, contribution)
        if rule == "average":
            ok = ~np.broadcast_to(lonely, visited.shape)
    use = visited & ok
    var = np.where(use, contribution, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return var * visited.sum(axis=1) / use.sum(axis=1)


def _distinct_per_output(out: np.ndarray, unit: np.ndarray, n_units: int, n_out: int) -> np.ndarray:
    """Number of distinct `unit` codes among the rows of each output (out = -1 ignored)."""
    if (n_out + 1) * n_units <= max(4 * out.size, _PRESENCE_TABLE):
        key = ((out + 1) * np.int64(n_units) + unit).ravel()
        present = np.bincount(key, minlength=(n_out + 1) * n_units)[n_units:] > 0
        return present.reshape(n_out, n_units).sum(axis=1)
    # Unit-major: building the pattern sorts only within each unit's few entries.
    inside = out >= 0
    rows = np.broadcast_to(unit, out.shape)[inside]
    pattern = sp.csr_matrix((np.ones(rows.size, dtype=np.int32), (rows, out[inside])), shape=(n_units, n_out))
    pattern.sum_duplicates()
    return np.bincount(pattern.indices, minlength=n_out)


def degrees_of_freedom(
    out: np.ndarray, n_out: int, positive: np.ndarray | None, structure: SamplingStructure
) -> np.ndarray:
    """R's degf() of each output's subset design: PSUs minus strata among rows with
    positive weight (`positive`: mask of rows with weight != 0; None when all are)."""
    o = out if positive is None else np.where(positive, out, -1)
    if structure.psu is None:
        psus = np.bincount((o + 1).ravel(), minlength=n_out + 1)[1:]
    else:
        psus = _distinct_per_output(o, structure.psu, structure.n_psu, n_out)
    if structure.n_strata == 1:
        strata = (psus > 0).astype(np.int64)
    else:
        strata = _distinct_per_output(o, structure.stratum, structure.n_strata, n_out)
    return (psus - strata).astype(np.float64)


def linearized_covariance(
    a: np.ndarray,
    inside: np.ndarray,
    structure: SamplingStructure,
    projection: Projection | None = None,
) -> np.ndarray:
    """Covariance matrix of the totals of the k influence rows of `a` (k x rows) over one
    domain (`inside`: its rows), as svyrecvar's matrix on R's subset design.

    The variance is a quadratic form in the influence, so the covariances follow from
    the variances of pairwise sums: cov(i, j) = (var(a_i + a_j) - var(a_i) - var(a_j)) / 2.
    """
    k = a.shape[0]
    first, second = np.triu_indices(k)
    variance = np.empty(first.size)
    step = max(1, _PAIR_BLOCK // max(a.shape[1], 1))
    for start in range(0, first.size, step):
        block = slice(start, start + step)
        pairs = a[first[block]] + a[second[block]]
        out = np.where(inside, np.arange(pairs.shape[0])[:, None], -1)
        variance[block] = linearized_variance(pairs, out, pairs.shape[0], structure, projection)
    return _covariance_from_pairs(variance, k)


def _covariance_from_pairs(variance: np.ndarray, k: int) -> np.ndarray:
    """The k x k covariance from the variances of a_i + a_j over `np.triu_indices(k)` pairs."""
    first, second = np.triu_indices(k)
    own = variance[first == second] / 4  # var(2 a_i) = 4 var(a_i)
    cov = np.empty((k, k))
    cov[first, second] = (variance - own[first] - own[second]) / 2
    cov[second, first] = cov[first, second]
    return cov


def keyed_covariance(
    u: np.ndarray,
    key: np.ndarray,
    g: np.ndarray,
    inside: np.ndarray,
    structure: SamplingStructure,
    projection: Projection | None = None,
) -> np.ndarray:
    """`linearized_covariance` of the influence a = g[:, key] * u (k x rows), for influence that
    depends on a row only through a key (e.g. its table cell, `g`: k x keys) and a row factor `u`.

    When every row is a PSU the stratum sums of the pair sums come from sums of u, u^2 and u x
    base weight per (stratum, key[, calibration cell]), so no k x rows array is formed (a 4 x 30
    table has 87 contrasts: 3,828 pairs over every row otherwise). Clustered designs take the
    general path.
    """
    if structure.psu is not None:
        return linearized_covariance(
            g[:, np.where(inside, key, 0)] * np.where(inside, u, 0.0), inside, structure, projection
        )
    k, n_keys = g.shape
    s = structure.n_strata
    stratum = structure.stratum[inside] if s > 1 else np.zeros(int(inside.sum()), dtype=np.int64)
    row_key, row_u = key[inside], u[inside]
    cell_key = stratum * np.int64(n_keys) + row_key
    sums = np.bincount(cell_key, weights=row_u, minlength=s * n_keys).reshape(s, n_keys)
    squares = np.bincount(cell_key, weights=row_u * row_u, minlength=s * n_keys).reshape(s, n_keys)
    total = np.einsum("ik,sk->is", g, sums)  # (k x strata)
    # (strata x k x k); two-operand einsum: no BLAS threads for these small products (as `times_transpose`)
    sumsq = np.stack([np.einsum("ik,jk->ij", g * squares[t], g) for t in range(s)])
    n_domain_psu = None
    if projection is None:
        n_domain_psu = np.bincount(stratum, minlength=s).astype(np.float64)
    else:
        c = projection.n_cells
        cell = projection.cell[inside]
        values = row_u if projection.kind == "poststratify" else row_u * projection.inverse_base[inside]
        key_cell = np.bincount(row_key * np.int64(c) + cell, weights=values, minlength=n_keys * c).reshape(n_keys, c)
        h = projection_from_cell_sums(np.einsum("ik,kc->ic", g, key_cell), projection)  # (k x cells)
        total = total - times_transpose(h, projection.stratum_base)
        crossed = np.bincount(
            cell_key * np.int64(c) + cell, weights=row_u * projection.base[inside], minlength=s * n_keys * c
        ).reshape(s, n_keys, c)
        cross = np.stack([np.einsum("ic,jc->ij", np.einsum("ik,kc->ic", g, crossed[t]), h) for t in range(s)])
        base_sq = projection.stratum_base_sq.toarray()
        projected = np.stack([np.einsum("ic,jc->ij", h * base_sq[t], h) for t in range(s)])
        sumsq = sumsq - cross - cross.transpose(0, 2, 1) + projected
    first, second = np.triu_indices(k)
    pair_sumsq = sumsq[:, first, first] + sumsq[:, second, second] + 2 * sumsq[:, first, second]
    sums_of_pairs = StratumSums(
        total=total[first] + total[second],
        sumsq=pair_sumsq.T,
        n_domain_psu=None if n_domain_psu is None else np.broadcast_to(n_domain_psu, (first.size, s)),
    )
    return _covariance_from_pairs(combine_strata(sums_of_pairs, structure), k)
