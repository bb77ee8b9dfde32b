"""Usage windows, shared by every process on the workspace: a limit that says when it resets
(a plan's "resets 4:20am", a quota's retry delay, a retry-after) closes that tool:model (or,
for an account's window, every model of the tool: `tool:*`) until then. Attempts on a
closed window are passed over to the fallback; a task left with nothing to try waits
(`waiting_quota`) and starts again when the first of its windows opens.

The windows live in work/windows.json: a process that closes one merges it into the file
under a lock, and every process reads the file again when it changed (one stat per look),
so that the daemon, `exec` and `status` agree without talking to each other.
"""

from __future__ import annotations

import contextlib
import fcntl  # flock(2), on Linux and macOS; native Windows has none (docs/platforms.md)
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.safefile import read_regular

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "windows.json"
ALL_MODELS = "*"  # the model part of an account's window
MAX_STATE_BYTES = 1 << 20


@dataclass(frozen=True)
class Window:
    """One closed window: `key` is tool:model or tool:*; times are epoch seconds."""

    key: str
    until: float
    since: float
    why: str  # what the tool said, shortened


def window_key(tool: str, model: str | None) -> str:
    return f"{tool}:{model or ALL_MODELS}"


class Windows:
    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.windows: dict[str, Window] = {}
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read

    def closed(self, tool: str, model: str | None) -> Window | None:
        """The window that keeps (tool, model) closed now, the one that opens last; None
        when it is open."""
        self._refresh()
        now = self.clock()
        found = [
            w
            for key in {window_key(tool, model), window_key(tool, None)}
            if (w := self.windows.get(key)) is not None and w.until > now
        ]
        return max(found, key=lambda w: w.until) if found else None

    def close(
        self, tool: str, model: str | None, until: float, why: str, *, whole_tool: bool = False
    ) -> Window:
        """Close (tool, model), or every model of the tool, until `until`; a window known to
        stay closed longer is kept."""
        key = window_key(tool, None if whole_tool else model)
        window = Window(key=key, until=until, since=self.clock(), why=why)
        with self._locked():
            self._refresh(force=True)
            known = self.windows.get(key)
            if known is None or known.until < until:
                self.windows[key] = window
            self._save()
        log.warning(
            "%s: usage window closed until %s (%s)",
            key, time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(until)), why,
        )  # fmt: skip
        return self.windows[key]

    def open_windows(self) -> list[Window]:
        """The windows closed now, soonest to open first (for `status`)."""
        self._refresh()
        now = self.clock()
        return sorted((w for w in self.windows.values() if w.until > now), key=lambda w: w.until)

    def _refresh(self, *, force: bool = False) -> None:
        """Read the file again when another process (or this one) changed it."""
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
        except OSError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen and not force:
            return
        self._seen = seen
        self.windows.update(read_windows(self.path))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        try:
            fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # no lock: a window another process closed may be lost
            log.warning("cannot lock %s: %s", self.path, exc)
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self) -> None:
        if self.path is None:
            return
        from orchestrator.workdir import atomic_write

        now = self.clock()
        live = {k: asdict(w) for k, w in self.windows.items() if w.until > now}
        try:
            atomic_write(self.path, json.dumps(live, sort_keys=True).encode(), durable=False)
        except OSError as exc:  # this process still knows; others learn it the hard way
            log.warning("cannot write %s: %s", self.path, exc)


def read_windows(path: Path) -> dict[str, Window]:
    """The windows a state file holds; what cannot be read is left out."""
    try:
        data: Any = json.loads(read_regular(path, MAX_STATE_BYTES))
    except (OSError, ValueError):
        return {}
    found: dict[str, Window] = {}
    for key, entry in (data if isinstance(data, dict) else {}).items():
        try:
            window = Window(
                key=str(key),
                until=float(entry["until"]),
                since=float(entry["since"]),
                why=str(entry["why"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(window.until) and math.isfinite(window.since):
            found[window.key] = window
    return found
