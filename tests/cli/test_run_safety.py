"""Scheduled-run safety with real processes: signals, SIGKILL leftovers, the outputs lock, write failures.

The runs use stand-in stage modules (installed by a small runner script) so that a
stage can be held in the middle of writing, where a scheduler's SIGTERM or SIGKILL
would land; everything around the stages (CLI, lock, staging, commit) is the real code.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "validate", "weight", "estimate", "report")

RUNNER = """
import os, sys, time, types
from pathlib import Path
from survey_pipeline import cli
from pydantic import BaseModel
from survey_pipeline.artifacts import write_json

HELD_STAGE, PAYLOAD_BYTES = sys.argv[1], int(sys.argv[2])


class Rows(BaseModel):
    respondent_rows: str


def stand_in(stage):
    module = types.ModuleType("stand_in_" + stage)

    def run(store, spec, params, base_dir):
        with store.writing(stage) as out:
            write_json({"respondent_rows": "x" * PAYLOAD_BYTES}, out / "rows.json", Rows)
            if stage == HELD_STAGE:
                Path(os.environ["READY_FILE"]).write_text(str(os.getpid()))
                time.sleep(120)
        return {"rows_out": 3}

    module.run = run
    return module


for stage in list(cli.STAGE_MODULES):
    sys.modules["stand_in_" + stage] = stand_in(stage)
    cli.STAGE_MODULES[stage] = "stand_in_" + stage
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.fixture()
def project(tmp_path) -> Path:
    """The real spec and params, plus the runner script."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "runner.py").write_text(RUNNER)
    return tmp_path


def _start(project: Path, *, hold: str = "", payload: int = 10, limit_file_size: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "READY_FILE": str(project / "ready"), "PYTHONDONTWRITEBYTECODE": "1"}
    (project / "ready").unlink(missing_ok=True)

    def limit() -> None:
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.Popen(
        [
            sys.executable,
            str(project / "runner.py"),
            hold,
            str(payload),
            "--project-dir",
            str(project),
            "--quiet",
            "run",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )


def _finish(process: subprocess.Popen) -> tuple[int, list[str]]:
    _, err = process.communicate(timeout=120)
    return process.returncode, err.splitlines()


def _wait_until_held(process: subprocess.Popen, project: Path) -> None:
    """Wait until the run is inside its held stage, with respondent rows staged."""
    deadline = time.monotonic() + 90
    while not (project / "ready").exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the run never reached its held stage")
        time.sleep(0.05)


def _snapshot(outputs: Path) -> dict[str, bytes]:
    """Every file under outputs/ (hidden ones included) with its bytes."""
    return {str(p.relative_to(outputs)): p.read_bytes() for p in sorted(outputs.rglob("*")) if p.is_file()}


COMMITTED = sorted(
    [f"{stage}/rows.json" for stage in STAGES] + [f"manifests/{stage}.json" for stage in STAGES] + ["manifest.json"]
)


def test_after_sigkill_mid_stage_the_next_run_succeeds_and_leaves_nothing_behind(project):
    killed = _start(project, hold="weight")
    _wait_until_held(killed, project)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    leftovers = [p for p in _snapshot(project / "outputs") if p not in COMMITTED]
    assert any(p.endswith("weight/rows.json") for p in leftovers)  # the kill left staged respondent rows

    code, err = _finish(_start(project))
    assert code == 0, err
    assert sorted(_snapshot(project / "outputs")) == COMMITTED  # no staging, no lock, no failed/ anywhere
    assert any(f"pid {killed.pid}" in line and "WARNING" in line for line in err), err


@pytest.mark.parametrize(("stop", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_exits_with_its_signal_code_and_leaves_outputs_byte_identical(project, stop, exit_code):
    code, err = _finish(_start(project))
    assert code == 0, err
    before = _snapshot(project / "outputs")

    stopped = _start(project, hold="estimate")
    _wait_until_held(stopped, project)
    stopped.send_signal(stop)
    code, err = _finish(stopped)
    assert code == exit_code
    assert err == [f"survey-pipeline: stopped by {stop.name}; outputs left as they were"]
    assert _snapshot(project / "outputs") == before


def test_a_second_run_on_the_same_outputs_exits_2_naming_the_run_that_holds_them(project):
    first = _start(project, hold="validate")
    _wait_until_held(first, project)
    try:
        code, err = _finish(_start(project))
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert code == 2
    assert len(err) == 1, err
    assert "another run" in err[0] and f"pid {first.pid}" in err[0] and "started 20" in err[0]
    assert first.returncode == 143  # the first run was not disturbed by the second


def test_a_file_too_large_names_the_file_and_keeps_the_previous_outputs(project):
    code, err = _finish(_start(project))
    assert code == 0, err
    before = _snapshot(project / "outputs")

    code, err = _finish(_start(project, payload=200_000, limit_file_size=100_000))  # the OS says EFBIG
    assert code == 3
    assert len(err) == 1, err
    prefix = f"survey-pipeline: file system error: {project / 'outputs'}/"
    assert err[0].startswith(prefix) and err[0].endswith("/ingest/rows.json: File too large"), err
    assert _snapshot(project / "outputs") == before


def test_the_lock_file_describes_its_holder(project):
    first = _start(project, hold="ingest")
    _wait_until_held(first, project)
    try:
        holder = json.loads((project / "outputs" / ".lock").read_text())
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert holder["pid"] == first.pid and holder["command"] == "run"
    assert {"host", "started_at"} <= set(holder)
    assert not (project / "outputs" / ".lock").exists()


def test_a_sigterm_after_the_run_ended_does_not_turn_its_exit_code_into_143(project):
    """The command's outcome is decided when `main` returns; interpreter shutdown (module
    teardown, a few hundred ms after a real run) is no time to be killed with 143 and no line."""
    runner = project / "runner.py"
    runner.write_text(
        RUNNER.replace(
            "sys.exit(cli.main(sys.argv[3:]))",
            "import atexit, signal\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(1)))\n"
            "sys.argv = sys.argv[:1] + sys.argv[3:]\n"
            "sys.exit(cli.main())",
        )
    )
    assert _finish(_start(project)) == (0, [])
    assert sorted(_snapshot(project / "outputs")) == COMMITTED
