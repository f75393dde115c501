from __future__ import annotations

import pytest

from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.spec import load_spec


@pytest.fixture(scope="session")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")
