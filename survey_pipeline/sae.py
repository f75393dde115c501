"""Area-level small-area estimation: the Fay-Herriot model, matching R `sae` 1.3.

Model, over areas i = 1..m: direct_i = x_i' beta + u_i + e_i with area effects
u_i ~ N(0, sigma2_u) and sampling errors e_i ~ N(0, psi_i), psi_i the known sampling
variance of the direct estimate. `fay_herriot` estimates sigma2_u, beta and the EBLUP

    estimate_i = x_i' beta + gamma_i (direct_i - x_i' beta),  gamma_i = sigma2_u / (sigma2_u + psi_i),

with the estimators of R `sae::eblupFH` and the MSE of R `sae::mseFH`:

- sigma2_u by Fisher scoring from median(psi), as `eblupFH`: "REML" (restricted
  likelihood), "ML" (likelihood) or "FH" (the Fay-Herriot moment equation
  sum_i (direct_i - x_i' beta(sigma2_u))^2 / (sigma2_u + psi_i) = m - p). Unlike `eblupFH`
  (relative change 1e-4) it iterates until the change is at most 1e-12 relative (to
  max(|sigma2_u|, median(psi)), so a near-zero variance still converges). The iterate may
  pass through negative values; it is truncated at 0 only at the end, as in `eblupFH`.
  Where plain scoring fails (it can cycle, or step out of the domain sigma2_u > -min(psi);
  `eblupFH` then reports non-convergence) Brent's method solves the same equation.
- MSE (`mseFH`), with g1 = gamma psi, g2 = (1 - gamma)^2 x' (X'V^-1 X)^-1 x,
  g3 = (1 - gamma)^2 var(sigma2_u) / (sigma2_u + psi) and V = diag(sigma2_u + psi):
  REML: g1 + g2 + 2 g3, var = 2 / sum(1/(sigma2_u+psi)^2) (Prasad-Rao; REML is unbiased to
  this order, so no bias term). ML: the same plus the Datta-Lahiri bias term
  -b (1 - gamma)^2 with b = -tr((X'V^-1X)^-1 X'V^-2X) / sum(1/(sigma2_u+psi)^2), the
  first-order bias of the ML estimator. FH: var = 2m / sum(1/(sigma2_u+psi))^2 and the
  Datta-Rao-Smith (2005) bias b = 2 (m sum v^2 - (sum v)^2) / (sum v)^3, v = 1/(sigma2_u+psi).

`fay_herriot_arcsine` fits proportions on the arcsine-square-root scale and
back-transforms them, with a parametric-bootstrap MSE (after R `emdi`; see there).

Pure: numpy in, a frozen dataclass of read-only arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("REML", "ML", "FH")
RELATIVE_TOLERANCE = 1e-12
FISHER_SCORING_STEPS = 100  # eblupFH's MAXITER; then Brent's method takes over
BRENT_STEPS = 200
MAX_BRACKET_DOUBLINGS = 200
DOMAIN_MARGIN = 1e-6
BACKTRANSFORMATIONS = ("bias-corrected", "naive")
HALF_PI = np.pi / 2


@dataclass(frozen=True, eq=False)
class FayHerriotFit:
    """A fitted Fay-Herriot model; per-area arrays are in the order of the input.

    `converged` is False when no solver found sigma2_u to the tolerance: the numbers
    are then those of the last iterate and must not be published.
    """

    method: str
    estimate: np.ndarray  # EBLUP per area
    mse: np.ndarray  # mseFH's MSE per area (see the module docstring for the terms)
    sigma2_u: float  # area-effect variance, truncated at 0
    beta: np.ndarray  # regression coefficients at sigma2_u (GLS)
    beta_covariance: np.ndarray  # (X'V^-1 X)^-1 at sigma2_u
    gamma: np.ndarray  # shrinkage factor sigma2_u / (sigma2_u + psi): weight of the direct estimate
    standardized_residuals: np.ndarray  # (direct - x'beta) / sqrt(sigma2_u + psi)
    iterations: int  # Fisher-scoring steps, plus bracket doublings and Brent iterations if used
    solver: str  # "fisher-scoring" (eblupFH's path) or "brent" (the fallback, see _estimate_sigma2_u)
    converged: bool


def fay_herriot(
    direct: np.ndarray,
    sampling_variance: np.ndarray,
    covariates: np.ndarray,
    method: str = "REML",
) -> FayHerriotFit:
    """Fit the Fay-Herriot model as R `sae::eblupFH` / `mseFH` do (converged tightly).

    `covariates` is the design matrix as given (include a column of ones for an
    intercept). Raises ValueError on malformed input.
    """
    y, psi, x = _validated(direct, sampling_variance, covariates, method)
    return _fit(y, psi, x, method)


def _fit(y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str) -> FayHerriotFit:
    """`fay_herriot` on validated float64 arrays."""
    raw_sigma2_u, iterations, solver, converged = _estimate_sigma2_u(y, psi, x, method)
    sigma2_u = max(raw_sigma2_u, 0.0)
    eblup = _eblup(y[None, :], psi, x, np.array([sigma2_u]))
    beta_covariance = eblup.beta_covariance[0]
    mse = _mse(psi, x, sigma2_u, beta_covariance, method)
    return FayHerriotFit(
        method=method,
        estimate=_read_only(eblup.estimate[0]),
        mse=_read_only(mse),
        sigma2_u=float(sigma2_u),
        beta=_read_only(eblup.beta[0]),
        beta_covariance=_read_only(beta_covariance),
        gamma=_read_only(eblup.gamma[0]),
        standardized_residuals=_read_only(eblup.residual[0] / np.sqrt(sigma2_u + psi)),
        iterations=iterations,
        solver=solver,
        converged=converged,
    )


@dataclass(frozen=True, eq=False)
class _Eblup:
    """GLS fit and EBLUP for B direct vectors at once (arrays with a leading axis of B)."""

    v: np.ndarray  # 1 / (sigma2_u + psi), (B, m)
    beta_covariance: np.ndarray  # (X'V^-1 X)^-1, (B, p, p)
    beta: np.ndarray  # (B, p)
    residual: np.ndarray  # direct - x'beta, (B, m)
    gamma: np.ndarray  # (B, m)
    estimate: np.ndarray  # (B, m)


def _eblup(y: np.ndarray, psi: np.ndarray, x: np.ndarray, sigma2_u: np.ndarray) -> _Eblup:
    """beta, gamma and the EBLUP of each row of `y` (B x m) at its (truncated) `sigma2_u` (B)."""
    v = 1.0 / (sigma2_u[:, None] + psi)
    xtv = x.T * v[:, None, :]
    beta_covariance = np.linalg.inv(xtv @ x)
    beta = (beta_covariance @ (xtv @ y[:, :, None]))[:, :, 0]
    fitted = beta @ x.T
    residual = y - fitted
    gamma = sigma2_u[:, None] * v
    return _Eblup(v, beta_covariance, beta, residual, gamma, fitted + gamma * residual)


@dataclass(frozen=True, eq=False)
class ArcsineFayHerriotFit:
    """Fay-Herriot fitted on the arcsine-square-root scale, back-transformed to proportions.

    `converged` is False when the fit or any bootstrap refit did not converge.
    """

    estimate: np.ndarray  # back-transformed EBLUP: a proportion per area
    mse: np.ndarray  # parametric-bootstrap MSE of `estimate`
    transformed: FayHerriotFit  # the fit of asin(sqrt(direct)) with sampling variance 1 / (4 n_eff)
    backtransformation: str
    replicates: int
    converged: bool


def fay_herriot_arcsine(
    direct: np.ndarray,
    effective_sample_size: np.ndarray,
    covariates: np.ndarray,
    method: str = "REML",
    *,
    backtransformation: str = "bias-corrected",
    replicates: int = 500,
    seed: int,
) -> ArcsineFayHerriotFit:
    """Fay-Herriot for proportions on the arcsine-square-root scale, after R `emdi`'s
    `fh(transformation = "arcsin", mse_type = "boot")` (Casas-Cordero, Encina & Lahiri 2016).

    The direct proportions p_i are transformed to theta_i = asin(sqrt(p_i)), whose sampling
    variance is 1 / (4 n_eff_i) by the delta method (n_eff = p (1 - p) / var(p), the design's
    effective sample size); `fay_herriot` fits that. Back-transformation of the EBLUP mu_i:

    - "naive": sin^2(mu_i), mu_i truncated to [0, pi/2].
    - "bias-corrected": E[sin^2(theta_i)] with theta_i ~ N(mu_i, gamma_i psi_i) (its
      conditional distribution under the model), theta_i truncated to [0, pi/2], in closed
      form. emdi integrates sin^2 over [0, pi/2] only, which drops the mass beyond pi/2
      instead of counting it as p = 1 and biases estimates near 1 downwards; here it counts.

    MSE: parametric bootstrap with `replicates` draws (emdi's `boot_arcsin_2`): true values
    sin^2(x'beta + u*) with u* ~ N(0, sigma2_u) (truncated as above), direct estimates
    x'beta + u* + e* with e* ~ N(0, psi), refitted by the same method and back-transformed
    the same way; the MSE is the mean squared difference. `seed` makes it reproducible.
    """
    if backtransformation not in BACKTRANSFORMATIONS:
        raise ValueError(
            f"backtransformation must be one of {', '.join(BACKTRANSFORMATIONS)}, got {backtransformation!r}"
        )
    if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer) or replicates < 1:
        raise ValueError(f"replicates must be a positive integer, got {replicates!r}")
    proportion, n_eff, x = _validated(direct, effective_sample_size, covariates, method, "effective_sample_size")
    bad = np.flatnonzero((proportion < 0) | (proportion > 1))
    if bad.size:
        raise ValueError(f"direct must be a proportion in [0, 1], not in area(s) {_positions(bad)}")
    psi = 1.0 / (4.0 * n_eff)
    transformed = _fit(np.arcsin(np.sqrt(proportion)), psi, x, method)
    estimate = _back_transform(transformed.estimate, transformed.gamma * psi, backtransformation)
    mse, refits_converged = _bootstrap_mse(transformed, psi, x, method, backtransformation, replicates, seed)
    return ArcsineFayHerriotFit(
        estimate=_read_only(estimate),
        mse=_read_only(mse),
        transformed=transformed,
        backtransformation=backtransformation,
        replicates=int(replicates),
        converged=transformed.converged and refits_converged,
    )


def _sin_squared(theta: np.ndarray) -> np.ndarray:
    """The inverse of asin(sqrt(p)), with theta truncated to [0, pi/2]."""
    return np.sin(np.clip(theta, 0.0, HALF_PI)) ** 2


def _back_transform(theta: np.ndarray, variance: np.ndarray, backtransformation: str) -> np.ndarray:
    """Proportions from arcsine-scale predictions (see `fay_herriot_arcsine`).

    Bias-corrected: with a = -mu/s, b = (pi/2 - mu)/s and Phi the normal cdf,
    E[sin^2(clip(theta))] = (Phi(b) - Phi(a)) / 2 - Re[e^(2i mu - 2 s^2)
    (Phi(b - 2is) - Phi(a - 2is))] / 2 + 1 - Phi(b), from sin^2 = (1 - cos 2x) / 2 and
    the normal moment generating function at 2i (Phi of a complex argument via erf).
    """
    from scipy import special

    result = _sin_squared(theta)
    if backtransformation == "naive":
        return result
    sd = np.sqrt(variance)
    spread = sd > 0
    mu, s = theta[spread], sd[spread]
    lower, upper = -mu / s, (HALF_PI - mu) / s
    cdf = lambda z: 0.5 * (1.0 + special.erf(z / np.sqrt(2.0)))  # noqa: E731  (complex z)
    oscillating = np.exp(2j * mu - 2.0 * s**2) * (cdf(upper - 2j * s) - cdf(lower - 2j * s))
    inside = special.ndtr(upper) - special.ndtr(lower)
    result[spread] = 0.5 * inside - 0.5 * oscillating.real + special.ndtr(-upper)
    return result


def _bootstrap_mse(
    fit: FayHerriotFit,
    psi: np.ndarray,
    x: np.ndarray,
    method: str,
    backtransformation: str,
    replicates: int,
    seed: int,
) -> tuple[np.ndarray, bool]:
    """Parametric-bootstrap MSE on the proportion scale, and whether every refit converged.

    The replicates are drawn one after another (per replicate u* for every area, then e*:
    the same random numbers for a seed as drawing and refitting them one by one) and
    refitted together: Fisher scoring on all of them at once, then Brent's method (see
    `_estimate_sigma2_u`) on those it left unsettled.
    """
    normal = np.random.default_rng(seed).standard_normal((replicates, 2, psi.size))
    theta = x @ fit.beta + np.sqrt(fit.sigma2_u) * normal[:, 0]  # u*: rng.normal(0, sd) is sd * z
    direct = theta + np.sqrt(psi) * normal[:, 1]  # e*, drawn after u* of the same replicate
    sigma2_u, _, settled = _fisher_scoring(direct, psi, x, method)
    unsettled = np.flatnonzero(~settled)
    sigma2_u[unsettled], _, refits_converged = _brent(direct[unsettled], psi, x, method)
    converged = bool(refits_converged.all())
    refit = _eblup(direct, psi, x, np.maximum(sigma2_u, 0.0))
    estimate = _back_transform(refit.estimate.ravel(), (refit.gamma * psi).ravel(), backtransformation)
    squared_error = (estimate.reshape(theta.shape) - _sin_squared(theta)) ** 2
    return squared_error.sum(axis=0) / replicates, converged


def _validated(
    direct: np.ndarray,
    sampling_variance: np.ndarray,
    covariates: np.ndarray,
    method: str,
    variance_name: str = "sampling_variance",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as float64 arrays, or ValueError naming the argument and the rule."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    arrays = {}
    for name, value, ndim in (
        ("direct", direct, 1),
        (variance_name, sampling_variance, 1),
        ("covariates", covariates, 2),
    ):
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric") from None
        if array.ndim != ndim:
            raise ValueError(f"{name} must be a {ndim}-D array, got {array.ndim}-D")
        finite = np.isfinite(array) if ndim == 1 else np.isfinite(array).all(axis=1)
        bad = np.flatnonzero(~finite)
        if bad.size:
            raise ValueError(f"{name} is not finite in area(s) {_positions(bad)}")
        arrays[name] = array
    y, psi, x = arrays["direct"], arrays[variance_name], arrays["covariates"]
    areas = y.shape[0]
    if psi.shape[0] != areas or x.shape[0] != areas:
        raise ValueError(
            f"direct, {variance_name} and covariates must have one row per area: "
            f"got {areas}, {psi.shape[0]} and {x.shape[0]} rows"
        )
    bad = np.flatnonzero(psi <= 0)
    if bad.size:
        raise ValueError(f"{variance_name} must be > 0, not in area(s) {_positions(bad)}")
    columns = x.shape[1]
    if columns == 0:
        raise ValueError("covariates must have at least one column")
    if areas <= columns:
        raise ValueError(f"need more areas than covariates: {areas} areas, {columns} columns")
    rank = np.linalg.matrix_rank(x)
    if rank < columns:
        raise ValueError(f"covariates must have full column rank: rank {rank} < {columns} columns")
    return y, psi, x


def _positions(indices: np.ndarray, shown: int = 5) -> str:
    """0-based positions for a message, the first few only."""
    listed = ", ".join(str(i) for i in indices[:shown])
    return listed + (f" (and {indices.size - shown} more)" if indices.size > shown else "")


def _estimate_sigma2_u(y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str) -> tuple[float, int, str, bool]:
    """sigma2_u before truncation, the steps taken, the solver that found it, and success.

    Fisher scoring with `eblupFH`'s steps from median(psi), negative iterates included.
    Plain scoring can leave the model's domain (sigma2_u + min(psi) <= DOMAIN_MARGIN
    min(psi): V not, or barely, positive definite, where the next step is undefined or
    meaningless) or cycle without converging (where `eblupFH` reports non-convergence).
    After either, or after FISHER_SCORING_STEPS steps (`eblupFH`'s MAXITER), Brent's
    method solves the same estimating equation on [0, upper]; when it is not positive
    at 0 the maximum over sigma2_u >= 0 lies on the boundary and the answer is 0.
    """
    sigma2_u, steps, settled = _fisher_scoring(y[None, :], psi, x, method)
    if settled[0]:
        return float(sigma2_u[0]), int(steps[0]), "fisher-scoring", True
    root, brent_steps, converged = _brent(y[None, :], psi, x, method)
    return float(root[0]), int(steps[0] + brent_steps[0]), "brent", bool(converged[0])


def _fisher_scoring(
    y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`eblupFH`'s Fisher scoring for each row of `y` (B x m) at once: sigma2_u, steps, settled.

    A row is settled when a step is at most RELATIVE_TOLERANCE of max(|sigma2_u|,
    median(psi)); a row whose next iterate would leave the domain stops there, one that
    takes FISHER_SCORING_STEPS steps stops then: both unsettled, for Brent's method.
    """
    scale = float(np.median(psi))
    smallest_psi = psi.min()
    margin = DOMAIN_MARGIN * smallest_psi
    sigma2_u = np.full(y.shape[0], scale)
    steps = np.zeros(y.shape[0], dtype=np.int64)
    settled = np.zeros(y.shape[0], dtype=bool)
    active = np.arange(y.shape[0])
    active_y, current = y, sigma2_u.copy()  # the rows of `y` and `sigma2_u` still iterating
    for step_count in range(1, FISHER_SCORING_STEPS + 1):
        score, information = _scores_and_information(active_y, psi, x, current, method)
        proposal = current + score / information
        inside = proposal + smallest_psi > margin
        done = inside & (np.abs(proposal - current) <= RELATIVE_TOLERANCE * np.maximum(np.abs(proposal), scale))
        steps[active] = step_count
        sigma2_u[active[inside]] = proposal[inside]
        settled[active[done]] = True
        going = inside & ~done
        active, active_y, current = active[going], active_y[going], proposal[going]
        if not active.size:
            break
    return sigma2_u, steps, settled


def _brent(y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of `y` (B x m): the positive root of the estimating function by Brent's
    method, or 0 where the function is not positive at 0 (see `_estimate_sigma2_u`); the
    steps taken and success."""
    roots = np.zeros(y.shape[0])
    steps = np.ones(y.shape[0], dtype=np.int64)
    converged = np.ones(y.shape[0], dtype=bool)
    if not y.shape[0]:
        return roots, steps, converged
    at_zero, _ = _scores_and_information(y, psi, x, np.zeros(y.shape[0]), method)
    for row in np.flatnonzero(at_zero > 0):
        roots[row], steps[row], converged[row] = _positive_root(y[row], psi, x, method)
    return roots, steps, converged


def _positive_root(y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str) -> tuple[float, int, bool]:
    """The root of an estimating function that is positive at 0, by Brent's method."""
    from scipy.optimize import brentq  # only here: rarely needed, costly to import

    def score(sigma2_u: float) -> float:
        return _score_and_information(y, psi, x, sigma2_u, method)[0]

    scale = float(np.median(psi))
    upper, doublings = scale, 0
    while score(upper) > 0:  # every estimating function is negative for large sigma2_u
        upper, doublings = 2 * upper, doublings + 1
        if doublings > MAX_BRACKET_DOUBLINGS:
            return upper, doublings, False
    root, result = brentq(
        score,
        0.0,
        upper,
        xtol=RELATIVE_TOLERANCE * scale,
        rtol=RELATIVE_TOLERANCE,
        maxiter=BRENT_STEPS,
        full_output=True,
        disp=False,
    )
    return float(root), doublings + result.iterations, bool(result.converged)


def _score_and_information(
    y: np.ndarray, psi: np.ndarray, x: np.ndarray, sigma2_u: float, method: str
) -> tuple[float, float]:
    """`eblupFH`'s estimating function for sigma2_u and its (expected) derivative."""
    score, information = _scores_and_information(y[None, :], psi, x, np.array([sigma2_u]), method)
    return float(score[0]), float(information[0])


def _scores_and_information(
    y: np.ndarray, psi: np.ndarray, x: np.ndarray, sigma2_u: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """`_score_and_information` for each row of `y` (B x m) at its `sigma2_u` (B).

    Each X'V^-k X is one matrix product, v^k @ (x_i x_i' of every area), and the REML
    traces come from p x p matrices: no B x m x m array (Fisher scoring calls this once
    a step, so few, cheap numpy calls matter).
    """
    rows, columns = x.shape
    outer = (x[:, :, None] * x[:, None, :]).reshape(rows, columns * columns)  # x_i x_i', flattened
    v = 1.0 / (sigma2_u[:, None] + psi)
    q = np.linalg.inv((v @ outer).reshape(-1, columns, columns))  # Q = (X'V^-1 X)^-1
    beta = (q @ ((v * y) @ x)[:, :, None])[:, :, 0]
    residual = y - beta @ x.T
    if method == "FH":
        return (residual * residual * v).sum(axis=1) - (rows - columns), v.sum(axis=1)
    p_y = v * residual  # P y with P = V^-1 - V^-1 X Q X' V^-1
    quadratic = (p_y * p_y).sum(axis=1)
    v2 = v * v
    if method == "ML":
        return 0.5 * (quadratic - v.sum(axis=1)), 0.5 * v2.sum(axis=1)
    # tr(P) = sum(v) - tr(Q X'V^-2 X), tr(P P) = sum(v^2) - 2 tr(Q X'V^-3 X) + tr((Q X'V^-2 X)^2)
    hat = q @ (v2 @ outer).reshape(-1, columns, columns)  # Q X'V^-2 X
    trace_p = v.sum(axis=1) - np.einsum("kii->k", hat)
    cubic = (v2 * v) @ outer  # X'V^-3 X, flattened
    trace_pp = v2.sum(axis=1) - 2.0 * (q.reshape(cubic.shape) * cubic).sum(axis=1) + np.einsum("kij,kji->k", hat, hat)
    return 0.5 * (quadratic - trace_p), 0.5 * trace_pp


def _mse(psi: np.ndarray, x: np.ndarray, sigma2_u: float, beta_covariance: np.ndarray, method: str) -> np.ndarray:
    """`mseFH`'s MSE per area at the truncated sigma2_u (terms in the module docstring)."""
    v = 1.0 / (sigma2_u + psi)
    one_minus_gamma = psi * v
    sum_v2 = np.sum(v**2)
    g1 = psi * (1.0 - one_minus_gamma)
    g2 = one_minus_gamma**2 * np.einsum("ij,jk,ik->i", x, beta_covariance, x)
    if method == "FH":
        sum_v = np.sum(v)
        areas = psi.shape[0]
        variance = 2.0 * areas / sum_v**2
        bias = 2.0 * (areas * sum_v2 - sum_v**2) / sum_v**3
    else:
        variance = 2.0 / sum_v2
        bias = -np.trace(beta_covariance @ ((x.T * v**2) @ x)) / sum_v2 if method == "ML" else 0.0
    g3 = one_minus_gamma**2 * variance * v
    return g1 + g2 + 2.0 * g3 - bias * one_minus_gamma**2


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
