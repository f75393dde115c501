"""A pytest plugin that names the project files edited while the suite runs.

The test process runs the modules it imported when the session began; a test that starts
another process (a fresh interpreter, `dvc repro`'s stage commands, a copy of the project)
runs the files as they are at that moment. An edit during a session (a merge, a commit
being prepared) therefore makes two runs of the same inputs differ, and a comparison of
their bytes fails as if the pipeline were not deterministic. The plugin fingerprints the
watched files at the start and, when a test fails or the session ends, says which changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

TITLE = "project files changed during this test session"


def fingerprint(root: Path, watched: Sequence[str]) -> dict[str, str]:
    """sha256 of every file under the `watched` paths of `root` (bytecode caches aside), by relative path."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in _files(root, watched)
    }


def _files(root: Path, watched: Sequence[str]) -> Iterator[Path]:
    for name in watched:
        top = root / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            if path.is_file() and "__pycache__" not in path.relative_to(root).parts:
                yield path


class SourceGuard:
    """Fingerprints `watched` (paths under `root`) at session start; names those changed since."""

    def __init__(self, root: Path, watched: Sequence[str]) -> None:
        self.root, self.watched = root, tuple(watched)
        self.started: dict[str, str] = {}

    def changed(self) -> list[str]:
        """The watched files edited, added or removed since the session started, sorted."""
        now = fingerprint(self.root, self.watched)
        return sorted(name for name in self.started.keys() | now.keys() if self.started.get(name) != now.get(name))

    def explanation(self, changed: Sequence[str]) -> str:
        return (
            f"{', '.join(changed)} changed on disk after this session started: this process runs the code it "
            "imported then, a process started since (a fresh interpreter, dvc repro) the edited files, so their "
            "outputs may differ. Rerun the tests on an unchanging tree before suspecting the pipeline."
        )

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = fingerprint(self.root, self.watched)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()  # type: ignore[attr-defined]
        if report.failed and (changed := self.changed()):
            report.sections.append((TITLE, self.explanation(changed)))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if changed := self.changed():
            terminalreporter.section(TITLE, yellow=True)
            terminalreporter.write_line(self.explanation(changed))
