"""CLI usability: each verb's --help says what it reads and writes; global options work after the verb;
messages name the outputs folder actually used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.settings import load_params
from survey_pipeline.spec import load_spec
from survey_pipeline.stage_graph import STAGES, declared_outputs

ROOT = Path(__file__).resolve().parents[2]


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrap the wrapped lines


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_each_stage_help_names_what_it_reads_and_writes(stage, capsys):
    text = _help(capsys, stage.name)
    assert stage.summary() and stage.summary() in text
    assert "reads: " in text and "writes: " in text
    for name in stage.reads:
        assert f"outputs/{name}" in text
    for key in stage.data_keys:
        assert f"params `{key}`" in text
    for name in declared_outputs(stage) - {"."}:
        assert f"outputs/{stage.name}/{name}" in text
    if "." in stage.folders:
        assert f"outputs/{stage.name}/ (the whole folder)" in text
    assert "may come before or after the verb" in text and "--outputs is given" in text


def test_run_help_lists_every_stage_and_its_inputs(capsys):
    text = _help(capsys, "run")
    for stage in STAGES:
        assert f"{stage.name} {stage.summary()}" in text and f"outputs/{stage.name}/" in text
    for key in ("ingest.raw_dir", "weight.population_file", "weight.cells_file"):
        assert f"params `{key}`" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--debug"],
        ["--debug", "run"],
        ["report", "--quiet", "--project-dir", "p", "--outputs", "o", "--params", "x.yaml"],
        ["--project-dir", "p", "--outputs", "o", "report", "--quiet", "--params", "x.yaml"],
    ],
)
def test_global_options_work_before_and_after_the_verb(argv):
    args = cli.build_parser().parse_args(argv)
    given = set(argv)
    assert args.debug == ("--debug" in given) and args.quiet == ("--quiet" in given)
    if "--outputs" in given:
        assert (args.project_dir, args.outputs, args.params) == (Path("p"), Path("o"), Path("x.yaml"))
    else:
        assert (args.project_dir, args.outputs, args.params) == (Path("."), None, None)


def test_an_option_before_the_verb_is_not_reset_by_the_verb():
    args = cli.build_parser().parse_args(["--outputs", "o", "--debug", "validate", "--quiet"])
    assert (args.outputs, args.debug, args.quiet) == (Path("o"), True, True)


@pytest.fixture()
def project(tmp_path) -> Path:
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_messages_name_the_outputs_folder_given(project, tmp_path_factory, capsys):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "results"
    # a stage without its inputs: the error names the file under --outputs, not outputs/
    assert cli.main(["validate", "--project-dir", str(project), "--outputs", str(elsewhere)]) == 2
    error = capsys.readouterr().err
    assert str(elsewhere / "ingest") in error and str(project / "outputs") not in error

    spec = load_spec(project / "questionnaires" / "wij_monitor.yaml")
    write_demo(spec, project / "data" / "raw", project / "data" / "population", n_per_wave=60, seed=3)
    assert cli.main(["ingest", "--project-dir", str(project), "--outputs", str(elsewhere)]) == 0
    log = capsys.readouterr().err
    assert f"done: outputs in {elsewhere}" in log
    assert (elsewhere / "ingest" / "responses.parquet").is_file() and not (project / "outputs").exists()
    assert cli.main(["ingest", "--quiet", "--project-dir", str(project), "--outputs", str(elsewhere)]) == 0
    assert "done" not in capsys.readouterr().err  # --quiet after the verb


@pytest.mark.parametrize("stage", [s for s in STAGES if s.data_keys], ids=lambda s: s.name)
def test_the_params_keys_help_names_are_keys_of_params_yaml(stage):
    """A user looks the named key up in params.yaml: it must be there, not an internal property name."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for key in stage.data_keys:
        node = params
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"params `{key}` is not a key of params.yaml"
            node = node[part]


def test_a_switched_off_section_reads_no_data_file():
    """estimate.small_area.enabled: false: the covariates file is no dependency (nor in dvc.yaml)."""
    params = load_params(ROOT / "params.yaml")
    estimate = next(s for s in STAGES if s.name == "estimate")
    covariates = params.estimate.small_area.covariates_file
    assert covariates in estimate.data(params)
    off = params.model_copy(
        update={
            "estimate": params.estimate.model_copy(
                update={"small_area": params.estimate.small_area.model_copy(update={"enabled": False})}
            )
        }
    )
    assert covariates not in estimate.data(off)
