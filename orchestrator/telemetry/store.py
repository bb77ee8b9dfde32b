"""Schema, numbered append-only migrations, and the read queries of the telemetry store.

Reads (`status`, `stats`, budgets at start-up) use plain sqlite3 and touch only indexed
columns and the `usage_rollup` table (15-minute buckets), so reports stay fast on a
database of millions of invocations. Every real time zone's offset is a multiple of 15
minutes, so calendar days and months in any zone are exact unions of buckets.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from orchestrator.errors import TelemetryUnusable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
BUCKET_MINUTES = 15

INVOCATION_COLUMNS = (
    "task_id", "attempt", "chain_id", "agent", "tool", "model", "route_reason",
    "fallback_from", "started_at", "ended_at", "duration_ms", "exit_code", "outcome",
    "error_kind", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "cost_usd", "cost_source", "price_version", "baseline_cost_usd",
    "session_id", "prompt_hash", "prompt_text", "output_text",
)  # fmt: skip
# Nullable columns that later migrations added to `invocations`, written with the ones
# above (kept apart so that code writing rows of the first schema keeps working).
ADDED_INVOCATION_COLUMNS = ("justification",)  # m004
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


M001_INITIAL = """
        CREATE TABLE invocations (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            chain_id TEXT,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            model TEXT,
            route_reason TEXT,
            fallback_from TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            exit_code INTEGER,
            outcome TEXT NOT NULL,
            error_kind TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            cost_source TEXT,
            price_version TEXT,
            baseline_cost_usd REAL,
            session_id TEXT,
            prompt_hash TEXT,
            prompt_text TEXT,
            output_text TEXT
        );
        CREATE INDEX invocations_started ON invocations (started_at);
        CREATE INDEX invocations_task ON invocations (task_id);
        CREATE INDEX invocations_chain ON invocations (chain_id) WHERE chain_id IS NOT NULL;

        CREATE TABLE task_events (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            state TEXT NOT NULL,
            at TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX task_events_task ON task_events (task_id);

        CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY,
            agent TEXT,
            state TEXT NOT NULL,
            priority TEXT,
            tool TEXT,
            model TEXT,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            waiting_for TEXT,
            parent_task TEXT,
            chain_id TEXT,
            detail TEXT
        );
        CREATE INDEX tasks_state ON tasks (state, updated_at);

        CREATE TABLE usage_rollup (
            bucket TEXT NOT NULL,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            model TEXT NOT NULL,
            invocations INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            unpriced INTEGER NOT NULL,
            saved_usd REAL NOT NULL,
            PRIMARY KEY (bucket, agent, tool, model)
        ) WITHOUT ROWID;
