"""Fixtures for the report tests: the real spec and params, and estimate-stage outputs built to contracts.md."""

from __future__ import annotations

import pytest

import report_fixtures as rf
from survey_pipeline.reliability import SuppressionRule
from survey_pipeline.report.config import ReportParams
from survey_pipeline.report import tables
from survey_pipeline.spec import QuestionnaireSpec, load_spec


@pytest.fixture(scope="session")
def spec() -> QuestionnaireSpec:
    return load_spec(rf.ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="session")
def params() -> dict:
    return rf.load_params()


@pytest.fixture(scope="session")
def report_params(params) -> ReportParams:
    return ReportParams.from_params(params["report"])


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
    breakdowns = params["estimate"]["breakdowns"]
    return {
        "indicators": tables.publish_indicators(raw_frames["indicators"], spec, breakdowns),
        "changes": tables.publish_changes(raw_frames["changes"], spec, breakdowns),
        "distributions": tables.publish_distributions(raw_frames["distributions"], spec, breakdowns),
    }
