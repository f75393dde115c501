"""Pure builders: the published tables and the annual-report table, from the estimate stage's frames.

Nothing here reads or writes files. Labels, bases, footnotes and targets come
from the questionnaire spec; numbers come from the indicator table unchanged
(only formatted), so the printed table cannot drift from the published data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from survey_pipeline import contracts
from survey_pipeline.contracts import columns
from survey_pipeline.errors import InputError
from survey_pipeline.settings import ReportSettings
from survey_pipeline.spec import ALL_RESIDENTS, Indicator, LayoutSection, QuestionnaireSpec, ReportLayout
from survey_pipeline.stages.report.formatting import (
    MISSING_TEXT,
    dutch_target,
    format_p_value,
    format_percent,
    format_points,
    not_measured_text,
)
from survey_pipeline.targets import parse_target

if TYPE_CHECKING:
    from survey_pipeline.stages.report.registration_rows import RegistrationCell

TOTAL = "total"

# Column order and dtypes of the published tables (their contracts).
INDICATOR_COLUMNS = columns(contracts.ReportIndicators)
CHANGE_COLUMNS = columns(contracts.ReportChanges)
DISTRIBUTION_COLUMNS = columns(contracts.ReportDistributions)

SECTION_TITLES = {"prestatie": "Prestatie-indicatoren", "kengetal": "Kengetallen"}
DEFAULT_INTRO = (
    "Met de volgende indicatoren wordt de voortgang van dit beleidsveld gemeten. Als er geen gegevens "
    "beschikbaar zijn, de vraag in een jaar niet gesteld is of een uitkomst te onzeker is om te publiceren, "
    "staat er een streepje; is de meting of de vraag bewust overgeslagen, dan staat de reden erachter."
)
BULLET = "\u2022"
STATUS_TEXT = {
    "met": "gehaald",
    "not_met": "niet gehaald",
    "indistinguishable": "niet te onderscheiden",
}
# Codes of `survey_pipeline.reliability` (and the estimate stage's change reasons) in Dutch.
REASON_TEXT = {
    "no_estimate": "geen schatting mogelijk",
    "min_n": "te weinig waarnemingen",
    "min_n_eff": "effectieve steekproefomvang te klein",
    "no_interval": "geen betrouwbaarheidsinterval te berekenen",
    "max_ci_width": "betrouwbaarheidsinterval te breed",
    "max_relative_ci_width": "betrouwbaarheidsinterval te breed ten opzichte van de uitkomst",
    "low_df": "weinig vrijheidsgraden in het steekproefontwerp",
    "estimate_from_suppressed": "uitkomst in het beginjaar niet gepubliceerd",
    "estimate_to_suppressed": "uitkomst in het eindjaar niet gepubliceerd",
    # Why a target could not be judged (`survey_pipeline.targets.evaluate`, flag "target_not_evaluable:<reason>").
    "target_not_evaluable:estimate_unavailable": "streefwaarde niet te beoordelen: geen uitkomst",
    "target_not_evaluable:estimate_suppressed": "streefwaarde niet te beoordelen: uitkomst niet gepubliceerd",
    "target_not_evaluable:no_previous_wave": "streefwaarde niet te beoordelen: geen eerdere meting",
    "target_not_evaluable:no_change_estimate": "streefwaarde niet te beoordelen: geen verandering geschat",
    "target_not_evaluable:change_suppressed": "streefwaarde niet te beoordelen: verandering niet gepubliceerd",
}
TARGET_FLAG = "target_not_evaluable"


# ---------------------------------------------------------------------------
# Published tables


def published_table(
    frame: pd.DataFrame, columns: Mapping[str, str], *, name: str, order: Sequence[str]
) -> pd.DataFrame:
    """The contract's columns in contract order and dtypes, sorted by `order`; InputError if one is missing."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"the {name} table lacks column(s) {missing}", file=name, rule="report_input")
    out = frame.loc[:, list(columns)].copy()
    for column, dtype in columns.items():
        if dtype == "int64":
            values = pd.to_numeric(out[column], errors="coerce").astype("float64")
            if values.isna().any() or not np.all(np.mod(values, 1) == 0):
                raise InputError("expected whole numbers", file=name, column=column, rule="report_input")
        try:
            out[column] = out[column].astype(dtype)
        except (TypeError, ValueError):
            raise InputError(f"cannot be read as {dtype}", file=name, column=column, rule="report_input") from None
    return out.sort_values(list(order), kind="stable").reset_index(drop=True)


