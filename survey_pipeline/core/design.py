"""`SurveyDesign`: design-based estimates and tests that match R survey 4.1-1.

A design holds the data, the weights, the first-stage sampling structure (strata,
PSUs, fpc, lonely-PSU rule) and, after `rake` or `poststratify`, what the variance
needs to account for the calibration. Designs are immutable: calibration returns a
new design. Estimates for a domain (`where`, `by` levels, rows with a valid answer)
are computed on the full design, as R's `subset()` does, never on a subset of rows.
Only the first sampling stage is used (R with one-stage `ids`; for multistage designs
that is R's ultimate-cluster variance without the later-stage fpc terms). Cluster ids
are nested in strata. Variances below 1e-24 (SE < 1e-12) are rounding noise around an
exact zero and are reported as 0.

Equivalent R (reference tests in tests/core):

- ``SurveyDesign(df, weights, strata, cluster, fpc, lonely_psu)``:
  ``options(survey.lonely.psu = lonely_psu)``;
  ``svydesign(ids = ~cluster (or ~1), strata = ~strata, fpc = ~fpc, weights = ~w, nest = TRUE)``
- ``.rake(margins)``: ``rake(d, list(~a, ~b), list(pop_a, pop_b),
  control = list(maxit = max_iter, epsilon = tol))`` (tol < 1; ``epsilon=`` as R reads it, absolute
  from 1 on); a crossed margin ``{("a", "b"): {(1, 1): t, ...}}`` is R's ``list(~a + b, ...)``.
- ``where={"w": {"not_in": [1, 2]}}``: ``!is.na(w) & !(w %in% c(1, 2))``; ``by=["a", "b"]``: one
  domain per combination, R's ``svyby(..., ~a + b, ...)``.
- ``.poststratify(var, totals)``: ``postStratify(d, ~var, pop)``
- ``.proportion(y, success, exclude, where, by, ci)``: per domain
  ``svyciprop(~I(y %in% success), subset(d, !is.na(y) & !(y %in% exclude) & where & by == level),
  method = "xlogit" | "beta" | "mean")`` and ``svymean(..., deff = TRUE)``.
- ``.proportions([Share(y, success, exclude, where), ...], by, ci)``: one ``.proportion``
  per share, computed in one vectorised pass (``.differences`` likewise).
- ``.difference(y, ..., between = ("wave", a, b))``: ``svyratio(~num_a + num_b, ~den_a + den_b,
  d, covmat = TRUE)`` and ``svycontrast(r, c(-1, 0, 0, 1))`` of the two wave ratios;
  df = ``degf(subset(d, in either wave's domain))``; p = ``2 * pt(-abs(t), df)``.
- ``.mean(x, where, by)`` / ``.total(x, where, by)``: per domain ``svymean(~x, subset(d, where &
  by == level), na.rm = TRUE, deff = TRUE)`` (``svytotal``), interval
  ``confint(m, df = degf(subset(d, where & by == level & !is.na(x))))``.
- ``.quantile(x, probs, where, by)``: per domain ``svyquantile(~x, subset(d, where & by == level & !is.na(x)),
  probs, interval.type = "mean", qrule = "math", ci = TRUE)`` (survey >= 4.1; Woodruff interval, df of
  the domain).
- ``.chisq(a, b, where, statistic)``: ``svychisq(~a + b, subset(d, where), statistic = "F" | "Chisq")``.
- ``.logit("y ~ a + factor(b)", success, where)``: ``svyglm(as.numeric(y %in% success) ~ a + factor(b),
  subset(d, where & !is.na(y)), family = quasibinomial())``; ``summary()`` and ``confint()`` (t on
  ``degf + 1 - p``).
- ``.domain_vs_rest(y, success, exclude, where, by, adjust)``: per level l, ``svycontrast`` (c(1, -1)) of
  the means of ``base & by == l`` and ``base & by != l`` (``svyratio(..., covmat = TRUE)`` on the full
  design, as svyby(covmat = TRUE) on subset(d, base)); df = ``degf(subset(d, base))``;
  ``p.adjust(p, "holm" | "BH")`` over the levels.
- ``.trend(y, success, exclude, where, over, waves, scores, by)``: ``svycontrast`` of the wave means with
  c = (s - mean(s)) / sum((s - mean(s))^2); df = ``degf(subset(d, base & over %in% waves))``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from survey_pipeline.core import calibration as cal
from survey_pipeline.core.estimation import (
    Contrasts,
    Domains,
    domain_means,
    domain_spread,
    mean_influence,
    srs_variance,
    total_influence,
)
from survey_pipeline.core.intervals import append_note, proportion_intervals, t_quantile, t_sf
from survey_pipeline.core.multiplicity import ADJUSTMENTS, p_adjust
from survey_pipeline.core.tables import (
    BinaryDomainResult,
    DomainTables,
    RowCells,
    answer_tables,
    binary_domain_contrasts,
    concatenate,
    domain_tables,
    fits,
    kept_table,
    row_cells,
    shares_per_chunk,
    slot_domain_contrasts,
    slot_levels,
    slot_values,
    stack_tables,
)
from survey_pipeline.core.variance import (
    Projection,
    SamplingStructure,
    degrees_of_freedom,
    keyed_covariance,
    linearized_variance,
    make_projection,
    sampling_structure,
)

PROPORTION_COLUMNS = (
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "df",
    "deff",
    "n_eff",
    "n",
    "sum_weights",
    "ci_method",
    "note",
)
DIFFERENCE_COLUMNS = (
    "from",
    "to",
    "estimate_from",
    "estimate_to",
    "n_from",
    "n_to",
    "difference",
    "se",
    "ci_lower",
    "ci_upper",
    "df",
    "p_value",
    "note",
)


def _plain(code: Any) -> Any:
    """A numpy scalar as the Python value (codes appear in messages as 2, not np.int64(2))."""
    return code.item() if isinstance(code, np.generic) else code


# Variances of proportions below this are rounding noise around an exact 0 (SE < 1e-12;
# a real SE that small needs about 1e24 respondents): they are reported as 0.
VARIANCE_NOISE = 1e-24

# Largest (shares x rows) batch evaluated at once; larger batches go in chunks of shares.
MAX_BATCH = 1 << 21


def _share_index(n_shares: int, labels: pd.Index | None) -> np.ndarray:
    """Each output row's share: one block of `by` levels per share."""
    return np.repeat(np.arange(n_shares), 1 if labels is None else len(labels))


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Per-share row arrays as one (shares x rows) array (a view for one share: no copy)."""
    return rows[0][None, :] if len(rows) == 1 else np.stack(rows)


def _base_key(share: Share) -> tuple:
    """A hashable key of a share's denominator: variable, excluded codes, `where` (with its
    "in" / "not_in" conditions, so two bases that differ only in a `not_in` list differ)."""
    where = tuple(
        (var, None if inc is None else tuple(inc), None if exc is None else tuple(exc))
        for var, inc, exc in _where_conditions(share.where)
    )
    return share.variable, tuple(share.exclude or ()), where


def _share_key(share: Share) -> tuple:
    """A hashable key of everything that defines a share."""
    return *_base_key(share), tuple(share.success)


def _standard_error(variance: np.ndarray, empty: np.ndarray) -> np.ndarray:
    variance = np.where(np.abs(variance) < VARIANCE_NOISE, 0.0, variance)
    return np.sqrt(np.where(empty, np.nan, variance))


class CalibrationError(ValueError):
    """Calibration impossible (category without sample, unknown category) or not converged."""


@dataclass(frozen=True)
class CalibrationInfo:
    """How a calibrated design was obtained."""

    method: str
    iterations: int
    converged: bool
    max_abs_error: float


@dataclass(frozen=True)
class Share:
    """One proportion for `proportions`/`differences`: the share of `success` codes of
    `variable` among rows with a valid answer (not missing, not in `exclude`) in `where`."""

    variable: str
    success: Sequence[Any]
    exclude: Sequence[Any] | None = None
    where: Mapping[str, Sequence[Any]] | None = None


class SurveyDesign:
    """A survey design over a DataFrame (weights, strata, first-stage clusters, fpc).

    Domains. `where` restricts an estimate to rows meeting every condition, one per
    variable: a list of codes (the value is one of them), or a mapping with "in" and/or
    "not_in" lists, e.g. ``where={"wijk": {"not_in": [1, 2]}, "sex": [2]}`` (women
    outside wijk 1 and 2; R: ``!is.na(wijk) & !(wijk %in% c(1, 2)) & sex %in% 2``). A
    missing value never meets a condition. `by` is one column or a list of columns
    (``by=["wijk", "sex"]``: one row per combination that occurs, a column per variable).
    """

    def __init__(
        self,
        df: pd.DataFrame,
        weights: str | None = "w",
        strata: str | None = None,
        cluster: str | None = None,
        fpc: str | None = None,
        lonely_psu: str = "adjust",
    ) -> None:
        n = len(df)
        if weights is None:
            w = np.ones(n)
        else:
            w = pd.to_numeric(df[weights]).to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights '{weights}' must be finite, non-negative and not missing")
        column = lambda name: None if name is None else df[name]  # noqa: E731
        structure = sampling_structure(n, column(strata), column(cluster), column(fpc), lonely_psu)
        self._init(df, w, structure, None, None)

    def _init(
        self,
        df: pd.DataFrame,
        weights: np.ndarray,
        structure: SamplingStructure,
        projection: Projection | None,
        calibration: CalibrationInfo | None,
    ) -> None:
        self._data = df
        self._weights = weights
        self._weights.flags.writeable = False
        self._positive = None if np.all(weights > 0) else weights > 0
        self._structure = structure
        self._projection = projection
        self._calibration = calibration
        self._level_cache: dict[str | tuple[str, ...], tuple[pd.Index, np.ndarray]] = {}
        self._columns: dict[str, pd.Series] = {}
        self._row_cells: RowCells | None = None
        self._row_cells_known = False

    def _derive(self, weights: np.ndarray, projection: Projection, info: CalibrationInfo) -> SurveyDesign:
        new = object.__new__(SurveyDesign)
        new._init(self._data, weights, self._structure, projection, info)
        return new

    # -- accessors -------------------------------------------------------------------

    @property
    def data(self) -> pd.DataFrame:
        return self._data

    @property
    def weights(self) -> np.ndarray:
        """The (calibrated) weights, read-only, in row order."""
        return self._weights

    @property
    def n(self) -> int:
        return len(self._data)

    @property
    def calibration(self) -> CalibrationInfo | None:
        return self._calibration

    @property
    def is_calibrated(self) -> bool:
        return self._projection is not None

    def degf(self) -> float:
        """R's degf(): PSUs minus strata among rows with positive weight."""
        out = np.zeros(self.n, dtype=np.int64)
        return float(degrees_of_freedom(out, 1, self._positive, self._structure)[0])

    def __repr__(self) -> str:
        st = self._structure
        kind = self._calibration.method if self._calibration else "uncalibrated"
        return f"SurveyDesign(n={self.n}, strata={st.n_strata}, psu={st.n_psu}, {kind})"

    # -- calibration -----------------------------------------------------------------

    def _margin_codes(self, variables: Sequence[str], totals: Mapping[Any, float]) -> tuple[np.ndarray, np.ndarray]:
        """Category index per row and population totals, with named errors.

        One variable: keys are codes. Several: keys are tuples of codes, one per variable.
        """
        label = "*".join(f"'{v}'" for v in variables)
        for v in variables:
            if self._data[v].isna().any():
                raise CalibrationError(f"calibration variable '{v}' has missing values")
        keys = list(totals.keys())
        if len(variables) == 1:
            values = self._data[variables[0]].to_numpy()
            codes = pd.Index(keys).get_indexer(values)
        else:
            keys = [tuple(k) for k in keys]
            values = pd.MultiIndex.from_arrays([self._data[v].to_numpy() for v in variables])
            codes = pd.MultiIndex.from_tuples(keys).get_indexer(values)
        if np.any(codes < 0):
            bad = values[np.flatnonzero(codes < 0)[0]]
            bad = tuple(map(_plain, bad)) if isinstance(bad, tuple) else _plain(bad)
            raise CalibrationError(f"category {bad!r} of {label} occurs in the sample but not in the population totals")
        t = np.array([totals[k] for k in totals], dtype=np.float64)
        sample = np.bincount(codes, weights=self._weights, minlength=len(keys))
        for k in np.flatnonzero((sample == 0) & (t > 0)):
            raise CalibrationError(
                f"category {_plain(keys[k])!r} of {label} has a population total but no sample respondents"
            )
        for k in np.flatnonzero((sample > 0) & (t == 0)):
            raise CalibrationError(
                f"category {_plain(keys[k])!r} of {label} has sample respondents but population total 0"
            )
        return codes.astype(np.int64), t

    def _require_uncalibrated(self) -> None:
        if self.is_calibrated:
            raise CalibrationError("the design is already calibrated; calibrate the base design once")
        if np.any(self._weights <= 0):
            raise CalibrationError("calibration needs positive weights")

    def rake(
        self,
        margins: Mapping[str | tuple[str, ...], Mapping[Any, float]],
        max_iter: int = 100,
        tol: float | None = None,
        margin_tol: float = 1e-6,
        epsilon: float | None = None,
    ) -> SurveyDesign:
        """Rake to population margins; calibration-aware variance.

        A margin is `{variable: {code: total}}`, or over crossed variables
        `{(variable_a, variable_b): {(code_a, code_b): total}}` (e.g. age x sex; R:
        ``rake(d, list(~age + sex, ~wijk), list(pop_age_sex, pop_wijk))``); a row whose
        combination the totals lack is an error, never merged into another cell.
        Sweeps the margins in the given order until no joint cell changes by the
        stopping threshold or more, set by one of (not both):

        - `tol` (default 1e-10): a share of the sum of weights, 0 < tol < 1;
        - `epsilon`: R's ``control = list(epsilon = epsilon)`` as R reads it: below 1 a
          share of the sum of weights (as `tol`), 1 or more an absolute number of
          weighted cases (R's default is 1, with maxit = 10).

        Succeeds only when every category's weighted total is within `margin_tol`
        (relative) of its population total; otherwise raises CalibrationError naming the
        category and why (infeasible margins, not converged). R's rake() returns a
        design that misses infeasible margins without a warning.
        """
        self._require_uncalibrated()
        if not margins:
            raise CalibrationError("rake needs at least one margin")
        threshold = _raking_threshold(tol, epsilon, float(self._weights.sum()))
        coded = [self._margin_codes(_margin_variables(var), totals) for var, totals in margins.items()]
        codes = [c for c, _ in coded]
        totals = [t for _, t in coded]
        sizes = [t.size for t in totals]
        cells = cal.joint_cells(codes, sizes)
        cell_base = np.bincount(cells.index, weights=self._weights, minlength=cells.n_cells)
        raking = cal.rake_cells(cell_base, cells.codes, totals, max_iter=max_iter, epsilon=threshold)
        deviation = cal.largest_margin_deviation(cell_base * raking.factor, cells.codes, totals)
        if deviation.relative > margin_tol:
            variable = list(margins)[deviation.margin]
            category = list(margins[variable])[deviation.category]
            category = tuple(map(_plain, category)) if isinstance(category, tuple) else _plain(category)
            variable = "*".join(_margin_variables(variable))
            cause = cal.raking_shortfall(self._weights, list(zip(codes, totals)), converged=raking.converged)
            raise CalibrationError(
                f"margin '{variable}' category {category!r} not met: population total {deviation.target:.6g}, "
                f"weighted total {deviation.achieved:.6g} after {raking.sweeps} sweeps; "
                f"{cal.SHORTFALL_TEXT[cause]}"
            )
        weights = self._weights * raking.factor[cells.index]
        error = cal.margin_errors(cell_base * raking.factor, cells.codes, totals)
        projection = make_projection(
            "rake",
            cells.index,
            self._weights,
            cells.n_cells,
            raking.stage_factors,
            cells.codes,
            tuple(sizes),
            self._structure,
        )
        info = CalibrationInfo("rake", raking.sweeps, raking.converged, error)
        return self._derive(weights, projection, info)

    def poststratify(self, variables: str | Sequence[str], totals: Mapping[Any, float]) -> SurveyDesign:
        """Post-stratify to cell totals: `{code: total}`, or `{(code_a, code_b): total}` for several variables."""
        self._require_uncalibrated()
        names = [variables] if isinstance(variables, str) else list(variables)
        cell, t = self._margin_codes(names, totals)
        sample = np.bincount(cell, weights=self._weights, minlength=t.size)
        g = np.divide(t, sample, out=np.ones(t.size), where=sample > 0)
        weights = self._weights * g[cell]
        projection = make_projection(
            "poststratify",
            cell,
            self._weights,
            t.size,
            (g,),
            (np.arange(t.size),),
            (t.size,),
            self._structure,
        )
        return self._derive(weights, projection, CalibrationInfo("poststratify", 1, True, 0.0))

    # -- domains ---------------------------------------------------------------------

    def _column(self, name: str) -> pd.Series:
        """A data column (cached: the design's data do not change)."""
        if name not in self._columns:
            self._columns[name] = self._data[name]
        return self._columns[name]

    def _in_codes(self, variable: str, codes: Sequence[Any]) -> np.ndarray:
        """Rows whose value is one of `codes` (missing values never match)."""
        column = self._column(variable)
        codes = list(codes)
        numeric = all(isinstance(c, (int, float, np.integer, np.floating)) for c in codes)
        if numeric and column.dtype.kind in "fiu" and len(codes) <= 8:
            values = column.to_numpy()
            mask = np.zeros(values.shape[0], dtype=bool)
            for c in codes:
                mask |= values == c
            return mask
        return column.isin(codes).to_numpy(dtype=bool, na_value=False)

    def _base_mask(
        self, variable: str, exclude: Sequence[Any] | None, where: Mapping[str, Sequence[Any]] | None
    ) -> np.ndarray:
        """Rows in the denominator: answered, not excluded, inside `where`."""
        column = self._column(variable)
        if column.dtype.kind == "f":
            mask = ~np.isnan(column.to_numpy())
        else:
            mask = column.notna().to_numpy(dtype=bool, copy=True)
        if exclude:
            mask &= ~self._in_codes(variable, exclude)
        if where:
            mask &= self._where_mask(where)
        return mask

    def _where_mask(self, where: Mapping[str, Any] | None) -> np.ndarray:
        """Rows inside `where` (see `_where_conditions`): every condition holds."""
        mask = np.ones(self.n, dtype=bool)
        for var, included, excluded in _where_conditions(where):
            if included is not None:
                mask &= self._in_codes(var, included)
            if excluded is not None:
                column = self._column(var)
                mask &= column.notna().to_numpy(dtype=bool) & ~self._in_codes(var, excluded)
        return mask

    def _shared_base_mask(self, share: Share, known: dict) -> np.ndarray:
        """`_base_mask` of a share, computed once per distinct base in `known` (e.g. all
        answer codes of an item); returns a fresh copy."""
        key = _base_key(share)
        if key not in known:
            known[key] = self._base_mask(share.variable, share.exclude, share.where)
        return known[key].copy()

    def _levels(self, by: str | Sequence[str]) -> tuple[pd.Index, np.ndarray]:
        """Sorted levels of `by` (a categorical's categories), named after `by`, and each row's level (-1: missing).

        Several columns: their combinations that occur (a MultiIndex, sorted), -1 where any
        column is missing."""
        if not isinstance(by, str):
            return self._crossed_levels(tuple(by))
        if by not in self._level_cache:
            column = self._column(by)
            if isinstance(column.dtype, pd.CategoricalDtype):
                levels = pd.Index(column.cat.categories)
                codes = column.cat.codes.to_numpy().astype(np.int64)
            else:
                codes, levels = pd.factorize(column, sort=True, use_na_sentinel=True)
                codes = codes.astype(np.int64)
            self._level_cache[by] = (pd.Index(levels, name=by), codes)
        return self._level_cache[by]

    def _share_domain(
        self, share: Share, offset: int, level: np.ndarray | None, group: np.ndarray | None, bases: dict
    ) -> tuple[np.ndarray, np.ndarray]:
        """One share's domain per row, `offset` + level (x 2 + group), -1 outside, and its 0/1 value."""
        mask = self._shared_base_mask(share, bases)
        domain = offset if level is None else offset + level
        if level is not None:
            mask &= level >= 0
        if group is not None:
            mask &= group >= 0
            domain = domain * 2 + group
        return np.where(mask, domain, -1), self._in_codes(share.variable, share.success)

    def _crossed_levels(self, names: tuple[str, ...]) -> tuple[pd.Index, np.ndarray]:
        """`_levels` of several columns: each row's combination as one code, mixed radix
        over the columns' level positions (each below its column's level count, so two
        combinations never share a code)."""
        if not names or len(set(names)) != len(names):
            raise ValueError(f"by must name distinct columns, got {list(names)!r}")
        if len(names) == 1:
            return self._levels(names[0])
        if names not in self._level_cache:
            parts = [self._levels(name) for name in names]
            sizes = [len(levels) for levels, _ in parts]
            if np.prod(sizes, dtype=object) >= 2**62:
                raise ValueError(f"too many combinations of {', '.join(names)} for one code")
            key = np.zeros(self.n, dtype=np.int64)
            missing = np.zeros(self.n, dtype=bool)
            for (_, codes), size in zip(parts, sizes):
                missing |= codes < 0
                key = key * np.int64(size) + np.maximum(codes, 0)
            present, inverse = np.unique(key[~missing], return_inverse=True)
            columns = []
            for position, ((levels, _), size) in enumerate(zip(parts, sizes)):
                stride = np.int64(np.prod(sizes[position + 1 :], dtype=np.int64))
                columns.append(levels[(present // stride) % np.int64(size)])
            codes = np.full(self.n, -1, dtype=np.int64)
            codes[~missing] = inverse
            self._level_cache[names] = (pd.MultiIndex.from_arrays(columns, names=list(names)), codes)
        return self._level_cache[names]

    def _domains(
        self, shares: Sequence[Share], by: str | Sequence[str] | None, group: np.ndarray | None = None
    ) -> tuple[Domains, pd.Index | None]:
        """Domains of every share x `by` level (x `group`: 0, 1, or -1 for none), one row per share.

        Domain of share q at level l: q * levels + l; with groups, (q * levels + l) * 2 + group.
        """
        labels, level = (None, None) if by is None else self._levels(by)
        k = 1 if labels is None else len(labels)
        index, y = [], []
        bases: dict[tuple, np.ndarray] = {}
        for q, share in enumerate(shares):
            domain, value = self._share_domain(share, q * k, level, group, bases)
            index.append(domain)
            y.append(value)
        n_groups = 1 if group is None else 2
        return Domains(index=_stack(index), y=_stack(y), n_domains=len(shares) * k * n_groups), labels

    def _n_rows(self, domain_n: np.ndarray) -> np.ndarray:
        """R's nrow() of a domain's subset design: all rows once calibrated, else the domain's."""
        return np.full(domain_n.shape, float(self.n)) if self.is_calibrated else domain_n.astype(np.float64)

    # -- estimators ------------------------------------------------------------------

    def _binary_contrasts(self, domains: Domains, contrasts: Contrasts) -> BinaryDomainResult:
        """Means of 0/1 `y` per domain; variance and df of their contrasts per output (per row)."""
        st = self._structure
        means = domain_means(domains, self._weights, self._positive)
        a = mean_influence(domains, self._weights, means, contrasts.coefficient)
        out = np.concatenate([[-1], contrasts.output])[domains.index + 1]
        variance = linearized_variance(a, out, contrasts.n_out, st, self._projection)
        df = degrees_of_freedom(out, contrasts.n_out, self._positive, st)
        return BinaryDomainResult(means=means, variance=variance, df=df)

    def _table_cells(self, domains_per_share: int) -> RowCells | None:
        """The design's (stratum, cell) keys when the table path applies (no clusters or PSUs of
        at most two rows, small tables)."""
        if not self._row_cells_known:
            self._row_cells = row_cells(self._structure, self._weights, self._projection, self._positive)
            self._row_cells_known = True
        cells = self._row_cells
        return cells if cells is not None and fits(cells, domains_per_share, self.n) else None

    def _fit(
        self, shares: Sequence[Share], by: str | Sequence[str] | None, group: np.ndarray | None = None
    ) -> tuple[BinaryDomainResult, pd.Index | None]:
        """Per share x `by` level: the mean, or with `group` the change from group 0 to
        group 1, with variance and df. Without clusters: tables built share by share;
        otherwise per-row arrays for chunks of at most MAX_BATCH (share x row) cells."""
        labels, level = (None, None) if by is None else self._levels(by)
        per_share = (1 if labels is None else len(labels)) * (1 if group is None else 2)

        def contrasts(n_shares: int) -> Contrasts:
            k = n_shares * per_share
            return Contrasts.identity(k) if group is None else Contrasts.changes(k // 2)

        cells = self._table_cells(per_share)
        if cells is not None:
            fit = self._fit_tables(shares, cells, labels, level, group, per_share, contrasts)
            if fit is not None:
                return fit, labels
        parts = []
        per_chunk = max(1, MAX_BATCH // max(self.n, 1))
        for start in range(0, len(shares), per_chunk):
            batch = shares[start : start + per_chunk]
            domains, _ = self._domains(batch, by, group)
            parts.append(self._binary_contrasts(domains, contrasts(len(batch))))
        return concatenate(parts), labels

    def _fit_tables(
        self,
        shares: Sequence[Share],
        cells: RowCells,
        labels: pd.Index | None,
        level: np.ndarray | None,
        group: np.ndarray | None,
        per_share: int,
        contrasts: Callable[[int], Contrasts],
    ) -> BinaryDomainResult | None:
        """`_fit` by tables: each share's tables in one pass over the rows. Where the breakdown
        and group are constant within the calibration cells (calibration variables), a share's
        overall tables (kept on the design for later calls) are split by cell instead; PSUs of
        two rows need that (None otherwise: the caller takes the per-row path). `per_share`:
        domains per share; `contrasts(n_shares)`: the outputs of that many shares;
        `labels`, `level`: the breakdown's levels and each row's level (`_levels`), or None."""
        slot_domain = _slot_domains(cells, labels, level, group)
        if slot_domain is None and cells.pairs is not None:
            return None
        bases: dict[tuple, np.ndarray] = {}
        by_answers = {} if slot_domain is None else self._answer_tables(shares, cells, bases)

        def table(share: Share) -> DomainTables:
            if slot_domain is None:
                domain, y = self._share_domain(share, 0, level, group, bases)
                return domain_tables(cells, domain, y, per_share, self._positive)
            key = _share_key(share)
            if key in by_answers:
                return kept_table(cells, key, lambda: by_answers[key])
            return kept_table(
                cells,
                key,
                lambda: domain_tables(cells, *self._share_domain(share, 0, None, None, bases), 1, self._positive),
            )

        parts = []
        chunk = shares_per_chunk(cells, per_share)
        for start in range(0, len(shares), chunk):
            batch = shares[start : start + chunk]
            tables = stack_tables([table(share) for share in batch])
            outputs = contrasts(len(batch))
            if slot_domain is None:
                parts.append(binary_domain_contrasts(tables, outputs, cells, self._structure, self._projection))
            else:
                parts.append(
                    slot_domain_contrasts(
                        tables, slot_domain, per_share, outputs, cells, self._structure, self._projection
                    )
                )
        return concatenate(parts)

    def _answer_tables(self, shares: Sequence[Share], cells: RowCells, bases: dict) -> dict[tuple, DomainTables]:
        """One-domain tables of the shares not yet kept that share a base with another (every
        answer of an item: `answer_tables`), by share key. Numeric columns and codes, no PSU pairs."""
        groups: dict[tuple, list[Share]] = {}
        for share in shares:
            if _share_key(share) not in cells.kept:
                groups.setdefault(_base_key(share), []).append(share)
        out: dict[tuple, DomainTables] = {}
        for group in groups.values():
            column = self._column(group[0].variable)
            numeric = all(isinstance(c, (int, float, np.integer, np.floating)) for s in group for c in s.success)
            if len(group) < 2 or cells.pairs is not None or column.dtype.kind != "f" or not numeric:
                continue
            base = self._shared_base_mask(group[0], bases)
            found = answer_tables(cells, base, column.to_numpy(), [s.success for s in group], self._positive)
            out.update(zip((_share_key(s) for s in group), found, strict=True))
        return out

    def proportion(
        self,
        variable: str,
        success: Sequence[Any],
        exclude: Sequence[Any] | None = None,
        where: Mapping[str, Sequence[Any]] | None = None,
        by: str | Sequence[str] | None = None,
        ci: str = "logit",
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Weighted share of `success` codes among the rows with a valid answer in the domain.

        Rows where `variable` is missing or in `exclude`, or outside `where`, are not in
        the denominator. One row per `by` level (sorted; a categorical's categories, so
        empty levels appear too). Columns:

        - `by` (if given), `estimate`, `se` (linearisation, calibration-aware);
        - `ci_lower`, `ci_upper`, `ci_method`: `ci` in logit | beta | wilson | wald
          (core.intervals), at `level`;
        - `df`: R's degf() of the domain's subset design;
        - `deff`: R's svymean(deff = TRUE): se^2 over the SRS-without-replacement variance
          p (1 - p) (W - n) / (W (n - 1)); R's deff = "replace" where W <= n (noted);
          NaN where p is 0 or 1 (noted);
        - `n_eff` = p (1 - p) / se^2 (n where p is 0 or 1; inf if se is 0);
        - `n` (rows, unweighted base), `sum_weights` (weighted base);
        - `note`: empty, or why a value is missing or was computed differently.
        """
        share = Share(variable, success, exclude, where)
        return self.proportions([share], by=by, ci=ci, level=level).drop(columns="share")

    def proportions(
        self, shares: Sequence[Share], by: str | Sequence[str] | None = None, ci: str = "logit", level: float = 0.95
    ) -> pd.DataFrame:
        """Several proportions in one vectorised pass (e.g. every answer code of an item).

        Equals one `proportion` call per share: the columns of `proportion`, after a
        `share` column (position in `shares`), one block of `by` levels per share.
        """
        shares = list(shares)
        if not shares:
            raise ValueError("proportions needs at least one share")
        fit, labels = self._fit(shares, by)
        means, var, df = fit.means, fit.variance, fit.df
        p = means.estimate
        empty = means.n == 0
        se = _standard_error(var, empty)
        boundary = (p == 0) | (p == 1)
        vsrs, replaced = srs_variance(p * (1 - p), means.sum_weights, means.n_positive)
        with np.errstate(invalid="ignore", divide="ignore"):
            deff = np.where(boundary, np.nan, se**2 / vsrs)
            n_eff = np.where(boundary, means.n, p * (1 - p) / se**2)
        intervals = proportion_intervals(ci, p, se, df, means.n, self._n_rows(means.n), level)
        note = append_note(
            intervals.note, replaced & ~empty & ~boundary, "deff with-replacement: weights sum to at most n"
        )
        note = append_note(note, boundary & ~empty, "se 0, deff undefined, n_eff = n")
        out = pd.DataFrame(
            {
                "share": _share_index(len(shares), labels),
                "estimate": p,
                "se": se,
                "ci_lower": intervals.lower,
                "ci_upper": intervals.upper,
                "df": np.where(empty, np.nan, df),
                "deff": deff,
                "n_eff": n_eff,
                "n": means.n.astype(np.int64),
                "sum_weights": means.sum_weights,
                "ci_method": intervals.method.astype(str),
                "note": note.astype(str),
            }
        )
        if labels is not None:
            _insert_by(out, 1, labels, len(shares))
        return out

    def difference(
        self,
        variable: str,
        success: Sequence[Any],
        exclude: Sequence[Any] | None = None,
        where: Mapping[str, Sequence[Any]] | None = None,
        between: tuple[str, Any, Any] = ("wave", 1, 2),
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Change p(to) - p(from) of a proportion between two groups of the same design.

        `between = (column, from, to)`, e.g. two waves of a stacked panel with the
        respondent as cluster, so the covariance of the two estimates is included.
        Interval: difference +/- t(df) se; two-sided p-value from t(df); df is R's
        degf() of the design restricted to the rows in either group's domain. Columns:
        [by], from, to, estimate_from, estimate_to, n_from, n_to, difference, se,
        ci_lower, ci_upper, df, p_value, note. Edge cases: a group without rows gives
        NaN and "empty domain in one of the groups"; df < 1 gives no interval or test;
        se 0 gives p_value 1 if the difference is 0, else 0 ("zero variance").
        """
        share = Share(variable, success, exclude, where)
        return self.differences([share], between=between, by=by, level=level).drop(columns="share")

    def differences(
        self,
        shares: Sequence[Share],
        between: tuple[str, Any, Any] = ("wave", 1, 2),
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Several changes in one vectorised pass: one `difference` call per share, with
        a `share` column (position in `shares`) first."""
        shares = list(shares)
        if not shares:
            raise ValueError("differences needs at least one share")
        column, first, second = between
        group = np.full(self.n, -1, dtype=np.int64)
        group[self._in_codes(column, [first])] = 0
        group[self._in_codes(column, [second])] = 1
        fit, labels = self._fit(shares, by, group)
        means, var, df = fit.means, fit.variance, fit.df
        k = fit.variance.size
        p = means.estimate.reshape(k, 2)
        n = means.n.reshape(k, 2)
        diff = p[:, 1] - p[:, 0]
        empty = (n == 0).any(axis=1)
        se = _standard_error(var, empty)
        half = t_quantile(level, df) * se
        with np.errstate(invalid="ignore", divide="ignore"):
            t_stat = diff / se
        p_value = 2 * t_sf(np.abs(t_stat), df)
        zero_se = ~empty & (se == 0)
        p_value = np.where(zero_se, np.where(diff == 0, 1.0, 0.0), p_value)
        no_df = ~empty & ~(df >= 1)
        note = np.full(k, "", dtype=object)
        note = np.where(empty, "empty domain in one of the groups", note)
        note = np.where(zero_se, "zero variance", note)
        note = np.where(no_df, "df < 1: no interval or test", note)
        result = pd.DataFrame(
            {
                "share": _share_index(len(shares), labels),
                "from": [first] * k,
                "to": [second] * k,
                "estimate_from": p[:, 0],
                "estimate_to": p[:, 1],
                "n_from": n[:, 0].astype(np.int64),
                "n_to": n[:, 1].astype(np.int64),
                "difference": diff,
                "se": se,
                "ci_lower": np.where(no_df, np.nan, diff - half),
                "ci_upper": np.where(no_df, np.nan, diff + half),
                "df": np.where(empty, np.nan, df),
                "p_value": np.where(no_df, np.nan, p_value),
                "note": note.astype(str),
            }
        )
        if labels is not None:
            _insert_by(result, 1, labels, len(shares))
        return result

    # -- means, totals and tests of association -------------------------------------

    def _numeric(self, variable: str) -> np.ndarray:
        """A numeric column as float64 (NaN: missing); a named error for text or infinities."""
        column = self._column(variable)
        if column.dtype.kind not in "biuf":
            raise ValueError(f"variable '{variable}' is not numeric")
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.any(np.isinf(values)):
            raise ValueError(f"variable '{variable}' has infinite values")
        return values

    def _value_domains(
        self, variable: str, where: Mapping[str, Sequence[Any]] | None, by: str | Sequence[str] | None
    ) -> tuple[Domains, pd.Index | None]:
        """One domain per `by` level: rows inside `where` with a non-missing `variable`."""
        y = self._numeric(variable)
        mask = self._base_mask(variable, None, where)
        labels: pd.Index | None = None
        if by is None:
            index, k = np.where(mask, 0, -1), 1
        else:
            labels, level = self._levels(by)
            index, k = np.where(mask & (level >= 0), level, -1), len(labels)
        y = np.where(mask, y, 0.0)
        return Domains(index=index[None, :], y=y[None, :], n_domains=k), labels

    def _mean_or_total(
        self,
        statistic: str,
        variable: str,
        where: Mapping[str, Sequence[Any]] | None,
        by: str | Sequence[str] | None,
        level: float,
    ) -> pd.DataFrame:
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        domains, labels = self._value_domains(variable, where, by)
        k, out = domains.n_domains, domains.index
        means = domain_means(domains, self._weights, self._positive)
        if statistic == "mean":
            a = mean_influence(domains, self._weights, means, np.ones(k))
            estimate = means.estimate
        else:
            a = total_influence(domains, self._weights)
            estimate = np.bincount((out + 1).ravel(), weights=a.ravel(), minlength=k + 1)[1:]
        st = self._structure
        variance = linearized_variance(a, out, k, st, self._projection)
        df = degrees_of_freedom(out, k, self._positive, st)
        empty = means.n == 0
        se = _standard_error(variance, empty)
        vsrs, replaced = srs_variance(domain_spread(domains, self._weights, means), means.sum_weights, means.n_positive)
        if statistic == "total":
            vsrs = vsrs * means.sum_weights**2
        with np.errstate(invalid="ignore", divide="ignore"):
            deff = se**2 / vsrs
        half = t_quantile(level, df) * se
        no_interval = ~empty & (~(df >= 1) | ~np.isfinite(se))
        note = np.full(k, "", dtype=object)
        note = append_note(note, replaced & ~empty, "deff with-replacement: weights sum to at most n")
        note = append_note(note, ~empty & ~np.isfinite(deff), "deff undefined: no variation in the domain")
        note = append_note(note, ~empty & ~(df >= 1), "df < 1: no interval")
        note = append_note(
            note,
            ~empty & (df >= 1) & ~np.isfinite(se),
            "variance not estimable: no stratum of the domain has two PSUs",
        )
        note = append_note(note, empty, "empty domain")
        out_frame = pd.DataFrame(
            {
                "estimate": np.where(empty, np.nan, estimate),
                "se": se,
                "ci_lower": np.where(no_interval | empty, np.nan, estimate - half),
                "ci_upper": np.where(no_interval | empty, np.nan, estimate + half),
                "df": np.where(empty, np.nan, df),
                "deff": np.where(np.isfinite(deff), deff, np.nan),
                "n": means.n.astype(np.int64),
                "sum_weights": means.sum_weights,
                "note": note.astype(str),
            }
        )
        if labels is not None:
            _insert_by(out_frame, 0, labels)
            out_frame.index = labels.set_names([None] * labels.nlevels)  # one row per level, indexed by it
        return out_frame

    def mean(
        self,
        variable: str,
        where: Mapping[str, Sequence[Any]] | None = None,
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Weighted mean of a numeric `variable` per domain (`where`, one row per `by` level).

        Rows where `variable` is missing are left out of the domain (R's na.rm = TRUE);
        the domain stays on the full design. With `by` the index is the level (also kept as the
        `by` column, as in `proportion`). Columns: [by], `estimate`, `se`
        (linearisation, calibration-aware), `ci_lower`/`ci_upper` (estimate +/- t(df) se),
        `df` (R's degf() of the domain), `deff` (R's svymean(deff = TRUE): se^2 over
        s^2 (W - n) / (W n), s^2 = svyvar; deff = "replace" s^2 / n where W <= n, noted),
        `n` (rows), `sum_weights`, `note` (why a value is missing or computed differently).
        """
        return self._mean_or_total("mean", variable, where, by, level)

    def total(
        self,
        variable: str,
        where: Mapping[str, Sequence[Any]] | None = None,
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Weighted total of a numeric `variable` per domain; as `mean`, with R's
        svytotal(deff = TRUE) denominator W^2 s^2 (W - n) / (W n)."""
        return self._mean_or_total("total", variable, where, by, level)

    def quantile(
        self,
        variable: str,
        probs: float | Sequence[float],
        where: Mapping[str, Sequence[Any]] | None = None,
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Weighted quantiles (e.g. the median, probs=0.5) of a numeric `variable` per domain, as R's
        ``svyquantile(..., interval.type = "mean", qrule = "math")`` on the domain.

        The quantile is the smallest value whose weighted cumulative share reaches p (`qrule_math`).
        Its interval is Woodruff's: the weighted share of the domain at or below the quantile gets
        its interval share +/- t(df) se (linearisation, calibration-aware, the domain's df as `mean`);
        the quantiles at its bounds are the interval (NaN where a bound falls outside [0, 1]), and
        se = (ci_upper - ci_lower) / (2 t(df)). Rows with a missing `variable` leave the domain.
        One row per `by` level and p, in that order; columns [by], `prob`, `estimate`, `se`,
        `ci_lower`, `ci_upper`, `df`, `n`, `sum_weights`, `note`.
        """
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        ps = np.atleast_1d(np.asarray(probs, dtype=np.float64))
        if ps.ndim != 1 or ps.size == 0 or np.any(~(ps >= 0) | ~(ps <= 1)):
            raise ValueError("probs must be one or more numbers between 0 and 1")
        domains, labels = self._value_domains(variable, where, by)
        k, out, st = domains.n_domains, domains.index, self._structure
        values, inside = self._numeric(variable), out[0]
        rows = [np.flatnonzero(inside == d) for d in range(k)]
        df = degrees_of_freedom(out, k, self._positive, st)
        t = t_quantile(level, df)
        base = domain_means(domains, self._weights, self._positive)
        empty = base.n == 0
        parts = []
        for p in ps:
            quantiles = np.array([_qrule_math(values[r], self._weights[r], p) for r in rows])
            below = Domains(index=out, y=(inside >= 0) & (values <= quantiles[inside])[None, :], n_domains=k)
            share = domain_means(below, self._weights, self._positive)
            a = mean_influence(below, self._weights, share, np.ones(k))
            se_share = _standard_error(linearized_variance(a, out, k, st, self._projection), empty)
            bounds = [share.estimate - t * se_share, share.estimate + t * se_share]
            lower, upper = (
                np.array(
                    [
                        _qrule_math(values[r], self._weights[r], b) if 0 <= b <= 1 else np.nan
                        for r, b in zip(rows, bound)
                    ]
                )
                for bound in bounds
            )
            note = np.full(k, "", dtype=object)
            note = append_note(note, ~empty & (np.isnan(lower) | np.isnan(upper)), "interval bound outside [0, 1]")
            note = append_note(note, empty, "empty domain")
            parts.append(
                pd.DataFrame(
                    {
                        "prob": np.full(k, p),
                        "estimate": quantiles,
                        "se": (upper - lower) / (2 * t),
                        "ci_lower": lower,
                        "ci_upper": upper,
                        "df": np.where(empty, np.nan, df),
                        "n": base.n.astype(np.int64),
                        "sum_weights": base.sum_weights,
                        "note": note.astype(str),
                    }
                )
            )
        frame = pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)  # level-major
        if labels is not None:
            _insert_by(frame, 0, labels.repeat(ps.size))
        return frame

    def chisq(
        self,
        row: str,
        col: str,
        where: Mapping[str, Sequence[Any]] | None = None,
        statistic: str = "F",
    ) -> dict[str, float]:
        """Rao-Scott test of independence of `row` and `col` in the domain `where`, as R's
        svychisq(~row + col, subset(d, where), statistic = "F" | "Chisq").

        Rows with either variable missing are left out (na.rm = TRUE). The table has the
        levels with a positive weighted total in the domain (R's table would carry an
        empty level from other rows of the design and give NaN). As R: the Pearson X^2
        is that of the weighted table scaled to N, R's nrow() of the domain's design
        (all rows once calibrated, else the rows in `where`, missing values included);
        Delta is the design-effect matrix of the interaction contrasts and nu the
        design's PSUs minus strata (of those same rows, whatever their weight).

        - "F" (second-order): statistic = X^2 / tr(Delta), ndf = tr(Delta)^2 / tr(Delta^2),
          ddf = ndf nu, p_value from F(ndf, ddf).
        - "Chisq" (first-order): statistic = X^2 / mean(diag(Delta)), df = (rows - 1)
          (cols - 1), p_value from chi^2(df). R reports the unadjusted X^2 as its
          statistic (here `pearson`) and this statistic's p-value.

        Both also give `pearson` (X^2) and `n` (rows in the table).
        """
        if statistic not in ("F", "Chisq"):
            raise ValueError(f"statistic must be 'F' or 'Chisq', got {statistic!r}")
        in_where = self._where_mask(where)
        inside = in_where & self._base_mask(row, None, None) & self._base_mask(col, None, None)
        codes = []
        for name in (row, col):
            _, level = self._levels(name)
            present = np.bincount(level[inside], weights=self._weights[inside], minlength=level.max() + 1) > 0
            if present.sum() < 2:
                raise ValueError(f"chisq needs two levels of '{name}' with positive weight in the domain")
            codes.append(np.where(inside, (np.cumsum(present) - 1)[level], -1))
        n_rows, n_cols = int(codes[0].max()) + 1, int(codes[1].max()) + 1
        cell = np.where(inside, codes[0] + n_rows * codes[1], -1)
        w = np.where(inside, self._weights, 0.0)
        shares = np.bincount(cell[inside], weights=w[inside], minlength=n_rows * n_cols)
        shares = shares / shares.sum()
        table_rows = self.n if self.is_calibrated else int(in_where.sum())
        nu = float(degrees_of_freedom(np.where(self.is_calibrated | in_where, 0, -1), 1, None, self._structure)[0])
        if nu < 1:
            raise ValueError("chisq needs design degrees of freedom (PSUs minus strata) of at least 1")
        expected = np.outer(shares.reshape(n_cols, n_rows).sum(axis=0), shares.reshape(n_cols, n_rows).sum(axis=1))
        pearson = float(table_rows * np.sum((shares - expected.ravel(order="F")) ** 2 / expected.ravel(order="F")))
        # Interaction contrasts: the row x col indicators orthogonalised against the main effects.
        r, c = np.arange(n_rows * n_cols) % n_rows, np.arange(n_rows * n_cols) // n_rows
        main = np.column_stack(
            [np.ones(r.size)] + [r == i for i in range(1, n_rows)] + [c == j for j in range(1, n_cols)]
        ).astype(np.float64)
        interaction = np.column_stack([(r == i) & (c == j) for j in range(1, n_cols) for i in range(1, n_rows)]).astype(
            np.float64
        )
        contrasts = interaction - main @ np.linalg.lstsq(main, interaction, rcond=None)[0]
        inverse_share = np.divide(1.0, shares, out=np.zeros_like(shares), where=shares > 0)
        scaled = contrasts.T * inverse_share  # (contrasts x cells): C' D^-1
        # Delta = A^-1 B with A = C' D^-1 C / N and B = cov(C' D^-1 p): whitened with
        # A = Q L Q', it is similar to M = cov(L^-1/2 Q' C' D^-1 p), so tr(Delta) = tr(M)
        # and tr(Delta^2) = |M|_F^2.
        eigenvalues, eigenvectors = np.linalg.eigh(scaled @ contrasts / table_rows)
        whiten = (eigenvectors / np.sqrt(eigenvalues)).T @ scaled
        # Influence of the whitened contrasts: (whiten[:, cell] - whiten @ shares) * w / sum(w), a
        # function of the row's cell times its weight (`keyed_covariance` needs no rows x contrasts array).
        g = whiten - (whiten @ shares)[:, None]
        m = keyed_covariance(w / float(w.sum()), np.maximum(cell, 0), g, inside, self._structure, self._projection)
        trace, trace_sq = float(np.trace(m)), float(np.sum(m * m))
        df = (n_rows - 1) * (n_cols - 1)
        if statistic == "F":
            f_stat = pearson / trace
            ndf = trace**2 / trace_sq
            return {
                "statistic": f_stat,
                "ndf": ndf,
                "ddf": ndf * nu,
                "p_value": float(special.fdtrc(ndf, ndf * nu, f_stat)),
                "pearson": pearson,
                "n": int(inside.sum()),
            }
        chisq = pearson / (trace / df)
        return {
            "statistic": chisq,
            "df": float(df),
            "p_value": float(special.chdtrc(df, chisq)),
            "pearson": pearson,
            "n": int(inside.sum()),
        }

    # -- logistic regression ---------------------------------------------------------

    def _model_patterns(
        self, terms: Sequence[tuple[str, bool]], inside: np.ndarray
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """R's model matrix on the domain rows as its distinct rows (covariate patterns) and each
        domain row's pattern: an intercept, numeric columns as they are, text columns and
        factor(x) as treatment dummies (first sorted level is the reference)."""
        blocks, names = [], ["(Intercept)"]
        pattern = np.zeros(int(inside.sum()), dtype=np.int64)
        term_codes = []
        for name, as_factor in terms:
            column = self._column(name)
            numeric = not as_factor and column.dtype.kind in "biuf"
            values = self._numeric(name)[inside] if numeric else column.to_numpy()[inside]
            codes, levels = pd.factorize(values, sort=True)
            levels = np.asarray(levels)
            if numeric:
                blocks.append(levels.astype(np.float64)[:, None])
                names.append(name)
            else:
                blocks.append((levels[:, None] == levels[None, 1:]).astype(np.float64))
                label = f"factor({name})" if as_factor else name
                for level in levels[1:]:
                    shown = (
                        int(level) if isinstance(level, (float, np.floating)) and float(level).is_integer() else level
                    )
                    names.append(f"{label}{shown}")
            term_codes.append(codes)
            pattern = pd.factorize(pattern * np.int64(levels.size) + codes)[0]  # stays below the row count
        first = _first_rows(pattern)
        x = np.column_stack([np.ones(first.size)] + [block[codes[first]] for block, codes in zip(blocks, term_codes)])
        return x, names, pattern

    def logit(
        self,
        formula: str,
        success: Sequence[Any] | None = None,
        where: Mapping[str, Sequence[Any]] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Design-based logistic regression, as R's svyglm(formula, subset(d, where),
        family = quasibinomial()).

        `formula` is "y ~ a + factor(b) + c": numeric columns enter as they are, text
        columns and factor(...) as dummies against their first sorted level in the
        domain (R on a calibrated subset also keeps levels seen only outside the
        domain, as NA coefficients; a model matrix not of full rank is an error). The
        response is 0/1 (or a share in [0, 1]); with `success`, 1 where y is one of
        those codes and 0 for any other answer. Rows with a missing value in any model
        variable are left out of the domain. Coefficients: statsmodels' binomial GLM
        with the design weights, fitted on the weight sums per (covariate pattern,
        response) (the same likelihood as the rows: few rows for factor predictors);
        covariance: the linearised sandwich on the full design (calibration-aware, R's
        svy.varcoef; `keyed_covariance`); t on df = degf(domain) + 1 - p.
        One row per R term name: estimate, se, ci_lower, ci_upper, df, p_value.
        """
        from statsmodels.genmod import families
        from statsmodels.genmod.generalized_linear_model import GLM

        response, terms = _parse_formula(formula)
        inside = self._where_mask(where)
        for name in [response] + [name for name, _ in terms]:
            inside &= self._base_mask(name, None, None)
        if success is None:
            y = self._numeric(response)[inside]
            if np.any((y < 0) | (y > 1)):
                raise ValueError(f"response '{response}' must lie in [0, 1]; give `success` codes for a coded answer")
        else:
            y = self._in_codes(response, success)[inside].astype(np.float64)
        x, names, pattern = self._model_patterns(terms, inside)
        # The fit and its influence depend on a row through its pattern and response only: the
        # weighted sums per (pattern, response) group carry the likelihood (R fits the rows).
        y_codes, y_values = pd.factorize(y, sort=True)
        group = pd.factorize(pattern * np.int64(y_values.size) + y_codes)[0]
        first = _first_rows(group)
        w = self._weights[inside]
        group_w = np.bincount(group, weights=w, minlength=first.size)
        group_x, group_y = x[pattern[first]], np.asarray(y_values, dtype=np.float64)[y_codes[first]]
        if not np.any(group_w > 0) or np.linalg.matrix_rank(group_x[group_w > 0]) < group_x.shape[1]:
            raise ValueError(f"logit {formula!r}: the model matrix of the domain is empty or not of full rank")
        fit = GLM(group_y, group_x, family=families.Binomial(), var_weights=group_w / w.mean()).fit(
            tol=1e-14, rtol=1e-12, tol_criterion="params", maxiter=100
        )
        if not fit.converged:
            raise ValueError(f"logit {formula!r} did not converge")
        beta = np.asarray(fit.params)
        mu = special.expit(group_x @ beta)
        bread = np.linalg.inv(group_x.T @ (group_x * (group_w * mu * (1 - mu))[:, None]))
        # Row influence: bread x (y - mu) w, i.e. g[:, group] times the row's weight.
        g = (group_x * (group_y - mu)[:, None] @ bread).T
        key = np.zeros(self.n, dtype=np.int64)
        key[inside] = group
        cov = keyed_covariance(self._weights, key, g, inside, self._structure, self._projection)
        out = np.where(inside, 0, -1)
        df = float(degrees_of_freedom(out, 1, self._positive, self._structure)[0]) + 1 - len(names)
        se = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            p_value = 2 * t_sf(np.abs(beta / se), np.full(beta.size, df))
        half = t_quantile(level, np.full(beta.size, df)) * se
        return pd.DataFrame(
            {
                "estimate": beta,
                "se": se,
                "ci_lower": beta - half,
                "ci_upper": beta + half,
                "df": df,
                "p_value": p_value,
            },
            index=pd.Index(names, name="term"),
        )

    # -- comparisons between domains and over waves ---------------------------------

    def _outcome(
        self,
        variable: str,
        success: Sequence[Any] | None,
        exclude: Sequence[Any] | None,
        where: Mapping[str, Any] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows in the base (answered, not excluded, inside `where`) and the outcome: a
        boolean for `success` codes (as the proportion path takes it), else the numeric
        value (0 outside the base)."""
        if success is None and exclude:
            raise ValueError("exclude needs success codes (a coded answer); a numeric mean uses where")
        base = self._base_mask(variable, exclude, where)
        if success is None:
            y = np.where(base, self._numeric(variable), 0.0)
        else:
            y = self._in_codes(variable, success)
        return base, y

    def _linear_contrasts(self, domains: Domains, contrasts: Contrasts, binary: bool) -> BinaryDomainResult:
        """Domain means and the variance and df of their linear contrasts (any `y`); 0/1 `y`
        goes through the batched proportion path."""
        if binary:
            return self._binary_contrasts(domains, contrasts)
        means = domain_means(domains, self._weights, self._positive)
        a = mean_influence(domains, self._weights, means, contrasts.coefficient)
        out = np.concatenate([[-1], contrasts.output])[domains.index + 1]
        variance = linearized_variance(a, out, contrasts.n_out, self._structure, self._projection)
        df = degrees_of_freedom(out, contrasts.n_out, self._positive, self._structure)
        return BinaryDomainResult(means=means, variance=variance, df=df)

    def _vs_rest_tables(self, share: Share, labels: pd.Index, level: np.ndarray) -> BinaryDomainResult | None:
        """`domain_vs_rest` of a proportion by tables, when the levels are constant within the
        calibration cells: the share's one-domain tables, per level split into the rest
        (domain 0) and the level (1). None when the table path does not apply."""
        cells = self._table_cells(2)
        levels = None if cells is None else slot_levels(cells, tuple(labels.names), level)
        if cells is None or levels is None:
            return None
        bases: dict[tuple, np.ndarray] = {}
        table = kept_table(
            cells,
            _share_key(share),
            lambda: domain_tables(cells, *self._share_domain(share, 0, None, None, bases), 1, self._positive),
        )
        rest = np.where(levels >= 0, 0, -1)
        return concatenate(
            [
                slot_domain_contrasts(
                    table,
                    np.where(levels == j, 1, rest),
                    2,
                    Contrasts.changes(1),
                    cells,
                    self._structure,
                    self._projection,
                )
                for j in range(len(labels))
            ]
        )

    def domain_vs_rest(
        self,
        variable: str,
        success: Sequence[Any] | None = None,
        exclude: Sequence[Any] | None = None,
        where: Mapping[str, Any] | None = None,
        by: str | Sequence[str] = "wijk",
        adjust: str = "holm",
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Each `by` level (e.g. a wijk) against the rest of the base (all other levels),
        with p-values adjusted for the number of levels compared.

        The outcome is the share of `success` codes among valid answers (as `proportion`),
        or, without `success`, the mean of the numeric `variable` (as `mean`). The rest is
        the complement of the level inside the base (rows with a `by` value), not the
        total that contains it. R: per level l, ``m <- svyby(~y, ~g, subset(d, base &
        !is.na(by)), svymean, covmat = TRUE)`` with ``g = factor(by == l)`` and
        ``svycontrast(m, c(-1, 1))``; df = ``degf(subset(d, base & !is.na(by)))``;
        p = ``2 * pt(-abs(t), df)``; ``p.adjust(p, adjust)`` over the levels with a
        p-value: "holm" (default, family-wise error) or "BH" (Benjamini-Hochberg, false
        discovery rate).

        Columns: `by`, estimate_domain, estimate_rest, n_domain, n_rest, difference
        (domain minus rest), se, ci_lower, ci_upper (difference +/- t(df) se, unadjusted),
        df, t, p_value, p_adjusted, adjust (the method, stated on every row), n_tests (the
        number of p-values adjusted together), note (as `difference`).
        """
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        if adjust not in ADJUSTMENTS:
            raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
        base, y = self._outcome(variable, success, exclude, where)
        labels, codes = self._levels(by)
        base = base & (codes >= 0)
        k = len(labels)
        fit = None if success is None else self._vs_rest_tables(Share(variable, success, exclude, where), labels, codes)
        if fit is None:
            per_chunk = max(1, MAX_BATCH // max(self.n, 1))
            parts = []
            for start in range(0, k, per_chunk):
                chunk = np.arange(start, min(k, start + per_chunk))
                # Share j of the chunk: domain 2j = the rest, 2j + 1 = level chunk[j].
                inside = (codes[None, :] == chunk[:, None]).astype(np.int64)
                index = np.where(base[None, :], 2 * np.arange(chunk.size)[:, None] + inside, -1)
                domains = Domains(index=index, y=np.broadcast_to(y, index.shape), n_domains=2 * chunk.size)
                parts.append(self._linear_contrasts(domains, Contrasts.changes(chunk.size), success is not None))
            fit = concatenate(parts)
        means = fit.means
        p = means.estimate.reshape(k, 2)
        n = means.n.reshape(k, 2)
        inference = _contrast_inference(p[:, 1] - p[:, 0], fit.variance, fit.df, (n == 0).any(axis=1), level)
        adjusted = p_adjust(inference["p_value"], adjust)
        out = pd.DataFrame(
            {
                "estimate_domain": p[:, 1],
                "estimate_rest": p[:, 0],
                "n_domain": n[:, 1].astype(np.int64),
                "n_rest": n[:, 0].astype(np.int64),
                **{key: value for key, value in inference.items() if key != "note"},
                "p_adjusted": adjusted,
                "adjust": adjust,
                "n_tests": int(np.count_nonzero(~np.isnan(inference["p_value"]))),
                "note": inference["note"],
            }
        )
        _insert_by(out, 0, labels)
        return out

    def trend(
        self,
        variable: str,
        success: Sequence[Any] | None = None,
        exclude: Sequence[Any] | None = None,
        where: Mapping[str, Any] | None = None,
        over: str = "wave",
        waves: Sequence[Any] | None = None,
        scores: Sequence[float] | None = None,
        by: str | Sequence[str] | None = None,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Linear trend of a proportion (or, without `success`, a numeric mean) over three or
        more waves of a stacked panel (respondent as cluster, so the waves' covariance counts).

        `waves` are the levels of `over` compared (default: every level, sorted); `scores`
        their positions (default: the wave values themselves, e.g. years, so unequal gaps
        count). The estimate is the least-squares slope of the wave estimates on the
        scores, sum(c_w p_w) with c_w = (s_w - mean(s)) / sum((s - mean(s))^2): the change
        per unit of score (per year). R: ``m <- svyby(~y, ~over, subset(d, base & over %in%
        waves), svymean, covmat = TRUE)``; ``svycontrast(m, c)``; df = ``degf(subset(d, base
        & over %in% waves))``; p = ``2 * pt(-abs(t), df)``. One row (per `by` level): [by],
        waves (number of waves), slope, se, ci_lower, ci_upper, df, t, p_value, note; the
        wave estimates as estimate_<wave> and n_<wave>.
        """
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        if waves is None:
            waves = list(self._levels(over)[0])
        waves = list(waves)
        if len(waves) < 3 or len(set(waves)) != len(waves):
            raise ValueError(f"a trend needs three or more distinct levels of '{over}', got {waves!r}")
        s = np.asarray(waves if scores is None else scores, dtype=np.float64)
        if s.shape != (len(waves),) or not np.all(np.isfinite(s)) or np.ptp(s) == 0:
            raise ValueError("scores must be one finite number per wave, not all equal")
        centred = s - s.mean()
        coefficient = centred / np.sum(centred**2)
        base, y = self._outcome(variable, success, exclude, where)
        position = np.full(self.n, -1, dtype=np.int64)
        for w, wave in enumerate(waves):
            position[self._in_codes(over, [wave])] = w
        base &= position >= 0
        labels, codes = (None, np.zeros(self.n, dtype=np.int64)) if by is None else self._levels(by)
        n_groups = 1 if labels is None else len(labels)
        base &= codes >= 0
        index = np.where(base, codes * len(waves) + position, -1)[None, :]
        domains = Domains(index=index, y=y[None, :], n_domains=n_groups * len(waves))
        contrasts = Contrasts(np.tile(coefficient, n_groups), np.repeat(np.arange(n_groups), len(waves)), n_groups)
        fit = self._linear_contrasts(domains, contrasts, success is not None)
        p = fit.means.estimate.reshape(n_groups, len(waves))
        n = fit.means.n.reshape(n_groups, len(waves))
        slope = np.nan_to_num(p) @ coefficient
        inference = _contrast_inference(slope, fit.variance, fit.df, (n == 0).any(axis=1), level)
        result = pd.DataFrame({"waves": len(waves)}, index=range(n_groups))
        for key, value in inference.items():
            result[key] = value
        result = result.rename(columns={"difference": "slope"})
        result["note"] = np.where((n == 0).any(axis=1), "empty domain in one of the waves", result["note"])
        for w, wave in enumerate(waves):
            result[f"estimate_{_plain(wave)}"] = p[:, w]
            result[f"n_{_plain(wave)}"] = n[:, w].astype(np.int64)
        if labels is not None:
            _insert_by(result, 0, labels)
        return result


WHERE_OPERATORS = ("in", "not_in")


def _slot_domains(
    cells: RowCells, labels: pd.Index | None, level: np.ndarray | None, group: np.ndarray | None
) -> np.ndarray | None:
    """Each (stratum, cell) slot's domain within a share, level (x 2 + group) as `_share_domain`
    numbers them (-1: none), when the slot fixes the breakdown level and the group; else None."""
    domain = np.zeros(cells.block // 2, dtype=np.int64)
    if labels is not None and level is not None:
        levels = slot_levels(cells, tuple(labels.names), level)
        if levels is None:
            return None
        domain = levels
    if group is not None:
        groups = slot_values(cells, group)
        if groups is None:
            return None
        domain = np.where((domain >= 0) & (groups >= 0), domain * 2 + groups, -1)
    return domain


def _where_conditions(where: Mapping[str, Any] | None) -> list[tuple[str, list | None, list | None]]:
    """`where` as (variable, codes to include or None, codes to exclude or None) per variable.

    A variable's condition is a list of codes (the row's value is one of them) or a
    mapping with "in" and/or "not_in" lists: {"wijk": {"not_in": [1, 2]}} keeps rows
    with a wijk other than 1 and 2 (a missing wijk is never inside: R's
    !is.na(wijk) & !(wijk %in% c(1, 2))).
    """
    conditions = []
    for variable, condition in (where or {}).items():
        if isinstance(condition, Mapping):
            unknown = sorted(set(condition) - set(WHERE_OPERATORS))
            if unknown or not condition:
                raise ValueError(
                    f"where[{variable!r}]: a list of codes or a mapping with 'in' and/or 'not_in', got keys "
                    f"{sorted(condition)!r}"
                )
            included, excluded = condition.get("in"), condition.get("not_in")
        else:
            included, excluded = condition, None
        for codes in (included, excluded):
            if codes is not None and (isinstance(codes, (str, bytes)) or np.ndim(codes) != 1):
                raise ValueError(f"where[{variable!r}]: codes must be a list, got {codes!r}")
        conditions.append(
            (variable, None if included is None else list(included), None if excluded is None else list(excluded))
        )
    return conditions


def _qrule_math(x: np.ndarray, w: np.ndarray, p: float) -> float:
    """R survey's ``qrule_math``: the smallest x whose share of the weight at or below it reaches p
    (NaN without rows). Running sums in extended precision, as R's ``cumsum`` and ``sum``."""
    keep = w != 0
    x, w = x[keep], w[keep]
    if x.size == 0:
        return np.nan
    order = np.argsort(x, kind="stable")  # R's order(): ties in row order
    total = float(np.cumsum(w.astype(np.longdouble))[-1])
    cumulative = np.cumsum(w[order].astype(np.longdouble)).astype(np.float64)
    at_or_below = np.flatnonzero(cumulative <= p * total)
    low = int(at_or_below[-1]) if at_or_below.size else 0  # R's last(): 1 when none
    high = min(low + 1, x.size - 1)
    return float(x[order[low]] if p - cumulative[low] / total == 0 else x[order[high]])


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The first position of each code, for codes numbered in order of appearance (`pd.factorize`
    unsorted): a code appears where it exceeds every code before it."""
    return np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)


def _insert_by(frame: pd.DataFrame, position: int, labels: pd.Index, repeats: int = 1) -> None:
    """The `by` level column(s) at `position`, one column per variable (named as `labels`,
    from `_levels`), `repeats` blocks."""
    for i, name in enumerate(labels.names):
        frame.insert(position + i, name, np.tile(np.asarray(labels.get_level_values(i)), repeats))


def _margin_variables(margin: str | tuple[str, ...]) -> list[str]:
    """The variables of a raking margin: one name, or a tuple of crossed names."""
    return [margin] if isinstance(margin, str) else list(margin)


def _raking_threshold(tol: float | None, epsilon: float | None, sum_weights: float) -> float:
    """The absolute change in a joint cell below which raking stops: `tol` (0 < tol < 1,
    default 1e-10) times the sum of weights, or R's `epsilon` (times the sum below 1)."""
    if tol is not None and epsilon is not None:
        raise ValueError("give tol (a share of the sum of weights) or epsilon (R's rule), not both")
    if epsilon is not None:
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        return float(epsilon) * (sum_weights if epsilon < 1 else 1.0)
    tol = 1e-10 if tol is None else tol
    if not 0 < tol < 1:
        raise ValueError(
            f"tol is a share of the sum of weights (0 < tol < 1), got {tol!r}; "
            "for R's absolute epsilon (1 or more) pass epsilon="
        )
    return float(tol) * sum_weights


def _contrast_inference(
    estimate: np.ndarray, variance: np.ndarray, df: np.ndarray, empty: np.ndarray, level: float
) -> dict[str, np.ndarray]:
    """se, t interval, t statistic and two-sided p-value of contrasts, with the edge rules
    of `difference`: an empty domain gives NaN, df < 1 no interval or test, se 0 p = 1
    (estimate 0) or 0."""
    se = _standard_error(variance, empty)
    estimate = np.where(empty, np.nan, estimate)
    half = t_quantile(level, df) * se
    with np.errstate(invalid="ignore", divide="ignore"):
        t_stat = estimate / se
    zero_se = ~empty & (se == 0)
    p_value = np.where(zero_se, np.where(estimate == 0, 1.0, 0.0), 2 * t_sf(np.abs(t_stat), df))
    no_df = ~empty & ~(df >= 1)
    note = np.full(estimate.size, "", dtype=object)
    note = np.where(empty, "empty domain in one of the groups", note)
    note = np.where(zero_se, "zero variance", note)
    note = np.where(no_df, "df < 1: no interval or test", note)
    return {
        "difference": estimate,
        "se": se,
        "ci_lower": np.where(no_df, np.nan, estimate - half),
        "ci_upper": np.where(no_df, np.nan, estimate + half),
        "df": np.where(empty, np.nan, df),
        "t": np.where(no_df | empty, np.nan, t_stat),
        "p_value": np.where(no_df | empty, np.nan, p_value),
        "note": note.astype(str),
    }


def _parse_formula(formula: str) -> tuple[str, list[tuple[str, bool]]]:
    """'y ~ a + factor(b)' as ('y', [('a', False), ('b', True)]); '1' alone: intercept only."""
    if formula.count("~") != 1:
        raise ValueError(f"formula {formula!r} must have the form 'y ~ a + b'")
    left, right = (part.strip() for part in formula.split("~"))
    terms = []
    for term in (t.strip() for t in right.split("+")):
        match = re.fullmatch(r"factor\(\s*([^()\s]+)\s*\)|([^()\s]+)", term)
        if not left or match is None:
            raise ValueError(f"formula {formula!r}: unsupported term {term!r} (use names and factor(name))")
        if term != "1":
            terms.append((match.group(1) or match.group(2), match.group(1) is not None))
    return left, terms
