"""Registration figures: kengetallen from an organisation's records, not from the survey.

The spec declares each figure (`registrations:` id, Dutch label, unit, kind, source,
targets); the values per year are in one CSV file, named by params.yaml
`estimate.registrations_file`:

    indicator_id,year,value,unit,source,note
    entree_requests,2021,27027,count,Registratie entree WIJ,het betreft hier niet unieke personen
    entree_own_network,2021,37,percentage,Registratie entree WIJ,

`note` is optional (the annual report prints it as a footnote to the value). The file is
read strictly (`survey_pipeline.numbers`): a count is digits only (`27.027` or `27,027`
is an error, never a guess at what the separator meant), a percentage is a number in
0-100 with `.` as the decimal point (`37,5` is an error). Every problem is one
`InputError` naming file, row (line in the file, header = 1), column and rule:

  registrations_file     missing file, unreadable CSV, no data rows
  registrations_columns  a required column missing, or an unknown column
  registrations_unknown_indicator  an id the spec does not declare under `registrations`
  registrations_unit     a unit other than the spec's for that id
  registrations_year     a year that is not a whole number in 1900-2100
  registrations_number   a value that is not a strictly written number
  registrations_negative_count  a count below 0
  registrations_percentage_range  a percentage outside 0-100
  registrations_source   an empty source
  registrations_duplicate  a second value for the same (id, year)

Targets are judged on the value itself (`survey_pipeline.targets.evaluate` with an
interval of zero width): a registration has no sampling error. A change target
("toename", "afname", "stabiel") compares with the latest earlier year that has a value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from survey_pipeline import contracts
from survey_pipeline.contracts import columns
from survey_pipeline.errors import InputError
from survey_pipeline.numbers import number_problem, read_text_csv
from survey_pipeline.spec import QuestionnaireSpec, Registration
from survey_pipeline.targets import Interval, evaluate, parse_target

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("indicator_id", "year", "value", "unit", "source")
OPTIONAL_COLUMNS = ("note",)
TABLE_COLUMNS = columns(contracts.EstimateRegistrations)
YEAR_RANGE = (1900, 2100)  # = contracts.YEARS
LARGEST_COUNT = 2**53  # every whole number up to here is exact as a float64
PERCENT = 100.0

RULE_FILE = "registrations_file"
RULE_COLUMNS = "registrations_columns"
RULE_INDICATOR = "registrations_unknown_indicator"
RULE_UNIT = "registrations_unit"
RULE_YEAR = "registrations_year"
RULE_NUMBER = "registrations_number"
RULE_NEGATIVE = "registrations_negative_count"
RULE_PERCENTAGE = "registrations_percentage_range"
RULE_SOURCE = "registrations_source"
RULE_DUPLICATE = "registrations_duplicate"


def read_registrations(path: Path, spec: QuestionnaireSpec, *, name: str | None = None) -> pd.DataFrame:
    """The registrations file as checked rows (indicator_id, year, value, unit, source, note), in file order.

    `name` is how messages name the file (default: the path)."""
    file = name or str(path)
    if not path.is_file():
        raise InputError("file not found", file=file, rule=RULE_FILE)
    table = read_text_csv(path, rule=RULE_FILE)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)]
    if missing or unknown:
        raise InputError(
            f"expected the columns {', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)}); "
            + (f"missing {missing}" if missing else f"unknown {unknown}"),
            file=file,
            column=(missing or unknown)[0],
            rule=RULE_COLUMNS,
        )
    if table.empty:
        raise InputError("the file has no data rows", file=file, rule=RULE_FILE)
    declared = {registration.id: registration for registration in spec.registrations}
    first_row: dict[tuple[str, int], int] = {}
    records = []
    for index, cells in enumerate(table.to_dict("records")):
        row = index + 2  # line 1 is the header

        def fail(problem: str, column: str, rule: str, row: int = row) -> InputError:
            return InputError(problem, file=file, row=row, column=column, rule=rule)

        indicator_id = cells["indicator_id"]
        registration = declared.get(indicator_id)
        if registration is None:
            known = ", ".join(declared) or "none"
            raise fail(
                f"'{indicator_id}' is not a registration of the spec (declared: {known})",
                "indicator_id",
                RULE_INDICATOR,
            )
        if cells["unit"] != registration.unit:
            raise fail(
                f"unit '{cells['unit']}' but the spec declares '{indicator_id}' as '{registration.unit}'",
                "unit",
                RULE_UNIT,
            )
        year = _year(cells["year"], fail)
        value = _value(cells["value"], registration, fail)
        source = cells["source"].strip()
        if not source:
            raise fail("empty source (say where the figure comes from)", "source", RULE_SOURCE)
        key = (indicator_id, year)
        if key in first_row:
            raise fail(
                f"a second value for '{indicator_id}' in {year} (first at row {first_row[key]})", "year", RULE_DUPLICATE
            )
        first_row[key] = row
        note = cells.get("note", "").strip()
        records.append((indicator_id, year, value, registration.unit, source, note))
    without = [r.id for r in spec.registrations if r.id not in {key[0] for key in first_row}]
    if without:
        log.warning("%s has no value for the registration(s) %s: printed as '-'", file, ", ".join(without))
    return pd.DataFrame.from_records(records, columns=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS])


def _year(text: str, fail) -> int:
    problem = number_problem(text, whole=True)
    if problem is None and not YEAR_RANGE[0] <= int(text) <= YEAR_RANGE[1]:
        problem = f"a year must lie in {YEAR_RANGE[0]}-{YEAR_RANGE[1]}"
    if problem is not None:
        raise fail(f"{problem}, got {text!r}", "year", RULE_YEAR)
    return int(text)


def _value(text: str, registration: Registration, fail) -> float:
    """The value as a float; a count whole and >= 0, a percentage in 0-100."""
    count = registration.unit == "count"
    problem = number_problem(text, whole=count)
    if problem is not None:
        raise fail(f"{problem}, got {text!r}", "value", RULE_NUMBER)
    value = float(text)
    if count and value < 0:
        raise fail(f"a count cannot be negative, got {text!r}", "value", RULE_NEGATIVE)
    if count and value > LARGEST_COUNT:
        raise fail(f"too large a number, got {text!r}", "value", RULE_NUMBER)
    if not count and not 0 <= value <= PERCENT:
        raise fail(f"a percentage lies in 0-100, got {text!r}", "value", RULE_PERCENTAGE)
    return value


def previous_year(years: Iterable[int], year: int) -> int | None:
    """The latest of `years` before `year` (the value a change target compares with); None if none."""
    earlier = [y for y in years if y < year]
    return max(earlier) if earlier else None


def _on_target_scale(value: float, unit: str) -> float:
    """Targets' levels are shares in [0, 1] (`targets.Level`): a percentage is divided by 100."""
    return value / PERCENT if unit == "percentage" else value


