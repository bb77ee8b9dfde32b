"""The work directory: claiming task files, atomic result writes, archiving, recovery, lock.

    work/inbox/    new task files          work/outbox/   <id>.result.yaml, one per task
    work/running/  claimed task files      work/archive/  YYYY-MM-DD/<file> when done
    work/runs/     a private folder per tool run (its TMPDIR), removed afterwards

A claim is a rename inbox/ → running/. One daemon holds `work/.daemon.lock`, so a claim
never races another daemon. Results are written to a temp file in outbox/, fsynced and
renamed: a reader (or a crash) never sees half a result.

Linux (WSL 2 too) and macOS alike: atomic renames, flock(2) locks. macOS's fsync leaves
data in the drive's cache (a system crash is survived, a power cut maybe not); its fcntl
has no read leases, which on Linux reveal a writer still at a task file (_lease). Native
Windows has neither flock nor fcntl: the CLI says to use WSL (docs/platforms.md).
"""

from __future__ import annotations

import contextlib
import fcntl  # flock(2), on Linux and macOS; native Windows has none (docs/platforms.md)
import logging
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import TaskRejected, WorkspaceError
from orchestrator.reaper import owner_alive
from orchestrator.safefile import fit_name, kind_of, read_fd, read_head, read_regular
from orchestrator.tasks import MAX_TASK_BYTES, TASK_SUFFIXES, load_mapping

log = logging.getLogger(__name__)


class StillWriting(Exception):
    """A task file that some process still has open for writing: try again shortly."""


