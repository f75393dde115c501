"""The workbook's tables in Dutch, for the office that opens `tabellen.xlsx` (pure).

The published tables (Parquet, CSV) keep their English column names and codes:
they are the data contract. The workbook shows the same rows with Dutch headers,
codes spelled out from the spec (breakdown, answer type, target verdict) and
suppression reasons and flags in Dutch (`tables.REASON_TEXT`); shares stay numbers
(the workbook formats them as percentages). A wijk x jaar pivot per indicator
puts the published wijk estimates side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey_pipeline.spec import Indicator, QuestionnaireSpec
from survey_pipeline.stages.report.formatting import MISSING_TEXT, dutch_target, not_measured_text
from survey_pipeline.stages.report.tables import STATUS_TEXT, TOTAL, describe_reason
from survey_pipeline.targets import KEY_FIGURE, NO_TARGET

# English column -> Dutch header, in the order the sheet shows them (columns not listed are left out).
INDICATOR_HEADERS = {
    "indicator_id": "Indicator (code)",
    "label": "Indicator",
    "kind": "Soort",
    "variable": "Vraag",
    "wave": "Jaar",
    "breakdown": "Uitsplitsing",
    "breakdown_code": "Code",
    "breakdown_label": "Groep",
    "base_text": "Basis",
    "estimate": "Percentage",
    "se": "Standaardfout",
    "ci_lower": "Ondergrens",
    "ci_upper": "Bovengrens",
    "ci_method": "Intervalmethode",
    "level": "Betrouwbaarheid",
    "df": "Vrijheidsgraden",
    "deff": "Designeffect",
    "n_eff": "Effectieve steekproefomvang",
    "n": "Aantal respondenten",
    "sum_weights": "Som van de gewichten",
    "suppressed": "Niet gepubliceerd",
    "suppression_reason": "Reden niet gepubliceerd",
    "flags": "Opmerking",
    "target": "Streefwaarde",
    "target_status": "Oordeel streefwaarde",
}
CHANGE_HEADERS = {
    "indicator_id": "Indicator (code)",
    "wave_from": "Van jaar",
    "wave_to": "Naar jaar",
    "breakdown": "Uitsplitsing",
    "breakdown_code": "Code",
    "breakdown_label": "Groep",
    "estimate_from": "Percentage van",
    "estimate_to": "Percentage naar",
    "difference": "Verschil",
    "se": "Standaardfout",
    "ci_lower": "Ondergrens",
    "ci_upper": "Bovengrens",
    "df": "Vrijheidsgraden",
    "p_value": "p-waarde",
    "se_independent": "Standaardfout (onafhankelijke metingen)",
    "n_both": "Aantal respondenten in beide metingen",
    "suppressed": "Niet gepubliceerd",
    "suppression_reason": "Reden niet gepubliceerd",
}
DISTRIBUTION_HEADERS = {
    "variable": "Vraag (code)",
    "label": "Vraag",
    "wave": "Jaar",
    "base_text": "Basis",
    "breakdown": "Uitsplitsing",
    "breakdown_code": "Code",
    "breakdown_label": "Groep",
    "code": "Antwoordcode",
    "code_label": "Antwoord",
    "code_type": "Soort antwoord",
    "estimate": "Percentage",
    "se": "Standaardfout",
    "ci_lower": "Ondergrens",
    "ci_upper": "Bovengrens",
    "df": "Vrijheidsgraden",
    "n_base": "Aantal respondenten",
    "sum_weights_base": "Som van de gewichten",
    "suppressed": "Niet gepubliceerd",
    "suppression_reason": "Reden niet gepubliceerd",
}
SMALL_AREA_HEADERS = {
    "indicator_id": "Indicator (code)",
    "label": "Indicator",
    "wave": "Jaar",
    "area": "Code",
    "area_label": "Gebied",
    "source": "Bron",
    "estimate": "Percentage",
    "ci_lower": "Ondergrens",
    "ci_upper": "Bovengrens",
}
# Shares (formatted as percentages) and whole-number codes (no thousands separator), by Dutch header.
SHARE_HEADERS = frozenset(
    {
        "Percentage",
        "Standaardfout",
        "Ondergrens",
        "Bovengrens",
        "Betrouwbaarheid",
        "Percentage van",
        "Percentage naar",
        "Verschil",
        "Standaardfout (onafhankelijke metingen)",
    }
)
CODE_HEADERS = frozenset(
    {"Jaar", "Van jaar", "Naar jaar", "Eerste jaar", "Laatste jaar", "Code", "Antwoordcode", "Vergeleken met"}
)
KIND_TEXT = {"prestatie": "prestatie-indicator", "kengetal": "kengetal"}
TARGET_STATUS_TEXT = {**STATUS_TEXT, KEY_FIGURE: "kengetal (geen streefwaarde)", NO_TARGET: "geen streefwaarde"}
YES_NO = {True: "ja", False: "nee"}
TOTAL_TEXT = "Totaal"


def breakdown_text(spec: QuestionnaireSpec, breakdown: str) -> str:
    """ "Totaal" for the whole municipality, else the background variable's Dutch label ("Wijk")."""
    if breakdown == TOTAL:
        return TOTAL_TEXT
    return spec.background[breakdown].label if breakdown in spec.background else breakdown


