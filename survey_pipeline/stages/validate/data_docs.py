"""The validation page for the data manager: `outputs/validate/data_docs/index.html`.

One self-contained HTML file in Dutch (inline style, no scripts, no external
assets, so it opens offline), built from what the stage wrote: rows per wave,
quarantined rows per rule and per rule and variable (from the quarantine
reasons), and, unless `validate.gx_level` is off, the great-expectations
checkpoint per expectation suite (`gx_result.json`: success and counts per
expectation). Aggregates only: no respondent ids or answers. Its bytes depend on
those inputs alone (no run time, no random ids), so identical runs write
identical pages and DVC can track it; the run's time is in the manifest.

Great Expectations' own Data Docs (`gx_level: full`) are written next to it in
`gx_data_docs/`; they load their style and scripts from the internet and carry
GX's run time, so they are for online use and DVC does not track them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from itertools import groupby
from pathlib import Path
from typing import Any

import pandas as pd

from survey_pipeline.spec import QuestionnaireSpec

FOLDER = "data_docs"
PAGE = "index.html"
GX_FOLDER = "gx_data_docs"
"""Great Expectations' own Data Docs (gx_level full), next to `FOLDER`."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.fout td { background: #fde2e2; }
code { font-size: 0.9em; }
"""

NUMBER_CELL = ' class="n"'
GX_NOT_RUN = {
    "off": "Great Expectations is niet uitgevoerd (validate.gx_level: off); alleen de regels hierboven zijn getoetst.",
    "quarantine": (
        "Great Expectations is niet uitgevoerd: de run is gestopt omdat het aandeel rijen in quarantaine boven "
        "validate.max_quarantine_share ligt."
    ),
}


def write_page(
    folder: Path,
    spec: QuestionnaireSpec,
    metrics: Mapping[str, Any],
    reasons: pd.DataFrame,
    quarantine: pd.DataFrame,
    rule_text: Mapping[str, str],
    gx: Mapping[str, Any] | None,
    gx_not_run: str = "off",
) -> Path:
    """Write `folder/data_docs/index.html`; `gx` is the checkpoint summary, or None with the reason
    in `gx_not_run` (a key of `GX_NOT_RUN`). Returns the page's path."""
    path = folder / FOLDER / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_page(
        spec, metrics, reasons, quarantine, rule_text, gx, gx_not_run, gx_docs=(folder / GX_FOLDER).is_dir()
    )
    path.write_bytes(html.encode("utf-8"))
    return path


