"""`cancel ID` and `retry ID`.

Cancel: with no daemon running, the task file is taken from the inbox (or from running/,
left by a stopped daemon) and given a `cancelled` result here. With a daemon running, a
request file `work/control/<id>.cancel` is dropped for it (it kills a running task's
process group) and the command waits for the result.

Retry: the finished task's result moves to `work/outbox/history/`, and its task file comes
back from the archive into the inbox with `retry: N`: a new run, the history kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import UsageError
from orchestrator.tasks import Result, dump_yaml, error_info, id_problem
from orchestrator.workdir import Workdir, atomic_write, is_task_name, read_status

if TYPE_CHECKING:
    from pathlib import Path

CANCEL_SUFFIX = ".cancel"
ANSWER_SUFFIX = ".answer"  # the daemon's reply when it has no such task
UNKNOWN = "unknown"
WAIT_FOR_DAEMON_S = 15.0


def cancelled_result(task_id: str, agent: str | None, where: str) -> Result:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Result(
        id=task_id,
        status="cancelled",
        agent=agent,
        error=error_info(
            "cancelled",
            f"cancelled by `orchestrator cancel` while {where}",
            f"`orchestrator retry {task_id}` runs it again",
        ),
        started_at=now,
        finished_at=now,
        duration_ms=0,
    )


def _task_id_of(path: Path) -> tuple[str, str | None]:
    """(id, agent) of a task file, read leniently."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    if isinstance(data, dict):
        agent = data.get("agent")
        return str(data.get("id", path.stem)), str(agent) if agent is not None else None
    return path.stem, None


def find_task_file(folder: Path, task_id: str) -> tuple[Path, str | None] | None:
    """The task file with this id in `folder` (by file name first, then by content)."""
    if not folder.is_dir():
        return None
    for suffix in (".yaml", ".yml"):
        candidate = folder / f"{task_id}{suffix}"
        if candidate.is_file() and _task_id_of(candidate)[0] == task_id:
            return candidate, _task_id_of(candidate)[1]
    for candidate in sorted(folder.iterdir()):
        if is_task_name(candidate.name) and _task_id_of(candidate)[0] == task_id:
            return candidate, _task_id_of(candidate)[1]
    return None


def daemon_running(workdir: Workdir) -> bool:
    path = workdir.work / ".daemon.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we got
    return False


def cancel(root: Path, task_id: str) -> str:
    """Cancel a queued or running task; return what happened, or raise UsageError."""
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"task id {task_id!r} {why}")
    workdir = Workdir(root)
    status = read_status(workdir.result_path(task_id))
    if status is not None:
        raise UsageError(f"task {task_id} has finished already ({status}); nothing to cancel")
    if daemon_running(workdir):
        return _ask_daemon(workdir, task_id)
    for folder, where in ((workdir.inbox, "queued"), (workdir.running, "left running")):
        found = find_task_file(folder, task_id)
        if found is None:
            continue
        path, agent = found
        claimed = workdir.claim(path) if folder == workdir.inbox else path
        if claimed is None:
            break
        result = cancelled_result(task_id, agent, where)
        result.task_file = claimed.name
        workdir.write_result(task_id, dump_yaml(result.document()))
        workdir.archive_file(claimed, datetime.now(UTC))
        return f"cancelled {task_id} ({where})"
    raise UsageError(f"no queued or running task with id {task_id!r}")


def _ask_daemon(workdir: Workdir, task_id: str) -> str:
    control = workdir.work / "control"
    control.mkdir(parents=True, exist_ok=True)
    request = control / f"{task_id}{CANCEL_SUFFIX}"
    answer = control / f"{task_id}{CANCEL_SUFFIX}{ANSWER_SUFFIX}"
    answer.unlink(missing_ok=True)
    atomic_write(request, b"", durable=False)
    deadline = time.monotonic() + WAIT_FOR_DAEMON_S
    while time.monotonic() < deadline:
        status = read_status(workdir.result_path(task_id))
        if status is not None:
            answer.unlink(missing_ok=True)
            if status == "cancelled":
                return f"cancelled {task_id}"
            return f"{task_id} finished first ({status})"
        with contextlib.suppress(FileNotFoundError):
            if answer.read_text() == UNKNOWN:
                answer.unlink(missing_ok=True)
                raise UsageError(f"no queued or running task with id {task_id!r}")
        time.sleep(0.02)
    raise UsageError(f"the daemon did not answer within {WAIT_FOR_DAEMON_S:g}s; is it busy?")


def retry(root: Path, task_id: str) -> str:
    """Re-queue a finished task as a new run; its earlier results move to history/."""
    workdir = Workdir(root)
    result_path = workdir.result_path(task_id)
    try:
        done: Any = yaml.safe_load(result_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"task {task_id!r} has no result: only finished tasks can be retried"
        ) from None
    source = _archived_task(workdir, task_id, done.get("task_file") if done else None)
    if source is None:
        raise UsageError(f"the task file of {task_id!r} is not in {workdir.archive}")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    history = workdir.outbox / "history"
    history.mkdir(exist_ok=True)
    run = len(list(history.glob(f"{task_id}.*.result.yaml"))) + 1
    os.replace(result_path, history / f"{task_id}.{run}.result.yaml")
    data["id"] = task_id
    data["retry"] = run
    target = workdir.inbox / source.name
    if target.exists():
        target = workdir.inbox / f"{task_id}.retry-{run}.yaml"
    atomic_write(target, dump_yaml(data).encode("utf-8"))
    return f"re-queued {task_id} (run {run + 1}); earlier results are in {history}"


def _archived_task(workdir: Workdir, task_id: str, file_name: str | None) -> Path | None:
    days = sorted(workdir.archive.glob("*"), reverse=True) if workdir.archive.is_dir() else []
    for day in days:
        if file_name:
            candidate = day / file_name
            with contextlib.suppress(OSError):
                if candidate.is_file() and _task_id_of(candidate)[0] == task_id:
                    return candidate
        found = find_task_file(day, task_id)
        if found is not None:
            return found[0]
    return None
