"""Population figures for weighting: margins per wave, checked before use.

`data/population/margins.csv` holds one row per (wave, variable, code) with the
number of residents (18+). Before weights are computed for a wave, its margins are
checked: every margin must sum to the same total within a relative tolerance, and
the categories must match the sample's in both directions (a category without
respondents cannot be weighted to; a respondent in a category the population does
not have cannot be weighted at all). An optional cells file (`wave`, one column per
cell variable, `count`) carries the joint table for post-stratification.

Waves, codes and counts are whole numbers written as digits only (`survey_pipeline.numbers`):
`75.826` or `75,826` is an error naming file, row and column, never 75.826 residents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from survey_pipeline.errors import InputError
from survey_pipeline.numbers import read_text_csv, whole_number_column
from survey_pipeline.spec import QuestionnaireSpec

MARGIN_COLUMNS = ("wave", "variable", "code", "label", "count")
RULE_FILE = "population_file"
RULE_TOTALS = "margin_totals"
RULE_CATEGORY = "margin_category"


@dataclass(frozen=True)
class Margin:
    """One variable's population counts in one wave, categories in code order."""

    variable: str
    codes: np.ndarray
    labels: tuple[str, ...]
    counts: np.ndarray

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def scaled(self, total: float) -> Margin:
        return Margin(self.variable, self.codes, self.labels, self.counts * (total / self.total))


@dataclass(frozen=True)
class WaveMargins:
    """The checked margins of one wave; `max_total_difference` is the largest relative
    difference between a margin's total and the first margin's before scaling."""

    wave: int
    margins: tuple[Margin, ...]
    total: float
    max_total_difference: float


def _csv_row(index: int) -> int:
    """Line number in the CSV file of data row `index` (0-based; line 1 is the header)."""
    return int(index) + 2


def _whole_numbers(raw: pd.DataFrame, column: str, path: Path, minimum: int | None) -> np.ndarray:
    """A column of whole numbers, parsed strictly (no thousands separators, decimals or blanks)."""
    return whole_number_column(
        raw[column].tolist(), file=str(path), column=column, rule=RULE_FILE, first_row=_csv_row(0), minimum=minimum
    )