def render_page(
    spec: QuestionnaireSpec,
    metrics: Mapping[str, Any],
    reasons: pd.DataFrame,
    quarantine: pd.DataFrame,
    rule_text: Mapping[str, str],
    gx: Mapping[str, Any] | None,
    gx_not_run: str = "off",
    *,
    gx_docs: bool = False,
) -> str:
    """The page as text (see the module docstring)."""
    waves = sorted(metrics["waves"], key=int)
    counted = rule_counts(reasons, quarantine)
    title = f"{spec.title}: validatie van de antwoorden"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="nl">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        "<p>Elke ingelezen rij is geldig of staat in quarantaine met alle regels die hij overtreedt. Deze pagina "
        "toont alleen aantallen; de rijen zelf staan in <code>quarantine.xlsx</code> (met respondentgegevens, "
        "niet verspreiden).</p>",
        "<h2>Rijen per meting</h2>",
        _table(
            ("Meting", "Ingelezen", "Geldig", "In quarantaine", "Aandeel in quarantaine"),
            [
                (label, *(_count(counts[k]) for k in ("rows_in", "rows_valid", "rows_quarantined")), _share(counts))
                for label, counts in [*((w, metrics["waves"][w]) for w in waves), ("Totaal", metrics["total"])]
            ],
            numeric=(False, True, True, True, True),
        ),
        "<h2>Quarantaine per regel</h2>",
        "<p>Aantal rijen in quarantaine dat de regel overtreedt (een rij kan meer regels overtreden).</p>",
        _count_table(("Regel", "Omschrijving"), counted["per_rule"], waves, rule_text, spec),
        "<h2>Quarantaine per regel en variabele</h2>",
        _count_table(("Regel", "Variabele", "Omschrijving variabele"), counted["per_variable"], waves, rule_text, spec),
        "<h2>Great Expectations</h2>",
        *(_gx_sections(gx, spec) if gx is not None else [f"<p>{escape(GX_NOT_RUN[gx_not_run])}</p>"]),
    ]
    if gx_docs:
        parts.append(
            f'<p>De eigen Data Docs van Great Expectations staan in <a href="../{GX_FOLDER}/index.html">'
            f"{GX_FOLDER}/</a>; die pagina haalt haar opmaak van internet en is zonder verbinding leeg.</p>"
        )
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def rule_counts(reasons: pd.DataFrame, quarantine: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Quarantined rows per rule (`per_rule`: rule, wave, rows) and per rule and variable
    (`per_variable`: rule, column, wave, rows), from the quarantine reasons; a row counts once per rule."""
    waves = quarantine.drop_duplicates(["source_file", "source_row"]).set_index(["source_file", "source_row"])
    keyed = reasons.assign(
        wave=waves["file_wave"].reindex(pd.MultiIndex.from_frame(reasons[["source_file", "source_row"]])).to_numpy()
    )
    keyed["wave"] = keyed["wave"].astype("int64").astype(str)
    per_rule = (
        keyed.drop_duplicates(["source_file", "source_row", "rule"])
        .groupby(["rule", "wave"], sort=True)
        .size()
        .rename("rows")
        .reset_index()
    )
    per_variable = keyed.groupby(["rule", "column", "wave"], sort=True).size().rename("rows").reset_index()
    return {"per_rule": per_rule, "per_variable": per_variable}


def _count_table(
    headers: Sequence[str],
    counts: pd.DataFrame,
    waves: Sequence[str],
    rule_text: Mapping[str, str],
    spec: QuestionnaireSpec,
) -> str:
    """One row per rule (or rule and variable) in the order of `rule_text`, a column per wave, and the total."""
    if counts.empty:
        return "<p>Geen rijen in quarantaine.</p>"
    keys = [c for c in ("rule", "column") if c in counts]
    order = {rule: i for i, rule in enumerate(rule_text)}
    table = counts.pivot_table(index=keys, columns="wave", values="rows", aggfunc="sum", fill_value=0)
    rows, attributes = [], []
    for key in sorted(table.index, key=lambda k: (order.get(_first(k), len(order)), k)):
        line = table.loc[key]
        rule = _first(key)
        described = (
            (rule, rule_text.get(rule, "")) if keys == ["rule"] else (rule, key[1], variable_label(spec, key[1]))
        )
        rows.append((*described, *(_count(int(line.get(w, 0))) for w in waves), _count(int(line.sum()))))
        attributes.append(
            f' data-rule="{escape(rule)}"' + (f' data-variable="{escape(key[1])}"' if keys != ["rule"] else "")
        )
    numeric = (False,) * len(headers) + (True,) * (len(waves) + 1)
    return _table((*headers, *(f"Meting {w}" for w in waves), "Totaal"), rows, numeric=numeric, attributes=attributes)


def _gx_sections(gx: Mapping[str, Any], spec: QuestionnaireSpec) -> list[str]:
    """Per expectation suite: how many expectations passed, and each expectation with its counts."""
    stats = gx["statistics"]
    parts = [
        f"<p>{stats['successful_expectations']} van {stats['evaluated_expectations']} verwachtingen geslaagd"
        f"{'' if gx['success'] else '; de controle is niet geslaagd'}.</p>"
    ]
    expectations = sorted(gx["expectations"], key=lambda e: e["suite"])  # stable: suite order kept within
    for suite, items in groupby(expectations, key=lambda e: e["suite"]):
        listed = list(items)
        passed = sum(e["success"] for e in listed)
        parts += [
            f"<h3>Expectation suite \u201c{escape(suite)}\u201d</h3>",
            f"<p>{passed} van {len(listed)} verwachtingen geslaagd.</p>",
            _table(
                (
                    "Regel",
                    "Variabele",
                    "Omschrijving variabele",
                    "Verwachting",
                    "Voor de rijen",
                    "Geslaagd",
                    "Rijen getoetst",
                    "Rijen afwijkend",
                    "Melding",
                ),
                [
                    (
                        e["rule"] or "",
                        e["variable"] or "",
                        variable_label(spec, e["variable"] or ""),
                        e["expectation"],
                        e["row_condition"] or "alle",
                        "ja" if e["success"] else "nee",
                        _count(e["element_count"]),
                        _count(e["unexpected_count"]),
                        e["exception_message"] or "",
                    )
                    for e in listed
                ],
                numeric=(False,) * 6 + (True, True, False),
                attributes=["" if e["success"] else ' class="fout"' for e in listed],
            ),
        ]
    return parts


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[bool],
    attributes: Sequence[str] = (),
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f"<td{NUMBER_CELL if is_number else ''}>{escape(str(cell))}</td>" for cell, is_number in zip(row, numeric)
        )
        body.append(f"<tr{attributes[index] if attributes else ''}>{cells}</tr>")
    return "<table>\n<tr>" + head + "</tr>\n" + "\n".join(body) + "\n</table>"


def _first(key: Any) -> str:
    return key[0] if isinstance(key, tuple) else key


def variable_label(spec: QuestionnaireSpec, column: str) -> str:
    """The Dutch label of a column of the responses ("" for a column the spec does not label)."""
    if column in spec.variables:
        return spec.variables[column].label
    if column in spec.background:
        return spec.background[column].label
    return {spec.respondent_id: "Respondentnummer", spec.wave_variable: "Meting (jaar)"}.get(column, "")


def _count(value: int | None) -> str:
    """A count as the report prints it, with Dutch thousands separators: 2.952."""
    return "" if value is None else f"{int(value):,}".replace(",", ".")


def _share(counts: Mapping[str, Any]) -> str:
    """A share as a Dutch percentage with one decimal: 0,8%."""
    return f"{100 * counts['quarantined_share']:.1f}%".replace(".", ",")
