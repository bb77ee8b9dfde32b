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
    """Multi-line strings as `|` blocks, and a value that appears twice written out twice
    (never as `&id001` / `*id001`), so results read well."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


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


def _doc(text: str, keys: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A field's metadata: its description for docs/reference/tasks.md, and the keys of a
    mapping it holds (orchestrator.reference renders both)."""
    return {"description": text, "keys": dict(keys or {})}


USAGE_KEYS = {
    "input_tokens": "Input tokens, cache reads and writes not included.",
    "output_tokens": "Output tokens, reasoning included.",
    "cache_read_tokens": "Input tokens read from the provider's cache.",
    "cache_write_tokens": "Input tokens written to the provider's cache.",
    "reasoning_tokens": "Reasoning tokens (counted in output_tokens too); only when not 0.",
}
ERROR_KEYS = {
    "kind": "What went wrong, a stable name: see the error kinds below.",
    "message": "What happened, naming the file, field, value or tool concerned.",
    "hint": "What to do about it.",
}


@dataclass
class AttemptRecord:
    """One attempt: a tool:model run for the task, or one passed over (`skipped`)."""

    tool: str = field(metadata=_doc("The tool of the attempt."))
    model: str | None = field(
        metadata=_doc("The model that answered, as the tool reports it, else the one asked.")
    )
    reason: str = field(
        metadata=_doc(
            "Why this tool:model was tried: a route reason (below), with a note in "
            "brackets when it stands for a deprecated model."
        )
    )
    started_at: str = field(metadata=_doc("When it started: ISO 8601, UTC, milliseconds."))
    duration_ms: int = field(metadata=_doc("How long it ran (0: skipped or never started)."))
    exit_code: int | None = field(
        metadata=_doc("The tool's exit code; absent when it did not run or was stopped.")
    )
    outcome: str = field(metadata=_doc("`succeeded`, `failed` or `skipped`."))
    error: dict[str, Any] | None = field(
        default=None, metadata=_doc("Why it failed or was skipped.", ERROR_KEYS)
    )
    usage: dict[str, int] | None = field(
        default=None, metadata=_doc("The tokens the tool reported for it.", USAGE_KEYS)
    )
    cost_usd: float | None = field(
        default=None, metadata=_doc("Its cost in USD; absent when unknown or nothing ran.")
    )
    cost_source: str | None = field(
        default=None,
        metadata=_doc(
            "`reported` by the tool, `computed` from prices, or `partial`: the usage of a "
            "run stopped midway, as far as it got."
        ),
    )
    worker: str | None = field(
        default=None,
        metadata=_doc("The Dask worker that ran it (`run --dask`); absent: this machine."),
    )


@dataclass
class Result:
    """Everything a result file says about one task: `work/outbox/<id>.result.yaml`."""

    id: str = field(metadata=_doc("The task's id."))
    status: str = field(metadata=_doc("How the task ended: see the statuses below."))
    agent: str | None = field(default=None, metadata=_doc("The task's agent."))
    tool: str | None = field(default=None, metadata=_doc("The tool of the attempt that succeeded."))
    model: str | None = field(default=None, metadata=_doc("The model that gave the answer."))
    route_reason: str | None = field(
        default=None,
        metadata=_doc(
            "Why the succeeding tool:model was picked: a route reason (below); `fallback` "
            "when an earlier attempt failed."
        ),
    )
    fallback_from: str | None = field(
        default=None,
        metadata=_doc("The first tool:model that failed before the one that succeeded."),
    )
    attempts: list[AttemptRecord] = field(
        default_factory=list,
        metadata=_doc("Every attempt in order, the skipped ones included."),
    )
    usage: dict[str, int] | None = field(
        default=None, metadata=_doc("Tokens summed over the attempts.", USAGE_KEYS)
    )
    cost_usd: float | None = field(
        default=None,
        metadata=_doc(
            "The cost of all attempts in USD; absent when any attempt with usage could "
            "not be priced."
        ),
    )
    cost_source: str | None = field(
        default=None,
        metadata=_doc(
            "`reported` when every attempt's cost was the tool's own, `partial` when one "
            "was stopped midway, else `computed`."
        ),
    )
    session_id: str | None = field(
        default=None, metadata=_doc("The CLI's session id of the attempt that succeeded.")
    )
    workspace: dict[str, Any] | None = field(
        default=None,
        metadata=_doc(
            "Where an isolated task's work is (`isolation: worktree`, docs/isolation.md).",
            {
                "branch": "The branch holding the work, `orchestrator/<id>`.",
                "base": "What the branch started from, as named (`HEAD`, a ref, a branch).",
                "base_commit": "That commit.",
                "head_commit": "The branch's commit now.",
                "files_changed": "Files changed between the two (git diff --shortstat).",
                "insertions": "Lines inserted.",
                "deletions": "Lines deleted.",
            },
        ),
    )
    output: str | None = field(
        default=None,
        metadata=_doc("The answer; one longer than 256 KiB is in `output_file` instead."),
    )
    output_file: str | None = field(
        default=None,
        metadata=_doc("The file beside the result holding a long answer, `<id>.output.txt`."),
    )
    error: dict[str, str] | None = field(
        default=None,
        metadata=_doc(
            "Why the task did not succeed.",
            {
                **ERROR_KEYS,
                "windows": "The closed usage windows (tool:model) a waiting task waits for.",
            },
        ),
    )
    warnings: list[str] = field(
        default_factory=list,
        metadata=_doc(
            "What reading the task file noticed first (misspelt keys, prose dependencies, "
            "keys written twice), then what happened on the way (deprecated models, budget "
            "warnings, waits, ignored handoffs)."
        ),
    )
    started_at: str | None = field(
        default=None, metadata=_doc("When the task started: ISO 8601, UTC, milliseconds.")
    )
    finished_at: str | None = field(default=None, metadata=_doc("When the task ended."))
    duration_ms: int | None = field(default=None, metadata=_doc("From start to end."))
    task_file: str | None = field(
        default=None,
        metadata=_doc("The task file's name (it moves to `work/archive/YYYY-MM-DD/`)."),
    )
    task: dict[str, Any] | None = field(
        default=None, metadata=_doc("The task file's own keys that are not ours, as written.")
    )
    result: dict[str, Any] | None = field(
        default=None,
        metadata=_doc(
            "The handoff acted on, from the answer's `handoff` block or the task file's "
            "`result:` block: its keys, and the follow-up task's id.",
            {
                "next_agent": "The agent the work goes to.",
                "next_task_title": "The follow-up task's title.",
                "next_task_notes": "Its notes (`context.notes`).",
                "next_artefacts": "Its artefacts.",
                "summary": "What this task did, in the agent's words.",
                "session": "`inherit`: the follow-up continues this task's session.",
                "next_task_id": "The follow-up task's id, `<id>--to-<agent>`.",
            },
        ),
    )
    previous_results: list[str] = field(
        default_factory=list,
        metadata=_doc(
            "Earlier results of this id, moved to `work/outbox/history/` (by `retry`, or "
            "by a corrected file after a rejection)."
        ),
    )
    resume_at: str | None = field(
        default=None,
        metadata=_doc(
            "A task waiting for quota: when its first window opens (never in a result file)."
        ),
    )

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
