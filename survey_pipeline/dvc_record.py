"""DVC's record of the last run (dvc.lock and its cache), shared by `survey-pipeline run` and `dvc repro`.

`survey-pipeline run` runs its stages in one process (one interpreter start-up,
one import of pandas, pandera and great-expectations instead of one per stage);
`dvc repro` runs each stage as its own `survey-pipeline <stage>` process. Both keep
one record of what is up to date: dvc.lock. Before it runs anything, `run` asks
DVC (`dvc status`) which stages changed (code, params section, data, upstream
outputs, or outputs missing or edited) and runs those and every stage downstream of
them; after the outputs were swapped in, it records the stages it ran with `dvc
commit`, exactly as `dvc repro` would have. So an unchanged project re-runs nothing,
a changed parameter re-runs only the stages that read its section, and `dvc repro`
after `run` (or the reverse) has nothing to do.

The record is used only where it describes the outputs: in a git + DVC checkout,
with the project's own params.yaml and outputs folder. Elsewhere (a copy without
git, `--params` or `--outputs` given, `--force`) every stage runs and DVC is not
touched. When DVC cannot answer, every stage runs (never fewer than needed).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from survey_pipeline.errors import escape
from survey_pipeline.stage_graph import OUTPUTS, STAGES

log = logging.getLogger(__name__)

DVC = (sys.executable, "-m", "dvc")
"""DVC from the pipeline's own environment (a declared dependency), whatever PATH holds."""
TIMEOUT_SECONDS = 600


def why_not_used(base_dir: Path, params_path: Path, outputs: Path) -> str | None:
    """Why DVC's record does not describe this run's outputs (None: it does)."""
    if not (base_dir / "dvc.yaml").is_file() or not (base_dir / ".dvc").is_dir():
        return "not a DVC checkout"
    if not any((folder / ".git").exists() for folder in (base_dir, *base_dir.parents)):
        return "not in a git repository, which DVC needs"
    if params_path.resolve() != (base_dir / "params.yaml").resolve():
        return "--params is not the project's params.yaml, which dvc.lock records"
    if outputs.resolve() != (base_dir / OUTPUTS).resolve():
        return "--outputs is not the project's outputs folder, which dvc.lock records"
    return None


@contextmanager
def status_in_background(base_dir: Path | None) -> Iterator[PendingStatus | None]:
    """Start `dvc status` for the project (None: do not) while the caller imports and checks
    its inputs on the other core; the process is ended if the block leaves before asking."""
    if base_dir is None:
        yield None
        return
    pending = PendingStatus(base_dir)
    try:
        yield pending
    finally:
        pending.stop()


class PendingStatus:
    """A `dvc status --json` running in the project."""

    def __init__(self, base_dir: Path) -> None:
        self._process: subprocess.Popen[str] | None = None
        try:
            self._process = subprocess.Popen(
                [*DVC, "status", "--json"],
                cwd=base_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except OSError as exc:
            log.warning("dvc status could not run (%s)", escape(str(exc)))

    def changed_stages(self) -> set[str] | None:
        """The stages `dvc status` reports as changed, or None when DVC could not tell (logged)."""
        if self._process is None:
            return None
        try:
            output, errors = self._process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("dvc status took longer than %d s", TIMEOUT_SECONDS)
            return None
        if self._process.returncode != 0:
            log.warning("dvc status failed: %s", _first_line(errors or output, self._process.returncode))
            return None
        try:
            status = json.loads(output)
        except ValueError:
            log.warning("dvc status gave no JSON")
            return None
        return {stage.name for stage in STAGES if stage.name in status}

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def with_downstream(changed: Iterable[str]) -> tuple[str, ...]:
    """`changed` and every stage that reads the outputs of a stage in the result, in run order."""
    running: list[str] = []
    for stage in STAGES:
        upstream = {read.split("/", 1)[0] for read in stage.reads}
        if stage.name in changed or upstream & set(running):
            running.append(stage.name)
    return tuple(running)


def record(base_dir: Path, stages: Sequence[str]) -> bool:
    """Record `stages`' current inputs and outputs in dvc.lock and DVC's cache (`dvc commit`)."""
    if not stages:
        return True
    # every stage: no targets, so DVC reads dvc.yaml and dvc.lock once instead of once per stage (~1 s less)
    targets = () if set(stages) == {stage.name for stage in STAGES} else tuple(stages)
    return _dvc(base_dir, "commit", "--force", "--quiet", *targets) is not None


def _dvc(base_dir: Path, *arguments: str) -> str | None:
    """Run DVC in the project; its standard output, or None (with a warning) when it failed."""
    command = [*DVC, *arguments]
    try:
        result = subprocess.run(
            command,
            cwd=base_dir,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("dvc %s could not run (%s)", arguments[0], escape(str(exc)))
        return None
    if result.returncode != 0:
        log.warning("dvc %s failed: %s", arguments[0], _first_line(result.stderr or result.stdout, result.returncode))
        return None
    return result.stdout


def _first_line(text: str, returncode: int) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return escape(lines[0] if lines else f"exit {returncode}")