"""

# Files written by `exec --output`, so a later `exec --context` joins their chain.
M002_OUTPUTS = """
        CREATE TABLE outputs (
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            task_id TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX outputs_sha256 ON outputs (sha256);
"""

# Spend per calendar day in a time zone (the budgets' one), so that `stats` reads a few
# thousand rows for a year instead of every 15-minute bucket; and an index for `status`.
M003_DAILY = """
        CREATE TABLE usage_daily (
            zone TEXT NOT NULL,
            day TEXT NOT NULL,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            model TEXT NOT NULL,
            invocations INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            unpriced INTEGER NOT NULL,
            saved_usd REAL NOT NULL,
            PRIMARY KEY (zone, day, agent, tool, model)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_zones (zone TEXT PRIMARY KEY, built_at TEXT NOT NULL);
        CREATE INDEX tasks_parent ON tasks (updated_at) WHERE parent_task IS NOT NULL;
"""

# Why a run went past a hard budget (`exec --force --justification TEXT`); NULL otherwise.
M004_JUSTIFICATION = """
        ALTER TABLE invocations ADD COLUMN justification TEXT;
"""

# An isolated task's branch and its change summary (the result's `workspace:` as JSON),
# so that `status` lists the latest branches from an index instead of reading results.
M005_BRANCHES = """
        ALTER TABLE tasks ADD COLUMN branch TEXT;
        ALTER TABLE tasks ADD COLUMN workspace TEXT;
        CREATE INDEX tasks_branch ON tasks (updated_at) WHERE branch IS NOT NULL;
"""

# Numbered and append-only: a released migration is never edited, only followed.
MIGRATIONS: Sequence[tuple[str, str]] = (
    ("m001_initial", M001_INITIAL),
    ("m002_outputs", M002_OUTPUTS),
    ("m003_daily", M003_DAILY),
    ("m004_justification", M004_JUSTIFICATION),
    ("m005_branches", M005_BRANCHES),
)

SUMS = (
    "invocations", "failures", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "unpriced", "saved_usd",
)  # fmt: skip
_ADD = ", ".join(f"{c} = {c} + excluded.{c}" for c in SUMS)
ROLLUP_UPSERT = (
    f"INSERT INTO usage_rollup VALUES ({', '.join('?' * 13)}) "
    f"ON CONFLICT (bucket, agent, tool, model) DO UPDATE SET {_ADD}"
)
DAILY_UPSERT = (
    f"INSERT INTO usage_daily VALUES ({', '.join('?' * 14)}) "
    f"ON CONFLICT (zone, day, agent, tool, model) DO UPDATE SET {_ADD}"
)


class LocalDays:
    """Calendar day (in a zone) of a UTC time or bucket, cached per bucket."""

    def __init__(self, zone: str) -> None:
        self.name = zone
        self.zone = ZoneInfo(zone)
        self._cache: dict[str, str] = {}

    def of_bucket(self, bucket: str) -> str:
        day = self._cache.get(bucket)
        if day is None:
            moment = datetime.fromisoformat(bucket).replace(tzinfo=UTC)
            day = self._cache[bucket] = moment.astimezone(self.zone).date().isoformat()
        return day


def has_daily(db: sqlite3.Connection, zone: str) -> bool:
    return db.execute("SELECT 1 FROM rollup_zones WHERE zone = ?", (zone,)).fetchone() is not None


def ensure_daily(db: sqlite3.Connection, zone: str) -> bool:
    """Build `usage_daily` for `zone` from the 15-minute rollup, once per zone (the writer
    keeps it current from then on). Returns whether it was built now."""
    if has_daily(db, zone):
        return False
    days = LocalDays(zone)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM usage_daily WHERE zone = ?", (zone,))  # rows an exec added
        sums: dict[tuple[str, str, str, str], list[float]] = {}
        for bucket, agent, tool, model, *values in db.execute("SELECT * FROM usage_rollup"):
            acc = sums.setdefault((days.of_bucket(bucket), agent, tool, model), [0.0] * 9)
            for i, value in enumerate(values):
                acc[i] += value
        db.executemany(DAILY_UPSERT, [(zone, *key, *acc) for key, acc in sums.items()])
        db.execute("INSERT INTO rollup_zones VALUES (?, ?)", (zone, datetime.now(UTC).isoformat()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def _configure(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")


def _applied(db: sqlite3.Connection) -> set[str]:
    """The migrations recorded so far: a read, which a writer holding a lock does not
    block (WAL), so that a database already up to date opens while another process writes."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
        return set()
    return {str(name) for (name,) in db.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded in `_migrations`; return their names."""
    if _applied(db) >= {name for name, _ in MIGRATIONS}:
        return []
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = []
    for name, script in MIGRATIONS:
        db.execute("BEGIN IMMEDIATE")  # whole or not at all, and one process at a time
        try:
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                db.execute("COMMIT")
                continue
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT INTO _migrations VALUES (?, ?)", (name, datetime.now(UTC).isoformat())
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A sqlite3 connection for readers (and the migration at start-up)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return db
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    _configure(db)
    migrate(db)
    return db


def is_busy(exc: sqlite3.Error | str) -> bool:
    """Whether an error (or its message) says another connection holds the lock."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


def hint_for(exc: sqlite3.Error | str) -> str:
    """What to do about an error SQLite gave for the database (or its message)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if is_busy(exc):
        return "another process holds a lock on it; try again when it is done"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or (
        "unable to open" in text or "readonly" in text
    ):
        return "check that it is a file you may read and write, in a folder you may write"
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or "disk is full" in text or "I/O" in text:
        return "free some space on its file system (or check the disk), then try again"
    # SQLITE_NOTADB, SQLITE_CORRUPT and anything else: the file itself is bad
    return "move the file aside to start a new one (the next run creates it)"


def unusable(path: Path, exc: sqlite3.Error) -> TelemetryUnusable:
    """The error for a database that SQLite refused, with what to do about it."""
    return TelemetryUnusable(path, str(exc) or type(exc).__name__, hint_for(exc))


def bucket_of(moment: datetime) -> str:
    """The 15-minute UTC bucket of `moment`, as 'YYYY-MM-DDTHH:MM'."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % BUCKET_MINUTES).strftime("%Y-%m-%dT%H:%M")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- reads -----------------------------------------------------------------------------


def spend_between(db: sqlite3.Connection, start: datetime, end: datetime,
                  agent: str | None = None) -> float:  # fmt: skip
    """Cost of the invocations that started in [start, end) (bucket-exact)."""
    sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_rollup WHERE bucket >= ? AND bucket < ?"
    args: list[Any] = [bucket_of(start), bucket_of(end)]
    if agent is not None:
        sql += " AND agent = ?"
        args.append(agent)
    return float(db.execute(sql, args).fetchone()[0])


def chain_of(db: sqlite3.Connection, sha256: str) -> str | None:
    """The chain id of an `exec --output` file with these contents, if one was recorded."""
    row = db.execute(
        "SELECT chain_id FROM outputs WHERE sha256 = ? ORDER BY rowid DESC LIMIT 1", (sha256,)
    ).fetchone()
    return str(row[0]) if row else None


def record_output(db: sqlite3.Connection, sha256: str, path: str, task_id: str, chain: str) -> None:
    with db:
        db.execute(
            "INSERT INTO outputs VALUES (?, ?, ?, ?, ?)",
            (sha256, path, task_id, chain, datetime.now(UTC).isoformat()),
        )


def prepare(path: Path, zone: str) -> None:
    """At a daemon's start: the schema up to date, and the daily rollup built for the
    budgets' time zone. A database that cannot be opened is only logged (the writer says
    more when it tries)."""
    try:
        with contextlib.closing(connect(path)) as db:
            if ensure_daily(db, zone):
                log.info("built the daily rollup for %s", zone)
    except sqlite3.Error as exc:
        log.warning("telemetry database %s: %s", path, exc)
