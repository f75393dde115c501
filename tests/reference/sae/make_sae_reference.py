"""Generate tests/reference/sae.json: Fay-Herriot reference values from svy-sae.

An outside reference, never a runtime dependency. R `sae` (the target) cannot be
installed here; svy-sae ports `sae::eblupFH`/`mseFH` and is validated against it by its
authors. It needs Python >= 3.12 and pulls JAX, so it lives in its own venv outside the
repository:

    /root/.pyenv/versions/3.12.1/bin/python -m venv /work/wt/sae-ref-venv
    /work/wt/sae-ref-venv/bin/pip install svy-sae==0.4.1
    /work/wt/sae-ref-venv/bin/python tests/reference/sae/make_sae_reference.py   # from the repo root

Data sets (tests/reference/data/): `sae_demo.csv` (30 wijken of the demo panel, made by
export_sae_demo.py), `sae_saipe.csv` (51 US states, SAIPE poverty rates of school-age
children with IRS and census covariates, the classic Fay-Herriot example, as in
github.com/tobiasschoch/SAEcourse data.R) and `sae_synthetic.csv` (written here, seed SEED).

What is computed, per data set and method, without survey_pipeline:

- sigma2_u. svy-sae's optimiser stops early (sigma2_u off by up to ~1e-3 relative),
  so for REML and ML the reference is the root of the derivative of svy-sae's own
  negative (restricted) log-likelihood (`_reml_loss`/`_ml_loss`, in log sigma_u), found by
  brentq to machine precision around svy-sae's fit. svy-sae has no FH fit: for FH it is
  the root of the Fay-Herriot moment equation (Fay & Herriot 1979; Rao & Molina 2015,
  sec. 6.1.2) sum_i (y_i - x_i' beta~(A))^2 / (A + psi_i) = m - p, beta~(A) the GLS fit,
  by brentq; 0 when the left side is below m - p at A = 0.
- beta and its covariance: GLS at that sigma2_u, (X'V^-1X)^-1 X'V^-1 y.
- EBLUP, MSE and its terms g1, g2, g3: svy-sae's `estimate_mse_prasad_rao` at that
  sigma2_u (its port of mseFH: REML g1 + g2 + 2 g3; ML and FH add the bias terms).
"""

from __future__ import annotations

import csv
import json
from importlib.metadata import version
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # JAX computes in float32 otherwise

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import brentq  # noqa: E402
from svy_sae.kernels import estimate_mse_prasad_rao  # noqa: E402
from svy_sae.kernels.optimization import fh  # noqa: E402

SEED = 20261130
DATA = Path("tests/reference/data")
OUT = Path("tests/reference/sae.json")
INTERCEPT = "(intercept)"
DATASETS = {
    "demo": ("sae_demo.csv", "direct", "sampling_variance", ["share_18_34", "share_65_plus"]),
    "saipe": ("sae_saipe.csv", "yi", "vi", ["prIRS", "nfIRS", "prCensus"]),
    "synthetic": ("sae_synthetic.csv", "direct", "sampling_variance", ["x1", "x2"]),
}


def write_synthetic(path: Path) -> None:
    """40 areas from the Fay-Herriot model: sigma2_u = 1, heterogeneous psi in [0.2, 4]."""
    rng = np.random.default_rng(SEED)
    m = 40
    x1, x2 = rng.uniform(0, 10, m), rng.normal(0, 1, m)
    psi = rng.uniform(0.2, 4.0, m)
    direct = 5.0 + 0.5 * x1 - 1.0 * x2 + rng.normal(0, 1.0, m) + rng.normal(0, np.sqrt(psi))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["area", "direct", "sampling_variance", "x1", "x2"])
        for row in zip(range(1, m + 1), direct, psi, x1, x2, strict=True):
            writer.writerow([row[0], *(repr(float(v)) for v in row[1:])])


