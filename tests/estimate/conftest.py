"""Shared fixtures for the estimate-stage tests: the real spec and small synthetic panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline.spec import QuestionnaireSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def spec() -> QuestionnaireSpec:
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="session")
def make_routed():
    """Factory: `make_routed(spec, rows)`, see `routed_frame`."""
    return routed_frame


@pytest.fixture(scope="session")
def make_wave():
    """Factory: `make_wave(spec, n, wave, rng, item_missing=0.05)`, see `synthetic_wave`."""
    return synthetic_wave


def routed_frame(spec: QuestionnaireSpec, rows: list[dict]) -> pd.DataFrame:
    """A frame with every spec column; unspecified questions are -1 (not asked)."""
    base = {"resp_id": 0, "wave": 2019, "wijk": 1.0, "age_group": 1.0, "sex": 1.0}
    records = []
    for i, row in enumerate(rows):
        record = {**base, "resp_id": i + 1, **{name: -1.0 for name in spec.variables}, **row}
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for name in (*spec.variables, "wijk", "age_group", "sex"):
        frame[name] = frame[name].astype("float64")
    frame["resp_id"] = frame["resp_id"].astype("int64")
    frame["wave"] = frame["wave"].astype("int64")
    return frame


def synthetic_wave(
    spec: QuestionnaireSpec, n: int, wave: int, rng: np.random.Generator, item_missing: float = 0.05
) -> pd.DataFrame:
    """One wave of routing-consistent answers with some "weet niet" / "geen antwoord"."""

    def answers(codes, p, size):
        values = rng.choice(np.asarray(codes, dtype=float), p=p, size=size)
        special = rng.random(size)
        values[special < item_missing] = 99.0
        values[(special >= item_missing) & (special < 2 * item_missing)] = 98.0
        return values

    frame = pd.DataFrame(
        {
            "resp_id": np.arange(1, n + 1, dtype="int64"),
            "wave": np.full(n, wave, dtype="int64"),
            "wijk": rng.integers(1, 31, n).astype(float),
            "age_group": rng.integers(1, 5, n).astype(float),
            "sex": rng.integers(1, 3, n).astype(float),
        }
    )
    not_asked = np.full(n, -1.0)
    frame["heard"] = answers([1, 2], [0.7, 0.3], n)
    heard = frame["heard"].to_numpy() == 1
    frame["familiarity"] = np.where(heard, answers([1, 2, 3, 4], [0.2, 0.4, 0.3, 0.1], n), not_asked)
    frame["knows_where"] = answers([1, 2], [0.7, 0.3], n)
    frame["walk_in"] = np.where(heard, answers([1, 2, 3, 4, 5], [0.2, 0.4, 0.2, 0.1, 0.1], n), not_asked)
    frame["contact"] = np.where(heard, answers([1, 2], [0.3, 0.7], n), not_asked)
    contact = frame["contact"].to_numpy() == 1
    frame["helped"] = np.where(contact, answers([1, 2], [0.8, 0.2], n), not_asked)
    for filter_name, group_vars, codes in (
        ("caregiver", ("caregiver_burden",), [1, 2, 3, 4, 5]),
        ("wmo_client", ("wmo_quick", "wmo_taken_seriously", "wmo_fits_need"), [1, 2, 3, 4, 5]),
    ):
        if wave in spec.variables[filter_name].waves:
            frame[filter_name] = answers([1, 2], [0.3, 0.7], n)
            member = frame[filter_name].to_numpy() == 1
            for name in group_vars:
                frame[name] = np.where(member, answers(codes, [0.3, 0.3, 0.2, 0.1, 0.1], n), not_asked)
        else:
            for name in (filter_name, *group_vars):
                frame[name] = np.nan
    return frame
