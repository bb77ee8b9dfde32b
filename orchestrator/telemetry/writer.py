"""The telemetry writer: one task owns the aiosqlite connection and commits rows from a
memory stream in batches, so the hot path never waits for a commit. If the database cannot
be written (locked, read-only, disk full), rows stay buffered up to a bound and are retried;
beyond it they are counted as dropped. A row the database refuses (a broken constraint, a
number SQLite cannot bind) does not hold up the others: its batch is written row by row,
the row once more with its numbers made storable, else dropped and counted.
Tasks never fail because of telemetry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.telemetry.store import (
    ADDED_INVOCATION_COLUMNS,
    BUSY_TIMEOUT_MS,
    DAILY_UPSERT,
    INVOCATION_COLUMNS,
    ROLLUP_UPSERT,
    TOKEN_KINDS,
    LocalDays,
    bucket_of,
    connect,
    parse_time,
)
from orchestrator.workdir import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    import aiosqlite
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

log = logging.getLogger(__name__)

BATCH_MAX = 1000
MAX_BUFFERED = 200_000
LINGER_S = 0.002  # one transaction for what arrives this close together
RETRY_S = 1.0  # how soon rows the database refused are tried again
SETTLE_TIMEOUT_S = 2.0
SHUTDOWN_FLUSH_S = 3.0  # at the end, how long a failing database gets to take the rest
HEALTH_FILE = "telemetry.health.json"


@dataclass
class Health:
    written: int = 0
    buffered: int = 0
    dropped: int = 0
    last_error: str | None = None


@dataclass
class _Batch:
    invocations: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.invocations) + len(self.events)


class TelemetryWriter:
    """Owns the write connection; `record_*` never block and never raise."""

    def __init__(self, path: Path, zone: str = "UTC") -> None:
        self.path = path
        self.days = LocalDays(zone)  # usage_daily is kept for the budgets' time zone
        self.health_file = path.with_name(HEALTH_FILE)
        self.health = Health()
        send, receive = anyio.create_memory_object_stream[tuple[str, Any]](MAX_BUFFERED)
        self._send: MemoryObjectSendStream[tuple[str, Any]] = send
        self._receive: MemoryObjectReceiveStream[tuple[str, Any]] = receive
        self._pending = _Batch()
        self._pending_items = 0
        self._sent = 0  # items accepted by `_put`
        self._settled = 0  # items committed (or dropped)
        self._progress = anyio.Event()
        # Nothing reported yet: the first report replaces a file an earlier run left.
        self._reported: tuple[Any, ...] = ("?", -1, -1)

    # producers --------------------------------------------------------------------------

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self._send.send_nowait(item)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.health.dropped += 1
        else:
            self._sent += 1

    async def settled(self) -> None:
        """Wait until what was recorded so far is committed. Returns at once while the
        database cannot be written: results must never wait for telemetry."""
        target = self._sent
        with anyio.move_on_after(SETTLE_TIMEOUT_S):
            while self._settled < target and self.health.last_error is None:
                await self._progress.wait()

    def invocation(self, row: dict[str, Any]) -> None:
        self._put(("invocation", row))

    def task_state(self, task_id: str, state: str, at: str, **fields: Any) -> None:
        self._put(("state", (task_id, state, at, fields)))

    def close(self) -> None:
        self._send.close()

    # the writer task --------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the stream until `close()`, committing in batches."""
        import aiosqlite

        db = await self._open(aiosqlite)
        try:
            async with self._receive:
                while True:
                    item = None
                    retry_in = RETRY_S if len(self._pending) else math.inf
                    with anyio.move_on_after(retry_in):  # retry buffered rows even when idle
                        try:
                            item = await self._receive.receive()
                        except anyio.EndOfStream:
                            break
                    if item is not None:
                        self._add(item)
                        await anyio.sleep(LINGER_S)  # let the rows of other tasks join
                    while len(self._pending) < BATCH_MAX:
                        try:
                            self._add(self._receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    db = await self._flush(db, aiosqlite)
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_FLUSH_S):
                while len(self._pending) and db is not None:
                    db = await self._flush(db, aiosqlite)
                    if len(self._pending):
                        await anyio.sleep(0.2)
        finally:
            if len(self._pending):
                self.health.dropped += len(self._pending)
                log.warning("telemetry: %d rows could not be written", len(self._pending))
            self._report()
            if db is not None:
                with anyio.CancelScope(shield=True):
                    await db.close()

    async def _open(self, aiosqlite_module: Any) -> aiosqlite.Connection | None:
        try:
            await anyio.to_thread.run_sync(lambda: connect(self.path).close())
            db: aiosqlite.Connection = await aiosqlite_module.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA cache_size = -512")  # KiB: the writer only appends
            return db
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.health.last_error:
            log.warning("telemetry: cannot write %s (%s); buffering", self.path, message)
        self.health.last_error = message

    def _add(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        batch = self._pending
        self._pending_items += 1
        if kind == "invocation":
            batch.invocations.append(payload)
        else:
            task_id, state, at, fields = payload
            batch.events.append((task_id, state, at, fields.get("detail")))
            current = batch.states.setdefault(task_id, {})
            current.update(fields, state=state, updated_at=at)
        overflow = len(batch) - MAX_BUFFERED
        if overflow > 0:
            del batch.invocations[:overflow]
            self.health.dropped += overflow
        self.health.buffered = len(batch)

    def _report(self) -> None:
        """Keep work/telemetry.health.json in step, for `status`."""
        state = (self.health.last_error, self.health.dropped, self.health.buffered)
        if state == self._reported:
            return
        self._reported = state
        with contextlib.suppress(OSError):  # the disk may be what is failing
            if state == (None, 0, 0):
                self.health_file.unlink(missing_ok=True)
            else:
                data = {"error": state[0], "dropped": state[1], "buffered": state[2],
                        "at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
                atomic_write(self.health_file, json.dumps(data).encode(), durable=False)

    async def _flush(
        self, db: aiosqlite.Connection | None, aiosqlite_module: Any
    ) -> aiosqlite.Connection | None:
        if db is None:
            db = await self._open(aiosqlite_module)
            if db is None:
                self._report()
                return None
        batch = self._pending
        try:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("SAVEPOINT batch")
            written = len(batch.invocations)
            dropped: list[str] = []
            try:
                await _write_batch(db, batch, self.days)
            except ROW_ERRORS as exc:  # a row the database refuses: store the rest
                await db.execute("ROLLBACK TO batch")
                written, dropped = await self._write_one_by_one(db, batch, exc)
            await db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            with contextlib.suppress(sqlite3.Error):
                await db.execute("ROLLBACK")
            self._report()
            return db
        for why in dropped:
            log.warning("telemetry: %s", why)
        self.health.written += written
        self.health.dropped += len(dropped)
        self.health.last_error = dropped[-1] if dropped else None
        self._pending = _Batch()
        self.health.buffered = 0
        self._settled += self._pending_items
        self._pending_items = 0
        self._progress.set()
        self._progress = anyio.Event()
        self._report()
        return db

    async def _write_one_by_one(
        self, db: aiosqlite.Connection, batch: _Batch, first: BaseException
    ) -> tuple[int, list[str]]:
        """Write `batch` item by item, each in its own savepoint: an invocation row the
        database refuses is tried once more with its numbers made storable, and an item
        refused even so is left out. Returns the invocation rows written and why each
        item left out was."""
        log.warning("telemetry: a row was refused (%s); writing the batch row by row", first)
        written = 0
        dropped = []
        items = [_Batch(invocations=[row]) for row in batch.invocations]
        items += [_Batch(events=[event]) for event in batch.events]
        items += [_Batch(states={key: state}) for key, state in batch.states.items()]
        for item in items:
            tries = [item]
            if item.invocations:
                tries.append(_Batch(invocations=[storable(item.invocations[0])]))
            error = await self._write_first(db, tries)
            if error is None:
                written += len(item.invocations)
                continue
            what = (
                f"the invocation row of task {item.invocations[0].get('task_id')!a}"
                if item.invocations
                else "a task event or state"
            )
            dropped.append(f"{type(error).__name__}: {error} ({what} was dropped)")
        return written, dropped

    async def _write_first(
        self, db: aiosqlite.Connection, tries: list[_Batch]
    ) -> BaseException | None:
        """Write the first of `tries` the database takes; the last refusal when none."""
        error: BaseException | None = None
        for attempt in tries:
            await db.execute("SAVEPOINT item")
            try:
                await _write_batch(db, attempt, self.days)
            except ROW_ERRORS as exc:
                await db.execute("ROLLBACK TO item")
                error = exc
            else:
                error = None
            await db.execute("RELEASE item")
            if error is None:
                return None
        return error


# What a single row can do wrong (as opposed to the database being unusable): break a
# constraint, hold a value SQLite cannot bind (an integer past 64 bits), or be malformed.
ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    OverflowError,
    ValueError,
    TypeError,
    KeyError,
)
_COLUMNS = (*INVOCATION_COLUMNS, *ADDED_INVOCATION_COLUMNS)  # every column a row may fill
_SQLITE_INT = (-(2**63), 2**63 - 1)
_NOT_NULL_NUMBERS = frozenset({*TOKEN_KINDS, "reasoning_tokens", "attempt", "duration_ms"})


def _bindable(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # SQLite stores NaN as NULL; sums of inf are NaN
    if isinstance(value, int):
        return _SQLITE_INT[0] <= value <= _SQLITE_INT[1]
    return value is None or isinstance(value, str)


def storable(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with every value SQLite would refuse or a rollup could not sum (NaN, an
    infinity, an integer past 64 bits, a value of another type) nulled, or zeroed where
    the column is a NOT NULL number."""
    fixed = dict(row)
    for column in _COLUMNS:
        if not _bindable(row.get(column)):
            fixed[column] = 0 if column in _NOT_NULL_NUMBERS else None
    return fixed


async def _write_batch(db: aiosqlite.Connection, batch: _Batch, days: LocalDays) -> None:
    if batch.invocations:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        await db.executemany(
            f"INSERT INTO invocations ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            [tuple(row.get(c) for c in _COLUMNS) for row in batch.invocations],
        )
        await db.executemany(ROLLUP_UPSERT, sum_rows(batch.invocations, rollup_key))
        await db.executemany(
            DAILY_UPSERT,
            sum_rows(batch.invocations, lambda row: (days.name, *_day_key(row, days))),
        )
    if batch.events:
        await db.executemany(
            "INSERT INTO task_events (task_id, state, at, detail) VALUES (?, ?, ?, ?)",
            batch.events,
        )
    if batch.states:
        await db.executemany(
            TASK_UPSERT,
            [(task_id, *(fields.get(k) for k in TASK_FIELDS))
             for task_id, fields in batch.states.items()],
        )  # fmt: skip


# A state change overwrites these; the other fields keep their value unless given anew.
TASK_FIELDS = ("state", "updated_at", "waiting_for", "detail", "agent", "priority", "tool",
               "model", "started_at", "parent_task", "chain_id", "branch", "workspace")  # fmt: skip
_OVERWRITTEN = 4
TASK_UPSERT = (
    f"INSERT INTO tasks (task_id, {', '.join(TASK_FIELDS)}) "
    f"VALUES (?, {', '.join('?' for _ in TASK_FIELDS)}) ON CONFLICT (task_id) DO UPDATE SET "
    + ", ".join(
        f"{k} = excluded.{k}" if i < _OVERWRITTEN else f"{k} = COALESCE(excluded.{k}, {k})"
        for i, k in enumerate(TASK_FIELDS)
    )
)


def sum_rows(
    rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[str, ...]]
) -> list[tuple[Any, ...]]:
    """Invocation rows summed per key: the rollups' columns (see store.SUMS)."""
    sums: dict[tuple[str, ...], list[float]] = {}
    for row in rows:
        acc = sums.setdefault(key(row), [0.0] * 9)
        cost = row.get("cost_usd")
        has_usage = any(row.get(k) for k in TOKEN_KINDS)
        acc[0] += 1
        acc[1] += row["outcome"] != "succeeded"
        for i, kind in enumerate(TOKEN_KINDS, 2):
            acc[i] += row.get(kind) or 0
        acc[6] += cost or 0.0
        acc[7] += cost is None and has_usage
        baseline = row.get("baseline_cost_usd")
        acc[8] += (baseline - cost) if baseline is not None and cost is not None else 0.0
    return [
        (*key_, int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]), a[6],
         int(a[7]), a[8])
        for key_, a in sums.items()
    ]  # fmt: skip


def _day_key(row: dict[str, Any], days: LocalDays) -> tuple[str, ...]:
    bucket, *rest = rollup_key(row)
    return (days.of_bucket(bucket), *rest)


def rollup_key(row: dict[str, Any]) -> tuple[str, ...]:
    bucket = bucket_of(parse_time(row["started_at"]))
    return (bucket, row["agent"], row["tool"], row.get("model") or "")
