"""Great-expectations (GX Core 1.x) suite generated from the spec, run as a checkpoint.

A second, independent statement of the validation rules: the validate stage runs
it on the rows pandera passed and publishes the result as Data Docs (HTML for
people) and a JSON summary (for machines). An expectation that raises inside GX
counts as failed, never as passed. GX is imported inside the functions (it costs
seconds), and its context is ephemeral: nothing is written outside `docs_dir`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from survey_pipeline.ingest import ORIGIN_COLUMNS
from survey_pipeline.spec import QuestionnaireSpec
from survey_pipeline.validate import MAX_ID

SUITE_NAME = "responses"
RUN_NAME = "validate"
# Counts of unexpected values, never the values: Data Docs must not show respondent ids or answers.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


def build_suite(spec: QuestionnaireSpec) -> Any:
    """The expectation suite of valid responses: same rules as `validate.validation_schema`."""
    _quiet_gx_logging()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    rid, wave = spec.respondent_id, spec.wave_variable
    all_waves = list(spec.waves)
    suite = gx.ExpectationSuite(name=SUITE_NAME)

    def add(expectation_class: type, rule: str, variable: str, condition: Any = None, **kwargs: Any) -> None:
        if condition is not None:
            kwargs["row_condition"] = condition
        meta = {"rule": rule, "variable": variable}
        suite.add_expectation(expectation_class(meta=meta, **kwargs))

    def in_waves(waves: list[int]) -> Any:
        return None if set(waves) == set(all_waves) else Column("file_wave").is_in(waves)

    def both(first: Any, second: Any) -> Any:
        if first is None:
            return second
        return second if second is None else first & second

    add(gxe.ExpectTableRowCountToBeBetween, "not_empty", "<table>", min_value=1)
    required = [*ORIGIN_COLUMNS, rid, wave, *spec.background, *spec.variables]
    add(gxe.ExpectTableColumnsToMatchSet, "column_present", "<table>", column_set=required, exact_match=False)
    add(gxe.ExpectColumnValuesToBeInSet, "wave_in_spec", "file_wave", column="file_wave", value_set=all_waves)
    add(gxe.ExpectColumnValuesToNotBeNull, "valid_id", rid, column=rid)
    add(gxe.ExpectColumnValuesToBeBetween, "valid_id", rid, column=rid, min_value=0, max_value=MAX_ID)
    add(gxe.ExpectCompoundColumnsToBeUnique, "unique_id", rid, column_list=["file_wave", rid])
    add(gxe.ExpectColumnPairValuesToBeEqual, "wave_matches_file", wave, column_A=wave, column_B="file_wave")
    for name, background in spec.background.items():
        add(gxe.ExpectColumnValuesToBeInSet, "allowed_codes", name, column=name, value_set=list(background.codes))

    for name, variable in spec.variables.items():
        waves = list(variable.waves)
        measured = in_waves(waves)
        not_asked = variable.missing.not_asked.code
        add(
            gxe.ExpectColumnValuesToBeInSet,
            "allowed_codes",
            name,
            measured,
            column=name,
            value_set=[*variable.answer_codes, not_asked],
        )
        others = [w for w in all_waves if w not in waves]
        if others:
            add(gxe.ExpectColumnValuesToBeNull, "not_in_wave", name, Column("file_wave").is_in(others), column=name)
        when = spec.groups[variable.asked_of].when
        routed_to = measured
        for filter_name, codes in when.clauses if when else ():
            past = both(measured, Column(filter_name).is_not_in(list(codes)))
            add(gxe.ExpectColumnValuesToBeInSet, "routed_past", name, past, column=name, value_set=[not_asked])
            routed_to = both(routed_to, Column(filter_name).is_in(list(codes)))
        add(gxe.ExpectColumnValuesToNotBeInSet, "routed_to", name, routed_to, column=name, value_set=[not_asked])
        add(gxe.ExpectColumnValuesToNotBeNull, "not_blank", name, routed_to, column=name)
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
    batch = context.data_sources.add_pandas(spec.survey_id).add_dataframe_asset("valid").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(build_suite(spec))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=RUN_NAME, data=batch, suite=suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[RUN_NAME])] if sites else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=RUN_NAME, validation_definitions=[definition], actions=actions, result_format=RESULT_FORMAT)
    )
    data = frame.reset_index(drop=True).astype({"source_file": "object"}) if "source_file" in frame else frame
    result = checkpoint.run(batch_parameters={"dataframe": data}, run_id=RunIdentifier(run_name=RUN_NAME))
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
