"""Design-based simulation study of the wijk estimates: direct versus Fay-Herriot (model-based).

    python benchmarks/sae_simulation.py [--replicates 200] [--bootstrap B] [--seed 1]

A fixed synthetic population (the demo's wave 2021: about 198,000 residents 18+ in 30
wijken, `survey_pipeline.demo`'s answer model, its wijk effects driven by the wijk
covariates of `data/population/wijk_covariates.csv` plus a residual) is sampled
`--replicates` times as the demo panel is: about 3,000 respondents, Poisson sampling
with the demo's selection propensities (older, female and low-need residents
over-represented). Each sample is raked to the age, sex and wijk margins
(`SurveyDesign.rake`), and per wijk and indicator we compute

- the direct estimate with its Korn-Graubard 95% interval (`SurveyDesign.proportions`,
  calibration-aware SE; the interval the pipeline publishes by), and
- the model-based estimate as the estimate stage makes it (`small_area.py`, settings from
  params.yaml `estimate.small_area`: covariates, method, benchmarking): design effects
  smoothed by the variance function (`sae_adjust.smooth_design_effects`), the arcsine
  Fay-Herriot model on the wijk covariates (`sae.fay_herriot_arcsine`, parametric-bootstrap
  MSE with `--bootstrap` draws), benchmarked to the direct city estimate
  (`sae_adjust.benchmark`), with the interval estimate +- 1.96 sqrt(MSE).

Against the population's true wijk proportions: per wijk the relative RMSE (RMSE / true
value) and the coverage of the 95% interval, for both. Writes
`benchmarks/output/sae_simulation.{csv,md}` and `sae_simulation.svg`, prints the summary
(last line: one JSON object) and exits 1 when a target is missed: median relative RMSE
of the model-based estimate at most 0.7 x the direct one's, mean coverage over wijken
of the model-based interval within [93%, 97%]. The answers carry no "weet niet": the
study is about sampling error.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from survey_pipeline import SurveyDesign, demo
from survey_pipeline.core.design import Share
from survey_pipeline.sae import fay_herriot_arcsine
from survey_pipeline.sae_adjust import benchmark, smooth_design_effects
from survey_pipeline.settings import SmallAreaSettings, load_params
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "output"
WAVE = 2021
SAMPLE_SIZE = 3000  # respondents per wave of the demo panel
Z95 = 1.959963984540054
# indicator: (label, the questions whose success makes it, in routing order)
INDICATORS = {
    "heard": ("gehoord van WIJ", ("heard",)),
    "contact_of_residents": ("contact met WIJ (alle bewoners)", ("heard", "contact")),
    "wmo_client": ("Wmo-client", ("wmo_client",)),
}
TARGET_RMSE_RATIO = 0.7
TARGET_COVERAGE = (0.93, 0.97)


def synthetic_population(spec, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Residents of the demo wave (wijk, age_group, sex, one 0/1 column per indicator),
    the wave's wijk covariates and every resident's relative selection propensity."""
    rng = np.random.default_rng(seed)
    cells = demo.population_cells(spec.waves)
    covariates = demo.wijk_covariates(cells)
    world = demo._make_world(rng, demo.need_index(covariates))
    intercepts = demo.solve_intercepts(spec, cells, world)
    cells = cells[cells["wave"] == WAVE]
    repeat = cells["count"].to_numpy()
    people = pd.DataFrame({c: np.repeat(cells[c].to_numpy(), repeat) for c in ("wijk", "age_group", "sex")})
    wijk, age, sex = (people[c].to_numpy() for c in ("wijk", "age_group", "sex"))
    traits = {t: rng.normal(0.0, 1.0, len(people)) for t in demo.TRAITS}
    success = {}
    for name in ("heard", "contact", "wmo_client"):
        model = demo.ITEM_MODELS[name]
        lp = demo._linear_predictor(model, name, world, wijk, age, sex, traits)
        success[name] = rng.random(len(people)) < expit(intercepts[(name, WAVE)] + lp)
    for indicator, (_, questions) in INDICATORS.items():
        people[indicator] = np.logical_and.reduce([success[q] for q in questions]).astype(float)
    propensity = (
        np.asarray(demo.PROPENSITY_AGE)[age - 1]
        * np.asarray(demo.PROPENSITY_SEX)[sex - 1]
        * world.wijk_propensity[wijk - 1]
    )
    wave_covariates = covariates[covariates["wave"] == WAVE].sort_values("wijk").reset_index(drop=True)
    return people, wave_covariates, propensity


