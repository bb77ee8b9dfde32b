"""`status` and `stats`: read the work directory and the telemetry database, render text,
JSON or CSV. Kept light on purpose (no pydantic, no anyio) so both commands start fast.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import yaml

from orchestrator.errors import TelemetryUnusable
from orchestrator.policy import period_bounds
from orchestrator.telemetry.store import (
    SUMS,
    LocalDays,
    bucket_of,
    connect,
    has_daily,
    parse_time,
    spend_between,
    unusable,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

Period = Literal["daily", "weekly", "monthly"]
GroupBy = Literal["agent", "model", "tool"]
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
    """The budgets of config/policies.yaml, read without the full config validation."""
    try:
        data = yaml.safe_load((root / "config" / "policies.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        data = None
    budgets = (data or {}).get("budgets") or {} if isinstance(data, dict) else {}
    return BudgetView(
        daily_usd=budgets.get("daily_usd"),
        monthly_usd=budgets.get("monthly_usd"),
        warn_at_percent=float(budgets.get("warn_at_percent", 80)),
        mode=str(budgets.get("mode", "hard")),
        timezone=str(budgets.get("timezone", "UTC")),
    )


@contextlib.contextmanager
def _database(root: Path) -> Iterator[sqlite3.Connection | None]:
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
        "WHERE state IN ('queued', 'waiting', 'running') GROUP BY state"
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
    queue.update(dict.fromkeys(("queued", "waiting", "running", *FINAL_STATES), 0))
    running: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    chains: list[dict[str, Any]] = []
    today = month = 0.0
    health = telemetry_health(root)
    try:
        with _database(root) as db:
            if db is not None:
                _read_status(db, now, day_start, queue, running, waiting, chains)
                today = spend_between(db, day_start, day_end)
                month = spend_between(db, month_start, month_end)
    except TelemetryUnusable as problem:  # the queue and budgets are still worth showing
        health.update(ok=False, unreadable=True, error=str(problem))
    warnings = []
    for label, spent, limit in (("today", today, budgets.daily_usd),
                                ("this month", month, budgets.monthly_usd)):  # fmt: skip
        if limit and spent >= limit * budgets.warn_at_percent / 100:
            over = "over" if spent >= limit else "near"
            warnings.append(f"spend {label} ${spent:.2f} is {over} the budget of ${limit:.2f}")
    return {
        "queue": queue,
        "running": running,
        "waiting": waiting,
        "chains": chains,
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
            )
    if data["waiting"]:
        lines.append("waiting:")
        lines += [f"  {t['id']}  waits for {t['waiting_for']}" for t in data["waiting"]]
    if data["chains"]:
        lines.append("handoffs today:")
        lines += [
            f"  {c['from']} -> {c['to']} ({c['agent']}): {c['state']}" for c in data["chains"]
        ]
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


# --- stats -----------------------------------------------------------------------------

STAT_FIELDS = SUMS  # the rollups' columns


def _period_of_day(day: str, period: Period) -> str:
    if period == "daily":
        return day
    if period == "weekly":
        year, week, _ = date.fromisoformat(day).isocalendar()
        return f"{year}-W{week:02d}"
    return day[:7]


def _sum_sql(table: str, key: str, column: str, where: str) -> str:
    sums = ", ".join(f"SUM({f})" for f in STAT_FIELDS)
    return f"SELECT {key}, {column}, {sums} FROM {table} WHERE {where} GROUP BY {key}, {column}"


def stats_rows(
    root: Path,
    *,
    period: Period = "daily",
    by: GroupBy = "model",
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of (period, group) with invocations, tokens by kind, cost, average and share.

    `since` and `until` (included) are days, YYYY-MM-DD in the budgets' time zone, or ISO
    times; they raise ValueError otherwise. Whole days are read from the daily rollup;
    a range that starts or ends inside a day is read from the 15-minute buckets.
    """
    zone_name = read_budgets(root).timezone
    column = {"agent": "agent", "model": "model", "tool": "tool"}[by]
    whole_days = all(v is None or len(v) == 10 for v in (since, until))
    low = parse_day(since, zone_name) if since else None
    high = parse_day(until, zone_name, end=True) if until else None
    sums: dict[tuple[str, str], list[float]] = {}
    with _database(root) as db:
        if db is None:
            return []
        if whole_days and has_daily(db, zone_name):
            sql = _sum_sql("usage_daily", "day", column, "zone = ? AND day >= ? AND day <= ?")
            found = db.execute(sql, (zone_name, since or "", until or "9999"))
            day_of: Callable[[str], str] = str
        else:
            sql = _sum_sql("usage_rollup", "bucket", column, "bucket >= ? AND bucket < ?")
            found = db.execute(sql, (bucket_of(low) if low else "",
                                     bucket_of(high) if high else "9999"))  # fmt: skip
            day_of = LocalDays(zone_name).of_bucket
        for when, group, *values in found:
            key = (_period_of_day(day_of(when), period), group or "-")
            acc = sums.setdefault(key, [0.0] * len(STAT_FIELDS))
            for i, value in enumerate(values):
                acc[i] += value or 0
    return _rows(sums, by)


