"""The annual-report page: the indicator table as printed, targets, changes and figures."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.stages.report.document import (
    METHOD_NOTE_PAGE,
    AnnualTableBlock,
    Block,
    Document,
    Heading,
    Image,
    Link,
    Paragraph,
    Table,
)
from survey_pipeline.stages.report.figures import Figure
from survey_pipeline.stages.report.formatting import format_percent
from survey_pipeline.stages.report.registration_rows import TARGET_CAPTION as REGISTRATION_TARGET_CAPTION
from survey_pipeline.stages.report.tables import AnnualTable, format_target_table, target_rule_text


def _frame_table(frame: pd.DataFrame, numeric: Sequence[str], caption: str = "") -> Table:
    shown = frame.drop(columns=[c for c in ("indicator_id",) if c in frame])
    return Table(
        tuple(shown.columns),
        tuple(tuple(str(v) for v in row) for row in shown.itertuples(index=False)),
        caption=caption,
        numeric=tuple(c in numeric for c in shown.columns),
    )


def _image(figure: Figure, caption: bool = True) -> Image:
    """The SVG (sharp at any zoom) if written; titled figures need no caption under them."""
    svg = next((f for f in figure.files if f.endswith(".svg")), figure.files[0])
    return Image(svg, figure.description, figure.title if caption else "")


def build_report_document(
    spec: QuestionnaireSpec,
    annual: AnnualTable,
    targets: pd.DataFrame,
    changes: pd.DataFrame,
    chain: Figure | None,
    trends: Sequence[Figure],
    wijken: Sequence[Figure],
    waves: Sequence[int],
    level: float,
    *,
    model_based: bool = False,
    registration_targets: pd.DataFrame | None = None,
    verdieping: Sequence[Block] = (),
) -> Document:
    """The page `jaarverslag.html` / `jaarverslag.md`; `targets` is `tables.target_table`, `changes`
    `tables.change_table`, `level` the confidence level of the intervals; `model_based`: an area
    figure shows model-based estimates (small-area estimation), which the text then explains;
    `registration_targets` the judged registration targets (`registration_rows.target_rows`), listed
    after the survey's; `verdieping` the section of the spec's analyses (`verdieping.py`), last."""
    blocks: list = [
        Paragraph(annual.intro),
        AnnualTableBlock(annual),
        Paragraph(
            "Hoe de percentages berekend zijn (opzet, respons, weging en haar beperkingen, betrouwbaarheid):",
            link=Link("Onderzoeksverantwoording", METHOD_NOTE_PAGE),
        ),
    ]
    shown_targets, caption = format_target_table(targets, annual.decimals), target_rule_text(level)
    if registration_targets is not None and len(registration_targets):
        shown_targets = pd.concat([shown_targets, registration_targets], ignore_index=True)
        caption += REGISTRATION_TARGET_CAPTION
    if len(shown_targets):
        blocks += [
            Heading("Toetsing aan de streefwaarden", anchor="streefwaarden"),
            _frame_table(shown_targets, ("Jaar", "Behaald"), caption=caption),
        ]
    if len(changes):
        blocks += [
            Heading("Veranderingen tussen metingen", anchor="veranderingen"),
            _frame_table(
                changes,
                ("Van", "Naar", "Verschil (procentpunt)", "p"),
                caption=(
                    f"Verschil in procentpunten met {format_percent(level)}-betrouwbaarheidsinterval, geschat met "
                    "de respondent als cluster omdat veel panelleden aan meer metingen meedoen."
                ),
            ),
        ]
    if chain is not None:
        blocks += [Heading("Van gehoord naar contact naar geholpen", anchor="keten"), _image(chain)]
    if trends:
        blocks += [Heading("Ontwikkeling per indicator", anchor="trends"), *(_image(f, caption=False) for f in trends)]
    if wijken:
        per_area = spec.breakdown_text(spec.area_variable)
        blocks += [
            Heading(f"Vergelijking {per_area}", anchor="wijken"),
            Paragraph(
                f"Per indicator de uitkomst {per_area} in de laatste meting waarin de vraag gesteld is, "
                "met het gemeentelijke cijfer als lijn en zijn interval als band. Een uitkomst die "
                "niet gepubliceerd wordt (te weinig waarnemingen of te onzeker), staat in de figuur als "
                f"\u2018niet gepubliceerd\u2019 zonder getal; een indicator zonder gepubliceerde uitkomst "
                f"{per_area} heeft geen figuur."
                + (
                    " Waar het directe cijfer te onzeker is, staat een modelschatting (m) als die "
                    "nauwkeurig genoeg is: geschat uit de gebiedskenmerken en de andere gebieden, niet "
                    "design-zuiver (zie de onderzoeksverantwoording)."
                    if model_based
                    else ""
                )
            ),
            *(_image(f, caption=False) for f in wijken),
        ]
    blocks += verdieping
    first, last = min(waves), max(waves)
    period = str(first) if first == last else f"{first}\u2013{last}"
    return Document(
        f"{spec.title}: indicatoren {period}",
        tuple(blocks),
        subtitle="Prestatie-indicatoren en kengetallen voor het jaarverslag",
    )