def registration_table(values: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The checked values with label, kind and the target judgement, in spec order then year
    (contract `EstimateRegistrations`); `values` is `read_registrations`' frame."""
    order = {registration.id: position for position, registration in enumerate(spec.registrations)}
    rows = values.assign(_order=values["indicator_id"].map(order)).sort_values(["_order", "year"], kind="stable")
    records = []
    for indicator_id, group in rows.groupby("_order", sort=True):
        registration = spec.registrations[int(indicator_id)]
        by_year = dict(zip(group["year"].astype(int), group["value"].astype(float)))
        for line in group.itertuples(index=False):
            year, value = int(line.year), float(line.value)
            text = registration.targets.get(year, "")
            previous = previous_year(by_year, year)
            level = _on_target_scale(value, registration.unit)
            change = None
            if previous is not None:
                step = level - _on_target_scale(by_year[previous], registration.unit)
                change = Interval(step, step, step)
            status, flags = evaluate(parse_target(text) if text else None, Interval(level, level, level), change)
            records.append(
                {
                    "indicator_id": registration.id,
                    "label": registration.label,
                    "kind": registration.kind,
                    "unit": registration.unit,
                    "year": year,
                    "value": value,
                    "source": line.source,
                    "note": line.note,
                    "target": text,
                    "target_status": status,
                    "flags": flags,
                }
            )
    return typed_table(pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS)))


def typed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the contract's column order and dtypes (also for a table without rows)."""
    out = frame.loc[:, list(TABLE_COLUMNS)].copy()
    for column, dtype in TABLE_COLUMNS.items():
        if dtype == "str":
            out[column] = pd.array(out[column].astype(object).to_numpy(), dtype="str")
        else:
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def empty_table() -> pd.DataFrame:
    """The table without rows: the spec declares no registrations."""
    return typed_table(pd.DataFrame(columns=list(TABLE_COLUMNS)))
