"""Result files: what a result says about one task (`Result`, one `AttemptRecord` per
attempt), the error block of a failed one, and rendering it as YAML that reads well."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Mapping


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line strings as `|` blocks, so results read well."""


def _str_representer(dumper: Any, value: str) -> Any:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # e.g. a file name that is not UTF-8: show its bytes
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data: Mapping[str, Any]) -> str:
    text: str = yaml.dump(
        dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return text


@dataclass
class AttemptRecord:
    tool: str
    model: str | None
    reason: str
    started_at: str
    duration_ms: int
    exit_code: int | None
    outcome: str  # succeeded | failed
    error: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    cost_source: str | None = None
    worker: str | None = None  # the Dask worker that ran it (none: this machine)


@dataclass
class Result:
    """Everything a result file says about one task (see ARCHITECTURE.md, "Result file")."""

    id: str
    status: str
    agent: str | None = None
    tool: str | None = None
    model: str | None = None
    route_reason: str | None = None
    fallback_from: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    cost_source: str | None = None
    session_id: str | None = None
    workspace: dict[str, Any] | None = None  # isolated runs: branch, commits, change counts
    output: str | None = None
    output_file: str | None = None
    error: dict[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    task_file: str | None = None
    task: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    previous_results: list[str] = field(default_factory=list)
    resume_at: str | None = None  # waiting_quota: when its first window opens (never written)

    def document(self) -> dict[str, Any]:
        """The result as an ordered mapping for YAML, without empty keys (the values are
        shared, not copied: render it before changing the result again)."""
        doc = dict(vars(self))
        doc["attempts"] = [
            {k: v for k, v in vars(a).items() if v is not None} for a in self.attempts
        ]
        return {k: v for k, v in doc.items() if v is not None and v != [] and v != {}}


def workspace_fields(result: Result) -> dict[str, str]:
    """The telemetry `tasks` columns of an isolated task's result (m005), for `status`."""
    if not result.workspace:
        return {}
    return {"branch": str(result.workspace["branch"]), "workspace": json.dumps(result.workspace)}


def error_info(kind: str, message: str, hint: str = "") -> dict[str, str]:
    return {"kind": str(kind), "message": message, "hint": hint}


def internal_error(result_id: str, agent: str | None, detail: str) -> Result:
    """The failed result of a bug of ours: the task still ends with one result."""
    return Result(
        id=result_id,
        status="failed",
        agent=agent,
        error=error_info(
            "internal_error",
            detail,
            "this is a bug in the orchestrator: please report it with the log",
        ),
    )
