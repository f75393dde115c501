"""Domain means of 0/1 variables: estimates, influence values and R's deff denominator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DomainMeans:
    """Per domain: weighted mean, weighted base, rows, rows with positive weight."""

    estimate: np.ndarray
    sum_weights: np.ndarray
    n: np.ndarray
    n_positive: np.ndarray


def domain_means(y: np.ndarray, weights: np.ndarray, domain: np.ndarray, n_domains: int) -> DomainMeans:
    """Weighted mean of `y` per domain (`domain[row]` in 0..D-1, -1 = in no domain)."""
    inside = domain >= 0
    d, w, yi = domain[inside], weights[inside], y[inside]
    sum_w = np.bincount(d, weights=w, minlength=n_domains)
    sum_wy = np.bincount(d, weights=w * yi, minlength=n_domains)
    n = np.bincount(d, minlength=n_domains)
    n_positive = np.bincount(d[w != 0], minlength=n_domains)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = sum_wy / sum_w
    return DomainMeans(estimate=estimate, sum_weights=sum_w, n=n, n_positive=n_positive)


def mean_influence(
    y: np.ndarray, weights: np.ndarray, domain: np.ndarray, means: DomainMeans,
    coefficient: np.ndarray | None = None,
) -> np.ndarray:
    """svymean's influence on the subset design: (y - p_d) w / W_d, zero outside domains.

    `coefficient[d]` multiplies domain d's influence (contrasts of domain means).
    """
    inside = domain >= 0
    d = domain[inside]
    coefficient = np.ones(means.sum_weights.size) if coefficient is None else coefficient
    scale = np.divide(coefficient, means.sum_weights, out=np.zeros_like(coefficient), where=means.sum_weights != 0)
    a = np.zeros(y.shape[0])
    a[inside] = (y[inside] - means.estimate[d]) * weights[inside] * scale[d]
    return a


def srs_variance(p: np.ndarray, sum_weights: np.ndarray, n_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Denominator of R's svymean(deff = TRUE) for a 0/1 variable, and where it was replaced.

    R: svyvar(x) (psum - nobs) / (psum nobs) = p (1 - p) (W - n) / (W (n - 1)). When the
    weights sum to at most n, R returns NA; we use R's deff = "replace" denominator
    p (1 - p) / (n - 1) instead and flag those domains.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        base = p * (1 - p) / (n_positive - 1)
        without_replacement = base * (sum_weights - n_positive) / sum_weights
    replaced = sum_weights <= n_positive
    return np.where(replaced, base, without_replacement), replaced
