"""The method note (onderzoeksverantwoording), generated from the run, in Dutch.

Every number comes from the run's files (validate and weight metrics, the weight
diagnostics and margin recovery, the published tables), every setting from the
settings the weight and estimate outputs record they were made with (never from
params.yaml, which may have changed since), and every rule from the
questionnaire spec; nothing here is typed in by hand, so the note cannot
disagree with the tables it accompanies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from survey_pipeline.contracts import (
    RULE_TEXT_NL,
    SAE_NORMALITY_ALPHA,
    SAE_SOURCE_DIRECT,
    SAE_SOURCE_MODEL,
    SAE_SOURCE_NONE,
)
from survey_pipeline.core import R_SURVEY_VERSION
from survey_pipeline.errors import SpecError
from survey_pipeline.reliability import PUBLICATION_LEVEL
from survey_pipeline.settings import (
    EstimateSettings,
    ReportSettings,
    SmallAreaSettings,
    SuppressionRule,
    WeightSettings,
)
from survey_pipeline.spec import ALL_RESIDENTS, QuestionnaireSpec
from survey_pipeline.stages.report.agree_scale import AgreeNote
from survey_pipeline.stages.report.csv_safety import DUTCH_EXCEL
from survey_pipeline.stages.report.document import REPORT_PAGE, Bullets, Document, Heading, Link, Paragraph, Table
from survey_pipeline.stages.report.formatting import MISSING_TEXT, format_number, format_percent
from survey_pipeline.stages.report.registration_rows import UNIT_TEXT
from survey_pipeline.stages.report.tables import (
    REASON_TEXT,
    TOTAL,
    annual_layout,
    label_with_base,
    report_order,
    target_rule_text,
)

CI_TEXT = {
    "beta": "het Korn-Graubard-interval (Clopper-Pearson op de effectieve steekproefomvang; gelijk aan "
    'svyciprop(method = "beta") in het R-pakket survey)',
    "logit": 'het logit-interval (svyciprop(method = "xlogit") in het R-pakket survey)',
    "wilson": "het Wilson-interval op de effectieve steekproefomvang",
    "wald": "de normale benadering (schatting plus of min t maal de standaardfout)",
}
WEIGHT_METHOD_TEXT = {
    "rake": "raking (iteratief proportioneel aanpassen, zoals rake() in het R-pakket survey)",
    "poststratify": "poststratificatie op de cellen van de wegingsvariabelen",
}
TOTAL_TEXT = "hele gemeente"
MAX_CATEGORIES_IN_FULL = 12
# The software the note names, in this order (the stage records hold the manifest's whole list).
NOTED_PACKAGES = ("survey-pipeline", "numpy", "pandas", "scipy", "statsmodels", "pyreadstat")
STAGE_TEXT = {"ingest": "inlezen", "validate": "controle", "weight": "weging", "estimate": "schatting"}


@dataclass(frozen=True)
class RunFacts:
    """What the note is generated from: the run's metrics and tables, and the settings they were made with."""

    validate_metrics: Mapping[str, Any]
    weight_metrics: Mapping[str, Any]
    weight_diagnostics: pd.DataFrame
    weight_margins: pd.DataFrame
    indicators: pd.DataFrame
    changes: pd.DataFrame
    weight: WeightSettings
    estimate: EstimateSettings
    report: ReportSettings  # this stage's own settings: which figure files it draws
    small_area: pd.DataFrame | None = None  # outputs/estimate/sae.parquet (no rows when switched off)
    # Per upstream stage, the software it ran with (`settings.recorded_software`): what made the numbers.
    software: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What the rest of the base answered on agree-scale indicators (`agree_scale.agree_notes`).
    agree_notes: tuple[AgreeNote, ...] = ()
    registrations: pd.DataFrame | None = None  # outputs/estimate/registrations.parquet (registration figures)
    # The spec's analyses as published (outputs/report/analyses/, `contracts.REPORT_ANALYSIS_TABLES`).
    analyses: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def rule(self) -> SuppressionRule:
        return self.estimate.suppression


def _n(value) -> str:
    return format_number(float(value), 0)


def _dec(value, decimals: int = 2) -> str:
    return format_number(float(value), decimals)


def _small(value: float) -> str:
    """A calibration error in persons: "< 0,001" when it is negligible."""
    return "< 0,001" if abs(value) < 0.001 else format_number(value, 3)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def _scientific(value: float) -> str:
    """A small tolerance in Dutch notation: 1e-10 -> "10⁻¹⁰", 2.5e-8 -> "2,5 × 10⁻⁸"; 0.01 -> "0,01"."""
    value = float(value)
    if value == 0 or abs(value) >= 1e-3:
        return format_number(value, 4).rstrip("0").rstrip(",")
    mantissa, exponent = f"{value:.3e}".split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    mantissa = format_number(float(mantissa), 3).rstrip("0").rstrip(",")
    return power if mantissa == "1" else f"{mantissa} \u00d7 {power}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " en " + items[-1]


def _reason_text(key: str) -> str:
    """A quarantine reason as validate's metrics count it ("rule:column") in Dutch: "<rule in words> (column)"."""
    rule, _, column = key.partition(":")
    return f"{RULE_TEXT_NL.get(rule, rule)} ({column})" if column else RULE_TEXT_NL.get(rule, rule)


def _waves(facts: RunFacts) -> list[int]:
    return sorted(int(w) for w in facts.validate_metrics.get("waves", {}))


# ---------------------------------------------------------------------------
# Sections