def one_replicate(
    people, inclusion, margins, design_matrix, population, rng, bootstrap, settings: SmallAreaSettings
) -> dict[str, pd.DataFrame]:
    """Direct and model-based wijk estimates of every indicator in one sample."""
    sample = people[rng.random(len(people)) < inclusion].reset_index(drop=True)
    design = SurveyDesign(sample.assign(w=1.0), weights="w").rake(margins)
    shares = [Share(name, [1.0]) for name in INDICATORS]
    by_wijk = design.proportions(shares, by="wijk", ci="beta")
    city = design.proportions(shares, ci="beta")["estimate"].to_numpy()
    out = {}
    for position, name in enumerate(INDICATORS):
        rows = by_wijk[by_wijk["share"] == position].sort_values("wijk")
        p, se, n = (rows[c].to_numpy(float) for c in ("estimate", "se", "n"))
        gvf = smooth_design_effects(se**2, p, n)
        fit = fay_herriot_arcsine(
            p,
            gvf.arcsine_sample_size(float(city[position])),
            design_matrix,
            settings.method,
            replicates=bootstrap,
            seed=int(rng.integers(2**31)),
        )
        estimate, mse = fit.estimate, fit.mse
        if settings.benchmarking != "none":
            bench = benchmark(estimate, mse, population, float(city[position]), settings.benchmarking)
            estimate, mse = bench.estimate, bench.mse
        half = Z95 * np.sqrt(mse)
        out[name] = pd.DataFrame(
            {
                "direct": p,
                "direct_lower": rows["ci_lower"].to_numpy(),
                "direct_upper": rows["ci_upper"].to_numpy(),
                "model": estimate,
                "model_lower": estimate - half,
                "model_upper": estimate + half,
                "n": n,
                "converged": fit.converged,
            }
        )
    return out


def summarise(results: dict[str, list[pd.DataFrame]], truth: pd.DataFrame) -> pd.DataFrame:
    """Per indicator and wijk: true value, mean n, relative RMSE and coverage of both estimates."""
    rows = []
    for name, replicates in results.items():
        stacked = np.stack([r.drop(columns="converged").to_numpy(float) for r in replicates])  # rep x wijk x col
        columns = list(replicates[0].columns.drop("converged"))
        col = {c: stacked[:, :, i] for i, c in enumerate(columns)}
        true = truth[name].to_numpy()
        for kind in ("direct", "model"):
            error = col[kind] - true
            covered = (col[f"{kind}_lower"] <= true) & (true <= col[f"{kind}_upper"])
            col[f"rrmse_{kind}"] = np.sqrt((error**2).mean(axis=0)) / true
            col[f"coverage_{kind}"] = covered.mean(axis=0)
            col[f"bias_{kind}"] = error.mean(axis=0)
        for i, wijk in enumerate(truth["wijk"]):
            rows.append(
                {
                    "indicator": name,
                    "wijk": int(wijk),
                    "population": int(truth["population"].iloc[i]),
                    "true": true[i],
                    "mean_n": col["n"][:, i].mean(),
                    "rrmse_direct": col["rrmse_direct"][i],
                    "rrmse_model": col["rrmse_model"][i],
                    "coverage_direct": col["coverage_direct"][i],
                    "coverage_model": col["coverage_model"][i],
                    "bias_direct": col["bias_direct"][i],
                    "bias_model": col["bias_model"][i],
                }
            )
    return pd.DataFrame(rows)


def overall(table: pd.DataFrame) -> pd.DataFrame:
    """Per indicator: medians of the relative RMSEs, their ratio, mean coverages, target check."""
    summary = table.groupby("indicator", sort=False).agg(
        median_rrmse_direct=("rrmse_direct", "median"),
        median_rrmse_model=("rrmse_model", "median"),
        mean_coverage_direct=("coverage_direct", "mean"),
        mean_coverage_model=("coverage_model", "mean"),
        min_coverage_model=("coverage_model", "min"),
    )
    summary["rrmse_ratio"] = summary["median_rrmse_model"] / summary["median_rrmse_direct"]
    low, high = TARGET_COVERAGE
    summary["meets_targets"] = (summary["rrmse_ratio"] <= TARGET_RMSE_RATIO) & summary["mean_coverage_model"].between(
        low, high
    )
    return summary.reset_index()


