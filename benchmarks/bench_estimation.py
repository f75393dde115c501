"""Benchmark: rake N rows to 3 margins, then 10 proportions overall and by wijk.

    python benchmarks/bench_estimation.py --n 1000000 [--vs-r]

Each proportion has a calibration-aware SE and a logit (xlogit) interval. The job runs
three times on the same data: with 20 `proportion` calls (10 overall, 10 by wijk), with
two batched `proportions` calls, and as the plain numpy floor (`floor_numpy.py`); both
library runs must give the floor's estimates and SEs to 1e-9 relative. The last line of
output is one JSON object with n, seconds per phase, total_seconds (wall), cpu_seconds
(this process; on a shared machine wall time exceeds it) and peak_memory_mb (peak
resident set size of this process during the run, the data's own memory included)
for each run, the CPU-time ratios to the floor and the load average.
With --vs-r, R survey does the same job on the same data (written to a temporary
CSV) and the ratio of wall times is printed; R needs minutes to hours at large N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import floor_numpy
import numpy as np
import pandas as pd
from memory import load_average, peak_memory_mb, reset_peak_memory

from survey_pipeline import SurveyDesign
from survey_pipeline.core.design import Share

N_ITEMS = 10
AGE_SHARES = np.array([0.12, 0.22, 0.30, 0.36])
SEX_SHARES = np.array([0.45, 0.55])
N_WIJK = 30


def make_data(n: int, seed: int = 1) -> tuple[pd.DataFrame, dict]:
    """Synthetic panel: skewed age/sex/wijk, unequal base weights, 10 items with NaN and 99."""
    rng = np.random.default_rng(seed)
    wijk_shares = rng.dirichlet(np.full(N_WIJK, 5.0))
    data = {
        "age_group": rng.choice(4, n, p=AGE_SHARES[::-1]) + 1,
        "sex": rng.choice(2, n, p=SEX_SHARES) + 1,
        "wijk": rng.choice(N_WIJK, n, p=wijk_shares) + 1,
        "w0": rng.uniform(0.5, 2.5, n),
    }
    for i in range(N_ITEMS):
        p = 0.2 + 0.6 * rng.random() + 0.02 * (data["age_group"] - 2)
        item = np.where(rng.random(n) < p, 1.0, 2.0)
        item[rng.random(n) < 0.04] = 99.0
        item[rng.random(n) < 0.05] = np.nan
        data[f"q{i + 1}"] = item
    population = 10 * n
    margins = {
        "age_group": dict(zip(range(1, 5), population * AGE_SHARES)),
        "sex": dict(zip(range(1, 3), population * SEX_SHARES)),
        "wijk": dict(zip(range(1, N_WIJK + 1), population * wijk_shares)),
    }
    return pd.DataFrame(data), margins


ITEMS = [f"q{i + 1}" for i in range(N_ITEMS)]
FLOOR_RTOL = 1e-9


def run_python(df: pd.DataFrame, margins: dict) -> tuple[dict, list[pd.DataFrame]]:
    """The job with one `proportion` call per item and breakdown."""
    seconds = {}
    t0 = time.perf_counter()
    design = SurveyDesign(df, weights="w0")
    seconds["design"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raked = design.rake(margins, max_iter=100, tol=1e-10)
    seconds["rake"] = time.perf_counter() - t0
    results = []
    t0 = time.perf_counter()
    for i in range(N_ITEMS):
        results.append(raked.proportion(f"q{i + 1}", success=[1], exclude=[99], ci="logit"))
    seconds["proportions_overall"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(N_ITEMS):
        results.append(raked.proportion(f"q{i + 1}", success=[1], exclude=[99], by="wijk", ci="logit"))
    seconds["proportions_by_wijk"] = time.perf_counter() - t0
    return seconds, results


def run_batched(df: pd.DataFrame, margins: dict) -> tuple[dict, list[pd.DataFrame]]:
    """The job with one `proportions` call overall and one by wijk; results as `run_python`'s."""
    seconds = {}
    t0 = time.perf_counter()
    raked = SurveyDesign(df, weights="w0").rake(margins, max_iter=100, tol=1e-10)
    seconds["design_and_rake"] = time.perf_counter() - t0
    shares = [Share(item, success=[1], exclude=[99]) for item in ITEMS]
    results = []
    for phase, by in (("proportions_overall", None), ("proportions_by_wijk", "wijk")):
        t0 = time.perf_counter()
        batch = raked.proportions(shares, by=by, ci="logit")
        seconds[phase] = time.perf_counter() - t0
        results += [part.drop(columns="share") for _, part in batch.groupby("share", sort=True)]
    return seconds, results


def run_floor(df: pd.DataFrame, margins: dict) -> tuple[dict, np.ndarray]:
    """The plain numpy floor; values in `python_values` order."""
    t0 = time.perf_counter()
    out = floor_numpy.standard_job(df, margins, ITEMS)
    seconds = {"floor": time.perf_counter() - t0}
    values = []
    for estimate, se in zip(out["estimate"], out["se"]):
        values += [estimate[0], se[0], *estimate[1:], *se[1:]]
    return seconds, np.array(values)