def _introduction(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    level = facts.indicators["level"].iloc[0] if len(facts.indicators) else facts.estimate.level
    return [
        Heading("Over dit onderzoek"),
        Paragraph(
            f"{spec.title}. De doelpopulatie is {spec.population_label}. Deze verantwoording hoort bij de metingen "
            f"{_join([str(w) for w in _waves(facts)])} en is samen met de tabellen uit dezelfde run gemaakt. "
            f"Alle percentages zijn gewogen naar de bevolking; de onzekerheid staat erbij als "
            f"{format_percent(level)}-betrouwbaarheidsinterval.",
            link=Link("De tabellen en figuren voor het jaarverslag", REPORT_PAGE),
        ),
        *_not_measured(spec),
    ]


def _design(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """Panel recruitment, population, fieldwork and response per wave (spec `survey.method`, validate metrics)."""
    method = spec.method
    if method is None:
        return [
            Heading("Opzet van het onderzoek", anchor="opzet"),
            Paragraph(
                "De vragenlijstdefinitie beschrijft de werving van het panel, de veldwerkperiode en het aantal "
                "uitgenodigde panelleden niet (survey.method); een responspercentage is daarom niet te geven."
            ),
        ]
    waves = facts.validate_metrics.get("waves", {})
    rows = []
    for wave in _waves(facts):
        fielded, counts = method.waves[wave], waves[str(wave)]
        if counts["rows_in"] > fielded.invited:
            raise SpecError(
                f"survey.method.waves.{wave}.invited",
                f"{fielded.invited} invited, fewer than the {counts['rows_in']} respondents of wave {wave}",
                file=spec.source,
            )
        rows.append(
            (
                str(wave),
                fielded.fieldwork,
                _n(fielded.invited),
                _n(counts["rows_in"]),
                format_percent(response_rate(fielded.invited, counts["rows_in"]), 1),
                _n(counts["rows_valid"]),
            )
        )
    return [
        Heading("Opzet van het onderzoek", anchor="opzet"),
        Paragraph(method.population),
        Paragraph(method.recruitment),
        Paragraph(
            "Per meting: de veldwerkperiode, het aantal uitgenodigde panelleden en het aantal dat de vragenlijst "
            "heeft ingevuld (de respons: de regels in het databestand van die meting). Het responspercentage is de "
            "respons gedeeld door het aantal uitgenodigden; geldig zijn de regels die alle controles doorstaan "
            "(zie Respons en datakwaliteit)."
        ),
        Table(
            ("Meting", "Veldwerk", "Uitgenodigd", "Respons", "Responspercentage", "Geldig"),
            tuple(rows),
            caption="Uitgenodigde panelleden en respons per meting.",
            numeric=(False, False, True, True, True, True),
        ),
    ]


def response_rate(invited: int, responded: int) -> float:
    """The share of the invited panel members who responded."""
    return responded / invited


def _not_measured(spec: QuestionnaireSpec) -> list:
    """Waves and questions the spec says were not measured, with the declared reason (the "-" cells of the report)."""
    blocks: list = [Paragraph(f"In {wave} is niet gemeten ({reason}).") for wave, reason in spec.not_measured.items()]
    gaps = []
    for variable in spec.variables.values():
        skipped = [w for w in spec.waves if w not in variable.waves]
        if skipped:
            waves = _join(
                [f"{w} ({variable.not_measured[w]})" if w in variable.not_measured else str(w) for w in skipped]
            )
            gaps.append(f"{variable.label}: niet gesteld in {waves}.")
    if gaps:
        blocks += [
            Paragraph("Niet elke vraag is in elke meting gesteld; in de tabellen staat dan een streepje:"),
            Bullets(tuple(gaps)),
        ]
    return blocks


def _response(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    waves = facts.validate_metrics.get("waves", {})
    diag = facts.weight_diagnostics.set_index("wave") if len(facts.weight_diagnostics) else pd.DataFrame()
    rows = []
    for wave in _waves(facts):
        m = waves[str(wave)]
        weighted = diag.loc[wave] if wave in diag.index else None
        rows.append(
            (
                str(wave),
                _n(m["rows_in"]),
                _n(m["rows_valid"]),
                _n(m["rows_quarantined"]),
                format_percent(m["quarantined_share"], 1),
                _n(weighted["n_excluded_missing_background"]) if weighted is not None else "-",
                _n(weighted["n"]) if weighted is not None else "-",
            )
        )
    blocks = [
        Heading("Respons en datakwaliteit"),
        Paragraph(
            "Elke ontvangen regel is gecontroleerd op de vragenlijst (toegestane codes, routing, dubbele respondenten). "
            "Regels die een controle niet doorstaan gaan met hun reden in quarantaine en tellen niet mee. "
            "Respondenten zonder waarde op een wegingskenmerk kunnen niet gewogen worden."
        ),
        Table(
            ("Meting", "Ontvangen", "Geldig", "In quarantaine", "Aandeel quarantaine", "Niet gewogen", "Gewogen"),
            tuple(rows),
            caption="Aantallen respondenten per meting.",
            numeric=(False, True, True, True, True, True, True),
        ),
    ]
    missing = []
    for wave in _waves(facts):
        by_variable = facts.weight_metrics.get("waves", {}).get(str(wave), {}).get("excluded_missing_by_variable", {})
        parts = [
            f"{spec.background[v].label.lower() if v in spec.background else v} {_n(n)}"
            for v, n in by_variable.items()
            if n
        ]
        if parts:
            missing.append(f"{wave}: " + ", ".join(parts))
    if missing:
        blocks += [
            Paragraph(
                "Niet gewogen omdat een wegingskenmerk ontbreekt (per kenmerk; een respondent kan bij meer "
                "kenmerken meetellen):"
            ),
            Bullets(tuple(missing)),
        ]
    reasons = facts.validate_metrics.get("reasons", {})
    items = []
    for wave in _waves(facts):
        top = sorted(reasons.get(str(wave), {}).items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        if top:
            items.append(f"{wave}: " + "; ".join(f"{_reason_text(key)}: {_n(count)}" for key, count in top))
    if items:
        blocks += [
            Paragraph("Meest voorkomende redenen voor quarantaine (reden (variabele): aantal regels):"),
            Bullets(tuple(items)),
        ]
    overlap = facts.changes[facts.changes["breakdown"] == TOTAL].groupby(["wave_from", "wave_to"])["n_both"].max()
    if len(overlap):
        blocks += [
            Paragraph(
                "Het panel volgt dezelfde bewoners over de jaren. Aantal respondenten met een geldig antwoord in beide "
                "metingen (het hoogste aantal over de indicatoren):"
            ),
            Table(
                ("Metingen", "In beide metingen"),
                tuple((f"{a}\u2013{b}", _n(n)) for (a, b), n in overlap.items()),
                numeric=(False, True),
            ),
        ]
    return blocks


def _weighting(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    settings = facts.weight
    method = settings.method
    names = settings.weighting_variables
    variables = [spec.background[v].label.lower() for v in names if v in spec.background]
    text = (
        f"Per meting zijn de respondenten gewogen naar de doelpopulatie, {spec.population_label}, op "
        f"{_join(variables) if variables else 'de achtergrondkenmerken'}, met "
        f"{WEIGHT_METHOD_TEXT.get(method, method)}. De bevolkingsaantallen komen uit "
        f"{settings.target_file}. "
        f"De gewichten tellen per meting op tot de bevolkingsomvang."
    )
    diag = facts.weight_diagnostics.sort_values("wave")
    if len(diag) and bool(diag["base_weights_used"].any()):
        text += " Het wegen begint bij de ontwerpgewichten uit het databestand."
    if method == "rake":
        text += (
            f" Het raken stopt zodra een ronde geen cel meer verschuift dan {_scientific(settings.tol)} maal de som van "
            f"de gewichten, na hoogstens {settings.max_iter} rondes; anders stopt de run met een fout."
        )
    lower, upper = settings.trim_lower, settings.trim_upper
    bounds = [
        f"kleiner dan {_dec(lower)}" if lower is not None else "",
        f"groter dan {_dec(upper)}" if upper is not None else "",
    ]
    bounds = [b for b in bounds if b]
    if bounds:
        text += (
            f" Gewichten {' of '.join(bounds)} keer het gemiddelde gewicht zijn afgekapt, waarna opnieuw naar de "
            f"bevolking is gewogen."
        )
    if settings.missing_background == "exclude":
        text += (
            " Respondenten zonder waarde op een wegingskenmerk zijn niet gewogen en tellen niet mee in de "
            "uitkomsten (aantallen in de tabel hierboven)."
        )
    blocks = [Heading("Weging"), Paragraph(text)]
    if len(diag):
        rows = tuple(
            (
                str(int(r.wave)),
                _n(r.n),
                _n(r.iterations),
                _n(r.n_trimmed),
                f"{_dec(r.min_weight / r.mean_weight)} \u2013 {_dec(r.max_weight / r.mean_weight)}",
                _dec(r.deff_kish),
                _n(r.n_eff),
                _small(float(r.max_abs_margin_error)),
            )
            for r in diag.itertuples(index=False)
        )
        blocks += [
            Heading("Diagnostiek van de weging", 3),
            Table(
                (
                    "Meting",
                    "Gewogen",
                    "Rondes",
                    "Afgekapt",
                    "Gewicht (× gemiddelde)",
                    "Designeffect (Kish)",
                    "Effectieve omvang",
                    "Grootste afwijking marge",
                ),
                rows,
                caption="Het designeffect van Kish (1 + variatiecoëfficiënt² van de gewichten) geeft aan hoeveel "
                "onzekerder de uitkomsten door de weging worden; de effectieve omvang is het aantal "
                "respondenten gedeeld door dat designeffect. De afwijking van de marges is in personen.",
                numeric=(False, True, True, True, True, True, True, True),
            ),
        ]
    blocks += _margins(spec, facts)
    return blocks


def _weighting_limits(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """The assumption under which a self-selected panel is weighted, and what weighting cannot repair."""
    names = facts.weight.weighting_variables
    variables = _join([spec.background[v].label.lower() for v in names if v in spec.background] or list(names))
    return [
        Heading("Aanname van de weging en wat weging niet oplost", 3, anchor="aanname-weging"),
        Paragraph(
            "Het panel is geen aselecte steekproef: panelleden melden zich zelf aan en kiezen per meting zelf of "
            f"ze meedoen. De weging maakt de respons per meting gelijk aan de bevolking naar {variables}. De "
            "gewogen percentages zijn zuiver onder de aanname dat wie meedoet en wie niet meedoet, binnen elke "
            "combinatie van deze kenmerken gemiddeld hetzelfde zou antwoorden: de ontbrekende antwoorden zijn "
            "‘missing at random’ gegeven de wegingskenmerken. Of die aanname klopt, is met deze gegevens "
            "niet te toetsen."
        ),
        Paragraph("Wat weging niet kan herstellen:"),
        Bullets(
            (
                f"Selectie op kenmerken die niet in de weging zitten. Wie belangstelling heeft voor het onderwerp "
                f"van de vragenlijst, of er zelf mee te maken heeft, meldt zich eerder aan en doet eerder mee; "
                f"binnen dezelfde combinatie van {variables} kunnen deelnemers dus anders antwoorden dan andere "
                f"bewoners. Ook "
                f"kenmerken als opleiding, digitale vaardigheid en betrokkenheid bij de gemeente zitten niet in "
                f"de weging.",
                "Panelconditionering: wie vaker meedoet, kan door eerdere vragenlijsten meer over het onderwerp "
                "te weten komen of anders gaan antwoorden. Veranderingen tussen metingen kunnen daardoor deels "
                "door het panel zelf komen.",
                "De betrouwbaarheidsintervallen en de designeffecten geven alleen de onzekerheid door de steekproef "
                "en de weging weer, niet een vertekening door deze selectie.",
            )
        ),
    ]


def _margins(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    margins = facts.weight_margins
    if not len(margins):
        return []
    blocks: list = [
        Heading("Steekproef en bevolking", 3),
        Paragraph(
            "Samenstelling van de steekproef (ongewogen) naast die van de bevolking. Na weging is de "
            "samenstelling per kenmerk gelijk aan die van de bevolking."
        ),
    ]
    waves = sorted(int(w) for w in margins["wave"].unique())
    for variable, part in margins.groupby("variable", sort=False):
        label = spec.background[variable].label if variable in spec.background else variable
        after = float((part["weighted_share"] - part["population_share"]).abs().max())
        if part["code"].nunique() > MAX_CATEGORIES_IN_FULL:
            gap = (part["sample_share"] - part["population_share"]).abs()
            worst = part.loc[gap.idxmax()]
            blocks.append(
                Paragraph(
                    f"{label} ({part['code'].nunique()} categorieën): het aandeel in de steekproef wijkt hoogstens "
                    f"{format_number(100 * float(gap.max()), 1)} procentpunt af van de bevolking ({worst['label']}, "
                    f"{int(worst['wave'])}); na weging hoogstens {format_number(100 * after, 3)} procentpunt."
                )
            )
            continue
        rows = []
        for _code, cat in part.groupby("code", sort=True):
            cells = [str(cat["label"].iloc[0])]
            for wave in waves:
                row = cat[cat["wave"] == wave]
                cells += (
                    [format_percent(row["sample_share"].iloc[0], 1), format_percent(row["population_share"].iloc[0], 1)]
                    if len(row)
                    else ["-", "-"]
                )
            rows.append(tuple(cells))
        headers = (label, *(h for w in waves for h in (f"Steekproef {w}", f"Bevolking {w}")))
        blocks.append(
            Table(
                headers,
                tuple(rows),
                numeric=(False, *(True,) * (2 * len(waves))),
                caption=f"{label}: na weging wijkt geen aandeel meer dan "
                f"{format_number(100 * after, 3)} procentpunt af van de bevolking.",
            )
        )
    return blocks


def _intervals(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    ind = facts.indicators
    methods = [m for m in dict.fromkeys(ind["ci_method"]) if m]
    level = float(ind["level"].iloc[0]) if len(ind) else facts.estimate.level
    configured = facts.estimate.ci_method
    text = (
        f"De standaardfouten zijn designgebaseerd: ze houden rekening met de weging en met de kalibratie op de "
        f"bevolkingsmarges (linearisatie, zoals het R-pakket survey). Het {format_percent(level)}-"
        f"betrouwbaarheidsinterval is {CI_TEXT.get(configured, configured)}."
    )
    other = [m for m in methods if m != configured]
    if other:
        text += (
            " Bij een uitkomst van 0% of 100% is de variantie nul; daar is het Korn-Graubard-interval op het "
            "ongewogen aantal gebruikt."
        )
    blocks = [Heading("Betrouwbaarheidsintervallen en veranderingen"), Paragraph(text)]
    changes = facts.changes[(facts.changes["breakdown"] == TOTAL) & ~facts.changes["suppressed"]]
    change_text = (
        "Veel panelleden doen aan meer metingen mee, dus de metingen zijn geen onafhankelijke steekproeven. Een "
        "verandering tussen twee metingen is daarom geschat op de gestapelde gegevens van beide metingen, met de "
        "respondent als cluster, gewogen naar de bevolking van beide jaren. Een verandering heet significant als "
        "het betrouwbaarheidsinterval van het verschil de nul niet bevat."
    )
    ratio = (changes["se"] / changes["se_independent"]).replace([np.inf, -np.inf], np.nan).dropna()
    if len(ratio):
        median = float(ratio.median())
        change_text += (
            f" Door de overlap is de standaardfout van een verandering (mediaan over de indicatoren en paren van "
            f"metingen) "
            f"{format_percent(abs(1 - median))} {'kleiner' if median < 1 else 'groter'} dan wanneer de metingen als "
            f"onafhankelijke steekproeven waren behandeld."
        )
    blocks.append(Paragraph(change_text))
    status = facts.indicators[facts.indicators["breakdown"] == TOTAL]["target_status"].value_counts()
    blocks += [
        Heading("Toetsing aan de streefwaarden", 3),
        Paragraph(target_rule_text(level) + " Een kengetal heeft geen streefwaarde."),
        Table(
            ("Oordeel (hele gemeente)", "Aantal"),
            tuple(
                (label, _n(status.get(key, 0)))
                for key, label in (
                    ("met", "gehaald"),
                    ("not_met", "niet gehaald"),
                    ("indistinguishable", "niet te onderscheiden"),
                    ("key_figure", "kengetal"),
                    ("no_target", "geen streefwaarde"),
                )
            ),
            numeric=(False, True),
        ),
    ]
    return blocks


def _breakdown_text(spec: QuestionnaireSpec, breakdown: str) -> str:
    """ "hele gemeente" for the total, else the spec's "per <label>"."""
    return TOTAL_TEXT if breakdown == TOTAL else spec.breakdown_text(breakdown)


def _suppression(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    rule = facts.rule
    items = (
        f"minder dan {rule.min_n} respondenten in de basis ({REASON_TEXT['min_n']});",
        f"een effectieve steekproefomvang kleiner dan {_n(rule.min_n_eff)} ({REASON_TEXT['min_n_eff']});",
        f"een betrouwbaarheidsinterval van {format_number(100 * rule.max_ci_width, 0)} procentpunt of breder "
        f"({REASON_TEXT['max_ci_width']});",
        f"een interval breder dan {format_number(100 * rule.relative_width_from, 0)} procentpunt dat ook meer dan "
        f"{format_percent(rule.max_relative_ci_width)} van de uitkomst zelf is ({REASON_TEXT['max_relative_ci_width']});",
        "geen schatting of geen interval te berekenen.",
    )
    ind = facts.indicators
    rows = []
    for breakdown, part in ind.groupby("breakdown", sort=False):
        flagged = part["flags"].str.contains("low_df", regex=False).sum()
        rows.append((_breakdown_text(spec, breakdown), _n(len(part)), _n(part["suppressed"].sum()), _n(flagged)))
    return [
        Heading("Betrouwbaarheid en onderdrukking"),
        Paragraph(
            "De regel volgt de standaard voor percentages van het Amerikaanse NCHS (Data Presentation Standards for "
            "Proportions, 2017), aangevuld met een minimale basis. De breedte van het interval wordt altijd beoordeeld "
            f"op het {format_percent(PUBLICATION_LEVEL)}-Korn-Graubard-interval van die standaard, ook als de tabellen een ander interval of "
            "betrouwbaarheidsniveau tonen: de effectieve steekproefomvang is p(1 \u2212 p) gedeeld door het kwadraat "
            "van de standaardfout, hoogstens het aantal respondenten in de basis, gecorrigeerd voor de vrijheidsgraden "
            "van het steekproefontwerp met het aantal respondenten in de basis zelf. Een uitkomst wordt niet "
            "gepubliceerd (in de tabellen staat dan \u201c-\u201d met de reden) bij:"
        ),
        Bullets(items),
        Paragraph(
            f"Een uitkomst met minder dan {_n(rule.flag_df_below)} vrijheidsgraden in het steekproefontwerp wordt wel "
            f"gepubliceerd, maar gemarkeerd als met voorzichtigheid te interpreteren. Een verandering wordt niet "
            f"gepubliceerd als een van beide uitkomsten niet gepubliceerd is."
        ),
        Table(
            ("Uitsplitsing", "Uitkomsten", "Niet gepubliceerd", "Gemarkeerd"),
            tuple(rows),
            numeric=(False, True, True, True),
        ),
    ]


# What a filter question answered "geen antwoord" (or left blank) does to the base (spec `filter_no_answer`).
FILTER_NO_ANSWER_TEXT = {"exclude": "valt buiten de basis", "count_as_no": "telt ook mee als \u2018nee\u2019"}


def _bases(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    totals = facts.indicators[facts.indicators["breakdown"] == TOTAL]
    rows = []
    routing = []
    for ind in report_order(spec):
        variable = spec.variables[ind.variable]
        success = " of ".join(f"\u2018{variable.codes[c]}\u2019" for c in ind.success)
        dont_know = "telt als \u2018nee\u2019" if ind.dont_know == "count_as_no" else "valt buiten de basis"
        sizes = "; ".join(f"{int(r.wave)}: {_n(r.n)}" for r in totals[totals["indicator_id"] == ind.id].itertuples())
        rows.append((ind.label, spec.base_text(ind.base), success, dont_know, sizes or "-"))
        if ind.base != variable.asked_of:
            routing.append(
                f"{ind.label} ({spec.base_text(ind.base)}): de vraag is alleen gesteld aan "
                f"{spec.groups[variable.asked_of].label}; wie de vraag door de routing niet kreeg, telt mee als "
                f"\u2018nee\u2019, ook wie een filtervraag met \u2018weet niet\u2019 beantwoordde; wie een "
                f"filtervraag niet beantwoordde, {FILTER_NO_ANSWER_TEXT[ind.filter_no_answer]}."
            )
    blocks = [
        Heading("De basis van elke indicator"),
        Paragraph(
            "Elk percentage is berekend over een basis die uit de vragenlijst volgt. \u2018Geen antwoord\u2019 en een "
            "lege waarde vallen altijd buiten de basis; wat er met \u2018weet niet\u2019 gebeurt, staat per indicator "
            "hieronder. "
            + (
                "De basis die de tabel in het jaarverslag tussen haakjes achter een omschrijving noemt, komt uit "
                "dezelfde vragenlijstdefinitie."
                if annual_layout(spec).base_style == "inline"
                else "De voetnoten bij de tabel in het jaarverslag worden uit dezelfde vragenlijstdefinitie gemaakt."
            )
        ),
        Table(
            ("Indicator", "Basis", "Telt als \u2018ja\u2019", "\u2018Weet niet\u2019", "Ongewogen basis per meting"),
            tuple(rows),
        ),
    ]
    if routing:
        blocks += [Paragraph("Routing:"), Bullets(tuple(routing))]
    blocks.append(
        Paragraph(
            "De verdelingen (distributions.csv) geven per vraag het aandeel van elk antwoord, ook \u2018weet niet\u2019 en "
            "\u2018geen antwoord\u2019, onder de bewoners aan wie de vraag gesteld is (de groep in de kolom base_text); "
            "een lege waarde telt daar niet mee."
        )
    )
    groups = [g for name, g in spec.groups.items() if name != ALL_RESIDENTS]
    if groups:
        blocks += [
            Paragraph("De groepen in de vragenlijst:"),
            Bullets(
                tuple(
                    f"{g.label}: "
                    + " en ".join(
                        f"{spec.variables[v].label if v in spec.variables else v} = "
                        + " of ".join(
                            f"\u2018{(spec.variables[v].codes if v in spec.variables else spec.background[v].codes)[c]}\u2019"
                            for c in codes
                        )
                        for v, codes in g.when.clauses
                    )
                    for g in groups
                )
            ),
        ]
    return blocks


COVARIATE_TEXT = {
    "pct_18_34": "het percentage inwoners van 18 tot en met 34 jaar",
    "pct_65_plus": "het percentage inwoners van 65 jaar en ouder",
    "pct_single_person_households": "het percentage eenpersoonshuishoudens",
    "pct_low_income_households": "het percentage huishoudens met een laag inkomen",
    "pct_migration_background": "het percentage inwoners met een migratieachtergrond",
}
SAE_METHOD_TEXT = {
    "REML": "restricted maximum likelihood (REML)",
    "ML": "maximum likelihood",
    "FH": "de momentenschatter van Fay en Herriot",
}
BENCHMARK_TEXT = {
    "ratio": "met een factor per indicator en meting (ratio-benchmarking)",
    "difference": "met een vast verschil per indicator en meting (verschil-benchmarking)",
}


def _small_area(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """How the model-based wijk figures are made, and their diagnostics per indicator and meting."""
    table = facts.small_area
    if table is None or not len(table):
        return []
    settings = facts.estimate.small_area
    covariates = _join([COVARIATE_TEXT.get(c, c) for c in settings.covariates])
    published = float((table["published_source"] != SAE_SOURCE_NONE).mean())
    by_model = float((table["published_source"] == SAE_SOURCE_MODEL).mean())
    benchmark = (
        f" Daarna zijn de modelschattingen {BENCHMARK_TEXT[settings.benchmarking]} zo bijgesteld dat hun "
        "gemiddelde, gewogen naar de geschatte omvang van de basis per wijk, gelijk is aan het directe cijfer "
        "voor de hele gemeente."
        if settings.benchmarking in BENCHMARK_TEXT
        else ""
    )
    blocks = [
        Heading("Wijkcijfers met een model (kleine-gebiedsschatting)"),
        Paragraph(
            "Veel wijken hebben te weinig respondenten voor een betrouwbaar direct cijfer. Waar het directe cijfer "
            "niet aan de publicatieregel voldoet, tonen de wijkfiguren en de tabel wijkcijfers een modelschatting, "
            "gemarkeerd als \u2018modelschatting\u2019 (in de figuren met (m)). Het model is het Fay-Herriot-model "
            "op wijkniveau, zoals het CBS en statistische bureaus elders het voor kleine gebieden gebruiken: per "
            "indicator en meting wordt het directe wijkpercentage (na een boogsinus-wortel-transformatie, die de "
            f"onzekerheid gelijkmatiger maakt) verklaard uit kenmerken van de wijk: {covariates} "
            f"(bestand {settings.covariates_file}), plus een eigen afwijking per wijk. De modelschatting is een "
            "gewogen gemiddelde van het directe cijfer en de voorspelling uit de wijkkenmerken; het gewicht van het "
            "directe cijfer (de krimpfactor) is groter naarmate de wijk meer respondenten heeft en de wijken meer "
            f"van elkaar verschillen. De variantie van de wijkafwijkingen is geschat met "
            f"{SAE_METHOD_TEXT[settings.method]}. De steekproefvariantie van een wijk komt niet rechtstreeks uit die "
            "wijk maar uit een gladgestreken variantiefunctie (het designeffect als functie van het aantal "
            "respondenten), zodat een wijk met heel weinig respondenten nooit een variantie van bijna nul krijgt."
            + benchmark
        ),
        Paragraph(
            "De onzekerheid van een modelschatting is de gemiddelde kwadratische fout (MSE), geschat met een "
            f"parametrische bootstrap ({_n(settings.bootstrap)} trekkingen) en vermeerderd met het kwadraat van de "
            "bijstelling; het 95%-interval is de schatting plus of min 1,96 maal de wortel daarvan. Een "
            "modelschatting wordt alleen gepubliceerd als dat interval aan dezelfde breedte-eisen voldoet als een "
            "direct cijfer."
        ),
        Paragraph(
            "Modelschattingen zijn niet design-zuiver: ze rusten op de aanname dat het model klopt en lenen "
            "informatie van de andere wijken. Een wijk die sterk afwijkt van wat haar kenmerken voorspellen, wordt "
            "naar die voorspelling toe getrokken. Gebruik ze voor een beeld van de wijk, niet om twee wijken scherp "
            "met elkaar te vergelijken. Verklaren de wijkkenmerken minder dan "
            f"{format_percent(settings.min_explained_variance)} van de verschillen tussen de wijken, dan wordt het "
            "model niet gebruikt en staan er alleen directe cijfers."
        ),
        Paragraph(
            f"In deze run heeft {format_percent(published)} van de wijkcijfers (indicator \u00d7 meting \u00d7 wijk) "
            f"een gepubliceerd cijfer, waarvan {format_percent(by_model)} van alle wijkcijfers een modelschatting. "
            "De controles van het model per indicator en meting: de variantie van de wijkafwijkingen "
            "(boogsinusschaal), het deel van de verschillen tussen de wijken dat de kenmerken verklaren, de "
            "gemiddelde krimpfactor en de Shapiro-Wilk-toets op de normaliteit van de gestandaardiseerde residuen."
        ),
        Table(
            (
                "Indicator",
                "Meting",
                "Variantie wijkeffect",
                "Verklaard",
                "Krimpfactor (gem.)",
                "Normaliteit (p)",
                "Direct",
                "Model",
                "Geen",
                "Opmerking",
            ),
            tuple(_small_area_rows(spec, table, settings)),
            numeric=(False, True, True, True, True, True, True, True, True, False),
        ),
    ]
    return blocks


def _small_area_rows(spec: QuestionnaireSpec, table: pd.DataFrame, settings: SmallAreaSettings):
    labels = {ind.id: label_with_base(spec, ind) for ind in spec.indicators}
    for (indicator_id, wave), part in table.groupby(["indicator_id", "wave"], sort=False):
        first = part.iloc[0]
        remarks = []
        if not part["model_used"].any():
            explained = first["explained_variance"]
            remarks.append(
                f"model niet gebruikt: kenmerken verklaren {format_percent(explained)}"
                if np.isfinite(explained) and explained < settings.min_explained_variance
                else "model niet gebruikt"
                if np.isfinite(first["sigma2_u"])
                else "geen model: te weinig wijken met een bruikbaar direct cijfer"
            )
        if np.isfinite(first["normality_p"]) and first["normality_p"] < SAE_NORMALITY_ALPHA:
            remarks.append("residuen niet normaal")
        empty = int((part["n"] == 0).sum())
        if empty:
            remarks.append(f"{empty} wijk(en) zonder respondenten")
        count = part["published_source"].value_counts()
        yield (
            labels.get(indicator_id, indicator_id),
            str(int(wave)),
            _scientific(first["sigma2_u"]) if np.isfinite(first["sigma2_u"]) else "-",
            format_percent(first["explained_variance"]) if np.isfinite(first["explained_variance"]) else "-",
            _dec(part["shrinkage"].mean()) if part["shrinkage"].notna().any() else "-",
            _dec(first["normality_p"], 3) if np.isfinite(first["normality_p"]) else "-",
            _n(count.get(SAE_SOURCE_DIRECT, 0)),
            _n(count.get(SAE_SOURCE_MODEL, 0)),
            _n(count.get(SAE_SOURCE_NONE, 0)),
            "; ".join(remarks),
        )


def _agree_scale(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """Per agree-scale indicator, what the rest of its base answered (the annual table's footnote)."""
    if not facts.agree_notes:
        return []
    return [
        Heading("Indicatoren op een eens-schaal", anchor="eens-schaal"),
        Paragraph(
            "Een aantal indicatoren is het percentage dat het (helemaal) eens is met een uitspraak. Een laag "
            "percentage betekent niet dat de overigen het oneens zijn: een deel antwoordt neutraal of weet het "
            "niet. Daarom staat onder de tabel in het jaarverslag, voor de laatste meting in de tabel, welk deel "
            "het oneens was en welk deel neutraal antwoordde of het niet wist. Die aandelen komen uit de verdeling "
            "van de antwoorden (distributions.csv), over dezelfde basis als de indicator: ‘geen antwoord’ "
            "telt niet mee, ‘weet niet’ alleen waar het bij de indicator als ‘nee’ telt. Samen met "
            "het percentage van de indicator vormen ze de hele basis (afgerond tellen ze op tot ongeveer 100%). "
            "Welke antwoorden als oneens en als neutraal gelden, staat in de vragenlijstdefinitie bij de schaal. "
            "Is een van de aandelen niet gepubliceerd (te onzeker), dan staat er geen uitsplitsing."
        ),
        Bullets(tuple(note.text for note in facts.agree_notes)),
    ]


def _software(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """The software the numbers were made with (as the stages recorded it) and what the estimators are checked against."""
    blocks: list = [Heading("Software en controle van de berekeningen", anchor="software")]
    versions = {
        stage: (
            f"Python {recorded['python']}, "
            + ", ".join(f"{name} {recorded['packages'].get(name) or 'onbekend'}" for name in NOTED_PACKAGES)
        )
        for stage, recorded in facts.software.items()
        if stage in STAGE_TEXT
    }
    if len(set(versions.values())) == 1:
        blocks.append(
            Paragraph(
                f"De cijfers zijn gemaakt met {next(iter(versions.values()))}, zoals elke stap van de verwerking "
                f"({_join([STAGE_TEXT[s] for s in STAGE_TEXT if s in versions])}) bij zijn uitkomsten heeft vastgelegd."
            )
        )
    elif versions:
        blocks += [
            Paragraph(
                "De stappen van de verwerking zijn met verschillende software gemaakt; elke stap heeft bij zijn "
                "uitkomsten vastgelegd waarmee:"
            ),
            Table(
                ("Stap", "Software"),
                tuple((STAGE_TEXT[s], versions[s]) for s in STAGE_TEXT if s in versions),
            ),
        ]
    blocks.append(
        Paragraph(
            "De schatters (raking en afkappen van gewichten, gewogen percentages, designgebaseerde standaardfouten "
            "met kalibratie, betrouwbaarheidsintervallen, verschillen tussen metingen) zijn getoetst aan het "
            f"R-pakket survey, versie {R_SURVEY_VERSION}: de referentiewaarden zijn met R berekend door de scripts "
            "in tests/reference/r, staan met de R-aanroep erbij in tests/reference en worden bij elke test van "
            "deze software vergeleken met haar uitkomsten."
        )
    )
    return blocks


def _files(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    return [
        Heading("Bestanden bij dit rapport"),
        Bullets(
            (
                f"indicators.csv / .parquet: elke indicator per meting, "
                f"{_join([_breakdown_text(spec, b) for b in facts.indicators['breakdown'].unique()])}, "
                "met standaardfout, interval, basis, aantallen, onderdrukking en streefwaarde.",
                "changes.csv / .parquet: de veranderingen tussen metingen, met standaardfout, interval en p-waarde.",
                "distributions.csv / .parquet: per vraag het aandeel van elk antwoord, ook \u2018weet niet\u2019 en "
                "\u2018geen antwoord\u2019.",
                "tabellen.xlsx: dezelfde tabellen en de jaarverslagtabel, elk op een eigen tabblad; percentages zijn "
                "getallen met een procentopmaak.",
                "jaarverslag.html / .md: de tabel voor het jaarverslag met figuren; figures/: de figuren als "
                f"{_join([fmt.upper() for fmt in facts.report.figure_formats])}.",
                "jaarverslag.docx: de tabellen van het jaarverslag voor wie het verslag in Word samenstelt.",
                f"indicators{DUTCH_EXCEL.suffix}.csv, changes{DUTCH_EXCEL.suffix}.csv, "
                f"distributions{DUTCH_EXCEL.suffix}.csv: dezelfde tabellen voor Excel met Nederlandse instellingen "
                "(puntkomma tussen de kolommen, decimale komma, UTF-8 met BOM zodat Excel letters met accenten goed leest).",
                *(
                    (
                        "wijkcijfers.csv / .parquet: per wijk het gepubliceerde cijfer, direct of modelgebaseerd "
                        "(kleine-gebiedsschatting), met interval en bron.",
                    )
                    if facts.small_area is not None and len(facts.small_area)
                    else ()
                ),
                *(
                    (
                        "analyses/: de tabellen van de Verdieping (gemiddelden, kruistabellen en toetsen, odds ratios, "
                        "wijk tegenover de rest, trends), als .csv en .parquet.",
                    )
                    if facts.analyses
                    else ()
                ),
                "checks.json: de uitkomst van de controles die de tabellen vóór publicatie hebben doorstaan.",
                "settings.json: de instellingen waarmee deze cijfers zijn gemaakt, per stap van de pijplijn.",
            )
        ),
        Paragraph(
            "Alle percentages staan in de CSV- en Parquet-bestanden als fractie (0,78 = 78%). Een spreadsheetprogramma "
            "knipt een CSV-regel in cellen bij zijn eigen scheidingsteken, en dat hangt af van de taalinstelling. "
            "Daarom krijgt een tekst in een CSV-bestand een enkel aanhalingsteken (') vóór elke =, +, -, @, tab of "
            "regeleinde (ook de brede vormen \uff1d \uff0b \uff0d \uff20) waarmee hij begint of waarmee een deel "
            "na een komma, puntkomma, tab of regeleinde begint; zo toont elk spreadsheetprogramma hem als tekst en "
            "voert het nooit een formule uit. Alleen een los streepje (-) blijft staan: daarmee valt niets te "
            "berekenen. Getallen blijven getallen; de Parquet-bestanden en tabellen.xlsx bevatten de tekst "
            "ongewijzigd."
        ),
    ]


# ---------------------------------------------------------------------------
# Registration figures (kengetallen not from the survey): their sources


def _registrations(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """Which figures in the tables are registrations, where they come from, and how their targets are judged."""
    if not spec.registrations:
        return []
    table = facts.registrations if facts.registrations is not None else pd.DataFrame(columns=["indicator_id"])
    rows = []
    for registration in spec.registrations:
        values = table[table["indicator_id"] == registration.id]
        years = sorted(int(y) for y in values["year"]) if len(values) else []
        sources = "; ".join(dict.fromkeys(str(s) for s in values["source"])) if len(values) else MISSING_TEXT
        rows.append(
            (
                registration.label,
                UNIT_TEXT[registration.unit],
                registration.source,
                sources,
                _join([str(y) for y in years]) if years else "geen",
            )
        )
    return [
        Heading("Registratiecijfers"),
        Paragraph(
            "Een deel van de kengetallen komt niet uit de enquête maar uit registraties. Dat zijn tellingen en "
            "percentages over alle meldingen of cliënten, geen steekproefuitkomsten: ze hebben geen "
            "betrouwbaarheidsinterval, worden niet onderdrukt en niet gewogen. Een aantal staat met een punt als "
            "scheiding van de duizendtallen (30.994), een percentage zoals de enquêtepercentages. Een streefwaarde "
            "is beoordeeld op de waarde zelf; een jaar zonder waarde staat als \u2018-\u2019 in de tabel, een "
            "opmerking bij een waarde als voetnoot."
        ),
        Table(
            ("Registratiecijfer", "Eenheid", "Registratie", "Bron van de waarden", "Jaren"),
            tuple(rows),
        ),
    ]


Section = Callable[[QuestionnaireSpec, RunFacts], list]
# The note's sections in print order; each returns its blocks (none when it has nothing to say).
ANALYSIS_KIND_TEXT = {
    "mean": (
        "Gemiddelde",
        "het gewogen gemiddelde van de geldige antwoorden, voor de hele gemeente en per groep; het interval is de "
        "schatting plus of min t maal de standaardfout, met de vrijheidsgraden van het steekproefontwerp (R: svymean, "
        "svyby en confint).",
    ),
    "crosstab": (
        "Kruistabel",
        "de gewogen verdeling van de antwoorden per categorie (kolompercentages met interval). De toets op "
        "onafhankelijkheid is de Rao-Scott F-toets van de tweede orde: de Pearson-toetsgrootheid van de gewogen "
        "tabel, gecorrigeerd voor het designeffect van de weging, getoetst tegen een F-verdeling met niet-gehele "
        "vrijheidsgraden in teller en noemer (R: svychisq met de standaardinstelling statistic = \u2018F\u2019).",
    ),
    "logit": (
        "Logistische regressie",
        "de samenhang van de kans op een antwoord met achtergrondkenmerken, elk kenmerk als categorieën tegenover een "
        "referentiecategorie, als odds ratio (e-macht van de coëfficiënt). De coëfficiënten zijn gewogen geschat "
        "(quasibinomiaal model), de standaardfouten designgebaseerd (sandwich-schatter, rekening houdend met de "
        "kalibratie); p-waarden en intervallen gebruiken de t-verdeling met de residuele vrijheidsgraden van het model "
        "(vrijheidsgraden van het ontwerp plus één min het aantal coëfficiënten), zoals svyglm met family = "
        "quasibinomial() in R.",
    ),
    "wijk_vs_rest": (
        "Wijk tegenover de rest",
        "het verschil tussen een wijk en de rest van de gemeente (de wijk zelf niet meegeteld), met een t-toets op het "
        "verschil van de twee domeinen in hetzelfde ontwerp.",
    ),
    "trend": (
        "Trend",
        "de lineaire trend: de helling (kleinste kwadraten) van de uitkomsten per meting tegen het jaar, als lineair "
        "contrast van de schattingen per meting (R: svycontrast). De metingen zijn gestapeld met de respondent als "
        "cluster, omdat panelleden aan meer metingen meedoen, en gewogen naar de bevolking van elke meting.",
    ),
}
ADJUSTMENT_METHOD_TEXT = {
    "holm": "Holm (de kans op minstens één onterecht significant verschil is ten hoogste het toetsniveau)",
    "BH": "Benjamini-Hochberg (het verwachte aandeel onterecht significante verschillen is ten hoogste het toetsniveau)",
}
ANALYSIS_TABLE_TEXT = {
    "means": "Gemiddelden",
    "crosstabs": "Kruistabellen (cellen)",
    "crosstab_tests": "Kruistabellen (toetsen)",
    "odds_ratios": "Odds ratios",
    "area_vs_rest": "Wijk tegenover rest",
    "trends": "Trends",
}


def _analyses(spec: QuestionnaireSpec, facts: RunFacts) -> list:
    """The section Verdieping of the report: what each kind of analysis in the spec estimates and how, the
    multiple-comparison adjustment the spec sets, the withholding rule and what it withheld in this run."""
    if not spec.analyses:
        return []
    kinds = list(dict.fromkeys(a.kind for a in spec.analyses))
    blocks: list = [
        Heading(
            "Verdieping: gemiddelden, kruistabellen, regressie, vergelijkingen en trends", anchor="verdieping-methode"
        ),
        Paragraph(
            "De sectie Verdieping van het jaarverslag bevat analyses naast de indicatoren. Alleen geldige antwoorden "
            "tellen mee (‘weet niet’, ‘geen antwoord’ en ‘niet gevraagd’ niet). Elke "
            "analyse gebruikt dezelfde gewogen gegevens en hetzelfde steekproefontwerp als de indicatoren, zodat "
            "standaardfouten en toetsen rekening houden met de weging en de kalibratie; de uitkomsten zijn "
            f"gecontroleerd tegen het R-pakket survey {R_SURVEY_VERSION}."
        ),
        Bullets(tuple(f"{a.title} ({ANALYSIS_KIND_TEXT[a.kind][0].lower()})." for a in spec.analyses)),
        Bullets(tuple(f"{ANALYSIS_KIND_TEXT[k][0]}: {ANALYSIS_KIND_TEXT[k][1]}" for k in kinds)),
    ]
    comparisons = [a for a in spec.analyses if a.kind == "wijk_vs_rest"]
    versus = facts.analyses.get("area_vs_rest")
    for analysis in comparisons:
        rows = versus[versus["analysis_id"] == analysis.id] if versus is not None else pd.DataFrame()
        tests = f" ({_join(sorted({_n(n) for n in rows['n_tests']}))} vergelijkingen per meting)" if len(rows) else ""
        blocks.append(
            Paragraph(
                f"Bij ‘{analysis.title}’ worden veel wijken tegelijk getoetst; de p-waarden zijn daarom "
                f"gecorrigeerd volgens {ADJUSTMENT_METHOD_TEXT[analysis.adjustment]}{tests}. Het interval van het "
                "verschil is niet gecorrigeerd."
            )
        )
    rule = facts.rule
    blocks.append(
        Paragraph(
            "Ook hier worden kleine groepen niet gepubliceerd. Percentages (cellen van een kruistabel, het percentage "
            "van een wijk) volgen dezelfde regel als de indicatoren; een gemiddelde, een categorie van een odds ratio "
            f"en een trend worden niet gepubliceerd bij minder dan {rule.min_n} respondenten (in de groep, in de "
            "categorie, in elke meting) of als er geen schatting of interval te berekenen is. Een wijk wordt alleen "
            "met de rest vergeleken als het eigen cijfer van de wijk gepubliceerd is, en een toets of model dat de "
            "gegevens niet dragen wordt niet getoond. In de tabellen staat dan “-” met de reden."
        )
    )
    rows = [
        (ANALYSIS_TABLE_TEXT[name], _n(len(table)), _n(table["suppressed"].sum()))
        for name, table in facts.analyses.items()
        if len(table)
    ]
    if rows:
        blocks.append(
            Table(
                ("Tabel", "Uitkomsten", "Niet gepubliceerd"),
                tuple(rows),
                caption="Uitkomsten van de analyses in deze run en hoeveel daarvan niet gepubliceerd zijn.",
                numeric=(False, True, True),
            )
        )
    return blocks


SECTIONS: tuple[Section, ...] = (
    _introduction,
    _design,
    _response,
    _weighting,
    _weighting_limits,
    _intervals,
    _suppression,
    _bases,
    _agree_scale,
    _small_area,
    _registrations,
    _analyses,
    _software,
    _files,
)


def build_method_note(spec: QuestionnaireSpec, facts: RunFacts) -> Document:
    """The whole onderzoeksverantwoording as a document."""
    blocks = [block for section in SECTIONS for block in section(spec, facts)]
    return Document(
        f"Onderzoeksverantwoording {spec.title}",
        tuple(blocks),
        subtitle=f"Metingen {_join([str(w) for w in _waves(facts)])}",
    )
