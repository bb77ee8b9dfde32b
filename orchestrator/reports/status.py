"""`status`: the queue by state, running and waiting tasks, handoffs, spend against the
budgets and the telemetry database's health, as text or JSON; and what `stats` shares with
it (the budgets' settings, a read-only connection to the telemetry database)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from orchestrator.errors import OrchestratorError, TelemetryUnusable
from orchestrator.isolation.listing import branch_lines, branches
from orchestrator.policy import period_bounds
from orchestrator.progress.view import add_progress, progress_text
from orchestrator.telemetry.store import (
    connect,
    parse_time,
    spend_between,
    unusable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FINAL_STATES = ("succeeded", "failed", "rejected", "timed_out", "cancelled", "blocked_by_budget")
BAR_WIDTH = 30


@dataclass(frozen=True)
class BudgetView:
    daily_usd: float | None
    monthly_usd: float | None
    warn_at_percent: float
    mode: str
    timezone: str


def read_budgets(root: Path) -> BudgetView:
    """The budgets in force, read without the full config validation: config/policies.yaml
    over the user folder's, converted when in the older schema, with the profile
    ORCHESTRATOR_PROFILE names laid over them."""
    from orchestrator.configdirs import PROFILE_ENV, locate, merge

    try:
        data = locate(root).data("policies.yaml")
    except (OrchestratorError, OSError):
        data = None
    data = data if isinstance(data, dict) else {}
    profiles = data.get("profiles")
    overlay = profiles.get(os.environ.get(PROFILE_ENV, "")) if isinstance(profiles, dict) else None
    if isinstance(overlay, dict):
        data = merge(data, overlay)
    budgets = data.get("budgets")
    budgets = budgets if isinstance(budgets, dict) else {}
    return BudgetView(
        daily_usd=budgets.get("daily_usd"),
        monthly_usd=budgets.get("monthly_usd"),
        warn_at_percent=float(budgets.get("warn_at_percent", 80)),
        mode=str(budgets.get("mode", "hard")),
        timezone=str(budgets.get("timezone", "UTC")),
    )


@contextlib.contextmanager
def database(root: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when there is no database (yet). A database SQLite
    refuses (not one, corrupt, unreadable), on opening or while it is read, raises
    TelemetryUnusable: an empty report would hide it."""
    path = root / "work" / "telemetry.db"
    if not path.exists():
        yield None
        return
    if not path.is_file():
        raise TelemetryUnusable(
            path,
            "not a database file",
            "move it aside to start a new one (the next run creates it)",
        )
    try:
        db = connect(path, readonly=True)
    except sqlite3.Error as exc:
        raise unusable(path, exc) from None
    try:
        ready = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'usage_rollup'").fetchone()
        yield db if ready else None  # a database being created has no tables yet
    except sqlite3.Error as exc:
        raise unusable(path, exc) from None
    finally:
        db.close()


def telemetry_health(root: Path) -> dict[str, Any]:
    """What the daemon's telemetry writer last reported (rows buffered or dropped)."""
    health: dict[str, Any] = {
        "ok": True,
        "dropped": 0,
        "buffered": 0,
        "error": None,
        "unreadable": False,
    }
    path = root / "work" / "telemetry.health.json"
    with contextlib.suppress(OSError, ValueError):
        health.update(json.loads(path.read_text()))
        health["ok"] = not health["error"] and not health["dropped"]
    db = root / "work" / "telemetry.db"
    if db.exists() and not db.is_file():
        health.update(ok=False, error=f"{db} is not a database file")
    return health


def _count_files(folder: Path) -> int:
    try:
        with os.scandir(folder) as it:
            return sum(
                1 for e in it if e.name.endswith((".yaml", ".yml")) and not e.name.startswith(".")
            )
    except FileNotFoundError:
        return 0


