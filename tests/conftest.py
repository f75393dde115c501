"""Session-wide: name the project files edited while the suite runs (`source_guard`)."""

from __future__ import annotations

from pathlib import Path

from source_guard import SourceGuard

ROOT = Path(__file__).resolve().parents[1]
# What a process started by a test reads from the tree (the package, the spec, the params) and what
# tests/cli/test_scheduled_runs.py copies of it for DVC (its pipeline and record; `make run` rewrites dvc.lock).
WATCHED = ("survey_pipeline", "questionnaires", "params.yaml", "dvc.yaml", "dvc.lock")


def pytest_configure(config) -> None:
    config.pluginmanager.register(SourceGuard(ROOT, WATCHED), "source-guard")
