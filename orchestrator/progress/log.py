"""A task's events log, `work/logs/<task-id>.events.jsonl`: one JSON record per line,
appended by the daemon (or `exec`) while the task's attempts run, kept after the end.

Writes are batched: records wait in memory and go to the file in one open-append-close at
most every `flush_s` seconds (the runner's flusher calls `flush`) and at the end of each
attempt, so a run costs the daemon a few small writes a second at most, and nothing at all
for a tool whose output is not a stream. Consecutive text records (a streamed answer's word
deltas) and consecutive usage records are merged while they wait. Progress is best effort:
a log that cannot be written is given up with one warning; the task runs on.

A record: `t` (seconds since the epoch), `attempt` (its number in the result's attempts),
`kind` (see progress.events.Kind) and the event's own fields (`name`, `target`, `text`,
`ok`, `session_id`; `tool` and `model` for `start`; `outcome` and `error` for `end`), then
the state after it: `step` (what the run is doing now), `usage` and `cost_usd` (the task's
so far, every attempt counted). So the last record alone tells how a task stands.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from orchestrator.progress.events import MAX_TEXT
from orchestrator.progress.paths import log_path as log_path  # where it is

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

FLUSH_S = 0.5
Record = dict[str, Any]


class EventLog:
    def __init__(self, path: Path, flush_s: float = FLUSH_S) -> None:
        self.path = path
        self.flush_s = flush_s
        self.pending: list[Record] = []
        self.broken = False  # a write failed: records are dropped from then on

    def add(self, record: Record) -> None:
        """Queue a record; a text or usage record merges into the one waiting before it."""
        if self.pending and (last := self.pending[-1])["kind"] == record["kind"]:
            if record["kind"] == "usage":
                self.pending[-1] = record
                return
            if record["kind"] == "text" and last.get("name") == record.get("name"):
                text = last.get("text", "") + record.get("text", "")
                self.pending[-1] = {**record, "text": text[: MAX_TEXT + 1]}
                return
        if record.get("text") is not None:
            record["text"] = record["text"][: MAX_TEXT + 1]
        self.pending.append(record)

    def flush(self) -> None:
        """Append what waits (one write) to the file, made with its folder when missing."""
        if not self.pending:
            return
        records, self.pending = self.pending, []
        if self.broken:
            return
        data = b"".join(_line(record) for record in records)
        try:
            try:
                fd = _open(self.path)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = _open(self.path)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            self.broken = True
            log.warning(
                "cannot write the events log %s (%s): its progress is not shown", self.path, exc
            )


def _open(path: Path) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o644)


def _line(record: Record) -> bytes:
    compact = {key: value for key, value in record.items() if value is not None}
    return json.dumps(compact, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
