"""Report stage: the annual-report tables (HTML, Markdown, Word), the Dutch workbook, figures and method note.

A thin shell: read the estimate, weight and validate outputs; check; write `outputs/report/`.

Order matters: every check runs before anything is staged, so a failed check
(InputError, exit 2) leaves no partial report and the last good one in place. The figures
and the workbook are made from the checked tables in background processes while the last
check (the GX checkpoint) runs, in a scratch folder outside the report and the figure cache.

Writes: indicators/changes/distributions as Parquet (contracts `Report*`) and as
formula-safe CSV, standard and for Dutch Excel (`<table>.csv`,
`<table>_excel_nl.csv`; see `csv_safety.py`), `tabellen.xlsx` (Dutch, with wijk x jaar pivots),
`jaarverslag.html` / `.md` / `.docx` (for the editors who assemble the report in Word),
`onderzoeksverantwoording.html` / `.md`, `figures/*.png|svg` and `checks.json`; the jaarverslag ends
with the section "Verdieping" of the spec's analyses (`verdieping.py`, forest plots of odds ratios), whose
tables go to `analyses/<table>.{parquet,csv}` (contracts `ReportAnalysis*`, rows withheld as the estimate
stage withheld them) and to Dutch sheets of the workbook; with small-area
estimates (`estimate.small_area`) also `wijkcijfers.{parquet,csv}` (contract `ReportSmallArea`) and
its sheet: per indicator, wave and area the published figure, direct or "modelschatting".
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from survey_pipeline import contracts, gx_process
from survey_pipeline.artifacts import (
    STAGING_PREFIX,
    OutputStore,
    check_spec_record,
    read_json,
    read_table,
    write_json,
    write_table,
)
from survey_pipeline.errors import InputError
from survey_pipeline.settings import Params, ReportSettings, recorded_software, upstream_settings, write_record
from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.stages.report import checks, figures, registration_rows, tables, verdieping
from survey_pipeline.stages.report.agree_scale import agree_notes
from survey_pipeline.stages.report.annual_report import build_report_document
from survey_pipeline.stages.report.csv_safety import write_csv_files
from survey_pipeline.stages.report.document import METHOD_NOTE_PAGE, REPORT_PAGE
from survey_pipeline.stages.report.excel import workbook_in_background
from survey_pipeline.stages.report.html import render_html
from survey_pipeline.stages.report.markdown import render_markdown
from survey_pipeline.stages.report.method_note import RunFacts, build_method_note
from survey_pipeline.stages.report.sheets import (
    SHARE_HEADERS,
    area_pivots,
    dutch_changes,
    dutch_distributions,
    dutch_indicators,
    dutch_small_area,
)
from survey_pipeline.stages.report.word import render_docx

log = logging.getLogger(__name__)

TABLES = ("indicators", "changes", "distributions")
# Under outputs/, outside every stage folder: survives the swap of outputs/report/ (report/figures.py).
FIGURE_CACHE = Path(".cache") / "figures"
# One drawing process beside the main one, the workbook's and the GX worker (2 cores): a second
# costs its own fork and warm-up, and does not shorten the report while all four are busy.
FIGURE_WORKERS = 1
WORKBOOK = "tabellen.xlsx"
SHEETS = {"indicators": "Indicatoren", "changes": "Veranderingen", "distributions": "Verdelingen"}
DUTCH = {"indicators": dutch_indicators, "changes": dutch_changes, "distributions": dutch_distributions}
SMALL_AREA_TABLE, SMALL_AREA_SHEET = "wijkcijfers", "Wijkcijfers"  # direct or model-based area figures
REGISTRATION_SHEET = "Registraties"  # registration figures (kengetallen not from the survey)


def run_waves(validate_metrics: Mapping[str, Any]) -> list[int]:
    """The waves this run has valid data for (from outputs/validate/metrics.json, `ValidateMetrics`)."""
    return sorted(int(w) for w, m in validate_metrics["waves"].items() if m["rows_valid"] > 0)


def check_waves(report: ReportSettings, spec: QuestionnaireSpec, waves: Sequence[int], *, metrics_file: str) -> None:
    """Every "Behaald" column is a wave the spec knows (`ReportSettings.check_against`) and, when
    measured, one this run has valid rows for (per the validate stage's `metrics_file`)."""
    report.check_against(spec)
    for wave in report.achieved_waves:
        if wave not in spec.not_measured and wave not in waves:
            raise InputError(
                f"the window {report.window_text} shows wave {wave}, but this run has no valid rows for it",
                file=metrics_file,
                rule="missing_wave",
            )


def _figure_plans(
    indicators,
    spec: QuestionnaireSpec,
    report: ReportSettings,
    breakdowns: list[str],
    measured: Mapping[str, list[int]],
    shown_waves: list[int],
    small_area: Any = None,
) -> list[figures.FigurePlan]:
    """The chain, a trend per measured indicator and, with the area breakdown (spec `area_variable`, e.g.
    wijk), the areas of its latest shown wave (with the published model-based figures of `small_area`)."""
    steps = tables.chain_steps(spec)
    plans = [figures.chain_plan(indicators, spec, steps, shown_waves)] if steps else []
    plans += [
        figures.trend_plan(indicators, spec, ind, shown_waves, report.target_years)
        for ind in tables.report_order(spec)
        if measured[ind.id]
    ]
    if spec.area_variable in breakdowns:
        for ind in tables.report_order(spec):
            latest = [w for w in measured[ind.id] if w in shown_waves]
            plan = figures.area_plan(indicators, spec, ind, latest[-1], small_area) if latest else None
            if plan is not None:
                plans.append(plan)
    return plans


def run(store: OutputStore, spec: QuestionnaireSpec, params: Params, base_dir: Path) -> dict:
    """Build, check and write the report; returns counts for the run manifest.

    The estimate and weight settings come from the records of those stages' outputs (refused when
    params.yaml now says otherwise), so the method note describes what the numbers were made with.
    """
    report = params.report
    inputs = {stage: store.reading(stage) for stage in ("validate", "weight", "estimate")}
    upstream = upstream_settings(inputs, params)
    software = recorded_software(inputs)
    estimate = upstream["estimate"]
    rule, breakdowns = estimate.suppression, list(estimate.breakdowns)

    estimate_dir, weight_dir = store.reading("estimate"), store.reading("weight")
    check_spec_record(estimate_dir, spec)
    raw = {name: read_table(estimate_dir / f"{name}.parquet", contracts.ESTIMATE_TABLES[name]) for name in TABLES}
    small_area = read_table(estimate_dir / "sae.parquet", contracts.EstimateSae)  # no rows when switched off
    registrations = read_table(estimate_dir / "registrations.parquet", contracts.EstimateRegistrations)
    analyses = verdieping.read_analyses(estimate_dir)
    validate_metrics = read_json(store.reading("validate") / "metrics.json", contracts.ValidateMetrics)
    metrics_file = store.root / "validate" / "metrics.json"  # named in messages: where the run leaves it
    facts_weight = {
        "weight_metrics": read_json(weight_dir / "metrics.json", contracts.WeightMetrics),
        "weight_diagnostics": read_table(weight_dir / "diagnostics.parquet", contracts.WeightDiagnostics),
        "weight_margins": read_table(weight_dir / "margins.parquet", contracts.WeightMargins),
    }
    waves = run_waves(validate_metrics)
    check_waves(report, spec, waves, metrics_file=str(metrics_file))

    published = {
        "indicators": tables.publish_indicators(raw["indicators"], spec, breakdowns),
        "changes": tables.publish_changes(raw["changes"], spec, breakdowns),
        "distributions": tables.publish_distributions(raw["distributions"], spec, breakdowns),
    }
    gx_level = upstream["validate"].gx_level
    checked = checks.check_tables(published, spec, store.root / "report")
    indicators = checked["indicators"]
    analyses = checks.check_analyses(analyses, spec, store.root / "report" / contracts.ANALYSES_FOLDER)

    measured = tables.measured_waves(spec, waves)
    shown_waves = [w for w in report.achieved_waves if w in waves] or waves
    scale_notes = agree_notes(indicators, checked["distributions"], spec, shown_waves, measured, report.decimals)
    annual = dataclasses.replace(
        tables.build_annual_table(
            indicators,
            spec,
            report,
            measured,
            registration_rows.annual_rows(registrations, spec, tables.annual_columns(report), report.decimals),
        ),
        scale_notes=tuple(note.text for note in scale_notes if note.shares is not None),
    )
    targets = tables.target_table(indicators, checked["changes"], spec, report)
    area_table = tables.publish_small_area(small_area, spec) if len(small_area) else None
    plans = _figure_plans(indicators, spec, report, breakdowns, measured, shown_waves, small_area)
    plans += verdieping.forest_plans(analyses, spec, shown_waves, estimate.level)

    # The figures and the workbook are made in the background from the tables as the contracts passed them,
    # while the checkpoint runs (in the GX worker) and the pages are built; nothing is staged before it passes.
    # Until then they go to a scratch folder (a `.staging-` name: a killed run's is removed by the next).
    with (
        tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=store.root) as scratch,
        figures.FigureFiles(
            report.figure_formats, store.root / FIGURE_CACHE, Path(scratch) / figures.FIGURES, FIGURE_WORKERS
        ) as figure_files,
        workbook_in_background(
            Path(scratch) / WORKBOOK,
            title=spec.title,
            annual=annual,
            sheets={
                "Streefwaarden": targets.drop(columns=["indicator_id"]),
                **{SHEETS[name]: DUTCH[name](checked[name], spec) for name in TABLES},
                **({SMALL_AREA_SHEET: dutch_small_area(area_table, spec)} if area_table is not None else {}),
                **({REGISTRATION_SHEET: registration_rows.workbook_sheet(registrations)} if spec.registrations else {}),
                **verdieping.dutch_analysis_sheets(analyses, spec),
            },
            share_columns={
                REGISTRATION_SHEET: ("Percentage",),
                "Streefwaarden": tables.TARGET_SHARES,
                **{sheet: SHARE_HEADERS for sheet in (*SHEETS.values(), SMALL_AREA_SHEET)},
                **verdieping.ANALYSIS_SHARE_HEADERS,
            },
            pivots=(
                area_pivots(indicators, spec, tables.report_order(spec)) if spec.area_variable in breakdowns else ()
            ),
        ) as workbook_sheets,
    ):
        written = figure_files.start(plans)
        checkpoint = checks.expectations_started(
            checked, spec, rule, waves, store.root / "report", gx=gx_level != "off"
        )
        level = float(indicators["level"].iloc[0])
        method_doc = build_method_note(
            spec,
            RunFacts(
                validate_metrics=validate_metrics,
                indicators=indicators,
                changes=checked["changes"],
                weight=upstream["weight"],
                estimate=estimate,
                report=report,
                small_area=small_area,
                software=software,
                agree_notes=scale_notes,
                registrations=registrations,
                analyses=analyses,
                **facts_weight,
            ),
        )
        chain = next((f for f, p in zip(written, plans) if p.kind == "chain"), None)
        trends = [f for f, p in zip(written, plans) if p.kind == "trend"]
        wijken = [f for f, p in zip(written, plans) if p.kind == "area"]
        forests = [f for f, p in zip(written, plans) if p.kind == "forest"]
        model_based = any(row.get("model") for plan in plans if plan.kind == "area" for row in plan.data["shown"])
        doc = build_report_document(
            spec,
            annual,
            targets,
            tables.change_table(checked["changes"], spec),
            chain,
            trends,
            wijken,
            shown_waves,
            level,
            model_based=model_based,
            registration_targets=registration_rows.target_rows(registrations, report.achieved_waves, report.decimals),
            verdieping=verdieping.verdieping_blocks(
                spec, analyses, forests, shown_waves, estimate.level, rule, report.decimals
            ),
        )
        pages = {
            f"{page}.{suffix}": render(document)
            for page, document in ((REPORT_PAGE, doc), (METHOD_NOTE_PAGE, method_doc))
            for suffix, render in (("html", render_html), ("md", render_markdown))
        }
        outcomes = checkpoint()
        # In `survey-pipeline run` validate's checkpoint may still have been running when this stage
        # started (survey_pipeline.gx_process): it has passed before anything is staged or the figure
        # cache, outside the staged outputs, is updated.
        gx_process.finish_deferred()

        with store.writing("report") as out:
            for name in TABLES:
                write_table(checked[name], out / f"{name}.parquet", contracts.REPORT_TABLES[name], spec)
                write_csv_files(checked[name], out, name)
            (out / contracts.ANALYSES_FOLDER).mkdir()
            for name, table in analyses.items():
                path = out / contracts.ANALYSES_FOLDER / f"{name}.parquet"
                write_table(table, path, contracts.REPORT_ANALYSIS_TABLES[name], spec)
                write_csv_files(table, out / contracts.ANALYSES_FOLDER, name)
            if area_table is not None:
                write_table(area_table, out / f"{SMALL_AREA_TABLE}.parquet", contracts.ReportSmallArea, spec)
                write_csv_files(area_table, out, SMALL_AREA_TABLE)
            for name, text in pages.items():
                (out / name).write_text(text, encoding="utf-8")
            write_json(
                {
                    "waves": waves,
                    "rule": rule.model_dump(mode="json"),
                    "ci_method": estimate.ci_method,
                    "schemas": {name: contracts.contract_name(contracts.REPORT_TABLES[name]) for name in TABLES},
                    "gx_level": gx_level,
                    "expectations": [o.as_dict() for o in outcomes],
                },
                out / "checks.json",
                contracts.ReportChecks,
            )
            write_record(out, {**upstream, "report": report}, software)
            figure_files.place(out / figures.FIGURES)
            sheets = workbook_sheets()
            os.replace(Path(scratch) / WORKBOOK, out / WORKBOOK)
            render_docx(doc, out / f"{REPORT_PAGE}.docx", images_from=out)

    summary = {
        name: {"rows": int(len(checked[name])), "suppressed": int(checked[name]["suppressed"].sum())} for name in TABLES
    }
    log.info(
        "report: %d indicator rows, %d checks passed, workbook sheets %s",
        len(indicators),
        len(outcomes),
        ", ".join(sheets),
    )
    return {
        **summary,
        "annual_table_rows": sum(not row.is_stem for s in annual.sections for row in s.rows),
        "registration_rows": int(len(registrations)),
        "footnotes": len(annual.footnotes),
        "notes": len(annual.notes),
        "figures": (chain is not None) + len(trends) + len(wijken) + len(forests),
        "area_cells_published": (
            float((area_table["source"] != tables.SMALL_AREA_SOURCE_TEXT["none"]).mean())
            if area_table is not None
            else None
        ),
        "expectations_passed": len(outcomes),
        "sheets": sheets,
    }
