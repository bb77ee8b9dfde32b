"""The run journal, work/.journal: an append-only log of how many runs of each claimed file
were started and not seen to end (for quarantine), and which process group each tool runs
in (for the next daemon to kill, if this one dies).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.results import Result, error_info
from orchestrator.safefile import read_regular
from orchestrator.workdir import atomic_write

if TYPE_CHECKING:
    from orchestrator.config import Retries

log = logging.getLogger(__name__)

COMPACT_AFTER = 50_000  # journal entries between two rewrites
JOURNAL_MAX_BYTES = 64 * 1024 * 1024  # far more than COMPACT_AFTER entries take


def _group_belongs_to(pgid: int, run_dir: Path) -> bool:
    """Is some process of group `pgid` still a tool of ours (its TMPDIR is `run_dir`)?
    Read from /proc (Linux); without it (macOS) no, as nothing proves the group still ours:
    a dead daemon's tools live on there until they end."""
    marker = f"TMPDIR={run_dir}".encode()
    if not os.path.isdir("/proc"):
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_bytes().rsplit(b")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            if marker in Path(entry.path, "environ").read_bytes().split(b"\0"):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


class Journal:
    """An append-only log, work/.journal: how many runs of each claimed file were
    started and not seen to end (for quarantine) and which process group each tool runs
    in (for the next daemon to kill, if this one dies). One small write per entry and no
    file per task: creating and deleting files is what costs on a busy filesystem.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs: dict[str, int] = {}  # claimed file name -> runs started, not ended
        self.groups: dict[str, int] = {}  # run folder -> process group id
        self._fd: int | None = None
        self._appended = 0

    def load(self) -> None:
        try:
            data = read_regular(self.path, JOURNAL_MAX_BYTES)
        except FileNotFoundError:
            return
        except OSError as exc:  # not a regular file, or absurdly large: start afresh
            log.warning("ignoring the run journal %s: %s", self.path, exc)
            return
        for line in data.splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self._apply(json.loads(line))

    def _apply(self, entry: dict[str, Any]) -> None:
        if "start" in entry:
            self.runs[entry["start"]] = self.runs.get(entry["start"], 0) + 1
        elif "ran" in entry:
            if (left := self.runs.pop(entry["ran"], 0) - 1) > 0:
                self.runs[entry["ran"]] = left
        elif "done" in entry:
            self.runs.pop(entry["done"], None)
        elif "group" in entry:
            self.groups[entry["dir"]] = int(entry["group"])

    def open(self, claimed: set[str]) -> None:
        """Keep the counts of files still claimed (the groups were dealt with), then
        append from here on. A journal that cannot be written (a full disk) is kept in
        memory only: the daemon starts anyway."""
        self.runs = {name: n for name, n in self.runs.items() if name in claimed}
        self.groups = {}
        try:
            self._rewrite()
        except OSError as exc:
            log.warning("cannot write the run journal %s: %s; keeping it in memory", self.path, exc)
            with contextlib.suppress(OSError):
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)

    def _rewrite(self) -> None:
        entries: list[dict[str, Any]] = [
            {"start": name} for name, n in self.runs.items() for _ in range(n)
        ]
        entries += [{"group": pgid, "dir": d} for d, pgid in self.groups.items()]
        self.close()
        atomic_write(self.path, b"".join(_line(e) for e in entries), durable=False)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._appended = 0

    def _append(self, *entries: dict[str, Any]) -> None:
        """Apply entries and append them, in one write."""
        if not entries:
            return
        for entry in entries:
            self._apply(entry)
        if self._fd is None:
            return
        try:
            os.write(self._fd, b"".join(_line(entry) for entry in entries))
            self._appended += len(entries)
            if self._appended > COMPACT_AFTER:  # a long-running daemon: keep it small
                self._rewrite()
        except OSError as exc:  # e.g. the disk is full: the counts live on in memory
            log.warning("cannot write the run journal %s: %s", self.path, exc)
            if self._fd is None:  # the compaction failed half-way: append to what is there
                with contextlib.suppress(OSError):
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def start(self, name: str) -> int:
        """Count one more run of a claimed file (before it runs); return the count."""
        self._append({"start": name})
        return self.runs[name]

    def ran(self, name: str) -> None:
        """A run has ended with this daemon alive: it no longer counts against the file,
        even if the daemon dies before the result is written."""
        self._append({"ran": name})

    def done(self, *names: str) -> None:
        """Claimed files that have their result (their run counts are forgotten)."""
        self._append(*({"done": name} for name in names))

    def group(self, pgid: int, run_dir: Path) -> None:
        self._append({"group": pgid, "dir": str(run_dir)})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry).encode() + b"\n"


def kill_groups(journal: Journal) -> int:
    """Kill the tool process groups a dead daemon left running (those still carrying the
    run folder the journal names as their TMPDIR)."""
    killed = 0
    for run_dir, pgid in journal.groups.items():
        if _group_belongs_to(pgid, Path(run_dir)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                log.warning("killed process group %d left by a previous daemon", pgid)
                killed += 1
    return killed


def quarantined(task_id: str, agent: str, runs: int, retries: Retries) -> Result | None:
    """The failed result of a task started more than `quarantine_after` times without
    finishing (each start killed the daemon, maybe): it is not run again."""
    limit = retries.quarantine_after
    if runs <= limit:
        return None
    log.error("quarantined %s: its run was interrupted %d times", task_id, runs - 1)
    return Result(
        id=task_id,
        status="failed",
        agent=agent,
        error=error_info(
            "quarantined",
            f"{task_id} was started {runs - 1} times without finishing "
            f"(retries.quarantine_after is {limit}): it may crash the daemon",
            f"look at the daemon's log for this task, fix the cause, then `orchestrator retry "
            f"{task_id}`",
        ),
    )
