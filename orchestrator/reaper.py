"""Tool processes that escape their process group: adopting, attributing, killing, reaping.

A tool may leave a descendant behind in a session of its own (a double fork, `setsid`),
out of reach of the kill of its process group. The daemon (and `exec`) becomes a child
subreaper, so such an orphan becomes its child instead of init's; when a run ends, its
children that are not live tools are looked at: one whose TMPDIR is the folder of a run
still going is left alone, any other is killed with its whole subtree and reaped. Only
our own children lists are read per run (no scan of /proc); the scan of /proc happens once,
at start, for the survivors of a daemon that was killed.

All of it is Linux's (WSL 2 included): prctl and /proc. On macOS there is neither, so
nothing is adopted or swept (an escaped orphan goes to launchd and lives on), no stray is
found at start, and `owner_alive` asks with signal 0 instead of reading /proc
(docs/platforms.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from orchestrator.safefile import read_fd

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
MAX_ROUNDS = 200  # of a sweep; the killed get ROUND_PAUSE_S between two rounds to die
ROUND_PAUSE_S = 0.005
LIST_MAX_BYTES = 1 << 20  # a children list
ENVIRON_MAX_BYTES = 4 << 20  # of an environment: TMPDIR is looked for in this much


@dataclass
class LiveTools:
    """The tools running now, which a sweep must not touch: their leaders (the pids each
    run reaps itself), the TMPDIRs of their runs, and how many are being started (a
    child that may not be registered yet: sweeps wait for a later run's end)."""

    leaders: set[int] = field(default_factory=set)
    run_dirs: Counter[str] = field(default_factory=Counter)
    starting: int = 0


_adopting = False  # are orphans re-parented to us (so that sweeps are needed)?


def adopt_orphans() -> bool:
    """Make this process a child subreaper (Linux 3.4+): a descendant whose parent dies
    becomes our child, not init's. False (and a debug line) where that is not available."""
    global _adopting
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
    except (OSError, AttributeError) as exc:  # not Linux, or refused
        log.debug("not a child subreaper (%s): orphaned tool processes go to init", exc)
        return False
    _adopting = True
    return True


async def sweep(live: LiveTools) -> None:
    """Kill and reap our children that are neither live tools nor of a run still going,
    round after round (a killed process's children become ours in turn) until none is
    left; a run that is starting postpones the sweep to the next run's end."""
    if not _adopting:
        return
    for _ in range(MAX_ROUNDS):
        if live.starting:
            return
        found, dying = _sweep_round(live)
        if not found:
            return
        if dying:
            await anyio.sleep(ROUND_PAUSE_S)
    log.warning("orphaned tool processes did not die after SIGKILL; trying again later")


def _sweep_round(live: LiveTools) -> tuple[int, int]:
    """One look at our children: (orphans found, orphans killed but not yet reaped)."""
    found = dying = 0
    for pid in _our_children():
        if pid in live.leaders:
            continue
        run_dir = _tmpdir_of(pid)
        if _of_a_live_run(run_dir, live):
            continue  # a helper of a run still going: its run's end sweeps it
        if run_dir is None and live.run_dirs and not _is_zombie(pid):
            continue  # no telling whose (its environment is gone): when no run is live
        found += 1
        tree = _subtree(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:  # not ours to kill (setuid): do not wait for it
            log.warning("cannot kill orphaned process %d (TMPDIR %s)", pid, run_dir)
            found -= 1
            continue
        except ProcessLookupError:
            pass
        for member in tree[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGKILL)
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped already
            continue
        if reaped:
            log.info(
                "reaped orphaned tool process %d (TMPDIR %s, exit %d)",
                pid,
                run_dir,
                os.waitstatus_to_exitcode(status),
            )
        else:
            dying += 1
    return found, dying


def _of_a_live_run(tmpdir: str | None, live: LiveTools) -> bool:
    """Is `tmpdir` the folder of a run still going, or inside one?"""
    if tmpdir is None:
        return False
    return any(tmpdir == d or tmpdir.startswith(d + os.sep) for d in live.run_dirs)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read(4096).rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # gone already


def _our_children() -> list[int]:
    """Our children that may be orphans: an orphan is handed to the first live thread of
    its subreaper, our main thread, so its list is the only one read (our other threads
    start no process)."""
    me = os.getpid()
    try:
        return _read_pids(f"/proc/{me}/task/{me}/children")
    except FileNotFoundError:  # a kernel without these lists
        return _children_by_scan(me)
    except OSError:
        return []


def _children_of(pid: int) -> list[int]:
    """The children of `pid`, from its threads' `children` lists."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        with contextlib.suppress(OSError):
            found += _read_pids(f"/proc/{pid}/task/{tid}/children")
    return found


def _read_pids(path: str) -> list[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return [int(pid) for pid in read_fd(fd, LIST_MAX_BYTES).split()]
    finally:
        os.close(fd)


def _children_by_scan(pid: int) -> list[int]:
    """The same, by the parent field of every process (kernels without CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def _subtree(pid: int) -> list[int]:
    """`pid` and all its descendants, parents before children."""
    tree = [pid]
    walked = 0
    while walked < len(tree):
        tree += _children_of(tree[walked])
        walked += 1
    return tree


def _tmpdir_of(pid: int) -> str | None:
    """The TMPDIR in the environment of `pid` (None: unreadable, a zombie, or none)."""
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY)
    except OSError:
        return None
    try:  # a hostile tool may have a huge environment: read a bounded part
        environ = read_fd(fd, ENVIRON_MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    for entry in environ.split(b"\0"):
        if entry.startswith(b"TMPDIR="):
            return os.fsdecode(entry[7:])
    return None


def kill_strays(runs: Path) -> int:
    """At start: kill every process whose TMPDIR is a run folder in `runs` made by a
    daemon (or `exec`) that is no longer alive: the survivors of a daemon killed with
    SIGKILL, out of reach of its journal's process groups. Returns how many."""
    killed = 0
    me = os.getpid()
    if not os.path.isdir("/proc"):  # macOS: no way to find them
        return killed
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        run_dir = _tmpdir_of(int(entry.name))
        run = _run_folder(run_dir, runs)
        if run is None or owner_alive(run, me):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(entry.name), signal.SIGKILL)
            log.warning("killed process %s left by an earlier run (TMPDIR %s)", entry.name, run_dir)
            killed += 1
    return killed


def _run_folder(tmpdir: str | None, runs: Path) -> str | None:
    """The name of the run folder in `runs` that `tmpdir` is, or lies in; None if none."""
    if tmpdir is None:
        return None
    prefix = str(runs) + os.sep
    if not tmpdir.startswith(prefix):
        return None
    return tmpdir[len(prefix) :].partition(os.sep)[0] or None


PROC = "/proc"  # Linux (WSL 2 too); macOS has none


def pid_alive(pid: int) -> bool:
    """Is there a process `pid`? Signal 0 asks without sending anything: the portable
    answer for where there is no /proc (macOS), though a zombie counts as alive and a
    reused pid as its old owner."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        return True
    return True


def owner_alive(run_name: str, me: int) -> bool:
    """Is the process that made run folder `<pid>-<n>` (another daemon or an `exec`)
    still alive? Its tools are its to stop. Linux reads /proc (a zombie is dead); macOS,
    without it, asks with signal 0."""
    owner = run_name.partition("-")[0]
    if not owner.isdigit() or int(owner) == me:
        return False
    try:
        with open(f"{PROC}/{owner}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return not os.path.isdir(PROC) and pid_alive(int(owner))
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")  # a zombie is dead
