"""The one error tree of the orchestrator.

    OrchestratorError           anything the orchestrator reports to a user
     ├── ConfigError            config/ is missing or invalid (one or more ConfigProblem)
     ├── TaskRejected           a task file cannot be run (becomes a `rejected` result)
     ├── WorkspaceError         the work directory cannot be used (missing, locked, ...)
     │    ├── TelemetryUnusable work/telemetry.db cannot be read or written (corrupt, ...)
     │    ├── FileSystemError   a file operation failed (disk full, permissions, ...)
     │    └── WorktreeError     a task's git worktree cannot be made, committed or removed
     ├── UsageError             a command was called wrongly (unknown id, bad option value)
     └── PluginError            an adapter plugin is not installed or cannot be loaded

Every message names what is wrong (file, field, value) and what to do. The CLI prints
`str(error)` as one line (plus the problem list of a ConfigError) and exits non-zero.
Failures of tools are not exceptions: they are data (`adapters.base.ToolFailure`).
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


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


class PluginError(OrchestratorError):
    """An adapter name no installed package registers, or a plugin that fails to load; the
    message names the package and what to do (docs/plugins.md)."""


class WorktreeError(WorkspaceError):
    """A task's git worktree (isolation: worktree) cannot be made, committed or removed;
    `hint` says what to do. A task that meets one fails with the kind `workspace_error`."""

    def __init__(self, message: str, hint: str) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})")


class TelemetryUnusable(WorkspaceError):
    """The telemetry database cannot be used; `reason` is SQLite's word for why."""

    def __init__(self, path: Path, reason: str, hint: str, consequence: str = "") -> None:
        self.path = path
        self.reason = reason
        self.hint = hint
        then = f"{consequence}; " if consequence else ""
        super().__init__(f"telemetry database {path} is not usable ({reason}): {then}{hint}")

    def with_consequence(self, consequence: str) -> TelemetryUnusable:
        """The same problem, saying what it means for the command that met it."""
        return TelemetryUnusable(self.path, self.reason, self.hint, consequence)


# What to do about an OSError, by errno; the default is the last entry's.
_OS_HINTS: tuple[tuple[frozenset[int], str], ...] = (
    (
        frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG}),
        "free some space on that file system (or raise the file size limit), then run it again",
    ),
    (frozenset({errno.EACCES, errno.EPERM}), "check the permissions of that path"),
    (frozenset({errno.EROFS}), "that file system is read-only: use a writable workspace"),
    (frozenset({errno.ENOENT, errno.ENOTDIR}), "check that the path exists"),
    (frozenset({errno.EMFILE, errno.ENFILE}), "too many open files: raise the limit (ulimit -n)"),
    (frozenset({errno.EIO}), "the disk reported an I/O error: check it, then run it again"),
)


class FileSystemError(WorkspaceError):
    """An OSError that stopped a command, told as what failed, why, where and what to do."""

    def __init__(self, what: str, error: OSError, where: Path | str | None = None) -> None:
        self.error = error
        why = error.strerror or str(error) or type(error).__name__
        place = error.filename if error.filename is not None else f"somewhere under {where}"
        todo = next(
            (hint for codes, hint in _OS_HINTS if error.errno in codes),
            "check that path, then run it again",
        )
        super().__init__(f"{what} ({why}, {place}): {todo}")


def install_extra(extra: str) -> str:
    """How to get an optional part (`web`, `otel`, `dask`). The standalone executable
    carries only `web`: for the others it names the package to install instead. (The
    package is not on PyPI: a PyPI project of the same name is another one.)"""
    where = f"'<the release wheel or your clone>[{extra}]'"
    if getattr(sys, "frozen", False):  # PyInstaller's bundle
        return (
            f"the standalone executable leaves the {extra} extra out; install the package "
            f"with it instead: uv tool install {where} (docs/install.md)"
        )
    return (
        f"install the {extra} extra: in a clone, uv sync --extra {extra}; as a uv tool, "
        f"uv tool install --reinstall {where} (docs/install.md)"
    )
