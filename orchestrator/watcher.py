"""Inbox events → task file paths (and `work/control/` → cancel requests).

watchfiles' Rust watcher on `inbox/` (not recursive) with a short debounce, a full scan as
soon as the watcher is live (files written before start), and a rescan every few seconds
so a missed event never strands a file. Polling mode for network filesystems.

The watcher is inotify on Linux and FSEvents on macOS (events arrive batched, a little
later; the scans are the same). Under WSL 2, inotify sees what Linux processes write, but
not what Windows programs write into a folder on the Windows drive (/mnt/c): the rescan
finds those within DEFAULT_RESCAN_S, or --poll (ORCHESTRATOR_FORCE_POLLING=1) polls
every DEFAULT_POLL_DELAY_MS. Native Windows runs no daemon (docs/platforms.md).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

from orchestrator.workdir import Workdir, is_task_name

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectSendStream

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_MS = 50  # longest wait to batch a burst of events
DEFAULT_STEP_MS = 2  # a batch ends after this long without a new event
DEFAULT_RESCAN_S = 3.0
DEFAULT_POLL_DELAY_MS = 100


def polling_from_env() -> bool:
    return os.environ.get("ORCHESTRATOR_FORCE_POLLING", "").lower() in ("1", "true", "yes")


async def _stop_when_cancelled(stop: anyio.Event) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        stop.set()


async def _watch_once(
    notify: RustNotify, debounce_ms: int, step_ms: int, timeout_ms: int
) -> set[tuple[int, str]] | str:
    """One blocking watch call in a thread; cancellation stops it within `step_ms`."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_when_cancelled, stop)
        try:
            raw: set[tuple[int, str]] | str = await anyio.to_thread.run_sync(
                notify.watch, debounce_ms, step_ms, timeout_ms, stop
            )
        except WatchfilesRustInternalError as exc:  # e.g. a file name that is not UTF-8
            log.debug("watcher: %s; scanning instead", exc)
            raw = "error"
        tg.cancel_scope.cancel()
    return raw


async def watch_inbox(
    workdir: Workdir,
    send: MemoryObjectSendStream[Path],
    *,
    force_polling: bool = False,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    step_ms: int = DEFAULT_STEP_MS,
    rescan_s: float = DEFAULT_RESCAN_S,
    poll_delay_ms: int = DEFAULT_POLL_DELAY_MS,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Send every task file that appears in the inbox; `started` once the watch is live."""
    started = False
    while True:
        workdir.inbox.mkdir(parents=True, exist_ok=True)
        workdir.control.mkdir(parents=True, exist_ok=True)
        folders = [str(workdir.inbox), str(workdir.control)]
        with RustNotify(folders, False, force_polling, poll_delay_ms, False, True) as notify:
            log.info("watching %s%s", workdir.inbox, " (polling)" if force_polling else "")
            if not started:
                task_status.started()
                started = True
            await _watch_loop(notify, workdir, send, debounce_ms, step_ms, rescan_s)
        log.warning("the inbox %s went away; watching it again", workdir.inbox)


async def _watch_loop(
    notify: RustNotify,
    workdir: Workdir,
    send: MemoryObjectSendStream[Path],
    debounce_ms: int,
    step_ms: int,
    rescan_s: float,
) -> None:
    """Until the inbox folder itself disappears."""
    next_scan = 0.0
    while True:
        now = time.monotonic()
        if now >= next_scan:
            if not workdir.inbox.is_dir():
                return
            for path in [*workdir.control_requests(), *workdir.pending()]:
                await send.send(path)
            next_scan = now + rescan_s
        timeout_ms = max(1, int((next_scan - time.monotonic()) * 1000))
        raw = await _watch_once(notify, debounce_ms, step_ms, timeout_ms)
        if raw == "error":
            next_scan = 0.0  # the scan sees what the event could not tell
            continue
        if isinstance(raw, str):
            continue  # "timeout" (rescan next) or "signal"
        for _change, name in sorted(raw, key=lambda c: c[1]):
            path = Path(name)
            if path.parent == workdir.inbox and is_task_name(path.name):
                await send.send(path)
            elif path.parent == workdir.control and path.name.endswith(".cancel"):
                if path.exists():
                    await send.send(path)
            elif path == workdir.inbox:
                next_scan = 0.0  # the folder itself changed (deleted/re-created): rescan now
