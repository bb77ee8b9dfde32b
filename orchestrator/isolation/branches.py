"""Pure decisions of worktree isolation: a task's branch name, where its worktree starts,
the message of the commit that keeps what it left, and its change summary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

PREFIX = "orchestrator/"
# What a task id may hold that a branch name may not (see git check-ref-format); ids
# already have no '/', no control characters, no leading '.' and no '..'.
_NOT_IN_REFS = re.compile(r"[\s~^:?*\[\\]|@\{")
_SHORTSTAT = re.compile(r"(\d+) (file|insertion|deletion)")
MAX_TITLE = 200


def branch_name(task_id: str) -> str:
    """`orchestrator/<task-id>`, with what git refuses in a ref replaced by `_`."""
    name = _NOT_IN_REFS.sub("_", task_id)
    if name.endswith((".", ".lock")):
        name += "_"
    return PREFIX + name


@dataclass(frozen=True)
class BaseChoice:
    ref: str  # what the task's branch starts from: its `base:`, a predecessor's branch, HEAD
    given: bool = False  # named by the task itself (an unknown one rejects the task)
    warning: str | None = None


def choose_base(
    base: str | None, predecessors: Iterable[str], branches: Collection[str]
) -> BaseChoice:
    """The task's own `base:` when it names one; else the branch of its first predecessor
    (the task it is handed off from, then its dependencies, in order) that has one, so a
    chain builds on its own work; else the workspace's HEAD. Several predecessors with
    branches are not merged: the task starts from the first, and the warning says so."""
    if base:
        return BaseChoice(base, given=True)
    found = list(dict.fromkeys(b for b in map(branch_name, predecessors) if b in branches))
    if not found:
        return BaseChoice("HEAD")
    warning = None
    if len(found) > 1:
        others = ", ".join(found[1:])
        warning = (
            f"started from {found[0]} only: the work on {others} is not in this task's "
            "branch (merge it in yourself, or make the dependencies a chain)"
        )
    return BaseChoice(found[0], warning=warning)


def predecessors(previous_task: str | None, dependencies: Iterable[str]) -> list[str]:
    """The tasks whose branches a task may start from, nearest first."""
    return list(dict.fromkeys([*([previous_task] if previous_task else []), *dependencies]))


def commit_message(task_id: str, agent: str, title: str | None) -> str:
    """The message of the commit holding what the agent left uncommitted."""
    first = " ".join((title or "").split())[:MAX_TITLE]
    subject = f"{first} ({task_id})" if first else f"Task {task_id}"
    return (
        f"{subject}\n\nWhat agent {agent} left uncommitted in its worktree, committed by the "
        f"orchestrator.\n\nOrchestrator-Task: {task_id}\nOrchestrator-Agent: {agent}\n"
    )


def salvage_message(branch: str) -> str:
    """The message of the commit of what an interrupted run left in its worktree."""
    return (
        f"Interrupted run on {branch}: the work it left\n\nThe daemon stopped while the "
        "task ran; the next daemon committed what its worktree held, and runs the task "
        "again on this branch.\n"
    )


def parse_shortstat(text: str) -> tuple[int, int, int]:
    """`git diff --shortstat` → (files changed, insertions, deletions); (0, 0, 0) for none."""
    counts = {"file": 0, "insertion": 0, "deletion": 0}
    for number, kind in _SHORTSTAT.findall(text):
        counts[kind] = int(number)
    return counts["file"], counts["insertion"], counts["deletion"]


def workspace_block(
    branch: str, base: str, base_commit: str, head_commit: str, stat: tuple[int, int, int]
) -> dict[str, str | int]:
    """The result's `workspace:`."""
    files, insertions, deletions = stat
    return {
        "branch": branch,
        "base": base,
        "base_commit": base_commit,
        "head_commit": head_commit,
        "files_changed": files,
        "insertions": insertions,
        "deletions": deletions,
    }
