"""`cancel ID` and `retry ID`.

Cancel: with no daemon running, the task file is taken from the inbox (or from running/,
left by a stopped daemon) and given a `cancelled` result here. With a daemon running, a
request file `work/control/<id>.cancel` is dropped for it (it kills a running task's
process group) and the command waits for the result.

Retry: the finished task's result moves to `work/outbox/history/`, and its task file comes
back from the archive into the inbox with `retry: N`: a new run, the history kept. It
says which file it replays. A rejected task needs no retry: a corrected file with its id,
dropped into the inbox, takes the place of the rejection (the daemon moves the rejected
result to history/ with `move_to_history`).
"""

from __future__ import annotations

import fcntl  # flock(2), on Linux and macOS; native Windows has none (docs/platforms.md)
import glob
import logging
import os
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import TaskRejected, UsageError
from orchestrator.results import Result, dump_yaml, error_info
from orchestrator.safefile import fit_name, read_head, read_regular
from orchestrator.tasks import MAX_TASK_BYTES, TASK_SUFFIXES, id_problem, load_mapping
from orchestrator.workdir import (
    PENDING_SUFFIX,
    RESULT_MAX_BYTES,
    RESULT_SUFFIX,
    Workdir,
    atomic_write,
    is_task_name,
    read_status,
)

CANCEL_SUFFIX = ".cancel"
ANSWER_SUFFIX = ".answer"  # the daemon's reply when it has no such task
log = logging.getLogger(__name__)

UNKNOWN = "unknown"
WAIT_FOR_DAEMON_S = 15.0


def cancelled_result(
    task_id: str, agent: str | None, where: str, carried: Result | None = None
) -> Result:
    """The result of a task cancelled before it ran, or between its runs: `carried`, what
    its runs before a wait for quota left (their attempts, usage, cost and warnings stay)."""
    when = datetime.now(UTC)
    now = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    error = error_info(
        "cancelled",
        f"cancelled by `orchestrator cancel` while {where}",
        f"`orchestrator retry {task_id}` runs it again",
    )
    if carried is None:
        return Result(
            id=task_id,
            status="cancelled",
            agent=agent,
            error=error,
            started_at=now,
            finished_at=now,
            duration_ms=0,
        )
    started = carried.started_at or now
    took = when - datetime.fromisoformat(started)
    return replace(
        carried,
        status="cancelled",
        error=error,
        started_at=started,
        finished_at=now,
        duration_ms=max(0, int(took.total_seconds() * 1000)),
    )


def _task_id_of(path: Path) -> tuple[str, str | None]:
    """(id, agent) of a task file, read leniently (and safely: a FIFO, a device or a
    symlink in its place is never opened for reading, a big file never read whole)."""
    try:
        data: Any = load_mapping(read_regular(path, MAX_TASK_BYTES), path.name)
    except (OSError, TaskRejected):
        data = None
    if isinstance(data, dict):
        agent = data.get("agent")
        return str(data.get("id", path.stem)), str(agent) if agent is not None else None
    return path.stem, None


def find_task_file(folder: Path, task_id: str) -> tuple[Path, str | None] | None:
    """The task file with this id in `folder` (by file name first, then by content);
    only regular files count."""
    if not folder.is_dir():
        return None
    for suffix in TASK_SUFFIXES:
        candidate = folder / f"{task_id}{suffix}"
        if _is_regular(candidate) and (found := _task_id_of(candidate))[0] == task_id:
            return candidate, found[1]
    for candidate in sorted(folder.iterdir()):
        if is_task_name(candidate.name) and _is_regular(candidate):
            found = _task_id_of(candidate)
            if found[0] == task_id:
                return candidate, found[1]
    return None


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def daemon_running(workdir: Workdir) -> bool:
    path = workdir.work / ".daemon.lock"
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
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
    workdir.check()
    status = read_status(workdir.result_path(task_id))
    if status is not None:
        raise UsageError(f"task {task_id} has finished already ({status}); nothing to cancel")
    if daemon_running(workdir):
        return _ask_daemon(workdir, task_id)
    with workdir.commands_lock():
        return _cancel_here(workdir, task_id)


def _cancel_here(workdir: Workdir, task_id: str) -> str:
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
        if read_head(answer, len(UNKNOWN)) == UNKNOWN.encode():
            answer.unlink(missing_ok=True)
            raise UsageError(f"no queued or running task with id {task_id!r}")
        time.sleep(0.02)
    raise UsageError(f"the daemon did not answer within {WAIT_FOR_DAEMON_S:g}s; is it busy?")


def retry(root: Path, task_id: str) -> str:
    """Re-queue a finished task as a new run; its earlier results move to history/."""
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"task id {task_id!r} {why}")
    workdir = Workdir(root)
    workdir.check()
    with workdir.commands_lock():
        workdir.finish_retries()  # one cut short by a crash
        return _retry(workdir, task_id)


def retry_failed(root: Path, since: str | None = None, agent: str | None = None) -> list[str]:
    """`retry --failed`: re-queue every task whose result says failed, timed out or
    quarantined (of `agent`, finished since `since`), each as `retry` does; a line each,
    a task that cannot be re-queued saying why (the others go on)."""
    from orchestrator.reports.failed import dead_letters

    said = []
    for letter in dead_letters(root, since, agent):
        try:
            said.append(retry(root, letter.id))
        except UsageError as exc:
            said.append(f"{letter.id}: not re-queued: {exc}")
    return said


