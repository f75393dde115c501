"""What goes into and comes out of a Fay-Herriot fit: smoothed sampling variances, benchmarking.

The Fay-Herriot model (`survey_pipeline.sae`) treats the sampling variances psi_i as
known. Direct variance estimates of small wijken are themselves noisy: a wijk of 4
respondents who all answered "ja" has an estimated variance of 0, which would make the
model trust it completely. `smooth_design_effects` replaces them by a generalised
variance function (GVF): the design effect deff_i = psi_i n_i / (p_i (1 - p_i)) is
modelled as log(deff) = a + b log(n) by least squares, weighted by n, over the areas
where it is defined (0 < p_i < 1, psi_i > 0, n_i >= `MIN_AREA_SIZE`); the fitted
design effect gives every area an effective sample size n_i / deff_i, which is what the
arcsine model needs (its sampling variance is about 1 / (4 n_eff), free of p_i; for small
n_eff `arcsine_sample_size` gives the exact binomial variance on that scale) and, with a
proportion that is not itself a noisy 0 or 1, the linear model's psi. The fitted line
is evaluated only within the range of n it was fitted on (log n clipped to it), so a
tiny wijk gets the design effect of the smallest fitted wijk, never an extrapolation.

`benchmark` makes the population-weighted area estimates add up to the direct estimate
of the whole city (ratio or difference benchmarking, see there).

Pure: numpy in, frozen dataclasses of arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from survey_pipeline.sae import _read_only

MIN_AREA_SIZE = 2
MIN_FITTED_AREAS = 3
BENCHMARK_METHODS = ("ratio", "difference")
TAIL_EXPONENT = 50.0  # binomial terms beyond a tail of mass 2 exp(-50) are left out (`_arcsine_variances`)


@dataclass(frozen=True, eq=False)
class DesignEffectFit:
    """The generalised variance function log(deff) = intercept + slope log(n), and per area
    its design effect and effective sample size."""

    intercept: float
    slope: float
    fitted_areas: np.ndarray  # bool per area: used to fit the line
    design_effect: np.ndarray
    effective_sample_size: np.ndarray  # n / design_effect

    def sampling_variance(self, proportion: np.ndarray) -> np.ndarray:
        """psi_i = p_i (1 - p_i) / n_eff_i; pass stable proportions (not a small area's direct 0 or 1)."""
        proportion = np.asarray(proportion, dtype=np.float64)
        return proportion * (1.0 - proportion) / self.effective_sample_size

    def arcsine_sample_size(self, proportion: float) -> np.ndarray:
        """The n_eff* with 1 / (4 n_eff*) = var(asin(sqrt(K / n_eff))), K ~ Binomial(n_eff, proportion).

        The delta method's 1 / (4 n_eff) understates the variance on the arcsine scale
        when n_eff p (1 - p) is small (by 60% at n_eff = 9, p = 0.8: the jumps to 0 or 1
        weigh heavily); the exact binomial variance does not. Pass a stable proportion
        (e.g. the city's estimate), not the small area's own.
        """
        variance = _arcsine_variances(self.effective_sample_size, proportion)
        return 1.0 / (4.0 * variance)


def smooth_design_effects(
    sampling_variance: np.ndarray, proportion: np.ndarray, sample_size: np.ndarray
) -> DesignEffectFit:
    """Fit the GVF (module docstring) to the areas' direct variances, proportions and sample sizes.

    Raises ValueError on malformed input or when fewer than `MIN_FITTED_AREAS` areas
    have a defined design effect.
    """
    psi, p, n = (np.asarray(a, dtype=np.float64) for a in (sampling_variance, proportion, sample_size))
    if not (psi.ndim == p.ndim == n.ndim == 1 and psi.size == p.size == n.size):
        raise ValueError("sampling_variance, proportion and sample_size must be 1-D arrays of one length")
    if not (np.isfinite(psi).all() and np.isfinite(p).all() and np.isfinite(n).all()):
        raise ValueError("sampling_variance, proportion and sample_size must be finite")
    if (n < 1).any() or (psi < 0).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("need sample_size >= 1, sampling_variance >= 0 and proportion in [0, 1]")
    usable = (p > 0) & (p < 1) & (psi > 0) & (n >= MIN_AREA_SIZE)
    if usable.sum() < MIN_FITTED_AREAS:
        raise ValueError(
            f"a design effect is defined in {int(usable.sum())} area(s); the variance function needs "
            f"at least {MIN_FITTED_AREAS}"
        )
    log_n = np.log(n)
    log_deff = np.log(psi[usable] * n[usable] / (p[usable] * (1.0 - p[usable])))
    design = np.column_stack([np.ones(int(usable.sum())), log_n[usable]])
    root_w = np.sqrt(n[usable])
    if np.ptp(log_n[usable]) > 0:
        (intercept, slope), *_ = np.linalg.lstsq(design * root_w[:, None], log_deff * root_w, rcond=None)
    else:  # one sample size: only a level
        intercept, slope = float(np.average(log_deff, weights=n[usable])), 0.0
    clipped = np.clip(log_n, log_n[usable].min(), log_n[usable].max())
    deff = np.exp(intercept + slope * clipped)
    return DesignEffectFit(
        intercept=float(intercept),
        slope=float(slope),
        fitted_areas=_read_only(usable),
        design_effect=_read_only(deff),
        effective_sample_size=_read_only(n / deff),
    )


def _arcsine_variances(sizes: np.ndarray, proportion: float) -> np.ndarray:
    """var(asin(sqrt(K / m))) for K ~ Binomial(m, p) per size m, linear in m between whole numbers (m >= 1).

    All sizes at once: the binomial terms of every whole size needed, one after another,
    summed per size (np.add.reduceat).
    """
    from scipy.stats import binom  # only here: costly to import

    sizes = np.maximum(np.asarray(sizes, dtype=np.float64), 1.0)
    low = np.floor(sizes)
    share = sizes - low  # 0 for a whole size: exactly its own variance
    whole = np.concatenate([low, low + 1.0]).astype(np.int64)
    # Only the k within Bernstein's bound P(|K - mp| >= t) <= 2 exp(-TAIL_EXPONENT): the mass
    # left out (< 1e-21, of values in [0, pi/2]) is below double precision of the variance,
    # and a large panel's wijk (m in the tens of thousands) costs O(sqrt(m)), not O(m).
    spread = whole * proportion * (1.0 - proportion)
    t = TAIL_EXPONENT / 3.0 + np.sqrt((TAIL_EXPONENT / 3.0) ** 2 + 2.0 * TAIL_EXPONENT * spread)
    centre = whole * proportion
    first = np.maximum(0, np.floor(centre - t)).astype(np.int64)
    count = np.minimum(whole, np.ceil(centre + t)).astype(np.int64) - first + 1
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    m = np.repeat(whole, count)
    k = np.repeat(first - starts, count) + np.arange(count.sum())  # first..first + count - 1 per size
    weight = binom.pmf(k, m, proportion)
    theta = np.arcsin(np.sqrt(k / m))
    mean = np.add.reduceat(weight * theta, starts)
    deviation = theta - np.repeat(mean, count)
    variance = np.add.reduceat(weight * deviation * deviation, starts)
    return (1.0 - share) * variance[: sizes.size] + share * variance[sizes.size :]


@dataclass(frozen=True, eq=False)
class Benchmarked:
    """Benchmarked estimates; `mse` adds the squared adjustment to the model's MSE."""

    method: str
    estimate: np.ndarray
    mse: np.ndarray
    adjustment: np.ndarray  # benchmarked minus unbenchmarked estimate


def benchmark(
    estimate: np.ndarray, mse: np.ndarray, population: np.ndarray, target: float, method: str = "ratio"
) -> Benchmarked:
    """Adjust area estimates so that sum_i w_i estimate_i = target, w_i = population_i / sum(population).

    "ratio": estimate_i * target / sum_i w_i estimate_i (keeps zero at zero and the areas'
    ratios; can exceed 1 for proportions near 1). "difference": estimate_i + (target -
    sum_i w_i estimate_i) (the same shift for every area; can fall below 0). A result
    outside [0, 1] is not clipped, since clipping would undo the benchmark: the caller
    decides. MSE: model MSE + adjustment^2, the usual first-order approximation for a
    benchmarked EBLUP (Steorts & Ghosh 2013 show the extra MSE of difference-benchmarking
    is of this order), conservative when the adjustment is mostly the model's own bias.
    """
    if method not in BENCHMARK_METHODS:
        raise ValueError(f"method must be one of {', '.join(BENCHMARK_METHODS)}, got {method!r}")
    theta, mse, population = (np.asarray(a, dtype=np.float64) for a in (estimate, mse, population))
    if not (theta.ndim == mse.ndim == population.ndim == 1 and theta.size == mse.size == population.size):
        raise ValueError("estimate, mse and population must be 1-D arrays of one length")
    if not (
        np.isfinite(theta).all() and np.isfinite(mse).all() and np.isfinite(population).all() and np.isfinite(target)
    ):
        raise ValueError("estimate, mse, population and target must be finite")
    if (population < 0).any() or population.sum() <= 0:
        raise ValueError("population must be >= 0 with a positive total")
    aggregate = float(population @ theta / population.sum())
    if method == "ratio":
        if aggregate <= 0:
            raise ValueError("ratio benchmarking needs a positive aggregate of the estimates")
        adjusted = theta * (target / aggregate)
    else:
        adjusted = theta + (target - aggregate)
    adjustment = adjusted - theta
    return Benchmarked(method, _read_only(adjusted), _read_only(mse + adjustment**2), _read_only(adjustment))