def _rank(values: pd.Series, ranking: Sequence) -> pd.Series:
    positions = {value: i for i, value in enumerate(ranking)}
    return values.map(lambda v: positions.get(v, len(positions))).astype("int64")


def _publish(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    *,
    name: str,
    item: str,
    ranking: Sequence[str],
    breakdowns: Sequence[str],
    order: Sequence[str],
) -> pd.DataFrame:
    """`published_table` sorted by the item's spec position, then `order` with the total before the breakdowns."""
    keyed = frame.assign(
        _item=_rank(frame[item], ranking) if item in frame else 0,
        _brk=_rank(frame["breakdown"], [TOTAL, *breakdowns]) if "breakdown" in frame else 0,
    )
    out = published_table(
        keyed,
        {**columns, "_item": "int64", "_brk": "int64"},
        name=name,
        order=["_item", *order, "breakdown", "breakdown_code"],
    )
    return out.drop(columns=["_item", "_brk"])


def publish_indicators(frame: pd.DataFrame, spec: QuestionnaireSpec, breakdowns: Sequence[str]) -> pd.DataFrame:
    """The indicator table in spec order: indicator, wave, total first, then the breakdowns."""
    return _publish(
        frame,
        INDICATOR_COLUMNS,
        name="indicators",
        item="indicator_id",
        ranking=[i.id for i in spec.indicators],
        breakdowns=breakdowns,
        order=["wave", "_brk"],
    )


def publish_changes(frame: pd.DataFrame, spec: QuestionnaireSpec, breakdowns: Sequence[str]) -> pd.DataFrame:
    """The change table in spec order: indicator, wave pair, total first, then the breakdowns."""
    return _publish(
        frame,
        CHANGE_COLUMNS,
        name="changes",
        item="indicator_id",
        ranking=[i.id for i in spec.indicators],
        breakdowns=breakdowns,
        order=["wave_from", "wave_to", "_brk"],
    )


def publish_distributions(frame: pd.DataFrame, spec: QuestionnaireSpec, breakdowns: Sequence[str]) -> pd.DataFrame:
    """The distribution table in spec order: question, wave, total first, then the breakdowns."""
    return _publish(
        frame,
        DISTRIBUTION_COLUMNS,
        name="distributions",
        item="variable",
        ranking=list(spec.variables),
        breakdowns=breakdowns,
        order=["wave", "_brk"],
    )


# ---------------------------------------------------------------------------
# Which waves measured which indicator


