"""The daemon's side of `cancel`: a request file in work/control/ names a task, and the
task is stopped wherever it is (running, queued, waiting for its dependencies, scheduled,
waiting for quota, or still in the inbox) and given its `cancelled` result. A mixin of
the Daemon: it works on the daemon's queue, books and running tasks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from orchestrator import control
from orchestrator.jobs import Job
from orchestrator.tasks import id_problem
from orchestrator.workdir import atomic_write

if TYPE_CHECKING:
    from pathlib import Path

    import anyio

    from orchestrator.intake import Intake
    from orchestrator.jobs import JobQueue
    from orchestrator.taskbook import TaskBook
    from orchestrator.workdir import Workdir

log = logging.getLogger("orchestrator.daemon")


class Cancelling:
    workdir: Workdir
    queue: JobQueue
    book: TaskBook
    intake: Intake
    running_scopes: dict[str, anyio.CancelScope]

    def _deliver(self, verdict: Job) -> None:
        raise NotImplementedError

    def _control(self, request: Path) -> None:
        """A `cancel` request: control/<id>.cancel."""
        if not request.name.endswith(control.CANCEL_SUFFIX):
            return
        task_id = request.name.removesuffix(control.CANCEL_SUFFIX)
        try:  # anything may be planted here: nothing about a request stops the daemon
            request.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("ignoring the control request %s: %s", request.name, exc)
            return
        if (why := id_problem(task_id)) is not None:
            log.warning("ignoring the control request %s: the id %s", request.name, why)
            return
        found = self._cancel(task_id)
        log.warning("cancel %s: %s", task_id, found or "no such queued or running task")
        if found is None:
            answer = request.with_name(request.name + control.ANSWER_SUFFIX)
            try:
                atomic_write(answer, control.UNKNOWN.encode(), durable=False)
            except OSError as exc:  # the command waits, then says the daemon did not answer
                log.warning("cannot answer the cancel of %s: %s", task_id, exc)

    def _cancel(self, task_id: str) -> str | None:
        if task_id in self.running_scopes:  # dispatched, and its result not yet written
            self.running_scopes[task_id].cancel()  # its process group is killed
            return "stopping the running task (or writing its result)"
        job = self.queue.remove(task_id) or self.book.waiting.pop(task_id, None)
        if job is None and task_id in self.intake.timed:
            job = self.intake.timed.pop(task_id)[1]
        where = "waiting for quota" if job is not None and job.carried else "queued"
        if job is None:
            found = control.find_task_file(self.workdir.inbox, task_id)
            claimed = self.workdir.claim(found[0]) if found else None
            if claimed is None:
                return None
            job = Job((0, 0.0, 0), claimed)  # for its path
            where = "in the inbox"
        agent = job.task.agent if job.task else None
        self.book.in_flight.discard(task_id)
        verdict = control.cancelled_result(task_id, agent, where, job.carried)
        self._deliver(self.intake.verdict(job.path, verdict))
        return f"cancelled while {where}"
