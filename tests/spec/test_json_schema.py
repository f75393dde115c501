"""The spec's JSON Schema: committed, current, referenced by the YAML, and as strict as the loader."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from survey_pipeline.spec import JSON_SCHEMA_PATH, json_schema_text, main

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "questionnaires" / "wij_monitor.yaml"


def _as_json(raw: dict) -> dict:
    """The YAML document as an editor's schema validator sees it (mapping keys are strings)."""
    return json.loads(json.dumps(raw))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(JSON_SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one():
    assert JSON_SCHEMA_PATH == ROOT / "schemas" / "questionnaire.schema.json"
    assert JSON_SCHEMA_PATH.read_text(encoding="utf-8") == json_schema_text(), (
        "schemas/questionnaire.schema.json is stale: run `make spec-schema`"
    )


def test_command_writes_the_schema(tmp_path, capsys):
    target = tmp_path / "schema.json"
    assert main(["--json-schema", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == json_schema_text()
    assert str(target) in capsys.readouterr().out


def test_spec_names_its_schema_for_editors():
    first_line = SPEC_PATH.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schemas/questionnaire.schema.json"
    assert (SPEC_PATH.parent / first_line.split("=", 1)[1]).resolve() == JSON_SCHEMA_PATH


def test_real_spec_meets_the_schema(validator):
    raw = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(_as_json(raw))) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("variables", "heard", "colour"), "red"),  # unknown key
        (("indicators", 0, "kind"), "kpi"),  # not a listed choice
        (("variables", "heard", "codes"), {"ja": "x"}),  # a code is a whole number
        (("variables", "heard", "label"), ""),  # labels are non-empty
        (("spec_version",), 2),
    ],
)
def test_schema_rejects_what_the_loader_rejects(validator, path, value):
    raw = copy.deepcopy(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert list(validator.iter_errors(_as_json(raw))) != []
