"""Handing work in from the command line: `submit` (a task file) and `exec` (run now)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator.config import Config, suggest
from orchestrator.errors import TaskRejected, TelemetryUnusable, UsageError
from orchestrator.execute import Engine, execute
from orchestrator.tasks import (
    MAX_INPUT_BYTES,
    Result,
    Task,
    compose_prompt,
    dump_yaml,
    id_problem,
    read_profile,
)
from orchestrator.telemetry.store import (
    chain_of,
    connect,
    hint_for,
    is_busy,
    record_output,
    spend_between,
    unusable,
)
from orchestrator.telemetry.writer import TelemetryWriter
from orchestrator.workdir import Workdir, atomic_write

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.policy import Window

log = logging.getLogger(__name__)


def new_id(agent: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    return f"{stamp}-{agent}-{os.urandom(3).hex()}"


def _check_agent(config: Config, agent: str) -> None:
    if agent not in config.agents:
        raise UsageError(f"unknown agent {agent!r}: {suggest(agent, config.agents)}")


def submit(
    config: Config,
    *,
    agent: str,
    prompt: str,
    task_type: str | None = None,
    priority: str | None = None,
    task_id: str | None = None,
) -> str:
    """Write a task file into the inbox, whole and only if its id is new; return the id."""
    _check_agent(config, agent)
    task_id = task_id or new_id(agent)
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"--id {task_id!r} {why}")
    workdir = Workdir(config.root)
    workdir.ensure()
    target = workdir.inbox / f"{task_id}.yaml"
    if target.exists() or workdir.result_path(task_id).exists():
        raise UsageError(f"a task with id {task_id!r} exists already; choose another --id")
    doc: dict[str, object] = {"id": task_id, "agent": agent}
    if task_type:
        doc["task_type"] = task_type
    if priority:
        doc["priority"] = priority
    doc["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["created_by"] = "orchestrator submit"
    doc["prompt"] = prompt
    if not create_exclusive(target, dump_yaml(doc).encode("utf-8")):
        raise UsageError(f"a task with id {task_id!r} exists already; choose another --id")
    return task_id


# What link() says on a file system that has no hard links (some network and FAT ones).
NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


def create_exclusive(target: Path, data: bytes) -> bool:
    """Write a new file `target` whole, or return False when it exists already.

    The data goes to a temp dotfile (which the daemon ignores) that is then hard-linked
    under the name: the link fails when the name is taken, so of two writers racing for
    one name exactly one wins, and a reader never sees a half-written file."""
    tmp = target.with_name(f".submit-{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            if target.exists():  # racy, as well as a file system without links allows
                return False
            os.replace(tmp, target)
    except FileExistsError:
        return False
    except OSError as exc:  # os.write names no file: say which one could not be written
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return True


def _read_context(path: Path) -> bytes:
    """An `exec --context` file: any file the user names (a pipe from `<(git diff)` too),
    read with a bound, so a link to /dev/zero cannot exhaust the memory."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise UsageError(f"--context {path}: larger than {MAX_INPUT_BYTES} bytes")
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--context {path}: {exc}") from None
    return data


async def exec_task(
    config: Config,
    agent: str,
    prompt: str,
    contexts: list[Path],
    output: Path | None = None,
    chain: str | None = None,
) -> Result:
    """Run one task now, through the same routing, policy and telemetry as the daemon.

    Context files are appended to the prompt. A context file that an earlier `exec
    --output` wrote puts this task in that task's chain (same chain id in telemetry).
    The telemetry database never fails the task: when it is locked the run waits for it
    a bounded time, when it is unusable the task runs unrecorded, with a warning.
    """
    _check_agent(config, agent)
    parts = [prompt.strip()]
    digests = []
    for path in contexts:
        data = _read_context(path)
        digests.append(hashlib.sha256(data).hexdigest())
        parts.append(f"## {path}\n\n{data.decode('utf-8').strip()}")
    workdir = Workdir(config.root)
    workdir.runs.mkdir(parents=True, exist_ok=True)
    task_id = f"exec-{new_id(agent)}"
    with contextlib.closing(_Records(workdir.work / "telemetry.db")) as records:
        chain = chain or records.chain_of(digests) or task_id
        task = Task(id=task_id, agent=agent, prompt="\n\n".join(parts) + "\n", chain_id=chain)
        try:
            profile = read_profile(config, agent)
        except TaskRejected as exc:
            raise UsageError(str(exc)) from None
        full_prompt = compose_prompt(task, config.root, "exec", profile)
        result = await _run(config, workdir, records, task, full_prompt)
        if output is not None and result.status == "succeeded":
            data = (result.output or "").encode("utf-8")
            atomic_write(output, data, durable=False)
            records.output(hashlib.sha256(data).hexdigest(), output, task_id, chain)
    return result


