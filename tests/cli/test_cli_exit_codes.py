"""CLI contract for scheduled runs: exit codes, one-line errors, atomic outputs, manifest."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from survey_pipeline import cli
from survey_pipeline.artifacts import OutputStore, write_json
from survey_pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def project(tmp_path) -> Path:
    """A minimal project: the real spec and params, no data."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


class Marker(BaseModel):
    stage: str


def _fake_stage(name: str, behaviour: str) -> types.ModuleType:
    """A stage module whose run() writes a marker file, then behaves as asked."""
    module = types.ModuleType(name)

    def run(store, spec, params, base_dir):
        with store.writing(name.rsplit("_", 1)[-1]) as out:
            write_json({"stage": name}, out / "marker.json", Marker)
            if behaviour == "library_write_refused_in_stage":  # e.g. pandas to_csv closing its file
                raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        if behaviour == "input_error":
            raise InputError(
                "code 7 is not allowed", file="wij_panel_2019.sav", row=12, column="heard", rule="allowed_codes"
            )
        if behaviour == "crash":
            raise ZeroDivisionError("division by zero")
        if behaviour == "library_write_refused":  # e.g. matplotlib or pyarrow on a full disk: no file name
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        if behaviour == "library_permission_denied":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "figures/chain.png")
        return {"rows_out": 3}

    module.run = run
    return module


def _install(monkeypatch, behaviours: dict[str, str]) -> None:
    for stage, behaviour in behaviours.items():
        module_name = f"fake_{stage}"
        monkeypatch.setitem(sys.modules, module_name, _fake_stage(module_name, behaviour))
        monkeypatch.setitem(cli.STAGE_MODULES, stage, module_name)


ALL_OK = {stage: "ok" for stage in ("ingest", "validate", "weight", "estimate", "report")}


def test_successful_run_exits_0_commits_outputs_and_writes_manifest(project, monkeypatch, capsys):
    _install(monkeypatch, ALL_OK)
    assert cli.main(["--project-dir", str(project), "run"]) == 0
    outputs = project / "outputs"
    assert sorted(p.name for p in outputs.iterdir()) == sorted([*ALL_OK, "manifest.json", "manifests"])
    assert sorted(p.name for p in (outputs / "weight").iterdir()) == ["marker.json"]
    manifest = json.loads((outputs / "manifest.json").read_text())
    assert manifest["row_counts"]["weight"] == {
        "rows_out": 3,
        "started_at": manifest["stages"]["weight"]["counts"]["started_at"],
        "finished_at": manifest["stages"]["weight"]["counts"]["finished_at"],
    }
    assert "questionnaires/wij_monitor.yaml" in manifest["inputs"]
    assert manifest["params"]["validate"]["max_quarantine_share"] == 0.02
    assert manifest["packages"]["pandas"] == pd.__version__


def test_input_error_exits_2_with_one_line_naming_file_row_column_rule(project, monkeypatch, capsys):
    _install(monkeypatch, {**ALL_OK, "validate": "input_error"})
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "survey-pipeline: error: wij_panel_2019.sav, row 12, column 'heard', rule 'allowed_codes': code 7 is not allowed"
    ]


def test_internal_error_exits_1_without_traceback(project, monkeypatch, capsys):
    _install(monkeypatch, {**ALL_OK, "weight": "crash"})
    assert cli.main(["--project-dir", str(project), "run"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "survey-pipeline: internal error: ZeroDivisionError: division by zero" in err


def test_debug_shows_the_traceback(project, monkeypatch, capsys):
    _install(monkeypatch, {**ALL_OK, "weight": "crash"})
    assert cli.main(["--project-dir", str(project), "--debug", "run"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_failed_run_leaves_previous_outputs_intact_and_unmixed(project, monkeypatch):
    _install(monkeypatch, ALL_OK)
    assert cli.main(["--project-dir", str(project), "run"]) == 0
    before = {p.relative_to(project): p.read_bytes() for p in (project / "outputs").rglob("*") if p.is_file()}

    _install(monkeypatch, {**ALL_OK, "estimate": "input_error"})
    assert cli.main(["--project-dir", str(project), "run"]) == 2
    after = {p.relative_to(project): p.read_bytes() for p in (project / "outputs").rglob("*") if p.is_file()}
    assert after == before  # ingest..weight succeeded in the failed run, yet nothing changed
    assert not [p for p in (project / "outputs").iterdir() if p.name.startswith(".")]


def test_single_stage_command_updates_only_that_stage(project, monkeypatch):
    _install(monkeypatch, ALL_OK)
    assert cli.main(["--project-dir", str(project), "run"]) == 0
    ingest_before = (project / "outputs" / "manifests" / "ingest.json").read_bytes()
    assert cli.main(["--project-dir", str(project), "weight"]) == 0
    assert (project / "outputs" / "manifests" / "ingest.json").read_bytes() == ingest_before
    manifest = json.loads((project / "outputs" / "manifest.json").read_text())
    assert manifest["stages"]["weight"]["command"] == "weight"
    assert manifest["stages"]["ingest"]["command"] == "run"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: (p / "params.yaml").unlink(), "params key '<file>': file not found"),
        (
            lambda p: (p / "params.yaml").write_text("spec: questionnaires/wij_monitor.yaml\n"),
            "params key 'ingest': missing section",
        ),
        (
            lambda p: (p / "questionnaires" / "wij_monitor.yaml").write_text("spec_version: 1\n"),
            "spec key 'survey': required key is missing",
        ),
    ],
)
def test_bad_params_or_spec_exit_2(project, monkeypatch, capsys, edit, expected):
    _install(monkeypatch, ALL_OK)
    edit(project)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (project / "outputs" / "ingest").exists()


def test_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["frobnicate"])
    assert caught.value.code == 2


