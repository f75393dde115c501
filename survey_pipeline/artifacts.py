"""Stage outputs: contract-checked tables and JSON files, atomic, all-or-nothing output folders.

Stages hand data to each other as files under `outputs/<stage>/`. Every table and
JSON file is checked against its contract (`survey_pipeline.contracts`) when it is
written and again when it is read, so any stage can be re-run or inspected alone.
A table that this very process checked and wrote, and that still holds exactly the
bytes it wrote (the next stage of `survey-pipeline run` reading it), is not checked
again: that check would repeat the one made on write, with the same result.

Writes go to a staging folder first; `OutputStore.commit()` swaps the staged
folders into place only after every stage of the run succeeded, so a failed
run never leaves half-written or mixed outputs and the last good outputs stay.
`OutputStore.session()` holds the outputs' lock for a run and removes what a
killed earlier run left behind; a refused write raises `OutputWriteError`
naming the file and the operating system's reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pydantic
from pydantic import BaseModel

from survey_pipeline.contracts import SpecRecord, contract_name
from survey_pipeline.errors import InputError, OutputWriteError
from survey_pipeline.spec import QuestionnaireSpec

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validate", "weight", "estimate", "report")
MANIFEST_DIR = "manifests"
SPEC_RECORD = "spec.json"
FAILED_DIR = "failed"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"
BACKUP_PREFIX = ".old-"
RUN_MANIFEST = "manifest.json"
RUN_MANIFEST_TEMPORARY = ".manifest.json.tmp"


class SchemaCheckError(InputError):
    """A table or JSON file does not match its contract (on write or on read)."""


class OutputsBusyError(InputError):
    """Another run holds the lock of the outputs folder."""


def iso(timestamp: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


@contextmanager
def _os_errors_named(path: Path) -> Iterator[None]:
    """Turn an OS error (disk full, file too large, permission denied, ...) into an
    `OutputWriteError` naming the file (the OS's file name if it gave one, else `path`)."""
    try:
        yield
    except OSError as exc:
        raise OutputWriteError.from_os_error(exc, path) from exc


CONTRACT_ID, CONTRACT_WAVE = "resp_id", "wave"
"""How the contracts name the respondent id and the wave variable of tables with respondent rows."""


def validate_contract(
    frame: pd.DataFrame, contract: type[pa.DataFrameModel], spec: QuestionnaireSpec | None = None
) -> pd.DataFrame:
    """`contract.validate` (lazy) with the survey's own column names: the spec's respondent id
    and wave variable are checked as the contract's `resp_id` and `wave`, then named back."""
    renames = _survey_renames(frame.columns, spec)
    checked = contract.validate(frame.rename(columns=renames), lazy=True)
    return checked.rename(columns={canonical: name for name, canonical in renames.items()})


def _survey_renames(columns: pd.Index, spec: QuestionnaireSpec | None) -> dict[str, str]:
    """The survey's own names among `columns` that the contracts call `resp_id` and `wave`."""
    if spec is None:
        return {}
    return {
        name: canonical
        for name, canonical in ((spec.respondent_id, CONTRACT_ID), (spec.wave_variable, CONTRACT_WAVE))
        if name != canonical and name in columns
    }


def check_table(
    frame: pd.DataFrame, contract: type[pa.DataFrameModel], *, file: str, spec: QuestionnaireSpec | None = None
) -> pd.DataFrame:
    """Validate `frame` lazily against its contract (survey names from `spec`); one error lists the first failures."""
    try:
        return validate_contract(frame, contract, spec)
    except pandera.errors.SchemaErrors as exc:
        cases = _distinct_failures(exc.failure_cases)
        first = cases.head(5)
        details = "; ".join(_describe_failure(row) for row in first.to_dict("records"))
        more = f" and {len(cases) - len(first)} more" if len(cases) > len(first) else ""
        raise SchemaCheckError(
            f"{len(cases)} schema failure(s): {details}{more}", file=file, rule=f"schema:{contract_name(contract)}"
        ) from None


def _distinct_failures(cases: pd.DataFrame) -> pd.DataFrame:
    """A dataframe-level check fails once per column for the same row: keep one per (check, row)."""
    row_level = cases["schema_context"].eq("DataFrameSchema") & cases["index"].notna()
    repeated = row_level & cases.duplicated(["check", "index"])
    return cases[~repeated]


def _describe_failure(case: dict) -> str:
    """One failure without the failing value itself (it may be respondent data),
    except for table-level failures, whose value is a column name or dtype."""
    if case.get("schema_context") == "DataFrameSchema" and pd.isna(case.get("index")):
        return f"<table>: {case.get('check')} ({case.get('failure_case')})"
    row = f" (row {int(case['index'])})" if pd.notna(case.get("index")) else ""
    return f"{case['column']}: {case.get('check')}{row}"


def write_table(
    frame: pd.DataFrame, path: Path, contract: type[pa.DataFrameModel], spec: QuestionnaireSpec | None = None
) -> pd.DataFrame:
    """Check `frame` against its contract (survey names from `spec`), then write it as Parquet (index dropped)."""
    checked = check_table(frame.reset_index(drop=True), contract, file=str(path), spec=spec)
    buffer = io.BytesIO()
    checked.to_parquet(buffer, index=False)
    content = buffer.getvalue()  # the bytes checked here are the bytes recorded: no read back
    with _os_errors_named(path), path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        status = os.fstat(handle.fileno())
    identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
    _checked_here[path.resolve()] = _CheckedFile(
        os.getpid(), contract, _survey_renames(checked.columns, spec), identity, _digest(content)
    )
    return checked


def read_table(path: Path, contract: type[pa.DataFrameModel], spec: QuestionnaireSpec | None = None) -> pd.DataFrame:
    """Read a Parquet table written by a stage and check it against its contract (survey names from `spec`),
    unless this process checked and wrote exactly these bytes under the same contract and names."""
    if not path.exists():
        raise InputError("missing stage output; run the earlier stage first", file=str(path), rule="stage_input")
    content, identity = _read_file(path)
    frame = pd.read_parquet(io.BytesIO(content))
    if _checked_when_written(path, content, identity, frame.columns, contract, spec):
        return frame
    return check_table(frame, contract, file=str(path), spec=spec)


@dataclass(frozen=True)
class _CheckedFile:
    """A table file as `write_table` left it: written by process `pid` after its check under `contract`
    with the survey's column names `renames`; the file's identity (device, inode, size, mtime) and digest."""

    pid: int
    contract: type[pa.DataFrameModel]
    renames: dict[str, str]
    identity: tuple[int, int, int, int]
    digest: bytes


_checked_here: dict[Path, _CheckedFile] = {}
"""The tables this process checked and wrote, by resolved path."""


def _read_file(path: Path) -> tuple[bytes, tuple[int, int, int, int]]:
    """The bytes of `path` and the identity of the file they were read from."""
    with path.open("rb") as handle:
        status = os.fstat(handle.fileno())
        return handle.read(), (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def _checked_when_written(
    path: Path,
    content: bytes,
    identity: tuple[int, int, int, int],
    columns: pd.Index,
    contract: type[pa.DataFrameModel],
    spec: QuestionnaireSpec | None,
) -> bool:
    """Whether this process wrote `content` (a table with `columns`) to this very file after checking it
    as reading it would (same contract, same survey column names): a check on read would repeat that
    check, with its result. A file written by another process, replaced, edited or touched since is
    checked again."""
    written = _checked_here.get(path.resolve())
    return (
        written is not None
        and written.pid == os.getpid()
        and written.contract is contract
        and written.renames == _survey_renames(columns, spec)
        and written.identity == identity
        and written.digest == _digest(content)
    )


def check_json(data: Any, contract: type[BaseModel], *, file: str) -> Any:
    """`data` if it meets its contract (strictly: no coercion, no unknown keys), else one error."""
    try:
        contract.model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "<document>"
        more = f" and {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
        raise SchemaCheckError(
            f"{exc.error_count()} contract failure(s): {where}: {first['msg']}{more}",
            file=file,
            rule=f"schema:{contract.__name__}",
        ) from None
    return data


def write_json(data: Any, path: Path, contract: type[BaseModel]) -> None:
    """Check `data` against its contract, then write it as JSON with stable key order
    (DVC metrics, manifests, diagnostics)."""
    text = json.dumps(check_json(data, contract, file=str(path)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with _os_errors_named(path):
        path.write_text(text, encoding="utf-8")


def read_json(path: Path, contract: type[BaseModel]) -> Any:
    """Read a JSON file written by a stage and check it against its contract; returns the plain data."""
    if not path.exists():
        raise InputError("missing stage output; run the earlier stage first", file=str(path), rule="stage_input")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise SchemaCheckError("not valid JSON", file=str(path), rule=f"schema:{contract.__name__}") from None
    return check_json(data, contract, file=str(path))


def write_spec_record(folder: Path, spec: QuestionnaireSpec) -> None:
    """Record in a stage folder which version of the spec its outputs were made under."""
    write_json({"survey_id": spec.survey_id, "spec_fingerprint": spec.fingerprint}, folder / SPEC_RECORD, SpecRecord)


def check_spec_record(folder: Path, spec: QuestionnaireSpec) -> None:
    """Refuse a stage's outputs made under another version of the spec: their bases,
    codes or labels may no longer be the ones a later stage would print next to them."""
    made_under = read_json(folder / SPEC_RECORD, SpecRecord)
    if made_under["spec_fingerprint"] != spec.fingerprint:
        raise InputError(
            f"made under another version of the questionnaire spec; rerun the {folder.name} stage",
            file=str(folder / SPEC_RECORD),
            rule="spec_version",
        )


class RunLock:
    """`outputs/.lock`: at most one run writes an outputs folder at a time.

    An exclusive `flock` on the file; the kernel releases it when the holding
    process ends in any way (SIGKILL included), so a crashed run never blocks the
    next one. The file holds the holder's pid, host, start time and command, for
    the message a second run gets, and is removed when the run ends: a lock file
    found unlocked was left by a run that was killed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, command: str) -> dict[str, Any]:
        """Take the lock or raise `OutputsBusyError`; return what a killed earlier holder left in the file."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputsBusyError(
                    f"another run is writing these outputs ({_describe_holder(holder)}); wait for it to end",
                    file=str(self.path),
                    rule="outputs_lock",
                ) from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                break
            os.close(fd)  # locked a file its holder removed as it ended: lock the current one
        left_behind = _read_holder(fd)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": iso(time.time()), "command": command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder, sort_keys=True).encode("utf-8"), 0)
        self._fd = fd
        return left_behind

    def release(self) -> None:
        """Remove the lock file, then let go of the lock (in this order, so no one locks a removed file for long)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown: it is just starting"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started_at')}, "
        f"command '{holder.get('command')}'"
    )


class OutputStore:
    """The `outputs/` folder with a staging area for one run.

    `session(command)` locks the folder for the run and first removes what a
    killed earlier run left (staging folders, half-swapped backups).
    `writing(stage)` yields a fresh staging folder; `reading(stage)` returns the
    folder staged in this run if there is one, else the committed one. Nothing
    under `outputs/<stage>/` changes until `commit()`; a stage that fails leaves
    what it wrote in `outputs/failed/<stage>/`, apart from the good outputs,
    until that stage next succeeds. A stage stopped by a signal or a refused
    write leaves nothing.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._staging = self.root / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self._staged: dict[str, Path] = {}

    @contextmanager
    def session(self, command: str) -> Iterator[None]:
        """Hold the outputs' lock for one command; refuse outputs in the way of the layout."""
        self._check_layout()
        lock = RunLock(self.root / LOCK_FILE)
        with _os_errors_named(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            left_behind = lock.acquire(command)
        try:
            if left_behind:
                log.warning(
                    "the previous run on these outputs was killed (%s); removing what it left",
                    _describe_holder(left_behind),
                )
            with _os_errors_named(self.root):
                self._remove_leftovers()
            yield
        finally:
            lock.release()

    def _check_layout(self) -> None:
        """A file where the store needs a folder (or the reverse) is refused before anything is written."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputWriteError(self.root, "not a folder (a file is in the way)")
        for name in (*STAGES, MANIFEST_DIR, FAILED_DIR):
            path = self.root / name
            if path.exists() and not path.is_dir():
                raise OutputWriteError(path, "not a folder (a file is in the way)")
        if (self.root / RUN_MANIFEST).is_dir():
            raise OutputWriteError(self.root / RUN_MANIFEST, "a folder is in the way of the run manifest")

    def _remove_leftovers(self) -> None:
        """Staging folders of a killed run hold respondent rows: remove them. A stage folder
        moved aside by a swap that was cut short is put back where its new version is missing."""
        for folder in (self.root, self.root / MANIFEST_DIR):
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.name.startswith(STAGING_PREFIX):
                    _remove(path)
                elif path.name.startswith(BACKUP_PREFIX):
                    original = folder / path.name[len(BACKUP_PREFIX) :].rsplit("-", 1)[0]
                    if original.exists():
                        _remove(path)
                    else:
                        os.replace(path, original)
        (self.root / RUN_MANIFEST_TEMPORARY).unlink(missing_ok=True)

    def reading(self, stage: str) -> Path:
        return self._staged.get(stage, self.root / stage)

    @contextmanager
    def writing(self, stage: str) -> Iterator[Path]:
        """A staging folder for `stage`. If the block fails, whatever it wrote is moved
        to `failed_path(stage)` for inspection (e.g. the quarantine of a wave that
        failed the threshold); if a write was refused or the run was stopped, it is
        removed. The good outputs are not touched."""
        target = self._staging / stage
        with _os_errors_named(target):
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
        with self._failure_kept(stage, target):
            yield target
        self._staged[stage] = target

    @contextmanager
    def finishing(self, stage: str) -> Iterator[Path]:
        """The staged folder of `stage` again, for work that completes it after its `writing` block
        (a checkpoint that ran in the background); a failure here is handled as in `writing`."""
        target = self._staged.pop(stage)
        with self._failure_kept(stage, target):
            yield target
        self._staged[stage] = target

    @contextmanager
    def _failure_kept(self, stage: str, target: Path) -> Iterator[None]:
        """What `writing` does with `target` when its block fails."""
        try:
            yield
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                # a library's write was refused: name its file, else at least the stage folder
                shutil.rmtree(target, ignore_errors=True)
                raise OutputWriteError.from_os_error(exc, target) from exc
            if isinstance(exc, OutputWriteError):
                shutil.rmtree(target, ignore_errors=True)  # fragments of a refused write
                raise
            try:
                _replace(target, self.failed_path(stage))
            except OSError:
                shutil.rmtree(target, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)  # stopped (SIGINT, SIGTERM): leave nothing
            raise

    def failed_path(self, stage: str) -> Path:
        """Where the partial outputs of the last failed attempt at `stage` are kept."""
        return self.root / FAILED_DIR / stage

    def stage_manifest(self, stage: str) -> Path:
        """Where to stage `manifests/<stage>.json`, kept outside the stage folder so that
        the stage's own outputs stay byte-identical between identical runs."""
        folder = self._staging / MANIFEST_DIR
        with _os_errors_named(folder):
            folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stage}.json"

    def commit(self) -> list[Path]:
        """Move every staged stage folder and manifest into place; return what changed.
        A stage that succeeded drops its `failed/` folder (partial outputs may hold respondent rows)."""
        changed = []
        manifests = self._staging / MANIFEST_DIR
        with _os_errors_named(self.root):
            if manifests.is_dir():
                (self.root / MANIFEST_DIR).mkdir(exist_ok=True)
            for stage, staged in sorted(self._staged.items()):
                changed.append(_replace(staged, self.root / stage))
                shutil.rmtree(self.failed_path(stage), ignore_errors=True)
            if manifests.is_dir():
                for staged in sorted(manifests.iterdir()):
                    changed.append(_replace(staged, self.root / MANIFEST_DIR / staged.name))
            failed = self.root / FAILED_DIR
            if failed.is_dir() and not any(failed.iterdir()):
                failed.rmdir()
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
    backup = final.with_name(f"{BACKUP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, backup)
    os.replace(staged, final)
    _remove(backup)
    return final


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
