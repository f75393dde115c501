"""Benchmark: the estimate stage's small-area estimation (`small_area.small_area_estimates`) on the demo panel.

    python benchmarks/bench_small_area.py [--n 3000 | --scale 10] [--repeat 5]

The demo panel as `bench_estimate_stage.py` builds it (no faults, raked per wave), run
through `estimate.estimate_all` until it calls `small_area_estimates`; that call's
arguments (every indicator x wave over the wijken, the small-area settings of
params.yaml: 200 bootstrap draws per fit) are then timed `--repeat` times. The last
line of output is one JSON object: fits, rows, best and median wall and CPU seconds,
the share of wijk cells published and the load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from bench_estimate_stage import weighted_panel
from memory import load_average

from survey_pipeline import demo
from survey_pipeline.settings import load_params
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.estimate import stage as est
from survey_pipeline.stages.estimate.small_area import published_share, read_covariates

ROOT = Path(__file__).resolve().parents[1]


class _Recorded(Exception):
    """Stops `estimate_all` once the small-area call's arguments are recorded."""

    def __init__(self, arguments: tuple) -> None:
        super().__init__("recorded")
        self.arguments = arguments


def _record(*arguments):
    raise _Recorded(arguments)


def small_area_arguments(spec, params, n: int) -> tuple:
    """The arguments `estimate_all` passes to `small_area_estimates` on the demo panel of `n` per wave."""
    data, margins = weighted_panel(spec, n, params.weight)
    covariates = read_covariates(params.estimate.small_area, ROOT, spec)
    timed = est.small_area_estimates
    est.small_area_estimates = _record
    try:
        est.estimate_all(spec, data, margins, params.estimate, params.weight, covariates=covariates)
    except _Recorded as recorded:
        return recorded.arguments
    finally:
        est.small_area_estimates = timed
    raise RuntimeError("estimate_all did not call small_area_estimates: is estimate.small_area enabled?")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--n", type=int, help="respondents per wave (about)")
    size.add_argument("--scale", type=int, default=1, help="respondents per wave as a multiple of the demo's")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("survey_pipeline").setLevel(logging.ERROR)  # the fits' diagnostics are not the point here

    params = load_params(ROOT / "params.yaml")
    spec = load_spec(ROOT / params.spec)
    n = args.n if args.n is not None else args.scale * demo.DEFAULT_N_PER_WAVE
    arguments = small_area_arguments(spec, params, n)
    est.small_area_estimates(*arguments)  # once untimed: scipy's imports
    wall, cpu = [], []
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        table = est.small_area_estimates(*arguments)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    fits = int(table.groupby(["indicator_id", "wave"]).ngroups)
    load = load_average()
    print(
        f"small_area_estimates, {n} per wave: {fits} fits, {len(table)} rows; best {min(wall):.3f} s wall, "
        f"{min(cpu):.3f} s CPU (median {statistics.median(cpu):.3f}); load average {load}"
    )
    print(
        json.dumps(
            {
                "n_per_wave": n,
                "fits": fits,
                "rows": len(table),
                "bootstrap": params.estimate.small_area.bootstrap,
                "best_seconds": round(min(wall), 4),
                "median_seconds": round(statistics.median(wall), 4),
                "best_cpu_seconds": round(min(cpu), 4),
                "median_cpu_seconds": round(statistics.median(cpu), 4),
                "published_share": round(published_share(table), 4),
                "load_average": load,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
