"""Stage outputs: schema-checked tables and atomic, all-or-nothing output folders.

Stages hand data to each other as files under `outputs/<stage>/`. Every table is
checked against a pandera schema from `schemas/<name>.yaml` when it is written
and again when it is read, so any stage can be re-run or inspected alone.

Writes go to a staging folder first; `OutputStore.commit()` swaps the staged
folders into place only after every stage of the run succeeded, so a failed
run never leaves half-written or mixed outputs and the last good outputs stay.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pandera.pandas as pa

from survey_pipeline.errors import InputError
from survey_pipeline.spec import QuestionnaireSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = PROJECT_ROOT / "schemas"
STAGES = ("ingest", "validate", "weight", "estimate", "report")
MANIFEST_DIR = "manifests"
SPEC_RECORD = "spec.json"
FAILED_DIR = "failed"


class SchemaCheckError(InputError):
    """A table does not match its declared schema (on write or on read)."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> pa.DataFrameSchema:
    """The pandera schema stored as `schemas/<name>.yaml`."""
    path = SCHEMA_DIR / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no schema file {path}")
    return pa.DataFrameSchema.from_yaml(path)


def check_table(frame: pd.DataFrame, schema: str, *, file: str) -> pd.DataFrame:
    """Validate `frame` lazily against `schema`; one error lists the first failures."""
    try:
        return load_schema(schema).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = _distinct_failures(exc.failure_cases)
        first = cases.head(5)
        details = "; ".join(_describe_failure(row) for row in first.to_dict("records"))
        more = f" and {len(cases) - len(first)} more" if len(cases) > len(first) else ""
        raise SchemaCheckError(
            f"{len(cases)} schema failure(s): {details}{more}", file=file, rule=f"schema:{schema}"
        ) from None


def _distinct_failures(cases: pd.DataFrame) -> pd.DataFrame:
    """A dataframe-level check fails once per column for the same row: keep one per (check, row)."""
    row_level = cases["schema_context"].eq("DataFrameSchema") & cases["index"].notna()
    repeated = row_level & cases.duplicated(["check", "index"])
    return cases[~repeated]


def _describe_failure(case: dict) -> str:
    """One failure without the failing value itself (it may be respondent data),
    except for table-level failures, whose value is a column name or dtype."""
    if case.get("column") is None:
        return f"<table>: {case.get('check')} ({case.get('failure_case')})"
    row = f" (row {int(case['index'])})" if pd.notna(case.get("index")) else ""
    return f"{case['column']}: {case.get('check')}{row}"


def write_table(frame: pd.DataFrame, path: Path, schema: str) -> pd.DataFrame:
    """Check `frame` against `schema`, then write it as Parquet (index dropped)."""
    checked = check_table(frame.reset_index(drop=True), schema, file=str(path))
    checked.to_parquet(path, index=False)
    return checked


def read_table(path: Path, schema: str) -> pd.DataFrame:
    """Read a Parquet table written by a stage and check it against `schema`."""
    if not path.exists():
        raise InputError(
            "missing stage output; run the earlier stage first", file=str(path), rule="stage_input"
        )
    return check_table(pd.read_parquet(path), schema, file=str(path))


def write_json(data: Any, path: Path) -> None:
    """Write JSON with stable key order (DVC metrics, manifests, diagnostics)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    if not path.exists():
        raise InputError("missing stage output; run the earlier stage first", file=str(path), rule="stage_input")
    return json.loads(path.read_text(encoding="utf-8"))


def write_spec_record(folder: Path, spec: QuestionnaireSpec) -> None:
    """Record in a stage folder which version of the spec its outputs were made under."""
    write_json({"survey_id": spec.survey_id, "spec_fingerprint": spec.fingerprint}, folder / SPEC_RECORD)


def check_spec_record(folder: Path, spec: QuestionnaireSpec) -> None:
    """Refuse a stage's outputs made under another version of the spec: their bases,
    codes or labels may no longer be the ones a later stage would print next to them."""
    made_under = read_json(folder / SPEC_RECORD)
    if made_under.get("spec_fingerprint") != spec.fingerprint:
        raise InputError(
            f"made under another version of the questionnaire spec; rerun the {folder.name} stage",
            file=str(folder / SPEC_RECORD), rule="spec_version",
        )


class OutputStore:
    """The `outputs/` folder with a staging area for one run.

    `writing(stage)` yields a fresh staging folder; `reading(stage)` returns the
    folder staged in this run if there is one, else the committed one. Nothing
    under `outputs/<stage>/` changes until `commit()`; a stage that fails leaves
    what it wrote in `outputs/failed/<stage>/`, apart from the good outputs.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._staging = self.root / f".staging-{uuid.uuid4().hex[:12]}"
        self._staged: dict[str, Path] = {}

    def reading(self, stage: str) -> Path:
        return self._staged.get(stage, self.root / stage)

    @contextmanager
    def writing(self, stage: str) -> Iterator[Path]:
        """A staging folder for `stage`. If the block raises, whatever it wrote is
        moved to `failed_path(stage)` for inspection (e.g. the quarantine of a wave
        that failed the threshold); the good outputs are not touched."""
        target = self._staging / stage
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            yield target
        except BaseException:
            _replace(target, self.failed_path(stage))
            raise
        self._staged[stage] = target

    def failed_path(self, stage: str) -> Path:
        """Where the partial outputs of the last failed attempt at `stage` are kept."""
        return self.root / FAILED_DIR / stage

    def stage_manifest(self, stage: str) -> Path:
        """Where to stage `manifests/<stage>.json`, kept outside the stage folder so that
        the stage's own outputs stay byte-identical between identical runs."""
        folder = self._staging / MANIFEST_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stage}.json"

    def commit(self) -> list[Path]:
        """Move every staged stage folder and manifest into place; return what changed."""
        changed = []
        for stage, staged in sorted(self._staged.items()):
            changed.append(_replace(staged, self.root / stage))
            shutil.rmtree(self.failed_path(stage), ignore_errors=True)
        manifests = self._staging / MANIFEST_DIR
        if manifests.is_dir():
            (self.root / MANIFEST_DIR).mkdir(exist_ok=True)
            for staged in sorted(manifests.iterdir()):
                changed.append(_replace(staged, self.root / MANIFEST_DIR / staged.name))
        self._staged = {}
        shutil.rmtree(self._staging, ignore_errors=True)
        return changed

    def discard(self) -> None:
        """Drop everything staged in this run; committed outputs stay as they were."""
        self._staged = {}
        shutil.rmtree(self._staging, ignore_errors=True)


def _replace(staged: Path, final: Path) -> Path:
    """Put `staged` at `final`; the old version is moved aside first and removed after."""
    final.parent.mkdir(parents=True, exist_ok=True)
    backup = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, backup)
    os.replace(staged, final)
    if backup.is_dir():
        shutil.rmtree(backup)
    elif backup.exists():
        backup.unlink()
    return final
