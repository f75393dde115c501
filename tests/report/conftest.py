"""Fixtures for the report tests: the real spec and params, and estimate-stage outputs built to contracts.md."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import report_fixtures as rf
import yaml

from survey_pipeline.artifacts import OutputStore
from survey_pipeline.settings import Params, ReportSettings, SuppressionRule
from survey_pipeline.spec import QuestionnaireSpec, load_spec, parse_spec
from survey_pipeline.stages.report import registration_rows, stage, tables


@pytest.fixture(scope="session")
def spec() -> QuestionnaireSpec:
    return load_spec(rf.ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="session")
def params() -> Params:
    return rf.load_params()


@pytest.fixture(scope="session")
def report_params(params) -> ReportSettings:
    return params.report


@pytest.fixture(scope="session")
def rule(params) -> SuppressionRule:
    return rf.rule_of(params)


@pytest.fixture(scope="session")
def raw_frames(spec, params) -> dict:
    indicators = rf.indicator_frame(spec, params)
    return {
        "indicators": indicators,
        "changes": rf.change_frame(spec, indicators),
        "distributions": rf.distribution_frame(spec, params),
    }


@pytest.fixture(scope="session")
def published(spec, params, raw_frames) -> dict:
    """The three tables as the report stage publishes them (fresh copies are the caller's job)."""
    breakdowns = list(params.estimate.breakdowns)
    return {
        "indicators": tables.publish_indicators(raw_frames["indicators"], spec, breakdowns),
        "changes": tables.publish_changes(raw_frames["changes"], spec, breakdowns),
        "distributions": tables.publish_distributions(raw_frames["distributions"], spec, breakdowns),
    }


@pytest.fixture(scope="session")
def default_spec() -> QuestionnaireSpec:
    """The demo spec without its `report_layout`: the default table (a section per kind, base footnotes)."""
    raw = yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    del raw["report_layout"]
    return parse_spec(raw)


@pytest.fixture(scope="session")
def report_run(tmp_path_factory, spec, params):
    """One whole report-stage run on contract fixtures, committed like the CLI does.

    One whole-municipality estimate (wmo_quick 2021) is suppressed so the "-"
    with its note is exercised.
    """
    root = tmp_path_factory.mktemp("report_run")
    outputs = root / "outputs"
    indicators = rf.suppress_total(rf.indicator_frame(spec, params), "wmo_quick", 2021, "min_n_eff")
    frames = {
        "indicators": indicators,
        "changes": rf.change_frame(spec, indicators),
        "distributions": rf.distribution_frame(spec, params),
    }
    rf.write_stage_outputs(outputs, spec, params, frames)
    store = OutputStore(outputs)
    summary = stage.run(store, spec, params, rf.ROOT)
    store.commit()
    return SimpleNamespace(root=root, outputs=outputs, report=outputs / "report", summary=summary, frames=frames)


@pytest.fixture(scope="session")
def annual(report_run, spec, params) -> tables.AnnualTable:
    """The annual-report table of `report_run`, as the stage built it (the structure every renderer prints)."""
    indicators = tables.publish_indicators(report_run.frames["indicators"], spec, list(params.estimate.breakdowns))
    columns = tables.annual_columns(params.report)
    registrations = registration_rows.annual_rows(rf.registration_frame(spec), spec, columns, params.report.decimals)
    return tables.build_annual_table(
        indicators, spec, params.report, tables.measured_waves(spec, spec.waves), registrations
    )