def _read_status(
    db: sqlite3.Connection,
    now: datetime,
    day_start: datetime,
    queue: dict[str, int],
    running: list[dict[str, Any]],
    waiting: list[dict[str, Any]],
    chains: list[dict[str, Any]],
) -> None:
    """Task counts, running and waiting tasks and today's handoffs, into the lists given."""
    today_iso = day_start.isoformat().replace("+00:00", "Z")
    # two index range scans (tasks_state is on (state, updated_at)), not a full scan
    live = db.execute(
        "SELECT state, COUNT(*) FROM tasks "
        "WHERE state IN ('queued', 'waiting', 'scheduled', 'waiting_quota', 'running') "
        "GROUP BY state"
    )
    done = db.execute(
        f"SELECT state, COUNT(*) FROM tasks WHERE state IN "
        f"({', '.join('?' * len(FINAL_STATES))}) AND updated_at >= ? GROUP BY state",
        (*FINAL_STATES, today_iso),
    )
    queue.update(dict(live.fetchall()))
    queue.update(dict(done.fetchall()))
    for task_id, agent, tool, model, started in db.execute(
        "SELECT task_id, agent, tool, model, started_at FROM tasks "
        "WHERE state = 'running' ORDER BY started_at"
    ):
        elapsed = (now - parse_time(started)).total_seconds() if started else None
        running.append(
            {"id": task_id, "agent": agent, "tool": tool, "model": model,
             "elapsed_s": round(elapsed, 1) if elapsed is not None else None}
        )  # fmt: skip
    for task_id, agent, waiting_for in db.execute(
        "SELECT task_id, agent, waiting_for FROM tasks WHERE state = 'waiting'"
    ):
        waiting.append({"id": task_id, "agent": agent, "waiting_for": waiting_for})
    for task_id, agent, detail in db.execute(
        "SELECT task_id, agent, detail FROM tasks WHERE state = 'scheduled' ORDER BY detail"
    ):
        waiting.append({"id": task_id, "agent": agent, "scheduled": True, "detail": detail})
    for task_id, agent, resume_at, detail in db.execute(
        "SELECT task_id, agent, waiting_for, detail FROM tasks "
        "WHERE state = 'waiting_quota' ORDER BY waiting_for"
    ):
        waiting.append({"id": task_id, "agent": agent, "quota": True, "resume_at": resume_at,
                        "detail": detail})  # fmt: skip
    for task_id, parent, agent, state in db.execute(
        "SELECT task_id, parent_task, agent, state FROM tasks "
        "WHERE parent_task IS NOT NULL AND updated_at >= ? ORDER BY updated_at",
        (today_iso,),
    ):
        chains.append({"from": parent, "to": task_id, "agent": agent, "state": state})


def status_data(root: Path, now: datetime | None = None) -> dict[str, Any]:
    """What `status --json` prints: queue, running tasks, spend vs budgets."""
    now = now or datetime.now(UTC)
    budgets = read_budgets(root)
    zone = ZoneInfo(budgets.timezone)
    day_start, day_end = period_bounds(now, zone, "daily")
    month_start, month_end = period_bounds(now, zone, "monthly")
    queue: dict[str, int] = {"inbox": _count_files(root / "work" / "inbox")}
    live = ("queued", "waiting", "scheduled", "waiting_quota", "running")
    queue.update(dict.fromkeys((*live, *FINAL_STATES), 0))
    running: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    chains: list[dict[str, Any]] = []
    work_branches: dict[str, Any] = {}  # isolated tasks' (docs/isolation.md)
    today = month = 0.0
    health = telemetry_health(root)
    try:
        with database(root) as db:
            if db is not None:
                _read_status(db, now, day_start, queue, running, waiting, chains)
                work_branches = branches(root, db, FINAL_STATES)
                today = spend_between(db, day_start, day_end)
                month = spend_between(db, month_start, month_end)
    except TelemetryUnusable as problem:  # the queue and budgets are still worth showing
        health.update(ok=False, unreadable=True, error=str(problem))
    add_progress(root / "work", running, now.timestamp())  # from their events logs
    warnings = []
    for label, spent, limit in (("today", today, budgets.daily_usd),
                                ("this month", month, budgets.monthly_usd)):  # fmt: skip
        if limit and spent >= limit * budgets.warn_at_percent / 100:
            over = "over" if spent >= limit else "near"
            warnings.append(f"spend {label} ${spent:.2f} is {over} the budget of ${limit:.2f}")
    return {
        "queue": queue,
        "running": running,
        "waiting": [t for t in waiting if not t.get("scheduled") and not t.get("quota")],
        "scheduled": [
            {k: v for k, v in t.items() if k != "scheduled"} for t in waiting if t.get("scheduled")
        ],
        "waiting_quota": [
            {k: v for k, v in t.items() if k != "quota"} for t in waiting if t.get("quota")
        ],
        "windows": _windows(root, now),
        "circuits": _circuits(root),
        "executor": _executor(root),
        "chains": chains,
        "branches": work_branches or branches(root, None, FINAL_STATES),
        "telemetry": health,
        "spend": {
            "today_usd": round(today, 6),
            "month_usd": round(month, 6),
            "budgets": {
                "daily_usd": budgets.daily_usd,
                "monthly_usd": budgets.monthly_usd,
                "warn_at_percent": budgets.warn_at_percent,
                "mode": budgets.mode,
                "timezone": budgets.timezone,
            },
            "warnings": warnings,
        },
    }


