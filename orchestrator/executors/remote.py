"""What runs on a Dask worker: one tool run, exactly as the local executor runs it (argv,
the environment's allow-list read from the worker's own environment, its process group,
its bounds), in an event loop of its own in the worker's task thread.

It tells the daemon, on the run's topic, that it started here (so a run lost with its
worker shows in telemetry) and every line of stdout (progress); it stops when the daemon
sets the run's stop event (a cancel, a task over its budget). Imported on the worker, so
it stays small and needs nothing the worker does not have. A worker runs on Linux or macOS,
as the daemon does: the run needs a process group (docs/platforms.md).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.adapters import get_adapter
from orchestrator.executors import RunRequest, snapshot
from orchestrator.executors.local import LocalExecutor

if TYPE_CHECKING:
    from collections.abc import Callable

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

    if run.snapshot is None:
        return anyio.run(_run, run, watch, stop, worker.address)
    with tempfile.TemporaryDirectory(prefix="orchestrator-isolated-") as folder:
        top = Path(folder) / "tree"
        snapshot.unpack(run.snapshot, top)
        here = dataclasses.replace(run, snapshot=None, cwd=str(top / run.prefix))
        found = anyio.run(_run, here, watch, stop, worker.address)
        if "proc" in found:
            found["patch"] = snapshot.changes(top, run.prefix)
        return found


async def _run(
    run: RunRequest, watch: Callable[[bytes], bool], stop: Any, address: str
) -> dict[str, Any]:
    """The run in this thread's event loop, stopped when the daemon sets `stop`."""
    found: dict[str, Any] = {"worker": address, "stopped": True}
    async with anyio.create_task_group() as group:

        async def stopper() -> None:
            while not await anyio.to_thread.run_sync(
                stop.wait,
                STOP_POLL_S,
                abandon_on_cancel=True,  # the run's end waits not
            ):
                pass
            group.cancel_scope.cancel()

        group.start_soon(stopper)
        try:
            proc = await LocalExecutor().run(run, watch, None)
        except PermissionError as exc:
            found = {"worker": address, "error": "permission", "message": str(exc)}
        except OSError as exc:
            found = {"worker": address, "error": "start", "message": str(exc)}
        else:
            found = {"worker": address, "proc": dataclasses.asdict(proc)}
        group.cancel_scope.cancel()
    return found


def has_workspace(root: str) -> bool:
    """On each worker, at the daemon's start: is the workspace here, at the same path?"""
    return (Path(root) / "config").is_dir() and (Path(root) / "work").is_dir()