def measured_waves(spec: QuestionnaireSpec, waves_in_run: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Per indicator: the waves of this run in which its question was asked."""
    run = set(waves_in_run)
    return {ind.id: tuple(w for w in spec.variables[ind.variable].waves if w in run) for ind in spec.indicators}


# ---------------------------------------------------------------------------
# The layout of the annual-report table and how it states bases


def annual_layout(spec: QuestionnaireSpec) -> ReportLayout:
    """The spec's `report_layout`, or the default: a section per indicator kind (Prestatie-indicatoren,
    Kengetallen), its indicators in spec order and then its registration figures, bases as footnotes."""
    if spec.report_layout is not None:
        return spec.report_layout
    sections = tuple(
        LayoutSection(title=title, rows=ids)
        for kind, title in SECTION_TITLES.items()
        if (
            ids := tuple(ind.id for ind in spec.indicators if ind.kind == kind)
            + tuple(reg.id for reg in spec.registrations if reg.kind == kind)
        )
    )
    return ReportLayout(sections=sections)


def report_order(spec: QuestionnaireSpec) -> list[Indicator]:
    """Indicators as the annual-report table prints them (`annual_layout`)."""
    return [spec.indicator(i) for i in annual_layout(spec).indicator_ids() if i not in spec.registration_ids]


def base_markers(spec: QuestionnaireSpec) -> dict[str, str]:
    """Footnote marker per base group, in order of first use; all residents need none, nor does any base
    when the layout prints bases inline."""
    markers: dict[str, str] = {}
    if annual_layout(spec).base_style == "inline":
        return markers
    for ind in report_order(spec):
        if ind.base != ALL_RESIDENTS and ind.base not in markers:
            markers[ind.base] = "*" * (len(markers) + 1)
    return markers


def stated_label(spec: QuestionnaireSpec, ind: Indicator, markers: Mapping[str, str]) -> str:
    """An indicator's full label with its base as the report states it: a footnote marker (`markers`,
    from `base_markers`) or, with inline bases, "(van ...)" after the label."""
    if annual_layout(spec).base_style == "footnote":
        return ind.label + markers.get(ind.base, "")
    return label_with_base(spec, ind)


def label_with_base(spec: QuestionnaireSpec, ind: Indicator) -> str:
    """An indicator's label with its base in words unless that is everyone: "... (van het deel dat ...)".
    How a text outside the table (a figure, the method note) names it; some indicators share a label."""
    return ind.label if ind.base == ALL_RESIDENTS else f"{ind.label} {spec.inline_base_text(ind.base)}"


def base_footnote(spec: QuestionnaireSpec, base: str) -> str:
    """The footnote text of a base, from the spec: "Percentage van de bewoners die ..."."""
    return f"Percentage {spec.base_text(base)}."


def unmarked_footnote(spec: QuestionnaireSpec) -> str:
    """The base of the rows without a marker, stated too, so every printed percentage names its base."""
    return f"Zonder voetnoot: percentage {spec.base_text(ALL_RESIDENTS)}."


def describe_reason(reason: str) -> str:
    """Suppression reasons or flags ("min_n;max_ci_width") in Dutch; unknown codes as written."""
    parts = [p.strip() for p in reason.split(";") if p.strip()]
    return "; ".join(dict.fromkeys(REASON_TEXT.get(p, p) for p in parts)) or "onvoldoende betrouwbaar"


def reliability_flags(flags: str) -> str:
    """The flags that concern the estimate itself (not whether its target could be judged)."""
    return ";".join(p for p in flags.split(";") if p.strip() and not p.startswith(TARGET_FLAG))


# ---------------------------------------------------------------------------
# The annual-report table


@dataclass(frozen=True)
class Column:
    kind: str  # "achieved" | "target"
    year: int

    @property
    def header(self) -> tuple[str, str]:
        return ("Behaald" if self.kind == "achieved" else "Beoogd", str(self.year))


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None  # the unrounded share behind an achieved number
    notes: tuple[str, ...] = ()
    count: bool = False  # `value` is a count (a registration figure), not a share


@dataclass(frozen=True)
class Row:
    """One line of the table: an indicator's row (`indicator_id`, label, cells), a stem (no cells: the
    shared start of the bullets under it) or a bullet (`level` 1, its short label). The label cell as
    printed is `text`. A row whose cells come from another source than the survey fits the same model:
    an id, a label and one cell per column."""

    indicator_id: str
    label: str
    marker: str
    cells: tuple[Cell, ...]
    base: str = ""  # the base printed after the label (inline base style): "(van het deel dat ...)"
    level: int = 0  # 1: a bullet under the stem above

    @property
    def is_stem(self) -> bool:
        return not self.cells

    @property
    def bullet(self) -> str:
        return BULLET if self.level else ""

    @property
    def text(self) -> str:
        """The label cell as every renderer prints it: bullet, label, footnote marker, inline base."""
        return " ".join(part for part in (self.bullet, self.label + self.marker, self.base) if part)


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]
    intro: str = ""  # a sentence under the title


@dataclass(frozen=True)
class AnnualTable:
    """The table as printed: sections (beleidsvelden) of rows, stems and bullets; base footnotes (`*`) or
    bases inline; notes on "-" cells (a, b, ...); `unmarked`: the base of the rows without a footnote (""
    when every row has one or none has); `heading`: printed once with the column headers ("" = every
    section title row carries them); `intro`: the sentence before the table; `remarks`: sentences under it
    (waves left out of the window on purpose); `scale_notes`: for indicators on an agree scale, what the rest
    of the base answered (`agree_scale.agree_notes`, set by the report stage)."""

    columns: tuple[Column, ...]
    sections: tuple[Section, ...]
    footnotes: tuple[tuple[str, str], ...]
    notes: tuple[tuple[str, str], ...]
    decimals: int
    unmarked: str = ""
    scale_notes: tuple[str, ...] = ()
    heading: str = ""
    intro: str = DEFAULT_INTRO
    remarks: tuple[str, ...] = ()


def annual_columns(report: ReportSettings) -> tuple[Column, ...]:
    """Behaald columns for the report year's window, then the Beoogd columns (`ReportSettings`)."""
    return tuple(
        [Column("achieved", y) for y in report.achieved_waves] + [Column("target", y) for y in report.target_years]
    )