def read(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    file, direct, variance, covariates = DATASETS[name]
    with (DATA / file).open() as f:
        rows = list(csv.DictReader(f))
    column = lambda key: np.array([float(r[key]) for r in rows])  # noqa: E731
    x = np.column_stack([np.ones(len(rows))] + [column(c) for c in covariates])
    return column(direct), column(variance), x, [INTERCEPT, *covariates]


def gls(y: np.ndarray, psi: np.ndarray, x: np.ndarray, sigma2_u: float) -> tuple[np.ndarray, np.ndarray]:
    v = 1.0 / (sigma2_u + psi)
    covariance = np.linalg.inv((x.T * v) @ x)
    return covariance @ ((x.T * v) @ y), covariance


def likelihood_root(y: np.ndarray, psi: np.ndarray, x: np.ndarray, method: str) -> tuple[float, float]:
    """(sigma2_u at the root of svy-sae's likelihood derivative, svy-sae's own fit)."""
    fit = fh.fit_fay_herriot_reml if method == "REML" else fh.fit_fay_herriot_ml
    loss = fh._reml_loss if method == "REML" else fh._ml_loss
    start = np.concatenate([np.zeros(x.shape[1]), [0.5 * np.log(np.median(psi))]])
    own = fit(start, x, y, psi, tol=1e-12, max_iter=10_000)
    log_sd = float(own.params[-1])
    derivative = jax.grad(lambda t: loss(jnp.array([t]), x, y, psi))
    root = brentq(lambda t: float(derivative(t)), log_sd - 1.0, log_sd + 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return float(np.exp(2 * root)), float(np.exp(2 * log_sd))


def moment_root(y: np.ndarray, psi: np.ndarray, x: np.ndarray) -> float:
    """sigma2_u solving the Fay-Herriot moment equation, truncated at 0."""
    m, p = x.shape

    def excess(a: float) -> float:
        beta, _ = gls(y, psi, x, a)
        return float(np.sum((y - x @ beta) ** 2 / (a + psi)) - (m - p))

    if excess(0.0) <= 0:
        return 0.0
    upper = float(np.var(y)) + 1.0
    while excess(upper) > 0:
        upper *= 2
    return float(brentq(excess, 0.0, upper, xtol=1e-300, rtol=4 * np.finfo(float).eps))


def reference(name: str) -> dict:
    y, psi, x, names = read(name)
    methods = {}
    for method in ("REML", "ML", "FH"):
        entry: dict = {}
        if method == "FH":
            sigma2_u = moment_root(y, psi, x)
            entry["sigma2_u_from"] = "brentq root of the FH moment equation (no svy-sae FH fit)"
        else:
            sigma2_u, own = likelihood_root(y, psi, x, method)
            entry["sigma2_u_from"] = f"brentq root of d/dlog(sigma_u) svy_sae fh._{method.lower()}_loss"
            entry["svy_sae_fit_sigma2_u"] = own
        beta, covariance = gls(y, psi, x, sigma2_u)
        estimate, mse, g1, g2, g3 = (
            np.asarray(a) for a in estimate_mse_prasad_rao(x, y, psi, beta, sigma2_u, covariance, method=method)
        )
        entry["call"] = f"estimate_mse_prasad_rao(X, y, D, beta, sigma2_u, beta_cov, method={method!r})"
        entry.update(
            sigma2_u=sigma2_u,
            beta=beta.tolist(),
            estimate=estimate.tolist(),
            mse=mse.tolist(),
            g1=g1.tolist(),
            g2=g2.tolist(),
            g3=g3.tolist(),
        )
        methods[method] = entry
    file, direct, variance, _ = DATASETS[name]
    return {
        "file": f"data/{file}",
        "direct": direct,
        "sampling_variance": variance,
        "covariates": names,
        "methods": methods,
    }


def main() -> None:
    write_synthetic(DATA / DATASETS["synthetic"][0])
    result = {
        "generator": "tests/reference/sae/make_sae_reference.py",
        "svy_sae": version("svy-sae"),
        "jax": version("jax"),
        "datasets": {name: reference(name) for name in DATASETS},
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")  # floats as shortest round-trip repr
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
