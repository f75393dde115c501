"""Checks on the published tables before anything is written.

Three layers, all must pass or the stage raises `InputError` (exit 2). They run
before the stage writes anything, so the last good tables stay in `outputs/report/`:

1. consistency with the spec: the estimate stage computed each indicator on the
   base and variable the spec declares now (a stale table would get the wrong
   footnote);
2. the table contracts `survey_pipeline.contracts.Report*` (structure, ranges,
   intervals, suppressed rows carry no numbers);
3. a Great Expectations checkpoint per table with the rules that depend on the
   run: the reliability rule from `params.yaml` for every published estimate,
   and every spec indicator (and question) present for every measured wave.
   Skipped (GX not imported) when `validate.gx_level` is off.

The reliability rule is the estimate stage's (`survey_pipeline.reliability`):
n_eff and the rule's own 95% interval are recomputed from the published estimate,
SE, n and df as that module defines them, whatever interval the table displays.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from survey_pipeline import artifacts, gx_process
from survey_pipeline.contracts import REPORT_ANALYSIS_TABLES, REPORT_TABLES, TOLERANCE, contract_name
from survey_pipeline.errors import InputError
from survey_pipeline.reliability import effective_sample_size, publication_interval
from survey_pipeline.settings import SuppressionRule
from survey_pipeline.spec import QuestionnaireSpec

log = logging.getLogger(__name__)


def row_names(frame: pd.DataFrame) -> pd.Series:
    """A readable name per row of a published table ("heard 2019 Totaal"), for error messages."""
    item = frame["indicator_id"] if "indicator_id" in frame else frame["variable"]
    wave = (
        frame["wave"].astype(str)
        if "wave" in frame
        else frame["wave_from"].astype(str) + "-" + frame["wave_to"].astype(str)
    )
    name = item.astype(object) + " " + wave.astype(object) + " " + frame["breakdown_label"].astype(object)
    if "code" in frame:
        name = name + " code " + frame["code"].astype(str)
    return name


def check_schemas(
    tables: Mapping[str, pd.DataFrame],
    spec: QuestionnaireSpec,
    folder: Path,
    contracts: Mapping[str, type[pa.DataFrameModel]] = REPORT_TABLES,
) -> dict[str, pd.DataFrame]:
    """Validate each table against its contract (`REPORT_TABLES`, the survey's names from `spec`);
    SchemaCheckError naming each failed check once and the table's place in the report `folder`."""
    checked = {}
    for name, frame in tables.items():
        contract = contracts[name]
        try:
            checked[name] = artifacts.validate_contract(frame, contract, spec)
        except pandera.errors.SchemaErrors as exc:
            raise artifacts.SchemaCheckError(
                _schema_failures(exc.failure_cases, frame),
                file=str(folder / name),
                rule=f"schema:{contract_name(contract)}",
            ) from None
    return checked


def _schema_failures(cases: pd.DataFrame, frame: pd.DataFrame) -> str:
    """One line per failed check (a table-level check fails once per column in pandera: counted once)."""
    named = "breakdown_label" in frame and ("indicator_id" in frame or "variable" in frame)
    names = row_names(frame) if named else None
    cases = cases.assign(
        where=np.where(cases["schema_context"] == "DataFrameSchema", "<table>", cases["column"].astype(str))
    )
    cases = cases.drop_duplicates(subset=["where", "check", "index"])
    parts = []
    for (where, check), group in cases.groupby(["where", "check"], sort=False):
        rows = [int(i) for i in group["index"].dropna()]
        example = ""
        if rows and names is not None:
            example = ", e.g. " + ", ".join(str(names.iloc[i]) for i in rows[:3] if 0 <= i < len(names))
        parts.append(f"{where}: {check} ({len(rows) or len(group)} row(s){example})")
    return f"{len(parts)} schema check(s) failed: " + "; ".join(parts)


# ---------------------------------------------------------------------------
# Consistency with the spec


def check_against_spec(indicators: pd.DataFrame, spec: QuestionnaireSpec) -> None:
    """The indicator table must have been computed on the spec's current base and variable."""
    known = {ind.id: ind for ind in spec.indicators}
    seen = indicators.drop_duplicates("indicator_id")
    for row in seen.itertuples(index=False):
        ind = known.get(row.indicator_id)
        if ind is None:
            raise InputError(
                f"indicator '{row.indicator_id}' is not in the spec; rerun the estimate stage",
                file="indicators",
                column="indicator_id",
                rule="report_spec",
            )
        for column, expected in (("base", ind.base), ("variable", ind.variable)):
            if getattr(row, column) != expected:
                raise InputError(
                    f"indicator '{ind.id}' was estimated with {column} '{getattr(row, column)}' but the spec says "
                    f"'{expected}'; rerun the estimate stage",
                    file="indicators",
                    column=column,
                    rule="report_spec",
                )


# ---------------------------------------------------------------------------
# Great Expectations checkpoint


@dataclass(frozen=True)
class CheckOutcome:
    table: str
    check: str
    success: bool
    failures: int
    examples: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "check": self.check,
            "success": self.success,
            "failures": self.failures,
            "examples": list(self.examples),
        }


