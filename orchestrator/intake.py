"""Intake: a claimed task file becomes a Job. It is queued when its dependencies have
succeeded, parked while they are pending, and turned into a rejection (which still needs
its result file) when it cannot run: bad YAML or fields, a duplicate id, a failed
dependency, a cycle. A file that may still be half-written is deferred and looked at again.

Runs on the event loop: the daemon calls `admit` for each claimed file and `schedule` for
each parked job whose dependencies have finished, and runs `retry_deferred` beside them.
"""

from __future__ import annotations

import errno
import itertools
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator import control, workflow
from orchestrator.engine import iso, now_utc
from orchestrator.errors import TaskRejected
from orchestrator.jobs import Job
from orchestrator.quota import WAITING
from orchestrator.results import Result, error_info
from orchestrator.safefile import fit_name
from orchestrator.tasks import (
    MAX_ID_BYTES,
    Task,
    compose_prompt,
    id_problem,
    load_task,
    parse_task,
    read_profile,
)
from orchestrator.workdir import StillWriting, read_status, read_task_file

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.jobs import JobQueue
    from orchestrator.taskbook import TaskBook
    from orchestrator.telemetry.writer import TelemetryWriter
    from orchestrator.workdir import Workdir

log = logging.getLogger(__name__)

SETTLE_S = 2.0  # a file this fresh that does not parse may be half-written: wait
DEFER_POLL_S = 0.05  # how often files still being written are looked at again
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN})
HALF_WRITTEN = frozenset({"yaml_syntax", "not_a_mapping", "not_utf8", "missing_agent"})