def measured(job, df: pd.DataFrame, margins: dict) -> tuple[dict, object]:
    """Run `job`, with its wall and CPU time and the process's peak memory during it."""
    reset_peak_memory()
    cpu0 = time.process_time()
    seconds, result = job(df, margins)
    cpu = time.process_time() - cpu0
    figures = {
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "total_seconds": round(sum(seconds.values()), 4),
        "cpu_seconds": round(cpu, 4),
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    return figures, result


R_JOB = r"""
suppressMessages(library(survey))
args <- commandArgs(TRUE)
df <- read.csv(args[1])
m <- jsonlite::fromJSON(args[2])
pops <- lapply(names(m), function(v) { p <- data.frame(as.integer(names(m[[v]])), unlist(m[[v]])); names(p) <- c(v, "Freq"); p })
t0 <- Sys.time()
d <- svydesign(ids = ~1, weights = ~w0, data = df)
r <- rake(d, lapply(names(m), function(v) as.formula(paste0("~", v))), pops, control = list(maxit = 100, epsilon = 1e-10))
out <- list()
for (i in 1:10) {
  v <- paste0("q", i)
  s <- subset(r, !is.na(df[[v]]) & df[[v]] != 99)
  f <- as.formula(sprintf("~as.numeric(%s %%in%% 1)", v))
  ci <- svyciprop(f, s, method = "xlogit")
  out[[length(out) + 1]] <- c(coef(ci), SE(ci))
  b <- svyby(f, ~wijk, s, svyciprop, method = "xlogit", vartype = "se")
  out[[length(out) + 1]] <- c(b[, 2], b[, 3])
}
cat(sprintf("%.17g", as.numeric(difftime(Sys.time(), t0, units = "secs"))), "\n")
cat(sprintf("%.17g", unlist(out)), "\n")
"""


def run_r(df: pd.DataFrame, margins: dict) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        df.to_csv(data, index=False)
        pops = {v: {str(k): t for k, t in m.items()} for v, m in margins.items()}
        (Path(tmp) / "margins.json").write_text(json.dumps(pops))
        (Path(tmp) / "job.R").write_text(R_JOB)
        done = subprocess.run(
            ["Rscript", str(Path(tmp) / "job.R"), str(data), str(Path(tmp) / "margins.json")],
            capture_output=True,
            text=True,
            check=True,
        )
    lines = done.stdout.strip().splitlines()
    return float(lines[0]), np.array([float(v) for v in lines[1].split()])


def python_values(results: list[pd.DataFrame]) -> np.ndarray:
    """Estimates and SEs in the order the R job prints them."""
    values = []
    for i in range(N_ITEMS):
        overall, by = results[i], results[N_ITEMS + i]
        values += [overall["estimate"].iloc[0], overall["se"].iloc[0]]
        values += list(by["estimate"]) + list(by["se"])
    return np.array(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--vs-r", action="store_true", help="also time R survey on the same data")
    args = parser.parse_args(argv)

    df, margins = make_data(args.n)
    single, results = measured(run_python, df, margins)
    batched, batch_results = measured(run_batched, df, margins)
    floor, floor_values = measured(run_floor, df, margins)
    differences = {}
    for name, values in (("single", python_values(results)), ("batched", python_values(batch_results))):
        differences[name] = float(np.max(np.abs(values / floor_values - 1)))
        if not differences[name] <= FLOOR_RTOL:
            print(
                f"{name}: estimates or SEs differ from the numpy floor by {differences[name]:.2e} relative",
                file=sys.stderr,
            )
            return 1
    for name, figures in (("20 proportion calls", single), ("2 proportions calls", batched), ("numpy floor", floor)):
        print(
            f"{name:>22}: {figures['total_seconds']:8.3f} s wall, {figures['cpu_seconds']:8.3f} s CPU, "
            f"peak {figures['peak_memory_mb']:.0f} MB"
        )
    report = {
        "n": args.n,
        **single,
        "batched": batched,
        "floor": floor,
        "cpu_ratio_to_floor": round(single["cpu_seconds"] / floor["cpu_seconds"], 2),
        "batched_cpu_ratio_to_floor": round(batched["cpu_seconds"] / floor["cpu_seconds"], 2),
        "max_rel_diff_vs_floor": differences,
        "load_average": load_average(),
    }
    total = single["total_seconds"]
    if args.vs_r:
        if shutil.which("Rscript") is None:
            print("Rscript not found: skipping --vs-r", file=sys.stderr)
        else:
            r_seconds, r_values = run_r(df, margins)
            ours = python_values(results)
            rel = np.abs(ours / r_values - 1)
            print(f"{'R survey':>22}: {r_seconds:8.3f} s  (ratio R / python = {r_seconds / total:.0f})")
            print(f"{'max rel. diff vs R':>22}: {np.nanmax(rel):.2e} (estimates and SEs)")
            report["r_seconds"] = round(r_seconds, 3)
            report["r_ratio"] = round(r_seconds / total, 1)
            report["max_rel_diff_vs_r"] = float(np.nanmax(rel))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
