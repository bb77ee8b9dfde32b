"""Agent workflows, as pure functions: dependencies, cycles, and handoffs.

A handoff is how one agent's answer asks for the next agent's task. The answer ends with a
fenced block whose info string is `handoff`, holding YAML:

    ```handoff
    next_agent: writer
    next_task_title: Document the login API
    next_task_notes: The endpoints are in src/api/auth.py.
    next_artefacts: [docs/auth.md]
    summary: Implemented /login and /logout.
    session: inherit        # optional: the next task continues this task's session
    ```

The same keys in a task file's own `result:` block hand off too. The follow-up task's id
is derived from the source task's id, so a handoff is written once, whatever happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.errors import TaskRejected
from orchestrator.safefile import fit_name
from orchestrator.tasks import MAX_ID_BYTES, Task, load_mapping

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

FAILED_STATES = frozenset({"failed", "rejected", "cancelled", "timed_out", "blocked_by_budget"})
HANDOFF_KEYS = ("next_agent", "next_task_title", "next_task_notes", "next_artefacts", "summary",
                "session")  # fmt: skip
MAX_PREVIOUS_OUTPUT = 256 * 1024
MAX_HANDOFF_DEPTH = 20  # a chain longer than this is a loop, not a workflow
_BLOCK = re.compile(r"^```handoff[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


# --- dependencies ----------------------------------------------------------------------


@dataclass(frozen=True)
class DependencyState:
    ready: bool
    waiting_for: tuple[str, ...] = ()  # ids not finished yet ("id (unknown)" if never seen)
    failed: tuple[str, str] | None = None  # (id, its status) of a dependency that failed


def dependency_state(
    task: Task, state_of: Callable[[str], str | None], known: Callable[[str], bool]
) -> DependencyState:
    """Succeeded deps let the task run; a failed one sinks it (unless the task says
    `on_dependency_failure: run`); unfinished or unknown ones make it wait."""
    waiting = []
    for dep in task.dependency_ids:
        state = state_of(dep)
        if state == "succeeded":
            continue
        if state in FAILED_STATES:
            if task.on_dependency_failure == "run":
                continue
            return DependencyState(False, failed=(dep, state))
        waiting.append(dep if known(dep) else f"{dep} (unknown)")
    return DependencyState(not waiting, tuple(waiting))


def find_cycle(start: str, edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency path from `start` back to itself, e.g. [a, b, a], or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in edges.get(node, ()):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


# --- handoffs --------------------------------------------------------------------------


def parse_handoff(text: str | None) -> dict[str, Any] | None:
    """The last ```handoff block of an answer, when it names a next_agent. An answer is
    untrusted input: a block is read with the task files' guards (size, alias bombs,
    nesting), and one that fails them is no handoff."""
    if not text:
        return None
    for body in reversed(_BLOCK.findall(text)):
        try:
            data = load_mapping(body.encode("utf-8", "surrogateescape"), "handoff block")
        except TaskRejected:
            continue
        if isinstance(data.get("next_agent"), str):
            return {k: data[k] for k in HANDOFF_KEYS if data.get(k) is not None}
    return None


def handoff_from_task(task: Task) -> dict[str, Any] | None:
    """A handoff written in the task file's own `result:` block."""
    block = task.extra_fields().get("result")
    if isinstance(block, dict) and isinstance(block.get("next_agent"), str):
        return {k: block[k] for k in HANDOFF_KEYS if block.get(k) is not None}
    return None


def follow_up_id(source_id: str, next_agent: str) -> str:
    """`<source>--to-<agent>`; a source id too long for that is shortened with a hash
    (ids are limited in bytes: they name files)."""
    suffix = f"--to-{next_agent}"
    if len(suffix.encode()) > MAX_ID_BYTES // 2:
        return fit_name(source_id + suffix, "", MAX_ID_BYTES)
    return fit_name(source_id, suffix, MAX_ID_BYTES)


def follow_up_task(
    source: Task, handoff: Mapping[str, Any], output: str | None
) -> tuple[str, dict[str, Any]]:
    """The follow-up task file (id, mapping) for a handoff from `source`."""
    next_agent = str(handoff["next_agent"])
    task_id = follow_up_id(source.id, next_agent)
    doc: dict[str, Any] = {
        "id": task_id,
        "agent": next_agent,
        "title": str(handoff.get("next_task_title") or f"Follow-up of {source.id}"),
    }
    notes = handoff.get("next_task_notes")
    if notes:
        doc["context"] = {"notes": notes}
    if handoff.get("next_artefacts"):
        doc["artefacts"] = handoff["next_artefacts"]
    if handoff.get("session") == "inherit" and source.session:  # the same conversation
        doc["session"] = source.session
    doc["previous_task"] = source.id
    doc["previous_agent"] = source.agent
    doc["chain_id"] = source.chain_id or source.id
    doc["handoff_depth"] = source.handoff_depth + 1
    doc["created_by"] = f"handoff from {source.agent}"
    if output:
        doc["previous_output"] = output[:MAX_PREVIOUS_OUTPUT]
    return task_id, doc


def instructions(allowed: Iterable[str]) -> str:
    """Appended to the prompts of agents whose config enables handoffs."""
    names = ", ".join(sorted(allowed))
    return (
        "If another agent should continue this work, end your answer with a handoff block "
        "(at most one), exactly like this:\n\n"
        "```handoff\nnext_agent: <one of: " + names + ">\n"
        "next_task_title: <what the next agent should do, one line>\n"
        "next_task_notes: <what it needs to know>\n"
        "next_artefacts: [<files it should read or write>]\n```\n\n"
        "Leave the block out when the work is finished."
    )
