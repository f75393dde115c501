"""Small, deterministic, valid panel frames for the validation tests.

`valid_responses(spec, wave, n)` gives the stacked ingest layout (origin columns
first) with routing followed exactly, so a test changes one cell and knows which
rows must be quarantined and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from survey_pipeline.spec import QuestionnaireSpec


def _routing_order(spec: QuestionnaireSpec) -> list[str]:
    done: list[str] = []
    pending = list(spec.variables)
    while pending:
        for name in pending:
            when = spec.groups[spec.variables[name].asked_of].when
            filters = [v for v in (when.variables if when else ()) if v in spec.variables]
            if all(f in done for f in filters):
                done.append(name)
                pending.remove(name)
                break
        else:
            raise ValueError(f"no routing order for {pending}")
    return done


def raw_frame(spec: QuestionnaireSpec, wave: int, n: int, first_id: int = 1) -> pd.DataFrame:
    """The columns a raw file of `wave` holds (no origin columns), all rows valid.

    Filter questions cycle through their answer codes from the first one, so even
    rows answer "ja" (code 1) to every filter and odd rows "nee"; other questions
    cycle through answers, "weet niet" and "geen antwoord". Routed-past cells hold
    -1; questions the wave did not ask are absent.
    """
    rows = np.arange(n)
    frame = pd.DataFrame(
        {
            spec.respondent_id: (first_id + rows).astype("float64"),
            spec.wave_variable: np.full(n, float(wave)),
        }
    )
    for k, (name, background) in enumerate(spec.background.items()):
        codes = list(background.codes)
        frame[name] = np.array([codes[(i + k) % len(codes)] for i in rows], dtype="float64")
    filters = {v for g in spec.groups.values() if g.when for v in g.when.variables}
    for k, name in enumerate(_routing_order(spec)):
        variable = spec.variables[name]
        if wave not in variable.waves:
            continue
        if name in filters:
            codes, offset = list(variable.codes), 0
        else:
            codes, offset = list(variable.answer_codes), k
        values = np.array([codes[(i + offset) % len(codes)] for i in rows], dtype="float64")
        asked = spec.asked_mask(name, frame)
        values[~asked] = variable.missing.not_asked.code
        frame[name] = values
    return frame


def with_origin(raw: pd.DataFrame, spec: QuestionnaireSpec, wave: int, file_name: str | None = None) -> pd.DataFrame:
    """Add origin columns and the spec columns a wave lacks, in the ingest layout."""
    n = len(raw)
    out = pd.DataFrame(
        {
            "source_file": pd.Series([file_name or f"wij_panel_{wave}.sav"] * n, dtype="str"),
            "source_row": np.arange(1, n + 1, dtype="int64"),
            "file_wave": np.full(n, wave, dtype="int64"),
        }
    )
    for name in [spec.respondent_id, spec.wave_variable, *spec.background, *spec.variables]:
        out[name] = raw[name].to_numpy(dtype="float64") if name in raw else np.full(n, np.nan)
    return out


def valid_responses(spec: QuestionnaireSpec, wave: int, n: int, first_id: int = 1) -> pd.DataFrame:
    return with_origin(raw_frame(spec, wave, n, first_id), spec, wave)


def stacked(spec: QuestionnaireSpec, n: int, waves: tuple[int, ...] | None = None) -> pd.DataFrame:
    parts = [valid_responses(spec, w, n) for w in (waves or spec.waves)]
    return pd.concat(parts, ignore_index=True)


def write_raw(frame: pd.DataFrame, path, spec: QuestionnaireSpec, file_label: str = "WIJ-monitor test") -> None:
    """Write `frame` as the raw file `path` in the format its extension names."""
    from survey_pipeline.sav import write_sav

    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix in ("sav", "zsav"):
        write_sav(frame, path, spec, file_label, extra_variable_labels={spec.respondent_id: "Respondentnummer"})
    elif suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(suffix)
