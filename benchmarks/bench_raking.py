"""Benchmark: `rake_weights` on N rows to 3 margins (age 4, sex 2, wijk 30 levels).

    python benchmarks/bench_raking.py --n 1000000 [--repeat 5] [--vs-r]

Times the pure-numpy raking the weighting stage calls (target: < 0.5 s at 1,000,000
rows on 2 cores). The last line is one JSON object with n, the best and median
seconds over the repeats, sweeps, max_abs_error and peak_memory_mb. With --vs-r,
R survey's rake() (maxit = 100, epsilon = 1e-10) runs on the same data and the
largest relative weight difference is printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from survey_pipeline.core.calibration import rake_weights

SIZES = (4, 2, 30)


def make_data(n: int, seed: int = 2) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Unequal base weights and skewed category codes; population totals of 10 N."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 2.5, n)
    margins = []
    for k in SIZES:
        sample_shares = rng.dirichlet(np.full(k, 3.0))
        population_shares = rng.dirichlet(np.full(k, 3.0))
        codes = rng.choice(k, n, p=sample_shares)
        margins.append((codes, 10 * n * population_shares))
    return base, margins


R_JOB = r"""
suppressMessages(library(survey))
args <- commandArgs(TRUE)
df <- read.csv(args[1])
tot <- read.csv(args[2])
pops <- lapply(c("m0", "m1", "m2"), function(v) { p <- tot[tot$margin == v, c("code", "total")]; names(p) <- c(v, "Freq"); p })
t0 <- Sys.time()
d <- svydesign(ids = ~1, weights = ~base, data = df)
r <- rake(d, list(~m0, ~m1, ~m2), pops, control = list(maxit = 100, epsilon = 1e-10))
cat(sprintf("%.17g", as.numeric(difftime(Sys.time(), t0, units = "secs"))), "\n")
writeLines(sprintf("%.17g", weights(r)), args[3])
"""


def run_r(base: np.ndarray, margins: list) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cols = {"base": base} | {f"m{i}": codes for i, (codes, _) in enumerate(margins)}
        header = ",".join(cols)
        np.savetxt(
            tmp / "data.csv",
            np.column_stack(list(cols.values())),
            delimiter=",",
            header=header,
            comments="",
            fmt="%.17g",
        )
        rows = [f"m{i},{k},{float(t)!r}" for i, (_, totals) in enumerate(margins) for k, t in enumerate(totals)]
        (tmp / "totals.csv").write_text("margin,code,total\n" + "\n".join(rows) + "\n")
        (tmp / "job.R").write_text(R_JOB)
        done = subprocess.run(
            ["Rscript", str(tmp / "job.R"), str(tmp / "data.csv"), str(tmp / "totals.csv"), str(tmp / "w.txt")],
            capture_output=True,
            text=True,
            check=True,
        )
        weights = np.loadtxt(tmp / "w.txt")
    return float(done.stdout.split()[0]), weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vs-r", action="store_true")
    args = parser.parse_args(argv)

    base, margins = make_data(args.n)
    times = []
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = rake_weights(base, margins, max_iter=100, tol=1e-10)
        times.append(time.perf_counter() - t0)
    assert result is not None and result.converged
    print(
        f"rake_weights n={args.n}: best {min(times):.3f} s, median {statistics.median(times):.3f} s, "
        f"{result.iterations} sweeps, max |margin error| {result.max_abs_error:.2e}"
    )
    report = {
        "n": args.n,
        "best_seconds": round(min(times), 4),
        "median_seconds": round(statistics.median(times), 4),
        "sweeps": result.iterations,
        "max_abs_error": result.max_abs_error,
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.vs_r:
        if shutil.which("Rscript") is None:
            print("Rscript not found: skipping --vs-r", file=sys.stderr)
        else:
            r_seconds, r_weights = run_r(base, margins)
            rel = float(np.max(np.abs(result.weights / r_weights - 1)))
            print(f"R rake(): {r_seconds:.2f} s (ratio {r_seconds / min(times):.0f}), max rel. weight diff {rel:.2e}")
            report |= {"r_seconds": round(r_seconds, 3), "max_rel_diff_vs_r": rel}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
