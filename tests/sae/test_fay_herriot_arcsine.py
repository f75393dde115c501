"""`survey_pipeline.sae.fay_herriot_arcsine`: Fay-Herriot for proportions on the arcsine scale.

No R reference can be generated here (emdi is not installable); what is checked:

1. The bias-corrected back-transformation's closed form equals E[sin^2(clip(theta, 0,
   pi/2))], theta ~ N(mu, s^2), by numerical integration (scipy quad), to 1e-9 relative.
2. The transformed fit is `fay_herriot` of asin(sqrt(p)) with sampling variance
   1 / (4 n_eff), and the naive back-transformation is sin^2 of its truncated EBLUP.
3. The parametric-bootstrap MSE is reproducible from its seed and, away from 0 and 1, agrees
   with the delta method sin^2(2 mu) mse_theta (Prasad-Rao on the arcsine scale) within 20%
   (median over the demo's wijken; Monte Carlo error with 1000 replicates about 5%).
4. The bootstrap refits its replicates together, and gets the MSE of drawing and refitting
   them one by one with `fay_herriot` (the same seeded draws, in the same order), to 1e-10
   relative, also where refits need Brent's method.
5. Estimates are proportions, also for direct estimates of 0 and 1; input validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from survey_pipeline import sae
from survey_pipeline.sae import fay_herriot, fay_herriot_arcsine

DEMO = pd.read_csv(Path(__file__).resolve().parents[1] / "reference" / "data" / "sae_demo.csv")
P = DEMO["direct"].to_numpy()
N_EFF = (P * (1 - P) / DEMO["sampling_variance"]).to_numpy()
X = np.column_stack([np.ones(len(P)), DEMO["share_18_34"], DEMO["share_65_plus"]])


@pytest.mark.parametrize(
    ("mu", "sd"),
    [(0.7, 0.05), (0.02, 0.05), (-0.1, 0.2), (1.55, 0.08), (1.7, 0.3), (0.8, 2.0), (np.pi / 2, 1e-4)],
)
def test_bias_corrected_back_transformation_is_the_truncated_expectation(mu: float, sd: float) -> None:
    def integrand(theta: float) -> float:
        return np.sin(np.clip(theta, 0, np.pi / 2)) ** 2 * stats.norm.pdf(theta, mu, sd)

    expected = integrate.quad(integrand, mu - 40 * sd, mu + 40 * sd, points=[0, np.pi / 2], limit=500)[0]
    closed_form = sae._back_transform(np.array([mu]), np.array([sd**2]), "bias-corrected")[0]
    np.testing.assert_allclose(closed_form, expected, rtol=1e-9)


def test_without_spread_both_back_transformations_agree() -> None:
    theta = np.array([-0.2, 0.0, 0.4, np.pi / 2, 2.0])
    naive = sae._back_transform(theta, np.zeros(5), "naive")
    np.testing.assert_array_equal(sae._back_transform(theta, np.zeros(5), "bias-corrected"), naive)
    np.testing.assert_allclose(naive, [0.0, 0.0, np.sin(0.4) ** 2, 1.0, 1.0])


@pytest.mark.parametrize("method", ["REML", "ML", "FH"])
def test_transformed_fit_and_naive_back_transformation(method: str) -> None:
    fit = fay_herriot_arcsine(P, N_EFF, X, method, backtransformation="naive", replicates=2, seed=1)
    on_arcsine_scale = fay_herriot(np.arcsin(np.sqrt(P)), 1 / (4 * N_EFF), X, method)
    np.testing.assert_array_equal(fit.transformed.estimate, on_arcsine_scale.estimate)
    assert fit.transformed.sigma2_u == on_arcsine_scale.sigma2_u
    np.testing.assert_allclose(fit.estimate, np.sin(np.clip(on_arcsine_scale.estimate, 0, np.pi / 2)) ** 2)
    assert fit.converged and fit.backtransformation == "naive" and fit.replicates == 2


def test_bias_correction_uses_the_conditional_variance() -> None:
    fit = fay_herriot_arcsine(P, N_EFF, X, replicates=2, seed=1)
    variance = fit.transformed.gamma / (4 * N_EFF)
    expected = sae._back_transform(np.asarray(fit.transformed.estimate), variance, "bias-corrected")
    np.testing.assert_array_equal(fit.estimate, expected)
    naive = np.sin(np.asarray(fit.transformed.estimate)) ** 2
    assert np.all(np.abs(fit.estimate - naive) > 0)  # it is a correction, of E[sin^2] vs sin^2 E


def test_bootstrap_mse_is_seeded_and_agrees_with_the_delta_method() -> None:
    fit = fay_herriot_arcsine(P, N_EFF, X, replicates=1000, seed=20261130)
    again = fay_herriot_arcsine(P, N_EFF, X, replicates=1000, seed=20261130)
    np.testing.assert_array_equal(fit.mse, again.mse)
    other = fay_herriot_arcsine(P, N_EFF, X, replicates=1000, seed=7)
    assert not np.array_equal(fit.mse, other.mse)
    theta = np.asarray(fit.transformed.estimate)
    delta_method = np.sin(2 * theta) ** 2 * fit.transformed.mse
    assert 0.8 < np.median(fit.mse / delta_method) < 1.2
    assert np.all(fit.mse > 0)
    with pytest.raises(ValueError, match="read-only"):
        fit.mse[0] = 0.0


@pytest.mark.parametrize("method", sae.METHODS)
def test_bootstrap_mse_is_that_of_refitting_the_replicates_one_by_one(method: str) -> None:
    n_eff = N_EFF / 2  # smaller wijken: many replicates' scoring steps out of the domain, to Brent's method
    replicates, seed, psi = 100, 11, 1 / (4 * N_EFF / 2)
    fit = fay_herriot_arcsine(P, n_eff, X, method, replicates=replicates, seed=seed)
    transformed, rng = fit.transformed, np.random.default_rng(seed)
    squared_error, solvers = np.zeros(P.size), set()
    for _ in range(replicates):
        theta = X @ transformed.beta + rng.normal(0.0, np.sqrt(transformed.sigma2_u), P.size)
        refit = fay_herriot(theta + rng.normal(0.0, np.sqrt(psi)), psi, X, method)
        estimate = sae._back_transform(np.array(refit.estimate), refit.gamma * psi, "bias-corrected")
        squared_error += (estimate - np.sin(np.clip(theta, 0, np.pi / 2)) ** 2) ** 2
        solvers.add(refit.solver)
    assert solvers == {"fisher-scoring", "brent"}
    np.testing.assert_allclose(fit.mse, squared_error / replicates, rtol=1e-10)


def test_estimates_are_proportions_also_at_zero_and_one() -> None:
    direct = P.copy()
    direct[:2] = [0.0, 1.0]
    fit = fay_herriot_arcsine(direct, N_EFF, X, replicates=20, seed=3)
    assert fit.converged
    assert np.all((fit.estimate >= 0) & (fit.estimate <= 1))
    assert np.all(np.isfinite(fit.mse))


def test_non_convergence_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sae, "FISHER_SCORING_STEPS", 2)
    monkeypatch.setattr(sae, "BRENT_STEPS", 2)
    assert not fay_herriot_arcsine(P, N_EFF, X, replicates=2, seed=1).converged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"direct": np.where(np.arange(30) == 3, 1.2, P)}, r"proportion in \[0, 1\], not in area\(s\) 3"),
        ({"direct": np.where(np.arange(30) == 5, -0.1, P)}, r"not in area\(s\) 5"),
        ({"effective_sample_size": np.where(np.arange(30) == 1, 0.0, N_EFF)}, "effective_sample_size must be > 0"),
        ({"backtransformation": "bc"}, "backtransformation must be one of bias-corrected, naive"),
        ({"replicates": 0}, "replicates must be a positive integer"),
        ({"replicates": 2.5}, "replicates must be a positive integer"),
        ({"replicates": True}, "replicates must be a positive integer"),
        ({"method": "GLS"}, "method must be one of"),
    ],
)
def test_rejects_bad_input(change: dict, message: str) -> None:
    arguments = {"direct": P, "effective_sample_size": N_EFF, "covariates": X, "seed": 1, "replicates": 2}
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        fay_herriot_arcsine(**arguments)
