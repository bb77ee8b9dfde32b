"""Live updates for /api/events (Server-Sent Events): the workspace is looked at every
`poll_s` seconds (status's queries and the latest tasks: a few index reads), and what
changed since the last look is sent as events:

    task      {"id", "state"}          a task appeared or changed state
    progress  a running task's status entry (step, tokens, cost so far, ...) that changed
    status    the whole `status --json` document, when anything changed (and at least
              every `refresh_s` seconds, so elapsed times move on)

`changes` is pure; `event_stream` is the loop around it."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orchestrator.errors import TelemetryUnusable
from orchestrator.reports.status import status_data
from orchestrator.web.queries import recent_tasks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

MOVING = ("elapsed_s", "idle_s")  # change on every look: not a change worth an event
REFRESH_S = 5.0


def snapshot(root: Path) -> dict[str, Any]:
    try:
        recent = recent_tasks(root)
    except TelemetryUnusable:  # status_data says so in its telemetry block
        recent = []
    return {"status": status_data(root), "recent": recent}


def _states(snap: dict[str, Any]) -> dict[str, str]:
    status = snap["status"]
    states = {t["id"]: str(t["state"]) for t in snap["recent"]}
    states.update((t["id"], "running") for t in status["running"])
    states.update((t["id"], "waiting") for t in status["waiting"])
    states.update((t["id"], "scheduled") for t in status["scheduled"])
    states.update((t["id"], "waiting_quota") for t in status.get("waiting_quota", []))
    return states


def _steady(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in MOVING}


def _steady_status(status: dict[str, Any]) -> dict[str, Any]:
    return {**status, "running": [_steady(t) for t in status["running"]]}


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, Any]]:
    """The events that tell a client who saw `before` what `after` is."""
    if before is None:
        return [("status", after["status"])]
    events: list[tuple[str, Any]] = []
    old = _states(before)
    for task_id, state in _states(after).items():
        if old.get(task_id) != state:
            events.append(("task", {"id": task_id, "state": state}))
    seen = {t["id"]: _steady(t) for t in before["status"]["running"]}
    events += [
        ("progress", task)
        for task in after["status"]["running"]
        if task["id"] in seen and seen[task["id"]] != _steady(task)
    ]
    if events or _steady_status(before["status"]) != _steady_status(after["status"]):
        events.append(("status", after["status"]))
    return events


def format_event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def event_stream(
    root: Path, poll_s: float, refresh_s: float = REFRESH_S
) -> AsyncIterator[str]:
    """Events until the client goes (the server cancels the stream then)."""
    yield "retry: 1000\n\n"  # the browser reconnects after a second
    before: dict[str, Any] | None = None
    sent = time.monotonic()
    while True:
        started = time.monotonic()
        after = await anyio.to_thread.run_sync(snapshot, root)
        took = time.monotonic() - started
        events = changes(before, after)
        if not events and time.monotonic() - sent >= refresh_s:
            events = [("status", after["status"])]
        for kind, data in events:
            yield format_event(kind, data)
        if events:
            sent = time.monotonic()
        before = after
        # a slow look (a database the reads do not suit) is not repeated back to back
        await anyio.sleep(max(poll_s, 2 * took))
