"""Report stage shell: read the estimate, weight and validate outputs; check; write `outputs/report/`.

Order matters: every check runs before anything is staged, so a failed check
(InputError, exit 2) leaves no partial report and the last good one in place.

Writes: indicators/changes/distributions as Parquet (schema `report_*`) and as
formula-safe CSV, standard and for Dutch Excel (`<table>.csv`,
`<table>_excel_nl.csv`; see `csv_safety.py`), `tabellen.xlsx`, `jaarverslag.html` / `.md`,
`onderzoeksverantwoording.html` / `.md`, `figures/*.png|svg` and `checks.json`; with small-area
estimates (`estimate.small_area`) also `wijkcijfers.{parquet,csv}` and its Excel sheet: per
indicator, wave and wijk the published figure, direct or "modelschatting".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from survey_pipeline.artifacts import OutputStore, check_spec_record, read_json, read_table, write_json, write_table
from survey_pipeline.errors import InputError
from survey_pipeline.estimate import EstimateParams
from survey_pipeline.report import checks, figures, tables
from survey_pipeline.report.annual_report import build_report_document
from survey_pipeline.report.config import ReportParams
from survey_pipeline.report.csv_safety import write_csv_files
from survey_pipeline.report.excel import SHARE_COLUMNS, write_workbook
from survey_pipeline.report.html import render_html
from survey_pipeline.report.markdown import render_markdown
from survey_pipeline.report.method_note import RunFacts, build_method_note
from survey_pipeline.spec import QuestionnaireSpec

log = logging.getLogger(__name__)

TABLES = ("indicators", "changes", "distributions")
SHEETS = {"indicators": "Indicatoren", "changes": "Veranderingen", "distributions": "Verdelingen"}
SMALL_AREA_TABLE, SMALL_AREA_SHEET = "wijkcijfers", "Wijkcijfers"  # direct or model-based wijk figures


def run_waves(validate_metrics: Mapping[str, Any]) -> list[int]:
    """The waves this run has valid data for (from outputs/validate/metrics.json)."""
    waves = validate_metrics.get("waves") if isinstance(validate_metrics, Mapping) else None
    if not isinstance(waves, Mapping):
        raise InputError("expected a 'waves' mapping", file="outputs/validate/metrics.json", rule="report_input")
    return sorted(int(w) for w, m in waves.items() if int(m.get("rows_valid", 0)) > 0)


def run(store: OutputStore, spec: QuestionnaireSpec, params: Mapping[str, Any], base_dir: Path) -> dict:
    """Build, check and write the report; returns counts for the run manifest."""
    report = ReportParams.from_params(params.get("report"))
    # The estimate stage's own parser: the report checks the rule the estimates were made with.
    estimate = EstimateParams.from_params(params.get("estimate"))
    rule, breakdowns, ci_method = estimate.suppression, list(estimate.breakdowns), estimate.ci_method

    estimate_dir, weight_dir = store.reading("estimate"), store.reading("weight")
    check_spec_record(estimate_dir, spec)
    raw = {name: read_table(estimate_dir / f"{name}.parquet", f"estimate_{name}") for name in TABLES}
    small_area = read_table(estimate_dir / "sae.parquet", "estimate_sae")  # empty when switched off
    validate_metrics = read_json(store.reading("validate") / "metrics.json")
    facts_weight = {
        "weight_metrics": read_json(weight_dir / "metrics.json"),
        "weight_diagnostics": read_table(weight_dir / "diagnostics.parquet", "weight_diagnostics"),
        "weight_margins": read_table(weight_dir / "margins.parquet", "weight_margins"),
    }
    waves = run_waves(validate_metrics)
    report.check_waves(spec, waves)

    published = {
        "indicators": tables.publish_indicators(raw["indicators"], spec, breakdowns),
        "changes": tables.publish_changes(raw["changes"], spec, breakdowns),
        "distributions": tables.publish_distributions(raw["distributions"], spec, breakdowns),
    }
    checked, outcomes = checks.validate_outputs(published, spec, rule, waves)
    indicators = checked["indicators"]

    measured = tables.measured_waves(spec, waves)
    annual = tables.build_annual_table(indicators, spec, report, measured)
    targets = tables.target_table(indicators, checked["changes"], spec, report)
    level = float(indicators["level"].iloc[0])
    change_summary = tables.change_table(checked["changes"], spec)
    shown_waves = [w for w in report.achieved_waves if w in waves] or waves
    method_doc = build_method_note(spec, RunFacts(
        validate_metrics=validate_metrics, indicators=indicators, changes=checked["changes"],
        params=params, rule=rule, small_area=small_area, **facts_weight,
    ))
    wijk_table = tables.publish_small_area(small_area, spec) if len(small_area) else None

    with store.writing("report") as out:
        for name in TABLES:
            write_table(checked[name], out / f"{name}.parquet", checks.SCHEMAS[name])
            write_csv_files(checked[name], out, name)
        if wijk_table is not None:
            write_table(wijk_table, out / f"{SMALL_AREA_TABLE}.parquet", "report_small_area")
            write_csv_files(wijk_table, out, SMALL_AREA_TABLE)

        folder, formats = out / "figures", report.figure_formats
        steps = tables.chain_steps(spec)
        chain = figures.chain_figure(indicators, spec, steps, shown_waves, folder, formats) if steps else None
        trends = [figures.trend_figure(indicators, spec, ind, shown_waves, report.target_years, folder, formats)
                  for ind in tables.report_order(spec) if measured[ind.id]]
        wijken = []
        if "wijk" in breakdowns:
            for ind in tables.report_order(spec):
                latest = [w for w in measured[ind.id] if w in shown_waves]
                if latest:
                    figure = figures.wijk_figure(indicators, spec, ind, latest[-1], folder, formats, small_area)
                    if figure is not None:
                        wijken.append(figure)
        log.info("report: %d figures", (chain is not None) + len(trends) + len(wijken))

        sheets = write_workbook(
            out / "tabellen.xlsx", title=spec.title, annual=annual,
            sheets={"Streefwaarden": targets.drop(columns=["indicator_id"]),
                    **{SHEETS[name]: checked[name] for name in TABLES},
                    **({SMALL_AREA_SHEET: wijk_table} if wijk_table is not None else {})},
            share_columns={"Streefwaarden": tables.TARGET_SHARES, **{SHEETS[name]: SHARE_COLUMNS[name] for name in TABLES},
                           SMALL_AREA_SHEET: ("estimate", "ci_lower", "ci_upper")},
        )
        doc = build_report_document(spec, annual, targets, change_summary, chain, trends, wijken, shown_waves, level)
        (out / "jaarverslag.html").write_text(render_html(doc), encoding="utf-8")
        (out / "jaarverslag.md").write_text(render_markdown(doc), encoding="utf-8")
        (out / "onderzoeksverantwoording.html").write_text(render_html(method_doc), encoding="utf-8")
        (out / "onderzoeksverantwoording.md").write_text(render_markdown(method_doc), encoding="utf-8")
        write_json({
            "waves": waves,
            "rule": {k: getattr(rule, k) for k in rule.__dataclass_fields__},
            "ci_method": ci_method,
            "schemas": {name: checks.SCHEMAS[name] for name in TABLES},
            "expectations": [o.as_dict() for o in outcomes],
        }, out / "checks.json")

    summary = {
        name: {"rows": int(len(checked[name])), "suppressed": int(checked[name]["suppressed"].sum())} for name in TABLES
    }
    log.info("report: %d indicator rows, %d checks passed, workbook sheets %s",
             len(indicators), len(outcomes), ", ".join(sheets))
    return {
        **summary,
        "annual_table_rows": sum(len(s.rows) for s in annual.sections),
        "footnotes": len(annual.footnotes),
        "notes": len(annual.notes),
        "figures": (chain is not None) + len(trends) + len(wijken),
        "wijk_cells_published": (float((wijk_table["source"] != tables.SMALL_AREA_SOURCE_TEXT["none"]).mean())
                                 if wijk_table is not None else None),
        "expectations_passed": len(outcomes),
        "sheets": sheets,
    }
