"""The work directory: claiming task files, atomic result writes, archiving, recovery, lock.

    work/inbox/    new task files          work/outbox/   <id>.result.yaml, one per task
    work/running/  claimed task files      work/archive/  YYYY-MM-DD/<file> when done
    work/runs/     a private folder per tool run (its TMPDIR), removed afterwards

A claim is a rename inbox/ → running/. One daemon holds `work/.daemon.lock`, so a claim
never races another daemon. Results are written to a temp file in outbox/, fsynced and
renamed: a reader (or a crash) never sees half a result.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import WorkspaceError
from orchestrator.tasks import TASK_SUFFIXES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

RESULT_SUFFIX = ".result.yaml"


def is_task_name(name: str) -> bool:
    """Files the daemon picks up: *.yaml / *.yml, not dotfiles (writers' temp files)."""
    return not name.startswith(".") and name.endswith(TASK_SUFFIXES)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to `path` via a temp dotfile in the same folder, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


_STATUS = re.compile(rb"^status: *([a-z_]+)", re.MULTILINE)


def read_status(result_file: Path) -> str | None:
    """The `status:` of a result file (read from its head; results put it second)."""
    try:
        with result_file.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return None
    match = _STATUS.search(head)
    return match.group(1).decode() if match else None


@dataclass(frozen=True)
class Workdir:
    root: Path  # the workspace (holds config/ and work/)

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

    def ensure(self) -> None:
        for folder in (self.inbox, self.running, self.outbox, self.archive, self.runs):
            folder.mkdir(parents=True, exist_ok=True)

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
        """Move an inbox file into running/; None when it is gone (already claimed)."""
        target = self.running / path.name
        if target.exists():  # another task of the same file name is still running
            target = self.running / f"{path.stem}.{os.urandom(3).hex()}{path.suffix}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

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
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if target.exists():
            target = (
                folder / f"{path.stem}.{now.strftime('%H%M%S')}-{os.urandom(2).hex()}{path.suffix}"
            )
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)
        return target

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the daemon lock for the workspace, or raise WorkspaceError."""
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / ".daemon.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise WorkspaceError(
                    f"another daemon (pid {holder}) is already running on {self.work}; "
                    "stop it first, or use --root for another workspace"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)
