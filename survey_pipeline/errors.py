"""Error types that map to the CLI's exit codes.

`InputError` (exit 2) is anything a user can fix: a bad file, a bad spec, bad
parameters, data that fail validation. Every other exception is an internal
error (exit 1). Messages never contain respondent values beyond codes.
"""

from __future__ import annotations


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
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.rule is not None:
            where.append(f"rule '{self.rule}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


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
