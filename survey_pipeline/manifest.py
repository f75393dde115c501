"""Run manifest: what went in (file hashes, params, versions, git commit) and what came out.

Each stage gets `outputs/manifests/<stage>.json` from the command that produced
it (outside the stage folder, so stage outputs stay byte-identical between runs);
`outputs/manifest.json` combines the stage manifests present after a command, so
it stays true when stages were run separately (e.g. by `dvc repro`). Manifests
hold counts and hashes only, never respondent data.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from survey_pipeline import stage_graph
from survey_pipeline.artifacts import (
    MANIFEST_DIR,
    RUN_MANIFEST,
    RUN_MANIFEST_TEMPORARY,
    STAGES,
    OutputStore,
    iso,
    read_json,
    write_json,
)
from survey_pipeline.contracts import RunManifest, StageManifest
from survey_pipeline.errors import OutputWriteError
from survey_pipeline.settings import Params
from survey_pipeline.software import software_versions


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def start(command: str, base_dir: Path, params_path: Path, params: Params) -> dict[str, Any]:
    """The common part of a command's manifest, taken before any stage runs."""
    return {
        "command": command,
        "started_at": iso(time.time()),
        "git_commit": _git_commit(base_dir),
        **software_versions(),
        "params": params.model_dump(mode="json", by_alias=True),
        "inputs": _input_hashes(base_dir, params_path, params),
        "stages": {},
    }


def write(record: dict[str, Any], store: OutputStore, base_dir: Path) -> None:
    """Stage one `manifests/<stage>.json` for every stage this command ran."""
    finished = iso(time.time())
    common = {key: value for key, value in record.items() if key != "stages"}
    for stage, counts in record["stages"].items():
        write_json(
            {**common, "finished_at": finished, "stage": stage, "counts": counts},
            store.stage_manifest(stage),
            StageManifest,
        )


def write_run_manifest(outputs: Path) -> Path:
    """Combine the stage manifests under `outputs/` into `outputs/manifest.json` (atomically)."""
    stages = {}
    for stage in STAGES:
        path = outputs / MANIFEST_DIR / f"{stage}.json"
        if path.exists():
            stages[stage] = read_json(path, StageManifest)
    combined = {
        "stages": {
            stage: {key: entry[key] for key in ("command", "started_at", "finished_at", "git_commit", "counts")}
            for stage, entry in stages.items()
        },
        "row_counts": {stage: entry["counts"] for stage, entry in stages.items()},
    }
    if stages:
        newest = max(stages.values(), key=lambda entry: entry["finished_at"])
        combined.update({key: newest[key] for key in ("params", "inputs", "packages", "python", "git_commit")})
        combined["started_at"] = min(entry["started_at"] for entry in stages.values())
        combined["finished_at"] = newest["finished_at"]
    target = outputs / RUN_MANIFEST
    temporary = outputs / RUN_MANIFEST_TEMPORARY
    write_json(combined, temporary, RunManifest)
    try:
        os.replace(temporary, target)
    except OSError as exc:
        raise OutputWriteError.from_os_error(exc, target) from exc
    return target


def _input_hashes(base_dir: Path, params_path: Path, params: Params) -> dict[str, str]:
    """sha256 of params.yaml, the spec and every data file a stage reads: the data dependencies of
    the stage graph (raw files, population margins or cells, area covariates), as dvc.yaml has them."""
    paths = [params_path, base_dir / params.spec]
    for stage in stage_graph.STAGES:
        for name in stage.data(params):
            path = base_dir / name
            if path.is_dir():
                paths += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            else:
                paths.append(path)
    return {_relative(path, base_dir): sha256(path) for path in dict.fromkeys(paths) if path.is_file()}


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(base_dir))
    except ValueError:
        return str(path)


def _git_commit(base_dir: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=base_dir, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