class Intake:
    """The intake's state: files deferred while they may still be written, agents'
    profiles (read once), and the counter that orders jobs of equal priority and age."""

    def __init__(
        self,
        config: Config,
        workdir: Workdir,
        book: TaskBook,
        queue: JobQueue,
        telemetry: TelemetryWriter,
        deliver: Callable[[Job], None],
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.book = book
        self.queue = queue
        self.telemetry = telemetry
        self.deliver = deliver  # a decided result (a rejection) on its way to outbox/
        self.order = itertools.count()  # ties in priority and age: first come, first run
        self.deferred: dict[Path, float] = {}  # claimed files still being written
        self.profiles: dict[str, str | None] = {}
        self.timed: dict[str, tuple[float, Job]] = {}  # not_before in the future: id → when
        self.timed_changed = anyio.Event()
        self.unwritten: set[str] = set()  # ids of rejections delivered, maybe not written

    async def retry_deferred(self) -> None:
        """Files that were still being written when claimed: look again shortly."""
        while True:
            await anyio.sleep(DEFER_POLL_S)
            for path in list(self.deferred):
                self.admit(path)

    def verdict(self, path: Path, result: Result) -> Job:
        """A job whose result is decided without running (it goes first)."""
        return Job((-1, 0.0, next(self.order)), path, verdict=result)

    def admit(self, path: Path, *, recovered: bool = False) -> None:
        """Parse a claimed file and queue it (a rejection is queued too: it needs a result)."""
        name = path.name
        result_id = path.stem  # the file's own id once it is read
        notices: list[str] = []  # what reading it noticed, kept by a rejection too
        try:
            try:
                data, stat = read_task_file(path)
            except StillWriting:
                self.deferred.setdefault(path, time.monotonic())
                return
            try:
                raw, notices = load_task(data, name)
            except TaskRejected as rejected:
                if rejected.kind in HALF_WRITTEN and time.time() - stat.st_mtime < SETTLE_S:
                    self.deferred.setdefault(path, time.monotonic())  # maybe half-written
                    return
                raise
            self.deferred.pop(path, None)
            result_id = _given_id(raw, result_id)
            task = parse_task(raw, path.stem, name, self.config, notices)
            if recovered and self.workdir.result_path(task.id).exists():
                self._archive_recovered(task, path)
                return
            replaces = self._check_duplicate(task, path)
            prompt = compose_prompt(
                task,
                self.config.root,
                name,
                self._profile(task.agent),
                self._instructions(task.agent),
            )
            if replaces:
                self._replace_rejection(task, path)
        except TaskRejected as rejected:
            self.deferred.pop(path, None)
            self._reject(path, result_id, rejected, notices)
            return
        except OSError as exc:
            if exc.errno in TRANSIENT_ERRNOS:  # out of descriptors or memory: look again
                log.warning("cannot read %s now: %s", name, exc)
                self.deferred.setdefault(path, time.monotonic())
                return
            self.deferred.pop(path, None)
            self._reject(
                path,
                result_id,
                TaskRejected(
                    "unreadable_file",
                    f"{name} cannot be read: {exc}",
                    "check the file's permissions and the disk, then submit it again",
                ),
            )
            return
        self.book.in_flight.add(task.id)
        self.schedule(
            Job((task.priority_rank, stat.st_mtime, next(self.order)), path, task, prompt)
        )

    def _archive_recovered(self, task: Task, path: Path) -> None:
        """A file left in running/ whose result was written: only archive it."""
        log.info("%s already has its result; archiving", path.name)
        try:
            self.book.ensure_follow_up(task)
            self.workdir.archive_file(path, now_utc())
        except OSError as exc:  # it has its result; archiving is tried at the next start
            log.warning("cannot archive %s: %s", path.name, exc)

    async def release_timed(self) -> None:
        """Jobs whose `not_before` has come go on to `schedule` (their dependencies next)."""
        while True:
            now = time.time()
            for task_id, (when, job) in list(self.timed.items()):
                if when <= now:
                    del self.timed[task_id]
                    self.schedule(job, timed=False)
            soonest = min((when for when, _ in self.timed.values()), default=now + 3600)
            self.timed_changed = anyio.Event()
            with anyio.move_on_after(max(0.0, soonest - time.time())):
                await self.timed_changed.wait()

    def wait_for_quota(self, job: Job, until: float, why: str) -> None:
        """A job whose tools are all out of quota: held until `until`, then queued again
        (like a `not_before`, with the state `waiting_quota`)."""
        task = job.task
        assert task is not None
        self.timed[task.id] = (until, job)
        self.timed_changed.set()
        self.telemetry.task_state(
            task.id, WAITING, iso(now_utc()), waiting_for=iso(_utc(until)), detail=why,
            agent=task.agent, priority=task.priority, chain_id=task.chain_id or task.id,
        )  # fmt: skip

    def schedule(self, job: Job, *, timed: bool = True) -> None:
        """Queue a job whose dependencies succeeded; park it while they are pending, or
        while its `not_before` has not come (`timed`: that is still to be looked at)."""
        task = job.task
        assert task is not None
        when = task.start_at(arrived=job.key[1]) if timed else None
        if when is not None and when > time.time():
            self.timed[task.id] = (when, job)
            self.timed_changed.set()
            log.info("%s is scheduled for %s", task.id, iso(_utc(when)))
            self.telemetry.task_state(
                task.id, "scheduled", iso(now_utc()), detail=f"not before {iso(_utc(when))}",
                agent=task.agent, priority=task.priority, chain_id=task.chain_id or task.id,
            )  # fmt: skip
            return
        deps = self.book.dependencies(task)
        if deps.failed is not None:
            dep, state = deps.failed
            self._reject_job(
                job,
                TaskRejected(
                    "dependency_failed",
                    f"{task.id}: dependency {dep!r} ended as {state}",
                    f"fix it and `orchestrator retry {dep}`, then submit this task again "
                    "(or set on_dependency_failure: run)",
                ),
            )
            return
        now = iso(now_utc())
        fields = {
            "agent": task.agent,
            "priority": task.priority,
            "parent_task": task.previous_task,
            "chain_id": task.chain_id or task.id,
        }
        if deps.ready:
            self.queue.put(job)
            self.telemetry.task_state(task.id, "queued", now, **fields)
            return
        cycle = self.book.cycle(task)
        if cycle is not None:
            named = " -> ".join(cycle)
            for member in dict.fromkeys(cycle):
                parked = job if member == task.id else self.book.waiting.pop(member, None)
                if parked is not None:
                    self._reject_job(
                        parked,
                        TaskRejected(
                            "dependency_cycle",
                            f"{member}: the dependencies form a cycle: {named}",
                            "remove one of these dependencies",
                        ),
                    )
            return
        self.book.park(job)
        log.info("%s waits for %s", task.id, ", ".join(deps.waiting_for))
        self.telemetry.task_state(
            task.id, "waiting", now, waiting_for=", ".join(deps.waiting_for), **fields
        )

    def _reject_job(self, job: Job, rejected: TaskRejected) -> None:
        assert job.task is not None
        self.book.in_flight.discard(job.task.id)
        self._reject(job.path, job.task.id, rejected, job.task.read_warnings)

    def _check_duplicate(self, task: Task, path: Path) -> bool:
        """Refuse an id that already has a result or is in flight; True when its result
        is only a rejection, which a corrected file replaces (a rejection reserves no id)."""
        if task.id in self.book.in_flight:
            raise TaskRejected(
                "duplicate_id",
                f"{path.name}: a task with id {task.id!r} is already queued",
                "give the task a new id",
            )
        status = read_status(self.workdir.result_path(task.id))
        if status == "rejected":
            return True
        if status is not None or self.workdir.result_path(task.id).exists():
            raise TaskRejected(
                "duplicate_id",
                f"{path.name}: a task with id {task.id!r} already has a result ({status})",
                f"use `orchestrator retry {task.id}` to run it again, or give the task a new id",
            )
        return False

    def _replace_rejection(self, task: Task, path: Path) -> None:
        """A corrected file for a rejected id: the rejection moves to history/ (as `retry`
        keeps earlier results) and the new result lists it in `previous_results`."""
        try:
            run = control.move_to_history(self.workdir, task.id)
        except OSError as exc:
            raise TaskRejected(
                "duplicate_id",
                f"{path.name}: the rejected result of {task.id!r} could not be moved to "
                f"{self.workdir.outbox / 'history'} ({exc.strerror}) to make way for it",
                "check the disk and the permissions of work/outbox, then submit it again",
            ) from None
        if run is not None:
            log.info(
                "%s: a corrected file replaces its rejection (now history run %d)", task.id, run
            )
            task.retry = max(task.retry, run)

    def _reject(
        self, path: Path, result_id: str, rejected: TaskRejected, warnings: Sequence[str] = ()
    ) -> None:
        """Deliver a rejection, named after the file's id (made safe; a new name when
        that id has a result, or one on its way, that is not a rejection)."""
        log.warning("rejected %s: %s", path.name, rejected)
        if id_problem(result_id) is not None:
            result_id = _safe_id(result_id)
        if not self._free_for_rejection(result_id, rejected.kind):
            result_id = f"{result_id}.rejected-{now_utc().strftime('%Y%m%dT%H%M%S%f')}"
        self.unwritten.add(result_id)
        result = Result(
            id=result_id,
            status="rejected",
            error=error_info(rejected.kind, rejected.message, rejected.hint),
            warnings=list(warnings),
            started_at=iso(now_utc()),
            finished_at=iso(now_utc()),
            duration_ms=0,
        )
        self.deliver(self.verdict(path, result))

    def _free_for_rejection(self, result_id: str, kind: str) -> bool:
        """Whether a rejection may take the plain name `<id>.result.yaml`: not for a
        duplicate, nor while a task of that id is in flight or its rejection is still on
        its way to outbox/; over an earlier rejection, which moves to history/ (a file
        rejected again replaces its rejection, as a corrected one does)."""
        if kind == "duplicate_id" or result_id in self.book.in_flight:
            return False
        path = self.workdir.result_path(result_id)
        if not path.exists():
            return result_id not in self.unwritten
        self.unwritten.discard(result_id)  # written by now
        if read_status(path) != "rejected":
            return False
        try:
            return control.move_to_history(self.workdir, result_id) is not None
        except OSError as exc:
            log.warning("cannot move the rejection of %s to history: %s", result_id, exc)
            return False

    def _instructions(self, agent: str) -> str | None:
        allowed = self.config.agents[agent].handoff_to
        return workflow.instructions(allowed) if allowed else None

    def _profile(self, agent: str) -> str | None:
        if agent not in self.profiles:
            self.profiles[agent] = read_profile(self.config, agent)
        return self.profiles[agent]


def _given_id(raw: Mapping[str, Any], file_id: str) -> str:
    """The id a task file gives itself when it is a safe one, else its file name's: a
    rejection is named after it, so a corrected file with that id finds it."""
    given = raw.get("id", file_id)
    if isinstance(given, str | int) and not isinstance(given, bool):
        given = str(given)
        return given if id_problem(given) is None else file_id
    return file_id


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _safe_id(raw: str) -> str:
    """An id for the result of a file whose own id is unsafe: its letters and digits,
    shortened (with a hash) to what can name a file."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in raw).replace("..", "_")
    return fit_name(cleaned.lstrip(".-") or "task", "", MAX_ID_BYTES)
