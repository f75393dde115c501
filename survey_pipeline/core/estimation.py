"""Domain means and totals: estimates, influence values and R's deff denominator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Domains:
    """Domain membership for a batch of shares, one array row per share: `index[q, row]`
    is the design row's domain for share q (0..n_domains-1; -1: in none) and `y[q, row]`
    its 0/1 value. Per-row design arrays broadcast against these (no copies per share)."""

    index: np.ndarray
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

    @classmethod
    def changes(cls, n_pairs: int) -> Contrasts:
        """One output per pair of domains (2j, 2j + 1): the second mean minus the first."""
        return cls(np.tile([-1.0, 1.0], n_pairs), np.repeat(np.arange(n_pairs), 2), n_pairs)


@dataclass(frozen=True)
class DomainMeans:
    """Per domain: weighted mean, weighted base, rows, rows with positive weight."""

    estimate: np.ndarray
    sum_weights: np.ndarray
    n: np.ndarray
    n_positive: np.ndarray


def flat(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-row design array (or a (shares x rows) array) as one flat (shares x rows) array."""
    return np.broadcast_to(values, shape).ravel()


def domain_means(domains: Domains, weights: np.ndarray, positive: np.ndarray | None = None) -> DomainMeans:
    """Weighted mean of `y` per domain (`weights`, `positive`: per design row).

    `positive` masks rows with weight != 0 (None: all rows).
    """
    shape = domains.index.shape
    idx = (domains.index + 1).ravel()
    size = domains.n_domains + 1
    w = flat(weights, shape)
    sum_w = np.bincount(idx, weights=w, minlength=size)[1:]
    sum_wy = np.bincount(idx, weights=w * domains.y.ravel(), minlength=size)[1:]
    n = np.bincount(idx, minlength=size)[1:]
    n_positive = n if positive is None else np.bincount(idx[flat(positive, shape)], minlength=size)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = sum_wy / sum_w
    return DomainMeans(estimate=estimate, sum_weights=sum_w, n=n, n_positive=n_positive)


def mean_influence(domains: Domains, weights: np.ndarray, means: DomainMeans, coefficient: np.ndarray) -> np.ndarray:
    """svymean's influence on the subset design, (shares x rows): coefficient_d (y - p_d) w / W_d,
    zero outside the domains."""
    scale = np.divide(coefficient, means.sum_weights, out=np.zeros_like(coefficient), where=means.sum_weights != 0)
    estimate = np.concatenate([[0.0], np.nan_to_num(means.estimate)])
    idx = domains.index + 1
    return (domains.y - estimate[idx]) * (weights * np.concatenate([[0.0], scale])[idx])


def total_influence(domains: Domains, weights: np.ndarray) -> np.ndarray:
    """svytotal's influence on the subset design, (shares x rows): w y, zero outside the domains."""
    return np.where(domains.index >= 0, weights * domains.y, 0.0)


def domain_spread(domains: Domains, weights: np.ndarray, means: DomainMeans) -> np.ndarray:
    """Weighted population variance per domain, sum w (y - mean)^2 / W (p (1 - p) for 0/1 y)."""
    estimate = np.concatenate([[0.0], np.nan_to_num(means.estimate)])
    idx = domains.index + 1
    squares = (domains.y - estimate[idx]) ** 2 * weights
    size = domains.n_domains + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(idx.ravel(), weights=flat(squares, idx.shape), minlength=size)[1:] / means.sum_weights


def srs_variance(spread: np.ndarray, sum_weights: np.ndarray, n_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Denominator of R's svymean(deff = TRUE), and where it was replaced.

    `spread` is the weighted population variance of y in the domain (p (1 - p) for a
    0/1 variable). R: svyvar(x) (psum - nobs) / (psum nobs) = spread (W - n) / (W (n - 1)).
    When the weights sum to at most n, R returns NA; we use R's deff = "replace"
    denominator spread / (n - 1) instead and flag those domains.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        base = spread / (n_positive - 1)
        without_replacement = base * (sum_weights - n_positive) / sum_weights
    replaced = sum_weights <= n_positive
    return np.where(replaced, base, without_replacement), replaced
