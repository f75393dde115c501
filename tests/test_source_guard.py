"""The intermittent "same inputs, different bytes" failure of the end-to-end tests, forced.

Seen once: the method note of an in-process run lacked three lines that a fresh interpreter's
run of the same inputs wrote. Its bytes are those of method_note.py before the commit that
added the lines (aa20d4a), made while the suite ran: the pytest process had imported the old
module, the subprocess read the new file. Here a test edits a module between its import and a
fresh interpreter, as that commit did; the session must name the edited file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import source_guard

CONFTEST = """
from pathlib import Path
from source_guard import SourceGuard

def pytest_configure(config):
    config.pluginmanager.register(SourceGuard(Path(__file__).parent, ("package",)), "source-guard")
"""

# A run in this process and one in a fresh interpreter, compared (as test_end_to_end does with its outputs).
TEST_EDITED_DURING_THE_SESSION = """
import subprocess, sys
from pathlib import Path

import note

def test_a_fresh_interpreter_writes_the_same_note():
    Path(note.__file__).write_text('TEXT = "edited"\\n', encoding="utf-8")  # an edit while the suite runs
    fresh = subprocess.run([sys.executable, "-c", "import note; print(note.TEXT)"], capture_output=True, text=True)
    assert fresh.stdout.strip() == note.TEXT
"""

TEST_UNCHANGED = """
import note

def test_unchanged():
    assert note.TEXT == "imported"
"""


def _session(tmp_path: Path, test: str) -> subprocess.CompletedProcess[str]:
    """pytest on a project of one module (package/note.py) and `test`, with the guard as the suite has it."""
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "note.py").write_text('TEXT = "imported"\n', encoding="utf-8")
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (tmp_path / "test_note.py").write_text(test, encoding="utf-8")
    path = os.pathsep.join([str(tmp_path / "package"), str(Path(source_guard.__file__).parent)])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )


def test_a_module_edited_during_the_session_is_named_at_the_failure_it_causes(tmp_path):
    done = _session(tmp_path, TEST_EDITED_DURING_THE_SESSION)
    assert done.returncode == 1, done.stdout + done.stderr
    failure, summary = done.stdout.split(" FAILURES ")[1].split(f"= {source_guard.TITLE} =")
    assert "AssertionError: assert 'edited' == 'imported'" in failure  # the two processes ran different code
    assert f"- {source_guard.TITLE} -" in failure  # named where the failure is shown
    assert "package/note.py changed on disk after this session started" in failure
    # and once more after the results, where a passing session would show it too
    assert "package/note.py changed on disk after this session started" in summary


def test_an_unchanged_tree_adds_nothing(tmp_path):
    done = _session(tmp_path, TEST_UNCHANGED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert source_guard.TITLE not in done.stdout


def test_the_fingerprint_ignores_bytecode_and_follows_content(tmp_path):
    (tmp_path / "package" / "__pycache__").mkdir(parents=True)
    (tmp_path / "package" / "note.py").write_text("A = 1\n", encoding="utf-8")
    (tmp_path / "params.yaml").write_text("a: 1\n", encoding="utf-8")
    guard = source_guard.SourceGuard(tmp_path, ("package", "params.yaml", "missing.yaml"))
    guard.pytest_sessionstart(None)  # type: ignore[arg-type]
    (tmp_path / "package" / "__pycache__" / "note.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "package" / "note.py").write_text("A = 1\n", encoding="utf-8")  # rewritten, same bytes
    assert guard.changed() == []
    (tmp_path / "params.yaml").write_text("a: 2\n", encoding="utf-8")
    (tmp_path / "package" / "new.py").write_text("", encoding="utf-8")
    assert guard.changed() == ["package/new.py", "params.yaml"]