def _windows(root: Path, now: datetime) -> list[dict[str, Any]]:
    """The usage windows closed now (orchestrator.windows), soonest to open first."""
    from orchestrator.windows import STATE_FILE, read_windows

    closed = read_windows(root / "work" / STATE_FILE).values()
    return [
        {"key": w.key, "until": _iso(w.until), "since": _iso(w.since), "why": w.why}
        for w in sorted(closed, key=lambda w: w.until)
        if w.until > now.timestamp()
    ]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _until(text: str | None) -> str:
    """`2026-12-03 04:20 UTC (in 1h59m)`, from an ISO time."""
    if not text:
        return "?"
    moment = parse_time(text)
    left = max(0, int((moment - datetime.now(UTC)).total_seconds()))
    hours, minutes = divmod(left // 60, 60)
    days, hours = divmod(hours, 24)
    span = f"{days}d{hours}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
    span = span if left >= 60 else f"{left}s"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC (in {span})"


def _executor(root: Path) -> dict[str, Any]:
    """Where tools run, when not here: the Dask workers and what runs on each, as the
    daemon last wrote it (orchestrator.executors.dask); {} for the local executor."""
    try:
        data = json.loads((root / "work" / "executor.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _executor_lines(executor: dict[str, Any]) -> list[str]:
    if not executor:
        return []
    state = "connected" if executor.get("connected") else "NOT connected (tasks wait)"
    lines = [f"dask scheduler {executor.get('scheduler')}: {state}"]
    for address, worker in sorted((executor.get("workers") or {}).items()):
        have = " ".join(f"{k}={v:g}" for k, v in sorted(worker.get("resources", {}).items()))
        running = ", ".join(worker.get("running", [])) or "idle"
        lines.append(f"  {address}  [{have or 'no tools'}]  {running}")
    return lines


def _circuits(root: Path) -> dict[str, Any]:
    """The open circuit breakers the daemon wrote (orchestrator.circuits), or none."""
    try:
        data = json.loads((root / "work" / "circuits.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _bar(value: float, limit: float | None) -> str:
    if not limit:
        return f"${value:.2f} (no budget)"
    share = min(value / limit, 1.0)
    filled = round(share * BAR_WIDTH)
    return f"${value:.2f} / ${limit:.2f} [{'█' * filled}{'░' * (BAR_WIDTH - filled)}] " + (
        f"{100 * value / limit:.0f}%"
    )


def render_status(data: dict[str, Any]) -> str:
    queue = data["queue"]
    lines = [
        "queue:   " + "  ".join(f"{k} {v}" for k, v in queue.items() if k not in FINAL_STATES),
        "today:   " + "  ".join(f"{k} {queue[k]}" for k in FINAL_STATES if queue.get(k)),
    ]
    if data["running"]:
        lines.append("running:")
        for task in data["running"]:
            elapsed = f"{task['elapsed_s']:.0f}s" if task["elapsed_s"] is not None else "?"
            lines.append(
                f"  {task['id']}  {task['agent']}  {task['tool']}/{task['model'] or '-'}  {elapsed}"
                + progress_text(task)
            )
    if data["waiting"]:
        lines.append("waiting:")
        lines += [f"  {t['id']}  waits for {t['waiting_for']}" for t in data["waiting"]]
    if data["scheduled"]:
        lines.append("scheduled:")
        lines += [f"  {t['id']}  {t['detail']}" for t in data["scheduled"]]
    if data["waiting_quota"]:
        lines.append("waiting for quota (they start again by themselves):")
        lines += [
            f"  {t['id']}  until {_until(t['resume_at'])}: {t['detail']}"
            for t in data["waiting_quota"]
        ]
    if data["windows"]:
        lines.append("out of quota (attempts go to the fallback, else the task waits):")
        lines += [f"  {w['key']}  until {_until(w['until'])}: {w['why']}" for w in data["windows"]]
    if data["circuits"]:
        lines.append("open circuits (attempts go to the fallback):")
        for key, circuit in data["circuits"].items():
            when = datetime.fromtimestamp(float(circuit.get("retry_at", 0)), UTC)
            lines.append(
                f"  {key}  {circuit.get('failures')} failures; probes at {when:%H:%M:%S} UTC"
            )
    lines += _executor_lines(data.get("executor") or {})
    if data["chains"]:
        lines.append("handoffs today:")
        lines += [
            f"  {c['from']} -> {c['to']} ({c['agent']}): {c['state']}" for c in data["chains"]
        ]
    lines += branch_lines(data["branches"])
    spend = data["spend"]
    budgets = spend["budgets"]
    lines.append("spend:")
    lines.append(f"  today       {_bar(spend['today_usd'], budgets['daily_usd'])}")
    lines.append(f"  this month  {_bar(spend['month_usd'], budgets['monthly_usd'])}")
    lines += [f"  warning: {w}" for w in spend["warnings"]]
    health = data["telemetry"]
    if health.get("unreadable"):
        lines.append(f"telemetry: {health['error']} (the spend above is not known)")
    elif not health["ok"]:
        lines.append(
            f"telemetry: {health['buffered']} rows waiting, {health['dropped']} dropped"
            + (f"; the database cannot be written: {health['error']}" if health["error"] else "")
        )
    return "\n".join(lines)