async def _run(
    config: Config, workdir: Workdir, records: _Records, task: Task, prompt: str
) -> Result:
    """`execute` with a telemetry writer beside it (none when the database is unusable)."""
    if records.problem is not None:
        engine = Engine(config, workdir.runs)
        result = await execute(engine, task, prompt)
        engine.remove_run_dirs()
        return result
    telemetry = TelemetryWriter(records.path, zone=config.policies.budgets.timezone)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_write_telemetry, telemetry)
        engine = Engine(config, workdir.runs, telemetry=telemetry, load_spent=records.spent_in)
        result = await execute(engine, task, prompt)
        engine.remove_run_dirs()
        telemetry.close()
    if telemetry.health.dropped:  # the writer waited its bounded time and gave up
        error = telemetry.health.last_error or "rows could not be written"
        problem = TelemetryUnusable(records.path, error, hint_for(error))
        log.warning("%s", problem.with_consequence("this run is not recorded"))
        records.gave_up = True  # nor its --output file: no second wait for the lock
    return result


async def _write_telemetry(telemetry: TelemetryWriter) -> None:
    """The writer, which must never take the task's answer down with it."""
    try:
        await telemetry.run()
    except (sqlite3.Error, OSError) as exc:
        log.warning(
            "telemetry: writing %s failed (%s): this run is not recorded", telemetry.path, exc
        )


UNRECORDED = "this run is not recorded and budgets count spend from $0"


class _Records:
    """What `exec` itself reads and writes in the telemetry database: the chains of
    --context files, past spend for the budgets, and the --output file. A database that
    is locked is waited for (SQLite's busy timeout), then skipped; one that is unusable
    (not a database, corrupt, unreadable) is reported once and left alone, as the daemon
    does: the task runs, unrecorded, and budgets count spend from $0."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: TelemetryUnusable | None = None
        self.gave_up = False  # the writer could not record the run
        self.db: sqlite3.Connection | None = None
        try:
            self.db = connect(path)  # creates it, or brings its schema up to date
        except sqlite3.Error as exc:
            self._failed(exc, "past spend and the chains of --context files are not read")

    def _failed(self, exc: sqlite3.Error, consequence: str) -> None:
        problem = unusable(self.path, exc)
        if is_busy(exc):  # the writer tries again while the task runs
            log.warning("%s", problem.with_consequence(consequence))
        elif self.problem is None:
            self.problem = problem
            log.warning("%s", problem.with_consequence(UNRECORDED))

    def chain_of(self, digests: list[str]) -> str | None:
        if self.db is None or not digests:
            return None
        try:
            return next(filter(None, (chain_of(self.db, d) for d in digests)), None)
        except sqlite3.Error as exc:
            self._failed(exc, "the chains of the --context files are not read")
            return None

    def spent_in(self, window: Window) -> float:
        if self.db is None:
            return 0.0
        try:
            agent = None if window.scope == "global" else window.scope
            return spend_between(self.db, window.start, window.end, agent)
        except sqlite3.Error as exc:
            self._failed(exc, "budgets count spend from $0")
            return 0.0

    def output(self, sha256: str, path: Path, task_id: str, chain: str) -> None:
        if self.problem is not None or self.gave_up:
            return
        try:
            if self.db is None:
                self.db = connect(self.path)
            record_output(self.db, sha256, str(path), task_id, chain)
        except sqlite3.Error as exc:
            self._failed(exc, f"{path} is written, but its chain is not recorded")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