def excluded_wave_remarks(report: ReportSettings) -> tuple[str, ...]:
    """Why a measured wave is not in the table (`report.exclude_waves`), as printed under it."""
    return tuple(
        f"De meting van {wave} staat niet in deze tabel ({reason})." for wave, reason in report.exclude_waves.items()
    )


def build_annual_table(
    indicators: pd.DataFrame,
    spec: QuestionnaireSpec,
    report: ReportSettings,
    measured: Mapping[str, Sequence[int]],
    registrations: Mapping[str, Sequence[RegistrationCell]] | None = None,
) -> AnnualTable:
    """The annual-report table from the published indicator table (breakdown "total") and the
    registration figures' cells by id (`registration_rows.annual_rows`), laid out as the spec's
    `report_layout` says (`annual_layout`)."""
    totals = indicators[indicators["breakdown"] == TOTAL].set_index(["indicator_id", "wave"])
    columns = annual_columns(report)
    layout = annual_layout(spec)
    inline = layout.base_style == "inline"
    markers = base_markers(spec)
    notes: dict[str, str] = {}

    def note(text: str) -> str:
        if text not in notes:
            notes[text] = chr(ord("a") + len(notes))
        return notes[text]

    def achieved(ind: Indicator, wave: int) -> Cell:
        if wave not in measured.get(ind.id, ()):
            return Cell(not_measured_text(spec.not_measured_reason(wave, ind.variable)))
        row = totals.loc[(ind.id, wave)]
        if bool(row["suppressed"]):
            return Cell(
                MISSING_TEXT, None, (note(f"Niet gepubliceerd: {describe_reason(row['suppression_reason'])}."),)
            )
        value = float(row["estimate"])
        flagged = reliability_flags(row["flags"])
        flags = (note(f"Met voorzichtigheid te interpreteren: {describe_reason(flagged)}."),) if flagged else ()
        return Cell(format_percent(value, report.decimals), value, flags)

    def target(ind: Indicator, year: int) -> Cell:
        text = ind.targets.get(year)
        return Cell(dutch_target(text) if text else MISSING_TEXT)

    def survey_row(indicator_id: str, *, bullet: bool = False, stated_base: str | None = None) -> Row:
        ind = spec.indicator(indicator_id)
        cells = tuple(achieved(ind, c.year) if c.kind == "achieved" else target(ind, c.year) for c in columns)
        label = (ind.short_label or ind.label) if bullet else ind.label
        shown_base = inline and ind.base not in (ALL_RESIDENTS, stated_base)
        base = spec.inline_base_text(ind.base) if shown_base else ""
        return Row(ind.id, label, markers.get(ind.base, ""), cells, base, int(bullet))

    def registration_row(registration_id: str, *, bullet: bool = False) -> Row | None:
        """A registration figure's row (no base, no interval); none without values in the registrations file."""
        figures = (registrations or {}).get(registration_id)
        if figures is None:
            return None
        registration = spec.registration(registration_id)
        label = (registration.short_label or registration.label) if bullet else registration.label
        cells = tuple(Cell(f.text, f.value, (note(f.note),) if f.note else (), f.count) for f in figures)
        return Row(registration_id, label, "", cells, level=int(bullet))

    sections = []
    for section in layout.sections:
        rows: list[Row] = []
        for item in section.rows:
            if isinstance(item, str):
                row = registration_row(item) if item in spec.registration_ids else survey_row(item)
                rows += [row] if row is not None else []
            else:
                members = [
                    registration_row(member, bullet=True)
                    if member in spec.registration_ids
                    else survey_row(member, bullet=True, stated_base=item.base)
                    for member in item.members
                ]
                shown = [member for member in members if member is not None]
                rows += [Row("", item.stem, "", ()), *shown] if shown else []  # no stem without rows under it
        sections.append(Section(section.title, tuple(rows), section.intro or ""))
    footnotes = tuple((marker, base_footnote(spec, base)) for base, marker in markers.items())
    has_unmarked = any(not row.marker and not row.is_stem for section in sections for row in section.rows)
    unmarked = unmarked_footnote(spec) if footnotes and has_unmarked else ""
    return AnnualTable(
        columns,
        tuple(sections),
        footnotes,
        tuple((k, t) for t, k in notes.items()),
        report.decimals,
        unmarked,
        heading=layout.heading or "",
        intro=layout.intro or DEFAULT_INTRO,
        remarks=excluded_wave_remarks(report),
    )