def _reasons(values: pd.Series) -> list[str]:
    return [describe_reason(v) if str(v).strip() else "" for v in values]


def _notes(flags: pd.Series) -> list[str]:
    """Reliability flags and why a target could not be judged, in Dutch ("" when none)."""
    return [describe_reason(str(f)) if str(f).strip() else "" for f in flags]


def _rename(frame: pd.DataFrame, headers: Mapping[str, str]) -> pd.DataFrame:
    return frame.loc[:, [c for c in headers if c in frame]].rename(columns=dict(headers)).reset_index(drop=True)


def _common(frame: pd.DataFrame, spec: QuestionnaireSpec) -> dict[str, list]:
    """Translations shared by the three tables: breakdown name, yes/no, suppression reason."""
    out: dict[str, list] = {
        "breakdown": [breakdown_text(spec, b) for b in frame["breakdown"]],
        "suppressed": [YES_NO[bool(s)] for s in frame["suppressed"]],
    }
    out["suppression_reason"] = [
        text if hidden else "" for text, hidden in zip(_reasons(frame["suppression_reason"]), frame["suppressed"])
    ]
    return out


def dutch_indicators(frame: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The published indicator table with Dutch headers and values."""
    out = frame.assign(
        **_common(frame, spec),
        kind=[KIND_TEXT.get(k, k) for k in frame["kind"]],
        flags=_notes(frame["flags"]),
        target=[dutch_target(t) if t else "" for t in frame["target"]],
        target_status=[TARGET_STATUS_TEXT.get(s, s) for s in frame["target_status"]],
    )
    return _rename(out, INDICATOR_HEADERS)


def dutch_changes(frame: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The published change table with Dutch headers and values."""
    return _rename(frame.assign(**_common(frame, spec)), CHANGE_HEADERS)


def dutch_distributions(frame: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The published distribution table with Dutch headers and values; the answer type in the spec's words."""

    def code_type(variable: str, kind: str) -> str:
        missing = spec.variables[variable].missing if variable in spec.variables else spec.missing
        return {"answer": "antwoord", "dont_know": missing.dont_know.label, "no_answer": missing.no_answer.label}.get(
            kind, kind
        )

    out = frame.assign(
        **_common(frame, spec), code_type=[code_type(v, t) for v, t in zip(frame["variable"], frame["code_type"])]
    )
    return _rename(out, DISTRIBUTION_HEADERS)


def dutch_small_area(frame: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The published area figures (wijkcijfers) with Dutch headers; the area column named after the
    spec's area variable ("Wijk"); the source is already Dutch (direct, modelschatting, niet gepubliceerd)."""
    headers = dict(SMALL_AREA_HEADERS)
    if spec.area_variable is not None:
        headers["area_label"] = spec.background[spec.area_variable].label
    return _rename(frame, headers)


@dataclass(frozen=True)
class Pivot:
    """One indicator's wijk x jaar table: shares where published, else "-" with the Dutch reason."""

    indicator: Indicator
    title: str
    base: str
    row_header: str
    waves: tuple[int, ...]
    rows: tuple[tuple[str, tuple[float | str, ...]], ...]  # (wijk label, one cell per wave)


def area_pivots(indicators: pd.DataFrame, spec: QuestionnaireSpec, order: Sequence[Indicator]) -> list[Pivot]:
    """Per indicator: the whole municipality and every area (spec `area_variable`, e.g. wijk; spec order)
    by wave, from the published table."""
    area = spec.area_variable
    if area is None:
        return []
    waves = tuple(sorted(int(w) for w in indicators["wave"].unique()))
    codes = spec.background[area].codes
    keyed = indicators.assign(_code=indicators["breakdown_code"].fillna(-1.0))
    keyed = keyed[keyed["breakdown"].isin([TOTAL, area])].set_index(["indicator_id", "breakdown", "_code", "wave"])
    pivots = []
    for ind in order:
        if not (keyed.index.get_level_values("indicator_id") == ind.id).any():
            continue

        def cell(breakdown: str, code: float, wave: int, ind: Indicator = ind) -> float | str:
            key = (ind.id, breakdown, code, wave)
            if key not in keyed.index:
                return not_measured_text(spec.not_measured_reason(wave, ind.variable))
            row = keyed.loc[key]
            if bool(row["suppressed"]) or not np.isfinite(row["estimate"]):
                return f"{MISSING_TEXT} ({describe_reason(row['suppression_reason'])})"
            return float(row["estimate"])

        rows = [(TOTAL_TEXT, tuple(cell(TOTAL, -1.0, w) for w in waves))]
        rows += [(label, tuple(cell(area, float(code), w) for w in waves)) for code, label in codes.items()]
        pivots.append(
            Pivot(
                ind,
                ind.label,
                f"Percentage {spec.base_text(ind.base)}.",
                spec.background[area].label,
                waves,
                tuple(rows),
            )
        )
    return pivots