def load_margins(path: Path, spec: QuestionnaireSpec) -> pd.DataFrame:
    """Read and check the margins file; codes must be the spec's background codes.

    Returns columns wave (int64), variable (str), code (int64), label (str), count (float64).
    """
    if not path.exists():
        raise InputError("population margins file not found", file=str(path), rule=RULE_FILE)
    raw = read_text_csv(path, rule=RULE_FILE)
    missing = [c for c in MARGIN_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(
            f"missing column(s) {missing}; expected {list(MARGIN_COLUMNS)}", file=str(path), rule=RULE_FILE
        )
    if raw.empty:
        raise InputError("no rows", file=str(path), rule=RULE_FILE)
    for column in ("variable", "label"):
        blank = raw[column].str.strip().eq("")
        if blank.any():
            raise InputError(
                "empty value", file=str(path), row=_csv_row(np.flatnonzero(blank)[0]), column=column, rule=RULE_FILE
            )
    out = pd.DataFrame({"variable": raw["variable"], "label": raw["label"]})
    for column in ("wave", "code", "count"):
        values = _whole_numbers(raw, column, path, minimum=0 if column == "count" else None)
        out[column] = values.astype("float64") if column == "count" else values
    unknown = ~out["variable"].isin(list(spec.background))
    if unknown.any():
        raise InputError(
            f"variable is not a background variable of the spec ({', '.join(spec.background)})",
            file=str(path),
            row=_csv_row(np.flatnonzero(unknown)[0]),
            column="variable",
            rule=RULE_FILE,
        )
    for index, (variable, code) in enumerate(zip(out["variable"], out["code"])):
        if code not in spec.background[variable].codes:
            raise InputError(
                f"code {code} is not a code of '{variable}' in the spec",
                file=str(path),
                row=_csv_row(index),
                column="code",
                rule=RULE_FILE,
            )
    duplicated = out.duplicated(["wave", "variable", "code"])
    if duplicated.any():
        raise InputError(
            "duplicate (wave, variable, code) row",
            file=str(path),
            row=_csv_row(np.flatnonzero(duplicated)[0]),
            rule=RULE_FILE,
        )
    return out[list(MARGIN_COLUMNS)]


def wave_margins(
    margins: pd.DataFrame,
    wave: int,
    variables: Sequence[str],
    tolerance: float,
    *,
    file: str,
    categories: Mapping[str, Mapping[int, str]] | None = None,
) -> WaveMargins:
    """The margins of `variables` in `wave`, checked for equal totals.

    Totals that differ by at most `tolerance` (relative to the first margin's total)
    are scaled to the first margin's total so raking can converge; larger
    differences raise `InputError` naming both margins and, given the spec's
    `categories` per variable, the categories that have no row in the file.
    """
    rows = margins[margins["wave"] == wave]
    if rows.empty:
        raise InputError(f"no population margins for wave {wave}", file=file, rule=RULE_TOTALS)
    found = []
    for variable in variables:
        part = rows[rows["variable"] == variable].sort_values("code")
        if part.empty:
            raise InputError(
                f"wave {wave}: no population margin for '{variable}'", file=file, column=variable, rule=RULE_TOTALS
            )
        found.append(
            Margin(variable, part["code"].to_numpy(np.int64), tuple(part["label"]), part["count"].to_numpy(float))
        )
    reference = found[0]
    if reference.total <= 0:
        raise InputError(
            f"wave {wave}: margin '{reference.variable}' sums to 0",
            file=file,
            column=reference.variable,
            rule=RULE_TOTALS,
        )
    worst = 0.0
    for margin in found[1:]:
        difference = abs(margin.total - reference.total) / reference.total
        if difference > tolerance:
            absent = _absent_categories((reference, margin), categories or {})
            raise InputError(
                f"wave {wave}: margin '{margin.variable}' sums to {margin.total:,.0f} but "
                f"'{reference.variable}' sums to {reference.total:,.0f} (relative difference "
                f"{difference:.2e} > tolerance {tolerance:.2e})"
                + (f"; no row in the file for {absent}" if absent else ""),
                file=file,
                column=margin.variable,
                rule=RULE_TOTALS,
            )
        worst = max(worst, difference)
    scaled = tuple(m if m is reference else m.scaled(reference.total) for m in found)
    return WaveMargins(wave, scaled, reference.total, worst)


def _absent_categories(found: Sequence[Margin], categories: Mapping[str, Mapping[int, str]]) -> str:
    """`wijk 5 (Noorderplantsoenbuurt), ...`: spec categories of these margins without a row."""
    absent = [
        f"{margin.variable} {code} ({label})"
        for margin in found
        for code, label in categories.get(margin.variable, {}).items()
        if code not in set(margin.codes.tolist())
    ]
    return ", ".join(absent)


def check_categories(
    margin: Margin, sample_codes: np.ndarray, wave: int, *, file: str, labels: Mapping[int, str]
) -> np.ndarray:
    """Positions of the sample's codes in `margin`, after checking both directions.

    Raises `InputError` for a sample category the population lacks (or has a count
    of 0) and for a population category (count > 0) without respondents.
    """
    present = {int(code): int(n) for code, n in pd.Series(sample_codes).value_counts().sort_index().items()}
    known = dict(zip(margin.codes.tolist(), margin.counts.tolist()))
    for code, n in present.items():
        if code not in known or known[code] <= 0:
            raise InputError(
                f"wave {wave}: margin '{margin.variable}' category {code} ({labels.get(code, '?')}) "
                f"has {n} respondent(s) but no population",
                file=file,
                column=margin.variable,
                rule=RULE_CATEGORY,
            )
    for code, count in known.items():
        if count > 0 and code not in present:
            raise InputError(
                f"wave {wave}: margin '{margin.variable}' category {code} ({labels.get(code, '?')}) has a "
                f"population of {count:,.0f} but no respondents in the sample; collapse it with another "
                f"category or weight without this margin",
                file=file,
                column=margin.variable,
                rule=RULE_CATEGORY,
            )
    return np.searchsorted(margin.codes, sample_codes.astype(np.int64))


def load_cells(path: Path, spec: QuestionnaireSpec, variables: Sequence[str]) -> pd.DataFrame:
    """Read the joint population table for post-stratification, summed to `variables`.

    Columns: wave, the cell variables (and possibly more, which are summed over), count.
    """
    if not path.exists():
        raise InputError("population cells file not found", file=str(path), rule=RULE_FILE)
    raw = read_text_csv(path, rule=RULE_FILE)
    needed = ["wave", *variables, "count"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path), rule=RULE_FILE)
    out = pd.DataFrame(index=raw.index)
    for column in needed:
        values = _whole_numbers(raw, column, path, minimum=0 if column == "count" else None)
        out[column] = values.astype("float64") if column == "count" else values
    for variable in variables:
        unknown = ~out[variable].isin(list(spec.background[variable].codes))
        if unknown.any():
            raise InputError(
                f"code is not a code of '{variable}' in the spec",
                file=str(path),
                row=_csv_row(np.flatnonzero(unknown)[0]),
                column=variable,
                rule=RULE_FILE,
            )
    extra = [c for c in raw.columns if c not in needed]
    if not extra and out.duplicated(["wave", *variables]).any():
        raise InputError(
            "duplicate cell row",
            file=str(path),
            row=_csv_row(np.flatnonzero(out.duplicated(["wave", *variables]))[0]),
            rule=RULE_FILE,
        )
    return out.groupby(["wave", *variables], sort=True, as_index=False)["count"].sum()