# ---------------------------------------------------------------------------
# Supporting tables of the report: targets and changes


def _interval(lower: float, upper: float, decimals: int) -> str:
    return f"{format_percent(lower, decimals)} \u2013 {format_percent(upper, decimals)}"


def target_rule_text(level: float) -> str:
    """How a target is judged (the rule of `survey_pipeline.targets`), in Dutch, for captions and the method note."""
    return (
        f"Het oordeel gebruikt het {format_percent(level)}-betrouwbaarheidsinterval. Een streefwaarde als "
        "\u2018>80%\u2019 of \u2018<15%\u2019 is gehaald als het hele interval aan de goede kant van de streefwaarde "
        "ligt, niet gehaald als het hele interval aan de verkeerde kant ligt, en niet te onderscheiden als het interval "
        "de streefwaarde bevat. Een streefwaarde zonder teken (\u201820%\u2019) is gehaald als het interval de "
        "streefwaarde bevat, anders niet gehaald. \u2018Toename\u2019 en \u2018afname\u2019 worden zo beoordeeld "
        "met het interval van de verandering ten opzichte van de vorige meting (boven of onder nul); "
        "\u2018stabiel\u2019 is gehaald als dat interval nul bevat. Bij een combinatie (\u2018afname <20%\u2019) "
        "is de streefwaarde gehaald als elk deel gehaald is en niet gehaald als een deel niet gehaald is. Niet te "
        "beoordelen: de uitkomst of de verandering is niet gepubliceerd, of er is geen eerdere meting."
    )


TARGET_COLUMNS = (
    "indicator_id",
    "Indicator",
    "Jaar",
    "Streefwaarde",
    "Behaald",
    "Ondergrens",
    "Bovengrens",
    "Vergeleken met",
    "Verandering",
    "Verandering ondergrens",
    "Verandering bovengrens",
    "Oordeel",
)
TARGET_SHARES = (
    "Behaald",
    "Ondergrens",
    "Bovengrens",
    "Verandering",
    "Verandering ondergrens",
    "Verandering bovengrens",
)


def judgement_text(status: str, flags: str) -> str:
    """The Dutch verdict; "niet te beoordelen" only when a part could not be judged and nothing settles it."""
    if status == "indistinguishable" and TARGET_FLAG in flags:
        return "niet te beoordelen"
    return STATUS_TEXT[status]


