"""What the dashboard reads about tasks: the list (filtered by state, agent and day, searched
by id), the latest ones, and one task in full (its file, result, attempts, events log,
dependencies and handoffs). Reads only: the telemetry database read-only, the work folders,
and always through the indexes the daemon's queries use, so a database of a million
invocations answers in milliseconds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from orchestrator.control import find_task_file
from orchestrator.errors import TaskRejected, UsageError
from orchestrator.reports.status import FINAL_STATES, database, read_budgets
from orchestrator.safefile import read_regular
from orchestrator.tasks import TASK_SUFFIXES, id_problem
from orchestrator.workdir import RESULT_MAX_BYTES, RESULT_SUFFIX, is_task_name

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

LIVE_STATES = ("queued", "waiting", "scheduled", "waiting_quota", "running")
STATES = (*LIVE_STATES, *FINAL_STATES)
TASK_COLUMNS = ("task_id", "agent", "state", "priority", "tool", "model", "updated_at",
                "started_at", "waiting_for", "parent_task", "chain_id", "detail",
                "branch")  # fmt: skip
MAX_LIMIT = 500
# What a task file may say about its prompt: hidden unless privacy.prompts is `full`.
PROMPT_KEYS = ("prompt", "description", "context", "notes")
HIDDEN = "(hidden: policies.yaml privacy.prompts is not `full`)"


@dataclass(frozen=True)
class TaskFilter:
    state: str | None = None
    agent: str | None = None
    day: str | None = None  # YYYY-MM-DD in the budgets' time zone (last updated that day)
    search: str | None = None  # part of the id
    limit: int = 100

    def check(self) -> None:
        """A UsageError naming the bad value and what is allowed."""
        if self.state and self.state not in (*STATES, "inbox"):
            raise UsageError(f"state {self.state!r} is none of: inbox, {', '.join(STATES)}")
        if self.day:
            try:
                date.fromisoformat(self.day)
            except ValueError:
                raise UsageError(f"day {self.day!r}: write it as YYYY-MM-DD") from None
        if not 1 <= self.limit <= MAX_LIMIT:
            raise UsageError(f"limit {self.limit}: between 1 and {MAX_LIMIT}")


def _iso(moment: datetime) -> str:
    """As the daemon writes `updated_at`: UTC, milliseconds, Z (so strings compare)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day_bounds(day: str, zone_name: str) -> tuple[str, str]:
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), ZoneInfo(zone_name))
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), start.tzinfo)
    return _iso(start), _iso(end)


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(TASK_COLUMNS, values, strict=True))
    row["id"] = row.pop("task_id")
    return row


