"""Validate stage: every ingested row is either valid or quarantined with its reasons.

The rules come from the questionnaire spec as a pandera schema with registered,
named checks (`validation_schema(spec)`): allowed codes per variable, respondent
id present and unique within a wave, the wave variable matches the file's wave,
background columns present, questions absent from waves that did not ask them,
and routing in both directions (routed past -> "niet gevraagd" code; routed to ->
an answer, "weet niet" or "geen antwoord"). Validation is lazy, so each
quarantined row lists every rule it breaks. Counts reconcile per wave
(rows_in = rows_valid + rows_quarantined). A wave whose quarantined share passes
`validate.max_quarantine_share` stops the run (exit 2), as does any table-level
failure. A great-expectations checkpoint generated from the same spec then runs
on the valid rows (`survey_pipeline.stages.validate.expectations`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera import extensions

from survey_pipeline import artifacts, contracts, gx_process
from survey_pipeline.columns import BASE_WEIGHT, ORIGIN_COLUMNS
from survey_pipeline.contracts import RULE_TEXT_NL
from survey_pipeline.errors import InputError
from survey_pipeline.settings import Params, recorded_software, upstream_settings, write_record
from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.stages.validate import data_docs
from survey_pipeline.stages.validate.data_docs import variable_label

log = logging.getLogger(__name__)

MAX_ID = 2**53
_LOGGED_ROWS = 20
_LISTED_ROWS = 10

# Rule names as they appear in `reasons`, in the order they are reported.
RULES = {
    "valid_id": "the respondent id is present and a whole number in 0..2^53",
    "unique_id": "a respondent id occurs once per wave (an exact duplicate row: the copies)",
    "wave_matches_file": "the wave variable equals the wave in the file name",
    "wave_in_spec": "the wave in the file name is one of the spec's waves",
    "allowed_codes": "the value is one of the variable's codes (answers and missing codes)",
    "not_in_wave": "a question the wave did not ask is blank",
    "routed_past": "a respondent routed past a question carries the 'niet gevraagd' code",
    "routed_to": "a respondent routed to a question does not carry the 'niet gevraagd' code",
    "not_blank": "a respondent routed to a question has an answer or missing code there (not blank)",
}

QUARANTINE_WORKBOOK = "quarantine.xlsx"


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows, quarantined rows (one per row, all reasons), reasons in long form, counts."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    reasons: pd.DataFrame
    metrics: dict[str, Any]


# ---------------------------------------------------------------------------
# Registered checks: each returns True for the rows that pass.


_shared_rows: dict[tuple[Any, ...], np.ndarray] | None = None


@contextmanager
def _sharing_rows() -> Iterator[None]:
    """While validating, the checks share their row masks (read-only): the routing checks of a
    question (past, to, not blank) and of every question of a group select the same rows, and
    most checks the same waves; each `isin` over the table is computed once, not per check."""
    global _shared_rows
    _shared_rows = {}
    try:
        yield
    finally:
        _shared_rows = None


def _rows(frame: pd.DataFrame, key: tuple[Any, ...], compute: Callable[[], np.ndarray]) -> np.ndarray:
    if _shared_rows is None:
        return compute()
    key = (id(frame), len(frame), *key)
    if key not in _shared_rows:
        _shared_rows[key] = compute()
    return _shared_rows[key]


def _in_waves(frame: pd.DataFrame, waves: Sequence[int]) -> np.ndarray:
    return _rows(frame, ("waves", *waves), lambda: frame["file_wave"].isin(list(waves)).to_numpy(dtype=bool))


def _asked(frame: pd.DataFrame, clauses: Mapping[str, Sequence[int]]) -> np.ndarray:
    def asked() -> np.ndarray:
        rows = np.ones(len(frame), dtype=bool)
        for name, codes in clauses.items():
            rows &= frame[name].isin(list(codes)).to_numpy(dtype=bool)
        return rows

    return _rows(frame, ("asked", *((name, *codes) for name, codes in clauses.items())), asked)


def _passes(frame: pd.DataFrame, ok: np.ndarray) -> pd.Series:
    return pd.Series(ok, index=frame.index)


@extensions.register_check_method(statistics=["id_column", "max_id"])
def spec_valid_id(frame: pd.DataFrame, *, id_column: str, max_id: int) -> pd.Series:
    values = frame[id_column].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values <= max_id)
    return _passes(frame, ok)


@extensions.register_check_method(statistics=["id_column", "ignore"])
def spec_unique_id(frame: pd.DataFrame, *, id_column: str, ignore: list[str]) -> pd.Series:
    return _passes(frame, ~_duplicate_rows(frame, id_column, ignore)[0])


@extensions.register_check_method(statistics=["wave_column"])
def spec_wave_matches_file(frame: pd.DataFrame, *, wave_column: str) -> pd.Series:
    return _passes(frame, (frame[wave_column] == frame["file_wave"]).to_numpy(dtype=bool))


@extensions.register_check_method(statistics=["variable", "allowed", "waves"])
def spec_allowed_codes(frame: pd.DataFrame, *, variable: str, allowed: list[int], waves: list[int]) -> pd.Series:
    values = frame[variable]
    bad = _in_waves(frame, waves) & values.notna().to_numpy() & ~values.isin(allowed).to_numpy(dtype=bool)
    return _passes(frame, ~bad)


@extensions.register_check_method(statistics=["variable", "waves"])
def spec_not_in_wave(frame: pd.DataFrame, *, variable: str, waves: list[int]) -> pd.Series:
    return _passes(frame, _in_waves(frame, waves) | frame[variable].isna().to_numpy())


@extensions.register_check_method(statistics=["variable", "clauses", "waves", "not_asked"])
def spec_routed_past(
    frame: pd.DataFrame, *, variable: str, clauses: dict[str, list[int]], waves: list[int], not_asked: int
) -> pd.Series:
    past = _in_waves(frame, waves) & ~_asked(frame, clauses)
    return _passes(frame, ~past | (frame[variable] == not_asked).to_numpy(dtype=bool))


@extensions.register_check_method(statistics=["variable", "clauses", "waves", "not_asked"])
def spec_routed_to(
    frame: pd.DataFrame, *, variable: str, clauses: dict[str, list[int]], waves: list[int], not_asked: int
) -> pd.Series:
    to = _in_waves(frame, waves) & _asked(frame, clauses)
    return _passes(frame, ~to | (frame[variable] != not_asked).to_numpy(dtype=bool))


@extensions.register_check_method(statistics=["variable", "clauses", "waves"])
def spec_not_blank(frame: pd.DataFrame, *, variable: str, clauses: dict[str, list[int]], waves: list[int]) -> pd.Series:
    to = _in_waves(frame, waves) & _asked(frame, clauses)
    return _passes(frame, ~to | frame[variable].notna().to_numpy())


def _duplicate_rows(frame: pd.DataFrame, id_column: str, ignore: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows failing uniqueness, and which of those are exact copies of an earlier row.

    Rows sharing (file_wave, id) with identical data: the first is kept, the copies
    fail. Rows sharing (file_wave, id) with different data: all fail (which one is
    right is unknown).
    """
    keys = ["file_wave", id_column]
    shared = frame.duplicated(keys, keep=False).to_numpy() & frame[id_column].notna().to_numpy()
    if not shared.any():
        return np.zeros(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
    data = [c for c in frame.columns if c not in ignore]
    subset = frame.loc[shared, data]
    variants = subset.drop_duplicates().groupby(keys, dropna=False).size()
    n_variants = pd.MultiIndex.from_frame(subset[keys]).map(variants).to_numpy()
    later_copy = subset.duplicated(keys, keep="first").to_numpy()
    exact = n_variants == 1
    fail = np.zeros(len(frame), dtype=bool)
    copy = np.zeros(len(frame), dtype=bool)
    fail[shared] = ~exact | later_copy
    copy[shared] = exact & later_copy
    return fail, copy


# ---------------------------------------------------------------------------
# The schema generated from the spec


def routing_clauses(spec: QuestionnaireSpec, variable: str) -> dict[str, list[int]]:
    """Every condition on the routing path to `variable`, flattened (filters of filters too).

    A respondent is routed to a question only if routed to each filter question on
    the way and the filter answers select the group.
    """
    clauses: dict[str, list[int]] = {}
    pending = [spec.variables[variable].asked_of]
    while pending:
        when = spec.groups[pending.pop()].when
        if when is None:
            continue
        for name, codes in when.clauses:
            clauses[name] = [c for c in clauses[name] if c in codes] if name in clauses else list(codes)
            if name in spec.variables:
                pending.append(spec.variables[name].asked_of)
    return clauses


def _error(rule: str, column: str) -> str:
    return f"{rule}:{column}"


def _row_check(method: str, rule: str, column: str, **statistics: Any) -> pa.Check:
    """The registered check `method` as the rule `rule` on `column`.

    `ignore_na=False`: with pandera's default a row whose every column is blank
    passes, found by `isna` over the whole table for every check (a third of
    validation time at 900,000 rows); no ingested row is blank throughout (its
    origin columns are always set), so the result is the same.
    """
    return getattr(pa.Check, method)(**statistics, error=_error(rule, column), ignore_na=False)


def validation_schema(spec: QuestionnaireSpec) -> pa.DataFrameSchema:
    """The pandera schema of ingested responses, generated from the spec."""
    rid, wave = spec.respondent_id, spec.wave_variable
    columns: dict[str, pa.Column] = {
        "source_file": pa.Column(str),
        "source_row": pa.Column("int64", pa.Check.ge(1)),
        "file_wave": pa.Column("int64", pa.Check.isin(list(spec.waves), error=_error("wave_in_spec", "file_wave"))),
        rid: pa.Column("float64", nullable=True),
        wave: pa.Column("float64", nullable=True),
    }
    for name in spec.background:
        columns[name] = pa.Column("float64", nullable=True, description=spec.background[name].label)
    for name, variable in spec.variables.items():
        columns[name] = pa.Column("float64", nullable=True, description=variable.label)
    columns[BASE_WEIGHT] = pa.Column("float64", nullable=True, required=False)

    checks = [
        _row_check("spec_valid_id", "valid_id", rid, id_column=rid, max_id=MAX_ID),
        _row_check("spec_unique_id", "unique_id", rid, id_column=rid, ignore=["source_file", "source_row"]),
        _row_check("spec_wave_matches_file", "wave_matches_file", wave, wave_column=wave),
    ]
    all_waves = list(spec.waves)
    for name, background in spec.background.items():
        checks.append(
            _row_check(
                "spec_allowed_codes",
                "allowed_codes",
                name,
                variable=name,
                allowed=list(background.codes),
                waves=all_waves,
            )
        )
    for name, variable in spec.variables.items():
        waves = list(variable.waves)
        clauses = routing_clauses(spec, name)
        not_asked = variable.missing.not_asked.code
        allowed = [*variable.answer_codes, not_asked]
        checks.append(
            _row_check("spec_allowed_codes", "allowed_codes", name, variable=name, allowed=allowed, waves=waves)
        )
        if set(waves) != set(all_waves):
            checks.append(_row_check("spec_not_in_wave", "not_in_wave", name, variable=name, waves=waves))
        routing = {"variable": name, "clauses": clauses, "waves": waves}
        checks.append(_row_check("spec_routed_past", "routed_past", name, **routing, not_asked=not_asked))
        checks.append(_row_check("spec_routed_to", "routed_to", name, **routing, not_asked=not_asked))
        checks.append(_row_check("spec_not_blank", "not_blank", name, **routing))
    return pa.DataFrameSchema(
        columns,
        checks=checks,
        strict=False,
        name=f"{spec.survey_id}_responses",
        description=f"Validation rules generated from {Path(spec.source).name}",
    )


# ---------------------------------------------------------------------------
# Validation


def validate_responses(frame: pd.DataFrame, spec: QuestionnaireSpec) -> ValidationResult:
    """Split ingested responses into valid and quarantined rows; counts per wave.

    Raises `InputError` for table-level failures (a missing column, a wrong type):
    those are not about single rows.
    """
    frame = frame.reset_index(drop=True)
    schema = validation_schema(spec)
    try:
        with _sharing_rows():
            schema.validate(frame, lazy=True, inplace=True)  # nothing is coerced: no copy of the table needed
        cases = pd.DataFrame(columns=["index", "check"])
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    _raise_table_failures(cases)

    failures = cases.loc[cases["index"].notna(), ["index", "check"]].drop_duplicates()
    checks = failures["check"].astype(str)
    failures = failures.assign(
        index=failures["index"].astype("int64"),
        rule=checks.str.partition(":")[0] if len(checks) else checks,
        column=checks.str.partition(":")[2] if len(checks) else checks,
    )
    order = {rule: i for i, rule in enumerate(RULES)}
    columns = [spec.respondent_id, spec.wave_variable, *spec.background, *spec.variables]
    col_order = {c: i for i, c in enumerate(columns)}
    failures = failures.assign(
        _rule=failures["rule"].map(order).fillna(len(order)),
        _col=failures["column"].map(col_order).fillna(len(col_order)),
    ).sort_values(["index", "_rule", "_col"])

    messages = _messages(frame, failures, spec)
    bad_rows = np.unique(failures["index"].to_numpy())
    is_bad = np.zeros(len(frame), dtype=bool)
    is_bad[bad_rows] = True

    reasons = pd.DataFrame(
        {
            "source_file": frame["source_file"].to_numpy()[failures["index"].to_numpy()],
            "source_row": frame["source_row"].to_numpy()[failures["index"].to_numpy()].astype("int64"),
            "rule": failures["rule"].to_numpy(),
            "column": failures["column"].to_numpy(),
            "message": messages,
        }
    ).astype({"source_file": "str", "rule": "str", "column": "str", "message": "str"})

    joined: dict[int, list[str]] = {}
    for index, reason in zip(failures["index"].to_numpy(), (failures["rule"] + ":" + failures["column"]).to_numpy()):
        joined.setdefault(int(index), []).append(reason)
    data_columns = [c for c in frame.columns if c not in (*ORIGIN_COLUMNS, spec.respondent_id)]
    quarantine = frame.loc[is_bad, [*ORIGIN_COLUMNS, spec.respondent_id]].copy()
    quarantine["reasons"] = ["; ".join(joined[int(i)]) for i in quarantine.index]
    quarantine = pd.concat([quarantine, frame.loc[is_bad, data_columns]], axis=1).reset_index(drop=True)
    quarantine = quarantine.astype({"reasons": "str"})

    valid = frame.loc[~is_bad].reset_index(drop=True)
    valid[spec.respondent_id] = valid[spec.respondent_id].astype("int64")
    valid[spec.wave_variable] = valid[spec.wave_variable].astype("int64")
    return ValidationResult(valid, quarantine, reasons, reconcile(frame, is_bad, reasons))


def _raise_table_failures(cases: pd.DataFrame) -> None:
    """Failures without a row (missing columns, wrong types, a check that crashed) stop the run."""
    table = cases.loc[cases["index"].isna()]
    if table.empty:
        return
    missing = table.loc[table["check"].astype(str) == "column_in_dataframe", "failure_case"].astype(str).tolist()
    if missing:
        raise InputError(
            f"column(s) {missing} missing from the ingested responses (background variables and spec questions are required)",
            column=missing[0],
            rule="column_present",
        )
    first = table.iloc[0]
    column = first.get("column")
    column = None if column is None or (isinstance(column, float) and math.isnan(column)) else str(column)
    details = "; ".join(
        f"{row['column'] or '<table>'}: {row['check']} (found {row['failure_case']})"
        for row in table.head(5).to_dict("records")
    )
    raise InputError(f"{len(table)} table-level failure(s): {details}", column=column, rule="table_check")


def _messages(frame: pd.DataFrame, failures: pd.DataFrame, spec: QuestionnaireSpec) -> list[str]:
    """One readable sentence per failure; codes only, never other respondent values."""
    rid, wave = spec.respondent_id, spec.wave_variable
    values = {name: frame[name].to_numpy() for name in frame.columns if name != "source_file"}
    file_waves = values["file_wave"]
    duplicates = _duplicate_groups(frame, rid) if (failures["rule"] == "unique_id").any() else {}
    routing = {name: list(routing_clauses(spec, name)) for name in spec.variables}
    out = []
    for index, rule, column in zip(
        failures["index"].to_numpy(), failures["rule"].to_numpy(), failures["column"].to_numpy()
    ):
        file_wave = int(file_waves[index])
        if rule == "valid_id":
            value = values[rid][index]
            if np.isnan(value):
                out.append("the respondent id is blank")
            elif not np.isfinite(value) or value != round(value):
                out.append("the respondent id is not a whole number")
            else:
                out.append(f"the respondent id is outside 0..2^53 (a {'negative' if value < 0 else 'huge'} number)")
        elif rule == "unique_id":
            (first, listed, count), copy = duplicates[index]
            if copy:
                out.append(f"exact copy of row {first} (same respondent id and answers in wave {file_wave})")
            else:
                out.append(
                    f"the respondent id occurs in {count} rows of wave {file_wave} with different data (rows {listed})"
                )
        elif rule == "wave_matches_file":
            out.append(f"the wave variable is {_code(values[wave][index])} but the file is wave {file_wave}")
        elif rule == "wave_in_spec":
            out.append(f"wave {file_wave} is not one of the spec's waves")
        elif rule == "allowed_codes":
            codes = spec.variables[column].value_labels if column in spec.variables else spec.background[column].codes
            out.append(
                f"code {_code(values[column][index])} is not a code of '{column}' (allowed: {_ranges(list(codes))})"
            )
        elif rule == "not_in_wave":
            out.append(f"wave {file_wave} did not ask '{column}' but it holds code {_code(values[column][index])}")
        elif rule in ("routed_past", "routed_to", "not_blank"):
            missing = spec.variables[column].missing
            filters = ", ".join(f"{name}={_code(values[name][index])}" for name in routing[column])
            because = f" ({filters})" if filters else ""
            if rule == "routed_past":
                out.append(
                    f"routed past '{column}'{because} but it holds {_code(values[column][index])}; "
                    f"expected {missing.not_asked.code} '{missing.not_asked.label}'"
                )
            elif rule == "routed_to":
                out.append(
                    f"routed to '{column}'{because} but coded {missing.not_asked.code} '{missing.not_asked.label}'"
                )
            else:
                out.append(
                    f"routed to '{column}'{because} but blank (system missing); expected an answer, "
                    f"{missing.dont_know.code} '{missing.dont_know.label}' or {missing.no_answer.code} '{missing.no_answer.label}'"
                )
        else:
            out.append(f"failed {rule}")
    return out


def _duplicate_groups(frame: pd.DataFrame, rid: str) -> dict[int, tuple[tuple[int, str], bool]]:
    """For each row failing uniqueness: (first source row, the rows sharing its id as text), is it a copy."""
    fail, copies = _duplicate_rows(frame, rid, ["source_file", "source_row"])
    shared = frame.loc[frame.duplicated(["file_wave", rid], keep=False).to_numpy(), ["file_wave", rid, "source_row"]]
    shared = shared[shared[rid].notna()]
    rows_of = {}
    for key, group in shared.groupby(["file_wave", rid])["source_row"]:
        rows = group.astype(int).tolist()
        text = _ranges(rows[:_LISTED_ROWS]) + (
            f" and {len(rows) - _LISTED_ROWS} more" if len(rows) > _LISTED_ROWS else ""
        )
        rows_of[key] = (rows[0], text, len(rows))
    out = {}
    for i, key in zip(np.flatnonzero(fail), zip(frame["file_wave"].to_numpy()[fail], frame[rid].to_numpy()[fail])):
        first, text, count = rows_of[key]
        out[int(i)] = ((first, text, count), bool(copies[i]))
    return out


def _code(value: float) -> str:
    if pd.isna(value):
        return "blank"
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _ranges(codes: Sequence[int]) -> str:
    """`1-5, 98, 99, -1`: consecutive runs collapsed, order kept."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][-1] + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def reconcile(frame: pd.DataFrame, is_bad: np.ndarray, reasons: pd.DataFrame) -> dict[str, Any]:
    """Counts per wave (by file) and in total; rows_in = rows_valid + rows_quarantined."""
    waves = frame["file_wave"].to_numpy()

    def counts(mask: np.ndarray) -> dict[str, Any]:
        rows_in = int(mask.sum())
        quarantined = int((mask & is_bad).sum())
        return {
            "rows_in": rows_in,
            "rows_valid": rows_in - quarantined,
            "rows_quarantined": quarantined,
            "quarantined_share": round(quarantined / rows_in, 6) if rows_in else 0.0,
        }

    per_wave = {str(int(w)): counts(waves == w) for w in sorted(np.unique(waves))}
    wave_of_file = frame.drop_duplicates("source_file").set_index("source_file")["file_wave"]
    by_rule: dict[str, dict[str, int]] = {w: {} for w in per_wave}
    if not reasons.empty:
        keyed = reasons.assign(
            wave=reasons["source_file"].map(wave_of_file).astype(int).astype(str),
            key=reasons["rule"] + ":" + reasons["column"],
        )
        for (w, key), n in keyed.groupby(["wave", "key"]).size().items():
            by_rule[w][key] = int(n)
    return {"waves": per_wave, "total": counts(np.ones(len(frame), dtype=bool)), "reasons": by_rule}


def check_quarantine_share(metrics: Mapping[str, Any], max_share: float, *, kept_in: Path) -> None:
    """Raise `InputError` when a wave's quarantined share passes `max_share`; the message names the
    folder the failed stage's quarantine is kept in (`kept_in`)."""
    over = [(w, m) for w, m in metrics["waves"].items() if m["quarantined_share"] > max_share]
    if not over:
        return
    decimals = _distinguishing_decimals([m["quarantined_share"] for _, m in over], max_share)
    parts = []
    for wave, m in over:
        top = sorted(metrics["reasons"].get(wave, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        reasons = ", ".join(f"{key} ({n})" for key, n in top)
        parts.append(
            f"wave {wave}: {m['rows_quarantined']} of {m['rows_in']} rows quarantined "
            f"({m['quarantined_share']:.{decimals}%}); most frequent: {reasons}"
        )
    raise InputError(
        f"{'; '.join(parts)}; the limit is {max_share:.{decimals}%} (validate.max_quarantine_share); "
        f"the quarantine is kept in {kept_in}/ for inspection",
        rule="max_quarantine_share",
    )


def _distinguishing_decimals(shares: Sequence[float], limit: float) -> int:
    """Decimals (1 to 4) at which every share over the limit prints above it, not as the same %."""
    for decimals in range(1, 4):
        if all(f"{share:.{decimals}%}" != f"{limit:.{decimals}%}" for share in shares):
            return decimals
    return 4


QUARANTINE_CODE_HEADERS = frozenset({"Rij", "Meting (bestand)", "Respondentnummer", "Gevonden code"})
"""Whole-number columns of the quarantine workbook shown without a thousands separator."""


def quarantine_sheets(result: ValidationResult, spec: QuestionnaireSpec) -> dict[str, pd.DataFrame]:
    """The quarantine in Dutch for the data manager: "Rijen" (each quarantined row with its reasons and
    its codes) and "Redenen" (one line per broken rule: file, row, rule, question, the code found)."""
    quarantine, reasons = result.quarantine, result.reasons
    dutch = [f"{RULE_TEXT_NL.get(rule, rule)} ({column})" for rule, column in zip(reasons["rule"], reasons["column"])]
    per_row: dict[tuple[str, int], list[str]] = {}
    for key, text in zip(zip(reasons["source_file"], reasons["source_row"]), dutch):
        per_row.setdefault((str(key[0]), int(key[1])), []).append(text)
    data_columns = [c for c in quarantine.columns if c not in (*ORIGIN_COLUMNS, spec.respondent_id, "reasons")]
    rows = pd.DataFrame(
        {
            "Bestand": quarantine["source_file"].astype(str),
            "Rij": quarantine["source_row"].astype("int64"),
            "Meting (bestand)": quarantine["file_wave"].astype("int64"),
            "Respondentnummer": quarantine[spec.respondent_id],
            "Redenen": [
                "; ".join(per_row.get((str(f), int(r)), []))
                for f, r in zip(quarantine["source_file"], quarantine["source_row"])
            ],
        }
    )
    rows = pd.concat([rows, quarantine[data_columns].reset_index(drop=True)], axis=1)
    found = quarantine.set_index(["source_file", "source_row"])

    def code_found(file: str, row: int, column: str) -> float:
        return float(found.at[(file, row), column]) if column in found.columns else float("nan")

    lines = pd.DataFrame(
        {
            "Bestand": reasons["source_file"].astype(str),
            "Rij": reasons["source_row"].astype("int64"),
            "Regel": reasons["rule"].astype(str),
            "Reden": [RULE_TEXT_NL.get(rule, rule) for rule in reasons["rule"]],
            "Variabele": reasons["column"].astype(str),
            "Omschrijving variabele": [variable_label(spec, c) for c in reasons["column"]],
            "Gevonden code": [
                code_found(f, int(r), c)
                for f, r, c in zip(reasons["source_file"], reasons["source_row"], reasons["column"])
            ],
        }
    )
    return {"Rijen": rows, "Redenen": lines}


# ---------------------------------------------------------------------------
# Stage


def run(store: artifacts.OutputStore, spec: QuestionnaireSpec, params: Params, base_dir: Path) -> dict:
    """Validate the ingested responses; write valid rows, quarantine, metrics, the GX result and the
    settings record (the ingest settings the responses were read with, and this stage's)."""
    from survey_pipeline.workbook import write_frames

    inputs = {"ingest": store.reading("ingest")}
    upstream = upstream_settings(inputs, params)
    settings = params.validate_
    responses = artifacts.read_table(store.reading("ingest") / "responses.parquet", contracts.IngestResponses, spec)
    result = validate_responses(responses, spec)
    for row in result.reasons.head(_LOGGED_ROWS).itertuples(index=False):
        log.warning("%s, row %d, %s:%s: %s", row.source_file, row.source_row, row.rule, row.column, row.message)
    if len(result.reasons) > _LOGGED_ROWS:
        log.warning("... %d more quarantine reason(s)", len(result.reasons) - _LOGGED_ROWS)
    with store.writing("validate") as out:
        artifacts.write_table(result.valid, out / "valid.parquet", contracts.ValidateValid, spec)
        artifacts.write_table(result.quarantine, out / "quarantine.parquet", contracts.ValidateQuarantine, spec)
        artifacts.write_table(result.reasons, out / "quarantine_reasons.parquet", contracts.ValidateQuarantineReasons)
        write_frames(
            out / QUARANTINE_WORKBOOK,
            title=f"{spec.title}: quarantaine",
            sheets=quarantine_sheets(result, spec),
            code_headers=QUARANTINE_CODE_HEADERS,
        )
        artifacts.write_json(result.metrics, out / "metrics.json", contracts.ValidateMetrics)
        write_record(out, {**upstream, "validate": settings}, recorded_software(inputs))
        page = functools.partial(
            data_docs.write_page, out, spec, result.metrics, result.reasons, result.quarantine, RULE_TEXT_NL
        )
        # Checked after writing: on failure the quarantine (and its page) is kept in outputs/failed/validate/.
        try:
            check_quarantine_share(result.metrics, settings.max_quarantine_share, kept_in=store.failed_path("validate"))
        except InputError:
            page(None, "quarantine")
            raise
        checkpoint = None
        if settings.gx_level != "off":
            from survey_pipeline.stages.validate import expectations

            docs = out / data_docs.GX_FOLDER if settings.gx_level == "full" else None
            # in `survey-pipeline run` it runs on while the next stages run (survey_pipeline.gx_process)
            checkpoint = gx_process.submit(
                expectations.run_checkpoint, expectations.suite_input(result.valid, spec), spec, docs
            )
        else:
            page(None)
    total = result.metrics["total"]
    counts = {**total, "waves": result.metrics["waves"], "gx_level": settings.gx_level}
    if checkpoint is not None:
        gx_process.defer(functools.partial(_finish_checkpoint, store, checkpoint, page, settings.gx_failure, counts))
    log.info(
        "validate: %d rows in, %d valid, %d quarantined",
        total["rows_in"],
        total["rows_valid"],
        total["rows_quarantined"],
    )
    return counts


def _finish_checkpoint(
    store: artifacts.OutputStore,
    checkpoint: Callable[[], dict[str, Any]],
    page: Callable[..., None],
    on_failure: str,
    counts: dict[str, Any],
) -> None:
    """Complete the staged outputs with the checkpoint's result (gx_result.json, the page), check it
    (as inside the stage's block: on failure its outputs are kept in outputs/failed/validate/) and
    add its counts to the stage's `counts` in the run manifest."""
    with store.finishing("validate") as out:
        gx = checkpoint()
        artifacts.write_json(gx, out / "gx_result.json", contracts.GxResult)
        page(gx)
        _check_gx_result(gx, on_failure)
    counts.update(
        gx_success=gx["success"],
        gx_expectations=len(gx["expectations"]),
        gx_failed=sum(not e["success"] for e in gx["expectations"]),
    )


def _check_gx_result(gx: Mapping[str, Any], on_failure: str) -> None:
    """A failed checkpoint stops the stage (gx_failure: error) or is logged (warn)."""
    if gx["success"]:
        return
    failed = [e["name"] for e in gx["expectations"] if not e["success"]]
    message = (
        f"the great-expectations checkpoint failed {len(failed)} of {len(gx['expectations'])} "
        f"expectation(s) on the valid rows: {', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}"
    )
    if on_failure == "error":
        raise InputError(message, rule="gx_checkpoint")
    log.warning("%s", message)