def _rows(sums: dict[tuple[str, str], list[float]], by: GroupBy) -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for (when, _), acc in sums.items():
        totals[when] = totals.get(when, 0.0) + acc[6]
    rows = []
    for (when, group), acc in sorted(sums.items()):
        row: dict[str, Any] = {"period": when, by: group}
        row.update({f: (round(v, 8) if f in ("cost_usd", "saved_usd") else int(v))
                    for f, v in zip(STAT_FIELDS, acc, strict=True)})  # fmt: skip
        row["avg_cost_usd"] = round(acc[6] / acc[0], 8) if acc[0] else 0.0
        row["share"] = round(acc[6] / totals[when], 4) if totals[when] else 0.0
        rows.append(row)
    return rows


def render_stats_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_stats_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def render_stats(rows: list[dict[str, Any]], by: GroupBy) -> str:
    if not rows:
        return "no invocations recorded in this range"
    header = (
        f"{'period':<10} {by:<22} {'calls':>6} {'input':>10} {'output':>9} {'cache r':>9} "
        f"{'cache w':>8} {'cost $':>10} {'avg $':>9} {'share':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        cost = f"{r['cost_usd']:.4f}" + ("+?" if r["unpriced"] else "")
        lines.append(
            f"{r['period']:<10} {str(r[by])[:22]:<22} {r['invocations']:>6} "
            f"{r['input_tokens']:>10} {r['output_tokens']:>9} {r['cache_read_tokens']:>9} "
            f"{r['cache_write_tokens']:>8} {cost:>10} {r['avg_cost_usd']:>9.4f} "
            f"{100 * r['share']:>5.1f}%"
        )
    invocations = sum(r["invocations"] for r in rows)
    cost = sum(r["cost_usd"] for r in rows)
    saved = sum(r["saved_usd"] for r in rows)
    unpriced = sum(r["unpriced"] for r in rows)
    lines.append("-" * len(header))
    lines.append(f"total: {invocations} invocations, ${cost:.4f}")
    if unpriced:
        lines.append(f"  {unpriced} invocations of models with unknown prices (cost unknown)")
    lines.append(f"cost optimisation saved ${saved:.4f} against the preferred models")
    lines.append("")
    lines.append(_chart(rows))
    return "\n".join(lines)


def _chart(rows: list[dict[str, Any]]) -> str:
    per_period: dict[str, float] = {}
    for r in rows:
        per_period[r["period"]] = per_period.get(r["period"], 0.0) + r["cost_usd"]
    top = max(per_period.values(), default=0.0)
    lines = ["spend per period:"]
    for when, cost in sorted(per_period.items()):
        width = round(BAR_WIDTH * cost / top) if top else 0
        lines.append(f"  {when:<10} {'█' * width:<{BAR_WIDTH}} ${cost:.4f}")
    return "\n".join(lines)


def parse_day(text: str, zone_name: str, *, end: bool = False) -> datetime:
    """`YYYY-MM-DD` (local, in the budget time zone) or an ISO time → UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
        if end and len(text) == 10:
            moment += timedelta(days=1)
    return moment.astimezone(UTC)