def _by_state(
    db: sqlite3.Connection, states: tuple[str, ...], where: str, args: list[Any], limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` tasks over `states`: one range scan of the (state, updated_at)
    index per state, merged, instead of sorting the whole table."""
    found: list[dict[str, Any]] = []
    sql = (
        f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE state = ?{where} "
        "ORDER BY updated_at DESC LIMIT ?"
    )
    for state in states:
        found += [_row(r) for r in db.execute(sql, [state, *args, limit])]
    found.sort(key=lambda r: r["updated_at"] or "", reverse=True)
    return found[:limit]


def list_tasks(root: Path, flt: TaskFilter) -> list[dict[str, Any]]:
    """The tasks matching `flt`, the last updated first; files still in the inbox (not
    yet claimed by a daemon) come first as state `inbox`."""
    flt.check()
    found = _inbox(root, flt) if flt.state in (None, "", "inbox") and not flt.day else []
    if flt.state == "inbox":
        return found[: flt.limit]
    where, args = "", []
    if flt.agent:
        where += " AND agent = ?"
        args.append(flt.agent)
    if flt.day:
        low, high = day_bounds(flt.day, read_budgets(root).timezone)
        where += " AND updated_at >= ? AND updated_at < ?"
        args += [low, high]
    if flt.search:  # a scan of the ids: fine for a search, never on the overview
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND task_id LIKE ? ESCAPE '\\'"
        args.append(f"%{escaped}%")
    with database(root) as db:
        if db is not None:
            states = (flt.state,) if flt.state else STATES
            found += _by_state(db, states, where, args, flt.limit)
    return found[: flt.limit]


def _inbox(root: Path, flt: TaskFilter) -> list[dict[str, Any]]:
    found = []
    try:
        with os.scandir(root / "work" / "inbox") as entries:
            names = sorted(e.name for e in entries if is_task_name(e.name))
    except OSError:
        return []
    for name in names:
        task_id = name.rsplit(".", 1)[0]
        if not flt.search or flt.search in task_id:
            found.append({"id": task_id, "state": "inbox", "agent": None, "file": name})
    return found[: flt.limit]


def recent_tasks(root: Path, limit: int = 15) -> list[dict[str, Any]]:
    """The latest tasks of every state (for the overview)."""
    with database(root) as db:
        return _by_state(db, STATES, "", [], limit) if db is not None else []


def _read_yaml(path: Path, limit: int) -> Any:
    try:
        return yaml.safe_load(read_regular(path, limit))
    except (OSError, yaml.YAMLError, TaskRejected, UnicodeDecodeError):
        return None


def find_task(root: Path, task_id: str, file_name: str | None) -> Path | None:
    """The task file: in the inbox or running/ (by name, then by content), or in the
    archive (newest day first) under the name its result gives or its id's."""
    work = root / "work"
    for folder in (work / "inbox", work / "running"):
        found = find_task_file(folder, task_id)
        if found is not None:
            return found[0]
    archive = work / "archive"
    days = sorted(archive.iterdir(), reverse=True) if archive.is_dir() else []
    names = ([file_name] if file_name else []) + [f"{task_id}{s}" for s in TASK_SUFFIXES]
    for name in names:  # by name only: reading every archived file would not scale
        for day in days:
            if (day / name).is_file():
                return day / name
    return None


def redact(task: dict[str, Any], full: bool) -> dict[str, Any]:
    """A task file as shown: its prompt (and what a prompt is composed from) hidden unless
    privacy is `full`."""
    if full:
        return task
    return {k: (HIDDEN if k in PROMPT_KEYS else v) for k, v in task.items()}


INVOCATION_FIELDS = ("attempt", "tool", "model", "route_reason", "fallback_from", "started_at",
                     "duration_ms", "exit_code", "outcome", "error_kind", "input_tokens",
                     "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
                     "cost_source")  # fmt: skip


def task_detail(root: Path, task_id: str, *, full: bool) -> dict[str, Any] | None:
    """Everything known about one task, or None when nothing is."""
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"task id {task_id!r} {why}")
    work = root / "work"
    result = _read_yaml(work / "outbox" / f"{task_id}{RESULT_SUFFIX}", RESULT_MAX_BYTES)
    result = result if isinstance(result, dict) else None
    row: dict[str, Any] | None = None
    invocations: list[dict[str, Any]] = []
    children: list[dict[str, Any]] = []
    with database(root) as db:
        if db is not None:
            found = db.execute(
                f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE task_id = ?", (task_id,)
            ).fetchone()
            row = _row(found) if found else None
            invocations = [
                dict(zip(INVOCATION_FIELDS, r, strict=True))
                for r in db.execute(
                    f"SELECT {', '.join(INVOCATION_FIELDS)} FROM invocations "
                    "WHERE task_id = ? ORDER BY id",
                    (task_id,),
                )
            ]
            children = [  # the partial index of handoffs (tasks_parent)
                {"id": i, "agent": a, "state": s}
                for i, a, s in db.execute(
                    "SELECT task_id, agent, state FROM tasks INDEXED BY tasks_parent "
                    "WHERE parent_task = ? ORDER BY updated_at",
                    (task_id,),
                )
            ]
    path = find_task(root, task_id, (result or {}).get("task_file"))
    task = _read_yaml(path, RESULT_MAX_BYTES) if path is not None else None
    if result is None and row is None and task is None:
        return None
    task = redact(task, full) if isinstance(task, dict) else None
    if result is not None and not full and isinstance(result.get("task"), dict):
        result = {**result, "task": redact(result["task"], full)}
    return {
        "id": task_id,
        "state": _state(result, row, path),
        "row": row,
        "task_file": str(path.relative_to(root)) if path is not None else None,
        "task": task,
        "result": result,
        "invocations": invocations,
        "history": _history(work / "outbox" / "history", task_id),
        "graph": _graph(task_id, task, row, children),
    }


def _state(result: dict[str, Any] | None, row: dict[str, Any] | None, path: Path | None) -> str:
    """The result's status; else where its file is (a retried task's telemetry row still
    tells the run before until the daemon takes it up again)."""
    if result is not None:
        return str(result.get("status") or "unknown")
    told = str((row or {}).get("state") or "")
    folder = path.parent.name if path is not None else None
    if folder == "inbox":
        return "inbox"
    if folder == "running":
        return told if told in LIVE_STATES else "queued"
    return told or "unknown"


def _history(folder: Path, task_id: str) -> list[str]:
    """Earlier runs' result files (kept by `retry`), oldest first."""
    runs = []
    for n in range(1, 1000):
        if not (folder / f"{task_id}.{n}{RESULT_SUFFIX}").is_file():
            break
        runs.append(f"work/outbox/history/{task_id}.{n}{RESULT_SUFFIX}")
    return runs


def _graph(
    task_id: str,
    task: dict[str, Any] | None,
    row: dict[str, Any] | None,
    children: list[dict[str, Any]],
) -> dict[str, Any]:
    """Dependencies (before), the task that handed this one over, and the handoffs it
    made (after)."""
    depends = (task or {}).get("depends_on") or []
    depends = [str(d) for d in (depends if isinstance(depends, list) else [depends])]
    parent = (row or {}).get("parent_task") or (task or {}).get("previous_task")
    return {
        "id": task_id,
        "depends_on": depends,
        "parent": str(parent) if parent else None,
        "handoffs": children,
    }