def expected_keys(spec: QuestionnaireSpec, run_waves: Sequence[int]) -> tuple[list[str], list[str]]:
    """`indicator@wave` and `variable@wave` for every spec item in every wave of the run that asked it."""
    run = set(run_waves)
    indicators = [f"{i.id}@{w}" for i in spec.indicators for w in spec.variables[i.variable].waves if w in run]
    variables = [f"{v.name}@{w}" for v in spec.variables.values() for w in v.waves if w in run]
    return indicators, variables


def _interval_columns(
    frame: pd.DataFrame, value: str, rule: SuppressionRule | None = None, n: str = "n"
) -> dict[str, pd.Series]:
    """Gaps to the displayed CI bounds and, with a rule, the widths of the rule's own interval."""
    columns = {"lower_gap": frame[value] - frame["ci_lower"], "upper_gap": frame["ci_upper"] - frame[value]}
    if rule is not None:
        lower, upper = publication_interval(frame[value], frame["se"], frame[n], frame["df"])
        width = pd.Series(upper - lower, index=frame.index)
        relative = (width / frame[value]).replace([np.inf, -np.inf], 1e9)
        columns["ci_width"] = width
        columns["relative_ci_width"] = relative.where(width > rule.relative_width_from)
    return columns


def _key(frame: pd.DataFrame, item: str) -> pd.Series:
    key = frame[item].astype("str") + "@" + frame["wave"].astype("int64").astype("str")
    return key.where(frame["breakdown"] == "total")


def _ends_published(changes: pd.DataFrame, indicators: pd.DataFrame) -> pd.Series:
    """Per change: both of its wave estimates are in the indicator table and published."""
    key = ["indicator_id", "wave", "breakdown", "breakdown_code"]
    shown = indicators.loc[~indicators["suppressed"], key].assign(_shown=True)
    out = changes[["indicator_id", "wave_from", "wave_to", "breakdown", "breakdown_code"]].reset_index(drop=True)
    for end in ("wave_from", "wave_to"):
        merged = out.merge(
            shown.rename(columns={"wave": end}), on=["indicator_id", end, "breakdown", "breakdown_code"], how="left"
        )
        out[f"_{end}"] = merged["_shown"].fillna(False).astype(bool).to_numpy()
    return out["_wave_from"] & out["_wave_to"]


