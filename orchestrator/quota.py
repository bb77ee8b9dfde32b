"""A task and the usage windows: which failure closes a window and until when, the result
of a task that has to wait for one (`waiting_quota`), and when a wait has gone on too long.
Shared by the chain walk (execute), the daemon (which parks the task) and `exec` (which
waits in place)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.adapters.base import ErrorKind
from orchestrator.results import error_info

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator.adapters.base import ToolFailure
    from orchestrator.config import UsageWindows
    from orchestrator.results import Result
    from orchestrator.windows import Window

WAITING = "waiting_quota"  # a task's state while every tool it may use is out of quota
WHY_CHARS = 160  # of what the tool said, in a line about its window
SKIPPED = "usage_window"  # a skipped attempt's kind: its tool:model's window is closed
WAIT_HINT = (
    "it starts again by itself when the window opens; add a fallback to its chain to run it "
    "sooner, or `orchestrator cancel` it"
)


def window_end(failure: ToolFailure, settings: UsageWindows, now: float) -> float | None:
    """When the window this failure reports opens again; None when it reports none (a rate
    limit with no wait named, or another failure)."""
    if failure.kind is ErrorKind.USAGE_LIMIT:
        if failure.resets_at is not None and failure.resets_at > now:
            return failure.resets_at
        return now + (failure.retry_after_s or settings.unknown_reset)
    if failure.kind is ErrorKind.RATE_LIMIT and failure.retry_after_s:
        return now + failure.retry_after_s
    return None


def local_time(epoch: float) -> str:
    """A moment as people here read it: local time with its zone."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def described(window: Window) -> str:
    why = window.why if len(window.why) <= WHY_CHARS else window.why[: WHY_CHARS - 1] + "…"
    return f"{window.key} until {local_time(window.until)} ({why})"


def wait_for(result: Result, windows: Iterable[Window]) -> str:
    """Make `result` say the task waits for the first of `windows` to open; the message."""
    closed = sorted(windows, key=lambda w: w.until)
    result.status = WAITING
    result.resume_at = iso_utc(closed[0].until)
    message = "out of quota: " + "; ".join(map(described, closed))
    result.error = error_info(ErrorKind.USAGE_LIMIT, message, WAIT_HINT)
    result.error["windows"] = ", ".join(w.key for w in closed)
    return message


def resume_epoch(result: Result) -> float:
    """When a waiting task starts again (now, if the result does not say)."""
    if result.resume_at is None:
        return time.time()
    return datetime.fromisoformat(result.resume_at.replace("Z", "+00:00")).timestamp()


def give_up(result: Result, waiting_since: float, settings: UsageWindows) -> bool:
    """A task that would wait past `max_wait` in all fails instead, saying so; True then."""
    resume = resume_epoch(result)
    if resume - waiting_since <= settings.max_wait:
        return False
    message = (result.error or {}).get("message", "its tools are out of quota")
    result.status = "failed"
    result.resume_at = None
    result.error = error_info(
        ErrorKind.USAGE_LIMIT,
        f"{message}; it would wait until {local_time(resume)}, past "
        f"policies usage_windows.max_wait ({settings.max_wait:g}s from its first wait)",
        "raise usage_windows.max_wait in config/policies.yaml, or add a fallback to the "
        "chain, then `orchestrator retry` the task",
    )
    return True


def wait_note(since: float, until: float, why: str) -> str:
    """The line a finished result keeps for each wait."""
    return f"waited for a usage window from {local_time(since)} to {local_time(until)}: {why}"
