"""Weight calibration: raking, post-stratification and trimming (pure numpy/scipy).

Raking follows R survey's `rake()`: each sweep post-stratifies to every margin in
the given order, and iteration stops when no cell of the joint table of all
margins changed by more than `tol * sum(base_weights)` during a sweep (R's
`control = list(epsilon = tol)` with `tol < 1`). The raking factor of a row depends
only on its joint cell, so base weights are aggregated to the occupied joint cells
once (`np.bincount`), the small table is raked, and the factors are expanded back.

That the loop stopped says nothing about the margins: with margins no weights can
meet (a combination of categories the sample lacks), the sweeps settle on a limit
that misses them, and R's `rake()` reports success. `largest_margin_deviation` measures
what was achieved and `raking_shortfall` tells why a margin was missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Margin = tuple[np.ndarray, np.ndarray]

# Joint tables up to this many cells per row of data are indexed densely (O(n));
# larger products fall back to np.unique (O(n log n)).
_DENSE_CELLS_PER_ROW = 4


# A feasible raking problem whose every solution leaves some occupied joint cell with
# less than this share of its base weight (relative to the average factor) counts as
# needing zero weights: raking can only approach such margins.
_MIN_ATTAINABLE_FACTOR = 1e-6

# Why raking missed a margin (`raking_shortfall`).
INFEASIBLE = "infeasible"
ZERO_WEIGHTS = "zero_weights"
NOT_CONVERGED = "not_converged"
STOPPED_EARLY = "stopped_early"
SHORTFALL_TEXT = {
    INFEASIBLE: "the margins are infeasible: no weights on this sample meet them jointly "
    "(the sample lacks a combination of categories they need, or their totals differ)",
    ZERO_WEIGHTS: "the margins are infeasible with positive weights: only giving some respondents "
    "weight 0 meets them jointly",
    NOT_CONVERGED: "raking not converged within the maximum number of sweeps",
    STOPPED_EARLY: "raking stopped (no cell moved by the tolerance in a sweep) before the margin was met",
}


@dataclass(frozen=True)
class MarginDeviation:
    """A margin category's weighted total against its population total."""

    margin: int
    category: int
    target: float
    achieved: float

    @property
    def relative(self) -> float:
        """|achieved - target| / target (0 when both are 0, inf when only the target is)."""
        difference = abs(self.achieved - self.target)
        if self.target > 0:
            return difference / self.target
        return 0.0 if difference == 0 else np.inf


@dataclass(frozen=True)
class RakeResult:
    """Raked weights and convergence diagnostics.

    `converged` only says the sweeps stopped changing the weights; `deviation` (the
    category furthest from its population total) says whether the margins were met.
    """

    weights: np.ndarray
    iterations: int
    converged: bool
    max_abs_error: float
    deviation: MarginDeviation


@dataclass(frozen=True)
class TrimResult:
    """Trimmed-and-reraked weights; `n_trimmed` counts rows capped in any round."""

    weights: np.ndarray
    rounds: int
    converged: bool
    n_trimmed: int
    max_abs_error: float
    lower_bound: float
    upper_bound: float


@dataclass(frozen=True)
class JointCells:
    """Occupied cells of the cross-classification of several categorical codes.

    `index[row]` is the row's cell; `codes[m][cell]` the category of margin `m`.
    """

    index: np.ndarray
    codes: tuple[np.ndarray, ...]

    @property
    def n_cells(self) -> int:
        return int(self.codes[0].shape[0]) if self.codes else 1


@dataclass(frozen=True)
class CellRaking:
    """Raking solved on joint cells.

    `factor[cell]` multiplies the base weight of each row in the cell. `stage_factors[m]`
    is the factor right after post-stratifying to margin `m` in the final sweep: R
    stores those weights with the design and uses them in the raking variance.
    """

    factor: np.ndarray
    stage_factors: tuple[np.ndarray, ...]
    sweeps: int
    converged: bool


