"""Benchmark: the estimate stage's computation (`estimate.estimate_all`) on the demo panel.

    python benchmarks/bench_estimate_stage.py [--n 3000] [--repeat 3]

The demo panel (`survey_pipeline.demo`, no faults) with weights raked per wave to the
demo margins, then indicators, distributions and wave changes with the breakdowns,
interval and publication rule of params.yaml, as `survey-pipeline estimate` computes
them (without reading and writing the tables). This is where per-call overhead shows:
about a thousand proportions and a hundred clustered wave changes. The last line of
output is one JSON object: n per wave, rows out, best and median wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pandas as pd

from survey_pipeline import SurveyDesign, demo
from survey_pipeline import estimate as est
from survey_pipeline.settings import load_params
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def weighted_panel(spec, n: int, cal: est.Calibration) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Demo rows of every wave with raked weights (as the weight stage gives them), and the margins."""
    panel = demo.generate_panel(spec, n_per_wave=n, faults=False)
    parts = []
    for wave, frame in panel.waves.items():
        frame = frame[frame[list(cal.variables)].notna().all(axis=1)].reset_index(drop=True)
        totals = est.wave_margins(panel.margins, wave, cal)
        weights = SurveyDesign(frame.assign(weight=1.0), weights="weight").rake(totals).weights
        parts.append(frame.assign(weight=weights))
    return pd.concat(parts, ignore_index=True), panel.margins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=demo.DEFAULT_N_PER_WAVE, help="respondents per wave (about)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    params = load_params(ROOT / "params.yaml")
    spec = load_spec(ROOT / params.spec)
    settings = params.estimate
    cal = est.Calibration.of(params.weight)
    data, margins = weighted_panel(spec, args.n, cal)
    wall, cpu = [], []
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = est.estimate_all(spec, data, margins, settings, cal)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    rows = {name: len(getattr(result, name)) for name in ("indicators", "changes", "distributions")}
    print(f"estimate_all, {args.n} per wave: best {min(wall):.3f} s wall, {min(cpu):.3f} s CPU; rows {rows}")
    print(json.dumps({
        "n_per_wave": args.n,
        "rows": rows,
        "best_seconds": round(min(wall), 4),
        "median_seconds": round(statistics.median(wall), 4),
        "best_cpu_seconds": round(min(cpu), 4),
        "median_cpu_seconds": round(statistics.median(cpu), 4),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