def read_task_file(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of a claimed task file (and its lstat), refusing what is not a plain,
    finished file.

    A read lease (Linux) proves no process has the file open for writing and keeps writers
    out while we read; a writer that still holds it raises StillWriting. Where leases are
    not available (macOS, another owner, network filesystems) the file is read as it is.
    """
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise TaskRejected(
            "symlink", f"{path.name} is a symbolic link", "put the task file itself in the inbox"
        )
    if not stat.S_ISREG(info.st_mode):
        raise TaskRejected(
            "not_a_regular_file",
            f"{path.name} is not a regular file (a fifo, socket or device)",
            "write task files as regular files",
        )
    if info.st_size > MAX_TASK_BYTES:
        raise TaskRejected(
            "too_large",
            f"{path.name} is {info.st_size} bytes; task files may be at most "
            f"{MAX_TASK_BYTES} bytes",
            "put long material in a file and name it in prompt_file or context_files",
        )
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        leased = _lease(fd)
        try:
            return read_fd(fd, MAX_TASK_BYTES + 1), info
        finally:
            if leased:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)  # leased: Linux
    finally:
        os.close(fd)


def _lease(fd: int) -> bool:
    """A read lease on the open task file (Linux): BlockingIOError means a writer has the
    file open still. False where there is none to take (macOS, NFS, not our file)."""
    setlease = getattr(fcntl, "F_SETLEASE", None)  # Linux's; macOS's fcntl lacks it
    if setlease is None:
        return False
    try:
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except BlockingIOError:
        raise StillWriting from None
    except OSError:  # not our file, or a filesystem without leases
        return False
    return True


if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

RESULT_SUFFIX = ".result.yaml"
RESULT_MAX_BYTES = 4 * 1024 * 1024  # a result file (a large output has its own file)
PENDING_SUFFIX = ".retry-pending"  # a retry's task file until its result has moved away


def is_task_name(name: str) -> bool:
    """Files the daemon picks up: *.yaml / *.yml, not dotfiles (writers' temp files)."""
    return not name.startswith(".") and name.endswith(TASK_SUFFIXES)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, *, durable: bool = True, durable_name: bool = False
) -> None:
    """Write `data` to `path` via a temp dotfile in the same folder, fsync, rename.

    Readers (and a daemon killed at any moment) see the old file or the whole new one.
    `durable` fsyncs the contents before the rename, so a power loss cannot leave an empty
    file under the name; `durable_name` also fsyncs the folder, so the rename itself
    survives a power loss (without it, a task may run again after one)."""
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:  # a full disk: leave no half-written temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable_name:
        _fsync_dir(path.parent)


GROUP_MAX = 64  # files open at once in a group write


def atomic_write_many(files: Sequence[tuple[Path, bytes]]) -> list[OSError | None]:
    """`atomic_write` (durable) for many files, as a group commit: all are written and
    their write-back started before the first fsync, so (on a journaling filesystem) one
    commit serves them all instead of one per file. Returns each file's error, or None."""
    errors: list[OSError | None] = [None] * len(files)
    for start in range(0, len(files), GROUP_MAX):
        opened: list[tuple[int, int, Path]] = []
        for i in range(start, min(start + GROUP_MAX, len(files))):
            path, data = files[i]
            tmp = _temp_name(path)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except OSError as exc:
                errors[i] = exc
                continue
            opened.append((i, fd, tmp))
            try:
                _write_all(fd, data)
                if _START_WRITE_BACK is not None:
                    os.posix_fadvise(fd, 0, 0, _START_WRITE_BACK)
            except OSError as exc:
                errors[i] = exc
        for i, fd, tmp in opened:
            try:
                if errors[i] is None:
                    os.fsync(fd)
            except OSError as exc:
                errors[i] = exc
            finally:
                os.close(fd)
            try:
                if errors[i] is None:
                    os.replace(tmp, files[i][0])
            except OSError as exc:
                errors[i] = exc
            if errors[i] is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return errors


# Linux starts the write-back of a file's dirty pages on this advice (and keeps them).
_START_WRITE_BACK = getattr(os, "POSIX_FADV_DONTNEED", None)


def _temp_name(path: Path) -> Path:
    return path.with_name(fit_name(f".{path.name}", f".{os.getpid()}.tmp"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_STATUS = re.compile(rb"^status: *([a-z_]+)", re.MULTILINE)


def read_status(result_file: Path) -> str | None:
    """The `status:` of a result file (read from its head; results put it second)."""
    head = read_head(result_file, 4096)  # never blocks on a FIFO planted in its place
    if head is None:
        return None
    match = _STATUS.search(head)
    return match.group(1).decode() if match else None


@dataclass(frozen=True)
class Workdir:
    root: Path  # the workspace (holds config/ and work/)
    _made: set[Path] = field(default_factory=set, compare=False, repr=False)  # archive days

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def inbox(self) -> Path:
        return self.work / "inbox"

    @property
    def running(self) -> Path:
        return self.work / "running"

    @property
    def outbox(self) -> Path:
        return self.work / "outbox"

    @property
    def archive(self) -> Path:
        return self.work / "archive"

    @property
    def runs(self) -> Path:
        return self.work / "runs"

    @property
    def control(self) -> Path:
        return self.work / "control"

    def folders(self) -> tuple[Path, ...]:
        return (self.inbox, self.running, self.outbox, self.archive, self.runs, self.control)

    def ensure(self) -> None:
        """Create the work folders, refusing any that is not a real folder."""
        for folder in self.folders():
            folder.mkdir(parents=True, exist_ok=True)
        self.check()

    def check(self) -> None:
        """Refuse a work folder replaced by a symlink (or a file): the daemon moves, writes
        and deletes inside these, and must never do so in a folder elsewhere."""
        for folder in (*self.folders(), self.outbox / "history"):
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(mode):
                target = f" (to {os.readlink(folder)})" if stat.S_ISLNK(mode) else ""
                raise WorkspaceError(
                    f"{folder} is {kind_of(mode)}{target}, not a folder; the orchestrator "
                    "never follows links out of its work folders: replace it with a real "
                    f"folder (mkdir {folder})"
                )

    def control_requests(self) -> list[Path]:
        """Pending `cancel` requests (control/<id>.cancel)."""
        try:
            return sorted(self.control.glob("*.cancel"))
        except FileNotFoundError:
            return []

    def pending(self) -> list[Path]:
        """Task files in the inbox, oldest first."""
        entries = []
        with os.scandir(self.inbox) as it:
            for entry in it:
                if is_task_name(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path))
        entries.sort()
        return [Path(p) for _, p in entries]

    def in_running(self) -> list[Path]:
        return sorted(p for p in self.running.iterdir() if is_task_name(p.name))

    def claim(self, path: Path) -> Path | None:
        """Move an inbox file into running/; None when it is gone (already claimed) or
        cannot be moved (then it is looked at again at the next scan)."""
        target = self.running / path.name
        if os.path.lexists(target):  # another task of the same file name is still running
            target = self.running / fit_name(path.stem, f".{os.urandom(3).hex()}{path.suffix}")
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot claim %s: %s", path.name, exc)
            return None
        return target

    def clean_up(self) -> None:
        """At start: half-written temp files left by a killed writer; retries cut short."""
        with self.commands_lock():
            self.finish_retries()
        for folder in (self.outbox, self.running, self.inbox, self.work):
            for leftover in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if folder != self.inbox or leftover.lstat().st_mtime < time.time() - 60:
                        leftover.unlink()

    def publish_pending(self, pending: Path, names: Sequence[str]) -> Path:
        """Give a pending task file the first of `names` free in the inbox (linked, so an
        agent's file of the same name is never replaced)."""
        for name in (*names, f"{Path(names[0]).stem}.{os.urandom(3).hex()}.yaml"):
            target = self.inbox / name
            try:
                os.link(pending, target)
            except FileExistsError:
                continue
            pending.unlink()
            return target
        raise FileExistsError(f"no free name in {self.inbox} for {pending.name}")

    @contextlib.contextmanager
    def commands_lock(self) -> Iterator[None]:
        """`retry`, a daemon-less `cancel` and the completion of retries at start take
        turns on a workspace (work/.commands.lock): none moves files another is moving."""
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / ".commands.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise WorkspaceError(f"cannot open {path}: {exc.strerror}; remove it") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def finish_retries(self) -> None:
        """Complete a `retry` cut short (by a crash) after its result moved to history/:
        its pending task file joins the inbox. One cut short before that is dropped, and
        one already linked into the inbox only loses its pending name.
        The caller holds `commands_lock`."""
        for pending in self.inbox.glob(f".*{PENDING_SUFFIX}"):
            try:
                if os.lstat(pending).st_nlink > 1:  # published; the crash came before unlink
                    pending.unlink()
                    continue
                raw = load_mapping(read_regular(pending, MAX_TASK_BYTES), pending.name)
                if self.result_path(str(raw["id"])).exists():
                    pending.unlink()
                else:
                    name = pending.name[1:].removesuffix(PENDING_SUFFIX)
                    self.publish_pending(pending, (name,))
                    log.warning("completed a retry cut short: %s is in the inbox", name)
            except (OSError, TaskRejected, KeyError) as exc:
                log.warning("cannot complete the retry %s: %s", pending.name, exc)

    def empty_runs(self) -> None:
        """At start: the run folders a dead daemon left (not those of a live `exec`)."""
        for leftover in self.runs.iterdir() if self.runs.is_dir() else []:
            if not owner_alive(leftover.name, os.getpid()):
                shutil.rmtree(leftover, ignore_errors=True)

    def unclaim(self, path: Path) -> None:
        """Put a claimed file back into the inbox (a crash-recovered or postponed task)."""
        os.replace(path, self.inbox / path.name)

    def result_path(self, task_id: str) -> Path:
        return self.outbox / f"{task_id}{RESULT_SUFFIX}"

    def write_result(self, task_id: str, text: str) -> Path:
        path = self.result_path(task_id)
        atomic_write(path, text.encode("utf-8"))
        return path

    def archive_file(self, path: Path, now: datetime) -> Path:
        folder = self.archive / now.strftime("%Y-%m-%d")
        if folder not in self._made:
            if os.path.islink(folder):  # planted: the archive is never a way out
                log.warning("removing the symbolic link %s from the archive", folder)
                folder.unlink()
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        target = folder / path.name
        if os.path.lexists(target):
            unique = f".{now.strftime('%H%M%S')}-{os.urandom(2).hex()}{path.suffix}"
            target = folder / fit_name(path.stem, unique)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            if not os.path.lexists(path):  # already moved
                return target
            folder.mkdir(parents=True, exist_ok=True)  # the day's folder was removed
            os.replace(path, target)
        return target

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the daemon lock for the workspace, or raise WorkspaceError."""
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / ".daemon.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot open the daemon lock {path}: {exc.strerror}; "
                "remove it if it is not a plain file"
            ) from None
        try:
            if not stat.S_ISREG(mode := os.fstat(fd).st_mode):
                raise WorkspaceError(
                    f"the daemon lock {path} is {kind_of(mode)}; remove it and start again"
                )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise WorkspaceError(
                    f"another daemon (pid {holder}) is already running on {self.work}; "
                    "stop it first, or use --root for another workspace"
                ) from None
            try:  # the pid is for the message above; a full disk must not stop the start
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError as exc:
                log.warning("cannot write the pid into %s: %s", path, exc)
            yield
        finally:
            os.close(fd)
