"""Export the demo Fay-Herriot data set: tests/reference/data/sae_demo.csv (run once).

One row per wijk (30 areas) of the demo panel's 2021 wave: the direct estimate of the
indicator `familiar` and its sampling variance (SE^2, calibration-aware linearisation),
both computed by the estimate stage's own functions, unsuppressed; and two area-level
covariates from the population cells: the wijk's shares of residents aged 18-34 and
65+. Run from the repository root, in the project's venv, after `make run`:

    .venv/bin/python tests/reference/sae/export_sae_demo.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from survey_pipeline import contracts
from survey_pipeline import indicators as ind
from survey_pipeline.artifacts import read_table
from survey_pipeline.settings import load_params, upstream_settings
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.estimate import stage as est

WAVE = 2021
INDICATOR = "familiar"
OUT = Path("tests/reference/data/sae_demo.csv")


def main() -> None:
    params = load_params("params.yaml")
    spec = load_spec(params.spec)
    settings = params.estimate
    weighting = upstream_settings({"weight": Path("outputs/weight")}, params)["weight"]
    valid = read_table(Path("outputs/validate/valid.parquet"), contracts.ValidateValid, spec)
    weights = read_table(Path("outputs/weight/weights.parquet"), contracts.WeightWeights, spec)
    data, _ = est.join_weights(valid, weights, spec)
    rows = data[data["wave"] == WAVE].reset_index(drop=True)
    indicator = next(i for i in spec.indicators if i.id == INDICATOR)
    frame, _ = ind.add_outcomes(spec, rows, [indicator])
    margins = est.wave_margins(est.read_targets(Path(weighting.target_file), spec, weighting), WAVE, weighting)
    design, _ = est.wave_design(frame, margins, weighting, settings.calibration_tolerance)
    levels = est.estimate_indicators(spec, design, WAVE, settings, [indicator])
    by_wijk = levels[levels["breakdown"] == "wijk"]

    cells = pd.read_csv("data/population/cells.csv")
    cells = cells[cells["wave"] == WAVE]
    people = cells.groupby(["wijk", "age_group"])["count"].sum().unstack("age_group")
    shares = people.div(people.sum(axis=1), axis=0)

    out = pd.DataFrame(
        {
            "wijk": by_wijk["breakdown_code"].astype(int).to_numpy(),
            "direct": by_wijk["estimate"].to_numpy(),
            "sampling_variance": by_wijk["se"].to_numpy() ** 2,
            "n": by_wijk["n"].astype(int).to_numpy(),
        }
    )
    out["share_18_34"] = out["wijk"].map(shares[1]).to_numpy()
    out["share_65_plus"] = out["wijk"].map(shares[4]).to_numpy()
    if out.isna().any().any() or len(out) != 30:
        raise SystemExit("expected 30 wijken with an estimate, a variance and population shares")
    out.to_csv(OUT, index=False, float_format="%.17g")
    print(f"wrote {OUT} ({len(out)} areas)")


if __name__ == "__main__":
    main()
