"""Multiple-comparison adjustment of p-values, as R's p.adjust (stats 4.2)."""

from __future__ import annotations

import numpy as np

# Method names as the output states them, with R's p.adjust name.
ADJUSTMENTS = {"holm": "holm", "BH": "BH"}


def p_adjust(p_values: np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values, R's p.adjust(p, method): "holm" (family-wise error, Holm's
    step-down) or "BH" (false discovery rate, Benjamini-Hochberg step-up).

    Missing values (NaN) stay missing and do not count in the number of tests (R's
    n = sum(!is.na(p))).
    """
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {method!r}")
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    n = present.size
    if n == 0:
        return out
    values = p[present]
    if method == "holm":
        order = np.argsort(values, kind="stable")
        adjusted = np.minimum(1.0, np.maximum.accumulate((n - np.arange(n)) * values[order]))
    else:
        order = np.argsort(-values, kind="stable")
        adjusted = np.minimum(1.0, np.minimum.accumulate(n / np.arange(n, 0, -1) * values[order]))
    result = np.empty(n)
    result[order] = adjusted
    out[present] = result
    return out
