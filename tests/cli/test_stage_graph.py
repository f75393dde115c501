"""The stage graph: dvc.yaml is generated from one declaration per stage, and DVC re-runs
exactly the stages whose code (by import), params section, data or upstream outputs changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from survey_pipeline import stage_graph
from survey_pipeline.settings import load_params

ROOT = Path(__file__).resolve().parents[2]


def _stage(name: str) -> stage_graph.Stage:
    return next(stage for stage in stage_graph.STAGES if stage.name == name)


def test_committed_dvc_yaml_is_the_generated_one():
    generated = stage_graph.dvc_yaml(load_params(ROOT / "params.yaml"))
    assert (ROOT / "dvc.yaml").read_text(encoding="utf-8") == generated, "run `make dvc-yaml` and commit dvc.yaml"


def test_stages_match_the_cli():
    from survey_pipeline.artifacts import STAGES
    from survey_pipeline.cli import STAGE_MODULES

    assert tuple(stage.name for stage in stage_graph.STAGES) == STAGES
    assert {stage.name: stage.module for stage in stage_graph.STAGES} == STAGE_MODULES


def test_code_dependencies_follow_imports():
    deps = {stage.name: set(stage_graph.code_dependencies(stage)) for stage in stage_graph.STAGES}
    # estimate imports population (the margins) and takes its parameter classes from settings, not from the
    # weight stage; the report imports neither stage module
    assert {"survey_pipeline/settings.py", "survey_pipeline/population.py"} <= deps["estimate"]
    assert "survey_pipeline/stages/weight/stage.py" not in deps["estimate"]
    assert not {"survey_pipeline/stages/weight/stage.py", "survey_pipeline/stages/estimate/stage.py"} & deps["report"]
    # validate imports expectations inside a function: still a dependency
    assert "survey_pipeline/stages/validate/expectations.py" in deps["validate"]
    # the package's lazy `SurveyDesign` export is not an import of the stages that never use it
    assert not any(path.startswith("survey_pipeline/core/") for path in deps["ingest"] | deps["validate"])
    assert "survey_pipeline/core/variance.py" in deps["estimate"]
    assert "survey_pipeline/stages/report/figures.py" in deps["report"]
    for name, files in deps.items():
        assert {"survey_pipeline/__init__.py", "survey_pipeline/cli.py"} <= files, name
        assert not any("figures" in path for path in files) or name == "report"


def test_data_dependencies_come_from_params():
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(
        update={"weight": params.weight.model_copy(update={"population_file": "elsewhere/margins.csv"})}
    )
    entry = stage_graph.stage_entry(_stage("estimate"), params)
    assert "elsewhere/margins.csv" in entry["deps"]
    # the contracts of every table read and written are code the stage imports
    assert "survey_pipeline/contracts.py" in entry["deps"]


def test_relative_and_from_package_imports_resolve(tmp_path):
    names = stage_graph._imported_names("survey_pipeline.stages.report.stage")
    assert "survey_pipeline.stages.report.figures" in names
    assert "survey_pipeline.artifacts" in names


@pytest.mark.slow
def test_dvc_reruns_exactly_the_stages_that_import_a_changed_module(tmp_path):
    """A real `dvc status` after editing a module in a copy of the project (outputs stubbed:
    only the dependency hashes recorded in dvc.lock matter here)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if name in ("dvc.lock",) or not (ROOT / name).is_file():
            continue
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    dvc = [sys.executable, "-m", "dvc"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    pipeline = yaml.safe_load((tmp_path / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for entry in pipeline.values():
        for out in [*entry["outs"], *(next(iter(m)) for m in entry.get("metrics", []))]:
            path = tmp_path / out
            if out.endswith((".parquet", ".json")):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(out, encoding="utf-8")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "stub").write_text(out, encoding="utf-8")
    subprocess.run([*dvc, "commit", "-f", "-q"], cwd=tmp_path, env=env, check=True, capture_output=True)

    def changed_after_editing(module: str) -> set[str]:
        path = tmp_path / module
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\n# edited\n", encoding="utf-8")
        try:
            status = subprocess.run(
                [*dvc, "status", "--json"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
            ).stdout
        finally:
            path.write_text(original, encoding="utf-8")
        return {
            stage
            for stage, changes in json.loads(status).items()
            if any("changed deps" in change for change in changes if isinstance(change, dict))
        }

    assert changed_after_editing("survey_pipeline/stages/report/figures.py") == {"report"}
    # the report takes the weight and estimate settings from their records, not from those stages' modules
    assert changed_after_editing("survey_pipeline/population.py") == {"weight", "estimate"}
    assert changed_after_editing("survey_pipeline/core/variance.py") == {"estimate"}
    assert changed_after_editing("survey_pipeline/settings.py") == {stage.name for stage in stage_graph.STAGES}
    assert changed_after_editing("survey_pipeline/stages/validate/expectations.py") == {"validate"}
    assert changed_after_editing("survey_pipeline/errors.py") == {stage.name for stage in stage_graph.STAGES}
