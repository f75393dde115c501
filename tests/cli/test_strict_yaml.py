"""The one YAML loader of the spec and params.yaml: a repeated key is an error, never the last value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from survey_pipeline.errors import ParamsError
from survey_pipeline.settings import load_params
from survey_pipeline.strict_yaml import DuplicateKeyError, load_strict

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("a: 1\na: 2\n", "a", 2),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", "a.b", 4),
        ("a:\n  - x: 1\n  - x: 1\n    x: 2\n", "a.1.x", 4),
        ("1: a\n01: b\n", "1", 2),
        ("base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\n", "other.x", 4),
    ],
)
def test_a_repeated_key_names_its_path_and_line(text, path, line):
    with pytest.raises(DuplicateKeyError) as caught:
        load_strict(text)
    assert (caught.value.path, caught.value.line) == (path, line)


def test_documents_without_repeats_load_as_safe_load_does():
    text = "a: &x [1, 2]\nb: *x\nc: {d: 1.0e-10, e: null}\n"
    assert load_strict(text) == yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError):
        load_strict("!!python/object:os.system {}\n")


def _params_with(tmp_path, old: str, new: str) -> Path:
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_repeated_params_key_is_an_error_naming_key_line_and_file(tmp_path):
    path = _params_with(tmp_path, "  max_iter: 100", "  max_iter: 5\n  max_iter: 100")
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    error = caught.value
    assert error.key == "weight.max_iter" and error.file == str(path)
    line = path.read_text(encoding="utf-8").splitlines().index("  max_iter: 5") + 2
    assert f"params key 'weight.max_iter': duplicate key (line {line})" in str(error)
    assert "\n" not in str(error)


def test_a_repeated_section_is_an_error(tmp_path):
    path = _params_with(tmp_path, "report:\n", "report:\n  decimals: 1\nreport:\n")
    with pytest.raises(ParamsError, match="params key 'report': duplicate key"):
        load_params(path)
