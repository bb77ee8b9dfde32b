"""The one error tree of the orchestrator.

    OrchestratorError           anything the orchestrator reports to a user
     ├── ConfigError            config/ is missing or invalid (one or more ConfigProblem)
     ├── TaskRejected           a task file cannot be run (becomes a `rejected` result)
     ├── WorkspaceError         the work directory cannot be used (missing, locked, ...)
     └── UsageError             a command was called wrongly (unknown id, bad option value)

Every message names what is wrong (file, field, value) and what to do. The CLI prints
`str(error)` as one line (plus the problem list of a ConfigError) and exits non-zero.
Failures of tools are not exceptions: they are data (`adapters.base.ToolFailure`).
"""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(OrchestratorError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid configuration"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


class TaskRejected(OrchestratorError):
    """A task file that cannot run; `kind` is a stable, machine-readable name."""

    def __init__(self, kind: str, message: str, hint: str = "") -> None:
        self.kind = kind
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class WorkspaceError(OrchestratorError):
    pass


class UsageError(OrchestratorError):
    pass
