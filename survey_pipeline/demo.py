"""Synthetic demo panel: three waves of the WIJ-monitor and their population margins.

`python -m survey_pipeline.demo` writes `data/raw/wij_panel_<wave>.sav` with a synthetic
provider's receipt `data/raw/receipt.csv` (rows per wave), `data/population/margins.csv`, the joint
table `data/population/cells.csv`, the auxiliary `data/population/wijk_covariates.csv` and the
registration figures `data/registrations/registrations.csv` (`REGISTRATION_VALUES`, source
"synthetisch (demo)");
`generate_panel(spec, n_per_wave, seed)` returns the
same data as frames so tests can make small panels. Everything is synthetic.

The model, in short:
- Population (18+) per wave: a fixed table of the 30 wijken (size, share young and
  old), split by age group and sex. Margins are sums of that integer joint table,
  so every margin of a wave has the same total.
- Panel: each member has a participation pattern over the waves (about 60% of the
  distinct respondents answer in more than one wave), a fixed wijk, sex and birth
  year (the age group follows the birth year), and two stable latent traits
  (engagement with WIJ, satisfaction) that correlate answers across waves.
  Selection is proportional to population x propensity(age) x propensity(sex) x
  propensity(wijk): older and female residents are over-represented.
- Wijk covariates (synthetic, CBS Kerncijfers style): % 18-34, % 65+, % single-person households,
  % low income, % migration background. A wijk's social-care need is a linear function of
  the last two (`need_index`); the wijk effect of a question is its `need` loading times
  that index plus a smaller residual N(0, wijk_sd), so the covariates predict the wijk truth.
- Answers: a logit model per question (age, sex, wijk and latent-trait effects);
  each wave's intercept is solved so that the population rate of the question
  among those it is asked of equals `ITEM_MODELS[...].targets` (seed figures of the
  annual report). Routing follows the spec: a routed-past question holds -1.
  "weet niet" (99) and "geen antwoord" (98) occur at small rates.
- Scored answers (`SCORE_MODELS`: the 1-10 report mark, an agree-scale item): a normal
  score around a mean, shifted by age, a wijk effect and the satisfaction trait, rounded
  and clipped to the item's codes. They are drawn from a stream of their own after the
  coded answers and get no faults, so adding them left every other column as it was.
- Documented faults (`FAULT_KINDS`) so validation has something to quarantine,
  listed row by row in `DemoPanel.faults`; and a few system-missing wijk values
  (valid data; the weight stage's missing-background rule applies).

SPSS writers stamp the current time into the file header; the files get a fixed
fieldwork time instead (`write_sav(..., timestamp=)`) so a re-run writes the same bytes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from survey_pipeline.sav import write_sav
from survey_pipeline.spec import ALL_RESIDENTS, QuestionnaireSpec, load_spec
from survey_pipeline.stages.ingest.stage import RECEIPT_FILE

log = logging.getLogger(__name__)

FILE_LABEL = "SYNTHETIC DEMO DATA - not real respondents"
RECEIPT_SOURCE = "SYNTHETIC demo receipt (survey_pipeline.demo), not from a panel provider"
DEFAULT_N_PER_WAVE = 3000
DEFAULT_SEED = 20191115

# Fault kinds injected into the raw files (see `_inject_faults`).
FAULT_KINDS = {
    "routing_answered": "answered a question the routing skips (filter says: not asked)",
    "routing_skipped": "coded 'niet gevraagd' (-1) although the routing asks the question",
    "invalid_code": "a code that is neither an answer code nor a missing code",
    "duplicate_id": "the same respondent submitted twice in one wave (exact duplicate row)",
    "missing_wijk": "a system-missing wijk (valid data: the weight stage's missing-background rule applies)",
}
ROUTING_FAULT_SHARE = 0.003
DUPLICATES_PER_WAVE = 2
INVALID_CODES_PER_WAVE = 2
MISSING_WIJK_SHARE = 0.0015

# --------------------------------------------------------------------------------------
# Registration figures (spec `registrations:`): synthetic values of the order of the annual
# report's, per spec id and year; a year left out prints as "-". Not generated from the panel.
REGISTRATIONS_FILE = "registrations.csv"
REGISTRATION_SOURCE = "synthetisch (demo)"
NOT_UNIQUE_PERSONS = "het betreft hier niet unieke personen"
REGISTRATION_VALUES: Mapping[str, Mapping[int, str]] = {
    "entree_requests": {2019: "35812", 2020: "31406", 2021: "28153"},
    "entree_own_network": {2020: "36.4", 2021: "38.2"},
    "wmo_household_help": {2019: "5604", 2020: "5812", 2021: "5991"},
    "wmo_support": {2019: "3702", 2020: "3588", 2021: "3497"},
    "wmo_sheltered_housing": {2019: "1204", 2020: "1163", 2021: "1121"},
}
REGISTRATION_NOTES: Mapping[str, str] = {"entree_requests": NOT_UNIQUE_PERSONS}


# --------------------------------------------------------------------------------------
# Population: synthetic, of the order of magnitude of CBS figures for Groningen (18+).
# wijk code: (adults in 2019, share 18-34, share 65+, yearly growth)
WIJK_TABLE: Mapping[int, tuple[int, float, float, float]] = {
    1: (19500, 0.62, 0.08, 0.005),
    2: (5200, 0.55, 0.08, 0.004),
    3: (5600, 0.50, 0.10, 0.004),
    4: (4300, 0.55, 0.09, 0.004),
    5: (4000, 0.50, 0.10, 0.004),
    6: (3400, 0.48, 0.12, 0.003),
    7: (6200, 0.45, 0.12, 0.006),
    8: (4800, 0.45, 0.12, 0.006),
    9: (6800, 0.42, 0.16, 0.005),
    10: (8700, 0.30, 0.26, 0.003),
    11: (6600, 0.33, 0.24, 0.003),
    12: (3000, 0.30, 0.22, 0.003),
    13: (5600, 0.30, 0.25, 0.003),
    14: (4500, 0.20, 0.30, 0.002),
    15: (9800, 0.22, 0.24, 0.006),
    16: (10600, 0.32, 0.20, 0.004),
    17: (8300, 0.48, 0.16, 0.005),
    18: (7400, 0.55, 0.12, 0.005),
    19: (2900, 0.40, 0.14, 0.003),
    20: (4000, 0.50, 0.10, 0.004),
    21: (3500, 0.45, 0.13, 0.004),
    22: (8200, 0.52, 0.11, 0.005),
    23: (10100, 0.50, 0.14, 0.006),
    24: (7000, 0.22, 0.26, 0.000),
    25: (8300, 0.26, 0.22, 0.000),
    26: (1600, 0.20, 0.22, 0.003),
    27: (2200, 0.22, 0.20, 0.004),
    28: (2100, 0.20, 0.10, 0.200),
    29: (15800, 0.15, 0.36, 0.004),
    30: (5900, 0.18, 0.28, 0.004),
}
# Auxiliary wijk figures in the style of CBS "Kerncijfers wijken en buurten", SYNTHETIC:
# wijk code: (% single-person households, % households with a low income,
# % residents with a migration background) in the first wave, whole percentages.
WIJK_PROFILE: Mapping[int, tuple[int, int, int]] = {
    1: (72, 22, 30),
    2: (62, 18, 24),
    3: (58, 15, 22),
    4: (60, 17, 24),
    5: (58, 15, 20),
    6: (55, 14, 20),
    7: (52, 14, 19),
    8: (50, 16, 21),
    9: (48, 12, 18),
    10: (40, 10, 16),
    11: (44, 14, 20),
    12: (42, 12, 18),
    13: (44, 15, 22),
    14: (40, 14, 20),
    15: (32, 9, 12),
    16: (46, 27, 42),
    17: (58, 28, 36),
    18: (62, 30, 40),
    19: (50, 16, 20),
    20: (55, 26, 34),
    21: (52, 30, 38),
    22: (58, 27, 32),
    23: (54, 26, 33),
    24: (40, 24, 36),
    25: (42, 26, 38),
    26: (28, 10, 14),
    27: (30, 9, 13),
    28: (18, 4, 12),
    29: (34, 7, 10),
    30: (30, 9, 7),
}
# Change per year after the first wave, in percentage points, the same in every wijk.
PROFILE_DRIFT = (0, 0, 1)
COVARIATES_FILE = "wijk_covariates.csv"
COVARIATE_COLUMNS = (
    "pct_18_34",
    "pct_65_plus",
    "pct_single_person_households",
    "pct_low_income_households",
    "pct_migration_background",
)
# The social-care need of a wijk (more contact, more Wmo clients, lower response) is a
# linear function of its covariates, centred on the mean over wijken: the wijk-level
# truth the small-area model can borrow strength from (see `need_index`).
NEED_PER_POINT = {"pct_low_income_households": 0.03, "pct_migration_background": 0.01}
SHARE_35_49_OF_MIDDLE = 0.52
MALE_SHARE_BY_AGE = (0.50, 0.50, 0.49, 0.44)
OLD_SHARE_DRIFT = 0.003  # the share 65+ grows this much a year
AGE_BOUNDS = ((18, 34), (35, 49), (50, 64), (65, 90))
AGE_COVARIATES = {"pct_18_34": 1, "pct_65_plus": len(AGE_BOUNDS)}  # covariate: age group (of cells.csv)

# Selection propensities of the self-selected panel (relative).
PROPENSITY_AGE = (0.35, 0.70, 1.20, 1.60)
PROPENSITY_SEX = (0.80, 1.20)
PROPENSITY_WIJK_SD = 0.15

# Participation patterns over three waves and their probabilities: 40% of members
# answer once, 60% more than once (each wave gets about 61% of the members).
PATTERN_PROBS = {
    (0,): 0.40 / 3,
    (1,): 0.40 / 3,
    (2,): 0.40 / 3,
    (0, 1): 0.13,
    (1, 2): 0.13,
    (0, 2): 0.10,
    (0, 1, 2): 0.24,
}


@dataclass(frozen=True)
class ItemModel:
    """How one question is answered, given that it is asked.

    `targets[wave]` is the population rate of a `success` code among those asked
    (or among all residents when `target_of == "residents"`). Success and other
    answers are split over the codes by `split_success` / `split_other`. "weet niet"
    and "geen antwoord" replace answers at rates `dont_know` / `no_answer`: among the
    non-successes when `missing_from == "other"` (a "weet niet" on "do you know where
    to go" is a no), among everyone asked when `missing_from == "all"`.
    """

    targets: Mapping[int, float]
    success: tuple[int, ...]
    split_success: Mapping[int, float]
    split_other: Mapping[int, float]
    age: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    sex: tuple[float, float] = (0.0, 0.0)
    need: float = 0.0
    wijk_sd: float = 0.06  # residual wijk effect, beyond what the covariates explain
    trait: str | None = None
    loading: float = 0.0
    dont_know: float = 0.0
    no_answer: float = 0.0
    missing_from: str = "other"
    target_of: str = "asked"


YES = {1: 1.0}
NO = {2: 1.0}
AGREE = {1: 0.30, 2: 0.70}
NOT_AGREE = {3: 0.60, 4: 0.30, 5: 0.10}

ITEM_MODELS: Mapping[str, ItemModel] = {
    "heard": ItemModel(
        {2019: 0.78, 2020: 0.795, 2021: 0.81},
        (1,),
        YES,
        NO,
        need=1.0,
        age=(-0.7, 0.0, 0.4, 0.6),
        sex=(0.0, 0.3),
        trait="engagement",
        loading=0.9,
        dont_know=0.04,
        no_answer=0.02,
    ),
    "familiarity": ItemModel(
        {2019: 0.66, 2020: 0.67, 2021: 0.69},
        (1, 2),
        {1: 0.35, 2: 0.65},
        {3: 0.65, 4: 0.35},
        need=1.0,
        age=(-0.5, 0.0, 0.3, 0.5),
        sex=(0.0, 0.2),
        trait="engagement",
        loading=0.8,
        dont_know=0.03,
        no_answer=0.02,
        target_of="residents",
    ),
    "knows_where": ItemModel(
        {2019: 0.71, 2020: 0.72, 2021: 0.74},
        (1,),
        YES,
        NO,
        age=(-0.6, -0.1, 0.3, 0.6),
        sex=(0.0, 0.15),
        need=0.8,
        trait="engagement",
        loading=0.6,
        dont_know=0.08,
        no_answer=0.02,
    ),
    "walk_in": ItemModel(
        {2019: 0.71, 2020: 0.72, 2021: 0.73},
        (1, 2),
        AGREE,
        NOT_AGREE,
        need=0.8,
        age=(-0.4, 0.0, 0.2, 0.4),
        sex=(0.0, 0.15),
        trait="satisfaction",
        loading=0.6,
        dont_know=0.15,
        no_answer=0.03,
    ),
    "contact": ItemModel(
        {2019: 0.30, 2020: 0.29, 2021: 0.31},
        (1,),
        YES,
        NO,
        age=(-0.4, 0.2, 0.0, 0.4),
        sex=(0.0, 0.2),
        need=1.0,
        trait="engagement",
        loading=0.5,
        dont_know=0.01,
        no_answer=0.01,
        missing_from="all",
    ),
    "helped": ItemModel(
        {2019: 0.86, 2020: 0.86, 2021: 0.87},
        (1,),
        YES,
        NO,
        need=-0.6,
        age=(-0.2, 0.0, 0.1, 0.4),
        trait="satisfaction",
        loading=0.7,
        dont_know=0.02,
        no_answer=0.01,
        missing_from="all",
    ),
    "caregiver": ItemModel(
        {2019: 0.17, 2020: 0.18},
        (1,),
        YES,
        NO,
        need=0.6,
        age=(-0.9, 0.1, 0.5, 0.1),
        sex=(0.0, 0.4),
        wijk_sd=0.05,
        dont_know=0.01,
        no_answer=0.01,
        missing_from="all",
    ),
    "caregiver_burden": ItemModel(
        {2019: 0.18, 2020: 0.20},
        (3, 4, 5),
        {3: 0.65, 4: 0.25, 5: 0.10},
        {1: 0.60, 2: 0.40},
        need=0.8,
        age=(-0.2, 0.3, 0.2, -0.2),
        sex=(0.0, 0.3),
        wijk_sd=0.05,
        dont_know=0.03,
        no_answer=0.02,
        missing_from="all",
    ),
    "wmo_client": ItemModel(
        {2019: 0.06, 2021: 0.065},
        (1,),
        YES,
        NO,
        age=(-1.6, -0.8, 0.0, 1.5),
        sex=(0.0, 0.2),
        need=1.0,
        wijk_sd=0.05,
        dont_know=0.01,
        no_answer=0.01,
        missing_from="all",
    ),
    "wmo_quick": ItemModel(
        {2019: 0.77, 2021: 0.79},
        (1, 2),
        AGREE,
        NOT_AGREE,
        need=-0.6,
        age=(-0.2, 0.0, 0.1, 0.3),
        trait="satisfaction",
        loading=0.8,
        dont_know=0.10,
        no_answer=0.03,
    ),
    "wmo_taken_seriously": ItemModel(
        {2019: 0.87, 2021: 0.88},
        (1, 2),
        AGREE,
        NOT_AGREE,
        need=-0.6,
        age=(-0.2, 0.0, 0.1, 0.3),
        trait="satisfaction",
        loading=0.8,
        dont_know=0.10,
        no_answer=0.03,
    ),
    "wmo_fits_need": ItemModel(
        {2019: 0.83, 2021: 0.84},
        (1, 2),
        AGREE,
        NOT_AGREE,
        need=-0.6,
        age=(-0.2, 0.0, 0.1, 0.3),
        trait="satisfaction",
        loading=0.8,
        dont_know=0.10,
        no_answer=0.03,
    ),
}


@dataclass(frozen=True)
class ScoreModel:
    """A scored answer (numeric or an ordered scale): round(mean + age + wijk + loading *
    satisfaction + N(0, sd)), clipped to the item's lowest and highest code. On an agree
    scale (1 = helemaal mee eens) a negative loading makes the satisfied agree."""

    mean: float
    sd: float
    loading: float
    age: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    wijk_sd: float = 0.2
    dont_know: float = 0.0
    no_answer: float = 0.0


SCORE_MODELS: Mapping[str, ScoreModel] = {
    "report_mark": ScoreModel(6.9, 1.3, 0.8, age=(-0.3, 0.0, 0.1, 0.4), dont_know=0.03, no_answer=0.01),
    "reachable": ScoreModel(2.3, 0.9, -0.4, age=(0.2, 0.0, -0.1, -0.1), dont_know=0.08, no_answer=0.02),
}
TRAITS = ("engagement", "satisfaction")
QUADRATURE_NODES = 12


@dataclass(frozen=True)
class DemoPanel:
    """The generated data: one raw frame per wave (file columns, file row order),
    the population joint table and margins, the injected faults, the intercepts and
    the auxiliary wijk covariates."""

    waves: Mapping[int, pd.DataFrame]
    population: pd.DataFrame
    margins: pd.DataFrame
    faults: pd.DataFrame
    intercepts: Mapping[tuple[str, int], float] = field(default_factory=dict)
    covariates: pd.DataFrame | None = None  # wijk covariates per wave (`wijk_covariates`)


# --------------------------------------------------------------------------------------
# Population


def population_cells(waves: Sequence[int]) -> pd.DataFrame:
    """Joint population table (wave, wijk, age_group, sex, count), integer counts."""
    rows = []
    first = min(waves)
    for wave in waves:
        years = wave - first
        for wijk, (size, young, old, growth) in WIJK_TABLE.items():
            adults = size * (1.0 + growth) ** years
            old_share = old + OLD_SHARE_DRIFT * years
            middle = 1.0 - young - old_share
            shares = (young, middle * SHARE_35_49_OF_MIDDLE, middle * (1 - SHARE_35_49_OF_MIDDLE), old_share)
            for age_group, share in enumerate(shares, start=1):
                male = MALE_SHARE_BY_AGE[age_group - 1]
                for sex, sex_share in ((1, male), (2, 1.0 - male)):
                    rows.append((wave, wijk, age_group, sex, int(round(adults * share * sex_share))))
    return pd.DataFrame(rows, columns=["wave", "wijk", "age_group", "sex", "count"]).astype("int64")


def population_margins(cells: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """Margins (wave, variable, code, label, count) of the joint table, spec label order."""
    parts = []
    for variable in ("age_group", "sex", "wijk"):
        labels = spec.background[variable].codes
        margin = cells.groupby(["wave", variable], sort=True)["count"].sum().reset_index()
        margin = margin.rename(columns={variable: "code"})
        margin.insert(1, "variable", variable)
        margin.insert(3, "label", margin["code"].map(labels))
        parts.append(margin)
    out = pd.concat(parts, ignore_index=True)
    order = {"age_group": 0, "sex": 1, "wijk": 2}
    out = out.sort_values(["wave", "variable", "code"], key=lambda s: s.map(order) if s.name == "variable" else s)
    return out.reset_index(drop=True)[["wave", "variable", "code", "label", "count"]]


# --------------------------------------------------------------------------------------
# Answer model


@dataclass(frozen=True)
class _World:
    """Seed-dependent parts of the truth: wijk effects per item and selection per wijk."""

    wijk_effect: Mapping[str, np.ndarray]
    wijk_propensity: np.ndarray


def wijk_covariates(cells: pd.DataFrame) -> pd.DataFrame:
    """Auxiliary figures per (wave, wijk), whole percentages (`COVARIATE_COLUMNS`).

    `pct_18_34` and `pct_65_plus` are the shares of those ages among the residents 18+ in the
    joint table (so they agree with cells.csv); the others come from `WIJK_PROFILE` plus
    `PROFILE_DRIFT` per year.
    """
    people = cells.groupby(["wave", "wijk"], sort=True)["count"].sum()
    out = people.rename("residents").reset_index()
    for column, age_group in AGE_COVARIATES.items():
        in_group = cells[cells["age_group"] == age_group].groupby(["wave", "wijk"], sort=True)["count"].sum()
        out[column] = np.round(100.0 * in_group.to_numpy() / people.to_numpy()).astype(np.int64)
    years = out["wave"].to_numpy() - out["wave"].min()
    profile = np.array([WIJK_PROFILE[w] for w in out["wijk"]])
    for position, column in enumerate(COVARIATE_COLUMNS[len(AGE_COVARIATES) :]):
        out[column] = (profile[:, position] + PROFILE_DRIFT[position] * years).astype(np.int64)
    return out[["wave", "wijk", *COVARIATE_COLUMNS]]


def need_index(covariates: pd.DataFrame) -> np.ndarray:
    """Social-care need per wijk (in wijk order) from the first wave's covariates (`NEED_PER_POINT`)."""
    first = covariates[covariates["wave"] == covariates["wave"].min()].sort_values("wijk")
    need = np.zeros(len(first))
    for column, per_point in NEED_PER_POINT.items():
        values = first[column].to_numpy(float)
        need += per_point * (values - values.mean())
    return need


def _make_world(rng: np.random.Generator, need: np.ndarray) -> _World:
    n_wijk = need.size
    effects = {}
    for name, model in ITEM_MODELS.items():
        effects[name] = model.need * need + rng.normal(0.0, model.wijk_sd, n_wijk)
    propensity = np.exp(rng.normal(0.0, PROPENSITY_WIJK_SD, n_wijk) - 0.2 * need)
    return _World(effects, propensity)


def _linear_predictor(
    model: ItemModel,
    name: str,
    world: _World,
    wijk: np.ndarray,
    age: np.ndarray,
    sex: np.ndarray,
    traits: Mapping[str, np.ndarray],
) -> np.ndarray:
    """Logit without intercept; wijk/age/sex are 1-based codes (wijk may be 0 for missing)."""
    lp = np.asarray(model.age)[age - 1] + np.asarray(model.sex)[sex - 1]
    lp = lp + world.wijk_effect[name][wijk - 1]
    if model.trait is not None:
        lp = lp + model.loading * traits[model.trait]
    return lp


def _code_probabilities(model: ItemModel, p_success: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """P(value in codes | asked) given P(success), after "weet niet"/"geen antwoord"."""
    missing = model.dont_know + model.no_answer
    keep_success = 1.0 - missing if model.missing_from == "all" else 1.0
    keep_other = 1.0 - missing
    share = sum(model.split_success.get(c, 0.0) for c in codes)
    other = sum(model.split_other.get(c, 0.0) for c in codes)
    return p_success * share * keep_success + (1.0 - p_success) * other * keep_other


def solve_intercepts(spec: QuestionnaireSpec, cells: pd.DataFrame, world: _World) -> dict[tuple[str, int], float]:
    """Per (question, wave) the intercept that makes the population rate equal the target.

    Integrates over the population's joint cells and a Gauss-Hermite grid of the two
    latent traits, following the routing: P(asked) is the product of the filter
    answers' probabilities.
    """
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    node_weights = node_weights / node_weights.sum()
    t1, t2 = np.meshgrid(nodes, nodes, indexing="ij")
    trait_w = np.outer(node_weights, node_weights).ravel()
    intercepts: dict[tuple[str, int], float] = {}
    for wave in spec.waves:
        pop = cells[cells["wave"] == wave]
        counts = pop["count"].to_numpy(float)
        n_cells, n_nodes = counts.size, trait_w.size
        grid_w = (counts[:, None] / counts.sum()) * trait_w[None, :]
        wijk = np.repeat(pop["wijk"].to_numpy(), n_nodes)
        age = np.repeat(pop["age_group"].to_numpy(), n_nodes)
        sex = np.repeat(pop["sex"].to_numpy(), n_nodes)
        traits = {"engagement": np.tile(t1.ravel(), n_cells), "satisfaction": np.tile(t2.ravel(), n_cells)}
        background = {"wijk": wijk, "age_group": age, "sex": sex}
        weights = grid_w.ravel()
        p_success: dict[str, np.ndarray] = {}
        p_asked: dict[str, np.ndarray] = {}
        for variable in _routing_order(spec, wave):
            model = ITEM_MODELS[variable.name]
            asked = _asked_probability(spec, variable.asked_of, p_success, p_asked, background)
            lp = _linear_predictor(model, variable.name, world, wijk, age, sex, traits)
            denominator = weights.sum() if model.target_of == "residents" else (weights * asked).sum()
            target = model.targets[wave]

            def gap(
                b: float,
                lp: np.ndarray = lp,
                asked: np.ndarray = asked,
                d: float = denominator,
                weights: np.ndarray = weights,
                target: float = target,
            ) -> float:
                return float((weights * asked * expit(b + lp)).sum() / d - target)

            b = brentq(gap, -20.0, 20.0, xtol=1e-12)
            intercepts[(variable.name, wave)] = b
            p_success[variable.name] = expit(b + lp)
            p_asked[variable.name] = asked
    return intercepts


def _asked_probability(
    spec: QuestionnaireSpec,
    group: str,
    p_success: Mapping[str, np.ndarray],
    p_asked: Mapping[str, np.ndarray],
    background: Mapping[str, np.ndarray],
) -> np.ndarray:
    when = spec.groups[group].when
    size = next(iter(background.values())).size
    prob = np.ones(size)
    if when is None:
        return prob
    for name, codes in when.clauses:
        if name in background:
            prob = prob * np.isin(background[name], codes)
        else:
            model = ITEM_MODELS[name]
            prob = prob * p_asked[name] * _code_probabilities(model, p_success[name], codes)
    return prob


def _routing_order(spec: QuestionnaireSpec, wave: int) -> list:
    """The wave's coded questions (`ITEM_MODELS`) with every filter question before the questions it
    routes; the scored items (`SCORE_MODELS`) come after them all (`_answer_scores`)."""
    scored = [v.name for v in spec.variables_in_wave(wave) if v.name in SCORE_MODELS]
    filters = {n for g in spec.groups.values() if g.when for n in g.when.variables}
    if filters & set(scored):
        raise ValueError(f"the demo generator cannot route on a scored item: {sorted(filters & set(scored))}")
    pending = [v for v in spec.variables_in_wave(wave) if v.name not in SCORE_MODELS]
    done: set[str] = set()
    ordered = []
    while pending:
        for variable in pending:
            when = spec.groups[variable.asked_of].when
            filters = [n for n in (when.variables if when else ()) if n in spec.variables]
            if all(f in done for f in filters):
                ordered.append(variable)
                done.add(variable.name)
                pending.remove(variable)
                break
        else:
            raise ValueError("routing has a cycle")
    unknown = [v.name for v in ordered if v.name not in ITEM_MODELS]
    if unknown:
        raise ValueError(f"the demo generator has no answer model for {unknown}")
    return ordered


# --------------------------------------------------------------------------------------
# Panel


def _draw_members(
    rng: np.random.Generator, spec: QuestionnaireSpec, cells: pd.DataFrame, world: _World, n_per_wave: int
) -> pd.DataFrame:
    """Panel members: pattern, wijk, sex, birth year, traits and a unique resp_id."""
    waves = np.asarray(spec.waves)
    patterns = list(PATTERN_PROBS)
    probs = np.array([PATTERN_PROBS[p] for p in patterns])
    probs = probs / probs.sum()
    per_member = sum(p * len(k) for k, p in zip(patterns, probs)) / len(waves)
    n_members = int(round(n_per_wave / per_member))
    pattern_index = rng.choice(len(patterns), size=n_members, p=probs)
    first_wave = np.array([waves[patterns[i][0]] for i in pattern_index])

    wijk = np.empty(n_members, dtype=np.int64)
    age_group = np.empty(n_members, dtype=np.int64)
    sex = np.empty(n_members, dtype=np.int64)
    for wave in waves:
        who = np.flatnonzero(first_wave == wave)
        pop = cells[cells["wave"] == wave]
        propensity = (
            np.asarray(PROPENSITY_AGE)[pop["age_group"].to_numpy() - 1]
            * np.asarray(PROPENSITY_SEX)[pop["sex"].to_numpy() - 1]
            * world.wijk_propensity[pop["wijk"].to_numpy() - 1]
        )
        p = pop["count"].to_numpy(float) * propensity
        pick = rng.choice(len(pop), size=who.size, p=p / p.sum())
        wijk[who] = pop["wijk"].to_numpy()[pick]
        age_group[who] = pop["age_group"].to_numpy()[pick]
        sex[who] = pop["sex"].to_numpy()[pick]
    lower = np.array([b[0] for b in AGE_BOUNDS])[age_group - 1]
    upper = np.array([b[1] for b in AGE_BOUNDS])[age_group - 1]
    age_first = rng.integers(lower, upper + 1)
    member_ids = rng.choice(np.arange(100_000, 1_000_000), size=n_members, replace=False)
    members = pd.DataFrame(
        {
            "resp_id": member_ids.astype(np.int64),
            "pattern": pattern_index,
            "wijk": wijk,
            "sex": sex,
            "birth_year": first_wave - age_first,
        }
    )
    for trait in TRAITS:
        members[trait] = rng.normal(0.0, 1.0, n_members)
    members["in_waves"] = [tuple(int(waves[i]) for i in patterns[k]) for k in pattern_index]
    return members


def _age_group(age: np.ndarray) -> np.ndarray:
    group = np.ones(age.size, dtype=np.int64)
    for index, (low, _) in enumerate(AGE_BOUNDS[1:], start=2):
        group[age >= low] = index
    return group


def _answer_wave(
    rng: np.random.Generator,
    spec: QuestionnaireSpec,
    wave: int,
    members: pd.DataFrame,
    world: _World,
    intercepts: Mapping[tuple[str, int], float],
    scores: _Scores,
) -> pd.DataFrame:
    """The clean answers of the members who respond in `wave`, sorted by resp_id; the scored
    items last, from their own stream (`scores`)."""
    who = members[members["in_waves"].map(lambda ws: wave in ws)].sort_values("resp_id")
    age_group = _age_group(wave - who["birth_year"].to_numpy())
    wijk = who["wijk"].to_numpy()
    sex = who["sex"].to_numpy()
    traits = {t: who[t].to_numpy() for t in TRAITS}
    frame = pd.DataFrame(
        {
            spec.respondent_id: who["resp_id"].to_numpy(float),
            spec.wave_variable: np.full(len(who), float(wave)),
            "wijk": wijk.astype(float),
            "age_group": age_group.astype(float),
            "sex": sex.astype(float),
        }
    )
    not_asked = float(spec.missing.not_asked.code)
    for variable in _routing_order(spec, wave):
        model = ITEM_MODELS[variable.name]
        dont_know = float(variable.missing.dont_know.code)
        no_answer = float(variable.missing.no_answer.code)
        lp = _linear_predictor(model, variable.name, world, wijk, age_group, sex, traits)
        success = rng.random(len(frame)) < expit(intercepts[(variable.name, wave)] + lp)
        value = np.where(
            success,
            _pick(rng, model.split_success, len(frame)),
            _pick(rng, model.split_other, len(frame)),
        ).astype(float)
        eligible = np.ones(len(frame), dtype=bool) if model.missing_from == "all" else ~success
        draw = rng.random(len(frame))
        value[eligible & (draw < model.dont_know)] = dont_know
        value[eligible & (draw >= model.dont_know) & (draw < model.dont_know + model.no_answer)] = no_answer
        asked = spec.asked_mask(variable.name, frame)
        value[~asked] = not_asked
        frame[variable.name] = value
    for variable in spec.variables_in_wave(wave):
        if variable.name in SCORE_MODELS:
            frame[variable.name] = scores.answer(spec, variable.name, frame, age_group, traits["satisfaction"])
    return frame.reset_index(drop=True)


class _Scores:
    """Draws the scored items (`SCORE_MODELS`) from one random stream: a wijk effect per item
    once, then the answers wave by wave."""

    def __init__(self, rng: np.random.Generator, n_wijk: int) -> None:
        self.rng = rng
        self.wijk_effect = {name: rng.normal(0.0, model.wijk_sd, n_wijk) for name, model in SCORE_MODELS.items()}

    def answer(
        self, spec: QuestionnaireSpec, name: str, frame: pd.DataFrame, age_group: np.ndarray, satisfaction: np.ndarray
    ) -> np.ndarray:
        model, variable = SCORE_MODELS[name], spec.variables[name]
        lowest, highest = min(variable.codes), max(variable.codes)
        wijk = frame["wijk"].to_numpy(dtype=np.int64)
        score = (
            model.mean
            + np.asarray(model.age)[age_group - 1]
            + self.wijk_effect[name][wijk - 1]
            + model.loading * satisfaction
            + self.rng.normal(0.0, model.sd, len(frame))
        )
        value = np.clip(np.round(score), lowest, highest)
        draw = self.rng.random(len(frame))
        value[draw < model.dont_know] = float(variable.missing.dont_know.code)
        value[(draw >= model.dont_know) & (draw < model.dont_know + model.no_answer)] = float(
            variable.missing.no_answer.code
        )
        value[~spec.asked_mask(name, frame)] = float(variable.missing.not_asked.code)
        return value


def _pick(rng: np.random.Generator, split: Mapping[int, float], size: int) -> np.ndarray:
    codes = np.array(list(split), dtype=float)
    probs = np.array(list(split.values()), dtype=float)
    return rng.choice(codes, size=size, p=probs / probs.sum())


# --------------------------------------------------------------------------------------
# Faults


def _inject_faults(
    rng: np.random.Generator, spec: QuestionnaireSpec, wave: int, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the documented faults; return the faulty frame and one row per fault.

    Every fault touches a different respondent, so each faulty row breaks one rule.
    """
    frame = frame.copy()
    n = len(frame)
    not_asked = float(spec.missing.not_asked.code)
    taken = np.zeros(n, dtype=bool)
    faults: list[tuple[int, str, str]] = []

    def choose(candidates: np.ndarray, k: int) -> np.ndarray:
        pool = np.flatnonzero(candidates & ~taken)
        picked = np.sort(rng.choice(pool, size=min(k, pool.size), replace=False))
        taken[picked] = True
        return picked

    # Only questions that filter no other question, so each fault breaks exactly one rule; the
    # scored items get none (the faults of the coded items stay as they were before them).
    filters = {n for g in spec.groups.values() if g.when for n in g.when.variables}
    leaves = [v for v in spec.variables_in_wave(wave) if v.name not in filters and v.name in ITEM_MODELS]
    routed = [v for v in leaves if v.asked_of != ALL_RESIDENTS]
    n_routing = max(1, int(round(ROUTING_FAULT_SHARE * n)))
    for i in range(n_routing):
        variable = routed[i % len(routed)]
        asked = spec.asked_mask(variable.name, frame)
        if i % 2 == 0:
            rows = choose(~asked, 1)
            frame.loc[rows, variable.name] = float(list(variable.codes)[-1])
            kind = "routing_answered"
        else:
            rows = choose(asked, 1)
            frame.loc[rows, variable.name] = not_asked
            kind = "routing_skipped"
        faults.extend((int(r), kind, variable.name) for r in rows)

    invalid = rng.choice([v.name for v in leaves], size=INVALID_CODES_PER_WAVE, replace=False)
    for name in sorted(invalid):
        variable = spec.variables[name]
        rows = choose(spec.asked_mask(name, frame), 1)
        frame.loc[rows, name] = float(max(variable.codes) + 1)
        faults.extend((int(r), "invalid_code", name) for r in rows)

    n_missing_wijk = max(1, int(round(MISSING_WIJK_SHARE * n)))
    missing_wijk = choose(np.ones(n, dtype=bool), n_missing_wijk)
    frame.loc[missing_wijk, "wijk"] = np.nan

    duplicated = choose(np.ones(n, dtype=bool), DUPLICATES_PER_WAVE)
    order = np.concatenate([np.arange(n), duplicated])
    order = order[np.argsort(order, kind="stable")]
    out = frame.iloc[order].reset_index(drop=True)
    row_of = {}
    for position, original in enumerate(order):
        row_of.setdefault(int(original), position)
    log_rows = [
        (wave, int(frame.loc[r, spec.respondent_id]), row_of[r] + 1, kind, variable) for r, kind, variable in faults
    ]
    for r in duplicated:
        log_rows.append(
            (wave, int(frame.loc[r, spec.respondent_id]), row_of[int(r)] + 2, "duplicate_id", spec.respondent_id)
        )
    log_rows.extend(
        (wave, int(frame.loc[r, spec.respondent_id]), row_of[int(r)] + 1, "missing_wijk", "wijk") for r in missing_wijk
    )
    fault_frame = pd.DataFrame(log_rows, columns=["wave", "resp_id", "source_row", "kind", "variable"])
    return out, fault_frame.sort_values(["source_row", "kind"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Entry points


def generate_panel(
    spec: QuestionnaireSpec, n_per_wave: int = DEFAULT_N_PER_WAVE, seed: int = DEFAULT_SEED, faults: bool = True
) -> DemoPanel:
    """Generate the demo panel (pure: frames only, no I/O). Same arguments, same frames."""
    if n_per_wave < 50:
        raise ValueError("n_per_wave must be at least 50")
    # The fifth stream (scored items) was added later: the first four, and so every other column, are unchanged.
    streams = np.random.SeedSequence(seed).spawn(5)
    world_rng, member_rng, answer_rng, fault_rng, score_rng = (np.random.default_rng(s) for s in streams)
    cells = population_cells(spec.waves)
    covariates = wijk_covariates(cells)
    world = _make_world(world_rng, need_index(covariates))
    intercepts = solve_intercepts(spec, cells, world)
    members = _draw_members(member_rng, spec, cells, world, n_per_wave)
    scores = _Scores(score_rng, len(WIJK_TABLE))
    waves: dict[int, pd.DataFrame] = {}
    fault_parts = []
    for wave in spec.waves:
        frame = _answer_wave(answer_rng, spec, wave, members, world, intercepts, scores)
        if faults:
            frame, wave_faults = _inject_faults(fault_rng, spec, wave, frame)
            fault_parts.append(wave_faults)
        waves[wave] = frame
    fault_frame = (
        pd.concat(fault_parts, ignore_index=True)
        if fault_parts
        else pd.DataFrame(columns=["wave", "resp_id", "source_row", "kind", "variable"])
    )
    return DemoPanel(waves, cells, population_margins(cells, spec), fault_frame, intercepts, covariates)


def fieldwork_timestamp(wave: int) -> datetime:
    """The fixed time stamped into a wave's file (end of fieldwork, synthetic)."""
    return datetime(wave, 11, 15, 12, 0, 0)


def write_demo_registrations(spec: QuestionnaireSpec, path: Path) -> None:
    """The synthetic registration figures of the spec's registrations (`REGISTRATION_VALUES`) as the
    registrations file (`survey_pipeline.registrations`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["indicator_id,year,value,unit,source,note"]
    for registration in spec.registrations:
        for year, value in REGISTRATION_VALUES.get(registration.id, {}).items():
            note = REGISTRATION_NOTES.get(registration.id, "")
            lines.append(f"{registration.id},{year},{value},{registration.unit},{REGISTRATION_SOURCE},{note}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_demo(
    spec: QuestionnaireSpec,
    raw_dir: Path,
    population_dir: Path,
    n_per_wave: int = DEFAULT_N_PER_WAVE,
    seed: int = DEFAULT_SEED,
    registrations_path: Path | None = None,
    row_compress: bool = False,
) -> DemoPanel:
    """Generate the panel and write the wave files, their receipt, the margins and (when the spec
    declares registrations) the registration figures, by default to `registrations/` beside `raw_dir`.

    `row_compress` writes the wave files bytecode-compressed, as SPSS saves a `.sav` by default
    (the bundled demo files are uncompressed)."""
    panel = generate_panel(spec, n_per_wave, seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    population_dir.mkdir(parents=True, exist_ok=True)
    for wave, frame in panel.waves.items():
        path = raw_dir / f"wij_panel_{wave}.sav"
        write_sav(
            frame,
            path,
            spec,
            f"{FILE_LABEL} ({wave})",
            extra_variable_labels={spec.respondent_id: "Respondentnummer (panel)", spec.wave_variable: "Meting (jaar)"},
            timestamp=fieldwork_timestamp(wave),
            row_compress=row_compress,
        )
        log.info("wrote %s (%d rows)", path, len(frame))
    receipt = pd.DataFrame(
        {
            "wave": list(panel.waves),
            "expected_respondents": [len(frame) for frame in panel.waves.values()],
            "source": RECEIPT_SOURCE,
        }
    )
    receipt.to_csv(raw_dir / RECEIPT_FILE, index=False, lineterminator="\n")
    margins_path = population_dir / "margins.csv"
    panel.margins.to_csv(margins_path, index=False, lineterminator="\n")
    cells_path = population_dir / "cells.csv"
    panel.population.to_csv(cells_path, index=False, lineterminator="\n")
    covariates_path = population_dir / COVARIATES_FILE
    panel.covariates.to_csv(covariates_path, index=False, lineterminator="\n")
    log.info("wrote %s, %s and %s", margins_path, cells_path, covariates_path)
    if spec.registrations:
        registrations_path = registrations_path or raw_dir.parent / "registrations" / REGISTRATIONS_FILE
        write_demo_registrations(spec, registrations_path)
        log.info("wrote %s", registrations_path)
    return panel


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m survey_pipeline.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    parser.add_argument("--spec", type=Path, default=Path("questionnaires/wij_monitor.yaml"))
    parser.add_argument("--n", type=int, default=DEFAULT_N_PER_WAVE, help="respondents per wave (about)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = args.project_dir
    spec = load_spec(base / args.spec)
    write_demo(spec, base / "data" / "raw", base / "data" / "population", args.n, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