def _outputs_snapshot(project: Path) -> dict[Path, bytes]:
    return {p.relative_to(project): p.read_bytes() for p in (project / "outputs").rglob("*") if p.is_file()}


@pytest.mark.parametrize("error_number", [errno.ENOSPC, errno.EFBIG])
def test_a_refused_write_exits_3_naming_file_and_reason_and_keeps_outputs(project, monkeypatch, capsys, error_number):
    _install(monkeypatch, ALL_OK)
    assert cli.main(["--project-dir", str(project), "run"]) == 0
    before = _outputs_snapshot(project)
    capsys.readouterr()

    def refused(self, *args, **kwargs):
        raise OSError(error_number, os.strerror(error_number))  # what a failing write() raises: no file name

    monkeypatch.setattr(Path, "write_text", refused)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.fullmatch(
        rf"survey-pipeline: file system error: {re.escape(str(project))}/outputs/\.staging-\w+/ingest/marker\.json: "
        + re.escape(os.strerror(error_number)),
        err[0],
    ), err
    monkeypatch.undo()
    assert _outputs_snapshot(project) == before
    assert not [p for p in (project / "outputs").iterdir() if p.name.startswith(".") or p.name == "failed"]


def test_a_refused_write_in_a_library_names_its_file_or_the_stage_folder_or_the_outputs(project, monkeypatch, capsys):
    _install(monkeypatch, {**ALL_OK, "report": "library_write_refused"})
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == 3
    assert capsys.readouterr().err.strip() == (
        f"survey-pipeline: file system error: {project / 'outputs'}: No space left on device"
    )
    _install(monkeypatch, {**ALL_OK, "report": "library_write_refused_in_stage"})
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == 3
    assert re.fullmatch(
        rf"survey-pipeline: file system error: {re.escape(str(project))}/outputs/\.staging-\w+/report: File too large",
        capsys.readouterr().err.strip(),
    )
    assert not (project / "outputs" / "failed").exists()
    _install(monkeypatch, {**ALL_OK, "report": "library_permission_denied"})
    assert cli.main(["--project-dir", str(project), "--quiet", "report"]) == 3
    assert capsys.readouterr().err.strip() == "survey-pipeline: file system error: figures/chain.png: Permission denied"


@pytest.mark.parametrize("in_the_way", ["outputs", "outputs/report", "outputs/manifests"])
def test_a_file_in_the_way_of_the_outputs_exits_3_and_is_left_alone(project, monkeypatch, capsys, in_the_way):
    _install(monkeypatch, ALL_OK)
    if in_the_way != "outputs":
        assert cli.main(["--project-dir", str(project), "run"]) == 0
        shutil.rmtree(project / in_the_way)
    (project / in_the_way).write_text("not a folder")
    before = _outputs_snapshot(project) if (project / "outputs").is_dir() else None
    capsys.readouterr()

    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 3
    assert capsys.readouterr().err.strip() == (
        f"survey-pipeline: file system error: {project / in_the_way}: not a folder (a file is in the way)"
    )
    assert (project / in_the_way).read_text() == "not a folder"
    if before is not None:
        assert _outputs_snapshot(project) == before


def test_sigterm_during_the_final_swap_lets_it_finish(project, monkeypatch, capsys):
    _install(monkeypatch, ALL_OK)
    commit = OutputStore.commit

    def commit_hit_by_sigterm(store):
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, in the middle of the commit
        return commit(store)

    monkeypatch.setattr(OutputStore, "commit", commit_hit_by_sigterm)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    err = capsys.readouterr().err
    assert (
        "WARNING survey_pipeline: SIGTERM arrived while the outputs were being swapped in; the swap was completed"
        in err
    )
    assert sorted(p.name for p in (project / "outputs").iterdir()) == sorted([*ALL_OK, "manifest.json", "manifests"])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command's handlers are gone again
