"""Error types that map to the CLI's exit codes, and the escaping of input text.

`InputError` (exit 2) is anything a user can fix: a bad file, a bad spec, bad
parameters, data that fail validation, outputs in use by another run.
`OutputWriteError` (exit 3) is the environment refusing a file operation: disk
full, file too large, permission denied, a file where a folder should be.
`RunInterrupted` (exit 128 + signal number) is SIGINT or SIGTERM. Every other
exception is an internal error (exit 1). Messages never contain respondent
values beyond codes.

Text from input files (names, labels, column names) can hold newlines or
terminal control characters; `escape` renders them visibly (`\\n`, `\\x1b`) so
that a message stays one line and cannot forge a log line.
"""

from __future__ import annotations

import os


def escape(text: object) -> str:
    """`text` with every non-printable character (newline, carriage return, escape,
    other control and format characters, line separators) written as a Python escape."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class InputError(Exception):
    """Bad input: names where (file, row, column) and which rule failed."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        self.rule = rule
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """`file, row 12, column 'heard', rule 'allowed_codes': message`."""
        where = []
        if self.file is not None:
            where.append(escape(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{escape(self.column)}'")
        if self.rule is not None:
            where.append(f"rule '{escape(self.rule)}'")
        prefix = ", ".join(where)
        message = escape(self.message)
        return f"{prefix}: {message}" if prefix else message


class SpecError(InputError):
    """The questionnaire spec is malformed; names the key path and the problem."""

    def __init__(self, key: str, problem: str, *, file: str | None = None) -> None:
        self.key = key
        super().__init__(f"spec key '{key}': {problem}", file=file, rule="questionnaire_spec")


class ParamsError(InputError):
    """`params.yaml` is malformed; names the key and the problem."""

    def __init__(self, key: str, problem: str, *, file: str | None = None) -> None:
        self.key = key
        super().__init__(f"params key '{key}': {problem}", file=file, rule="params")


class OutputWriteError(Exception):
    """The operating system refused to write (or move) an output: names the path and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(self.one_line())

    @classmethod
    def from_os_error(cls, exc: OSError, path: object) -> OutputWriteError:
        """Name the file the OS error names, else `path`; the reason is the OS's text for the
        error number (pyarrow, for one, wraps it in a longer message)."""
        reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc) or type(exc).__name__
        return cls(exc.filename if exc.filename is not None else path, reason)

    def one_line(self) -> str:
        """`outputs/report/tabellen.xlsx: No space left on device`."""
        return f"{escape(self.path)}: {escape(self.reason)}"


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM arrived: the run stops, staged outputs are dropped.

    A BaseException (like KeyboardInterrupt) so that no `except Exception` in a stage swallows it.
    """

    def __init__(self, signal_number: int, signal_name: str) -> None:
        self.signal_number = signal_number
        self.signal_name = signal_name
        super().__init__(signal_name)

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signal_number
