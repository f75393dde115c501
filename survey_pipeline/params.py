"""`params.yaml`: one section per stage; each stage parses its own section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from survey_pipeline.errors import ParamsError

SECTIONS = ("ingest", "validate", "weight", "estimate", "report")


def load_params(path: str | Path) -> dict[str, Any]:
    """Read `params.yaml`; check that it is a mapping with a spec path and every stage section."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError("<file>", "file not found", file=str(path)) from None
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
