"""Great-expectations (GX Core 1.x) checkpoint on the valid rows, with Data Docs.

The validate stage runs it at `validate.gx_level` `checkpoint` (JSON summary in
`gx_result.json`) or `full` (also Data Docs, HTML for people); at `off` GX is
never imported (it costs seconds). An expectation that raises inside GX counts as
failed, never as passed. The context is ephemeral: nothing is written outside
`docs_dir`.

pandera (`validate.validation_schema`) has already checked every row; the suite
keeps only what adds something to that:

- `not_empty`: the valid table has rows (pandera passes an empty table);
- `unique_id`: (file_wave, respondent id) is unique in the valid table. pandera
  lets the first of exact copies through, so only the output shows that the
  copies were really removed;
- `routed_past`, `routed_to`, `not_blank`: the routing, stated a second time and
  independently, from each question's own group (`asked_of` -> `when`) rather
  than from the flattened routing path pandera checks; these are the rules a
  reader of the Data Docs looks for.

Dropped, because they restated a pandera check one to one (same column, same
codes, same waves): allowed codes of questions and background variables,
questions blank in waves that did not ask them, the respondent id present and in
range, the wave variable equal to the file's wave, the file's wave in the spec,
and the column set (pandera requires every spec column).

Row conditions are precomputed: `checkpoint_frame` holds the questions, wave and
id, and one boolean column per routing condition, so GX filters a narrow frame
on one boolean column instead of evaluating `isin` clauses on the whole table
for every metric of every expectation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey_pipeline.spec import Condition, QuestionnaireSpec

SUITE_NAME = "responses"
RUN_NAME = "validate"
# Counts of unexpected values, never the values: Data Docs must not show respondent ids or answers.
# BASIC gives the same counts as SUMMARY with fewer metrics, each of which filters the whole
# frame by its row condition again (900k rows: 3.4 s instead of 4.8 s CPU).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class RoutingRule:
    """One routing expectation on `variable`, for the rows where the boolean column `rows` is True (all if None).

    Those rows: measured in the wave (`waves`) and, when a `condition` is given,
    meeting it (or, with `negate`, not meeting it).
    """

    rule: str
    variable: str
    rows: str | None
    waves: tuple[int, ...]
    condition: Condition | None = None
    negate: bool = False

    @property
    def reads(self) -> tuple[str, ...]:
        return ("file_wave", *(self.condition.variables if self.condition is not None else ()))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        mask = frame["file_wave"].isin(self.waves).to_numpy(dtype=bool, copy=True)
        if self.condition is not None:
            selected = self.condition.mask(frame)
            mask &= ~selected if self.negate else selected
        return mask


def routing_rules(spec: QuestionnaireSpec) -> list[RoutingRule]:
    """routed_past (one per filter clause), routed_to and not_blank for every question.

    Stated from each question's own group (`asked_of` -> `when`), not from the
    flattened routing path pandera checks (`validate.routing_clauses`).
    """
    rules = []
    for name, variable in spec.variables.items():
        waves = tuple(variable.waves)
        when = spec.groups[variable.asked_of].when
        for clause in when.clauses if when else ():
            rules.append(
                RoutingRule(
                    "routed_past", name, f"routed_past__{name}__{clause[0]}", waves, Condition((clause,)), negate=True
                )
            )
        conditional = when is not None or set(waves) != set(spec.waves)
        rows = f"routed_to__{name}" if conditional else None
        rules.append(RoutingRule("routed_to", name, rows, waves, when))
        rules.append(RoutingRule("not_blank", name, rows, waves, when))
    return rules


def suite_input(valid: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """The columns of the valid rows the suite reads (wave, id, the questions and what routes them):
    what the validate stage sends, pickled, to the GX worker (not the origin and background columns)."""
    reads = dict.fromkeys(
        ["file_wave", spec.respondent_id, *spec.variables, *(c for rule in routing_rules(spec) for c in rule.reads)]
    )
    return valid[[c for c in reads if c in valid]]


def checkpoint_frame(valid: pd.DataFrame, spec: QuestionnaireSpec) -> pd.DataFrame:
    """What the suite reads: wave and id (uniqueness), the questions, and one boolean column per routing condition.

    The conditions are computed here once, so GX filters on a precomputed column
    of a narrow frame instead of evaluating `isin` clauses on the whole table for
    every metric of every expectation.
    """
    rid = spec.respondent_id
    columns: dict[str, Any] = {}
    for name in ("file_wave", rid, *spec.variables):
        if name in valid:
            columns[name] = valid[name].to_numpy()
    masks: dict[tuple[Any, ...], np.ndarray] = {}  # the questions of one group share their rows
    for rule in routing_rules(spec):
        # a condition on a missing column stays missing too: its expectations then raise inside GX (failed)
        if rule.rows is not None and rule.rows not in columns and all(c in valid for c in rule.reads):
            key = (rule.waves, rule.condition, rule.negate)
            if key not in masks:
                masks[key] = rule.mask(valid)
            columns[rule.rows] = masks[key]
    return pd.DataFrame(columns)


class FilteredOnce(pd.DataFrame):
    """The batch the checkpoint checks: the rows of each row condition are selected once, then reused.

    GX's pandas engine filters the batch with `DataFrame.query` for every metric of an
    expectation with a row condition (row count, column types, null and unexpected
    counts: about five per expectation), a copy of the whole frame each time; at
    900,000 rows that was most of the checkpoint's time. Here a condition's rows are
    copied once, and once for all conditions that select the same rows (the questions
    of one routing group): `query` returns what `DataFrame.query` would, a frame equal
    to the one kept. Frames derived from this one are plain DataFrames.
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def query(self, expr: str, *, inplace: bool = False, **kwargs: Any) -> Any:
        if inplace or kwargs:
            return super().query(expr, inplace=inplace, **kwargs)
        by_condition = self.__dict__.setdefault("_rows_of_condition", {})
        if expr not in by_condition:
            mask = self.eval(expr)  # as `DataFrame.query` does: the rows are `self.loc[mask]`
            selected = self.__dict__.setdefault("_selected_rows", {})
            rows = np.packbits(mask.to_numpy(dtype=bool)).tobytes()
            if rows not in selected:
                selected[rows] = self.loc[mask]
            by_condition[expr] = selected[rows]
        return by_condition[expr]


