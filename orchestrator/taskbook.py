"""What the daemon knows about every task id: in flight, waiting for dependencies,
finished (and how). Dependencies and handoffs are decided from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator import workflow
from orchestrator.errors import TaskRejected
from orchestrator.results import dump_yaml
from orchestrator.safefile import read_regular
from orchestrator.tasks import load_mapping
from orchestrator.workdir import RESULT_MAX_BYTES, Workdir, atomic_write, read_status

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.jobs import Job
    from orchestrator.results import Result
    from orchestrator.tasks import Task

log = logging.getLogger(__name__)

MAX_REMEMBERED = 1_000


@dataclass
class TaskBook:
    config: Config
    workdir: Workdir
    in_flight: set[str] = field(default_factory=set)  # queued, waiting or running
    finished: dict[str, str] = field(default_factory=dict)  # id -> final status
    waiting: dict[str, Job] = field(default_factory=dict)  # parked until deps finish
    waiters: dict[str, set[str]] = field(default_factory=dict)  # dep id -> ids waiting

    def _remember(self, task_id: str, status: str) -> None:
        """Keep the last MAX_REMEMBERED statuses; older ones are read from their result
        files again when a dependency asks (so memory does not grow with every task)."""
        self.finished.pop(task_id, None)
        self.finished[task_id] = status
        if len(self.finished) > MAX_REMEMBERED:
            del self.finished[next(iter(self.finished))]

    def dependencies(self, task: Task) -> workflow.DependencyState:
        return workflow.dependency_state(task, self.state_of, self.known)

    def cycle(self, task: Task) -> list[str] | None:
        """A dependency cycle the task would close with the tasks already waiting."""
        edges = {i: j.task.dependency_ids for i, j in self.waiting.items() if j.task}
        return workflow.find_cycle(task.id, {**edges, task.id: task.dependency_ids})

    def park(self, job: Job) -> None:
        assert job.task is not None
        self.waiting[job.task.id] = job
        for dep in job.task.dependency_ids:
            self.waiters.setdefault(dep, set()).add(job.task.id)

    def finish(self, task_id: str, status: str) -> list[Job]:
        """Record a final status; return the waiting jobs to look at again."""
        self.in_flight.discard(task_id)
        self._remember(task_id, status)
        woken = [self.waiting.pop(w, None) for w in sorted(self.waiters.pop(task_id, ()))]
        return [job for job in woken if job is not None]

    def state_of(self, task_id: str) -> str | None:
        """succeeded / failed / ... for a finished task; None while pending or unknown."""
        if task_id in self.in_flight:
            return None
        if task_id not in self.finished:
            status = read_status(self.workdir.result_path(task_id))
            if status is None:
                return None
            self._remember(task_id, status)
            return status
        return self.finished[task_id]

    def known(self, task_id: str) -> bool:
        inbox = self.workdir.inbox
        return (
            task_id in self.in_flight
            or task_id in self.finished
            or self.workdir.result_path(task_id).exists()
            or any((inbox / f"{task_id}{suffix}").exists() for suffix in (".yaml", ".yml"))
        )

    def handoff(self, job: Job, result: Result) -> tuple[Path, str] | None:
        """What the book settles about a result before it is written (the daemon asks it
        for every job): the warnings from reading the task file go first in the result's
        `warnings`; and the follow-up task file a succeeded task hands off to, when it
        asks for one: in its task file's `result:` block, or (for agents with
        `handoff_to`) in its answer."""
        task = job.task
        if task is not None:
            noticed = [w for w in task.read_warnings if w not in result.warnings]
            result.warnings[:0] = noticed
        if task is None or result.status != "succeeded":
            return None
        allowed = self.config.agents[task.agent].handoff_to
        from_tool = workflow.parse_handoff(result.output) if allowed else None
        handoff = from_tool or workflow.handoff_from_task(task)
        if handoff is None:
            return None
        result.result = dict(handoff)
        target = str(handoff["next_agent"])
        if target not in self.config.agents or (from_tool and target not in allowed):
            names = ", ".join(allowed if from_tool else sorted(self.config.agents))
            result.warnings.append(f"handoff to {target!r} ignored: not one of {names}")
            return None
        if task.handoff_depth >= workflow.MAX_HANDOFF_DEPTH:
            result.warnings.append(
                f"handoff to {target!r} ignored: the chain is {task.handoff_depth} handoffs "
                f"long (at most {workflow.MAX_HANDOFF_DEPTH})"
            )
            return None
        follow_id, doc = workflow.follow_up_task(task, handoff, result.output)
        result.result["next_task_id"] = follow_id
        if self.follow_up_exists(follow_id):
            return None
        return self.workdir.inbox / f"{follow_id}.yaml", dump_yaml(doc)

    def follow_up_exists(self, follow_id: str) -> bool:
        return self.known(follow_id) or any(self.workdir.running.glob(f"{follow_id}*.yaml"))

    def ensure_follow_up(self, task: Task) -> None:
        """After a crash between a result and its follow-up: write the follow-up now."""
        path = self.workdir.result_path(task.id)
        try:
            done = load_mapping(read_regular(path, RESULT_MAX_BYTES), path.name)
        except (OSError, TaskRejected):
            return
        handoff = done.get("result") if isinstance(done, dict) else None
        if not isinstance(handoff, dict) or "next_task_id" not in handoff:
            return
        if self.follow_up_exists(handoff["next_task_id"]):
            return
        follow_id, doc = workflow.follow_up_task(task, handoff, done.get("output"))
        log.warning("writing the missing follow-up %s of %s", follow_id, task.id)
        atomic_write(self.workdir.inbox / f"{follow_id}.yaml", dump_yaml(doc).encode())
