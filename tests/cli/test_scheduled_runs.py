"""One record of what is up to date for `survey-pipeline run` (`make run`) and `dvc repro`:
dvc.lock. With real DVC in a git copy of the project (on a small generated panel):
an unchanged project re-runs nothing, a changed parameter re-runs only the stages that
read its section, and after a run DVC has nothing left to do."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from survey_pipeline import cli, dvc_record
from survey_pipeline.demo import write_demo
from survey_pipeline.spec import load_spec
from survey_pipeline.stage_graph import STAGES

ROOT = Path(__file__).resolve().parents[2]
ALL = tuple(stage.name for stage in STAGES)
STAGE_DONE = re.compile(r"\[\d+/\d+\] (\w+) done in")
pytestmark = pytest.mark.slow


def _git_copy(target: Path) -> None:
    """The project's files (code included: dvc.yaml tracks it; not yet committed ones too) in a new git repository."""
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


def _set_params(project: Path, **sections: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for section, values in sections.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def _dvc_status(project: Path) -> dict:
    done = subprocess.run(
        [*dvc_record.DVC, "status", "--json"], cwd=project, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git + DVC copy of the project on a 400-per-wave panel, GX off and few bootstrap draws (speed)."""
    project = tmp_path_factory.mktemp("scheduled")
    _git_copy(project)
    spec = load_spec(project / "questionnaires" / "wij_monitor.yaml")
    shutil.rmtree(project / "data" / "raw")
    write_demo(spec, project / "data" / "raw", project / "data" / "population", n_per_wave=400, seed=7)
    _set_params(
        project,
        validate={"gx_level": "off"},
        weight={"trim_lower": None, "trim_upper": None},  # 400 respondents over 30 wijken: sparse cells
    )
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    _set_params(project, estimate={"small_area": {**params["estimate"]["small_area"], "bootstrap": 10}})
    return project


def _run(project: Path, capsys, *options: str) -> tuple[str, ...]:
    """`survey-pipeline run` in the project; the stages it ran, in order."""
    return tuple(STAGE_DONE.findall(_run_log(project, capsys, *options)))


def _run_log(project: Path, capsys, *options: str) -> str:
    capsys.readouterr()
    assert cli.main(["--project-dir", str(project), "run", *options]) == 0
    return capsys.readouterr().err


def test_run_and_dvc_share_one_record(project, capsys):
    assert _run(project, capsys) == ALL
    assert _dvc_status(project) == {}, "after a run, `dvc repro` has nothing to do"
    manifest = json.loads((project / "outputs" / "manifest.json").read_text(encoding="utf-8"))

    log = _run_log(project, capsys)
    assert STAGE_DONE.findall(log) == [] and "nothing to run" in log
    assert json.loads((project / "outputs" / "manifest.json").read_text(encoding="utf-8")) == manifest

    _set_params(project, report={"decimals": 1})
    assert _run(project, capsys) == ("report",)

    _set_params(project, estimate={"level": 0.9})
    assert _run(project, capsys) == ("estimate", "report")

    # an output edited or removed by hand re-runs its stage (and what reads it)
    (project / "outputs" / "report" / "tabellen.xlsx").unlink()
    assert _run(project, capsys) == ("report",)

    # a stage that `dvc repro` ran is recorded for `run` too
    _set_params(project, report={"decimals": 2})
    venv = Path(sys.executable).parent
    subprocess.run(
        [*dvc_record.DVC, "repro", "--quiet"],
        cwd=project,
        env={**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=True,
        capture_output=True,
    )
    assert _run(project, capsys) == ()


def test_every_stage_runs_where_dvc_lock_does_not_describe_the_outputs(project, tmp_path):
    params, outputs = project / "params.yaml", project / "outputs"
    assert dvc_record.why_not_used(project, params, outputs) is None
    assert dvc_record.why_not_used(project, tmp_path / "other.yaml", outputs) == (
        "--params is not the project's params.yaml, which dvc.lock records"
    )
    assert dvc_record.why_not_used(project, params, tmp_path / "outputs") == (
        "--outputs is not the project's outputs folder, which dvc.lock records"
    )
    assert dvc_record.why_not_used(tmp_path, tmp_path / "params.yaml", tmp_path / "outputs") == "not a DVC checkout"
    assert cli._stages_to_run("run", "--force", None) == (ALL, False)
    # a stage verb runs its stage; under `dvc repro`, DVC records it
    assert cli._stages_to_run("weight", "a single stage", None) == (("weight",), False)


def test_dvc_failing_means_every_stage_runs(tmp_path):
    """Where DVC cannot answer (here: no git repository), `changed_stages` says so instead of "nothing changed"."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    assert dvc_record.why_not_used(tmp_path, tmp_path / "params.yaml", tmp_path / "outputs") == (
        "not in a git repository, which DVC needs"
    )
    with dvc_record.status_in_background(tmp_path) as status:
        assert status is not None and status.changed_stages() is None


def test_downstream_of_a_changed_stage_runs_too():
    assert dvc_record.with_downstream({"report"}) == ("report",)
    assert dvc_record.with_downstream({"weight"}) == ("weight", "estimate", "report")
    assert dvc_record.with_downstream({"ingest"}) == ALL
    assert dvc_record.with_downstream(set()) == ()