def _as_weights(base_weights: np.ndarray) -> np.ndarray:
    w = np.asarray(base_weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError("weights must be one-dimensional")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if w.size and not np.any(w > 0):
        raise ValueError("all weights are zero")
    return w


def _as_codes(codes: np.ndarray, size: int, n: int, label: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"{label}: codes must be one-dimensional with one code per row")
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"{label}: codes must be integers 0..K-1")
    if n and (c.min() < 0 or c.max() >= size):
        bad = int(c.min()) if c.min() < 0 else int(c.max())
        raise ValueError(f"{label}: category {bad} has no population total (K={size})")
    return c.astype(np.int64, copy=False)


def _as_totals(totals: np.ndarray, label: str) -> np.ndarray:
    t = np.asarray(totals, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{label}: totals must be a non-empty one-dimensional array")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{label}: totals must be finite and non-negative")
    return t


def _use_dense_index(n_full: int, n: int) -> bool:
    return n_full <= max(_DENSE_CELLS_PER_ROW * n, 1 << 16)


def joint_cells(codes: Sequence[np.ndarray], sizes: Sequence[int]) -> JointCells:
    """Index the occupied cells of the cross-classification of `codes`."""
    if not codes:
        raise ValueError("at least one margin is required")
    n = codes[0].shape[0]
    n_full = int(np.prod([int(k) for k in sizes], dtype=object))
    if n_full >= 2**62:
        raise ValueError("too many joint cells: the margins' category counts overflow int64")
    strides = np.cumprod([1, *sizes[::-1]])[::-1]
    key = np.zeros(n, dtype=np.int64)
    for c, stride in zip(codes, strides[1:]):
        key += c * np.int64(stride)
    if _use_dense_index(n_full, n):
        occupied = np.flatnonzero(np.bincount(key, minlength=n_full))
        remap = np.empty(n_full, dtype=np.int64)
        remap[occupied] = np.arange(occupied.size)
        index = remap[key]
        full_keys = occupied
    else:
        full_keys, index = np.unique(key, return_inverse=True)
    cell_codes = tuple((full_keys // np.int64(stride)) % np.int64(size) for size, stride in zip(sizes, strides[1:]))
    return JointCells(index=index, codes=cell_codes)


def _check_margin_support(sample: np.ndarray, totals: np.ndarray, m: int) -> None:
    """R's postStratify checks: no population-only and no sample-only categories."""
    only_pop = np.flatnonzero((sample == 0) & (totals > 0))
    if only_pop.size:
        raise ValueError(
            f"margin {m}: category {int(only_pop[0])} has population total > 0 "
            "but no sample respondents with positive weight"
        )
    only_sample = np.flatnonzero((sample > 0) & (totals == 0))
    if only_sample.size:
        raise ValueError(f"margin {m}: category {int(only_sample[0])} has sample respondents but population total 0")


def rake_cells(
    cell_base: np.ndarray,
    cell_codes: Sequence[np.ndarray],
    totals: Sequence[np.ndarray],
    *,
    max_iter: int,
    epsilon: float,
) -> CellRaking:
    """Iterative proportional fitting of a joint table, sweep by sweep as R's rake().

    `epsilon` is absolute: stop when no cell changed by `epsilon` or more in a sweep.
    """
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    sizes = [t.size for t in totals]
    for m, (cc, t) in enumerate(zip(cell_codes, totals)):
        _check_margin_support(np.bincount(cc, weights=cell_base, minlength=t.size), t, m)
    factor = np.ones_like(cell_base)
    stage = [factor] * len(totals)
    old = cell_base.copy()
    converged = False
    sweeps = 0
    while sweeps < max_iter:
        sweeps += 1
        for m, (cc, t, k) in enumerate(zip(cell_codes, totals, sizes)):
            sample = np.bincount(cc, weights=cell_base * factor, minlength=k)
            ratio = np.divide(t, sample, out=np.ones(k), where=sample > 0)
            factor = factor * ratio[cc]
            stage[m] = factor
        new = cell_base * factor
        if np.max(np.abs(new - old)) < epsilon:
            converged = True
            break
        old = new
    return CellRaking(factor=factor, stage_factors=tuple(stage), sweeps=sweeps, converged=converged)


def margin_errors(weights: np.ndarray, codes: Sequence[np.ndarray], totals: Sequence[np.ndarray]) -> float:
    """Max |weighted sample margin - population margin| over all margins."""
    err = 0.0
    for c, t in zip(codes, totals):
        sample = np.bincount(c, weights=weights, minlength=t.size)
        err = max(err, float(np.max(np.abs(sample - t))))
    return err


def largest_margin_deviation(
    weights: np.ndarray, codes: Sequence[np.ndarray], totals: Sequence[np.ndarray]
) -> MarginDeviation:
    """The category whose weighted total is relatively furthest from its population total."""
    if not codes:
        raise ValueError("at least one margin is required")
    candidates = []
    for m, (c, t) in enumerate(zip(codes, totals)):
        sample = np.bincount(c, weights=weights, minlength=t.size)
        relative = np.abs(sample - t) / np.where(t > 0, t, 1.0)
        relative[(t == 0) & (sample != 0)] = np.inf
        k = int(np.argmax(relative))
        candidates.append(MarginDeviation(m, k, float(t[k]), float(sample[k])))
    return max(candidates, key=lambda d: d.relative)


def smallest_attainable_factor(
    cell_base: np.ndarray, cell_codes: Sequence[np.ndarray], totals: Sequence[np.ndarray]
) -> float | None:
    """How far the margins are from reach of the occupied joint cells (a linear program).

    Finds cell totals x >= 0 that meet every margin exactly and maximise the smallest
    factor x_c / base_c (in units of the average factor, capped at 1). None: no such x
    exists, the margins are jointly infeasible on this sample. A value near 0: only by
    giving some cells zero weight, which raking approaches but never reaches.
    """
    from scipy import sparse  # costly to import (~0.5 s): only when margins were missed
    from scipy.optimize import linprog

    n_cells = cell_base.size
    grand = float(totals[0].sum())
    base = cell_base / cell_base.sum()
    rows, cols, rhs = [], [], []
    offset = 0
    for c, t in zip(cell_codes, totals):
        rows.append(offset + c)
        cols.append(np.arange(n_cells))
        rhs.append(t / grand)
        offset += t.size
    # Variables: cell shares x_c (share of the population) and s; maximise s subject to
    # the margins and x_c >= s * base_c.
    equalities = sparse.csr_matrix(
        (np.ones(n_cells * len(totals)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(offset, n_cells + 1),
    )
    floors = sparse.hstack([-sparse.identity(n_cells), sparse.csr_matrix(base[:, None])]).tocsr()
    objective = np.zeros(n_cells + 1)
    objective[-1] = -1.0
    solution = linprog(
        objective,
        A_ub=floors,
        b_ub=np.zeros(n_cells),
        A_eq=equalities,
        b_eq=np.concatenate(rhs),
        bounds=[(0, None)] * n_cells + [(0, 1)],
        method="highs",
    )
    if solution.status == 2:
        return None
    if solution.status != 0:
        raise RuntimeError(f"feasibility check of the margins failed: {solution.message}")
    return float(solution.x[-1])


def raking_shortfall(base_weights: np.ndarray, margins: Sequence[Margin], *, converged: bool) -> str:
    """Why raking from `base_weights` missed a margin.

    `INFEASIBLE`: no non-negative weights meet the margins jointly; `ZERO_WEIGHTS`: only
    weights that are zero for some respondents do; otherwise the margins are within
    reach and the loop ended too soon: `NOT_CONVERGED` (out of sweeps) or
    `STOPPED_EARLY` (`converged`: a sweep moved no cell by the tolerance).
    """
    w = _as_weights(base_weights)
    codes, totals = _prepare_margins(w.size, margins)
    cells = joint_cells(codes, [t.size for t in totals])
    cell_base = np.bincount(cells.index, weights=w, minlength=cells.n_cells)
    occupied = cell_base > 0
    factor = smallest_attainable_factor(cell_base[occupied], [cc[occupied] for cc in cells.codes], totals)
    if factor is None:
        return INFEASIBLE
    if factor < _MIN_ATTAINABLE_FACTOR:
        return ZERO_WEIGHTS
    return STOPPED_EARLY if converged else NOT_CONVERGED


def _prepare_margins(n: int, margins: Sequence[Margin]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if len(margins) == 0:
        raise ValueError("at least one margin is required")
    totals = [_as_totals(t, f"margin {m}") for m, (_, t) in enumerate(margins)]
    codes = [_as_codes(c, t.size, n, f"margin {m}") for m, ((c, _), t) in enumerate(zip(margins, totals))]
    return codes, totals


def rake_weights(
    base_weights: np.ndarray,
    margins: Sequence[Margin],
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> RakeResult:
    """Rake `base_weights` to population `margins` (sequence of `(codes, totals)`).

    `codes[row]` is the category index 0..K-1 and `totals[k]` the population count of
    category k. Converges to R survey's `rake()` fixed point with
    `control = list(maxit = max_iter, epsilon = tol)`. Non-convergence returns
    `converged=False`; a category with population > 0 and no sample raises ValueError.
    """
    w = _as_weights(base_weights)
    codes, totals = _prepare_margins(w.size, margins)
    cells = joint_cells(codes, [t.size for t in totals])
    cell_base = np.bincount(cells.index, weights=w, minlength=cells.n_cells)
    raking = rake_cells(cell_base, cells.codes, totals, max_iter=max_iter, epsilon=tol * float(w.sum()))
    weights = w * raking.factor[cells.index]
    cell_weights = cell_base * raking.factor
    return RakeResult(
        weights=weights,
        iterations=raking.sweeps,
        converged=raking.converged,
        max_abs_error=margin_errors(cell_weights, cells.codes, totals),
        deviation=largest_margin_deviation(cell_weights, cells.codes, totals),
    )


def poststratify_weights(base_weights: np.ndarray, cells: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Post-stratify: scale weights in each cell to its population total (R postStratify)."""
    w = _as_weights(base_weights)
    t = _as_totals(totals, "post-strata")
    c = _as_codes(cells, t.size, w.size, "post-strata")
    sample = np.bincount(c, weights=w, minlength=t.size)
    _check_margin_support(sample, t, 0)
    ratio = np.divide(t, sample, out=np.ones(t.size), where=sample > 0)
    return w * ratio[c]


def trim_weights(
    weights: np.ndarray,
    lower: float | None,
    upper: float | None,
    margins: Sequence[Margin],
    *,
    max_rounds: int = 50,
    max_iter: int = 100,
    tol: float = 1e-10,
    bound_tol: float = 1e-6,
) -> TrimResult:
    """Trim weights to [lower, upper] x mean weight, re-rake, repeat until both hold.

    Each round caps weights at the bounds (relative to the current mean weight) and
    rakes the capped weights back to `margins`. Converged when, after raking, every
    weight lies within the bounds up to a relative `bound_tol` and the raking
    converged; otherwise `converged=False` after `max_rounds`.
    """
    w = _as_weights(weights)
    codes, totals = _prepare_margins(w.size, margins)
    lo = 0.0 if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)
    if lo < 0 or hi <= 0 or lo >= hi:
        raise ValueError("trimming bounds must satisfy 0 <= lower < upper")
    trimmed = np.zeros(w.size, dtype=bool)
    current = w
    raked_ok = True
    rounds = 0
    converged = False
    while True:
        mean = float(current.mean())
        lo_b, hi_b = lo * mean, hi * mean
        outside = (current < lo_b * (1 - bound_tol)) | (current > hi_b * (1 + bound_tol))
        if raked_ok and not np.any(outside):
            converged = True
            break
        if rounds == max_rounds:
            break
        rounds += 1
        trimmed |= outside
        capped = np.clip(current, lo_b, hi_b)
        result = rake_weights(capped, list(zip(codes, totals)), max_iter=max_iter, tol=tol)
        current, raked_ok = result.weights, result.converged
    mean = float(current.mean())
    return TrimResult(
        weights=current,
        rounds=rounds,
        converged=converged,
        n_trimmed=int(trimmed.sum()),
        max_abs_error=margin_errors(current, codes, totals),
        lower_bound=lo * mean,
        upper_bound=hi * mean,
    )
