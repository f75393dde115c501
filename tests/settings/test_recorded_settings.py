"""Results carry their settings: a stage refuses upstream outputs made with other parameters.

Reproduces issue 11: re-running only `report` after changing `estimate.ci_method` or
`estimate.suppression.min_n` in params.yaml produced a method note describing an
interval method and a minimum base the published numbers were not made with.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path("questionnaires") / "wij_monitor.yaml"
pytestmark = pytest.mark.slow


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A copy of the demo project (400 respondents per wave) after `survey-pipeline run`."""
    project = tmp_path_factory.mktemp("demo")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / SPEC, project / SPEC)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # 400 respondents over 30 wijken leave cells too sparse for the demo's trimming bounds.
    params["weight"].update(trim_lower=None, trim_upper=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    write_demo(
        load_spec(project / SPEC), project / "data" / "raw", project / "data" / "population", n_per_wave=400, seed=7
    )
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    return project


def _copy_with(finished_run: Path, tmp_path: Path, section: str, key: str, value) -> Path:
    """A copy of the finished project with one parameter changed in params.yaml (`key` may be dotted)."""
    project = tmp_path / "project"
    shutil.copytree(finished_run, project)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    *parents, last = key.split(".")
    target = params[section]
    for parent in parents:
        target = target[parent]
    target[last] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return project


@pytest.mark.parametrize(
    ("key", "value", "recorded"),
    [
        ("ci_method", "logit", "'beta'"),
        ("level", 0.9, "0.95"),
        ("suppression.min_n", 50, "30"),
    ],
)
def test_report_alone_refuses_estimates_made_with_other_estimate_settings(
    finished_run, tmp_path, capsys, key, value, recorded
):
    project = _copy_with(finished_run, tmp_path, "estimate", key, value)
    before = _digest(project / "outputs")
    capsys.readouterr()
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == 2
    folder = project / "outputs" / "estimate"
    assert capsys.readouterr().err.splitlines() == [
        f"survey-pipeline: error: {folder / 'settings.json'}, rule 'upstream_settings': estimate.{key} is {value!r} "
        f"in params.yaml but {folder} was made with {recorded}; rerun the estimate stage"
    ]
    assert _digest(project / "outputs") == before


def test_estimate_alone_refuses_weights_made_with_other_weight_settings(finished_run, tmp_path, capsys):
    """With --outputs elsewhere, the message names that folder (not `outputs/`)."""
    project = _copy_with(finished_run, tmp_path, "weight", "max_iter", 50)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(project / "outputs", elsewhere)
    capsys.readouterr()
    assert cli.main(["--project-dir", str(project), "--outputs", str(elsewhere), "--quiet", "estimate"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"weight.max_iter is 50 in params.yaml but {elsewhere / 'weight'} was made with 100; rerun the weight stage"
        )
    )


def test_a_report_setting_needs_only_the_report_stage(finished_run, tmp_path):
    project = _copy_with(finished_run, tmp_path, "report", "decimals", 1)
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == 0


def test_the_method_note_describes_the_settings_the_numbers_were_made_with(finished_run, tmp_path):
    project = _copy_with(finished_run, tmp_path, "estimate", "ci_method", "logit")
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["estimate"]["suppression"]["min_n"] = 50
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for verb in ("estimate", "report"):
        assert cli.main(["--project-dir", str(project), "--quiet", verb]) == 0
    indicators = pd.read_parquet(project / "outputs" / "report" / "indicators.parquet")
    assert set(indicators["ci_method"]) <= {"logit", "beta"} and "logit" in set(indicators["ci_method"])
    note = (project / "outputs" / "report" / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "het logit-interval" in note and "minder dan 50 respondenten" in note
