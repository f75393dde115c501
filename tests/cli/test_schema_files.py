"""schemas/: generated from the models, committed current, installed as package data."""

from __future__ import annotations

import fnmatch
import inspect
import json
import tomllib
from importlib.resources import files
from pathlib import Path

import jsonschema
from pydantic import BaseModel

from survey_pipeline import contracts, schema_files

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_are_the_generated_ones():
    texts = schema_files.generated()
    folder = ROOT / "schemas"
    assert schema_files.schemas_dir() == folder  # the editable install maps the package to it
    committed = {p.relative_to(folder).as_posix() for p in folder.rglob("*.schema.json")}
    assert committed == set(texts), "schemas/ is stale: run `make schemas`"
    for name, text in texts.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"schemas/{name} is stale: run `make schemas`"
        jsonschema.Draft202012Validator.check_schema(json.loads(text))


def test_every_table_contract_and_json_contract_has_a_schema():
    texts = schema_files.generated()
    for model in schema_files.table_contracts():
        assert f"tables/{contracts.contract_name(model)}.schema.json" in texts
    assert len(schema_files.table_contracts()) == len([n for n in texts if n.startswith("tables/")])
    # every pydantic contract is a JSON output's schema, part of one, or the base of one of those
    described = " ".join(texts[f"json/{name}.schema.json"] for name in schema_files.JSON_OUTPUTS)
    models = {
        name: model
        for name, model in inspect.getmembers(contracts, inspect.isclass)
        # declared there (not pydantic's parametrised RootModel) and not the common base
        if issubclass(model, BaseModel)
        and model.__module__ == contracts.__name__
        and "[" not in name
        and name != "Record"
    }
    used = [*schema_files.JSON_OUTPUTS.values(), *(m for n, m in models.items() if f'"{n}"' in described)]
    for name, model in models.items():
        assert any(issubclass(user, model) for user in used), name


def test_schemas_ship_as_package_data():
    """setuptools installs schemas/ as survey_pipeline.schemas: every package is listed (a package search
    would not see the mapped folder) and the package-data patterns cover every schema."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "survey_pipeline").rglob("__init__.py")
    }
    assert set(config["packages"]) == on_disk | {"survey_pipeline.schemas"}
    assert config["package-dir"] == {"survey_pipeline.schemas": "schemas"}
    patterns = config["package-data"]["survey_pipeline.schemas"]
    for name in schema_files.generated():
        assert any(fnmatch.fnmatch(name, pattern) and name.count("/") == pattern.count("/") for pattern in patterns)
    installed = files("survey_pipeline.schemas")
    schema = json.loads((installed / "tables" / "estimate_indicators.schema.json").read_text(encoding="utf-8"))
    assert schema["title"] == "estimate_indicators"
    assert (installed / "questionnaire.schema.json").is_file()


def test_a_settings_record_is_checked_section_by_section():
    validator = jsonschema.Draft202012Validator(schema_files.json_output_schema("settings"))
    record = {
        "sections": {"validate": {"max_quarantine_share": 0.02, "gx_failure": "error", "gx_level": "full"}},
        "software": {"validate": {"python": "3.11.7", "packages": {"numpy": "1.26.4", "dvc": None}}},
    }
    assert list(validator.iter_errors({**record, "fingerprint": "x"})) == []
    record["sections"]["validate"]["gx_level"] = "docs"
    assert list(validator.iter_errors({**record, "fingerprint": "x"}))