def build_suite(spec: QuestionnaireSpec) -> Any:
    """The expectation suite of the valid responses (see the module docstring for what it holds and why)."""
    _quiet_gx_logging()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    rid = spec.respondent_id
    suite = gx.ExpectationSuite(name=SUITE_NAME)

    def add(expectation_class: type, rule: str, variable: str, rows: str | None = None, **kwargs: Any) -> None:
        if rows is not None:
            kwargs["row_condition"] = Column(rows) == True  # noqa: E712 - a GX condition object
        suite.add_expectation(expectation_class(meta={"rule": rule, "variable": variable}, **kwargs))

    add(gxe.ExpectTableRowCountToBeBetween, "not_empty", "<table>", min_value=1)
    add(gxe.ExpectCompoundColumnsToBeUnique, "unique_id", rid, column_list=["file_wave", rid])
    for rule in routing_rules(spec):
        not_asked = spec.variables[rule.variable].missing.not_asked.code
        if rule.rule == "routed_past":
            add(
                gxe.ExpectColumnValuesToBeInSet,
                rule.rule,
                rule.variable,
                rule.rows,
                column=rule.variable,
                value_set=[not_asked],
            )
        elif rule.rule == "routed_to":
            add(
                gxe.ExpectColumnValuesToNotBeInSet,
                rule.rule,
                rule.variable,
                rule.rows,
                column=rule.variable,
                value_set=[not_asked],
            )
        else:
            add(gxe.ExpectColumnValuesToNotBeNull, rule.rule, rule.variable, rule.rows, column=rule.variable)
    return suite


def run_checkpoint(frame: pd.DataFrame, spec: QuestionnaireSpec, docs_dir: Path | None = None) -> dict[str, Any]:
    """Run the suite on `frame`; build Data Docs in `docs_dir`; return a JSON-ready summary."""
    _quiet_gx_logging()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        docs_dir = Path(docs_dir)
        docs_dir.mkdir(parents=True, exist_ok=True)
        sites[RUN_NAME] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    batch = (
        context.data_sources.add_pandas(spec.survey_id)
        .add_dataframe_asset("valid")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(build_suite(spec))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=RUN_NAME, data=batch, suite=suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[RUN_NAME])] if sites else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=RUN_NAME, validation_definitions=[definition], actions=actions, result_format=RESULT_FORMAT)
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": FilteredOnce(checkpoint_frame(frame, spec))},
        run_id=RunIdentifier(run_name=RUN_NAME),
    )
    return summarise(result)


def _quiet_gx_logging() -> None:
    """GX logs its internals at INFO level; keep them out of the pipeline's log unless asked for."""
    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:
        gx_log.setLevel(logging.WARNING)


def summarise(result: Any) -> dict[str, Any]:
    """Per expectation: rule, variable, success (False when it raised), counts; overall success."""
    rows = []
    for validation in result.run_results.values():
        for item in validation.results:
            config = item.expectation_config
            meta = config.meta or {}
            raised, message = _raised(item.exception_info)
            details = item.result or {}
            kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "row_condition")}
            condition = config.kwargs.get("row_condition")
            rows.append(
                {
                    "suite": validation.suite_name,
                    "name": f"{meta.get('rule', config.type)}:{meta.get('variable', '')}",
                    "rule": meta.get("rule"),
                    "variable": meta.get("variable"),
                    "expectation": config.type,
                    "kwargs": _jsonable(kwargs),
                    "row_condition": _condition_text(condition),
                    "success": bool(item.success) and not raised,
                    "raised_exception": raised,
                    "exception_message": message,
                    "element_count": details.get("element_count"),
                    "unexpected_count": details.get("unexpected_count"),
                }
            )
    failed = sum(not r["success"] for r in rows)
    return {
        "success": bool(rows) and failed == 0,
        "statistics": {
            "evaluated_expectations": len(rows),
            "successful_expectations": len(rows) - failed,
            "unsuccessful_expectations": failed,
            "raised_exceptions": sum(r["raised_exception"] for r in rows),
        },
        "expectations": rows,
    }


def _condition_text(condition: Any) -> str | None:
    """`(file_wave IN (2019, 2021) AND wmo_client NOT_IN (1))`, from a condition or its dict form."""
    if condition is None:
        return None
    from great_expectations.expectations.row_conditions import deserialize_row_condition

    return repr(deserialize_row_condition(condition))


def _raised(info: Any) -> tuple[bool, str | None]:
    """GX reports a raised exception either flat or per metric; find it in both shapes."""
    if not info:
        return False, None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return True, _first_line(info.get("exception_message"))
        return False, None
    for value in info.values():
        if isinstance(value, dict) and (value.get("raised_exception", True) or value.get("exception_message")):
            return True, _first_line(value.get("exception_message"))
    return False, None


def _first_line(text: Any) -> str | None:
    if not text:
        return None
    lines = str(text).strip().splitlines()
    return lines[0] if lines else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value