def _retry(workdir: Workdir, task_id: str) -> str:
    """The steps are ordered so that a failure at any of them (a full disk) changes
    nothing: the new task file is written under a pending name first, then the result
    moves to history/, then the pending file takes its name in the inbox. A crash between
    the last two is completed by the next `retry` or daemon start."""
    result_path = workdir.result_path(task_id)
    done = _read_mapping(result_path, f"the result of {task_id!r}")
    if done is None:
        raise UsageError(f"task {task_id!r} has no result: only finished tasks can be retried")
    source = _archived_task(workdir, task_id, done.get("task_file"))
    if source is None:
        raise UsageError(f"the task file of {task_id!r} is not in {workdir.archive}")
    data = _read_mapping(source, f"the archived task file {source}") or {}
    history = workdir.outbox / "history"
    history.mkdir(exist_ok=True)
    run = _runs_kept(history, task_id) + 1
    kept = history / f"{task_id}.{run}.result.yaml"
    data["id"] = task_id
    data["retry"] = run
    pending = workdir.inbox / fit_name(f".{source.stem}", f"{source.suffix}{PENDING_SUFFIX}")
    try:
        atomic_write(pending, dump_yaml(data).encode("utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot write the new task file into {workdir.inbox}: {exc.strerror}; "
            f"nothing was changed (free some space, then retry {task_id} again)"
        ) from None
    try:
        os.replace(result_path, kept)
    except OSError as exc:
        pending.unlink(missing_ok=True)
        raise UsageError(
            f"cannot move the result of {task_id} to {history}: {exc.strerror}; nothing was changed"
        ) from None
    try:
        target = workdir.publish_pending(pending, (source.name, f"{task_id}.retry-{run}.yaml"))
    except OSError as exc:
        try:
            os.replace(kept, result_path)
        except OSError:
            raise UsageError(
                f"cannot put the task file of {task_id} into {workdir.inbox}: "
                f"{exc.strerror}; its result is in {kept}, and the next start of the "
                "daemon completes the retry"
            ) from None
        pending.unlink(missing_ok=True)
        raise UsageError(
            f"cannot put the task file of {task_id} into {workdir.inbox}: {exc.strerror}; "
            "nothing was changed"
        ) from None
    log.info("retry %s: %s is in the inbox", task_id, target.name)
    said = f"re-queued {task_id} (run {run + 1}) from {_shown(source)}"
    if done.get("status") == "rejected":
        said += (
            f"; {task_id} was rejected, and this replays that same file: to run a corrected "
            f"task, simply drop the corrected file into {_shown(workdir.inbox)} with id "
            f"{task_id} (no retry needed: a rejected result gives way to it)"
        )
    return f"{said}; earlier results are in {_shown(history)}"


def _shown(path: Path) -> str:
    """A path as the user can type it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _runs_kept(history: Path, task_id: str) -> int:
    """The highest run number of `task_id` in history/ (0 when none)."""
    runs = [0]
    for path in history.glob(f"{glob.escape(task_id)}.*{RESULT_SUFFIX}"):
        number = path.name.removeprefix(f"{task_id}.").removesuffix(RESULT_SUFFIX)
        if number.isdigit():
            runs.append(int(number))
    return max(runs)


def move_to_history(workdir: Workdir, task_id: str) -> int | None:
    """Move the result of `task_id` to history/ under the next free run number, as
    `retry` keeps earlier results; return that number (None when there is no result).
    For the daemon, which takes no commands lock: the result is linked under its new
    name, then unlinked, so a result kept by a concurrent `retry` is never replaced
    (a crash between the two leaves a copy in history/ and the result in place)."""
    source = workdir.result_path(task_id)
    history = workdir.outbox / "history"
    history.mkdir(exist_ok=True)
    run = _runs_kept(history, task_id) + 1
    while True:
        try:
            os.link(source, history / f"{task_id}.{run}{RESULT_SUFFIX}")
        except FileExistsError:
            run += 1
            continue
        except FileNotFoundError:
            return None
        source.unlink(missing_ok=True)
        return run


def _read_mapping(path: Path, what: str) -> dict[str, Any] | None:
    """A YAML mapping read with the task files' guards; None when the file is missing."""
    try:
        return load_mapping(read_regular(path, RESULT_MAX_BYTES), path.name)
    except FileNotFoundError:
        return None
    except (OSError, TaskRejected) as exc:
        raise UsageError(f"{what} cannot be read: {exc}") from None


def _archived_task(workdir: Workdir, task_id: str, file_name: str | None) -> Path | None:
    days = sorted(workdir.archive.glob("*"), reverse=True) if workdir.archive.is_dir() else []
    for day in days:
        if file_name:
            candidate = day / file_name
            if _is_regular(candidate) and _task_id_of(candidate)[0] == task_id:
                return candidate
        found = find_task_file(day, task_id)
        if found is not None:
            return found[0]
    return None
