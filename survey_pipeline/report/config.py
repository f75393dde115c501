"""The report stage's parameters (`params.yaml` section `report`).

The reliability rule it checks before publishing is the estimate stage's
(`estimate.suppression`, parsed by `survey_pipeline.reliability.SuppressionRule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.params import SectionReader
from survey_pipeline.spec import QuestionnaireSpec

FIGURE_FORMATS = ("png", "svg")


@dataclass(frozen=True)
class ReportParams:
    """What the annual-report table shows and how figures are written."""

    achieved_waves: tuple[int, ...]
    target_years: tuple[int, ...]
    decimals: int
    figure_formats: tuple[str, ...] = FIGURE_FORMATS

    @classmethod
    def from_params(cls, section: Any) -> ReportParams:
        read = SectionReader(section, "report", [f.name for f in fields(cls)])
        return cls(
            achieved_waves=read.whole_numbers("achieved_waves", non_empty=True),
            target_years=read.whole_numbers("target_years"),
            decimals=read.whole_number("decimals", 0, 0, 3),
            figure_formats=read.choices("figure_formats", FIGURE_FORMATS, list(FIGURE_FORMATS)),
        )

    def check_waves(self, spec: QuestionnaireSpec, run_waves: Sequence[int], *, metrics_file: str) -> None:
        """Every "Behaald" column is a wave the spec measured and this run has data for (per the validate
        stage's `metrics_file`), or a wave the spec declares not measured (its column shows the reason):
        never a silent column of dashes."""
        for wave in self.achieved_waves:
            if wave in spec.not_measured:
                continue
            if wave not in spec.waves:
                raise ParamsError(
                    "report.achieved_waves",
                    f"wave {wave} is neither measured (survey.waves {list(spec.waves)}) nor declared not measured "
                    f"(survey.not_measured) in the spec",
                )
            if wave not in run_waves:
                raise InputError(
                    f"report.achieved_waves lists wave {wave}, but this run has no valid rows for it",
                    file=metrics_file, rule="missing_wave",
                )
