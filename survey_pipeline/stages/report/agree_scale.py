"""What the rest of an agree-scale indicator answered: the shares beside a "(helemaal) mee eens" percentage.

A low share that agrees with a statement ("De medewerker nam mij serieus") is easily read as the
share that is dissatisfied. The 2017 annual report therefore stated, in a footnote written by hand,
which share answered "(helemaal) niet mee eens" and which "neutraal" or "weet niet". Here that
footnote is computed (pure, no I/O): for each indicator on an agree scale of the spec (a scale that
declares `disagree` and `neutral`), in the latest wave shown in which it was measured, from the
estimate stage's distributions table (`contracts.EstimateDistributions`, the whole municipality).

The shares are taken over the indicator's own base: the codes of the distribution that the
indicator counts (its answers, plus "weet niet" when it counts as "nee"; never "geen antwoord"),
so the indicator's success share, the disagree share and the neutral share add up to the whole
base. Where the base is not the group the question is asked of (the distribution's base), or a
share the sentence needs is suppressed, no sentence is given: nothing is printed that the
publication rule withheld, and the method note says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from survey_pipeline.spec import Indicator, QuestionnaireSpec
from survey_pipeline.stages.report.formatting import format_percent
from survey_pipeline.stages.report.tables import TOTAL, describe_reason, label_with_base, report_order


@dataclass(frozen=True)
class AgreeShares:
    """Shares of one indicator's base in one wave (fractions, from the distributions table)."""

    indicator_id: str
    wave: int
    agree: float  # the indicator's success codes: the same share the indicator table publishes
    disagree: float  # the scale's `disagree` codes
    neutral: float  # the scale's `neutral` codes, plus "weet niet" when the indicator counts it as "nee"
    disagree_label: str
    neutral_labels: tuple[str, ...]  # e.g. ("neutraal", "weet niet")


@dataclass(frozen=True)
class AgreeNote:
    """The sentence for one indicator; without `shares` it says (in Dutch) why the split cannot be given."""

    indicator: Indicator
    wave: int
    text: str
    shares: AgreeShares | None = None


def agree_indicators(spec: QuestionnaireSpec) -> list[Indicator]:
    """The indicators whose question is on an agree scale, in report order."""
    return [ind for ind in report_order(spec) if spec.agree_scale(ind.variable) is not None]


def _quoted(labels: Sequence[str]) -> str:
    return " of ".join(f"\u2018{label}\u2019" for label in labels)


def agree_shares(
    distributions: pd.DataFrame, spec: QuestionnaireSpec, indicator: Indicator, wave: int
) -> AgreeShares | str:
    """The shares of `indicator` in `wave`, or the Dutch reason they cannot be given."""
    scale = spec.agree_scale(indicator.variable)
    variable = spec.variables[indicator.variable]
    if scale is None or scale.disagree is None or scale.neutral is None:
        raise ValueError(f"indicator {indicator.id} is not on an agree scale")
    if indicator.base != variable.asked_of:
        return "de basis van de indicator is niet de groep aan wie de vraag gesteld is"
    rows = distributions[
        (distributions["variable"] == indicator.variable)
        & (distributions["wave"] == wave)
        & (distributions["breakdown"] == TOTAL)
    ].set_index("code")
    dont_know = variable.missing.dont_know.code
    counted_dont_know = (dont_know,) if indicator.dont_know == "count_as_no" else ()
    in_base = (*variable.codes, *counted_dont_know)
    missing = [code for code in in_base if float(code) not in rows.index]
    if missing:
        return "de verdeling van de antwoorden ontbreekt"
    withheld = rows.loc[[float(c) for c in in_base]]
    withheld = withheld[withheld["suppressed"] | withheld["estimate"].isna()]
    if len(withheld):
        return (
            "niet alle aandelen zijn gepubliceerd (" + describe_reason(";".join(withheld["suppression_reason"])) + ")"
        )
    share = rows["estimate"].astype("float64")
    total = float(sum(share[float(c)] for c in in_base))
    if total <= 0:
        return "niemand in de basis"

    def part(codes: Sequence[int]) -> float:
        return float(sum(share[float(c)] for c in codes)) / total

    return AgreeShares(
        indicator_id=indicator.id,
        wave=wave,
        agree=part(indicator.success),
        disagree=part(scale.disagree.codes),
        neutral=part((*scale.neutral.codes, *counted_dont_know)),
        disagree_label=scale.disagree.label,
        neutral_labels=(scale.neutral.label, *(variable.missing.dont_know.label for _ in counted_dont_know)),
    )


def agree_notes(
    indicators: pd.DataFrame,
    distributions: pd.DataFrame,
    spec: QuestionnaireSpec,
    shown_waves: Sequence[int],
    measured: Mapping[str, Sequence[int]],
    decimals: int,
) -> tuple[AgreeNote, ...]:
    """Per agree-scale indicator measured in a shown wave: the sentence for its latest such wave.

    The indicator's own percentage is quoted from the published indicator table (as the annual
    table prints it); the other two shares come from the distributions over the same base."""
    totals = indicators[indicators["breakdown"] == TOTAL].set_index(["indicator_id", "wave"])
    notes = []
    for ind in agree_indicators(spec):
        waves = [w for w in shown_waves if w in measured.get(ind.id, ())]
        if not waves:
            continue
        wave = waves[-1]
        row = totals.loc[(ind.id, wave)]
        if bool(row["suppressed"]):
            continue  # the table prints "-" with its reason; there is no percentage to explain
        found = agree_shares(distributions, spec, ind, wave)
        if isinstance(found, str):
            notes.append(
                AgreeNote(
                    ind,
                    wave,
                    f"{label_with_base(spec, ind)} ({wave}): geen uitsplitsing van de overige antwoorden: {found}.",
                )
            )
            continue
        notes.append(
            AgreeNote(
                ind,
                wave,
                f"{label_with_base(spec, ind)} ({wave}: {format_percent(float(row['estimate']), decimals)}): dat betekent niet dat de "
                f"overigen het oneens zijn. {format_percent(found.disagree, decimals)} antwoordde "
                f"\u2018{found.disagree_label}\u2019, {format_percent(found.neutral, decimals)} "
                f"{_quoted(found.neutral_labels)}.",
                found,
            )
        )
    return tuple(notes)
