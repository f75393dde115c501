"""The JSON Schemas in `schemas/`, generated from the models that check the files they describe.

`schemas/` is installed inside the package as `survey_pipeline.schemas` (package
data; `importlib.resources.files`), so the schemas ship with the code:

- `questionnaire.schema.json`: the questionnaire spec (`spec.SpecDocument`), for editors;
- `json/<name>.schema.json`: each JSON output (the pydantic models of `contracts`):
  settings records, metrics, manifests, the GX result, the report's checks;
- `tables/<contract>.schema.json`: each table contract (the pandera models of
  `contracts`) as the schema of one row, e.g. a record of
  `pandas.read_parquet(path).to_json(orient="records")` (NaN is null): columns,
  types, nullability, ranges, choices; the table-level rules (uniqueness, order,
  cross-column checks) in its description. Columns the spec names are matched by
  pattern, as in the contract.

`python -m survey_pipeline.schema_files` (`make schemas`) rewrites them (the spec's alone:
`python -m survey_pipeline.spec --json-schema`); a test fails when a committed file differs
from the generated one.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field, create_model

from survey_pipeline import contracts
from survey_pipeline.settings import SECTIONS
from survey_pipeline.spec import JSON_SCHEMA_PATH, json_schema_text

DRAFT = "https://json-schema.org/draft/2020-12/schema"

JSON_OUTPUTS: dict[str, type[BaseModel]] = {
    "settings": contracts.SettingsRecord,
    "ingest_files": contracts.IngestFiles,
    "validate_metrics": contracts.ValidateMetrics,
    "validate_gx_result": contracts.GxResult,
    "weight_metrics": contracts.WeightMetrics,
    "estimate_spec": contracts.SpecRecord,
    "report_checks": contracts.ReportChecks,
    "stage_manifest": contracts.StageManifest,
    "run_manifest": contracts.RunManifest,
}
"""Schema name -> the contract of the JSON output (its docstring names the file)."""

_TYPES = {"str": "string", "int64": "integer", "float64": "number", "bool": "boolean"}


def schemas_dir() -> Path:
    """Where the schemas are: the project's `schemas/` in a development (editable) install, else the
    installed package data."""
    return JSON_SCHEMA_PATH.parent


def table_contracts() -> list[type[pa.DataFrameModel]]:
    """Every table contract of `contracts`, in the order they are declared."""
    found = [
        model
        for _, model in inspect.getmembers(contracts, inspect.isclass)
        if issubclass(model, pa.DataFrameModel) and model.__module__ == contracts.__name__
    ]
    return sorted(found, key=lambda model: inspect.getsourcelines(model)[1])


def json_output_schema(name: str) -> dict[str, Any]:
    """The schema of a JSON output; a settings record's sections are those of params.yaml (`settings`)."""
    model = RecordedSections if name == "settings" else JSON_OUTPUTS[name]
    return {"$schema": DRAFT, "$id": f"json/{name}.schema.json", **model.model_json_schema()}


RecordedSections: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "SettingsRecord",
    __base__=contracts.SettingsRecord,
    __doc__=contracts.SettingsRecord.__doc__,
    sections=(
        create_model(  # type: ignore[call-overload]
            "Sections",
            __config__=ConfigDict(extra="forbid"),
            **{f"{key}_": (model, Field(None, alias=key)) for key, model in SECTIONS.items()},
        ),
        ...,
    ),
)
"""`contracts.SettingsRecord` with each recorded section typed as its params.yaml section, for the schema."""


def table_schema(model: type[pa.DataFrameModel]) -> dict[str, Any]:
    """One row of the table as JSON (see the module docstring)."""
    table = model.to_schema()
    properties: dict[str, Any] = {}
    patterns: dict[str, Any] = {}
    for name, column in table.columns.items():
        target = patterns if column.regex else properties
        target[name] = _column_schema(column)
    rules = []
    if table.unique:
        rules.append(f"unique: ({', '.join(table.unique)})")
    if table.ordered:
        rules.append("columns in this order")
    rules += [str(check.error or check.name) for check in table.checks]
    description = " ".join((table.description or "").split())
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": f"tables/{table.name}.schema.json",
        "title": table.name,
        "description": description + (f" Table rules: {'; '.join(rules)}." if rules else ""),
        "type": "object",
        "properties": properties,
        "required": [name for name, column in table.columns.items() if not column.regex and column.required],
    }
    if patterns:
        schema["patternProperties"] = patterns
    if table.strict is True and not patterns:
        schema["additionalProperties"] = False
    return schema


def _column_schema(column: Any) -> dict[str, Any]:
    dtype = str(column.dtype)
    kind = _TYPES["str" if dtype.startswith("string") else dtype]
    schema: dict[str, Any] = {"type": [kind, "null"] if column.nullable else kind}
    if column.description:
        schema["description"] = column.description
    for check in column.checks:
        stats = check.statistics
        if check.name == "in_range":
            schema["minimum" if stats["include_min"] else "exclusiveMinimum"] = stats["min_value"]
            schema["maximum" if stats["include_max"] else "exclusiveMaximum"] = stats["max_value"]
        elif check.name == "greater_than_or_equal_to":
            schema["minimum"] = stats["min_value"]
        elif check.name == "greater_than":
            schema["exclusiveMinimum"] = stats["min_value"]
        elif check.name == "less_than":
            schema["exclusiveMaximum"] = stats["max_value"]
        elif check.name == "isin":
            schema["enum"] = [*stats["allowed_values"], *([None] if column.nullable else [])]
        elif check.name == "str_length":
            if stats["min_value"] is not None:
                schema["minLength"] = stats["min_value"]
            if stats["max_value"] is not None:
                schema["maxLength"] = stats["max_value"]
        else:
            raise ValueError(f"no JSON Schema for the check {check.name} of column {column.name}")
    if column.unique:
        schema["description"] = f"{schema.get('description', '')} (unique)".strip()
    return schema


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """Relative path in `schemas/` -> the file's text."""
    texts = {"questionnaire.schema.json": json_schema_text()}
    texts.update({f"json/{name}.schema.json": _text(json_output_schema(name)) for name in JSON_OUTPUTS})
    for model in table_contracts():
        schema = table_schema(model)
        texts[schema["$id"]] = _text(schema)
    return texts


def main(argv: list[str] | None = None) -> int:
    """Write every schema into `schemas/`; a schema file whose model is gone is removed."""
    folder = schemas_dir()
    texts = generated()
    for kind in ("json", "tables"):
        for path in (folder / kind).glob("*.schema.json"):
            if f"{kind}/{path.name}" not in texts:
                path.unlink()
    for name, text in texts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    print(f"{len(texts)} schemas written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
