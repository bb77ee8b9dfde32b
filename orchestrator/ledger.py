"""The budget ledger every process on a workspace shares (daemons and `exec` calls alike).

A reservation is a lease in `work/ledger.db`: one row per budget window, with its owner
(pid and start time, so a reused pid is not mistaken for it) and an expiry. It is taken in
a write transaction (`BEGIN IMMEDIATE`) after reading what is committed in each window:
the spend recorded in telemetry plus every live lease. So however many processes reserve
at once, a hard budget is passed by at most one estimate's error.

A lease ends three ways:
- settled: it then holds the actual cost until the attempt's row appears in telemetry,
  which counts it from then on (or until its window ends, when telemetry cannot be
  written). A cost that is unknown is held as the estimate until the window ends, since
  telemetry would count it as nothing;
- its owner died (`kill -9`, a crash): its unsettled leases are released at the next
  reservation by anyone, so a dead holder never strands budget;
- it expired (a tool's timeout and a margin): released the same way.

The ledger is used only when a budget limit applies: with no limit there is nothing to
count, and no transaction is taken.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import reaper
from orchestrator.policy import BudgetDecision, BudgetLedger, Reservation, decide, windows_for
from orchestrator.telemetry.store import BUSY_TIMEOUT_MS, connect, spend_between

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime
    from pathlib import Path

    from orchestrator.config import Budgets
    from orchestrator.policy import Window

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY,
    owner INTEGER NOT NULL,
    owner_start INTEGER NOT NULL,
    scope TEXT NOT NULL,
    period TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end REAL NOT NULL,
    amount REAL NOT NULL,
    task_id TEXT,
    attempt INTEGER,
    settled INTEGER NOT NULL DEFAULT 0,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_window ON leases (scope, period, window_start);
"""


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22); None when
    it is gone or a zombie. Without /proc (macOS) 0 while the pid exists (signal 0), so a
    reused pid would pass for its old owner there (docs/platforms.md)."""
    try:
        with open(f"{reaper.PROC}/{pid}/stat", "rb") as f:
            fields = f.read(4096).rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return 0 if not os.path.isdir(reaper.PROC) and reaper.pid_alive(pid) else None
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


@dataclass
class SharedLedger:
    """`BudgetLedger`'s interface, with its state in `work/ledger.db`."""

    budgets: Budgets
    path: Path  # work/ledger.db
    telemetry: Path  # work/telemetry.db, where settled spend ends up
    lease_s: float  # how long an unsettled lease lives at most (the longest tool timeout)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._me = (os.getpid(), process_start(os.getpid()) or 0)
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        # When ledger.db cannot be used (a full disk, a corrupt file): this process's own.
        self._local = BudgetLedger(self.budgets, self._spent_in)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db = db
        return self._db

    def applies_to(self, agent: str) -> bool:
        """Does any budget limit apply to `agent` (else reserving touches no database)?"""
        budgets = self.budgets
        own = budgets.per_agent.get(agent)
        limits = [budgets.daily_usd, budgets.monthly_usd]
        if own is not None:
            limits += [own.daily_usd, own.monthly_usd]
        return any(limit is not None for limit in limits)

    def committed_in(self, window: Window) -> float:
        """What is spent and held in `window`, by every process (for `exec`'s question)."""
        try:
            with self._lock, _transaction(db := self._connection()):
                return self._count(db, [window])[window.key]
        except sqlite3.Error:
            return self._spent_in(window)

    def reserve(
        self,
        agent: str,
        estimate: float,
        now: datetime,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
    ) -> tuple[BudgetDecision, Reservation | None]:
        """Check every window against what all processes have spent and hold, and lease
        `estimate` in each when allowed: one write transaction."""
        windows = windows_for(self.budgets, agent, now)
        if not windows:
            return BudgetDecision(allowed=True), Reservation([], estimate)
        try:
            with self._lock:
                return self._reserve(windows, estimate, task_id, attempt)
        except sqlite3.Error as exc:
            log.warning(
                "the shared budget ledger %s cannot be used (%s): budgets count this "
                "process's spend and holds only",
                self.path,
                exc,
            )
            return self._local.reserve(agent, estimate, now)

    def _reserve(
        self, windows: list[Window], estimate: float, task_id: str | None, attempt: int | None
    ) -> tuple[BudgetDecision, Reservation | None]:
        db = self._connection()
        with _transaction(db):
            committed = self._count(db, windows)
            decision = decide(windows, committed, estimate, self.budgets)
            if not decision.allowed:
                return decision, None
            expires = self.clock() + self.lease_s
            ids = [
                db.execute(
                    "INSERT INTO leases (owner, owner_start, scope, period, window_start,"
                    " window_end, amount, task_id, attempt, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*self._me, *w.key, w.end.timestamp(), estimate, task_id, attempt, expires),
                ).lastrowid
                for w in windows
            ]
        return decision, Reservation(windows, estimate, leases=tuple(i for i in ids if i))

    def settle(self, reservation: Reservation | None, actual: float | None) -> None:
        """The lease now holds the actual cost (the estimate when unknown or impossible)
        until telemetry has the attempt's row."""
        if reservation is None or not reservation.windows:
            return
        if not reservation.leases:  # reserved while ledger.db could not be used
            self._local.settle(reservation, actual)
            return
        known = actual is not None and math.isfinite(actual) and actual >= 0
        cost = actual if known and actual is not None else reservation.amount
        marks = ",".join("?" * len(reservation.leases))
        # A known cost is matched with its telemetry row; an unknown one (which telemetry
        # counts as nothing) is held, as the estimate, until its window ends.
        matched = "task_id" if known else "NULL"
        try:
            with self._lock, _transaction(db := self._connection()):
                db.execute(
                    f"UPDATE leases SET amount = ?, settled = 1, task_id = {matched},"
                    f" expires = window_end WHERE id IN ({marks})",
                    (cost, *reservation.leases),
                )
        except sqlite3.Error as exc:  # the lease keeps the estimate until it expires
            log.warning("cannot settle a lease in %s: %s", self.path, exc)

    def _spent_in(self, window: Window) -> float:
        with self._reading() as tele:
            agent = None if window.scope == "global" else window.scope
            return spend_between(tele, window.start, window.end, agent)
        return 0.0

    def _count(
        self, db: sqlite3.Connection, windows: list[Window]
    ) -> dict[tuple[str, str, str], float]:
        """Release the leases that have ended, then what is committed per window: the spend
        telemetry has recorded plus every live lease (one telemetry connection for both).

        Ended: expired, unsettled ones of dead owners, and settled ones whose row telemetry
        now has (it counts them itself from then on). Telemetry's spend is read after those
        rows were looked for: a row that lands in between is counted twice (safe), never
        not at all."""
        db.execute("DELETE FROM leases WHERE expires < ?", (self.clock(),))
        owners = db.execute("SELECT DISTINCT owner, owner_start FROM leases WHERE settled = 0")
        for owner, started in owners.fetchall():
            if (owner, started) != self._me and process_start(owner) != started:
                log.warning("releasing the budget held by process %d, which has ended", owner)
                db.execute(
                    "DELETE FROM leases WHERE owner = ? AND owner_start = ? AND settled = 0",
                    (owner, started),
                )
        settled = db.execute(
            "SELECT id, task_id, attempt FROM leases WHERE settled = 1 AND task_id IS NOT NULL"
        ).fetchall()
        recorded: list[tuple[int]] = []
        spent = dict.fromkeys((w.key for w in windows), 0.0)
        with self._reading() as tele:
            for lease, task, attempt in settled:
                row = tele.execute(
                    "SELECT 1 FROM invocations WHERE task_id = ? AND attempt = ? LIMIT 1",
                    (task, attempt),
                ).fetchone()
                if row:
                    recorded.append((lease,))
            for window in windows:
                agent = None if window.scope == "global" else window.scope
                spent[window.key] = spend_between(tele, window.start, window.end, agent)
        db.executemany("DELETE FROM leases WHERE id = ?", recorded)
        committed = {}
        for window in windows:
            held = db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM leases"
                " WHERE scope = ? AND period = ? AND window_start = ?",
                window.key,
            ).fetchone()[0]
            committed[window.key] = spent[window.key] + float(held)
        return committed

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read connection to telemetry; what fails inside (a missing, corrupt or locked
        database) is logged and counts as no spend, as the daemon has always done."""
        try:
            tele = connect(self.telemetry, readonly=True)
        except sqlite3.Error as exc:
            if self.telemetry.exists():
                log.warning("cannot read spend from %s: %s; counting from 0", self.telemetry, exc)
            tele = sqlite3.connect(":memory:")
            tele.executescript(_EMPTY_TELEMETRY)
        try:
            yield tele
        except sqlite3.Error as exc:
            log.warning("cannot read spend from %s: %s; counting from 0", self.telemetry, exc)
        finally:
            tele.close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_EMPTY_TELEMETRY = """
CREATE TABLE invocations (task_id TEXT, attempt INTEGER);
CREATE TABLE usage_rollup (bucket TEXT, agent TEXT, cost_usd REAL);
"""


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: the write lock is taken before anything is read."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
