"""Domain means of 0/1 variables: estimates, influence values and R's deff denominator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Entries:
    """Members of a batch of domains: per entry its design row, domain (0..n_domains-1)
    and 0/1 value. A row is an entry of every domain it belongs to."""

    rows: np.ndarray
    domain: np.ndarray
    y: np.ndarray
    n_domains: int


@dataclass(frozen=True)
class Contrasts:
    """Outputs as sums of domain means: domain d adds `coefficient[d]` times its mean to
    output `output[d]` (0..n_out-1)."""

    coefficient: np.ndarray
    output: np.ndarray
    n_out: int

    @classmethod
    def identity(cls, n_domains: int) -> Contrasts:
        """One output per domain: the domain mean itself."""
        return cls(np.ones(n_domains), np.arange(n_domains), n_domains)


@dataclass(frozen=True)
class DomainMeans:
    """Per domain: weighted mean, weighted base, rows, rows with positive weight."""

    estimate: np.ndarray
    sum_weights: np.ndarray
    n: np.ndarray
    n_positive: np.ndarray


def domain_means(entries: Entries, weights: np.ndarray, positive: np.ndarray | None = None) -> DomainMeans:
    """Weighted mean of the entries' `y` per domain (`weights`, `positive`: per design row).

    `positive` masks rows with weight != 0 (None: all rows).
    """
    domain, size = entries.domain, entries.n_domains
    w = weights[entries.rows]
    # float64 also without entries (np.bincount then returns int64, even with weights)
    sum_w = np.bincount(domain, weights=w, minlength=size).astype(np.float64, copy=False)
    sum_wy = np.bincount(domain, weights=w * entries.y, minlength=size).astype(np.float64, copy=False)
    n = np.bincount(domain, minlength=size)
    n_positive = n if positive is None else np.bincount(domain[positive[entries.rows]], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = sum_wy / sum_w
    return DomainMeans(estimate=estimate, sum_weights=sum_w, n=n, n_positive=n_positive)


def mean_influence(entries: Entries, weights: np.ndarray, means: DomainMeans, coefficient: np.ndarray) -> np.ndarray:
    """svymean's influence on the subset design per entry: coefficient_d (y - p_d) w / W_d."""
    scale = np.divide(coefficient, means.sum_weights, out=np.zeros_like(coefficient), where=means.sum_weights != 0)
    estimate = np.nan_to_num(means.estimate)
    d = entries.domain
    return (entries.y - estimate[d]) * (weights[entries.rows] * scale[d])


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
