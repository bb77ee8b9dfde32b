"""What runs on a Dask worker: one tool run, exactly as the local executor runs it (argv,
the environment's allow-list read from the worker's own environment, its process group,
its bounds), in an event loop of its own in the worker's task thread.

It tells the daemon, on the run's topic, that it started here (so a run lost with its
worker shows in telemetry) and every line of stdout (progress); it stops when the daemon
sets the run's stop event (a cancel, a task over its budget). Imported on the worker, so
it stays small and needs nothing the worker does not have.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio

from orchestrator.adapters import get_adapter
from orchestrator.executors import RunRequest
from orchestrator.executors.local import LocalExecutor

STOP_POLL_S = 0.5  # how often a run looks at its stop event


def topic(key: str) -> str:
    return f"orchestrator-run-{key}"


def stop_name(key: str) -> str:
    return f"orchestrator-stop-{key}"


def run_on_worker(request: dict[str, Any]) -> dict[str, Any]:
    """Run the tool; {"worker", "proc": ProcessResult fields} or {"worker", "error",
    "message"} when it could not start, or {"worker", "stopped": True}."""
    from distributed import Event, get_worker

    worker = get_worker()
    run = RunRequest(**request)
    worker.log_event(topic(run.key), {"started": worker.address})
    watch_line = get_adapter(run.adapter).watch_line
    stop = Event(stop_name(run.key))  # type: ignore[no-untyped-call]

    def watch(line: bytes) -> bool:
        worker.log_event(topic(run.key), {"line": line})
        return watch_line(line) is not None

    async def main() -> dict[str, Any]:
        found: dict[str, Any] = {"worker": worker.address, "stopped": True}
        async with anyio.create_task_group() as group:

            async def stopper() -> None:
                while not await anyio.to_thread.run_sync(
                    stop.wait, STOP_POLL_S, abandon_on_cancel=True  # the run's end waits not
                ):
                    pass
                group.cancel_scope.cancel()

            group.start_soon(stopper)
            try:
                proc = await LocalExecutor().run(run, watch, None)
            except PermissionError as exc:
                found = {"worker": worker.address, "error": "permission", "message": str(exc)}
            except OSError as exc:
                found = {"worker": worker.address, "error": "start", "message": str(exc)}
            else:
                found = {"worker": worker.address, "proc": dataclasses.asdict(proc)}
            group.cancel_scope.cancel()
        return found

    return anyio.run(main)


def has_workspace(root: str) -> bool:
    """On each worker, at the daemon's start: is the workspace here, at the same path?"""
    from pathlib import Path

    return (Path(root) / "config").is_dir() and (Path(root) / "work").is_dir()
