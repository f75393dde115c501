"""The report stage's parameters (`params.yaml` section `report`).

The reliability rule it checks before publishing is the estimate stage's
(`estimate.suppression`, parsed by `survey_pipeline.reliability.SuppressionRule`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from survey_pipeline.params import SectionReader

FIGURE_FORMATS = ("png", "svg")
# SVG only unless PNG is asked for: the HTML report shows the SVG, and a PNG costs as much again to draw.
DEFAULT_FIGURE_FORMATS = ("svg",)


@dataclass(frozen=True)
class ReportParams:
    """What the annual-report table shows and how figures are written."""

    achieved_waves: tuple[int, ...]
    target_years: tuple[int, ...]
    decimals: int
    figure_formats: tuple[str, ...] = DEFAULT_FIGURE_FORMATS

    @classmethod
    def from_params(cls, section: Any) -> ReportParams:
        read = SectionReader(section, "report", [f.name for f in fields(cls)])
        return cls(
            achieved_waves=read.whole_numbers("achieved_waves", non_empty=True),
            target_years=read.whole_numbers("target_years"),
            decimals=read.whole_number("decimals", 0, 0, 3),
            figure_formats=read.choices("figure_formats", FIGURE_FORMATS, list(DEFAULT_FIGURE_FORMATS)),
        )
