"""Benchmark: `make run` (`survey-pipeline run`) on the demo panel: cold, warm, unchanged; `--help`.

    python benchmarks/bench_pipeline.py [--set validate.gx_level=off] [--project DIR] [--no-git] [--keep]

Copies the project (its files as git lists them, committed or not: code, data,
params.yaml, dvc.yaml, dvc.lock) to a temporary folder, makes it a git repository
(a fresh clone, as far as DVC can tell) and runs there, each time in a fresh
interpreter with the copy's own code:

- cold: `survey-pipeline run` with no outputs, no figure cache and an empty DVC
  cache: every stage runs, then DVC records the run in dvc.lock;
- warm: `survey-pipeline run --force`: every stage again, figures from the cache;
- unchanged: `survey-pipeline run`: DVC's record says nothing changed, nothing runs.

`--no-git` leaves out `git init` (a copy that is no git checkout: every run runs
every stage; the unchanged run then shows what the record saves). `--set key=value`
changes a parameter of the copy (value parsed as YAML, e.g.
`report.figure_formats=[png,svg]`). `--project` copies another checkout, e.g. an
older commit, to compare (it must know `run --force`, or pass `--no-git`).

Per run: wall seconds, CPU seconds of the run's processes (user + system, from
`os.wait4`: figure workers and DVC count too), peak RSS of the largest process,
the stages that ran with their times (the run's `[n/m] stage done in X s` log
lines) and the load average before the run: the machine may be shared, so compare
CPU seconds between runs, not only wall. Then `survey-pipeline --help` (best and
median wall of 7, best CPU). Each run prints one JSON line; the last line is one JSON object
with all runs and each target with its measured value.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_DONE = re.compile(r"\[\d+/\d+\] (\w+) done in ([0-9.]+) s")
# Issue 13's targets, wall seconds on an idle 2-core machine, gx_level full.
TARGETS = {"cold": 10.0, "unchanged": 3.0, "help": 0.3}
HELP_REPEATS = 7


def copy_project(source_root: Path, target: Path, overrides: list[str], *, git: bool) -> None:
    """The project in `source_root` (its git-listed files) in `target`, parameters overridden, as a new git repository."""
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    for name in subprocess.run(listed, cwd=source_root, capture_output=True, text=True, check=True).stdout.split():
        if (source_root / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source_root / name, target / name)
    params = yaml.safe_load((target / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        params[section][name] = yaml.safe_load(value)
    if overrides:
        (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    if git:
        subprocess.run(["git", "init", "-q"], cwd=target, check=True)


def _timed(command: list[str], cwd: Path) -> tuple[float, float, float, int, str]:
    """Wall and CPU seconds (the command and its children), peak RSS (MB), exit code and stderr of `command`."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        # cwd: `python -m` puts it first on sys.path, so the copy's own code runs
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        log.seek(0)
        text = log.read()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), text


def run_once(project: Path, label: str, *options: str) -> dict:
    """One `survey-pipeline run` in a fresh interpreter; times, CPU, peak memory, the stages that ran."""
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    command = [sys.executable, "-m", "survey_pipeline", "run", *options]
    wall, cpu, peak, code, text = _timed(command, project)
    if code != 0:
        sys.exit(f"{label} run failed (exit {code}):\n{text[-2000:]}")
    return {
        "run": label,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_memory_mb": round(peak, 1),
        "stage_seconds": {stage: float(seconds) for stage, seconds in STAGE_DONE.findall(text)},
        "loadavg_before": " ".join(load),
    }


def help_seconds(project: Path) -> dict:
    """`survey-pipeline --help` wall seconds, best and median of HELP_REPEATS, and the best CPU seconds."""
    walls, cpus = [], []
    for _ in range(HELP_REPEATS):
        wall, cpu, _, code, text = _timed([sys.executable, "-m", "survey_pipeline", "--help"], project)
        if code != 0:
            sys.exit(f"--help failed (exit {code}):\n{text[-2000:]}")
        walls.append(wall)
        cpus.append(cpu)
    return {
        "run": "help",
        "best_seconds": round(min(walls), 3),
        "median_seconds": round(statistics.median(walls), 3),
        "best_cpu_seconds": round(min(cpus), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override, e.g. validate.gx_level=off",
    )
    parser.add_argument("--project", type=Path, default=ROOT, help="project to copy (default: this one)")
    parser.add_argument("--no-git", action="store_true", help="no git repository: every run runs every stage")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (its path is printed)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        project = folder / "project"
        project.mkdir()
        copy_project(args.project, project, args.overrides, git=not args.no_git)
        plan = [("cold", ()), ("warm", () if args.no_git else ("--force",)), ("unchanged", ())]
        results = []
        for label, options in plan:
            results.append(run_once(project, label, *options))
            print(json.dumps(results[-1]), flush=True)
        results.append(help_seconds(project))
        print(json.dumps(results[-1]), flush=True)
        measured = {
            "cold": results[0]["wall_seconds"],
            "unchanged": results[2]["wall_seconds"],
            "help": results[3]["best_seconds"],
        }
        targets = {name: {"target_s": limit, "measured_s": measured[name]} for name, limit in TARGETS.items()}
        print(json.dumps({"runs": results, "targets": targets}), flush=True)
    finally:
        if args.keep:
            print(f"project kept in {project}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
