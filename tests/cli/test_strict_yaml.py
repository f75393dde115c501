"""The one YAML loader of the spec and params.yaml: a repeated key is an error, never the last value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from survey_pipeline.errors import ParamsError
from survey_pipeline.settings import load_params
from survey_pipeline.strict_yaml import AmbiguousNumberError, DuplicateKeyError, load_strict

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


@pytest.mark.parametrize(
    ("text", "path", "number", "read_as"),
    [
        ("weight:\n  max_iter: 010\n", "weight.max_iter", "010", "8"),
        ("weight:\n  max_iter: 1:40\n", "weight.max_iter", "1:40", "100"),
        ("weight:\n  max_iter: 0x64\n", "weight.max_iter", "0x64", "100"),
        ("weight:\n  max_iter: 1_000\n", "weight.max_iter", "1_000", "1000"),
        ("trim: [0.2, 1_0.5]\n", "trim.1", "1_0.5", "10.5"),
        ("codes:\n  010: Binnenstad\n", "codes.010", "010", "8"),
    ],
)
def test_a_number_yaml_1_1_would_read_as_another_is_an_error(text, path, number, read_as):
    """PyYAML follows YAML 1.1: `010` is octal 8, `1:40` base-60 100; a params value or a spec code must not change."""
    with pytest.raises(AmbiguousNumberError) as caught:
        load_strict(text)
    assert (caught.value.path, caught.value.line) == (path, text.count("\n"))
    assert caught.value.problem == (
        f"the number {number!r} would be read as {read_as} (YAML 1.1 reads a leading 0 as octal, 0x as hex, "
        "':' as base 60 and ignores '_'); write it in plain decimal digits"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a: 10\n",
        "a: -3\n",
        "a: 0\n",
        "a: 1.0e-10\n",
        "a: 0.5\n",
        "a: .inf\n",
        "a: '010'\n",
        "a: [2019, 2020]\n",
        "1: x\n",
    ],
)
def test_plain_numbers_and_quoted_text_load(text):
    assert load_strict(text) == yaml.safe_load(text)


def test_params_with_an_octal_number_name_the_key(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert "  max_iter: 100 " in text
    (tmp_path / "params.yaml").write_text(text.replace("  max_iter: 100 ", "  max_iter: 0100 ", 1), encoding="utf-8")
    with pytest.raises(ParamsError) as caught:
        load_params(tmp_path / "params.yaml")
    assert caught.value.key == "weight.max_iter" and "would be read as 64" in str(caught.value)