def load_wijk_covariates(path: Path, spec: QuestionnaireSpec, columns: Sequence[str]) -> pd.DataFrame:
    """Read the auxiliary area figures (`data/population/wijk_covariates.csv`) for `columns`.

    One row per (wave, area), the area codes of the spec's `area_variable` (column named after
    it), each covariate a whole percentage 0-100 as CBS "Kerncijfers wijken en buurten"
    publishes them, every area of the spec present in every wave of the file. Returns wave,
    the area (int64) and `columns` (float64).
    """
    area = spec.area_variable
    if area is None:
        raise InputError("the spec declares no survey.area_variable for the covariates", file=str(path), rule=RULE_FILE)
    keys = ("wave", area)
    if not path.exists():
        raise InputError("wijk covariates file not found", file=str(path), rule=RULE_FILE)
    raw = read_text_csv(path, rule=RULE_FILE)
    needed = [*keys, *columns]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path), rule=RULE_FILE)
    if raw.empty:
        raise InputError("no rows", file=str(path), rule=RULE_FILE)
    out = pd.DataFrame(index=raw.index)
    for column in needed:
        values = _whole_numbers(raw, column, path, minimum=0 if column in columns else None)
        above = np.flatnonzero(values > 100) if column in columns else np.array([], dtype=int)
        if above.size:
            raise InputError(
                f"a percentage above 100, got {raw[column].iloc[above[0]]!r}",
                file=str(path),
                row=_csv_row(above[0]),
                column=column,
                rule=RULE_FILE,
            )
        out[column] = values.astype("float64") if column in columns else values
    codes = spec.background[area].codes
    unknown = ~out[area].isin(list(codes))
    if unknown.any():
        raise InputError(
            f"code is not a code of '{area}' in the spec",
            file=str(path),
            row=_csv_row(np.flatnonzero(unknown)[0]),
            column=area,
            rule=RULE_FILE,
        )
    duplicated = out.duplicated(list(keys))
    if duplicated.any():
        raise InputError(
            f"duplicate (wave, {area}) row", file=str(path), row=_csv_row(np.flatnonzero(duplicated)[0]), rule=RULE_FILE
        )
    for wave, rows in out.groupby("wave", sort=True):
        absent = [f"{code} ({label})" for code, label in codes.items() if code not in set(rows[area])]
        if absent:
            raise InputError(
                f"wave {wave}: no row for {area} {', '.join(absent)}", file=str(path), column=area, rule=RULE_FILE
            )
    return out.sort_values(list(keys)).reset_index(drop=True)[needed]