def _frames_for_gx(tables: Mapping[str, pd.DataFrame], rule: SuppressionRule) -> dict[str, pd.DataFrame]:
    """Plain numeric/object frames with the derived columns the expectations test."""
    ind = tables["indicators"]
    chg = tables["changes"]
    dst = tables["distributions"]
    ends = _ends_published(chg, ind)
    frames = {
        "indicators": pd.DataFrame(
            {
                "row": row_names(ind),
                "indicator_id": ind["indicator_id"].astype(object),
                "key": _key(ind, "indicator_id").astype(object),
                "estimate": ind["estimate"],
                "ci_lower": ind["ci_lower"],
                "ci_upper": ind["ci_upper"],
                "n": ind["n"].astype("float64"),
                "sum_weights": ind["sum_weights"],
                "n_eff_rule": effective_sample_size(ind["estimate"], ind["se"], ind["n"]),
                "published": ~ind["suppressed"].astype(bool),
                **_interval_columns(ind, "estimate", rule),
            }
        ),
        "changes": pd.DataFrame(
            {
                "row": row_names(chg),
                "estimate_from": chg["estimate_from"],
                "estimate_to": chg["estimate_to"],
                "difference": chg["difference"],
                "ci_lower": chg["ci_lower"],
                "ci_upper": chg["ci_upper"],
                "se": chg["se"],
                "p_value": chg["p_value"],
                "n_both": chg["n_both"].astype("float64"),
                "difference_gap": chg["difference"] - (chg["estimate_to"] - chg["estimate_from"]),
                "ends_published": ends.astype(object),
                "published": ~chg["suppressed"].astype(bool),
                **_interval_columns(chg, "difference"),
            }
        ),
        "distributions": pd.DataFrame(
            {
                "row": row_names(dst),
                "key": _key(dst, "variable").astype(object),
                "estimate": dst["estimate"],
                "ci_lower": dst["ci_lower"],
                "ci_upper": dst["ci_upper"],
                "n_base": dst["n_base"].astype("float64"),
                "sum_weights_base": dst["sum_weights_base"],
                "n_eff_rule": effective_sample_size(dst["estimate"], dst["se"], dst["n_base"]),
                "published": ~dst["suppressed"].astype(bool),
                **_interval_columns(dst, "estimate", rule, n="n_base"),
            }
        ),
    }
    return {name: frame.reset_index(drop=True) for name, frame in frames.items()}


