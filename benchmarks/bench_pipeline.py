"""Benchmark: the whole pipeline (`survey-pipeline run`) on the demo panel, cold and warm.

    python benchmarks/bench_pipeline.py [--runs 2] [--set validate.gx_level=off] [--project DIR] [--keep]

Copies the project's inputs (data/, questionnaires/, params.yaml) to a temporary
folder and runs `survey-pipeline run` there in a fresh interpreter per run. The
first run is cold (no outputs, no figure cache), every later one warm (same
inputs: the figures come from outputs/.cache/figures). `--set key=value` changes
a parameter of the copy (value parsed as YAML, e.g. `report.figure_formats=[png,svg]`).
`--project` copies another checkout's inputs (to compare with an older version, run
with that checkout first on PYTHONPATH).

Per run: wall seconds, CPU seconds of the run's processes (user + system, from
`os.wait4`, so figure workers count too), peak RSS of the largest process, the
stage times from the run's log lines (`[n/5] stage done in X s`; the manifest's
times have whole seconds only) and the load average before the run: the machine
may be shared, so compare CPU seconds between runs, not only wall. Each run prints
one JSON line; the last line is a JSON list of all runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ("data", "questionnaires", "params.yaml")
STAGE_DONE = re.compile(r"\[\d+/\d+\] (\w+) done in ([0-9.]+) s")


def copy_project(source_root: Path, target: Path, overrides: list[str]) -> None:
    """The inputs of the project in `source_root` in `target`, with `key=value` parameter overrides applied."""
    for name in INPUTS:
        source = source_root / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    params = yaml.safe_load((target / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        params[section][name] = yaml.safe_load(value)
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def run_once(project: Path, label: str) -> dict:
    """One `survey-pipeline run` in a fresh interpreter; times, CPU, peak memory."""
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    command = [sys.executable, "-m", "survey_pipeline", "--project-dir", str(project), "run"]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        # cwd: `python -m` puts it first on sys.path, so run where no survey_pipeline package is
        process = subprocess.Popen(command, cwd=project, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    if process.returncode != 0:
        sys.exit(f"{label} run failed (exit {process.returncode}):\n{text[-2000:]}")
    return {
        "run": label,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_memory_mb": round(usage.ru_maxrss / 1024, 1),
        "stage_seconds": {stage: float(seconds) for stage, seconds in STAGE_DONE.findall(text)},
        "loadavg_before": " ".join(load),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs in the same copy: the first cold, the rest warm")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override, e.g. validate.gx_level=off",
    )
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="project whose inputs are copied (default: this one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (its path is printed)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        project = folder / "project"
        project.mkdir()
        copy_project(args.project, project, args.overrides)
        results = []
        for number in range(args.runs):
            results.append(run_once(project, "cold" if number == 0 else f"warm{number}"))
            print(json.dumps(results[-1]), flush=True)
        print(json.dumps(results), flush=True)
    finally:
        if args.keep:
            print(f"project kept in {project}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