def figure(table: pd.DataFrame, path: Path) -> None:
    """Relative RMSE and coverage per wijk (wijken ordered by mean sample size), per indicator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(INDICATORS)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.5), sharex=True)
    for column, name in enumerate(names):
        part = table[table["indicator"] == name].sort_values("mean_n").reset_index(drop=True)
        x = np.arange(len(part))
        top, bottom = axes[0, column], axes[1, column]
        top.plot(x, part["rrmse_direct"], "o-", label="direct", color="#888888")
        top.plot(x, part["rrmse_model"], "s-", label="modelschatting", color="#c0392b")
        top.set_title(INDICATORS[name][0])
        top.set_ylabel("relatieve RMSE")
        bottom.plot(x, part["coverage_direct"], "o-", color="#888888")
        bottom.plot(x, part["coverage_model"], "s-", color="#c0392b")
        bottom.axhspan(*TARGET_COVERAGE, color="#dddddd", zorder=0)
        bottom.axhline(0.95, color="black", linewidth=0.5)
        bottom.set_ylim(0.7, 1.0)
        bottom.set_ylabel("dekking 95%-interval")
        bottom.set_xlabel("wijken, oplopend naar gemiddelde steekproefomvang")
        top.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200, help="samples drawn (default 200)")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        help="bootstrap draws per MSE (default: estimate.small_area.bootstrap of params.yaml)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    start, cpu = time.perf_counter(), time.process_time()
    params = load_params(ROOT / "params.yaml")
    spec = load_spec(ROOT / params.spec)
    settings = params.estimate.small_area
    if args.bootstrap is None:
        args.bootstrap = settings.bootstrap
    people, covariates, propensity = synthetic_population(spec, args.seed)
    inclusion = np.minimum(1.0, SAMPLE_SIZE * propensity / propensity.sum())
    margins = {c: people.groupby(c).size().astype(float).to_dict() for c in ("age_group", "sex", "wijk")}
    design_matrix = np.column_stack(
        [np.ones(len(covariates)), covariates[list(settings.covariates)].to_numpy(float) / 100.0]
    )
    truth = people.groupby("wijk")[list(INDICATORS)].mean().reset_index()
    truth["population"] = people.groupby("wijk").size().to_numpy()
    rng = np.random.default_rng(args.seed + 1)
    results: dict[str, list[pd.DataFrame]] = {name: [] for name in INDICATORS}
    not_converged = 0
    for _ in range(args.replicates):
        for name, frame in one_replicate(
            people,
            inclusion,
            margins,
            design_matrix,
            truth["population"].to_numpy(float),
            rng,
            args.bootstrap,
            settings,
        ).items():
            results[name].append(frame)
            not_converged += int(not frame["converged"].iloc[0])
    table = summarise(results, truth)
    summary = overall(table)

    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "sae_simulation.csv", index=False, float_format="%.6g")
    with open(args.output / "sae_simulation.md", "w", encoding="utf-8") as handle:
        handle.write(
            f"# SAE simulation: {args.replicates} samples, {args.bootstrap} bootstrap draws, seed {args.seed}\n\n"
        )
        handle.write(summary.to_markdown(index=False, floatfmt=".3f") + "\n\n")
        handle.write(table.to_markdown(index=False, floatfmt=".3f") + "\n")
    figure(table, args.output / "sae_simulation.svg")

    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    result = {
        "replicates": args.replicates,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "fits_not_converged": not_converged,
        "indicators": {
            r.indicator: {
                "rrmse_ratio": round(r.rrmse_ratio, 3),
                "median_rrmse_direct": round(r.median_rrmse_direct, 3),
                "median_rrmse_model": round(r.median_rrmse_model, 3),
                "mean_coverage_direct": round(r.mean_coverage_direct, 3),
                "mean_coverage_model": round(r.mean_coverage_model, 3),
                "meets_targets": bool(r.meets_targets),
            }
            for r in summary.itertuples()
        },
        "wall_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }
    print(json.dumps(result))
    return 0 if summary["meets_targets"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
