"""The report stage's parameters (`params.yaml` section `report`).

The reliability rule it checks before publishing is the estimate stage's
(`estimate.suppression`, parsed by `survey_pipeline.reliability.SuppressionRule`).
"""

from __future__ import annotations

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
