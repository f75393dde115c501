"""Benchmark: a mean by 30 wijken and a 4 x 30 Rao-Scott crosstab on N raked rows.

    python benchmarks/bench_analyses.py --n 1000000

The data are `bench_estimation.make_data` (skewed age/sex/wijk, unequal base weights) plus a
numeric 1-10 mark (5% missing) and a four-category item (4% missing); the design is raked to
age (4) x sex (2) x wijk (30) first, so both analyses carry the calibration-aware variance as
in the pipeline. Timed: `SurveyDesign.mean("mark", by="wijk")` and
`SurveyDesign.chisq("item4", "wijk", statistic="F")`, each on its own raked design (raked
separately, so neither finds levels the other cached). Target at N = 1,000,000: each under 1 s of CPU
time (the machine is shared: wall time grows with the load average, printed). The last line of output is one JSON
object with n, wall and CPU seconds per analysis, the raking time, the load average and whether
both met the target.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from bench_estimation import make_data
from memory import load_average

from survey_pipeline import SurveyDesign

TARGET_SECONDS = 1.0


def add_items(df, seed: int = 2):
    """A numeric 1-10 mark and a four-category item, both with missing values."""
    rng = np.random.default_rng(seed)
    n = len(df)
    mark = np.clip(np.round(rng.normal(6.8 + 0.2 * (df["age_group"].to_numpy() - 2), 1.3)), 1, 10)
    mark[rng.random(n) < 0.05] = np.nan
    item = rng.choice(4, n, p=[0.35, 0.30, 0.20, 0.15]) + 1.0
    item[rng.random(n) < 0.04] = np.nan
    return df.assign(mark=mark, item4=item)


def timed(job):
    """(result, wall seconds, CPU seconds) of `job()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = job()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    df, margins = make_data(args.n)
    df = add_items(df)

    def raked() -> SurveyDesign:
        return SurveyDesign(df, weights="w0").rake(margins, max_iter=100, tol=1e-10)

    for_mean, rake_wall, _ = timed(raked)
    for_chisq = raked()  # its own design: no levels cached by the other analysis
    mean, mean_wall, mean_cpu = timed(lambda: for_mean.mean("mark", by="wijk"))
    test, chisq_wall, chisq_cpu = timed(lambda: for_chisq.chisq("item4", "wijk", statistic="F"))
    print(f"rake: {rake_wall:.3f} s wall")
    print(f"mean by wijk ({len(mean)} domains): {mean_wall:.3f} s wall, {mean_cpu:.3f} s CPU")
    print(
        f"chisq item4 x wijk (F = {test['statistic']:.3f}, ndf = {test['ndf']:.3f}, ddf = {test['ddf']:.1f}): "
        f"{chisq_wall:.3f} s wall, {chisq_cpu:.3f} s CPU"
    )
    result = {
        "n": args.n,
        "rake_seconds": round(rake_wall, 3),
        "mean_by_wijk": {"seconds": round(mean_wall, 3), "cpu_seconds": round(mean_cpu, 3), "domains": len(mean)},
        "chisq_4x30": {"seconds": round(chisq_wall, 3), "cpu_seconds": round(chisq_cpu, 3)},
        "target_seconds": TARGET_SECONDS,
        "met": bool(mean_cpu < TARGET_SECONDS and chisq_cpu < TARGET_SECONDS),
        "load_average": load_average(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
