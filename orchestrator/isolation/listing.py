"""The branches `status` shows: those being worked on (a live worktree folder each) and the
latest finished ones with their change summary (telemetry's `tasks` table, m005). Kept
light (no anyio, no git): `status` starts fast."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import TYPE_CHECKING, Any

from orchestrator.isolation.branches import branch_name

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

RECENT = 10  # finished branches shown


def branches(
    root: Path, db: sqlite3.Connection | None, final_states: Sequence[str], limit: int = RECENT
) -> dict[str, list[dict[str, Any]]]:
    """{"running": [{id, branch}], "finished": [{id, agent, state, branch, files_changed,
    insertions, deletions, head_commit}]}, the finished newest first."""
    finished: list[dict[str, Any]] = []
    if db is not None:
        try:  # one scan of the partial index tasks_branch, newest first; named, since the
            # planner otherwise takes (state, updated_at) and sorts every finished task
            rows = db.execute(
                "SELECT task_id, agent, state, workspace FROM tasks INDEXED BY tasks_branch "
                "WHERE branch IS NOT NULL "
                f"AND state IN ({', '.join('?' * len(final_states))}) "
                "ORDER BY updated_at DESC LIMIT ?",
                (*final_states, limit),
            ).fetchall()
        except sqlite3.OperationalError:  # a database written before m005: no branches yet
            rows = []
        for task_id, agent, state, text in rows:
            try:
                block = json.loads(text)
            except (TypeError, ValueError):
                continue
            finished.append({"id": task_id, "agent": agent, "state": state, **block})
    return {"running": _running(root / "work" / "worktrees"), "finished": finished}


def _running(folder: Path) -> list[dict[str, Any]]:
    """Worktree folders (<pid>-<task-id>) whose daemon or `exec` is alive."""
    found = []
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        pid, _, task_id = name.partition("-")
        if pid.isdigit() and task_id and os.path.exists(f"/proc/{pid}"):
            found.append({"id": task_id, "branch": branch_name(task_id)})
    return found


def branch_lines(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The text of `status`'s branches section (nothing when there is no branch)."""
    if not data["running"] and not data["finished"]:
        return []
    lines = ["branches (review: git diff HEAD...BRANCH; take: git merge BRANCH):"]
    lines += [f"  {b['branch']}  running" for b in data["running"]]
    for b in data["finished"]:
        files, added, removed = (b.get(k, 0) for k in ("files_changed", "insertions", "deletions"))
        changes = f"{files} files +{added} -{removed}" if files else "no change"
        lines.append(f"  {b.get('branch')}  {b['state']}  {changes}")
    return lines
