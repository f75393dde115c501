"""`params.yaml`: one section per stage; each stage parses its own section with `SectionReader`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from survey_pipeline.errors import ParamsError
from survey_pipeline.numbers import number_problem
from survey_pipeline.strict_yaml import StrictYamlError, load_strict

SECTIONS = ("ingest", "validate", "weight", "estimate", "report")


def load_params(path: str | Path) -> dict[str, Any]:
    """Read `params.yaml` (a repeated key is an error); check it has a spec path and every stage section.

    The keys and types inside each section are checked by the stage that owns it
    (`SectionReader`): an unknown key, a wrong type or a value out of range is an error.
    """
    path = Path(path)
    try:
        raw = load_strict(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError("<file>", "file not found", file=str(path)) from None
    except StrictYamlError as exc:
        raise ParamsError(exc.path, exc.problem, file=str(path)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParamsError("<file>", f"not valid YAML ({first})", file=str(path)) from None
    if not isinstance(raw, dict):
        raise ParamsError("<root>", "expected a mapping of sections", file=str(path))
    if not isinstance(raw.get("spec"), str):
        raise ParamsError("spec", "expected the path of the questionnaire spec", file=str(path))
    for section in SECTIONS:
        if not isinstance(raw.get(section), dict):
            raise ParamsError(section, "missing section (expected a mapping)", file=str(path))
    unknown = sorted(set(raw) - {"spec", *SECTIONS})
    if unknown:
        raise ParamsError(unknown[0], f"unknown section (known: spec, {', '.join(SECTIONS)})", file=str(path))
    return raw


def _text_number_hint(value: Any) -> str:
    """Why YAML read a number as text: quotes, or an exponent without a decimal point (`1e-10`)."""
    if not isinstance(value, str) or number_problem(value.strip(), whole=False) is not None:
        return ""
    return " (YAML read it as text: remove any quotes; write an exponent with a decimal point and a sign, e.g. 1.0e-10 or 1.0e+2)"


REQUIRED: Any = object()
"""Default of a key that must be present."""


class SectionReader:
    """Typed reads of one params.yaml section; every problem is a `ParamsError` naming `prefix.key`.

    A key with default `None` is optional: absent or null reads as `None`. Any other
    default is used only when the key is absent (null is then a wrong value).
    """

    def __init__(self, section: Any, prefix: str, known: Iterable[str]) -> None:
        """Check that `section` is a mapping holding only `known` keys."""
        if not isinstance(section, Mapping):
            raise ParamsError(prefix, "expected a mapping")
        known = sorted(known)
        unknown = sorted(str(k) for k in section if k not in known)
        if unknown:
            raise ParamsError(f"{prefix}.{unknown[0]}", f"unknown key (known: {', '.join(known)})")
        self.section = section
        self.prefix = prefix

    def error(self, key: str, problem: str) -> ParamsError:
        """The error for `key` of this section (for checks particular to one stage)."""
        return ParamsError(f"{self.prefix}.{key}", problem)

    def _expected(self, key: str, expected: str) -> ParamsError:
        if key not in self.section:
            return self.error(key, f"missing (expected {expected})")
        value = self.section[key]
        return self.error(key, f"expected {expected}, got {value!r}{_text_number_hint(value)}")

    def _get(self, key: str, default: Any) -> Any:
        return self.section.get(key, None if default is REQUIRED else default)

    def choice(self, key: str, allowed: Sequence[str], default: Any = REQUIRED) -> str:
        """One of `allowed`."""
        value = self._get(key, default)
        if value not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def choices(self, key: str, allowed: Sequence[str], default: Any = REQUIRED) -> tuple[str, ...]:
        """A non-empty list of `allowed` values; a repeated value counts once."""
        value = self._get(key, default)
        if not isinstance(value, list) or not value or any(v not in allowed for v in value):
            raise self._expected(key, f"a non-empty list from {', '.join(allowed)}")
        return tuple(dict.fromkeys(value))

    def text(self, key: str, default: Any = REQUIRED, *, what: str = "text") -> str | None:
        """A string that is not blank; `what` says what it should be."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._expected(key, what)
        return value

    def number(self, key: str, default: Any, low: float, high: float, bounds: str = "[]",
               *, what: str = "a number") -> float | None:
        """A number in the interval `low, high`; `bounds` marks each end closed `[]` or open `()`."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and (value > low if bounds[0] == "(" else value >= low)
            and (value < high if bounds[1] == ")" else value <= high)
        )
        if not ok:
            raise self._expected(key, f"{what} in {bounds[0]}{low:g}, {high:g}{bounds[1]}")
        return float(value)

    def whole_number(self, key: str, default: Any, low: int, high: int | None = None) -> int:
        """An int from `low` to `high` (no upper limit when None); not a bool or float."""
        value = self._get(key, default)
        if (
            isinstance(value, bool) or not isinstance(value, int)
            or value < low or (high is not None and value > high)
        ):
            raise self._expected(key, f"a whole number {f'>= {low}' if high is None else f'from {low} to {high}'}")
        return value

    def names(self, key: str, default: Any = REQUIRED, *, non_empty: bool = False) -> tuple[str, ...] | None:
        """A list of distinct strings (e.g. variable names)."""
        return self._distinct(key, default, non_empty, "names", lambda v: isinstance(v, str))

    def whole_numbers(self, key: str, default: Any = REQUIRED, *, non_empty: bool = False) -> tuple[int, ...] | None:
        """A list of distinct ints (e.g. years)."""
        return self._distinct(key, default, non_empty, "whole numbers",
                              lambda v: isinstance(v, int) and not isinstance(v, bool))

    def _distinct(
        self, key: str, default: Any, non_empty: bool, noun: str, fits: Callable[[Any], bool]
    ) -> tuple | None:
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, list) or (non_empty and not value) or not all(fits(v) for v in value):
            raise self._expected(key, f"a {'non-empty ' if non_empty else ''}list of {noun}")
        repeated = [v for i, v in enumerate(value) if v in value[:i]]
        if repeated:
            raise self.error(key, f"{repeated[0]!r} is listed twice")
        return tuple(value)
