"""The report's section "Verdieping": the spec's analyses (`outputs/estimate/analyses/`) as Dutch tables.

Per analysis, in the order of the spec, the latest shown wave it has figures for (the mean and
the crosstab test also per wave): the mean with its interval, the crosstab's column
percentages with the Rao-Scott F test (p-value and both degrees of freedom), the odds ratios
with their intervals and a forest plot, each area against the rest with the adjusted p-value
(the method named), and the linear trend per year. Suppressed rows are never printed as
numbers: they are counted under the table with the rule that withheld them.

The analysis tables themselves are published as the estimate stage wrote them (withheld rows
stay withheld, without numbers; contracts `ReportAnalysis*`), and in the workbook as Dutch
sheets (`dutch_analysis_sheets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from survey_pipeline import contracts
from survey_pipeline.artifacts import read_table
from survey_pipeline.settings import TOTAL, SuppressionRule
from survey_pipeline.spec import Analysis, QuestionnaireSpec
from survey_pipeline.stages.report import figures
from survey_pipeline.stages.report.document import Block, Heading, Image, Paragraph, Table
from survey_pipeline.stages.report.formatting import (
    MISSING_TEXT,
    format_number,
    format_p_value,
    format_percent,
    format_points,
)
from survey_pipeline.stages.report.sheets import YES_NO, breakdown_text
from survey_pipeline.stages.report.tables import describe_reason

ADJUSTMENT_TEXT = {
    "holm": "Holm (kans op minstens één onterecht verschil ten hoogste 5%)",
    "BH": "Benjamini-Hochberg (verwacht aandeel onterechte verschillen ten hoogste 5%)",
}
MEAN_DECIMALS = 1
ANALYSIS_SHEETS = {
    "means": "Gemiddelden",
    "crosstabs": "Kruistabellen",
    "crosstab_tests": "Kruistabellen toets",
    "odds_ratios": "Odds ratios",
    "area_vs_rest": "Wijk tegenover rest",
    "trends": "Trends",
}
_ANALYSIS = {"analysis_id": "Analyse (code)", "title": "Analyse"}
_WITHHELD = {"suppressed": "Niet gepubliceerd", "suppression_reason": "Reden niet gepubliceerd"}
_INTERVAL = {"se": "Standaardfout", "ci_lower": "Ondergrens", "ci_upper": "Bovengrens"}
# Per analysis table: English column -> Dutch header, in sheet order (columns not listed are left out).
ANALYSIS_HEADERS: dict[str, dict[str, str]] = {
    "means": {
        **_ANALYSIS,
        "variable": "Vraag (code)",
        "wave": "Jaar",
        "base_text": "Basis",
        "breakdown": "Uitsplitsing",
        "breakdown_code": "Code",
        "breakdown_label": "Groep",
        "estimate": "Gemiddelde",
        **_INTERVAL,
        "df": "Vrijheidsgraden",
        "level": "Betrouwbaarheid",
        "n": "Aantal respondenten",
        "sum_weights": "Som van de gewichten",
        **_WITHHELD,
    },
    "crosstabs": {
        **_ANALYSIS,
        "wave": "Jaar",
        "base_text": "Basis",
        "row_variable": "Vraag (code)",
        "row_code": "Antwoordcode",
        "row_label": "Antwoord",
        "column_variable": "Kolomvariabele (code)",
        "column_code": "Code",
        "column_label": "Groep",
        "estimate": "Percentage",
        **_INTERVAL,
        "n": "Aantal respondenten in de groep",
        **_WITHHELD,
    },
    "crosstab_tests": {
        **_ANALYSIS,
        "wave": "Jaar",
        "statistic": "F (Rao-Scott)",
        "ndf": "Vrijheidsgraden teller",
        "ddf": "Vrijheidsgraden noemer",
        "p_value": "p-waarde",
        "pearson": "Pearson X2 (gewogen tabel)",
        "n": "Aantal respondenten",
        **_WITHHELD,
    },
    "odds_ratios": {
        **_ANALYSIS,
        "wave": "Jaar",
        "base_text": "Basis",
        "term": "Term (R)",
        "predictor": "Kenmerk (code)",
        "level_code": "Code",
        "level_label": "Categorie",
        "reference": "Referentiecategorie",
        "estimate": "Coëfficiënt (log-odds)",
        "se": "Standaardfout",
        "odds_ratio": "Odds ratio",
        "or_lower": "Ondergrens",
        "or_upper": "Bovengrens",
        "df": "Vrijheidsgraden",
        "p_value": "p-waarde",
        "n": "Aantal respondenten",
        **_WITHHELD,
    },
    "area_vs_rest": {
        **_ANALYSIS,
        "wave": "Jaar",
        "base_text": "Basis",
        "statistic": "Maat",
        "area_code": "Code",
        "area_label": "Gebied",
        "estimate_area": "In het gebied",
        "estimate_rest": "Rest van de gemeente",
        "difference": "Verschil",
        **_INTERVAL,
        "df": "Vrijheidsgraden",
        "p_value": "p-waarde",
        "p_adjusted": "p-waarde gecorrigeerd",
        "adjust": "Correctie",
        "n_tests": "Aantal vergelijkingen",
        "n_area": "Aantal respondenten in het gebied",
        "n_rest": "Aantal respondenten in de rest",
        **_WITHHELD,
    },
    "trends": {
        **_ANALYSIS,
        "base_text": "Basis",
        "statistic": "Maat",
        "breakdown": "Uitsplitsing",
        "breakdown_code": "Code",
        "breakdown_label": "Groep",
        "wave_first": "Eerste jaar",
        "wave_last": "Laatste jaar",
        "n_waves": "Aantal metingen",
        "slope": "Verandering per jaar",
        **_INTERVAL,
        "df": "Vrijheidsgraden",
        "p_value": "p-waarde",
        "n_min": "Kleinste aantal respondenten per meting",
        **_WITHHELD,
    },
}
# Sheets whose numbers are all shares (formatted as percentages); the others mix shares and means.
ANALYSIS_SHARE_HEADERS = {"Kruistabellen": ("Percentage", "Standaardfout", "Ondergrens", "Bovengrens")}
STATISTIC_TEXT = {"share": "percentage", "mean": "gemiddelde"}
ADJUSTMENT_NAME = {"holm": "Holm", "BH": "Benjamini-Hochberg"}


def read_analyses(estimate_dir: Path) -> dict[str, pd.DataFrame]:
    """Every analysis table of the estimate stage, checked against its contract."""
    return {
        name: read_table(estimate_dir / contracts.ANALYSES_FOLDER / f"{name}.parquet", model)
        for name, model in contracts.ANALYSIS_TABLES.items()
    }


def dutch_analysis_sheets(analyses: Mapping[str, pd.DataFrame], spec: QuestionnaireSpec) -> dict[str, pd.DataFrame]:
    """The published analysis tables that have rows, with Dutch headers and values, by sheet name."""
    sheets = {}
    for name, frame in analyses.items():
        if frame.empty:
            continue
        out = frame.assign(
            suppressed=[YES_NO[bool(v)] for v in frame["suppressed"]],
            suppression_reason=[
                describe_reason(str(r)) if hidden else ""
                for r, hidden in zip(frame["suppression_reason"], frame["suppressed"])
            ],
        )
        if "breakdown" in out:
            out["breakdown"] = [breakdown_text(spec, b) for b in out["breakdown"]]
        if "statistic" in out and name != "crosstab_tests":
            out["statistic"] = [STATISTIC_TEXT[v] for v in out["statistic"]]
        if "reference" in out:
            out["reference"] = [YES_NO[bool(v)] for v in out["reference"]]
        if "adjust" in out:
            out["adjust"] = [ADJUSTMENT_NAME[v] for v in out["adjust"]]
        headers = ANALYSIS_HEADERS[name]
        sheets[ANALYSIS_SHEETS[name]] = out.loc[:, list(headers)].rename(columns=headers).reset_index(drop=True)
    return sheets


def _latest(table: pd.DataFrame, analysis_id: str, waves: Sequence[int]) -> int | None:
    """The latest of `waves` in which the analysis has rows."""
    found = set(table.loc[table["analysis_id"] == analysis_id, "wave"].astype(int))
    shown = [w for w in waves if w in found]
    return max(shown) if shown else None


def _interval(lower: float, upper: float, text) -> str:
    return f"{text(lower)} \u2013 {text(upper)}"


def _mean(value: float) -> str:
    return format_number(value, MEAN_DECIMALS)


def _signed_mean(value: float) -> str:
    text = _mean(value)
    return text if text.startswith("-") or text == MISSING_TEXT or value == 0 else "+" + text


def _withheld(count: int, total: int, rule: SuppressionRule) -> str:
    """The sentence under a table that counts its rows withheld by the publication rule ("" when none)."""
    if not count:
        return ""
    return (
        f" Niet gepubliceerd: {count} van de {total} (minder dan {rule.min_n} waarnemingen of te onzeker, "
        "zoals de publicatieregel voorschrijft)."
    )


def forest_plans(
    analyses: Mapping[str, pd.DataFrame], spec: QuestionnaireSpec, waves: Sequence[int], level: float
) -> list[figures.FigurePlan]:
    """A forest plot of the odds ratios of each logit analysis, in its latest shown wave."""
    odds = analyses["odds_ratios"]
    plans = []
    for analysis in spec.analyses:
        wave = _latest(odds, analysis.id, waves) if analysis.kind == "logit" else None
        plan = figures.forest_plan(odds, spec, analysis.id, wave, level) if wave is not None else None
        if plan is not None:
            plans.append(plan)
    return plans


def verdieping_blocks(
    spec: QuestionnaireSpec,
    analyses: Mapping[str, pd.DataFrame],
    forests: Sequence[figures.Figure],
    waves: Sequence[int],
    level: float,
    rule: SuppressionRule,
    decimals: int = 0,
) -> list[Block]:
    """The section: a heading, an introduction and the blocks of each analysis (none without analyses)."""
    if not spec.analyses:
        return []
    ci = f"{format_percent(level)}-BI"
    forest_of = {figure.stem: figure for figure in forests}
    blocks: list[Block] = [
        Heading("Verdieping", anchor="verdieping"),
        Paragraph(
            "Analyses naast de indicatoren: gemiddelden, kruistabellen, samenhang met achtergrondkenmerken, "
            "wijken tegenover de rest van de gemeente en trends. Alleen geldige antwoorden tellen mee "
            "(\u2018weet niet\u2019 en \u2018geen antwoord\u2019 niet). Alle uitkomsten zijn gewogen en de "
            f"betrouwbaarheidsintervallen ({ci}) en toetsen houden rekening met de weging (R-pakket survey)."
        ),
    ]
    for analysis in spec.analyses:
        part = {
            "mean": _mean_blocks,
            "crosstab": _crosstab_blocks,
            "logit": _logit_blocks,
            "wijk_vs_rest": _area_blocks,
            "trend": _trend_blocks,
        }[analysis.kind](spec, analysis, analyses, waves, ci, rule, decimals)
        if analysis.kind == "logit" and f"odds_{analysis.id}" in forest_of:
            figure = forest_of[f"odds_{analysis.id}"]
            part.append(
                Image(next((f for f in figure.files if f.endswith(".svg")), figure.files[0]), figure.description)
            )
        if part:
            blocks += [Heading(analysis.title, level=3, anchor=f"verdieping-{analysis.id}"), *part]
    return blocks


def _mean_blocks(spec, analysis: Analysis, analyses, waves, ci, rule, decimals) -> list[Block]:
    means = analyses["means"]
    rows = means[means["analysis_id"] == analysis.id]
    wave = _latest(means, analysis.id, waves)
    if wave is None:
        return []
    totals = rows[(rows["breakdown"] == TOTAL) & rows["wave"].isin(waves)].sort_values("wave")
    out: list[Block] = [
        Paragraph(f"Gewogen gemiddelde {rows['base_text'].iloc[0]}, per meting, met {ci}."),
        Table(
            ("Meting", "Gemiddelde", ci, "Waarnemingen"),
            tuple(
                (
                    str(r.wave),
                    _mean(r.estimate),
                    MISSING_TEXT if r.suppressed else _interval(r.ci_lower, r.ci_upper, _mean),
                    format_number(r.n),
                )
                for r in totals.itertuples()
            ),
            caption=_withheld(int(totals["suppressed"].sum()), len(totals), rule).strip(),
            numeric=(False, True, True, True),
        ),
    ]
    for breakdown in analysis.breakdowns:
        level_rows = rows[(rows["breakdown"] == breakdown) & (rows["wave"] == wave)]
        shown = level_rows[~level_rows["suppressed"]]
        if breakdown == spec.area_variable:  # many areas: highest first; other breakdowns in code order
            shown = shown.sort_values("estimate", ascending=False)
        out.append(
            Table(
                (spec.background[breakdown].label, "Gemiddelde", ci, "Waarnemingen"),
                tuple(
                    (r.breakdown_label, _mean(r.estimate), _interval(r.ci_lower, r.ci_upper, _mean), format_number(r.n))
                    for r in shown.itertuples()
                ),
                caption=(
                    f"Gemiddelde {spec.breakdown_text(breakdown)} in {wave}."
                    + _withheld(int(level_rows["suppressed"].sum()), len(level_rows), rule)
                ),
                numeric=(False, True, True, True),
            )
        )
    return out


def _crosstab_blocks(spec, analysis: Analysis, analyses, waves, ci, rule, decimals) -> list[Block]:
    cells, tests = analyses["crosstabs"], analyses["crosstab_tests"]
    wave = _latest(cells, analysis.id, waves)
    if wave is None:
        return []
    rows = cells[(cells["analysis_id"] == analysis.id) & (cells["wave"] == wave)]
    columns = rows.drop_duplicates("column_code").sort_values("column_code")
    answers = rows.drop_duplicates("row_code").sort_values("row_code")

    def cell(row_code: float, column_code: float) -> str:
        found = rows[(rows["row_code"] == row_code) & (rows["column_code"] == column_code)].iloc[0]
        if found["suppressed"]:
            return MISSING_TEXT
        share = lambda v: format_percent(v, decimals)  # noqa: E731
        return f"{share(found['estimate'])} ({_interval(found['ci_lower'], found['ci_upper'], share)})"

    against = str(columns["column_variable"].iloc[0])
    against_label = spec.background[against].label if against in spec.background else against
    per_wave = tests[(tests["analysis_id"] == analysis.id) & tests["wave"].isin(waves)].sort_values("wave")
    return [
        Paragraph(
            f"Verdeling van de antwoorden per {against_label.lower()} in {wave} ({rows['base_text'].iloc[0]}): "
            f"kolompercentages met {ci}. De Rao-Scott F-toets (tweede orde, gecorrigeerd voor de weging) toetst "
            "of de verdeling per categorie verschilt."
        ),
        Table(
            ("Antwoord", *columns["column_label"]),
            tuple(
                (answer.row_label, *(cell(answer.row_code, c) for c in columns["column_code"]))
                for answer in answers.itertuples()
            ),
            caption=_withheld(int(rows["suppressed"].sum()), len(rows), rule).strip(),
            numeric=(False, *(True for _ in range(len(columns)))),
        ),
        Table(
            ("Meting", "F", "Vrijheidsgraden (teller)", "Vrijheidsgraden (noemer)", "p-waarde", "Waarnemingen"),
            tuple(
                (
                    str(t.wave),
                    format_number(t.statistic, 2),
                    format_number(t.ndf, 2),
                    format_number(t.ddf, 1),
                    format_p_value(t.p_value),
                    format_number(t.n),
                )
                for t in per_wave.itertuples()
            ),
            caption="Rao-Scott F-toets op onafhankelijkheid (R: svychisq, statistic = \u2018F\u2019).",
            numeric=(False, True, True, True, True, True),
        ),
    ]


def _logit_blocks(spec, analysis: Analysis, analyses, waves, ci, rule, decimals) -> list[Block]:
    odds = analyses["odds_ratios"]
    wave = _latest(odds, analysis.id, waves)
    if wave is None:
        return []
    rows = odds[(odds["analysis_id"] == analysis.id) & (odds["wave"] == wave) & (odds["predictor"] != "")]
    variable = spec.variables[analysis.variable]
    outcome = " of ".join(f"\u2018{variable.codes[c]}\u2019" for c in analysis.success or ())
    ratio = lambda v: format_number(v, 2)  # noqa: E731

    def numbers(r) -> tuple[str, str, str]:
        if r.reference:
            return ("1 (referentie)", "", "")
        if r.suppressed:
            return (MISSING_TEXT, MISSING_TEXT, MISSING_TEXT)
        return (ratio(r.odds_ratio), _interval(r.or_lower, r.or_upper, ratio), format_p_value(r.p_value))

    return [
        Paragraph(
            f"Logistische regressie in {wave} ({rows['base_text'].iloc[0]}) op de kans op het antwoord {outcome} "
            f"op de vraag \u2018{variable.label}\u2019. Een odds ratio boven 1 betekent een grotere kans dan in de "
            "referentiecategorie, bij gelijke andere kenmerken; standaardfouten en p-waarden houden rekening met "
            "de weging (R: svyglm, quasibinomial)."
        ),
        Table(
            ("Kenmerk", "Categorie", "Odds ratio", ci, "p-waarde"),
            tuple(
                (
                    spec.background[r.predictor].label if r.predictor in spec.background else r.predictor,
                    r.level_label,
                    *numbers(r),
                )
                for r in rows.itertuples()
            ),
            caption=_withheld(int(rows["suppressed"].sum()), len(rows), rule).strip(),
            numeric=(False, False, True, True, True),
        ),
    ]


def _area_blocks(spec, analysis: Analysis, analyses, waves, ci, rule, decimals) -> list[Block]:
    versus = analyses["area_vs_rest"]
    wave = _latest(versus, analysis.id, waves)
    if wave is None:
        return []
    rows = versus[(versus["analysis_id"] == analysis.id) & (versus["wave"] == wave)]
    shown = rows[~rows["suppressed"]].sort_values("difference", ascending=False)
    share = rows["statistic"].iloc[0] == "share"
    value = (lambda v: format_percent(v, decimals)) if share else _mean
    difference = (lambda v: format_points(v, 1)) if share else _signed_mean
    method = str(rows["adjust"].iloc[0])
    area = spec.area_variable or ""
    area_label = spec.background[area].label if area in spec.background else area
    return [
        Paragraph(
            f"Elke {area_label.lower()} vergeleken met de rest van de gemeente in {wave} ({rows['base_text'].iloc[0]}): "
            "niet met het gemeentelijke cijfer, waar de wijk zelf in zit. Omdat veel wijken tegelijk getoetst worden, "
            f"zijn de p-waarden gecorrigeerd voor {int(rows['n_tests'].iloc[0])} vergelijkingen volgens "
            f"{ADJUSTMENT_TEXT[method]}."
        ),
        Table(
            (
                area_label,
                f"In de {area_label.lower()}",
                "Rest van de gemeente",
                "Verschil (procentpunt)" if share else "Verschil",
                ci,
                "p-waarde",
                f"p-waarde gecorrigeerd ({ADJUSTMENT_NAME[method]})",
            ),
            tuple(
                (
                    r.area_label,
                    value(r.estimate_area),
                    value(r.estimate_rest),
                    difference(r.difference),
                    _interval(r.ci_lower, r.ci_upper, difference),
                    format_p_value(r.p_value),
                    format_p_value(r.p_adjusted),
                )
                for r in shown.itertuples()
            ),
            caption=_withheld(int(rows["suppressed"].sum()), len(rows), rule).strip(),
            numeric=(False, True, True, True, True, True, True),
        ),
    ]


def _trend_blocks(spec, analysis: Analysis, analyses, waves, ci, rule, decimals) -> list[Block]:
    trends = analyses["trends"]
    rows = trends[trends["analysis_id"] == analysis.id]
    if rows.empty:
        return []
    share = rows["statistic"].iloc[0] == "share"
    change = (lambda v: format_points(v, 1)) if share else _signed_mean
    return [
        Paragraph(
            f"Lineaire trend ({rows['base_text'].iloc[0]}): de gemiddelde verandering per jaar "
            f"{'in procentpunten ' if share else ''}over de metingen {rows['wave_first'].iloc[0]}\u2013"
            f"{rows['wave_last'].iloc[0]} (helling van de uitkomsten per meting), met {ci} en toets op geen trend. "
            "Geschat met de respondent als cluster, omdat veel panelleden aan meer metingen meedoen."
        ),
        Table(
            ("Groep", "Metingen", "Verandering per jaar", ci, "p-waarde"),
            tuple(
                (
                    r.breakdown_label,
                    str(r.n_waves),
                    MISSING_TEXT if r.suppressed else change(r.slope),
                    MISSING_TEXT if r.suppressed else _interval(r.ci_lower, r.ci_upper, change),
                    format_p_value(r.p_value),
                )
                for r in rows.itertuples()
            ),
            caption=_withheld(int(rows["suppressed"].sum()), len(rows), rule).strip(),
            numeric=(False, True, True, True, True),
        ),
    ]
