"""The Dask executor: each tool run is a Dask task on a worker that advertises the tool as a
resource (`dask worker --resources "claude-code=2 codex=4"`), so it lands only where its
CLI is installed. The daemon stays the only reader of the inbox and the only writer of
results and telemetry: routing, policy, budgets and the per-tool concurrency caps (which,
the daemon being the only one to submit, hold for the whole cluster) stay here.

A worker killed mid-run: Dask runs the task again on another worker (at least once); the
run's "started" messages tell which workers were lost, and the attempt says so. The
scheduler unreachable: the run waits for it (reconnecting every few seconds), then is
submitted; nothing is dropped. The workers and what runs where go to work/executor.json
for `status`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.executors import snapshot
from orchestrator.executors.remote import has_workspace, run_on_worker, stop_name, topic
from orchestrator.isolation.git import Git
from orchestrator.process import ProcessResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.adapters.base import ToolFailure
    from orchestrator.engine import Engine
    from orchestrator.executors import RunRequest

log = logging.getLogger(__name__)

STATE_FILE = "executor.json"
CONNECT_TIMEOUT_S = 5.0
RECONNECT_S = 2.0  # between tries while the scheduler is unreachable
PUBLISH_S = 2.0  # how often work/executor.json is rewritten


class DaskExecutor:
    kind = "dask"

    def __init__(self, scheduler: str, root: Path) -> None:
        self.scheduler = scheduler
        self.root = root
        self.client: Any = None
        self.connecting = anyio.Lock()
        self.running: dict[str, dict[str, Any]] = {}  # key -> task, tool, worker
        self.state_path = root / "work" / STATE_FILE

    def check(self, engine: Engine, request: RunRequest) -> ToolFailure | None:
        return None  # the worker that runs it knows its binaries; a missing one fails there

    async def connected(self) -> Any:
        """The client, connecting (again) as long as the scheduler cannot be reached."""
        async with self.connecting:
            while self.client is None or self.client.status not in ("running", "connecting"):
                try:
                    self.client = await self._connect()
                except (OSError, TimeoutError) as exc:
                    log.warning(
                        "dask scheduler %s unreachable (%s); trying again", self.scheduler, exc
                    )
                    await anyio.sleep(RECONNECT_S)
            return self.client

    async def _connect(self) -> Any:
        from distributed import Client

        client = await Client(  # type: ignore[no-untyped-call]
            self.scheduler, asynchronous=True, timeout=CONNECT_TIMEOUT_S
        )
        where = await client.run(has_workspace, str(self.root))
        for worker, found in where.items():
            if not found:
                log.error(
                    "dask worker %s has no workspace at %s: tasks without worktree isolation "
                    "that land there fail (see docs/scale-out.md)", worker, self.root,
                )  # fmt: skip
        log.info("connected to dask scheduler %s (%d workers)", self.scheduler, len(where))
        return client

    async def run(
        self,
        request: RunRequest,
        watch: Callable[[bytes], bool] | None,
        on_start: Callable[[int], None] | None,
    ) -> ProcessResult:
        git = Git(Path(request.run_dir))
        if request.isolated:  # its worktree goes with it, its changes come back
            tree, prefix = await snapshot.take(Path(request.cwd), git)
            request = replace(request, snapshot=tree, prefix=prefix)
        started: list[str] = []

        def heard(event: tuple[float, dict[str, Any]]) -> None:
            message = event[1]
            if "started" in message:
                started.append(str(message["started"]))
                self.running[request.key] = {"task": request.task_id, "tool": request.tool,
                                             "worker": started[-1]}  # fmt: skip
            elif "line" in message and watch is not None and watch(bytes(message["line"])):
                self._stop_soon(request.key)

        try:
            outcome = await self._submit(request, heard)
        finally:
            self.running.pop(request.key, None)
        if "error" in outcome:
            kind = PermissionError if outcome["error"] == "permission" else OSError
            raise kind(f"on dask worker {outcome['worker']}: {outcome['message']}")
        worker, lost = str(outcome["worker"]), tuple(started[:-1])
        if outcome.get("stopped"):  # the daemon asked (a line proved the run must end)
            return ProcessResult(
                None, b"", b"", 0.0, stopped_early=True, ran_on=worker, lost_on=lost
            )
        if outcome.get("patch"):
            await snapshot.give_back(
                Path(request.cwd), outcome["patch"], Path(request.run_dir), git
            )
        return ProcessResult(**outcome["proc"] | {"ran_on": worker, "lost_on": lost})

    async def _submit(
        self, request: RunRequest, heard: Callable[[tuple[float, dict[str, Any]]], None]
    ) -> dict[str, Any]:
        from distributed.client import FutureCancelledError

        while True:
            client = await self.connected()
            name = topic(request.key)
            client.subscribe_topic(name, heard)
            future = client.submit(
                run_on_worker, request.as_dict(), key=request.key, pure=False,
                resources={request.tool: 1},
            )  # fmt: skip
            try:
                found: dict[str, Any] = await future
                return found
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await self._stop(request.key)
                    await future.cancel()
                raise
            except (OSError, TimeoutError, FutureCancelledError) as exc:
                # the scheduler went away (we cancel only in the branch above): once it is
                # back, the run is submitted again
                log.warning("run %s lost with the scheduler (%s); submitting it again",
                            request.key, exc)  # fmt: skip
                await anyio.sleep(RECONNECT_S)
            finally:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(name)

    def _stop_soon(self, key: str) -> None:
        if self.client is not None:
            self.client.loop.add_callback(self._stop, key)

    async def _stop(self, key: str) -> None:
        from distributed import Event

        with contextlib.suppress(Exception):
            await Event(stop_name(key), client=self.client).set()  # type: ignore[no-untyped-call]

    async def publish(self) -> None:
        """Keep work/executor.json current: the workers, their resources, what runs where."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.connected)  # at start, not at the first task
            await self._write_state()

    async def _write_state(self) -> None:
        from orchestrator.workdir import atomic_write

        while True:
            state: dict[str, Any] = {
                "kind": "dask",
                "scheduler": self.scheduler,
                "connected": False,
                "workers": {},
                "at": time.time(),
            }
            client = self.client
            if client is not None and client.status == "running":
                with contextlib.suppress(Exception):
                    info = await client.scheduler.identity(n_workers=-1)
                    state["connected"] = True
                    state["workers"] = {
                        address: {"resources": w.get("resources", {}),
                                  "running": sorted(r["task"] for r in self.running.values()
                                                    if r["worker"] == address)}
                        for address, w in info.get("workers", {}).items()
                    }  # fmt: skip
            with contextlib.suppress(OSError):
                atomic_write(self.state_path, json.dumps(state).encode(), durable=False)
            await anyio.sleep(PUBLISH_S)

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        with contextlib.suppress(OSError):
            self.state_path.unlink()
