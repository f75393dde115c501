"""The report stage's parameters (`params.yaml` section `report`) and the reliability rule it checks.

The reliability rule belongs to the estimate stage (`estimate.suppression`); the
report stage reads it to verify, before publishing, that no estimate the rule
should have suppressed slipped through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from survey_pipeline.errors import ParamsError

FIGURE_FORMATS = ("png", "svg")


def _int_list(section: Mapping[str, Any], key: str, prefix: str, *, non_empty: bool) -> tuple[int, ...]:
    raw = section.get(key)
    if not isinstance(raw, list) or (non_empty and not raw):
        raise ParamsError(f"{prefix}.{key}", "expected a list of years" + (" (at least one)" if non_empty else ""))
    if any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
        raise ParamsError(f"{prefix}.{key}", f"expected whole-number years, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise ParamsError(f"{prefix}.{key}", f"duplicate years in {raw!r}")
    return tuple(raw)


def _number(section: Mapping[str, Any], key: str, prefix: str, *, low: float, high: float) -> float:
    raw = section.get(key)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ParamsError(f"{prefix}.{key}", f"expected a number, got {raw!r}")
    if not low <= raw <= high:
        raise ParamsError(f"{prefix}.{key}", f"must be between {low} and {high}, got {raw!r}")
    return float(raw)


@dataclass(frozen=True)
class ReportParams:
    """What the annual-report table shows and how figures are written."""

    achieved_waves: tuple[int, ...]
    target_years: tuple[int, ...]
    decimals: int
    figure_formats: tuple[str, ...] = FIGURE_FORMATS

    @classmethod
    def from_params(cls, section: Any) -> ReportParams:
        if not isinstance(section, Mapping):
            raise ParamsError("report", "expected a mapping")
        known = {"achieved_waves", "target_years", "decimals", "figure_formats"}
        unknown = sorted(str(k) for k in section if k not in known)
        if unknown:
            raise ParamsError(f"report.{unknown[0]}", f"unknown key (known: {', '.join(sorted(known))})")
        decimals = section.get("decimals", 0)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 3:
            raise ParamsError("report.decimals", f"expected a whole number from 0 to 3, got {decimals!r}")
        formats = section.get("figure_formats", list(FIGURE_FORMATS))
        if not isinstance(formats, list) or not formats or any(f not in FIGURE_FORMATS for f in formats):
            raise ParamsError("report.figure_formats", f"expected a non-empty list from {FIGURE_FORMATS}, got {formats!r}")
        return cls(
            achieved_waves=_int_list(section, "achieved_waves", "report", non_empty=True),
            target_years=_int_list(section, "target_years", "report", non_empty=False),
            decimals=decimals,
            figure_formats=tuple(dict.fromkeys(formats)),
        )


@dataclass(frozen=True)
class ReliabilityRule:
    """When an estimate may be published (NCHS presentation standard plus a minimum base).

    Publish only if n >= min_n, n_eff >= min_n_eff, CI width < max_ci_width and
    CI width / estimate <= max_relative_ci_width; flag it when df < flag_df_below.
    """

    min_n: int
    min_n_eff: float
    max_ci_width: float
    max_relative_ci_width: float
    flag_df_below: float

    @classmethod
    def from_params(cls, estimate_section: Any) -> ReliabilityRule:
        prefix = "estimate.suppression"
        section = estimate_section.get("suppression") if isinstance(estimate_section, Mapping) else None
        if not isinstance(section, Mapping):
            raise ParamsError(prefix, "expected a mapping with the reliability rule")
        min_n = section.get("min_n")
        if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 1:
            raise ParamsError(f"{prefix}.min_n", f"expected a whole number >= 1, got {min_n!r}")
        return cls(
            min_n=min_n,
            min_n_eff=_number(section, "min_n_eff", prefix, low=0, high=math.inf),
            max_ci_width=_number(section, "max_ci_width", prefix, low=0, high=1),
            max_relative_ci_width=_number(section, "max_relative_ci_width", prefix, low=0, high=math.inf),
            flag_df_below=_number(section, "flag_df_below", prefix, low=0, high=math.inf),
        )