def target_table(
    indicators: pd.DataFrame, changes: pd.DataFrame, spec: QuestionnaireSpec, report: ReportSettings
) -> pd.DataFrame:
    """Per indicator and achieved wave with a target: the estimate and its CI, the change since the previous
    measured wave with its CI where the target concerns a change, and the verdict. Shares stay numbers
    (NaN where not published or not applicable); `format_target_table` prints them."""
    markers = base_markers(spec)
    totals = indicators[indicators["breakdown"] == TOTAL]
    judged = totals[totals["target_status"].isin(list(STATUS_TEXT)) & totals["wave"].isin(report.achieved_waves)]
    change_totals = changes[changes["breakdown"] == TOTAL].set_index(["indicator_id", "wave_from", "wave_to"])
    records = []
    for ind in report_order(spec):
        measured = sorted(int(w) for w in totals.loc[totals["indicator_id"] == ind.id, "wave"].unique())
        for row in judged[judged["indicator_id"] == ind.id].itertuples(index=False):
            wave = int(row.wave)
            previous, change = None, (np.nan, np.nan, np.nan)
            if parse_target(row.target).direction is not None and measured.index(wave) > 0:
                previous = measured[measured.index(wave) - 1]
                if (ind.id, previous, wave) in change_totals.index:
                    found = change_totals.loc[(ind.id, previous, wave)]
                    change = (found["difference"], found["ci_lower"], found["ci_upper"])
            records.append(
                {
                    "indicator_id": ind.id,
                    "Indicator": stated_label(spec, ind, markers),
                    "Jaar": wave,
                    "Streefwaarde": dutch_target(row.target),
                    "Behaald": row.estimate,
                    "Ondergrens": row.ci_lower,
                    "Bovengrens": row.ci_upper,
                    "Vergeleken met": previous,
                    "Verandering": change[0],
                    "Verandering ondergrens": change[1],
                    "Verandering bovengrens": change[2],
                    "Oordeel": judgement_text(row.target_status, row.flags),
                }
            )
    out = pd.DataFrame.from_records(records, columns=list(TARGET_COLUMNS))
    out["Jaar"] = out["Jaar"].astype("int64")
    out["Vergeleken met"] = out["Vergeleken met"].astype("Int64")
    for column in TARGET_SHARES:
        out[column] = out[column].astype("float64")
    return out


def format_target_table(targets: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """The target table as printed: Dutch percentages, the change in points with its CI, "-" where not published.

    The interval gets one decimal more than the estimate: it is the evidence for the verdict, and a bound
    such as 85,3% printed as "85%" would look as if it touched a ">85%" target it clears."""

    def change(row) -> str:
        if parse_target(row["Streefwaarde"]).direction is None:
            return "n.v.t."
        if pd.isna(row["Verandering"]):
            return MISSING_TEXT
        return (
            f"{format_points(row['Verandering'])} ({format_points(row['Verandering ondergrens'])} tot "
            f"{format_points(row['Verandering bovengrens'])}) t.o.v. {int(row['Vergeleken met'])}"
        )

    return pd.DataFrame(
        {
            "indicator_id": targets["indicator_id"],
            "Indicator": targets["Indicator"],
            "Jaar": targets["Jaar"].astype(str),
            "Streefwaarde": targets["Streefwaarde"],
            "Behaald": [format_percent(v, decimals) for v in targets["Behaald"]],
            "Betrouwbaarheidsinterval": [
                MISSING_TEXT if pd.isna(lo) else _interval(lo, hi, decimals + 1)
                for lo, hi in zip(targets["Ondergrens"], targets["Bovengrens"])
            ],
            "Verandering (procentpunt)": [change(row) for _, row in targets.iterrows()],
            "Oordeel": targets["Oordeel"],
        }
    )


def change_table(changes: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """Whole-municipality changes between waves: both levels with one decimal (as the difference), the
    difference in percentage points with CI and p-value."""
    markers = base_markers(spec)
    totals = changes[changes["breakdown"] == TOTAL]
    records = []
    for ind in report_order(spec):
        for row in totals[totals["indicator_id"] == ind.id].itertuples(index=False):
            hidden = bool(row.suppressed)
            significant = not hidden and (row.ci_lower > 0 or row.ci_upper < 0)
            records.append(
                {
                    "indicator_id": ind.id,
                    "Indicator": stated_label(spec, ind, markers),
                    "Periode": f"{int(row.wave_from)}\u2013{int(row.wave_to)}",
                    "Van": format_percent(row.estimate_from, 1),
                    "Naar": format_percent(row.estimate_to, 1),
                    "Verschil (procentpunt)": MISSING_TEXT if hidden else format_points(row.difference),
                    "Betrouwbaarheidsinterval": MISSING_TEXT
                    if hidden
                    else f"{format_points(row.ci_lower)} tot {format_points(row.ci_upper)}",
                    "p": MISSING_TEXT if hidden else format_p_value(row.p_value),
                    "Significant": MISSING_TEXT if hidden else ("ja" if significant else "nee"),
                }
            )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "indicator_id",
            "Indicator",
            "Periode",
            "Van",
            "Naar",
            "Verschil (procentpunt)",
            "Betrouwbaarheidsinterval",
            "p",
            "Significant",
        ],
    )


