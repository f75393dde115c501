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


def domain_means(
    y: np.ndarray, weights: np.ndarray, domain: np.ndarray, n_domains: int,
    positive: np.ndarray | None = None,
) -> DomainMeans:
    """Weighted mean of `y` per domain (`domain[row]` in 0..D-1, -1 = in no domain).

    `positive` masks rows with weight != 0 (None: all rows).
    """
    idx = domain + 1
    size = n_domains + 1
    sum_w = np.bincount(idx, weights=weights, minlength=size)[1:]
    sum_wy = np.bincount(idx, weights=weights * y, minlength=size)[1:]
    n = np.bincount(idx, minlength=size)[1:]
    n_positive = n if positive is None else np.bincount(idx[positive], minlength=size)[1:]
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
    coefficient = np.ones(means.sum_weights.size) if coefficient is None else coefficient
    scale = np.divide(coefficient, means.sum_weights, out=np.zeros_like(coefficient), where=means.sum_weights != 0)
    estimate = np.nan_to_num(means.estimate)
    idx = domain + 1
    return (y - np.concatenate([[0.0], estimate])[idx]) * (weights * np.concatenate([[0.0], scale])[idx])


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
