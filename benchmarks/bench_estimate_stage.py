"""Benchmark: the estimate stage's computation (`estimate.estimate_all`) on the demo panel.

    python benchmarks/bench_estimate_stage.py [--n 3000 | --scale 10] [--repeat 3]

The demo panel (`survey_pipeline.demo`, no faults; deterministic: the demo seed) with
`--n` respondents per wave, or `--scale` times the demo's, with weights raked per wave to the
demo margins, then indicators, distributions and wave changes with the breakdowns,
interval and publication rule of params.yaml, as `survey-pipeline estimate` computes
them (small-area estimates with the covariates of params.yaml; without reading and writing the tables). This is where per-call overhead shows:
about a thousand proportions and a hundred clustered wave changes. The last line of
output is one JSON object: n per wave, rows in and out, best and median wall and CPU
seconds, the peak resident memory of the process during `estimate_all` (the panel's own
memory included; the peak is reset after generating it) and the load average.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pandas as pd
from memory import load_average, peak_memory_mb, reset_peak_memory

from survey_pipeline import SurveyDesign, demo
from survey_pipeline.settings import WeightSettings, load_params
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.estimate import stage as est
from survey_pipeline.stages.estimate.small_area import read_covariates

ROOT = Path(__file__).resolve().parents[1]


def weighted_panel(spec, n: int, weighting: WeightSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Demo rows of every wave with raked weights (as the weight stage gives them), and the margins."""
    panel = demo.generate_panel(spec, n_per_wave=n, faults=False)
    parts = []
    for wave, frame in panel.waves.items():
        frame = frame[frame[list(weighting.weighting_variables)].notna().all(axis=1)].reset_index(drop=True)
        totals = est.wave_margins(panel.margins, wave, weighting)
        weights = SurveyDesign(frame.assign(weight=1.0), weights="weight").rake(totals).weights
        parts.append(frame.assign(weight=weights))
    return pd.concat(parts, ignore_index=True), panel.margins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--n", type=int, help="respondents per wave (about)")
    size.add_argument("--scale", type=int, default=1, help="respondents per wave as a multiple of the demo's")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    params = load_params(ROOT / "params.yaml")
    spec = load_spec(ROOT / params.spec)
    settings = params.estimate
    weighting = params.weight
    n = args.n if args.n is not None else args.scale * demo.DEFAULT_N_PER_WAVE
    data, margins = weighted_panel(spec, n, weighting)
    covariates = read_covariates(settings.small_area, ROOT, spec) if settings.small_area.enabled else None
    reset_peak_memory()
    wall, cpu = [], []
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = est.estimate_all(spec, data, margins, settings, weighting, covariates=covariates)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    rows = {name: len(getattr(result, name)) for name in ("indicators", "changes", "distributions")}
    peak = peak_memory_mb()
    load = load_average()
    print(
        f"estimate_all, {n} per wave ({len(data)} rows): best {min(wall):.3f} s wall, {min(cpu):.3f} s CPU, "
        f"peak {peak:.0f} MB; rows {rows}; load average {load}"
    )
    print(
        json.dumps(
            {
                "n_per_wave": n,
                "rows_in": len(data),
                "rows": rows,
                "best_seconds": round(min(wall), 4),
                "median_seconds": round(statistics.median(wall), 4),
                "best_cpu_seconds": round(min(cpu), 4),
                "median_cpu_seconds": round(statistics.median(cpu), 4),
                "peak_memory_mb": round(peak, 1),
                "load_average": load,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