# ---------------------------------------------------------------------------
# The routing chain (heard -> contact -> helped), derived from the spec


@dataclass(frozen=True)
class ChainStep:
    conditional: Indicator  # share of the previous step's group
    of_residents: Indicator | None  # the same outcome over all residents, if the spec has it


def chain_steps(spec: QuestionnaireSpec) -> tuple[ChainStep, ...]:
    """The longest chain start -> step -> step where each step's base is "previous step = success".

    A step follows indicator A when its base group is defined only by A's
    variable having A's success codes (e.g. heard_of_wij: heard = 1).
    """

    def next_step(ind: Indicator) -> Indicator | None:
        for name, group in spec.groups.items():
            when = group.when
            if when is not None and when.clauses == ((ind.variable, ind.success),):
                for candidate in spec.indicators:
                    if candidate.base == name and any(
                        g.when is not None and g.when.variables == (candidate.variable,) for g in spec.groups.values()
                    ):
                        return candidate
                followers = [c for c in spec.indicators if c.base == name]
                return followers[0] if followers else None
        return None

    best: list[Indicator] = []
    for start in (i for i in spec.indicators if i.base == ALL_RESIDENTS):
        chain = [start]
        while (step := next_step(chain[-1])) is not None and step not in chain:
            chain.append(step)
        if len(chain) > len(best):
            best = chain
    if len(best) < 2:
        return ()

    def of_residents(ind: Indicator) -> Indicator | None:
        if ind.base == ALL_RESIDENTS:
            return ind
        return next(
            (
                i
                for i in spec.indicators
                if i.base == ALL_RESIDENTS and i.variable == ind.variable and i.success == ind.success
            ),
            None,
        )

    return tuple(ChainStep(ind, of_residents(ind)) for ind in best)


SMALL_AREA_SOURCE_TEXT = {"direct": "direct", "model": "modelschatting", "none": "niet gepubliceerd"}


def publish_small_area(table: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The published area figures (wijkcijfers): per indicator, wave and area the direct estimate where
    it meets the publication rule, else the model-based one ("modelschatting") where its interval does,
    else nothing. Never a suppressed direct estimate, nor the model's per-wijk diagnostics (with the
    shrinkage and the synthetic estimate one could recover a suppressed direct estimate)."""
    labels = {ind.id: ind.label for ind in spec.indicators}
    out = pd.DataFrame(
        {
            "indicator_id": table["indicator_id"].to_numpy(),
            "label": table["indicator_id"].map(labels).to_numpy(),
            "wave": table["wave"].to_numpy(),
            "area": table["area"].to_numpy(),
            "area_label": table["area_label"].to_numpy(),
            "source": table["published_source"].map(SMALL_AREA_SOURCE_TEXT).to_numpy(),
            "estimate": table["published_estimate"].to_numpy(),
            "ci_lower": table["published_ci_lower"].to_numpy(),
            "ci_upper": table["published_ci_upper"].to_numpy(),
        }
    )
    for column in ("indicator_id", "label", "area_label", "source"):
        out[column] = pd.array(out[column].astype(object).to_numpy(), dtype="str")
    return out
