"""Benchmark: the whole pipeline on a demo panel K times the demo's size, stage by stage.

    python benchmarks/bench_pipeline_scale.py --scale 10 [--bytecode] [--set validate.gx_level=off] [--panels DIR] [--keep]

Generates the demo panel with K x 3,000 respondents per wave (`survey_pipeline.demo.write_demo`,
the demo seed: the same K gives the same bytes) into a temporary copy of the project:
raw `.sav` files with their receipt, and the population files. The margins are population
counts, so they stay the demo's: only the sample grows (at K = 100 there are more
respondents than residents in some cells, which raking does not mind). `--panels DIR`
keeps the generated data in DIR/scale<K>/ and reuses them on the next run. `--bytecode` writes
the `.sav` files bytecode-compressed, as SPSS does by default (the demo's are uncompressed).

Then `survey-pipeline run` in a fresh interpreter, as a scheduled run starts it. While it
runs, each `[n/5] stage done` log line is answered by reading the process's CPU time and
peak resident memory (VmHWM) and resetting that peak (`/proc/<pid>/clear_refs`), so every
stage gets its own wall seconds, CPU seconds and peak RSS (of the main process; the report's
figure workers are separate processes, counted in the run's overall peak from `os.wait4`).
Prints one line per stage, the totals against the targets of issue 13 (10x: under 10 s;
100x: under 30 s and 1.5 GB), and as the last line one JSON object. The machine may be
shared: the load average before and after the run is printed next to the times.
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

from bench_pipeline import ROOT, STAGE_DONE, copy_project
from memory import load_average

from survey_pipeline import demo
from survey_pipeline.spec import load_spec

# Issue 13's targets per scale: (wall seconds, peak RSS in MB or None).
TARGETS = {10: (10.0, None), 100: (30.0, 1500.0)}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def generate_panel_files(project: Path, scale: int, panels: Path | None, compressed: bool = False) -> dict:
    """Write the scaled panel into `project`'s data/ (or copy it from the `panels` cache)."""
    spec = load_spec(project / "questionnaires" / "wij_monitor.yaml")
    raw, population = project / "data" / "raw", project / "data" / "population"
    cached = panels / f"scale{scale}{'_bytecode' if compressed else ''}" if panels else None
    started = time.perf_counter()
    if cached is not None and (cached / "raw").is_dir():
        source = "cache"
    else:
        for folder in (raw, population):
            shutil.rmtree(folder, ignore_errors=True)
        panel = demo.write_demo(
            spec, raw, population, n_per_wave=scale * demo.DEFAULT_N_PER_WAVE, row_compress=compressed
        )
        del panel
        source = "generated"
        if cached is not None:
            shutil.rmtree(cached, ignore_errors=True)
            shutil.copytree(raw, cached / "raw")
            shutil.copytree(population, cached / "population")
    if source == "cache":
        for folder, name in ((raw, "raw"), (population, "population")):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(cached / name, folder)
    scale_invited(project / "questionnaires" / "wij_monitor.yaml", scale)
    sizes = {path.name: path.stat().st_size for path in sorted(raw.glob("*.sav"))}
    return {"source": source, "seconds": round(time.perf_counter() - started, 2), "sav_bytes": sizes}


def scale_invited(spec_path: Path, scale: int) -> None:
    """Multiply the spec's invited counts by `scale`: the spec refuses fewer invited than respondents."""
    text = spec_path.read_text(encoding="utf-8")
    scaled = re.sub(r"invited: (\d+)", lambda match: f"invited: {int(match.group(1)) * scale}", text)
    spec_path.write_text(scaled, encoding="utf-8")


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _peak_rss_mb_and_reset(pid: int) -> float:
    """Peak RSS (VmHWM) of `pid` since the last reset, in MB; then start a new peak."""
    with open(f"/proc/{pid}/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")
    return peak


def run_pipeline(project: Path) -> dict:
    """`survey-pipeline run` in `project`; wall, CPU and peak RSS per stage and in total."""
    command = [sys.executable, "-m", "survey_pipeline", "--project-dir", str(project), "run"]
    load_before = load_average()
    started = time.perf_counter()
    # cwd: `python -m` puts it first on sys.path, so run where no survey_pipeline package is
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stages: dict[str, dict] = {}
    log_tail: list[str] = []
    last_cpu, last_wall = 0.0, started
    assert process.stderr is not None
    for line in process.stderr:
        log_tail = (log_tail + [line])[-40:]
        match = STAGE_DONE.search(line)
        if match is None:
            continue
        now = time.perf_counter()
        cpu = _proc_cpu_seconds(process.pid)
        stages[match.group(1)] = {
            "logged_seconds": float(match.group(2)),
            "wall_seconds": round(now - last_wall, 2),  # since the previous stage: includes its imports
            "cpu_seconds": round(cpu - last_cpu, 2),
            "peak_rss_mb": round(_peak_rss_mb_and_reset(process.pid), 1),
        }
        last_cpu, last_wall = cpu, now
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"survey-pipeline run failed (exit {code}):\n{''.join(log_tail)}")
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        # the stage peaks were reset along the way: ru_maxrss holds the last stage's and the workers'
        "peak_rss_mb": max([round(usage.ru_maxrss / 1024, 1)] + [stage["peak_rss_mb"] for stage in stages.values()]),
        "stages": stages,
        "load_before": load_before,
        "load_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="respondents per wave as a multiple of the demo's")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="parameter override"
    )
    parser.add_argument("--panels", type=Path, help="keep generated panels here and reuse them")
    parser.add_argument(
        "--bytecode", action="store_true", help="bytecode-compressed .sav files (SPSS's default; the demo's are not)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (its path is printed)")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix=f"bench_scale{args.scale}_"))
    try:
        project = folder / "project"
        project.mkdir()
        copy_project(ROOT, project, args.overrides, git=False)
        generation = generate_panel_files(project, args.scale, args.panels, args.bytecode)
        result = {
            "scale": args.scale,
            "bytecode": args.bytecode,
            "overrides": args.overrides,
            "panel": generation,
            **run_pipeline(project),
        }
    finally:
        if args.keep:
            print(f"project kept in {folder / 'project'}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"scale {args.scale}: panel {generation['source']} in {generation['seconds']} s")
    for stage, figures in result["stages"].items():
        print(
            f"  {stage:<9} {figures['wall_seconds']:6.2f} s wall  {figures['cpu_seconds']:6.2f} s CPU  "
            f"{figures['peak_rss_mb']:7.1f} MB peak"
        )
    wall_target, memory_target = TARGETS.get(args.scale, (None, None))
    verdicts = []
    if wall_target is not None:
        verdicts.append(f"wall {'<' if result['wall_seconds'] < wall_target else '>='} {wall_target:g} s")
    if memory_target is not None:
        verdicts.append(f"peak {'<' if result['peak_rss_mb'] < memory_target else '>='} {memory_target:g} MB")
    print(
        f"  total     {result['wall_seconds']:6.2f} s wall  {result['cpu_seconds']:6.2f} s CPU  "
        f"{result['peak_rss_mb']:7.1f} MB peak  ({', '.join(verdicts) or 'no target'}; "
        f"load average {result['load_before']} before, {result['load_after']} after)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
