"""Reading tasks' events logs (progress/log.py), for other processes than the daemon: the
last record of each running task's log for `status` (a read of the log's tail, no more),
and `logs ID [--follow]`, every record as a line of text (or JSON) as it comes."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.errors import UsageError
from orchestrator.progress.paths import log_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TAIL_BYTES = 16 * 1024  # a record is far smaller: the last one is in this much of the end
POLL_S = 0.2  # logs --follow: how often the log is read for more
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
Record = dict[str, Any]  # as progress/log.py writes them (not imported: status starts fast)


def _read_from(path: Path, offset: int, limit: int | None = None) -> tuple[bytes, int] | None:
    """The bytes of a regular file from `offset` (the last `limit` ones when given), and
    its size; None when it is missing or not a regular file (never opens a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        start = max(offset, info.st_size - limit) if limit else offset
        os.lseek(fd, start, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        data = b"".join(chunks)
        return data, start + len(data)
    finally:
        os.close(fd)


def _records(data: bytes) -> list[Record]:
    """The records of whole lines (a last line still being written is left out)."""
    found = []
    for line in data.split(b"\n")[:-1]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("t"), int | float):
            found.append(record)
    return found


def last_record(path: Path) -> Record | None:
    """The last whole record of a log (read from its last TAIL_BYTES)."""
    read = _read_from(path, 0, TAIL_BYTES)
    lines = read[0].split(b"\n")[:-1] if read else []
    for line in reversed(lines):
        found = _records(line + b"\n")
        if found:
            return found[0]
    return None


def add_progress(work: Path, running: list[dict[str, Any]], now: float) -> None:
    """Each running task's progress, from the last record of its events log: `idle_s`
    (seconds since its tool's last event), `step`, `tokens` (in, out and cache, summed),
    `usage` and `cost_usd` (the task's so far); None where its log says nothing (no stream
    output yet, or a tool whose output is not a stream)."""
    for task in running:
        elapsed = task.get("elapsed_s")
        record = last_record(log_path(work, str(task["id"])))
        if record is not None and elapsed is not None and record["t"] < now - elapsed - 1:
            record = None  # from an earlier run of the same id
        usage = record.get("usage") if record else None
        usage = usage if isinstance(usage, dict) else None
        task.update(
            idle_s=round(max(now - record["t"], 0.0), 1) if record else None,
            step=record.get("step") if record else None,
            tokens=sum(usage.get(kind, 0) for kind in TOKEN_KINDS) if usage else None,
            usage=usage,
            cost_usd=record.get("cost_usd") if record else None,
        )


def progress_text(task: dict[str, Any]) -> str:
    """A running task's progress for `status`'s text: idle time, step, tokens, cost."""
    parts = []
    if task.get("idle_s") is not None:
        parts.append(f"(idle {task['idle_s']:.0f}s)")
    if task.get("step"):
        parts.append(str(task["step"]))
    if task.get("tokens"):
        parts.append(f"{_count(task['tokens'])} tokens")
    if task.get("cost_usd") is not None:
        parts.append(f"${task['cost_usd']:.4f}")
    return "  " + "  ".join(parts) if parts else ""


def _count(tokens: int) -> str:
    if tokens >= 10_000:
        return f"{tokens / 1000:.0f}k"
    return f"{tokens / 1000:.1f}k" if tokens >= 1000 else str(tokens)


def render(record: Record) -> str:
    """One record as a line of `logs`: its time, its attempt, what happened."""
    moment = datetime.fromtimestamp(float(record["t"])).strftime("%H:%M:%S")
    return f"{moment} #{record.get('attempt', '?')} {_what(record)}"


def _what(record: Record) -> str:
    from orchestrator.progress.events import MAX_TEXT, clip

    kind, name, text = record.get("kind"), record.get("name"), record.get("text")
    if kind == "start":
        model = f" ({record['model']})" if record.get("model") else ""
        return f"started {record.get('tool')}{model}"
    if kind == "session":
        return f"session {record.get('session_id') or '?'}" + (f" ({name})" if name else "")
    if kind == "tool_done":
        return f"tool done: {name or '?'} " + ("ok" if record.get("ok") else "failed")
    if kind == "text":
        words = clip(str(text or ""), MAX_TEXT)
        return f"{'thinking' if name == 'reasoning' else 'text'}: {words}"
    if kind == "usage":
        return f"usage: {_usage(record)}"
    if kind == "end":
        error = f" ({record['error']}): {text}" if record.get("error") else ""
        return f"ended: {record.get('outcome')}{error} [{_usage(record)}]"
    return str(record.get("step") or kind)


def _usage(record: Record) -> str:
    usage = record.get("usage") or {}
    total = sum(usage.get(kind, 0) for kind in TOKEN_KINDS)
    cost = record.get("cost_usd")
    priced = f"${cost:.4f}" if isinstance(cost, int | float) else "cost unknown"
    parts = ", ".join(
        f"{usage[k]} {k.removesuffix('_tokens')}" for k in TOKEN_KINDS if usage.get(k)
    )
    return f"{total} tokens ({parts or 'none'}), {priced} so far"


def show_log(
    root: Path,
    task_id: str,
    write: Callable[[str], None],
    *,
    follow: bool = False,
    as_json: bool = False,
    poll_s: float = POLL_S,
) -> int:
    """`logs ID [--follow]`: print the task's events; with `follow`, go on printing them as
    they come until the task has its result (then its status), and return 0."""
    from orchestrator.control import find_task_file
    from orchestrator.tasks import id_problem
    from orchestrator.workdir import Workdir, read_status

    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"task id {task_id!r} {why}")
    workdir = Workdir(root)
    path = log_path(workdir.work, task_id)
    result = workdir.result_path(task_id)
    known = (
        path.exists()
        or result.exists()
        or any(find_task_file(folder, task_id) for folder in (workdir.inbox, workdir.running))
    )
    if not known:
        raise UsageError(
            f"no task {task_id!r} in {root}: no events log in work/logs/, no result in "
            "work/outbox/, no task file in the inbox (see `orchestrator status`)"
        )
    offset, shown = 0, 0
    while True:
        status = read_status(result)  # before reading: nothing logged before the end is missed
        read = _read_from(path, offset)
        if read is not None:
            data, size = read
            whole = data[: data.rfind(b"\n") + 1]
            offset = size - len(data) + len(whole)
            for record in _records(whole):
                write(json.dumps(record) if as_json else render(record))
                shown += 1
        if status is not None or not follow:
            break
        time.sleep(poll_s)
    if status is not None and not as_json:
        none = "" if shown else " (no events: its tool's output is not a stream)"
        write(f"{task_id}: {status}{none}; result in work/outbox/{result.name}")
    return 0
