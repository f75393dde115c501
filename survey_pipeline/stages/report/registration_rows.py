"""Registration figures in the report (pure): annual-table cells, target-table rows, the workbook sheet.

The values come from `outputs/estimate/registrations.parquet` (contract
`EstimateRegistrations`, `survey_pipeline/registrations.py`) unchanged, only formatted:
a count with Dutch thousands separators ("30.994"), a percentage as the survey
percentages ("37%"). A registration is not a sample: no interval, no suppression;
a year without a value is "-", a value's note becomes a footnote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from survey_pipeline.registrations import PERCENT, previous_year
from survey_pipeline.spec import QuestionnaireSpec, Registration
from survey_pipeline.stages.report.formatting import (
    MISSING_TEXT,
    dutch_target,
    format_number,
    format_percent,
    format_points,
)
from survey_pipeline.stages.report.sheets import KIND_TEXT, TARGET_STATUS_TEXT
from survey_pipeline.stages.report.tables import judgement_text
from survey_pipeline.targets import parse_target

NO_INTERVAL_TEXT = "n.v.t. (registratie)"
UNIT_TEXT = {"count": "aantal", "percentage": "percentage"}
JUDGED = ("met", "not_met", "indistinguishable")
TARGET_CAPTION = (
    " Registratiecijfers zijn geen steekproefuitkomsten: zij hebben geen betrouwbaarheidsinterval en hun "
    "streefwaarde is beoordeeld op de waarde zelf (een toename of afname ten opzichte van het laatste eerdere "
    "jaar met een waarde; \u2018stabiel\u2019 alleen bij een gelijke waarde)."
)


class _Column(Protocol):
    kind: str  # "achieved" | "target"
    year: int


@dataclass(frozen=True)
class RegistrationCell:
    """One cell of a registration's row in the annual table."""

    text: str
    value: float | None = None  # a share (percentage / 100) or a count: the workbook's typed number
    count: bool = False
    note: str = ""  # the file's note on this value: a footnote


def format_value(value: float, unit: str, decimals: int) -> str:
    """A registered value as printed: a count "30.994", a percentage as the survey shares ("37%")."""
    if unit == "count":
        return format_number(value)
    return format_percent(value / PERCENT, decimals)


def annual_cells(
    table: pd.DataFrame, registration: Registration, columns: Sequence[_Column], decimals: int
) -> tuple[RegistrationCell, ...]:
    """A registration's cells for the annual table's Behaald/Beoogd columns."""
    rows = table[table["indicator_id"] == registration.id].set_index("year")
    cells = []
    for column in columns:
        if column.kind != "achieved":
            target = registration.targets.get(column.year)
            cells.append(RegistrationCell(dutch_target(target) if target else MISSING_TEXT))
        elif column.year not in rows.index:
            cells.append(RegistrationCell(MISSING_TEXT))
        else:
            row = rows.loc[column.year]
            value, count = float(row["value"]), registration.unit == "count"
            cells.append(
                RegistrationCell(
                    format_value(value, registration.unit, decimals),
                    value if count else value / PERCENT,
                    count,
                    str(row["note"]).strip(),
                )
            )
    return tuple(cells)


def _change_text(table: pd.DataFrame, row, decimals: int) -> str:
    """The change the verdict rests on ("-3.253 t.o.v. 2020 (aantal)", "+1,8 t.o.v. 2020"); "n.v.t." for a level target."""
    if parse_target(row.target).direction is None:
        return "n.v.t."
    values = table[table["indicator_id"] == row.indicator_id].set_index("year")["value"]
    previous = previous_year(values.index, int(row.year))
    if previous is None:
        return MISSING_TEXT
    difference = float(row.value) - float(values.loc[previous])
    if row.unit == "count":
        sign = "+" if difference > 0 else ""
        return f"{sign}{format_number(difference)} t.o.v. {previous} (aantal)"
    return f"{format_points(difference / PERCENT)} t.o.v. {previous}"


def annual_rows(
    table: pd.DataFrame, spec: QuestionnaireSpec, columns: Sequence[_Column], decimals: int
) -> dict[str, tuple[RegistrationCell, ...]]:
    """Every registration of the spec: its annual-table cells, by id (`tables.build_annual_table`)."""
    return {
        registration.id: annual_cells(table, registration, columns, decimals) for registration in spec.registrations
    }


def target_rows(table: pd.DataFrame, achieved_years: Sequence[int], decimals: int) -> pd.DataFrame:
    """The judged registration targets of the achieved years, as `tables.format_target_table` prints
    the survey's (same columns): the value, no interval, the change where the target is one, the verdict."""
    judged = table[table["target_status"].isin(JUDGED) & table["year"].isin(list(achieved_years))]
    return pd.DataFrame(
        {
            "indicator_id": judged["indicator_id"].to_numpy(),
            "Indicator": judged["label"].to_numpy(),
            "Jaar": judged["year"].astype(str).to_numpy(),
            "Streefwaarde": [dutch_target(t) for t in judged["target"]],
            "Behaald": [format_value(v, u, decimals) for v, u in zip(judged["value"], judged["unit"])],
            "Betrouwbaarheidsinterval": NO_INTERVAL_TEXT,
            "Verandering (procentpunt)": [_change_text(table, row, decimals) for row in judged.itertuples()],
            "Oordeel": [judgement_text(s, f) for s, f in zip(judged["target_status"], judged["flags"])],
        }
    )


SHEET_HEADERS = (
    "Indicator (code)",
    "Indicator",
    "Soort",
    "Eenheid",
    "Jaar",
    "Aantal",
    "Percentage",
    "Bron",
    "Toelichting",
    "Streefwaarde",
    "Oordeel streefwaarde",
)


def workbook_sheet(table: pd.DataFrame) -> pd.DataFrame:
    """The registrations sheet of `tabellen.xlsx`: a count in `Aantal` (a whole number), a percentage in
    `Percentage` (a share, shown with a percent format); Dutch headers and verdicts."""
    count = table["unit"] == "count"
    return pd.DataFrame(
        {
            "Indicator (code)": table["indicator_id"],
            "Indicator": table["label"],
            "Soort": table["kind"].map(KIND_TEXT),
            "Eenheid": table["unit"].map(UNIT_TEXT),
            "Jaar": table["year"],
            "Aantal": table["value"].where(count).round().astype("Int64"),
            "Percentage": (table["value"] / PERCENT).where(~count),
            "Bron": table["source"],
            "Toelichting": table["note"],
            "Streefwaarde": [dutch_target(t) if t else "" for t in table["target"]],
            "Oordeel streefwaarde": [TARGET_STATUS_TEXT.get(s, s) for s in table["target_status"]],
        },
        columns=list(SHEET_HEADERS),
    ).reset_index(drop=True)