def _suites(spec: QuestionnaireSpec, rule: SuppressionRule, run_waves: Sequence[int]):
    """(table, message, expectation) triples; messages name the rule in the error."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    published = Column("published") == True  # noqa: E712 - a GX condition object, not a Python comparison
    indicator_keys, variable_keys = expected_keys(spec, run_waves)

    def share_rules(table: str, value: str, base: str) -> list:
        return [
            (
                table,
                f"{value} within [0, 1]",
                gxe.ExpectColumnValuesToBeBetween(column=value, min_value=0, max_value=1),
            ),
            (
                table,
                "ci_lower within [0, 1]",
                gxe.ExpectColumnValuesToBeBetween(column="ci_lower", min_value=0, max_value=1),
            ),
            (
                table,
                "ci_upper within [0, 1]",
                gxe.ExpectColumnValuesToBeBetween(column="ci_upper", min_value=0, max_value=1),
            ),
            (
                table,
                f"ci_lower <= {value}",
                gxe.ExpectColumnValuesToBeBetween(column="lower_gap", min_value=-TOLERANCE),
            ),
            (
                table,
                f"{value} <= ci_upper",
                gxe.ExpectColumnValuesToBeBetween(column="upper_gap", min_value=-TOLERANCE),
            ),
            (
                table,
                f"published {value} present",
                gxe.ExpectColumnValuesToNotBeNull(column=value, row_condition=published),
            ),
            (
                table,
                f"published {base} positive",
                gxe.ExpectColumnValuesToBeBetween(column=base, min_value=0, strict_min=True, row_condition=published),
            ),
            (
                table,
                f"reliability: {base} >= {rule.min_n}",
                gxe.ExpectColumnValuesToBeBetween(column=base, min_value=rule.min_n, row_condition=published),
            ),
            (
                table,
                f"reliability: CI width < {rule.max_ci_width:g}",
                gxe.ExpectColumnValuesToBeBetween(
                    column="ci_width", max_value=rule.max_ci_width, strict_max=True, row_condition=published
                ),
            ),
            (
                table,
                f"reliability: relative CI width <= {rule.max_relative_ci_width:g} (where width > "
                f"{rule.relative_width_from:g})",
                gxe.ExpectColumnValuesToBeBetween(
                    column="relative_ci_width", max_value=rule.max_relative_ci_width, row_condition=published
                ),
            ),
            (
                table,
                f"reliability: n_eff >= {rule.min_n_eff:g}",
                gxe.ExpectColumnValuesToBeBetween(
                    column="n_eff_rule", min_value=rule.min_n_eff, row_condition=published
                ),
            ),
        ]

    return [
        *share_rules("indicators", "estimate", "n"),
        (
            "indicators",
            "published weighted base positive",
            gxe.ExpectColumnValuesToBeBetween(
                column="sum_weights", min_value=0, strict_min=True, row_condition=published
            ),
        ),
        (
            "indicators",
            "only spec indicators",
            gxe.ExpectColumnValuesToBeInSet(column="indicator_id", value_set=[i.id for i in spec.indicators]),
        ),
        (
            "indicators",
            "no indicator in a wave that did not ask it",
            gxe.ExpectColumnValuesToBeInSet(column="key", value_set=indicator_keys),
        ),
        (
            "indicators",
            "every spec indicator present for every measured wave",
            gxe.ExpectColumnDistinctValuesToContainSet(column="key", value_set=indicator_keys),
        ),
        (
            "changes",
            "difference within [-1, 1]",
            gxe.ExpectColumnValuesToBeBetween(column="difference", min_value=-1, max_value=1),
        ),
        (
            "changes",
            "estimates within [0, 1]",
            gxe.ExpectColumnValuesToBeBetween(column="estimate_from", min_value=0, max_value=1),
        ),
        (
            "changes",
            "estimate_to within [0, 1]",
            gxe.ExpectColumnValuesToBeBetween(column="estimate_to", min_value=0, max_value=1),
        ),
        (
            "changes",
            "ci_lower <= difference",
            gxe.ExpectColumnValuesToBeBetween(column="lower_gap", min_value=-TOLERANCE),
        ),
        (
            "changes",
            "difference <= ci_upper",
            gxe.ExpectColumnValuesToBeBetween(column="upper_gap", min_value=-TOLERANCE),
        ),
        (
            "changes",
            "difference = estimate_to - estimate_from",
            gxe.ExpectColumnValuesToBeBetween(column="difference_gap", min_value=-TOLERANCE, max_value=TOLERANCE),
        ),
        (
            "changes",
            "p_value within [0, 1]",
            gxe.ExpectColumnValuesToBeBetween(column="p_value", min_value=0, max_value=1),
        ),
        ("changes", "se >= 0", gxe.ExpectColumnValuesToBeBetween(column="se", min_value=0)),
        ("changes", "n_both >= 0", gxe.ExpectColumnValuesToBeBetween(column="n_both", min_value=0)),
        (
            "changes",
            "published difference present",
            gxe.ExpectColumnValuesToNotBeNull(column="difference", row_condition=published),
        ),
        (
            "changes",
            "no published change reveals a suppressed estimate",
            gxe.ExpectColumnValuesToBeInSet(column="ends_published", value_set=[True], row_condition=published),
        ),
        *share_rules("distributions", "estimate", "n_base"),
        (
            "distributions",
            "published weighted base positive",
            gxe.ExpectColumnValuesToBeBetween(
                column="sum_weights_base", min_value=0, strict_min=True, row_condition=published
            ),
        ),
        (
            "distributions",
            "every question present for every measured wave",
            gxe.ExpectColumnDistinctValuesToContainSet(column="key", value_set=variable_keys),
        ),
    ]


def run_checkpoint(
    tables: Mapping[str, pd.DataFrame], spec: QuestionnaireSpec, rule: SuppressionRule, run_waves: Sequence[int]
) -> list[CheckOutcome]:
    """Run one GX checkpoint per table (in an in-memory context; nothing written, no network).

    First with GX's BASIC results (a third less work); only when a check fails again with
    COMPLETE ones, whose unexpected rows name the examples in the outcomes."""
    frames = _frames_for_gx(tables, rule)
    outcomes = _checkpoint_outcomes(frames, spec, rule, run_waves, "BASIC")
    if all(o.success for o in outcomes):
        return outcomes
    return _checkpoint_outcomes(frames, spec, rule, run_waves, "COMPLETE")


def _checkpoint_outcomes(
    frames: Mapping[str, pd.DataFrame],
    spec: QuestionnaireSpec,
    rule: SuppressionRule,
    run_waves: Sequence[int],
    result_format: str,
) -> list[CheckOutcome]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    source = context.data_sources.add_or_update_pandas("report_tables")
    suites: dict[str, list] = {name: [] for name in frames}
    for table, message, expectation in _suites(spec, rule, run_waves):
        expectation.meta = {"message": message}
        suites[table].append(expectation)
    outcomes: list[CheckOutcome] = []
    for name, frame in frames.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"report_{name}", expectations=suites[name]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"report_{name}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"report_{name}_checkpoint",
                validation_definitions=[definition],
                result_format={"result_format": result_format},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        for run_result in result.run_results.values():
            for item in run_result.results:
                outcomes.append(_outcome(name, frame, item))
    return outcomes


def _raised(info) -> bool:
    """GX reports an exception inside an expectation as `exception_info`, possibly per metric."""
    if not isinstance(info, dict):
        return bool(info)
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(_raised(v) for v in info.values() if isinstance(v, dict))


def _outcome(table: str, frame: pd.DataFrame, item) -> CheckOutcome:
    message = (item.expectation_config.meta or {}).get("message", item.expectation_config.type)
    if _raised(item.exception_info):
        return CheckOutcome(table, message, False, 0, ("the expectation raised inside Great Expectations",))
    if item.success:
        return CheckOutcome(table, message, True, 0)
    result = item.result or {}
    if result.get("unexpected_index_list"):
        indices = [i for i in result["unexpected_index_list"] if isinstance(i, (int, np.integer))]
        return CheckOutcome(
            table,
            message,
            False,
            int(result.get("unexpected_count") or len(indices)),
            tuple(str(frame.at[i, "row"]) for i in indices[:3]),
        )
    if "partial_missing_list" in result:
        missing = [str(key) for key in result["partial_missing_list"]]
        return CheckOutcome(
            table,
            message,
            False,
            int(result.get("missing_count") or len(missing)),
            tuple(f"missing {key}" for key in missing[:3]),
        )
    return CheckOutcome(table, message, False, int(result.get("unexpected_count") or 1))


def validate_outputs(
    tables: Mapping[str, pd.DataFrame],
    spec: QuestionnaireSpec,
    rule: SuppressionRule,
    run_waves: Sequence[int],
    folder: Path,
    gx: bool = True,
) -> tuple[dict[str, pd.DataFrame], list[CheckOutcome]]:
    """All checks (the GX layer only with `gx`, i.e. `validate.gx_level` not off: GX is then never imported);
    InputError naming the failed checks (and a few rows) and the report `folder` if any fails."""
    checked = check_tables(tables, spec, folder)
    return checked, expectations_started(checked, spec, rule, run_waves, folder, gx)()


def check_tables(tables: Mapping[str, pd.DataFrame], spec: QuestionnaireSpec, folder: Path) -> dict[str, pd.DataFrame]:
    """The first two layers: consistency with the spec and the contracts; the tables as checked."""
    check_against_spec(tables["indicators"], spec)
    return check_schemas(tables, spec, folder)


def expectations_started(
    checked: Mapping[str, pd.DataFrame],
    spec: QuestionnaireSpec,
    rule: SuppressionRule,
    run_waves: Sequence[int],
    folder: Path,
    gx: bool = True,
) -> Callable[[], list[CheckOutcome]]:
    """The GX layer on the `checked` tables, started in the GX worker when one runs (else run here, now);
    returns what waits for its outcomes and raises InputError naming the failed checks, as `validate_outputs`."""
    pending = gx_process.submit(run_checkpoint, checked, spec, rule, run_waves) if gx else list

    def outcomes() -> list[CheckOutcome]:
        result = pending()
        failed = [o for o in result if not o.success]
        if failed:
            details = "; ".join(
                f"{o.table}: {o.check}"
                + (f" ({o.failures} row(s), e.g. {', '.join(o.examples)})" if o.examples else "")
                for o in failed[:4]
            )
            more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
            raise InputError(
                f"{len(failed)} output check(s) failed: {details}{more}", file=str(folder), rule="report_check"
            )
        log.info("report checks passed: %d expectations on %d tables", len(result), len(checked))
        return result

    return outcomes


def check_analyses(
    analyses: Mapping[str, pd.DataFrame], spec: QuestionnaireSpec, folder: Path
) -> dict[str, pd.DataFrame]:
    """The analysis tables as published (`REPORT_ANALYSIS_TABLES`): the estimate stage's rows, withheld rows
    without numbers, intervals around their values; SchemaCheckError naming the table under `folder`."""
    return check_schemas(analyses, spec, folder, REPORT_ANALYSIS_TABLES)
