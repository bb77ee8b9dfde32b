"""Jobs: claimed task files on their way to a result, and the priority queue they wait in."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.results import Result
    from orchestrator.tasks import Task


@dataclass(order=True)
class Job:
    key: tuple[int, float, int]
    path: Path = field(compare=False)  # the claimed file, in running/
    task: Task | None = field(compare=False, default=None)
    prompt: str = field(compare=False, default="")
    verdict: Result | None = field(compare=False, default=None)  # decided without running
    # Out of quota: what its runs so far left (attempts, warnings), and since when it waits.
    carried: Result | None = field(compare=False, default=None)
    waiting_since: float | None = field(compare=False, default=None)


class JobQueue:
    """Highest priority first, then oldest."""

    def __init__(self) -> None:
        self._heap: list[Job] = []
        self._ready = anyio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, job: Job) -> None:
        heapq.heappush(self._heap, job)
        self._ready.set()

    async def get(self) -> Job:
        while not self._heap:
            self._ready = anyio.Event()
            await self._ready.wait()
        return heapq.heappop(self._heap)

    def remove(self, task_id: str) -> Job | None:
        for i, job in enumerate(self._heap):
            if job.task is not None and job.task.id == task_id:
                self._heap.pop(i)
                heapq.heapify(self._heap)
                return job
        return None

    def drain(self) -> list[Job]:
        jobs, self._heap = self._heap, []
        return jobs
