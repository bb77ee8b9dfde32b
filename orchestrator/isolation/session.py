"""One task's run inside its worktree: made before the first attempt, shared by every
attempt of its fallback chain, committed and removed after the last, whatever happened
(a failure, a timeout, a cancellation); its summary goes into the result."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from orchestrator.errors import TaskRejected, WorktreeError
from orchestrator.results import error_info

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from orchestrator.isolation.worktree import Checkout, Worktrees
    from orchestrator.results import Result
    from orchestrator.tasks import Task

log = logging.getLogger(__name__)

GIT_DEADLINE_S = 60.0  # making or closing a worktree: after that, start-up recovery will


async def run_isolated(
    worktrees: Worktrees, task: Task, result: Result, work: Callable[[Path], Awaitable[None]]
) -> None:
    """Run `work(cwd)` (the task's attempts) in the task's worktree, then set the result's
    `workspace:`. A worktree that cannot be made fails the task (`workspace_error`, or a
    rejection for an unknown `base:`) before anything runs; one that cannot be committed
    fails it after, and stays where it is for start-up recovery to commit."""
    checkout: Checkout | None = None
    with anyio.CancelScope(shield=True), anyio.move_on_after(GIT_DEADLINE_S):
        try:  # shielded: a cancellation never leaves a worktree half made
            checkout = await worktrees.open(task)
        except TaskRejected as rejected:
            log.warning("task %s: rejected: %s", task.id, rejected)
            result.status = "rejected"
            result.error = error_info(rejected.kind, rejected.message, rejected.hint)
            return
        except WorktreeError as exc:
            _failed(task, result, exc)
            return
    if checkout is None:
        _failed(task, result, _too_long("make the worktree"))
        return
    result.warnings.extend(checkout.warnings)
    try:
        await work(checkout.cwd)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(GIT_DEADLINE_S) as deadline:
            try:
                result.workspace = await worktrees.close(checkout, task)
            except WorktreeError as exc:
                _failed(task, result, exc, checkout)
        if deadline.cancelled_caught:
            log.error("task %s: its worktree %s was not closed in time", task.id, checkout.path)
            _failed(task, result, _too_long("commit the worktree"), checkout)


def _too_long(what: str) -> WorktreeError:
    return WorktreeError(
        f"git took more than {GIT_DEADLINE_S:g}s to {what}",
        "check the repository (git worktree list) and the disk",
    )


def _failed(
    task: Task, result: Result, exc: WorktreeError, checkout: Checkout | None = None
) -> None:
    """The task fails with `workspace_error`; after the run, the work's place is named."""
    log.error("task %s: %s", task.id, exc)
    message, hint = exc.message, exc.hint
    if checkout is not None:
        message += f"; the work is still in {checkout.path} (branch {checkout.branch})"
        hint = f"{hint}; restart the daemon to commit it on the branch, or commit it there"
    result.status = "failed"
    result.error = error_info("workspace_error", message, hint)
